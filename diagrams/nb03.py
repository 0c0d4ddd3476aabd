"""Notebook 03's diagrams: head+tail truncation (§2), BERT with its classification head (§3), padding per batch (§4)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch, Rectangle
from torch import nn

from diagrams import DPI, DiagramError, new_figure

PRETRAINED, NEW, NO_PARAMS = "tab:blue", "tab:orange", "0.85"
"""Box colours: weights loaded from the pretrained BERT, weights that start random, no weights at all."""


# ----------------------------------------------------------------------------------------------------------
# §2 Truncation: which tokens of a long review each rule keeps
# ----------------------------------------------------------------------------------------------------------


@dataclass
class Kept:
    """What one truncation kept of a review's text tokens: the first `head`, the last `tail`, `dropped` between."""

    name: str
    head: int
    dropped: int
    tail: int


def kept_segments(full_ids: Sequence[int], kept_ids: Sequence[int]) -> tuple[int, int, int]:
    """(head, dropped, tail): how a truncated list of text ids (no special tokens) cuts the full list."""
    full, kept = list(full_ids), list(kept_ids)
    if len(kept) > len(full):
        raise DiagramError(f"the truncated review has {len(kept)} tokens, more than the full one ({len(full)})")
    if kept == full:
        return len(full), 0, 0
    head = 0
    while head < len(kept) and kept[head] == full[head]:
        head += 1
    tail = len(kept) - head
    if tail and kept[head:] != full[len(full) - tail :]:
        raise DiagramError("the truncated ids are neither a head nor a head plus a tail of the full review's ids")
    return head, len(full) - head - tail, tail


def draw_truncation(
    full_ids: Sequence[int], truncated: Mapping[str, Sequence[int]], specials: Collection[int] = ()
) -> tuple[Figure, list[Kept]]:
    """One bar per truncation rule over a review's text tokens: kept head, dropped middle, kept tail. Taught in 03 §2.

    `truncated` maps a rule's name to the ids it produced; ids in `specials` ([CLS], [SEP]) are removed first.
    """
    if not truncated:
        raise DiagramError("draw_truncation needs at least one truncated version of the review")
    specials = set(specials)
    full = [i for i in full_ids if i not in specials]
    rows = [Kept(name, *kept_segments(full, [i for i in ids if i not in specials])) for name, ids in truncated.items()]
    n = len(full)
    fig, ax = new_figure(
        9, 1.0 * len(rows) + 1.0, f"What the model reads of a {n}-token review ({n - rows[0].dropped} tokens kept)"
    )
    for k, row in enumerate(rows):
        y = 1.4 * (len(rows) - 1 - k)
        spans = [
            (0, row.head, "tab:green", f"first {row.head}"),
            (row.head, row.dropped, "0.85", f"{row.dropped} dropped" if row.dropped else ""),
            (row.head + row.dropped, row.tail, "tab:green", f"last {row.tail}" if row.tail else ""),
        ]
        for start, width, color, label in spans:
            if width == 0:
                continue
            ax.add_patch(
                Rectangle(
                    (start, y + 0.15),
                    width,
                    0.7,
                    facecolor=color,
                    edgecolor="black",
                    alpha=0.85,
                    hatch="//" if color == "0.85" else None,
                )
            )
            if label and width > 0.08 * n:  # inside a wide segment, above a narrow one
                ax.text(
                    start + width / 2,
                    y + 0.5,
                    label,
                    ha="center",
                    va="center",
                    fontsize=9,
                    color="white" if color == "tab:green" else "black",
                )
            elif label:
                ax.text(start + width / 2, y + 0.9, label, ha="center", va="bottom", fontsize=8)
        ax.text(-0.01 * n, y + 0.5, row.name, ha="right", va="center", fontsize=10)
    ax.set_xlim(-0.16 * n, 1.01 * n)
    ax.set_ylim(-0.35, 1.4 * len(rows) - 0.2)
    ax.annotate("", xy=(n, -0.2), xytext=(0, -0.2), arrowprops=dict(arrowstyle="->", color="0.4"))
    ax.text(
        0,
        -0.3,
        "position in the review (text tokens, without [CLS] and [SEP]) →",
        ha="left",
        va="top",
        fontsize=8,
        color="0.3",
    )
    ax.legend(
        handles=[Patch(facecolor="tab:green", label="kept"), Patch(facecolor="0.85", hatch="//", label="dropped")],
        loc="lower right",
        bbox_to_anchor=(1.0, -0.12),
        ncol=2,
        fontsize=8,
        frameon=False,
    )
    return fig, rows


# ----------------------------------------------------------------------------------------------------------
# §3 BERT + classification head, with shapes from a real forward pass
# ----------------------------------------------------------------------------------------------------------


@dataclass
class Stage:
    """One box of the BERT classifier diagram: its output shape, its parameters, whether they start random."""

    name: str
    detail: str
    shape: tuple[int, ...]
    parameters: int
    new: bool


def _parts(model: nn.Module) -> list[tuple[str, str, nn.Module | None]]:
    """The stages of a BertForSequenceClassification (name, detail, module), checking that it is one."""
    bert = getattr(model, "bert", None)
    needed = (
        getattr(bert, "embeddings", None),
        getattr(bert, "encoder", None),
        getattr(bert, "pooler", None),
        getattr(model, "classifier", None),
    )
    if any(part is None for part in needed):
        raise DiagramError(
            f"draw_bert_classifier draws a BERT classifier (model.bert.embeddings, .encoder, .pooler "
            f"and model.classifier), got {type(model).__name__}: load it with "
            "AutoModelForSequenceClassification from a BERT checkpoint"
        )
    cfg = model.config
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    return [
        (
            "embeddings",
            f"word {cfg.vocab_size:,} x {cfg.hidden_size}\nposition {cfg.max_position_embeddings} x "
            f"{cfg.hidden_size}\nsegment {cfg.type_vocab_size} x {cfg.hidden_size}\n+ LayerNorm",
            bert.embeddings,
        ),
        (
            f"encoder: {cfg.num_hidden_layers} layers",
            f"each: self-attention,\n{cfg.num_attention_heads} heads x {head_dim};\n"
            f"feed-forward\n{cfg.hidden_size}→{cfg.intermediate_size}→{cfg.hidden_size}",
            bert.encoder,
        ),
        ("[CLS] vector", "position 0\nof the last\nlayer's output", None),
        ("pooler", f"dense {cfg.hidden_size}→{cfg.hidden_size}\n+ tanh", bert.pooler),
        ("dropout", f"p = {model.dropout.p:g}", None),
        ("classifier", f"linear {cfg.hidden_size}→{model.classifier.out_features}", model.classifier),
    ]


def bert_classifier_stages(
    model: nn.Module, input_ids: torch.Tensor, new_parameters: Collection[str] = ()
) -> list[Stage]:
    """Each stage's output shape from a real forward pass on `input_ids`, its parameter count, new or pretrained."""
    parts = _parts(model)
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = []
    for name, _, module in parts:
        if module is not None:
            hooks.append(
                module.register_forward_hook(
                    lambda _m, _i, out, name=name: shapes.__setitem__(
                        name,
                        tuple((out[0] if isinstance(out, tuple) else getattr(out, "last_hidden_state", out)).shape),
                    )
                )
            )
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(input_ids=input_ids.to(next(model.parameters()).device))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    names = {id(p): n for n, p in model.named_parameters()}
    new = set(new_parameters)
    stages = [Stage("input ids", "token ids,\n[CLS] first", tuple(input_ids.shape), 0, False)]
    for name, detail, module in parts:
        if module is None:  # [CLS] selection and dropout: no weights, the shape of the stage before
            shape = shapes["pooler"] if name == "dropout" else shapes[parts[1][0]][:1] + shapes[parts[1][0]][2:]
            stages.append(Stage(name, detail, shape, 0, False))
            continue
        params = [names[id(p)] for p in module.parameters()]
        stages.append(
            Stage(
                name,
                detail,
                shapes[name],
                sum(p.numel() for p in module.parameters()),
                bool(params) and all(p in new for p in params),
            )
        )
    return stages


def draw_bert_classifier(
    model: nn.Module, input_ids: torch.Tensor, new_parameters: Collection[str] = ()
) -> tuple[Figure, list[Stage]]:
    """BERT + classification head left to right: boxes coloured pretrained/new, tensor shapes on the arrows. 03 §3.

    `new_parameters` names the weights that start random (the loading report's missing keys).
    """
    stages = bert_classifier_stages(model, input_ids, new_parameters)
    total = sum(p.numel() for p in model.parameters())
    fig, ax = new_figure(
        11,
        3.6,
        f"{type(model).__name__}: {total:,} parameters ({sum(s.parameters for s in stages if s.new):,} of them new)",
    )
    width, gap = 1.45, 0.55
    for k, stage in enumerate(stages):
        x = k * (width + gap)
        color = NEW if stage.new else PRETRAINED if stage.parameters else NO_PARAMS
        ax.add_patch(
            FancyBboxPatch(
                (x, 0.9),
                width,
                1.9,
                boxstyle="round,pad=0.03",
                facecolor=color,
                alpha=0.3,
                edgecolor=color if stage.parameters else "0.5",
                linewidth=1.5,
            )
        )
        ax.text(x + width / 2, 2.58, stage.name, ha="center", va="center", fontsize=8.5, fontweight="bold")
        ax.text(x + width / 2, 1.8, stage.detail, ha="center", va="center", fontsize=8, linespacing=1.3)
        if stage.parameters:
            ax.text(x + width / 2, 1.08, f"{stage.parameters:,} params", ha="center", va="center", fontsize=8)
        ax.text(
            x + width / 2,
            0.55,
            str(stage.shape),
            ha="center",
            va="center",
            fontsize=8.5,
            family="monospace",
            color="0.15",
        )
        if k:
            ax.add_patch(
                FancyArrowPatch(
                    (x - gap + 0.04, 1.7), (x - 0.04, 1.7), arrowstyle="-|>", mutation_scale=12, color="0.3"
                )
            )
    ax.text(
        0,
        0.1,
        "below each box: the shape of its output (batch, tokens, hidden size), from a forward pass",
        fontsize=8,
        color="0.3",
    )
    ax.set_xlim(-0.1, len(stages) * (width + gap))
    ax.set_ylim(0, 3.0)
    ax.legend(
        handles=[
            Patch(facecolor=PRETRAINED, alpha=0.3, edgecolor=PRETRAINED, label="pretrained weights"),
            Patch(facecolor=NEW, alpha=0.3, edgecolor=NEW, label="new, random at the start"),
            Patch(facecolor=NO_PARAMS, alpha=0.3, edgecolor="0.5", label="no weights"),
        ],
        loc="upper center",
        bbox_to_anchor=(0.5, 0.02),
        ncol=3,
        fontsize=8,
        frameon=False,
    )
    return fig, stages


# ----------------------------------------------------------------------------------------------------------
# §4 Padding: random batches against length-grouped batches
# ----------------------------------------------------------------------------------------------------------


@dataclass
class Batching:
    """One way of cutting reviews into batches: its padding share over all batches, and the batches drawn."""

    name: str
    padding: float
    drawn: list[np.ndarray]


def padding_share(lengths: Sequence[int] | np.ndarray, batches: Sequence[np.ndarray]) -> float:
    """Share of the tokens fed that are [PAD] when each batch is padded to its own longest review."""
    lengths = np.asarray(lengths)
    fed = sum(len(b) * int(lengths[b].max()) for b in batches)
    if fed == 0:
        raise DiagramError("the batches hold no tokens")
    return 1.0 - sum(int(lengths[b].sum()) for b in batches) / fed


def draw_padding(
    lengths: Sequence[int] | np.ndarray, batchings: Mapping[str, Sequence[np.ndarray]], n_batches: int = 4
) -> tuple[Figure, list[Batching]]:
    """The first `n_batches` batches of each batching, one row per review: real tokens and [PAD]. Taught in 03 §4."""
    lengths = np.asarray(lengths)
    if not batchings:
        raise DiagramError("draw_padding needs at least one batching (a name and its list of index batches)")
    results = [
        Batching(name, padding_share(lengths, batches), [np.asarray(b) for b in batches[:n_batches]])
        for name, batches in batchings.items()
    ]
    widest = max(int(lengths[b].max()) for r in results for b in r.drawn)
    fig, axes = plt.subplots(1, len(results), figsize=(4.6 * len(results), 3.4), dpi=DPI, squeeze=False)
    fig.suptitle(f"Each batch padded to its longest review (first {n_batches} batches shown)", fontsize=11)
    for ax, result in zip(axes[0], results):
        y = 0.0
        for batch in result.drawn:
            width = int(lengths[batch].max())
            for i in batch:
                ax.add_patch(Rectangle((0, y), lengths[i], 0.9, facecolor="tab:blue", alpha=0.8))
                if lengths[i] < width:
                    ax.add_patch(
                        Rectangle(
                            (lengths[i], y),
                            width - lengths[i],
                            0.9,
                            facecolor="0.85",
                            hatch="//",
                            edgecolor="0.6",
                            linewidth=0,
                        )
                    )
                y += 1
            y += 1.0  # a gap between batches
        ax.set_xlim(0, widest * 1.02)
        ax.set_ylim(y, -0.5)
        ax.set_yticks([])
        ax.set_xlabel("tokens")
        ax.set_title(f"{result.name}\n{result.padding:.1%} of all tokens fed are [PAD]", fontsize=9)
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
    axes[0][-1].legend(
        handles=[
            Patch(facecolor="tab:blue", alpha=0.8, label="real tokens"),
            Patch(facecolor="0.85", hatch="//", label="[PAD]"),
        ],
        loc="lower right",
        fontsize=8,
    )
    fig.tight_layout()
    return fig, results
