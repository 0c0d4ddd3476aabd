"""Plots: right numbers in the confusion matrix; titled, labelled figures."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch

from helpers.evaluation import confusion_matrix
from helpers.plot import plot_confusion_matrix, plot_history, show_images
from helpers.train import History


def test_confusion_matrix_counts():
    m = confusion_matrix([0, 0, 1, 2, 2, 2], torch.tensor([0, 1, 1, 2, 2, 0]), 3)
    assert m.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_plot_confusion_matrix_is_labelled():
    fig = plot_confusion_matrix([0, 1, 1], [0, 1, 0], ["neg", "pos"], title="IMDB")
    ax = fig.axes[0]
    assert ax.get_title() == "IMDB" and ax.get_xlabel() == "predicted" and ax.get_ylabel() == "true"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["neg", "pos"]
    assert "0.50" in [t.get_text() for t in ax.texts]  # row 'pos': one of two right


def test_plot_history_has_one_panel_per_metric_present():
    h = History(
        epochs=[
            {"epoch": 1, "train_loss": 1.0, "val_loss": 1.1, "train_accuracy": 0.5},
            {"epoch": 2, "train_loss": 0.5, "val_loss": 0.7, "train_accuracy": 0.8},
        ],
        steps=[{"step": 1, "epoch": 0.5, "loss": 1.2}],
    )
    fig = plot_history(h, title="run")
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    assert fig.axes[0].get_xlabel() == "epoch" and fig.axes[0].get_ylabel() == "loss"
    regression = plot_history(History(epochs=[{"epoch": 1, "train_loss": 1.0}]))
    assert [ax.get_title() for ax in regression.axes] == ["loss"]


def test_show_images_captions_and_marks_mistakes():
    images = torch.randint(0, 255, (5, 3, 8, 8), dtype=torch.uint8)
    fig = show_images(
        images, labels=[0, 1, 2, 0, 1], class_names=["a", "b", "c"], predictions=[0, 1, 0, 0, 1], ncols=3, title="grid"
    )
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:5] == ["a", "b", "a\n(true: c)", "a", "b"]
    assert fig.axes[2].title.get_color() == "red"
    assert fig._suptitle.get_text() == "grid"
    hwc = show_images(np.zeros((2, 8, 8, 3), dtype=np.float32), labels=[0, 1])
    assert [ax.get_title() for ax in hwc.axes][:2] == ["0", "1"]


# ---- legible on a projector (issue 21, item 4): every figure these functions return, and the 01/05 diagrams ----


def _figures():
    """(name, a function returning a figure) for each shared plotting function and each diagram of 01 and 05."""
    from torch.utils.data import DistributedSampler

    import diagrams.nb01 as nb01
    import diagrams.nb05 as nb05

    history = History(
        epochs=[
            {
                "epoch": e,
                "train_loss": 1 / e,
                "val_loss": 1.1 / e,
                "train_accuracy": 0.5 + e / 10,
                "val_accuracy": 0.4 + e / 10,
            }
            for e in (1, 2, 3)
        ],
        steps=[{"step": s, "epoch": s / 4, "loss": 1.2 / (1 + s)} for s in range(12)],
    )
    ten = [str(k) * 6 for k in range(10)]
    x = torch.linspace(-1.6, 1.6, 40)
    y = 0.28 * x + 3.07 + 0.1 * torch.sin(7 * x)

    class V:  # the smallest engine value_graph walks: data, grad, _op, _parents
        def __init__(self, data, parents=(), op=""):
            self.data, self.grad, self._parents, self._op = data, 0.0, parents, op

    a, b = V(1.0), V(2.0)
    return {
        "plot_history": lambda: plot_history(history),
        "plot_confusion_matrix": lambda: plot_confusion_matrix(torch.arange(100) % 10, torch.arange(100) % 7, ten),
        "show_images": lambda: show_images(torch.rand(10, 3, 32, 32), list(range(10)), ten, list(range(10))[::-1]),
        "nb01.draw_broadcasting": lambda: nb01.draw_broadcasting([(torch.arange(3).reshape(3, 1), torch.arange(4))])[0],
        "nb01.draw_value_graph": lambda: nb01.draw_value_graph(V(3.0, (a, b), "tanh"), names={"a": a})[0],
        "nb01.draw_gradient_descent": lambda: nb01.draw_gradient_descent(x, y, lrs=(0.01, 0.3, 1.2))[0],
        "nb05.plot_all_reduce": lambda: nb05.plot_all_reduce([torch.randn(10), torch.randn(10)])[0],
        "nb05.plot_sampler": lambda: nb05.plot_sampler(
            [DistributedSampler(range(11), num_replicas=2, rank=r, shuffle=True, seed=0) for r in range(2)]
        )[0],
    }


@pytest.mark.parametrize("name", list(_figures()))
def test_figures_are_legible_on_a_projector(name):
    import matplotlib.pyplot as plt

    from helpers.plot import MIN_FONT_PT, PROJECTOR_DPI, small_texts

    plt.rcParams["figure.dpi"] = 72  # what 02 and 04 set: the functions draw at their own dpi anyway
    try:
        fig = _figures()[name]()
        fig.canvas.draw()  # tick labels exist only once drawn
        assert fig.dpi >= PROJECTOR_DPI >= 100, f"{name}: {fig.dpi} dpi"
        assert not small_texts(fig), f"{name}: text below {MIN_FONT_PT} pt: {small_texts(fig)[:5]}"
    finally:
        plt.rcdefaults()
        plt.close("all")
