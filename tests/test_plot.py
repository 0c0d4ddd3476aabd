"""Plots: right numbers in the confusion matrix; titled, labelled figures."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import torch

from helpers.measure import confusion_matrix
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
    h = History(epochs=[{"epoch": 1, "train_loss": 1.0, "val_loss": 1.1, "train_accuracy": 0.5},
                        {"epoch": 2, "train_loss": 0.5, "val_loss": 0.7, "train_accuracy": 0.8}],
                steps=[{"step": 1, "epoch": 0.5, "loss": 1.2}])
    fig = plot_history(h, title="run")
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    assert fig.axes[0].get_xlabel() == "epoch" and fig.axes[0].get_ylabel() == "loss"
    regression = plot_history(History(epochs=[{"epoch": 1, "train_loss": 1.0}]))
    assert [ax.get_title() for ax in regression.axes] == ["loss"]


def test_show_images_captions_and_marks_mistakes():
    images = torch.randint(0, 255, (5, 3, 8, 8), dtype=torch.uint8)
    fig = show_images(images, labels=[0, 1, 2, 0, 1], class_names=["a", "b", "c"], predictions=[0, 1, 0, 0, 1],
                      ncols=3, title="grid")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:5] == ["a", "b", "a\n(true: c)", "a", "b"]
    assert fig.axes[2].title.get_color() == "red"
    assert fig._suptitle.get_text() == "grid"
    hwc = show_images(np.zeros((2, 8, 8, 3), dtype=np.float32), labels=[0, 1])
    assert [ax.get_title() for ax in hwc.axes][:2] == ["0", "1"]
