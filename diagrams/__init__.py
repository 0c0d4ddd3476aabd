"""Diagrams of the course, drawn by code from the real objects they depict (one module per notebook).

`diagrams.nbNN` holds notebook NN's diagrams; each function takes the object it draws (an engine's graph,
tensors, a model) and returns the figure with what it drew, so tests/test_diagrams.py can check the picture
against the object. Figures are small (dpi <= 80) so that every notebook stays under 1 MB.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

DPI = 80
"""Resolution of every course diagram: readable, and a few tens of kB per PNG in a notebook."""


class DiagramError(ValueError):
    """An object a diagram cannot draw (too big, wrong kind), with what to pass instead."""


def new_figure(width: float, height: float, title: str) -> tuple[Figure, plt.Axes]:
    """A titled figure with one frameless axes in data coordinates, at the course's diagram dpi."""
    fig, ax = plt.subplots(figsize=(width, height), dpi=DPI)
    ax.set_axis_off()
    fig.suptitle(title, fontsize=11)
    return fig, ax
