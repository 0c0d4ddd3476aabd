"""Check notebook 04's attention explorer in a real browser and screenshot it for the docs.

Starts JupyterLab on localhost (scripts/lab_browser.py: a free port, a random token, throwaway settings), opens a
small generated notebook that builds the same widget as notebook 04 (diagrams.nb04.AttentionExplorer),
runs it in headless Chromium, moves the layer slider in the browser like a user would (keyboard on the
slider's handle), waits until the head view has been redrawn for the new layer by the kernel, and saves a
screenshot of the widget. It fails (exit 1) if the widget does not render or does not follow the slider.

Run it from the repository root (it needs nothing from the network):

    apt-get install -y chromium          # Debian/Ubuntu: the browser (or set CHROMIUM=/path/to/chromium)
    pip install -e ".[docs]"             # Playwright's Python package; no `playwright install` needed
    COURSE_DATA_DIR=/path/to/data python scripts/screenshot_explorer.py
    # options: --out docs/attention_explorer.png --layer 2 --head 9

It uses the fine-tuned model of notebook 03 when runs/bert-imdb exists, else the pretrained BERT, exactly
as the notebook does. Output: docs/attention_explorer.png (about 1000 px wide).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import lab_browser  # scripts/lab_browser.py, next to this file: the JupyterLab server and the browser

ROOT = lab_browser.ROOT
SENTENCE = "The movie was far too long."
PAIR = "Still, the movie never bored me."


def explorer_notebook(layer: int, head: int) -> dict:
    """A two-cell notebook that builds the explorer exactly as notebook 04 does, at the first layer."""
    source = (
        "import helpers\n"
        "from diagrams import nb04 as views\n"
        "from helpers import attention as attn_lib\n"
        "model, tokenizer, kind = attn_lib.load_attention_model()\n"
        f"explorer = views.AttentionExplorer(model, tokenizer, {SENTENCE!r}, {PAIR!r}, layer=0, head={head})\n"
        "explorer.widget"
    )
    cell = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source}
    intro = {
        "cell_type": "markdown",
        "metadata": {},
        "source": f"Notebook 04's attention explorer; the screenshot script moves the layer slider to {layer}.",
    }
    return {
        "cells": [intro, cell],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def screenshot(page, out: Path, layer: int, timeout_ms: int) -> None:
    """Run the notebook in the page, move the layer slider to `layer`, wait for the redraw, save the PNG."""
    page.wait_for_selector(".jp-Notebook", timeout=timeout_ms)
    page.wait_for_function(
        "window.jupyterapp !== undefined && document.querySelector('.jp-Notebook') !== null", timeout=timeout_ms
    )
    # wait until the kernel is ready, then run every cell
    page.wait_for_function(
        "(() => { const w = window.jupyterapp.shell.currentWidget;"
        " return w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel &&"
        " w.sessionContext.session.kernel.status === 'idle'; })()",
        timeout=timeout_ms,
    )
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    widget = page.wait_for_selector(".attention-explorer svg", timeout=timeout_ms).evaluate_handle(
        "el => el.closest('.attention-explorer')"
    )
    page.wait_for_function(
        "document.querySelector('.attention-explorer svg text').textContent.startsWith('Layer 0')", timeout=timeout_ms
    )
    # move the slider as a user would: focus its handle, press the right arrow key once per layer
    handle = page.locator(".attention-explorer .widget-slider .noUi-handle").first
    handle.focus()
    for _ in range(layer):
        handle.press("ArrowRight")
    page.wait_for_function(
        f"document.querySelector('.attention-explorer svg text').textContent.startsWith('Layer {layer},')",
        timeout=timeout_ms,
    )
    page.wait_for_timeout(300)  # let the browser paint the new SVG
    page.locator(".jp-Notebook").evaluate("el => el.scrollTop = 0")
    widget.as_element().scroll_into_view_if_needed()
    out.parent.mkdir(parents=True, exist_ok=True)
    widget.as_element().screenshot(path=str(out))
    title = page.evaluate("document.querySelector('.attention-explorer svg text').textContent")
    print(
        f"screenshot of the explorer after moving the slider ({title}) saved to {out.relative_to(ROOT)}"
        if out.is_relative_to(ROOT)
        else f"saved to {out}"
    )


def main(argv: list[str] | None = None) -> int:
    """Command line: start JupyterLab (lab_browser.Lab), drive it with Chromium, save the screenshot, stop all."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "attention_explorer.png")
    parser.add_argument("--layer", type=int, default=2, help="the layer the slider is moved to (from 0)")
    parser.add_argument("--head", type=int, default=9, help="the head shown (-1: all heads)")
    parser.add_argument("--timeout", type=float, default=180, help="seconds to wait for each step")
    args = parser.parse_args(argv)
    if reason := lab_browser.missing():
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="explorer-shot-") as tmp:
        (Path(tmp) / "explorer.ipynb").write_text(json.dumps(explorer_notebook(args.layer, args.head)))
        with lab_browser.Lab(Path(tmp)) as lab, lab_browser.browser() as chromium:
            page = chromium.new_page(viewport={"width": 1100, "height": 1000})
            page.goto(lab.notebook_url("explorer.ipynb"))
            try:
                screenshot(page, args.out.resolve(), args.layer, int(args.timeout * 1000))
            except Exception:
                failed = Path(tempfile.gettempdir()) / "attention_explorer_FAILED.png"
                page.screenshot(path=str(failed))
                print(
                    f"The explorer check failed. A screenshot of the whole page: {failed}\n"
                    f"The end of JupyterLab's log:\n{lab.log_tail()}",
                    file=sys.stderr,
                )
                raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
