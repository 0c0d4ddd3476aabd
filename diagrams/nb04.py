"""Notebook 04's diagrams: one head's scaled dot-product attention with its real matrices (§1), and the
multi-head split with the shapes of the loaded model's config (§1)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle
from torch import nn

from . import DPI, DiagramError, new_figure

MAX_TOKENS = 32
"""Longest input the head picture draws: beyond it the matrices are too small to read."""


@dataclass
class HeadPicture:
    """What `draw_attention_head` drew: the figure and each matrix of one head, (rows, columns) as drawn."""
    figure: Figure
    matrices: dict[str, torch.Tensor]


def head_matrices(self_attention: nn.Module, hidden_states: torch.Tensor, head: int) -> dict[str, torch.Tensor]:
    """Q_h, K_h^T, the scaled scores, the softmax weights, V_h and the output of one head of one input."""
    heads = getattr(self_attention, "num_attention_heads", None)
    if heads is None or not all(hasattr(self_attention, p) for p in ("query", "key", "value")):
        raise DiagramError(f"draw_attention_head needs a BERT self-attention module (with .query, .key, .value and "
                           f".num_attention_heads), got {type(self_attention).__name__}: pass "
                           "model.base_model.encoder.layer[l].attention.self")
    if hidden_states.dim() != 3 or hidden_states.shape[0] != 1:
        raise DiagramError(f"draw_attention_head draws one input: hidden_states of shape (1, tokens, hidden), "
                           f"got {tuple(hidden_states.shape)}")
    n = hidden_states.shape[1]
    if n > MAX_TOKENS:
        raise DiagramError(f"draw_attention_head draws at most {MAX_TOKENS} tokens, got {n}: use a shorter sentence")
    if not 0 <= head < heads:
        raise DiagramError(f"head {head} does not exist: this layer has heads 0 to {heads - 1}")
    d = hidden_states.shape[-1] // heads
    with torch.no_grad():
        q, k, v = (proj(hidden_states)[0, :, head * d:(head + 1) * d].float().cpu()
                   for proj in (self_attention.query, self_attention.key, self_attention.value))
    scores = q @ k.T / d ** 0.5
    weights = scores.softmax(dim=-1)
    return {"Q_h": q, "K_hᵀ": k.T, "Q_h K_hᵀ / √d": scores, "A = softmax": weights, "V_h": v, "A V_h": weights @ v}


def draw_attention_head(self_attention: nn.Module, hidden_states: torch.Tensor, head: int = 0,
                        tokens: Sequence[str] | None = None, title: str | None = None) -> HeadPicture:
    """softmax(Q K^T / sqrt(d)) V for one head, as the six real matrices it multiplies, each with its shape. 04 §1.

    `self_attention` is a BERT self-attention module, `hidden_states` what it reads, (1, tokens, hidden).
    """
    m = head_matrices(self_attention, hidden_states, head)
    n, d = m["Q_h"].shape
    fig = plt.figure(figsize=(8.8, 5.9), dpi=DPI)
    fig.suptitle(title or f"One head: softmax(Q Kᵀ / √{d}) V with {n} tokens and head size d = {d}", fontsize=11)
    names = list(m)
    rows = fig.add_gridspec(2, 1, left=0.1, right=0.98, top=0.9, bottom=0.1, hspace=0.3)
    axes = []
    for r, row in enumerate((names[:3], names[3:])):
        grid = rows[r].subgridspec(1, 3, width_ratios=[m[name].shape[1] for name in row], wspace=0.35)
        axes += [fig.add_subplot(grid[0, c]) for c in range(3)]
    for ax, (name, matrix) in zip(axes, m.items()):
        if name == "A = softmax":
            ax.imshow(matrix, cmap="Greys", vmin=0, vmax=1, interpolation="nearest")
        else:
            vmax = float(matrix.abs().max()) or 1.0
            ax.imshow(matrix, cmap="coolwarm", vmin=-vmax, vmax=vmax, interpolation="nearest")
        ax.set_title(f"{name}  {tuple(matrix.shape)}", fontsize=9, family="monospace")
        ax.set_xticks([])
        ax.set_yticks([])
        labels = [t[:9] for t in tokens] if tokens is not None and len(tokens) == n else None
        if labels and name in ("Q_h", "A = softmax"):
            ax.set_yticks(range(n), labels, fontsize=6.5)
        if labels and name in ("K_hᵀ", "A = softmax"):
            ax.set_xticks(range(n), labels, fontsize=6.5, rotation=90)
    for k, operator in ((0, "×"), (1, "="), (3, "×"), (4, "=")):
        left, right = axes[k].get_position(), axes[k + 1].get_position()
        fig.text((left.x1 + right.x0) / 2, (left.y0 + left.y1) / 2, operator, ha="center", va="center",
                 fontsize=13, color="0.25")
    fig.text(0.5, 0.01, "A: the softmax of each row of the scores (each row sums to 1) · rows: query tokens · "
             "columns of Kᵀ and A: key tokens\ncolours: blue < 0 < red, each matrix on its own scale; A from white (0) "
             "to black (1)",
             ha="center", fontsize=8, color="0.3")
    return HeadPicture(fig, m)


@dataclass
class Split:
    """What `draw_multi_head_split` drew: the figure, each stage with its shape, each head's slice of the hidden size."""
    figure: Figure
    stages: list[tuple[str, tuple[int, ...]]]
    slices: list[tuple[int, int]]


def split_stages(config, tokens: int, batch: int = 1) -> list[tuple[str, tuple[int, ...]]]:
    """Each step of multi-head self-attention with its tensor shape, from a model config (hidden size, heads)."""
    hidden, heads = getattr(config, "hidden_size", None), getattr(config, "num_attention_heads", None)
    if not isinstance(hidden, int) or not isinstance(heads, int) or heads < 1:
        raise DiagramError(f"draw_multi_head_split needs a model or its config (hidden_size, num_attention_heads), "
                           f"got {type(config).__name__}")
    if hidden % heads:
        raise DiagramError(f"hidden size {hidden} is not a multiple of {heads} heads: no model splits it like that")
    if tokens < 1 or batch < 1:
        raise DiagramError(f"tokens and batch must be at least 1, got tokens={tokens}, batch={batch}")
    d = hidden // heads
    return [
        ("x: the layer's input", (batch, tokens, hidden)),
        ("Q, K, V = x W + b", (batch, tokens, hidden)),
        (f"view: {heads} slices of {d}", (batch, tokens, heads, d)),
        ("transpose(1, 2)", (batch, heads, tokens, d)),
        ("scores Q Kᵀ / √d, softmax", (batch, heads, tokens, tokens)),
        ("A V: each head's output", (batch, heads, tokens, d)),
        ("transpose, reshape: concat", (batch, tokens, hidden)),
        (f"output dense {hidden}→{hidden}", (batch, tokens, hidden)),
    ]


def draw_multi_head_split(model_or_config, tokens: int, batch: int = 1) -> Split:
    """The hidden size cut into one slice per head, and every step's shape from input to output. 04 §1.

    Takes a model (its `.config`) or a config; the shapes follow from hidden_size and num_attention_heads.
    """
    config = getattr(model_or_config, "config", model_or_config)
    stages = split_stages(config, tokens, batch)
    hidden, heads = config.hidden_size, config.num_attention_heads
    d = hidden // heads
    fig, ax = new_figure(11, 3.7, f"Multi-head attention: hidden size {hidden} = {heads} heads x {d}")
    cmap = plt.get_cmap("tab20")
    slices = [(h * d, (h + 1) * d) for h in range(heads)]
    # top: one token's query vector, cut into the heads' slices
    bar_w = 10.0
    ax.text(0, 4.25, "one token's query (and key, value) vector:", fontsize=9, va="bottom")
    for h, (start, stop) in enumerate(slices):
        x = bar_w * start / hidden
        ax.add_patch(Rectangle((x, 3.6), bar_w * d / hidden, 0.5, facecolor=cmap(h % 20), edgecolor="white", lw=0.8))
        if heads <= 16:
            ax.text(x + bar_w * d / hidden / 2, 3.85, f"h{h}", ha="center", va="center", fontsize=7, color="white")
    ax.text(0, 3.5, "0", fontsize=7, va="top")
    ax.text(bar_w, 3.5, str(hidden), fontsize=7, va="top", ha="right")
    ax.text(bar_w * d / hidden / 2, 3.5, f"{d} dims", fontsize=7, va="top", ha="center")
    # bottom: the stages as boxes with their shapes
    box_w, gap = 1.12, 0.15
    for k, (name, shape) in enumerate(stages):
        x = k * (box_w + gap)
        per_head = len(shape) == 4 and shape[1] == heads and name != stages[2][0]
        ax.add_patch(FancyBboxPatch((x, 1.0), box_w, 1.6, boxstyle="round,pad=0.02",
                                    facecolor="tab:orange" if per_head else "tab:blue", alpha=0.25,
                                    edgecolor="0.4"))
        ax.text(x + box_w / 2, 2.1, textwrap.fill(name, 15), ha="center", va="center", fontsize=7.5,
                linespacing=1.25)
        ax.text(x + box_w / 2, 1.3, str(shape).replace(" ", ""), ha="center", va="center", fontsize=7.5,
                family="monospace")
        if k:
            ax.add_patch(FancyArrowPatch((x - gap + 0.01, 1.8), (x - 0.01, 1.8), arrowstyle="-|>",
                                         mutation_scale=8, color="0.3"))
    ax.text(0, 0.55, f"shapes for {batch} input(s) of {tokens} tokens: (batch, tokens, hidden) or "
                     f"(batch, heads, tokens, d); orange: one matrix per head, all {heads} in one batched product",
            fontsize=8, color="0.3")
    ax.set_xlim(-0.1, len(stages) * (box_w + gap))
    ax.set_ylim(0.4, 4.45)
    return Split(fig, stages, slices)
