"""Keep every notebook's Colab setup cell, its GPU request and the README's Colab and Kaggle badges in step.

    python -m tools.colab          # rewrite the notebooks' setup cells and metadata; list README badges to fix
    python -m tools.colab --check  # exit 1 if anything is out of step (tests/test_repo.py runs this)

The repository URL comes from pyproject.toml. The notebooks that need a GPU (GPU_NOTEBOOKS) ask Colab for a T4 in
their metadata (`"accelerator": "GPU"`, `"colab": {"gpuType": "T4"}`), so a badge opens them on a GPU runtime;
the others ask for nothing (Colab's default, a CPU).

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
GPU_NOTEBOOKS = ("02", "03", "05")
"""The lessons whose gpu profile needs a GPU to finish in minutes (04 runs in under a minute on a CPU)."""
GPU_METADATA = {"accelerator": "GPU", "colab": {"gpuType": "T4", "provenance": []}}
"""What Colab stores in a notebook saved from a T4 runtime, and reads to open one."""
KAGGLE_BADGE = "https://kaggle.com/static/images/open-in-kaggle.svg"


def repo_url() -> str:
    """The repository URL, kept in one place: pyproject.toml's [project.urls] Repository."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]


def setup_cell_source(url: str) -> str:
    """The first code cell of every notebook: installs the helpers on Colab or Kaggle (never torch), else nothing."""
    return (
        f"{MARKER}: on Colab or Kaggle, install the course helpers from the repository (both already have\n"
        "# torch, which is never reinstalled). Anywhere else this cell does nothing: `make lab` installed them.\n"
        "import os\n"
        "import subprocess\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules or "KAGGLE_KERNEL_RUN_TYPE" in os.environ:  # Kaggle: turn Internet on\n'
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


def kaggle_link(url: str, notebook: Path) -> str:
    """Kaggle's import address of a notebook of the repository's main branch (its GitHub blob URL as src)."""
    return f"https://kaggle.com/kernels/welcome?src={url}/blob/main/{notebook.parent.name}/{notebook.name}"


def kaggle_badge(url: str, notebook: Path) -> str:
    """Markdown for an 'Open in Kaggle' badge of one notebook, shown beside its Colab badge."""
    return f"[![Open In Kaggle]({KAGGLE_BADGE})]({kaggle_link(url, notebook)})"


def wants_gpu(notebook: Path) -> bool:
    """True for a lesson that asks Colab for a GPU (GPU_NOTEBOOKS)."""
    return notebook.name[:2] in GPU_NOTEBOOKS


def metadata_problems(nb: nbformat.NotebookNode, notebook: Path) -> list[str]:
    """How a notebook's metadata differs from its GPU request (empty: in step); fixes nb in place."""
    problems = []
    for key, value in GPU_METADATA.items():
        if wants_gpu(notebook) and nb.metadata.get(key) != value:
            nb.metadata[key] = value
            problems.append(f"metadata {key!r} should be {value}")
        elif not wants_gpu(notebook) and key in nb.metadata:
            del nb.metadata[key]
            problems.append(f"metadata {key!r} asks for a GPU this lesson does not need")
    return problems


def sync(check: bool) -> list[str]:
    """Rewrite (or, with check, only report) the notebooks and README that disagree with the URL."""
    url, problems = repo_url(), []
    sources = {p.name for p in (ROOT / "solutions").glob("*.ipynb")}
    for path in sorted((ROOT / "solutions").glob("*.ipynb")) + sorted((ROOT / "notebooks").glob("*.ipynb")):
        built = path.parent.name == "notebooks" and path.name in sources  # fixed via its source + make editions
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        want, found = setup_cell_source(url), metadata_problems(nb, path)
        if code and code[0].source.startswith(MARKER):
            if code[0].source != want:
                code[0].source = want
                found.append("Colab setup cell out of date")
        else:
            first_code = nb.cells.index(code[0]) if code else len(nb.cells)
            nb.cells.insert(first_code, nbformat.v4.new_code_cell(want))
            found.append("Colab setup cell out of date")
        if not found:
            continue
        problems += [
            f"{path.parent.name}/{path.name}: {p}"
            + (" (fix its source solutions/, then `make editions`)" if built else "")
            for p in found
        ]
        if not check and not built:
            nbformat.write(nb, path)
    readme = ROOT / "README.md"
    text = readme.read_text()
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        if badge(url, path) not in text:
            problems.append(f"README.md: no Colab badge for {path.name} with {url}")
        if kaggle_badge(url, path) not in text:
            problems.append(f"README.md: no Kaggle badge for {path.name}: {kaggle_badge(url, path)}")
    stale = re.findall(r"colab\.research\.google\.com/github/([^)\s]+)/blob", text)
    stale += re.findall(r"kaggle\.com/kernels/welcome\?src=https://github\.com/([^)\s]+)/blob", text)
    want_path = url.removeprefix("https://github.com/")
    problems += [f"README.md: badge points at {p}" for p in sorted(set(stale)) if p != want_path]
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
