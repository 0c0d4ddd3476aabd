"""Drive the course's interactives in JupyterLab in headless Chromium, offline: the harness of issue 23.

Used by tests/test_browser.py (`make test-browser`) and scripts/screenshot_interactives.py. For one notebook it
opens JupyterLab's page, runs the cells up to and including its last cell tagged `interactive` (cell metadata tags),
and for each such cell waits until its widgets render, moves each control as a user would (a slider's handle: the
arrow keys; a dropdown: another option; toggle/radio buttons, checkboxes, buttons: a click) and checks that the
picture the cell shows (its images, SVGs and canvases, compared pixel by pixel) changed. Every request that would
leave localhost is refused and recorded, and so are the page's console errors.

What it needs (nothing from the network):

    apt-get install -y chromium          # Debian/Ubuntu: the browser (Playwright's own download is not used)
    pip install -e ".[docs]"             # Playwright's Python package; no `playwright install`

JupyterLab runs on a free localhost port with a random token, in a throwaway folder (a copy of the course's
notebooks, so the checkout is never written to), with its own settings, workspaces, runtime and IPython folders,
and is shut down with its kernels at the end, whatever happened.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
TAG = "interactive"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage"]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
COURSE_PARTS = ("pyproject.toml", "helpers", "exercises", "diagrams", "notebooks", "solutions", "docs")
"""What a course copy holds: the notebooks with what they link to, and what makes it a checkout (helpers.paths)."""
INSTALL_HINT = ('Chromium: `apt-get install -y chromium` (Debian/Ubuntu; or set CHROMIUM=/path/to/chromium); '
                'Playwright: `pip install -e ".[docs]"` (no `playwright install` needed)')


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


# ----------------------------------------------------------------------------------------------- the notebooks
def interactive_cells(notebook: Path) -> list[int]:
    """The indices of a notebook's cells tagged `interactive`."""
    cells = json.loads(notebook.read_text())["cells"]
    return [i for i, c in enumerate(cells) if TAG in c.get("metadata", {}).get("tags", [])]


def notebooks_with_interactives(folder: Path = ROOT / "notebooks") -> list[Path]:
    """The student editions that have at least one cell tagged `interactive`."""
    return [p for p in sorted(folder.glob("*.ipynb")) if interactive_cells(p)]


def copy_course(dest: Path) -> Path:
    """A copy of the course's notebooks and what they need in `dest` (the checkout is never written to)."""
    dest.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__")
    for part in COURSE_PARTS:
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, dest / part, ignore=ignore, dirs_exist_ok=True)
        elif source.is_file():
            shutil.copy2(source, dest / part)
    return dest


def write_notebook(path: Path, cells: list[tuple[str, str, list[str]]]) -> Path:
    """Write a notebook of (cell type, source, tags) cells, with the python3 kernel."""
    nb_cells = []
    for kind, source, tags in cells:
        cell = {"cell_type": kind, "metadata": {"tags": tags} if tags else {}, "source": source}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        nb_cells.append(cell)
    kernelspec = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cells": nb_cells, "metadata": {"kernelspec": kernelspec}, "nbformat": 4,
                                "nbformat_minor": 5}, indent=1))
    return path


# ---------------------------------------------------------------------------------------------- the server
def free_port() -> int:
    """A TCP port on localhost that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lab_settings(folder: Path) -> None:
    """JupyterLab user settings for a robot: no news or update checks (network), no autosave, every cell in the DOM."""
    settings = {
        ("apputils-extension", "notification"): {"fetchNews": "false", "checkForUpdates": False,
                                                 "doNotDisturbMode": True},
        ("docmanager-extension", "plugin"): {"autosave": False},
        ("notebook-extension", "tracker"): {"windowingMode": "none"},
    }
    for (plugin, name), values in settings.items():
        target = folder / "@jupyterlab" / plugin / f"{name}.jupyterlab-settings"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))


def kernel_spec(folder: Path, python: str) -> None:
    """The `python3` kernel spec in a data folder of our own, running `python` (e.g. .venv-min's, for ipywidgets 7)."""
    spec = folder / "kernels" / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel)", "language": "python"}))


class Lab:
    """JupyterLab serving `root` on a free localhost port with a random token; a context manager that always stops it.

    `env` is added to the server's (and so the kernels') environment; `kernel_python` runs the kernels with another
    Python. Everything JupyterLab writes besides the notebooks' folder goes into a temporary folder.
    """

    def __init__(self, root: Path, env: dict[str, str] | None = None, kernel_python: str | None = None,
                 timeout: float = 120.0) -> None:
        self.root, self.extra_env, self.kernel_python, self.timeout = Path(root), dict(env or {}), kernel_python, timeout
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="lab-browser-")
        self.home = Path(self._tmp.name)
        self.log_path = self.home / "jupyterlab.log"

    def notebook_url(self, relative: str) -> str:
        """The page that opens one notebook (a path relative to the served root)."""
        return f"{self.url}/lab/tree/{relative}?token={self.token}"

    def log_tail(self, chars: int = 3000) -> str:
        """The end of JupyterLab's log, for a failure's message."""
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def __enter__(self) -> Lab:
        lab_settings(self.home / "settings")
        env = dict(os.environ, **self.extra_env, JUPYTERLAB_SETTINGS_DIR=str(self.home / "settings"),
                   JUPYTERLAB_WORKSPACES_DIR=str(self.home / "workspaces"), JUPYTER_RUNTIME_DIR=str(self.home / "rt"),
                   JUPYTER_CONFIG_DIR=str(self.home / "config"), IPYTHONDIR=str(self.home / "ipython"),
                   PYDEVD_DISABLE_FILE_VALIDATION="1")
        if self.kernel_python:
            kernel_spec(self.home / "data", self.kernel_python)
            env["JUPYTER_PATH"] = str(self.home / "data")
        command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
                   "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
                   f"--ServerApp.root_dir={self.root}", "--LabApp.expose_app_in_browser=True",
                   "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        if hasattr(os, "getuid") and os.getuid() == 0:
            command.append("--allow-root")  # JupyterLab refuses root (containers) unless told
        with open(self.log_path, "w") as log:  # the child keeps its own handle
            self.process = subprocess.Popen(command, env=env, cwd=self.root, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            self._wait_until_up()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited ({self.process.returncode}):\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=3):
                    return
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"JupyterLab did not answer within {self.timeout:.0f} s:\n{self.log_tail()}")

    def _children(self) -> list:
        """The server's descendants (its kernels run in sessions of their own), to be sure they end too."""
        try:
            import psutil  # ipykernel's dependency

            return psutil.Process(self.process.pid).children(recursive=True)
        except Exception:
            return []

    def stop(self) -> None:
        """Shut down the kernels and the server (the API first, then SIGTERM, then SIGKILL); remove the temp folder."""
        if self.process is not None and self.process.poll() is None:
            children = self._children()
            request = urllib.request.Request(f"{self.url}/api/shutdown", method="POST",
                                             headers={"Authorization": f"token {self.token}"})
            with contextlib.suppress(OSError):
                urllib.request.urlopen(request, timeout=10).close()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGTERM)
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait(timeout=10)
            for child in children:  # kernels left behind by a server that did not shut down cleanly
                with contextlib.suppress(Exception):
                    if child.is_running():
                        child.kill()
        self._tmp.cleanup()


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


def _is_outside(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.scheme not in ("data", "blob", "about", "chrome", "chrome-error") and parsed.hostname not in LOCAL_HOSTS


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
    page.on("console", lambda m: guard.console_errors.append(f"{m.text} @ {m.location.get('url', '')}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: guard.console_errors.append(f"uncaught: {e}"))
    return page
