"""The course website's own Sphinx extension (site/conf.py loads it); `make site` builds with it.

- the course map: the sidebar's toctrees, globbed from what exists (notebooks/, solutions/, docs/teaching.md),
  so a new notebook appears without editing the site;
- an "Open in Colab" badge under every notebook's title and in its page header (URL from pyproject.toml,
  as tools/colab.py does);
- the stored ipywidgets outputs rendered statically (a tqdm bar as its final text and bar; an interactive
  widget as a note), because the embedded widget JavaScript would come from a CDN and the site is offline;
- relative links to repository files that are not pages (helpers/*.py, benchmarks/...) point at GitHub;
- each notebook image's alt text from its output's metadata (`{"image/png": {"alt": ...}}`, stored by helpers.plot's
  display hook): MyST-NB reads only width and height there, and Sphinx would otherwise write the file name (a hash)
  as the alt; a notebook image left without alt text is a warning, so `make site` (warnings are errors) fails;
- index.html, opening the home page (the README).
"""

from __future__ import annotations

import base64
import hashlib
import html
import os
import re
from pathlib import Path
from typing import Any

import nbformat
from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
LOCAL_BADGE = "/site/_static/colab-badge.svg"  # our own copy (path from the repository root): no image from the network
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
NOTEBOOK_DIRS = ("notebooks/", "solutions/")


def _root(app: Sphinx) -> Path:
    """The repository root, which is also the source directory: a docname is a path in the repository."""
    return Path(app.srcdir).resolve()


def course_map(app: Sphinx) -> str:
    """The hidden toctrees that make the sidebar: the notebooks in order, their solutions, the instructor guide."""
    root = _root(app)
    groups = [
        ("The course", sorted(root.glob("notebooks/*.ipynb"))),
        ("Solutions", sorted(root.glob("solutions/*.ipynb"))),
        ("For instructors", [p for p in [root / "docs" / "teaching.md"] if p.is_file()]),
    ]
    text = ""
    for caption, paths in groups:
        if paths:
            entries = "\n".join(p.relative_to(root).with_suffix("").as_posix() for p in paths)
            text += f"\n\n```{{toctree}}\n:caption: {caption}\n:maxdepth: 1\n:hidden:\n\n{entries}\n```\n"
    return text


def _plain(fragment: str) -> str:
    """Text of a tqdm HTML fragment: entities decoded, figure spaces made plain."""
    return html.unescape(re.sub(r"<[^>]+>", "", fragment)).replace("\u2007", " ")


TQDM_TEXT = re.compile(r"^(?P<desc>[^\n]*?):?\s+(\d+%\||\d+ )[^\[\n]*\[\d\d:\d\d")  # tqdm's plain repr


def static_widget(view: dict[str, Any], state: dict[str, Any], text: str = "") -> tuple[str, str]:
    """(html, text) standing in for one widget output: a finished progress bar, or a note to run the notebook."""
    model = state.get(view.get("model_id", ""), {})
    if not model and (match := TQDM_TEXT.match(text)):  # a tqdm bar whose final state was not stored
        desc = match["desc"].strip() or "progress"
        return (
            f'<div class="course-progress"><span>{html.escape(desc)}</span>'
            "<em>(a progress bar while the notebook runs)</em></div>",
            desc,
        )
    children = [state.get(c.removeprefix("IPY_MODEL_"), {}) for c in model.get("state", {}).get("children", [])]
    bars = [c for c in children if c.get("model_name") in ("FloatProgressModel", "IntProgressModel")]
    if model.get("model_name") == "HBoxModel" and len(bars) == 1:
        parts = [c["state"].get("value", "") if c.get("model_name") == "HTMLModel" else None for c in children]
        bar = bars[0]["state"]
        left, right = (_plain(p or "") for p in (parts[0], parts[-1]))
        style = bar.get("bar_style") or "info"
        progress = f'<progress value="{bar.get("value", 0)}" max="{bar.get("max", 1)}"></progress>'
        markup = (
            f'<div class="course-progress course-progress-{html.escape(style)}">'
            f"<span>{html.escape(left)}</span>{progress}<span>{html.escape(right)}</span></div>"
        )
        return markup, f"{left} {right}".strip()
    note = (
        "An interactive widget is here. Run the notebook to use it: "
        "Open in Colab (the badge at the top of the page), or locally with make lab."
    )
    return f'<p class="course-widget-note">{note}</p>', note


def render_widgets(source: str) -> str:
    """The notebook JSON with every stored widget output replaced by static HTML and the widget state dropped."""
    nb = nbformat.reads(source, as_version=4)
    state = nb.metadata.pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    changed = bool(state)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if WIDGET_VIEW in data:
                plain = data.get("text/plain", "")
                markup, text = static_widget(
                    data[WIDGET_VIEW], state, "".join(plain) if isinstance(plain, list) else plain
                )
                out["data"] = {"text/html": markup, "text/plain": text}
                changed = True
    return nbformat.writes(nb) if changed else source


def on_source_read(app: Sphinx, docname: str, source: list[str]) -> None:
    """The home page (README) gets the course map and our own badge image; notebooks get static widgets."""
    if docname == app.config.root_doc:
        source[0] = source[0].replace(COLAB_BADGE, LOCAL_BADGE) + course_map(app)
    elif docname.startswith(NOTEBOOK_DIRS):
        source[0] = render_widgets(source[0])


def always_reread_home(app: Sphinx, env: Any, added: set[str], changed: set[str], removed: set[str]) -> list[str]:
    """The home page's course map depends on which notebooks exist, so an incremental build re-reads it."""
    return [app.config.root_doc]


def write_index(app: Sphinx, exc: Exception | None) -> None:
    """index.html, so that the site's address opens the home page (README.html), as Jupyter Book does."""
    if exc is None and app.builder.format == "html" and app.config.root_doc != "index":
        target = f"{app.config.root_doc}.html"
        page = (
            f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{app.config.project}</title>'
            f'<meta http-equiv="refresh" content="0; url={target}"></head>'
            f'<body><a href="{target}">{app.config.project}</a></body></html>\n'
        )
        (Path(app.outdir) / "index.html").write_text(page)


def colab_url(app: Sphinx, docname: str) -> str:
    """Colab's URL for a notebook page: the committed notebook on GitHub, opened in Colab."""
    repo = app.config.course_repository.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{repo}/blob/{app.config.course_branch}/{docname}.ipynb"


def add_colab_badge(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """An 'Open in Colab' badge right under the notebook's title."""
    section = doctree.next_node(nodes.section)
    if section is None or not isinstance(section[0], nodes.title):
        return
    image = nodes.image(uri=LOCAL_BADGE, alt="Open In Colab")
    link = nodes.reference("", "", image, refuri=colab_url(app, docname), classes=["course-colab"])
    section.insert(1, nodes.paragraph("", "", link, classes=["course-launch"]))


def link_repository_files(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Relative links to repository files or folders that are not pages become links to them on GitHub."""
    root, doc_dir = _root(app), Path(docname).parent
    for node in list(doctree.findall(addnodes.pending_xref)):
        if node.get("reftype") != "myst" or node.get("refdomain") is not None:
            continue
        target = node["reftarget"].split("#", 1)[0]
        if not target or "://" in target:
            continue
        path = (root / doc_dir / target).resolve()
        if not path.is_relative_to(root) or not path.exists():
            continue  # a broken link: myst warns, and warnings fail the build
        kind = "tree" if path.is_dir() else "blob"
        rel = path.relative_to(root).as_posix()
        url = f"{app.config.course_repository}/{kind}/{app.config.course_branch}/{rel}"
        node.replace_self(nodes.reference("", "", *node.children, refuri=url, internal=False))


IMAGE_MIMES = ("image/png", "image/jpeg", "image/svg+xml")
HASHED = re.compile(r"(^|/)[0-9a-f]{64}\.\w+$")
"""The file name MyST-NB gives an output image (its sha256): never an alt text."""


def image_alts(nb: nbformat.NotebookNode) -> dict[str, str]:
    """sha256 of each output image's bytes (MyST-NB's file name for it) -> the alt text stored in its metadata."""
    alts = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            for mime in IMAGE_MIMES:
                content = out.get("data", {}).get(mime)
                alt = out.get("metadata", {}).get(mime, {}).get("alt")
                if content is None or not alt:
                    continue
                content = "".join(content) if isinstance(content, list) else content
                if mime == "image/svg+xml":  # MyST-NB writes SVG text with the platform's line separators
                    raw = os.linesep.join(content.splitlines()).encode()
                else:
                    raw = base64.b64decode(content)
                alts[hashlib.sha256(raw).hexdigest()] = str(alt)
    return alts


def set_image_alts(doctree: nodes.document, alts: dict[str, str], docname: str) -> list[str]:
    """Give each notebook image its stored alt text; return (and log) the images still without one."""
    missing = []
    for image in doctree.findall(nodes.image):
        uri = image.get("uri", "")
        if uri == LOCAL_BADGE:
            continue
        stem = Path(uri).stem
        if stem in alts:
            image["alt"] = alts[stem]
        if not image.get("alt") or HASHED.search(image["alt"]):
            missing.append(uri)
            logger.warning(
                f"{docname}: the image {Path(uri).name} has no alt text. Re-run the notebook (helpers.plot stores "
                "one for every figure), or draw the figure with helpers.plot.set_alt(fig, ...).",
                location=docname,
                type="course",
                subtype="alt",
            )
    return missing


def on_doctree_read(app: Sphinx, doctree: nodes.document) -> None:
    """Per page: GitHub links for repository files; the Colab badge and the images' alt text on notebook pages."""
    docname = app.env.docname
    link_repository_files(app, doctree, docname)
    if docname.startswith(NOTEBOOK_DIRS):
        add_colab_badge(app, doctree, docname)
        nb = nbformat.read(app.env.doc2path(docname), as_version=4)
        set_image_alts(doctree, image_alts(nb), docname)


def on_page_context(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    """The Colab URL of a notebook page, for the badge in the article header (_templates/colab-badge.html)."""
    context["course_colab_url"] = colab_url(app, pagename) if pagename.startswith(NOTEBOOK_DIRS) else ""


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the config values and the event handlers."""
    app.add_config_value("course_repository", "", "env")
    app.add_config_value("course_branch", "main", "env")
    app.connect("source-read", on_source_read)
    app.connect("env-get-outdated", always_reread_home)
    app.connect("html-page-context", on_page_context)
    app.connect("build-finished", write_index)
    app.connect("doctree-read", on_doctree_read, priority=400)  # before the image collector copies images
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
