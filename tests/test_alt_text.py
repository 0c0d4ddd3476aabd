"""Alt text for every figure: written where the figure is drawn, stored in the notebook, carried to the website.

- helpers.plot's functions state what each figure shows and what it found; a figure drawn in a notebook cell is
  described from its titles, labels and legend; an SVG picture from its heading and labels;
- in a real kernel, the display hook helpers.plot registers stores the text as the output's
  `{"image/png": {"alt": ...}}` metadata, also under a notebook's own PNG formatter (as 02 has);
- every stored image in notebooks/ and solutions/ has alt text (fails for a notebook not re-run since the hook);
- the website gives each notebook image that text as its `<img alt>`, and an image left with its hashed file name
  as alt is a warning, which fails `make site`.
"""

import base64
import hashlib
import importlib
import json
import re
import sys
from pathlib import Path

import matplotlib
import nbformat
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from helpers import plot  # noqa: E402
from helpers.train import History  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "solutions").glob("*.ipynb"))
HASHED = re.compile(r"^[0-9a-f]{16,}(\.\w+)?$")


def test_a_figure_drawn_in_a_cell_is_described_from_its_titles_and_labels():
    fig, axes = plt.subplots(1, 2)
    fig.suptitle("Learning rate against loss")
    axes[0].plot([1, 2], [3, 1], label="train")
    axes[0].set(title="lr 0.1", xlabel="step", ylabel="loss")
    axes[0].legend()
    axes[1].imshow(np.zeros((2, 2)))
    axes[1].set_title("weights")
    text = plot.alt_text(fig)
    assert (
        text
        == "Figure: Learning rate against loss. 2 panels: lr 0.1, x: step, y: loss, legend: train; weights, an image"
    )
    plt.close(fig)


def test_a_figure_with_no_text_has_no_alt_text():
    """The wrong answer the stored-figure test must catch: nothing to say is an empty alt, not a made-up one."""
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    assert plot.alt_text(fig) == ""
    plt.close(fig)


def test_set_alt_wins_over_the_description():
    fig, ax = plt.subplots()
    ax.set_title("a title")
    assert plot.alt_text(plot.set_alt(fig, "What it shows:\n  and what it found.")) == (
        "What it shows: and what it found."
    )
    plt.close(fig)


def test_the_course_plots_say_what_they_found():
    history = History()
    for epoch, (train, val, acc) in enumerate([(2.0, 1.5, 0.4), (1.0, 1.2, 0.6), (0.5, 1.3, 0.55)], 1):
        history.epochs.append({"epoch": epoch, "train_loss": train, "val_loss": val, "val_accuracy": acc})
    text = plot.alt_text(plot.plot_history(history, title="CNN on CIFAR-10"))
    assert text.startswith("CNN on CIFAR-10: loss over 3 epochs, train from 2 to 0.5, validation ending at 1.3 ")
    assert "(best 1.2 in epoch 2)" in text and "accuracy over 3 epochs" in text and "(best 0.6 in epoch 2)" in text
    y_true, y_pred = [0, 0, 0, 0, 1, 1, 2, 2], [0, 0, 0, 1, 1, 1, 1, 1]
    text = plot.alt_text(plot.plot_confusion_matrix(y_true, y_pred, ["cat", "dog", "ship"], title="Test set"))
    assert text == (
        "Test set: 3 classes, true class by row, predicted by column. Recall per class from 0% (ship) to 100% (dog); "
        "the most frequent mistake: ship predicted as dog (2 times)."
    )
    images = np.zeros((3, 8, 8))
    text = plot.alt_text(plot.show_images(images, [0, 1, 2], ["cat", "dog", "ship"], predictions=[0, 2, 2]))
    assert (
        text == "Images: 3 images captioned with their predictions, 1 of 3 wrong (in red), e.g. dog predicted as ship."
    )
    plt.close("all")


def test_an_svg_picture_is_described_from_its_heading_and_labels():
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg"><text font-weight="bold">Layer 3, head 0</text>'
        "<text>query</text><text>key</text><text>[CLS]</text><text>[CLS]</text></svg>"
    )
    assert plot.describe_svg(svg) == "Picture: Layer 3, head 0 (labels: query, key, [CLS])"
    assert plot.describe_svg("<svg><rect/></svg>") == ""


KERNEL_CELLS = [
    "import matplotlib.pyplot as plt\nimport helpers.plot",
    "fig, ax = plt.subplots()\nax.plot([1, 2])\nax.set(title='Loss falls', xlabel='epoch', ylabel='loss')\nplt.show()",
    "fig, ax = plt.subplots()\nax.plot([0, 1])\n"
    "helpers.plot.set_alt(fig, 'A rising line: y grows with x.')\nplt.show()",
    # 02's own PNG formatter (a 256-colour PNG): the alt text must survive it
    "import IPython\nIPython.get_ipython().display_formatter.formatters['image/png'].for_type(\n"
    "    plt.Figure, lambda fig: b'\\x89PNG fake')\nfig, ax = plt.subplots()\nax.set_title('Own formatter')\n"
    "plt.show()",
    "from IPython.display import SVG, display\n"
    'display(SVG(\'<svg xmlns="http://www.w3.org/2000/svg"><text font-weight="bold">Head 1</text></svg>\'))',
]


def test_a_real_kernel_stores_the_alt_text_in_the_outputs():
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in KERNEL_CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    stored = [
        (mime, out.get("metadata", {}).get(mime, {}).get("alt"))
        for cell in nb.cells[1:]
        for out in cell.outputs
        for mime in out.get("data", {})
        if mime.startswith("image/")
    ]
    assert stored == [
        ("image/png", "Figure: Loss falls, x: epoch, y: loss"),
        ("image/png", "A rising line: y grows with x."),
        ("image/png", "Figure: Own formatter"),
        ("image/svg+xml", "Picture: Head 1"),
    ]


def _images_without_alt(path: Path) -> list[str]:
    nb = json.loads(path.read_text())
    missing = []
    for index, cell in enumerate(nb["cells"]):
        for number, out in enumerate(cell.get("outputs", [])):
            for mime in out.get("data", {}):
                if not mime.startswith("image/"):
                    continue
                alt = str(out.get("metadata", {}).get(mime, {}).get("alt", "")).strip()
                if len(alt.split()) < 2 or HASHED.match(alt):
                    missing.append(f"cell {index} (id {cell.get('id')}), output {number}: {mime} alt={alt!r}")
    return missing


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[f"{p.parent.name}/{p.name}" for p in NOTEBOOKS])
def test_every_stored_figure_has_alt_text(path):
    """Re-running the notebook stores it (helpers.plot's hook); a notebook not re-run since then fails here."""
    missing = _images_without_alt(path)
    assert not missing, (
        f"{len(missing)} stored image(s) without alt text; re-run the notebook (solutions/, then `make editions`):\n"
        + "\n".join(missing)
    )


def test_the_stored_figure_check_catches_a_missing_and_a_hashed_alt(tmp_path):
    png = base64.b64encode(b"\x89PNG").decode()
    nb = nbformat.v4.new_notebook()
    for alt in (None, "3f9a0c1d2e4b5a6978", "Figure: Loss falls, x: epoch"):
        out = nbformat.v4.new_output("display_data", data={"image/png": png})
        if alt:
            out.metadata = {"image/png": {"alt": alt}}
        nb.cells.append(nbformat.v4.new_code_cell("plt.show()", outputs=[out]))
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    assert [m.split(",")[0] for m in _images_without_alt(path)] == [
        "cell 0 (id " + nb.cells[0].id + ")",
        "cell 1 (id " + nb.cells[1].id + ")",
    ]


def _course_site():
    """The website's extension, imported as Sphinx imports it (site/conf.py puts site/_ext on the path)."""
    sys.path.insert(0, str(ROOT / "site" / "_ext"))
    try:
        return importlib.import_module("course_site")
    finally:
        sys.path.remove(str(ROOT / "site" / "_ext"))


def test_the_website_takes_the_stored_alt_and_flags_a_hashed_one(caplog):
    pytest.importorskip("sphinx")
    from docutils import nodes
    from docutils.utils import new_document

    site = _course_site()
    png = b"\x89PNG course figure"
    nb = nbformat.v4.new_notebook()
    out = nbformat.v4.new_output(
        "display_data",
        data={"image/png": base64.b64encode(png).decode()},
        metadata={"image/png": {"alt": "Loss falls"}},
    )
    nb.cells.append(nbformat.v4.new_code_cell("plt.show()", outputs=[out]))
    digest = hashlib.sha256(png).hexdigest()
    assert site.image_alts(nb) == {digest: "Loss falls"}

    doctree = new_document("page")
    described = nodes.image(uri=f"../_build/jupyter_execute/{digest}.png")
    unknown = "0" * 64
    undescribed = nodes.image(uri=f"../_build/jupyter_execute/{unknown}.png", alt=f"{unknown}.png")
    doctree += [described, undescribed]
    assert site.set_image_alts(doctree, site.image_alts(nb), "notebooks/02_x") == [undescribed["uri"]]
    assert described["alt"] == "Loss falls"
