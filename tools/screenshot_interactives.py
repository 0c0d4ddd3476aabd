"""Screenshot every interactive of the course for the docs (issue 23): docs/interactive_NN.png.

For each student edition (notebooks/NN_name.ipynb) with cells tagged `interactive`, runs the notebook in JupyterLab in
headless Chromium, offline (the harness of tests/test_browser.py, tools/lab_browser.py), moves the cell's first
control, and saves the cell's output (its controls and picture) as docs/interactive_NN.png; a notebook's second and
later interactives go to docs/interactive_NN_2.png, ... Every control is checked on the way, as the test does: the
script exits 1, naming what failed, if a control does not change the picture, a cell raises, the page logs a console
error or a request would leave localhost.

    apt-get install -y chromium          # Debian/Ubuntu: the browser (or set CHROMIUM=/path/to/chromium)
    pip install -e ".[docs]"             # Playwright's Python package; no `playwright install` needed
    COURSE_DATA_DIR=/path/to/data python -m tools.screenshot_interactives
    # options: --profile cpu (default smoke), --out-dir docs, NOTEBOOK ... (default: every one with interactives;
    #          a notebook outside the course is run from a copy of its own)
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tools import lab_browser

ROOT = lab_browser.ROOT


def shot_names(notebook: Path, cells: list[int], out_dir: Path) -> dict[int, Path]:
    """docs/interactive_NN.png for a notebook's first interactive cell, interactive_NN_2.png for its second, ..."""
    number = notebook.stem.split("_")[0] if notebook.stem[:2].isdigit() else notebook.stem
    return {cell: out_dir / f"interactive_{number}{'' if k == 0 else f'_{k + 1}'}.png" for k, cell in enumerate(cells)}


def main(argv: list[str] | None = None) -> int:
    """Command line: start JupyterLab over a copy of the course, check and screenshot each interactive, stop."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebooks/*.ipynb with interactives")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "docs")
    parser.add_argument("--profile", default=os.environ.get("COURSE_PROFILE", "smoke"), choices=["smoke", "cpu", "gpu"])
    parser.add_argument(
        "--kernel-python",
        default=os.environ.get("COURSE_KERNEL_PYTHON"),
        help="run the kernels with this Python (e.g. .venv-min/bin/python)",
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds to run a notebook up to its interactives")
    args = parser.parse_args(argv)
    if reason := lab_browser.missing():
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    notebooks = [p.resolve() for p in args.notebooks] or lab_browser.notebooks_with_interactives(ROOT / "notebooks")
    if not notebooks:
        print("no notebook has a cell tagged 'interactive': nothing to screenshot")
        return 0
    start, failed = time.monotonic(), 0
    with tempfile.TemporaryDirectory(prefix="interactive-shots-") as tmp:
        root = lab_browser.copy_course(Path(tmp))
        relatives = []
        for notebook in notebooks:
            if notebook.is_relative_to(ROOT) and (root / notebook.relative_to(ROOT)).is_file():
                relatives.append(notebook.relative_to(ROOT).as_posix())
            else:  # a notebook outside the course: beside the course's notebooks, in the copy
                shutil.copy2(notebook, root / "notebooks" / notebook.name)
                relatives.append(f"notebooks/{notebook.name}")
        env = {"COURSE_PROFILE": args.profile, "COURSE_DATA_DIR": os.environ.get("COURSE_DATA_DIR", str(ROOT / "data"))}
        with lab_browser.Lab(root, env=env, kernel_python=args.kernel_python) as lab, lab_browser.browser() as chromium:
            for relative in relatives:
                cells = lab_browser.interactive_cells(root / relative)
                shots = shot_names(Path(relative), cells, args.out_dir.resolve())
                result = lab_browser.check_notebook(
                    chromium,
                    lab,
                    relative,
                    run_timeout=args.timeout,
                    render_timeout=180,
                    change_timeout=90,
                    screenshots=shots,
                    viewport=(1200, 1600),
                )
                print(result.summary())
                for cell in result.cells:
                    if cell.screenshot and cell.screenshot.exists():
                        shot = cell.screenshot
                        where = shot.relative_to(ROOT) if shot.is_relative_to(ROOT) else shot
                        print(f"  wrote {where} ({shot.stat().st_size // 1024} kB)")
                failed += bool(result.problems())
    print(f"{len(notebooks) - failed} of {len(notebooks)} notebooks passed in {time.monotonic() - start:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
