"""Headless Chromium for the course's browser checks (tools/lab_browser.py, tools/check_site.py): the system's
browser through Playwright, offline; a page that refuses and records every request leaving localhost.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


# ---------------------------------------------------------------------------------------------- what is needed
def chromium_path() -> str | None:
    """The Chromium to drive: $CHROMIUM, else `chromium` or `chromium-browser` on the PATH."""
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    return found if found and Path(found).exists() else None


def missing() -> str | None:
    """Why the browser checks cannot run here (None when they can), with how to install what is missing."""
    problems = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append('Playwright\'s Python package is missing (pip install -e ".[docs]")')
    if chromium_path() is None:
        problems.append("no Chromium found (apt-get install -y chromium, or set CHROMIUM=/path/to/chromium)")
    for module, extra in (("jupyterlab", "jupyterlab>=4"), ("ipywidgets", "ipywidgets")):
        try:
            __import__(module)
        except ImportError:
            problems.append(f"{module} is missing (pip install '{extra}')")
    return "; ".join(problems) or None


# ---------------------------------------------------------------------------------------------- the browser
@dataclass
class Guard:
    """What the page did that it must not: requests that would have left localhost, console errors, page errors."""

    outside: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """One line per kind of problem (empty: all clean)."""
        out = []
        if self.outside:
            out.append(f"{len(self.outside)} request(s) would have left localhost: {sorted(set(self.outside))[:5]}")
        if self.console_errors:
            out.append(f"{len(self.console_errors)} console error(s): {self.console_errors[:5]}")
        return out


def _first_line(text: str) -> str:
    """A message's first line, at most 300 characters (a console error's stack trace is left out)."""
    return (text.strip().splitlines() or [""])[0][:300]


def _is_outside(url: str) -> bool:
    """Whether a request would leave this machine (in-page data: and blob: URLs do not)."""
    parsed = urlparse(url)
    local = parsed.scheme in ("data", "blob", "about", "chrome", "chrome-error") or parsed.hostname in LOCAL_HOSTS
    return not local


@contextlib.contextmanager
def browser(headless: bool = True) -> Iterator:
    """Headless Chromium (the system's, via Playwright), closed at the end."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=headless)
        try:
            yield chromium
        finally:
            chromium.close()


def guarded_page(chromium, guard: Guard, width: int = 1200, height: int = 1000):
    """A page in a fresh context where every non-localhost request is refused and recorded, and console errors kept."""
    context = chromium.new_context(viewport={"width": width, "height": height}, service_workers="block")

    def route(r) -> None:
        if _is_outside(r.request.url):
            guard.outside.append(r.request.url)
            r.abort()
        else:
            r.continue_()

    context.route("**/*", route)
    page = context.new_page()
    page.on("websocket", lambda ws: guard.outside.append(ws.url) if _is_outside(ws.url) else None)
    page.on(
        "console",
        lambda m: (
            guard.console_errors.append(f"{_first_line(m.text)} @ {m.location.get('url', '')}")
            if m.type == "error"
            else None
        ),
    )
    page.on("pageerror", lambda e: guard.console_errors.append(f"uncaught: {_first_line(str(e))}"))
    return page
