"""Notebook 04's pictures: one head's matrices and the multi-head split (§1), and the attention views (§3-§5)."""

from __future__ import annotations

import html
import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle
from torch import nn

from helpers.attention import MAX_VIEW_TOKENS, encode, get_attentions, tokens_of

from . import DPI, DiagramError, new_figure, show_widget

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
        raise DiagramError(
            f"draw_attention_head needs a BERT self-attention module (with .query, .key, .value and "
            f".num_attention_heads), got {type(self_attention).__name__}: pass "
            "model.base_model.encoder.layer[l].attention.self"
        )
    if hidden_states.dim() != 3 or hidden_states.shape[0] != 1:
        raise DiagramError(
            f"draw_attention_head draws one input: hidden_states of shape (1, tokens, hidden), "
            f"got {tuple(hidden_states.shape)}"
        )
    n = hidden_states.shape[1]
    if n > MAX_TOKENS:
        raise DiagramError(f"draw_attention_head draws at most {MAX_TOKENS} tokens, got {n}: use a shorter sentence")
    if not 0 <= head < heads:
        raise DiagramError(f"head {head} does not exist: this layer has heads 0 to {heads - 1}")
    d = hidden_states.shape[-1] // heads
    with torch.no_grad():
        q, k, v = (
            proj(hidden_states)[0, :, head * d : (head + 1) * d].float().cpu()
            for proj in (self_attention.query, self_attention.key, self_attention.value)
        )
    scores = q @ k.T / d**0.5
    weights = scores.softmax(dim=-1)
    return {"Q_h": q, "K_hᵀ": k.T, "Q_h K_hᵀ / √d": scores, "A = softmax": weights, "V_h": v, "A V_h": weights @ v}


def draw_attention_head(
    self_attention: nn.Module,
    hidden_states: torch.Tensor,
    head: int = 0,
    tokens: Sequence[str] | None = None,
    title: str | None = None,
) -> HeadPicture:
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
        image = matrix.detach().cpu().numpy()  # a tensor to imshow warns under NumPy 2 (no `copy` in its __array__)
        if name == "A = softmax":
            ax.imshow(image, cmap="Greys", vmin=0, vmax=1, interpolation="nearest")
        else:
            vmax = float(matrix.abs().max()) or 1.0
            ax.imshow(image, cmap="coolwarm", vmin=-vmax, vmax=vmax, interpolation="nearest")
        ax.set_title(f"{name}  {tuple(matrix.shape)}", fontsize=9, family="monospace")
        ax.set_xticks([])
        ax.set_yticks([])
        labels = [t[:9] for t in tokens] if tokens is not None and len(tokens) == n else None
        if labels and name in ("Q_h", "A = softmax"):
            ax.set_yticks(range(n), labels, fontsize=8)
        if labels and name in ("K_hᵀ", "A = softmax"):
            ax.set_xticks(range(n), labels, fontsize=8, rotation=90)
    for k, operator in ((0, "×"), (1, "="), (3, "×"), (4, "=")):
        left, right = axes[k].get_position(), axes[k + 1].get_position()
        fig.text(
            (left.x1 + right.x0) / 2,
            (left.y0 + left.y1) / 2,
            operator,
            ha="center",
            va="center",
            fontsize=13,
            color="0.25",
        )
    fig.text(
        0.5,
        0.01,
        "A: the softmax of each row of the scores (each row sums to 1) · rows: query tokens · "
        "columns of Kᵀ and A: key tokens\ncolours: blue < 0 < red, each matrix on its own scale; A from white (0) "
        "to black (1)",
        ha="center",
        fontsize=8,
        color="0.3",
    )
    return HeadPicture(fig, m)


@dataclass
class Split:
    """What `draw_multi_head_split` drew: the figure, each stage with its shape, each head's slice of hidden."""

    figure: Figure
    stages: list[tuple[str, tuple[int, ...]]]
    slices: list[tuple[int, int]]


def split_stages(config, tokens: int, batch: int = 1) -> list[tuple[str, tuple[int, ...]]]:
    """Each step of multi-head self-attention with its tensor shape, from a model config (hidden size, heads)."""
    hidden, heads = getattr(config, "hidden_size", None), getattr(config, "num_attention_heads", None)
    if not isinstance(hidden, int) or not isinstance(heads, int) or heads < 1:
        raise DiagramError(
            f"draw_multi_head_split needs a model or its config (hidden_size, num_attention_heads), "
            f"got {type(config).__name__}"
        )
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
    fig, ax = new_figure(12, 3.9, f"Multi-head attention: hidden size {hidden} = {heads} heads x {d}")
    cmap = plt.get_cmap("tab20")
    slices = [(h * d, (h + 1) * d) for h in range(heads)]
    # top: one token's query vector, cut into the heads' slices
    bar_w = 10.0
    ax.text(0, 4.25, "one token's query (and key, value) vector:", fontsize=9, va="bottom")
    for h, (start, _) in enumerate(slices):
        x = bar_w * start / hidden
        ax.add_patch(Rectangle((x, 3.6), bar_w * d / hidden, 0.5, facecolor=cmap(h % 20), edgecolor="white", lw=0.8))
        if heads <= 16:
            ax.text(x + bar_w * d / hidden / 2, 3.85, f"h{h}", ha="center", va="center", fontsize=8, color="white")
    ax.text(0, 3.5, "0", fontsize=8, va="top")
    ax.text(bar_w, 3.5, str(hidden), fontsize=8, va="top", ha="right")
    ax.text(bar_w * d / hidden / 2, 3.5, f"{d} dims", fontsize=8, va="top", ha="center")
    # bottom: the stages as boxes with their shapes
    box_w, gap = 1.12, 0.15
    for k, (name, shape) in enumerate(stages):
        x = k * (box_w + gap)
        per_head = len(shape) == 4 and shape[1] == heads and name != stages[2][0]
        ax.add_patch(
            FancyBboxPatch(
                (x, 1.0),
                box_w,
                1.6,
                boxstyle="round,pad=0.02",
                facecolor="tab:orange" if per_head else "tab:blue",
                alpha=0.25,
                edgecolor="0.4",
            )
        )
        ax.text(x + box_w / 2, 2.1, textwrap.fill(name, 15), ha="center", va="center", fontsize=8, linespacing=1.25)
        ax.text(
            x + box_w / 2, 1.3, str(shape).replace(" ", ""), ha="center", va="center", fontsize=8, family="monospace"
        )
        if k:
            ax.add_patch(
                FancyArrowPatch((x - gap + 0.01, 1.8), (x - 0.01, 1.8), arrowstyle="-|>", mutation_scale=8, color="0.3")
            )
    ax.text(
        0,
        0.55,
        f"shapes for {batch} input(s) of {tokens} tokens: (batch, tokens, hidden) or "
        f"(batch, heads, tokens, d); orange: one matrix per head, all {heads} in one batched product",
        fontsize=8,
        color="0.3",
    )
    ax.set_xlim(-0.1, len(stages) * (box_w + gap))
    ax.set_ylim(0.4, 4.45)
    return Split(fig, stages, slices)


HEAD_COLORS: tuple[str, ...] = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#ad494a",
    "#637939",
    "#8c6d31",
    "#843c39",
    "#7b4173",
)
"""One fixed colour per head (matplotlib's tab10 + tab20b), so a head has the same colour in every view."""


def _short(token: str, width: int = 12) -> str:
    """A token label that fits a tick: long tokens end in an ellipsis."""
    return token if len(token) <= width else token[: width - 1] + "…"


def plot_head(attn: torch.Tensor, tokens: Sequence[str], title: str = "Attention", ax=None) -> Figure:
    """One head's (n, n) attention as a heatmap: rows are queries (who looks), columns keys. Taught in 04 §3.1."""
    labels = [_short(t) for t in tokens]
    if ax is None:
        size = max(4.0, 0.22 * len(tokens) + 1.5)
        fig, ax = plt.subplots(figsize=(size + 1, size), dpi=DPI)
    else:
        fig = ax.figure
    im = ax.imshow(attn.numpy(), cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(len(tokens)), labels, rotation=90, fontsize=8)
    ax.set_yticks(range(len(tokens)), labels, fontsize=8)
    ax.set(xlabel="key (attended to)", ylabel="query (attending)", title=title)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="attention weight")
    return fig


def plot_model_view(attn: torch.Tensor, title: str = "Model view: every head of every layer") -> Figure:
    """A layers x heads grid of small heatmaps: a whole model's attention for one input. Taught in 04 §3.2."""
    layers, heads = attn.shape[:2]
    fig, axes = plt.subplots(layers, heads, figsize=(heads * 0.9, layers * 0.9 + 0.6), squeeze=False, dpi=DPI)
    for layer in range(layers):
        for h in range(heads):
            ax = axes[layer, h]
            ax.imshow(attn[layer, h].numpy(), cmap="viridis", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if layer == 0:
                ax.set_title(str(h), fontsize=8)
            if h == 0:
                ax.set_ylabel(str(layer), fontsize=8, rotation=0, labelpad=8)
    fig.suptitle(title)
    fig.supxlabel("head (each thumbnail: query rows x key columns)")
    fig.supylabel("layer")
    return fig


def plot_token_rows(
    rows: np.ndarray,
    tokens: Sequence[str],
    row_labels: Sequence[str],
    title: str,
    ylabel: str = "layer",
    hide: Sequence[bool] | None = None,
) -> Figure:
    """Attention rows over the same tokens as one heatmap; hidden columns' weight goes in the labels. 04 §3.3."""
    rows, labels, tokens = np.asarray(rows), list(row_labels), list(tokens)
    if hide is not None:
        hide = np.asarray(hide, dtype=bool)
        hidden = rows[:, hide].sum(-1)
        names = "+".join(dict.fromkeys(t for t, h in zip(tokens, hide) if h))
        labels = [f"{label} ({names} {w:.2f})" for label, w in zip(labels, hidden)]
        rows, tokens = rows[:, ~hide], [t for t, h in zip(tokens, hide) if not h]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.25 * len(tokens) + 3), 0.45 * len(labels) + 1.8), dpi=DPI)
    im = ax.imshow(rows, cmap="magma", aspect="auto", vmin=0)
    ax.set_xticks(range(len(tokens)), [_short(t) for t in tokens], rotation=90, fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=9)
    ax.set(xlabel="token attended to", ylabel=ylabel, title=title)
    fig.colorbar(im, ax=ax, pad=0.02, label="attention weight")
    return fig


def plot_head_scores(results: dict[str, dict], title: str = "What heads do", columns: int = 2) -> Figure:
    """One layers x heads heatmap per score, each on its own scale (0 to its best head), chance marked. 04 §5.

    Scores of different kinds differ a hundredfold (a [SEP] head may peak at 0.02, a previous-token head at 0.8),
    so one shared 0-1 scale would leave the weak panels uniformly dark: each panel gets its own colour scale, and a
    white line on its colour bar marks the chance level, so that "how far above chance" reads off every panel.
    """
    rows = math.ceil(len(results) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.4 * columns, 3.4 * rows + 0.6), squeeze=False, dpi=DPI)
    for ax, (name, result) in zip(axes.flat, results.items()):
        scores = np.asarray(result["scores"], dtype=float)
        chance = float(result["chance"])
        top = max(float(scores.max()), 2 * chance, 1e-6)
        im = ax.imshow(scores, cmap="viridis", vmin=0, vmax=top, aspect="auto")
        ratio = f"{scores.max() / chance:.0f}x " if chance > 0 else ""
        ax.set_title(f"{name}: best {scores.max():.2f} ({ratio}chance {chance:.3f})", fontsize=10)
        ax.set(xlabel="head", ylabel="layer", xticks=range(scores.shape[1]), yticks=range(scores.shape[0]))
        ax.tick_params(labelsize=8)
        bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        bar.set_label("mean attention (own scale)", fontsize=8)
        bar.ax.tick_params(labelsize=8)
        bar.ax.axhline(chance, color="white", linewidth=2)
    for ax in list(axes.flat)[len(results) :]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def head_view_svg(
    attn: torch.Tensor,
    tokens: Sequence[str],
    heads: Sequence[int] | None = None,
    title: str = "",
    query: int | None = None,
    token_types: Sequence[int] | None = None,
    min_weight: float = 0.02,
    row_height: int = 18,
    width: int = 460,
) -> str:
    """A bertviz-style head view of one layer (heads, n, n) as SVG: a line per weight, opacity = weight. 04 §4.

    Lines under min_weight are left out; `query` keeps one token's lines; token_types colours a pair's second part.
    """
    n_heads, n = attn.shape[0], attn.shape[-1]
    heads = list(range(n_heads)) if heads is None else list(heads)
    top = 44 if title else 24
    legend = 22 if len(heads) > 1 else 0
    height = top + legend + n * row_height + 8
    x_left, x_right = width * 0.30, width * 0.70
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="13">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    if title:
        parts.append(
            f'<text x="{width / 2:.1f}" y="20" text-anchor="middle" font-weight="bold">{html.escape(title)}</text>'
        )
    parts.append(
        f'<text x="{x_left:.1f}" y="{top - 6}" text-anchor="end" fill="#666" font-size="11">'
        f'query</text><text x="{x_right:.1f}" y="{top - 6}" fill="#666" font-size="11">key</text>'
    )
    if legend:
        for k, h in enumerate(heads):
            x = 8 + k * (width - 16) / len(heads)
            color = HEAD_COLORS[h % len(HEAD_COLORS)]
            parts.append(
                f'<rect x="{x:.1f}" y="{top}" width="10" height="10" fill="{color}"/>'
                f'<text x="{x + 13:.1f}" y="{top + 9}" font-size="10">{h}</text>'
            )
    y0 = top + legend + row_height * 0.7

    def y(i: int) -> float:
        return y0 + i * row_height

    # one group per head, weakest lines first so that strong ones end up on top
    for h in heads:
        color = HEAD_COLORS[h % len(HEAD_COLORS)]
        weights = attn[h].numpy()
        rows = range(n) if query is None else [query]
        lines = [(float(weights[i, j]), i, j) for i in rows for j in range(n) if weights[i, j] >= min_weight]
        lines.sort()
        parts.append(f'<g stroke="{color}" stroke-width="2">')
        parts.extend(
            f'<line x1="{x_left + 6:.1f}" y1="{y(i) - 4:.1f}" x2="{x_right - 6:.1f}" y2="{y(j) - 4:.1f}" '
            f'stroke-opacity="{w:.3f}"/>'
            for w, i, j in lines
        )
        parts.append("</g>")
    for i, token in enumerate(tokens):
        second = token_types is not None and token_types[i] == 1
        fill = "#b5542d" if second else "#222"
        weight = ' font-weight="bold"' if query == i else ""
        label = html.escape(_short(token, 16))
        parts.append(f'<text x="{x_left:.1f}" y="{y(i):.1f}" text-anchor="end" fill="{fill}"{weight}>{label}</text>')
        parts.append(f'<text x="{x_right:.1f}" y="{y(i):.1f}" fill="{fill}">{label}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


class AttentionExplorer:
    """ipywidgets around head_view_svg (no JavaScript of its own): type text, pick layer, head, token. 04 §4."""

    def __init__(
        self,
        model: nn.Module,
        tokenizer,
        text: str,
        text_pair: str = "",
        layer: int = 0,
        head: int = 0,
        max_tokens: int = MAX_VIEW_TOKENS,
    ):
        """Run the model on the text and build the widgets, showing the given layer and head."""
        import ipywidgets as widgets

        self.model, self.tokenizer, self.max_tokens = model, tokenizer, max_tokens
        layers, heads = model.config.num_hidden_layers, model.config.num_attention_heads
        self.text = widgets.Textarea(value=text, description="Sentence", rows=2, layout=widgets.Layout(width="95%"))
        self.text_pair = widgets.Text(
            value=text_pair,
            description="Pair (opt.)",
            placeholder="optional second sentence",
            layout=widgets.Layout(width="95%"),
        )
        self.run_button = widgets.Button(description="Run the model", button_style="primary", icon="play")
        self.layer = widgets.IntSlider(value=layer, min=0, max=layers - 1, description="Layer", continuous_update=False)
        self.head = widgets.Dropdown(
            options=[("all heads", -1)] + [(f"head {h}", h) for h in range(heads)], value=head, description="Head"
        )
        self.query = widgets.Dropdown(options=[("all tokens", -1)], value=-1, description="From token")
        self.status = widgets.HTML()
        self.view = widgets.HTML()
        self.run_button.on_click(lambda _: self.run())
        for control in (self.layer, self.head, self.query):
            control.observe(lambda _: self.render(), names="value")
        controls = widgets.HBox([self.layer, self.head, self.query], layout=widgets.Layout(flex_flow="row wrap"))
        self.widget = widgets.VBox([self.text, self.text_pair, self.run_button, controls, self.status, self.view])
        self.widget.add_class("attention-explorer")
        self.run()

    def run(self) -> None:
        """Tokenise the current text (capped at max_tokens), run the model once, and redraw."""
        pair = self.text_pair.value.strip() or None
        full = len(self.tokenizer(self.text.value, pair, truncation=False, verbose=False)["input_ids"])
        encoding = encode(self.tokenizer, self.text.value, pair, self.max_tokens, verbose=False)
        self.tokens = tokens_of(self.tokenizer, encoding)
        self.token_types = encoding["token_type_ids"][0].tolist() if "token_type_ids" in encoding else None
        self.attentions = get_attentions(self.model, encoding)
        self.capped = full > self.max_tokens
        self._note = (
            f"capped: {full} tokens, showing the first {self.max_tokens}"
            if self.capped
            else f"{len(self.tokens)} tokens"
        )
        with self.query.hold_trait_notifications():
            self.query.options = [("all tokens", -1)] + [(f"{i}: {t}", i) for i, t in enumerate(self.tokens)]
            self.query.value = -1
        self.render()

    def render(self) -> None:
        """Redraw the head view for the selected layer, head and query token."""
        layer, head, query = self.layer.value, self.head.value, self.query.value
        heads = None if head == -1 else [head]
        which = "all heads" if head == -1 else f"head {head}"
        self.view.value = head_view_svg(
            self.attentions[layer],
            self.tokens,
            heads=heads,
            title=f"Layer {layer}, {which}",
            query=None if query == -1 else query,
            token_types=self.token_types,
            min_weight=0.05 if head == -1 else 0.02,
        )
        self.status.value = (
            f"<span style='color:#555'>{html.escape(self._note)} · line opacity = attention "
            f"weight · left: query, right: key</span>"
        )

    def _ipython_display_(self) -> None:
        """Show the widget; a notebook saved without widget state keeps only the text/plain line below."""
        show_widget(
            self.widget,
            "[the attention explorer: a sentence box, a layer slider, head and token menus, and the head view they "
            "draw; it moves in JupyterLab, Colab or VS Code with a running kernel]",
        )
