"""Keep every notebook's Colab setup cell and the README's Colab badges in step with pyproject.toml.

    python -m tools.colab          # rewrite the notebooks' setup cells; list README badges to fix by hand
    python -m tools.colab --check  # exit 1 if anything is out of step (tests/test_repo.py runs this)

Both folders are covered: solutions/ (the sources, solutions editions) and notebooks/. A student edition
built from a source (tools/editions.py) is fixed through its source: rewrite, then `make editions`.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
MARKER = "# Colab setup"


def repo_url() -> str:
    """The repository URL, kept in one place: pyproject.toml's [project.urls] Repository."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]


def setup_cell_source(url: str) -> str:
    """The first code cell of every notebook: installs the helpers on Colab (never torch), nothing elsewhere."""
    return (
        f"{MARKER}: on Colab, install the course helpers from the repository (Colab already has torch,\n"
        "# which is never reinstalled). Anywhere else this cell does nothing: `make lab` installed them.\n"
        "import subprocess\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        '    subprocess.run([sys.executable, "-m", "pip", "install", "-q",\n'
        f'                    "dl-course-helpers @ git+{url}"], check=True)'
    )


def colab_link(url: str, notebook: Path) -> str:
    """The Colab address of a notebook in notebooks/ or solutions/ of the repository's main branch."""
    path = url.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{path}/blob/main/{notebook.parent.name}/{notebook.name}"


def badge(url: str, notebook: Path) -> str:
    """Markdown for an 'Open in Colab' badge of one notebook."""
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_link(url, notebook)})"


def sync(check: bool) -> list[str]:
    """Rewrite (or, with check, only report) the notebooks and README that disagree with the URL."""
    url, problems = repo_url(), []
    sources = {p.name for p in (ROOT / "solutions").glob("*.ipynb")}
    for path in sorted((ROOT / "solutions").glob("*.ipynb")) + sorted((ROOT / "notebooks").glob("*.ipynb")):
        built = path.parent.name == "notebooks" and path.name in sources  # fixed via its source + make editions
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        want = setup_cell_source(url)
        if code and code[0].source.startswith(MARKER):
            if code[0].source == want:
                continue
            code[0].source = want
        else:
            first_code = nb.cells.index(code[0]) if code else len(nb.cells)
            nb.cells.insert(first_code, nbformat.v4.new_code_cell(want))
        problems.append(
            f"{path.parent.name}/{path.name}: Colab setup cell out of date"
            + (" (fix its source solutions/, then `make editions`)" if built else "")
        )
        if not check and not built:
            nbformat.write(nb, path)
    readme = ROOT / "README.md"
    text = readme.read_text()
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        if badge(url, path) not in text:
            problems.append(f"README.md: no Colab badge for {path.name} with {url}")
    stale = re.findall(r"colab\.research\.google\.com/github/([^)\s]+)/blob", text)
    want_path = url.removeprefix("https://github.com/")
    problems += [f"README.md: badge points at {p}" for p in set(stale) if p != want_path]
    return problems


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="report, do not write")
    args = parser.parse_args()
    problems = sync(args.check)
    for p in problems:
        fixed = not args.check and not p.startswith("README.md") and "make editions" not in p  # README by hand
        print(("fixed: " if fixed else "out of step: ") + p)
    if args.check and problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
