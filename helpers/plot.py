"""Pictures the notebooks share: curves, a confusion matrix, labelled images (matplotlib imported where used).

Every figure is made for a projector as much as for a laptop screen: drawn at `PROJECTOR_DPI` (whatever
`figure.dpi` a notebook sets) with no text smaller than `MIN_FONT_PT` at that size (tests/test_plot.py
checks both, for these functions and for the course diagrams of 01 and 05).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .measure import confusion_matrix
from .train import History

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PROJECTOR_DPI = 100
"""Dots per inch of every figure these functions return: a 5.5-inch panel is 550 pixels wide."""
MIN_FONT_PT = 8
"""The smallest text, in points at the figure's own size, that stays readable from the back of a room."""
LABEL_PT = 10
"""Axis labels, legends, captions and the numbers in the confusion matrix."""


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
    return fig


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
    return fig


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
    return fig
