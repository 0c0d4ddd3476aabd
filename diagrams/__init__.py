"""Diagrams of the course, drawn by code from the real objects they depict (one module per notebook).

`diagrams.nbNN` holds notebook NN's diagrams; each function takes the object it draws (an engine's graph,
tensors, a model) and returns the figure with what it drew, so tests/test_diagrams.py can check the picture
against the object. Figures are drawn at the projector-legible 100 dpi with no text under 8 pt (helpers.plot).
Each figure's alt text (for screen readers; stored in the notebook and the website) is read off its title and
labels by helpers.plot; a drawing function states what the figure found with `set_alt(fig, "...")`.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from helpers.plot import PROJECTOR_DPI as DPI  # every course figure: legible on a projector
from helpers.plot import set_alt

__all__ = ["DPI", "DiagramError", "new_figure", "set_alt", "show_widget"]


class DiagramError(ValueError):
    """An object a diagram cannot draw (too big, wrong kind), with what to pass instead."""


def new_figure(width: float, height: float, title: str) -> tuple[Figure, plt.Axes]:
    """A titled figure with one frameless axes in data coordinates, at the course's diagram dpi."""
    fig, ax = plt.subplots(figsize=(width, height), dpi=DPI)
    ax.set_axis_off()
    fig.suptitle(title, fontsize=11)
    return fig, ax


def show_widget(widget: Any, text: str) -> None:
    """Display an ipywidgets widget whose stored text/plain is `text`, since a saved notebook keeps no widget state."""
    from IPython.display import display

    bundle = getattr(widget, "_repr_mimebundle_", None)  # ipywidgets 8; 7.x displays itself
    if bundle is None:
        display(widget)
        return
    data = dict(bundle())
    data["text/plain"] = text
    display(data, raw=True)
