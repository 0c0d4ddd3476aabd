"""Sphinx configuration of the course website: `make site` builds it from the committed notebooks.

    sphinx-build -W --keep-going -c site . _build/site      # what `make site` runs

The source directory is the repository itself, so the README (the home page) and the notebooks keep
their relative links (notebooks/NN.ipynb, docs/*.png) unchanged; only the files named in
include_patterns become pages. The notebooks are rendered with their stored outputs (myst-nb, no
execution). _ext/course_site.py adds the course map (sidebar), the "Open in Colab" badges, static
renderings of stored widget outputs and the index.html that opens the home page.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE / "_ext"))

# The one place the repository URL lives (as for tools/colab.py): pyproject.toml's [project.urls].
REPOSITORY = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
BRANCH = "main"
course_repository, course_branch = REPOSITORY, BRANCH  # read by _ext/course_site.py

project = "Deep learning, hands on"
author = "the course authors"
copyright = "the course authors, MIT licence"
html_title = project

extensions = [
    "myst_nb",
    "sphinx-mathjax-offline",  # MathJax served from _static/, not from a CDN: the site works offline
    "course_site",
]

root_doc = "README"  # the home page; index.html redirects to it
# Only these are pages; other files (docs/*.png) are reached as images or downloads. Folders that hold
# no page (.venv, data, helpers, ...) are not even walked.
include_patterns = ["README.md", "notebooks/*.ipynb", "solutions/*.ipynb", "docs/teaching.md"]
PAGE_DIRS = {"notebooks", "solutions", "docs", "site"}
exclude_patterns = sorted(p.name for p in ROOT.iterdir() if p.is_dir() and p.name not in PAGE_DIRS)
exclude_patterns += ["_build", "**/.ipynb_checkpoints", "**/runs"]  # runs/: training outputs of notebooks run in place

# myst-nb: the stored outputs, never re-executed.
nb_execution_mode = "off"
nb_ipywidgets_js = {}  # no widget JS from a CDN; course_site renders the stored widget state statically
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "html_image"]
myst_heading_anchors = 3

html_theme = "sphinx_book_theme"
html_static_path = ["_static"]
templates_path = ["_templates"]
html_css_files = ["course.css"]
html_theme_options = {
    "repository_url": REPOSITORY,
    "repository_branch": BRANCH,
    "path_to_docs": "",  # the source directory is the repository root: a docname is its path there
    "use_repository_button": True,
    "use_download_button": True,
    "launch_buttons": {"colab_url": "https://colab.research.google.com"},
    "home_page_in_toc": True,
    "show_toc_level": 2,
    # Sphinx 9 reads the book theme's empty navbar options as unset: without this the page gets a
    # second search box in a header bar above the book layout
    "navbar_persistent": [],
    "article_header_end": ["colab-badge.html", "article-header-buttons.html"],
}
