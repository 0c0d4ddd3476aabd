"""Look at the built course website in a real browser (headless Chromium) and screenshot it for the docs.

Serves _build/site on localhost, opens it in Chromium with every request to another host refused (the
site must work offline), and checks what a reader would see: the home page is the README with the course
map in the sidebar; every notebook page loads all its images (PNG and SVG outputs), renders its maths
with the bundled MathJax, folds its answers away and has an "Open in Colab" link to that notebook;
notebook 04 shows its static SVG attention views; the search page finds "attention" in notebook 04.
Exit 1 if any check fails.

    make site                                   # build first
    apt-get install -y chromium                 # Debian/Ubuntu: the browser
    pip install -e ".[docs]"                    # Playwright's Python package; no `playwright install`
    python -m tools.check_site                # writes docs/site_screenshot.png
    # options: --site _build/site --out docs/site_screenshot.png --chromium /usr/bin/chromium
"""

from __future__ import annotations

import argparse
import functools
import http.server
import io
import sys
import threading
import tomllib
from pathlib import Path
from urllib.parse import urlparse

from tools.chromium import CHROMIUM_ARGS, chromium_path

ROOT = Path(__file__).resolve().parent.parent


class Report:
    """One line per check, ✅ or ❌; failed() says whether any check failed."""

    def __init__(self) -> None:
        self.failures = 0

    def check(self, ok: bool, what: str, detail: str = "") -> bool:
        """Print one check's line."""
        self.failures += not ok
        print(("✅ " if ok else "❌ ") + what + (f" ({detail})" if detail else ""))
        return ok


def serve(site: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """A static file server for the built site on a free localhost port, in a background thread."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            """No line per request."""

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def expected_pages() -> list[str]:
    """The pages the sidebar must list: every notebook, every solution, the instructor guide if there is one."""
    pages = [
        p.relative_to(ROOT).with_suffix("").as_posix()
        for folder in ("notebooks", "solutions")
        for p in sorted((ROOT / folder).glob("*.ipynb"))
    ]
    return pages + (["docs/teaching"] if (ROOT / "docs" / "teaching.md").is_file() else [])


def check_pages(page, base: str, report: Report) -> None:
    """The home page, then every notebook page: images loaded, maths rendered, the Colab link right."""
    page.goto(f"{base}/index.html")
    page.wait_for_url("**/README.html")
    report.check(
        page.title().startswith("Deep learning, hands on"), "index.html opens the README as the home page", page.title()
    )
    sidebar = page.eval_on_selector_all("nav.bd-docs-nav a.reference", "els => els.map(e => e.getAttribute('href'))")
    missing = [p for p in expected_pages() if f"{p}.html" not in sidebar]
    report.check(
        not missing,
        f"the sidebar lists all {len(expected_pages())} pages of the course map",
        f"missing {missing}" if missing else "",
    )
    repo = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
    for name in (p for p in expected_pages() if not p.startswith("docs/")):
        page.goto(f"{base}/{name}.html")
        page.wait_for_load_state("networkidle")
        broken = page.eval_on_selector_all(
            "article img", "els => els.filter(e => !(e.complete && e.naturalWidth > 0)).map(e => e.getAttribute('src'))"
        )
        images = page.eval_on_selector_all("article img", "els => els.length")
        report.check(not broken, f"{name}: all {images} images load", f"broken: {broken}" if broken else "")
        raw_math = page.eval_on_selector_all(
            "article .math", "els => els.filter(e => !e.querySelector('mjx-container')).length"
        )
        maths = page.eval_on_selector_all("article mjx-container", "els => els.length")
        report.check(
            raw_math == 0,
            f"{name}: maths rendered by the bundled MathJax ({maths} formulas)",
            f"{raw_math} left as raw TeX" if raw_math else "",
        )
        folded = page.eval_on_selector_all("article details", "els => [els.length, els.filter(e => e.open).length]")
        report.check(folded[1] == 0, f"{name}: the {folded[0]} answers of 'Check your understanding' are folded")
        want = f"https://colab.research.google.com/github/{repo.removeprefix('https://github.com/')}/blob/main/{name}.ipynb"
        links = page.eval_on_selector_all("a.course-colab, a.course-colab-header", "els => els.map(e => e.href)")
        report.check(
            len(links) == 2 and set(links) == {want}, f"{name}: 'Open in Colab' under the title and in the header", want
        )
    page.goto(f"{base}/notebooks/04_attention.html")
    page.wait_for_load_state("networkidle")
    svgs = page.eval_on_selector_all("article img[src$='.svg']", "els => els.filter(e => e.naturalWidth > 0).length")
    report.check(svgs >= 1, "04: the static attention views (SVG outputs) are shown", f"{svgs} SVG images")


def check_search(page, base: str, report: Report) -> None:
    """The search page lists results for 'attention', notebook 04 among them."""
    page.goto(f"{base}/search.html?q=attention")
    page.wait_for_selector("#search-results ul.search li", timeout=15000)
    hits = page.eval_on_selector_all("#search-results ul.search li a", "els => els.map(e => e.getAttribute('href'))")
    report.check(
        any("04_attention" in h for h in hits), "search for 'attention' lists notebook 04", f"{len(hits)} results"
    )


def screenshot(page, base: str, out: Path) -> None:
    """Notebook 02 at its first plot: sidebar course map, the plot, the Colab badge in the header."""
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.goto(f"{base}/notebooks/02_cifar10_cnn.html")
    page.wait_for_load_state("networkidle")
    page.evaluate("document.querySelector('section#what-the-images-look-like').scrollIntoView()")
    page.evaluate("window.scrollBy(0, 15)")  # the title just below the sticky page header
    page.wait_for_timeout(300)
    png = page.screenshot()
    from PIL import Image  # a dependency of the course (pillow)

    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    image.save(out, optimize=True)
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out} ({out.stat().st_size // 1024} kB)")


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--site", type=Path, default=ROOT / "_build" / "site")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "site_screenshot.png")
    parser.add_argument("--chromium", default=chromium_path(), help="default: $CHROMIUM, else chromium on the PATH")
    args = parser.parse_args()
    if not (args.site / "README.html").is_file():
        sys.exit(f"no built site in {args.site}: run `make site` first")
    if not args.chromium:
        sys.exit("no Chromium found: install it (apt-get install -y chromium) or pass --chromium PATH")
    from playwright.sync_api import sync_playwright

    server, base = serve(args.site)
    report, outside, failed = Report(), [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.route(
            lambda url: urlparse(url).hostname != "127.0.0.1",
            lambda route: (outside.append(route.request.url), route.abort()),
        )
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
        check_pages(page, base, report)
        check_search(page, base, report)
        screenshot(page, base, args.out.resolve())
        browser.close()
    server.shutdown()
    report.check(not outside, "no request left localhost: the site works offline", ", ".join(sorted(set(outside))[:5]))
    failed = [u for u in failed if u not in outside]
    report.check(not failed, "no request failed (404s, aborted loads)", ", ".join(sorted(set(failed))[:5]))
    print("all checks passed" if not report.failures else f"{report.failures} checks failed")
    sys.exit(1 if report.failures else 0)


if __name__ == "__main__":
    main()
