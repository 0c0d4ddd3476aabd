"""Build each student edition notebooks/NN_name.ipynb from its source solutions/NN_name.ipynb.

    python -m tools.editions          # (re)write the student editions (`make editions`)
    python -m tools.editions --check  # exit 1 if a committed student edition is stale (tests/test_editions.py)

The source is the solutions (instructor) edition. In the student edition:
- the lines between `### BEGIN SOLUTION` and `### END SOLUTION` (markers included) become
  `# YOUR CODE HERE` and `pass`, indented like the `### BEGIN SOLUTION` line;
- cells tagged `solution` are dropped;
- the outputs of cells that held a solution region, and of cells tagged `check`, are cleared;
- cell ids, all other cells and their stored outputs are kept; execution metadata and widget state are
  dropped, and so is the first frame a progress-bar widget leaves as text ("0%|", "0 examples") (in both
  editions: the source is cleaned too when written by this script; so is a notebook with no source, 00);
- a generated markdown cell at the end of the `## Exercises` section points at the solutions notebook
  (a relative link and an "Open in Colab" link).
The tops of the two editions differ by a markdown cell tagged `solution` after the title (the source's
"Solutions edition" banner); the title cell, course map and Colab setup cell are shared.

Ours, not nbgrader's ClearSolutions: nbgrader pins jupyter-client<9 and notebook<8 and brings SQLAlchemy, alembic
and a server extension into every contributor's install, for what is here one small pass over the cells; the
markers are nbgrader's, so an instructor can still grade these notebooks with it.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat

from tools import colab

ROOT = Path(__file__).resolve().parent.parent
SOURCES, EDITIONS = ROOT / "solutions", ROOT / "notebooks"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
POINTER_ID = "solutions-pointer"
EXERCISES_HEADING = re.compile(r"^##\s+Exercises\b", re.MULTILINE)


class EditionError(ValueError):
    """A source notebook that cannot be turned into a student edition (e.g. unmatched solution markers)."""


def strip_regions(source: str, where: str = "cell") -> tuple[str, bool]:
    """Replace each BEGIN/END SOLUTION region by `# YOUR CODE HERE` + `pass`; also say if there was one."""
    out: list[str] = []
    indent: str | None = None
    found = False
    for number, line in enumerate(source.split("\n"), 1):
        marker = line.strip()
        if marker == BEGIN:
            if indent is not None:
                raise EditionError(f"{where}, line {number}: {BEGIN} inside another region; close it with {END}")
            indent, found = line[: len(line) - len(line.lstrip())], True
            out += [f"{indent}# YOUR CODE HERE", f"{indent}pass"]
        elif marker == END:
            if indent is None:
                raise EditionError(f"{where}, line {number}: {END} without a {BEGIN} before it")
            indent = None
        elif indent is None:
            out.append(line)
    if indent is not None:
        raise EditionError(f"{where}: {BEGIN} is never closed; add a line {END}")
    return "\n".join(out), found


# The text a tqdm widget stores is its first frame ("epoch 1/3:   0%|          | 0/79", "Generating train split:
# 0 examples"): a finished run would show an unfinished bar on GitHub and the site. fit prints each epoch's line anyway.
PROGRESS_RESIDUE = re.compile(r"^[^\n]*(\d+%\|[^\n]*\| *\d+/\d+ \[|: \d+ examples \[)")


def is_progress_residue(output: nbformat.NotebookNode) -> bool:
    """True for what a progress-bar widget leaves in a stored notebook: a display whose text is a bar's frame."""
    text = "".join(output.get("data", {}).get("text/plain", ""))
    return output.get("output_type") == "display_data" and bool(PROGRESS_RESIDUE.match(text))


def clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop what must never be stored: execution metadata, widget state, progress-bar residue (in place; returned)."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not is_progress_residue(o)]
            for output in cell.outputs:
                output.get("data", {}).pop("application/vnd.jupyter.widget-view+json", None)
                output.get("metadata", {}).pop("execution", None)
    return nb


def pointer_cell(name: str) -> nbformat.NotebookNode:
    """The student edition's closing cell of the exercises: where the solutions are, with a Colab link."""
    link = colab.colab_link(colab.repo_url(), SOURCES / name)
    text = (
        f"**Solutions:** [solutions/{name}](../solutions/{name}) — open it after you have tried "
        f"([open the solutions in Colab]({link})). "
        "It holds the full code, its outputs and a discussion of each exercise; the check cells above "
        "run the same checks on it in CI."
    )
    cell = nbformat.v4.new_markdown_cell(text)
    cell.id = POINTER_ID
    return cell


def student_edition(source: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """The student edition of a source notebook (a new object; the source is not changed)."""
    nb = clean(copy.deepcopy(source))
    cells = []
    for index, cell in enumerate(nb.cells):
        tags = cell.metadata.get("tags", [])
        if "solution" in tags:
            continue
        if cell.cell_type == "code":
            cell.source, had_region = strip_regions(cell.source, f"{name}, cell {index} (id {cell.get('id')})")
            if had_region or "check" in tags:
                cell.outputs, cell.execution_count = [], None
        elif BEGIN in cell.source:
            raise EditionError(
                f"{name}, cell {index}: solution markers only work in code cells; "
                "tag a markdown cell `solution` instead"
            )
        cells.append(cell)
    nb.cells = _insert_pointer(cells, name)
    return nb


def _insert_pointer(cells: list, name: str) -> list:
    """Put the solutions pointer before the first level-2 heading after `## Exercises` (or at the end)."""
    cells = [c for c in cells if c.get("id") != POINTER_ID]
    start = next(
        (i for i, c in enumerate(cells) if c.cell_type == "markdown" and EXERCISES_HEADING.search(c.source)), None
    )
    if start is None:
        return cells
    end = next(
        (
            i
            for i in range(start + 1, len(cells))
            if cells[i].cell_type == "markdown" and cells[i].source.lstrip().startswith("## ")
        ),
        len(cells),
    )
    return cells[:end] + [pointer_cell(name)] + cells[end:]


def render(nb: nbformat.NotebookNode) -> str:
    """The exact text nbformat writes for a notebook (deterministic: same input, same bytes)."""
    return nbformat.writes(nb) + "\n"


def build(check: bool, names: list[str] | None = None) -> list[str]:
    """Write (or, with check, only compare) the student editions (all, or those named); return the stale ones."""
    stale = []
    for path in sorted(SOURCES.glob("*.ipynb")):
        if names and not any(path.name.startswith(n) for n in names):
            continue
        source = nbformat.read(path, as_version=4)
        text = render(student_edition(source, path.name))
        if not check and render(clean(source)) != path.read_text():
            path.write_text(render(source))  # nbconvert --execute stores timings: drop them from the source
        target = EDITIONS / path.name
        if target.exists() and target.read_text() == text:
            continue
        stale.append(path.name)
        if not check:
            target.write_text(text)
    for path in sorted(EDITIONS.glob("*.ipynb")):  # a lesson with no solutions edition (00) is cleaned in place
        if (SOURCES / path.name).exists() or (names and not any(path.name.startswith(n) for n in names)):
            continue
        text = render(clean(nbformat.read(path, as_version=4)))
        if path.read_text() != text:
            stale.append(path.name)
            if not check:
                path.write_text(text)
    return stale


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="report stale student editions, write nothing")
    parser.add_argument("names", nargs="*", help="only these notebooks (e.g. 02 or 02_cifar10_cnn.ipynb)")
    args = parser.parse_args()
    stale = build(args.check, args.names)
    for name in stale:
        origin = f"from solutions/{name}" if (SOURCES / name).exists() else "cleaned in place: no solutions edition"
        print(("stale: " if args.check else "built: ") + f"notebooks/{name} ({origin})")
    if args.check and stale:
        print("Run `make editions` and commit the student editions.", file=sys.stderr)
        sys.exit(1)
    if not stale:
        print(f"all {len(list(SOURCES.glob('*.ipynb')))} student editions are up to date")


if __name__ == "__main__":
    main()
