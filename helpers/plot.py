"""Pictures the notebooks share: curves, a confusion matrix, labelled images (matplotlib imported where used).

Every figure is made for a projector as much as for a laptop screen: drawn at `PROJECTOR_DPI` (whatever
`figure.dpi` a notebook sets) with no text smaller than `MIN_FONT_PT` at that size (tests/test_plot.py
checks both, for these functions and for the course diagrams of 01 and 05).

Every figure also carries a text alternative for screen readers: the function that draws it states what it shows
and what it found (`set_alt`); a figure drawn directly in a notebook cell is described from its titles, axis labels
and legend (`alt_text`). Importing this module in Jupyter registers a display hook that stores the text as the
output's `{"image/png": {"alt": ...}}` metadata (IPython's own convention, read by nbconvert's HTML and by the
course website's `<img alt>`), so re-running a notebook fills it in.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .evaluation import confusion_matrix
from .train import History

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PROJECTOR_DPI = 100
"""Dots per inch of every figure these functions return: a 5.5-inch panel is 550 pixels wide."""
MIN_FONT_PT = 8
"""The smallest text, in points at the figure's own size, that stays readable from the back of a room."""
LABEL_PT = 10
"""Axis labels, legends, captions and the numbers in the confusion matrix."""


ALT_ATTRIBUTE = "course_alt_text"
"""The attribute of a matplotlib Figure that holds its alt text (set by set_alt)."""
IMAGE_MIMES = ("image/png", "image/jpeg", "image/svg+xml")


def set_alt(fig: Figure, text: str) -> Figure:
    """Store a figure's alt text (what it shows and what it found), shown to screen readers; returns the figure."""
    setattr(fig, ALT_ATTRIBUTE, " ".join(text.split()))
    return fig


def _texts(artists: Any) -> list[str]:
    """The non-empty visible texts of some matplotlib Text objects, whitespace collapsed."""
    return [" ".join(t.get_text().split()) for t in artists if t is not None and t.get_visible() and t.get_text()]


def describe_figure(fig: Figure) -> str:
    """Alt text read off a figure: its title, then each panel's title, axis labels and legend entries."""
    parts = [" ".join(fig.get_suptitle().split())] if fig.get_suptitle().strip() else []
    panels = []
    for ax in fig.axes:
        if not ax.get_visible() or ax.get_label() == "<colorbar>":
            continue
        bits = [" ".join(ax.get_title(loc).split()) for loc in ("left", "center", "right") if ax.get_title(loc).strip()]
        xlabel, ylabel = ax.get_xlabel().strip(), ax.get_ylabel().strip()
        if xlabel and ax.xaxis.get_visible():
            bits.append(f"x: {xlabel}")
        if ylabel and ax.yaxis.get_visible():
            bits.append(f"y: {ylabel}")
        legend = ax.get_legend()
        if legend is not None:
            bits.append("legend: " + ", ".join(_texts(legend.get_texts())))
        if ax.images:
            bits.append("an image" if len(ax.images) == 1 else f"{len(ax.images)} images")
        if bits:
            panels.append(", ".join(bits))
    unique = list(dict.fromkeys(panels))
    if len(unique) == 1:
        parts.append(unique[0])
    elif unique:
        parts.append(f"{len(panels)} panels: " + "; ".join(unique[:6]) + ("; ..." if len(unique) > 6 else ""))
    text = ". ".join(parts)
    return f"Figure: {text}" if text else ""


def alt_text(fig: Figure) -> str:
    """The figure's alt text: what set_alt stored, else a description read off its titles and labels."""
    return getattr(fig, ALT_ATTRIBUTE, None) or describe_figure(fig)


def describe_svg(svg: str) -> str:
    """Alt text read off an SVG picture: its <title>, else its bold text (the heading), then its other labels."""
    title = re.search(r"<title[^>]*>(.*?)</title>", svg, re.DOTALL)
    texts = [html.unescape(re.sub(r"<[^>]+>", "", t)).strip() for t in re.findall(r"<text[^>]*>(.*?)</text>", svg)]
    bold = re.search(r'<text[^>]*font-weight="bold"[^>]*>(.*?)</text>', svg, re.DOTALL)
    heading = html.unescape((title or bold).group(1)).strip() if (title or bold) else ""
    labels = list(dict.fromkeys(t for t in texts if t and t != heading))
    if not heading and not labels:
        return ""
    listed = ", ".join(labels[:20]) + (", ..." if len(labels) > 20 else "")
    return f"Picture: {heading}" + (f" (labels: {listed})" if labels else "")


def _alt_metadata(obj: Any) -> tuple[dict, dict]:
    """The display hook: no data (the image formatters render it), only the alt text as each image's metadata."""
    from IPython import get_ipython

    if isinstance(obj, str):
        return {}, {}
    svg = getattr(obj, "data", None) if type(obj).__name__ == "SVG" else None
    text = describe_svg(svg) if isinstance(svg, str) else alt_text(obj)
    if not text:
        return {}, {}
    formatters = get_ipython().display_formatter.formatters
    mimes = [m for m in IMAGE_MIMES if m in formatters and _renders(formatters[m], obj)] or ["image/png"]
    return {}, {mime: {"alt": text} for mime in mimes}


def _renders(formatter: Any, obj: Any) -> bool:
    """True if a mime formatter has a printer for obj (a Figure's png/svg printer, an SVG's _repr_svg_)."""
    try:
        formatter.lookup(obj)
        return True
    except KeyError:
        return hasattr(obj, getattr(formatter, "print_method", "") or "_")


def register_alt_text(shell: Any = None) -> bool:
    """Attach alt text to every matplotlib figure and SVG picture displayed in this kernel; False outside IPython.

    Registered on IPython's mime-bundle formatter, so it adds to whatever renders the image (the inline backend,
    or a notebook's own PNG formatter) instead of replacing it.
    """
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return False
    bundle = shell.display_formatter.mimebundle_formatter
    bundle.for_type_by_name("matplotlib.figure", "Figure", _alt_metadata)
    bundle.for_type_by_name("IPython.core.display", "SVG", _alt_metadata)
    return True


def small_texts(fig: Figure, minimum: float = MIN_FONT_PT) -> list[tuple[str, float]]:
    """The visible, non-empty texts of a figure (titles, labels, ticks, legends, annotations) below `minimum` pt."""
    from matplotlib.text import Text

    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return [(t.get_text(), t.get_fontsize()) for t in texts if t.get_fontsize() < minimum]


def plot_history(
    history: History, metrics: Sequence[str] = ("loss", "accuracy"), title: str = "Training history"
) -> Figure:
    """Train (per step and per epoch) and validation curves, one panel per metric in the history. Taught in 01 §4.4."""
    import matplotlib.pyplot as plt

    present = [m for m in metrics if history[f"train_{m}"] or history[f"val_{m}"]]
    fig, axes = plt.subplots(1, len(present), figsize=(5.5 * len(present), 3.8), squeeze=False, dpi=PROJECTOR_DPI)
    for ax, metric in zip(axes[0], present):
        if metric == "loss" and history.steps:
            ax.plot(
                [s["epoch"] for s in history.steps],
                [s["loss"] for s in history.steps],
                color="tab:blue",
                alpha=0.35,
                lw=1,
                label="train (running)",
            )
        for split, color in (("train", "tab:blue"), ("val", "tab:orange")):
            values = history[f"{split}_{metric}"]
            if values:
                ax.plot(history["epoch"][: len(values)], values, "o-", color=color, label=f"{split} (epoch)")
        ax.set(xlabel="epoch", ylabel=metric, title=metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=LABEL_PT)
    fig.suptitle(title)
    fig.tight_layout()
    return set_alt(fig, f"{title}: " + "; ".join(_history_finding(history, m) for m in present) + ".")


def _history_finding(history: History, metric: str) -> str:
    """One metric's curves in words: how many epochs, first and last train value, last and best validation value."""
    best = min if metric == "loss" else max
    words = f"{metric} over {len(history['epoch'])} epochs"
    if train := history[f"train_{metric}"]:
        words += f", train from {train[0]:.3g} to {train[-1]:.3g}"
    if val := history[f"val_{metric}"]:
        at = val.index(best(val))
        words += f", validation ending at {val[-1]:.3g} (best {val[at]:.3g} in epoch {history['epoch'][at]})"
    return words


def plot_confusion_matrix(
    y_true: Sequence[int] | np.ndarray | torch.Tensor,
    y_pred: Sequence[int] | np.ndarray | torch.Tensor,
    class_names: Sequence[str],
    normalize: bool = True,
    title: str = "Confusion matrix",
) -> Figure:
    """A labelled heat map of the confusion matrix; normalised rows read as per-class recall. Taught in 02 §5."""
    import matplotlib.pyplot as plt

    counts = confusion_matrix(y_true, y_pred, len(class_names))
    shown = counts / counts.sum(axis=1, keepdims=True).clip(min=1) if normalize else counts
    size = max(4.0, 0.55 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size), dpi=PROJECTOR_DPI)
    im = ax.imshow(shown, cmap="Blues", vmin=0)
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of true class" if normalize else "count")
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45, ha="right")
    ax.set_yticks(ticks, class_names)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    threshold = shown.max() / 2
    for i in ticks:
        for j in ticks:
            text = f"{shown[i, j]:.2f}" if normalize else str(counts[i, j])
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=LABEL_PT if len(class_names) <= 10 else MIN_FONT_PT,
                color="white" if shown[i, j] > threshold else "black",
            )
    fig.tight_layout()
    recall = np.diag(counts) / counts.sum(axis=1).clip(min=1)
    off = counts - np.diag(np.diag(counts))
    worst, best = int(recall.argmin()), int(recall.argmax())
    text = (
        f"{title}: {len(class_names)} classes, true class by row, predicted by column. Recall per class from "
        f"{recall[worst]:.0%} ({class_names[worst]}) to {recall[best]:.0%} ({class_names[best]})"
    )
    if off.max() > 0:
        t, q = np.unravel_index(off.argmax(), off.shape)
        text += f"; the most frequent mistake: {class_names[t]} predicted as {class_names[q]} ({off[t, q]} times)"
    return set_alt(fig, text + ".")


def _to_hwc(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """Any single image (CHW or HWC; uint8 or float in [0, 1]) as an HWC array imshow understands."""
    array = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        array = array.transpose(1, 2, 0)
    if array.dtype != np.uint8:
        array = np.clip(array, 0, 1)
    return array.squeeze(-1) if array.ndim == 3 and array.shape[-1] == 1 else array


def show_images(
    images: torch.Tensor | np.ndarray | Sequence,
    labels: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
    predictions: Sequence[int] | None = None,
    ncols: int = 8,
    title: str | None = None,
    scale: float = 1.4,
) -> Figure:
    """A grid of images captioned with their labels (and predictions, red when wrong). Taught in 02 §3.1."""
    import matplotlib.pyplot as plt

    n = len(images)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(scale * ncols, scale * nrows + (0.4 if title else 0)), squeeze=False, dpi=PROJECTOR_DPI
    )

    def name(label: Any) -> str:
        return class_names[int(label)] if class_names is not None else str(int(label))

    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= n:
            continue
        ax.imshow(_to_hwc(images[k]), cmap="gray")
        if labels is not None and predictions is not None:
            wrong = int(labels[k]) != int(predictions[k])
            ax.set_title(
                f"{name(predictions[k])}\n(true: {name(labels[k])})" if wrong else name(labels[k]),
                fontsize=MIN_FONT_PT + 1,
                color="red" if wrong else "black",
            )
        elif labels is not None:
            ax.set_title(name(labels[k]), fontsize=MIN_FONT_PT + 1)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    text = f"{title or 'Images'}: {n} images"
    if labels is not None and predictions is not None:
        wrong = [k for k in range(n) if int(labels[k]) != int(predictions[k])]
        text += f" captioned with their predictions, {len(wrong)} of {n} wrong (in red)"
        text += "".join(
            f"{', e.g.' if i == 0 else ','} {name(labels[k])} predicted as {name(predictions[k])}"
            for i, k in enumerate(wrong[:3])
        )
    elif labels is not None:
        shown_labels = list(dict.fromkeys(name(label) for label in labels[:n]))
        text += (
            " captioned with their labels: "
            + ", ".join(shown_labels[:10])
            + (", ..." if len(shown_labels) > 10 else "")
        )
    return set_alt(fig, text + ".")


register_alt_text()  # in Jupyter: every figure shown from here on carries its alt text
