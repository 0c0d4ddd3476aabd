"""Notebook 05's diagrams: the all-reduce that averages gradients, and how DistributedSampler splits a data set."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Rectangle
from torch.utils.data import DistributedSampler

from helpers.plot import LABEL_PT, MIN_FONT_PT

from . import DiagramError, new_figure

RANK_COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")


def _cells(ax: plt.Axes, x0: float, y: float, values: torch.Tensor, vmax: float, label: str) -> None:
    """One row of numbered squares coloured by value (blue negative, red positive), with a label on the left."""
    cmap = plt.get_cmap("coolwarm")
    for j, v in enumerate(values.tolist()):
        ax.add_patch(Rectangle((x0 + j, y), 0.95, 0.8, facecolor=cmap(0.5 + 0.5 * v / vmax), edgecolor="#444", lw=0.5))
        ax.text(x0 + j + 0.47, y + 0.4, f"{v:+.2f}", ha="center", va="center", fontsize=MIN_FONT_PT + 1)
    ax.text(x0 - 0.2, y + 0.4, label, ha="right", va="center", fontsize=LABEL_PT)


def plot_all_reduce(gradients: Sequence[torch.Tensor], max_values: int = 6) -> tuple[Figure, dict[str, torch.Tensor]]:
    """Each process's gradient (left) and what all-reduce leaves on every process: their mean (right). 05 §1.

    `gradients` holds one flat gradient per process (e.g. of the same layer, from different shards of a
    batch); the first `max_values` entries are drawn. Returns the figure and the drawn (before, after) rows.
    """
    if len(gradients) < 2 or len(gradients) > len(RANK_COLOURS):
        raise DiagramError(f"plot_all_reduce draws 2 to {len(RANK_COLOURS)} processes, got {len(gradients)}.")
    before = torch.stack([g.detach().flatten()[:max_values].float().cpu() for g in gradients])
    after = before.mean(0, keepdim=True).expand_as(before)
    world, n = before.shape
    vmax = before.abs().max().item() or 1.0
    fig, ax = new_figure(2.4 + 1.2 * n, 1.0 + 0.8 * world, f"all-reduce (mean) over {world} processes")
    right = n + 3.2
    for r in range(world):
        y = world - 1 - r
        _cells(ax, 0, y, before[r], vmax, f"rank {r}")
        _cells(ax, right, y, after[r], vmax, "")
        ax.add_patch(Rectangle((-2.05, y + 0.1), 0.35, 0.6, color=RANK_COLOURS[r]))
    ax.add_patch(FancyArrowPatch((n + 0.3, world / 2), (right - 0.3, world / 2), arrowstyle="-|>", mutation_scale=14))
    ax.text(n + 1.6, world / 2 + 0.15, "sum, / world", ha="center", va="bottom", fontsize=LABEL_PT)
    ax.text(n / 2, world + 0.1, "gradient of its own shard", ha="center", fontsize=LABEL_PT)
    ax.text(right + n / 2, world + 0.1, "the same mean on every rank", ha="center", fontsize=LABEL_PT)
    ax.set_xlim(-2.2, right + n + 0.2)
    ax.set_ylim(-0.2, world + 0.6)
    return fig, {"before": before, "after": after}


def sampler_orders(samplers: Sequence[DistributedSampler], epochs: Sequence[int]) -> dict[int, list[list[int]]]:
    """The indices each sampler (one per rank) yields in each epoch; the samplers themselves are not changed."""
    orders = {}
    for epoch in epochs:
        ranks = []
        for sampler in samplers:
            own = copy.copy(sampler)
            own.set_epoch(epoch)
            ranks.append(list(own))
        orders[epoch] = ranks
    return orders


def plot_sampler(samplers: Sequence[DistributedSampler], epochs: Sequence[int] = (0, 1)) -> tuple[Figure, dict]:
    """Which rank reads which example, epoch by epoch: one row per epoch, one square per index. 05 §3.

    A square's colour is the rank that reads the example, the number in it when in that rank's epoch it
    comes; a hatched square cut in two is read twice (the padding that gives every rank as many examples).
    Returns the figure and {epoch: [indices of rank 0, of rank 1, ...]}.
    """
    if not samplers or len(samplers) > len(RANK_COLOURS):
        raise DiagramError(f"plot_sampler draws 1 to {len(RANK_COLOURS)} samplers (one per rank), got {len(samplers)}.")
    n = len(samplers[0].dataset)
    if n > 40:
        raise DiagramError(f"plot_sampler draws one square per example: give it a data set of at most 40, not {n}.")
    orders = sampler_orders(samplers, epochs)
    fig, ax = new_figure(
        1.6 + 0.45 * n, 1.0 + 0.8 * len(epochs), f"DistributedSampler: {n} examples over {len(samplers)} ranks"
    )
    for row, epoch in enumerate(epochs):
        y = len(epochs) - 1 - row
        reads: dict[int, list[tuple[int, int]]] = {}
        for rank, indices in enumerate(orders[epoch]):
            for position, index in enumerate(indices):
                reads.setdefault(index, []).append((rank, position))
        for index in range(n):
            got = reads.get(index, [])
            if not got:  # nobody reads it (cannot happen with drop_last=False): an empty square
                ax.add_patch(Rectangle((index, y), 0.92, 0.8, facecolor="white", edgecolor="#333", lw=0.5))
            for k, (rank, position) in enumerate(got):  # read twice: two halves, one per read
                width = 0.92 / len(got)
                ax.add_patch(
                    Rectangle(
                        (index + k * width, y),
                        width,
                        0.8,
                        facecolor=RANK_COLOURS[rank],
                        edgecolor="#333",
                        lw=0.5,
                        hatch="///" if len(got) > 1 else None,
                    )
                )
                ax.text(
                    index + (k + 0.5) * width,
                    y + 0.4,
                    str(position),
                    ha="center",
                    va="center",
                    fontsize=LABEL_PT if len(got) == 1 else MIN_FONT_PT,
                    color="white",
                )
        ax.text(-0.3, y + 0.4, f"epoch {epoch}", ha="right", va="center", fontsize=LABEL_PT)
    ax.text(-0.3, len(epochs) - 0.05, "example", ha="right", va="bottom", fontsize=MIN_FONT_PT + 1, color="#333")
    for index in range(n):
        ax.text(
            index + 0.46,
            len(epochs) - 0.05,
            str(index),
            ha="center",
            va="bottom",
            fontsize=MIN_FONT_PT + 1,
            color="#333",
        )
    for rank in range(len(samplers)):
        ax.add_patch(Rectangle((rank * 3.2, -0.75), 0.5, 0.4, color=RANK_COLOURS[rank]))
        ax.text(rank * 3.2 + 0.7, -0.55, f"rank {rank}", va="center", fontsize=LABEL_PT)
    ax.set_xlim(-2.6, n + 0.2)
    ax.set_ylim(-0.9, len(epochs) + 0.5)
    return fig, orders
