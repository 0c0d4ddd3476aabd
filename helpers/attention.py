"""Looking inside BERT's attention (notebook 04): loading, extraction, a from-scratch re-computation, head scores,
rollout, views. Deterministic and offline: the head view is SVG built in Python (no JavaScript, CDN or random ids)."""

from __future__ import annotations

import html
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from .bert import check_model_dir, find_finetuned, load_bert, load_tokenizer, resolve_bert
from .device import model_device

if TYPE_CHECKING:  # matplotlib is imported where a view is drawn
    from matplotlib.figure import Figure

MAX_VIEW_TOKENS = 64
"""Longest input the views show: a 64 x 64 head is still readable, and the widgets stay fast."""

HEAD_COLORS: tuple[str, ...] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#ad494a",
    "#637939", "#8c6d31", "#843c39", "#7b4173",
)
"""One fixed colour per head (matplotlib's tab10 + tab20b), so a head has the same colour in every view."""

Scorer = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def load_model(path: Path | str, classifier: bool = False, device: torch.device | str = "cpu"):
    """Model and tokenizer in eval mode with eager attention (SDPA returns no attention weights). Taught in 04 §2."""
    from transformers import AutoConfig

    tokenizer = load_tokenizer(path)  # first: it checks a folder's files
    labels = AutoConfig.from_pretrained(str(path)).id2label.values() if classifier else None
    model, _ = load_bert(path, list(labels) if labels is not None else None, device=device, attention="eager")
    return model.eval(), tokenizer


def load_attention_model(finetuned_dir: Path | str | None = None, device: torch.device | str = "cpu"):
    """(model, tokenizer, kind): the best classifier notebook 03 saved (find_finetuned), else the pretrained BERT. Taught in 04 §1."""
    found = (check_model_dir(finetuned_dir), "given") if finetuned_dir is not None else find_finetuned()
    if found is not None:
        path, run = found
        print(f"Model: the classifier notebook 03 fine-tuned in its {run!r} run ({Path(*path.parts[-3:])})")
        model, tokenizer = load_model(path, classifier=True, device=device)
        return model, tokenizer, "fine-tuned"
    print("No fine-tuned model from notebook 03 was found (run notebook 03 to save one), so this notebook "
          "looks at the pretrained BERT.")
    model, tokenizer = load_model(resolve_bert("auto"), classifier=False, device=device)
    return model, tokenizer, "pretrained"


def encode(tokenizer, text: str, text_pair: str | None = None, max_tokens: int = MAX_VIEW_TOKENS,
           verbose: bool = True):
    """Tokenise one text (or a pair) for the views, capped at max_tokens; says so when it cuts. Taught in 04 §3."""
    full = len(tokenizer(text, text_pair, truncation=False, verbose=False)["input_ids"])
    if full > max_tokens and verbose:
        print(f"Input capped: {full} tokens, the views show the first {max_tokens} "
              f"(raise max_tokens to see more; the views get slower and harder to read).")
    return tokenizer(text, text_pair, truncation=True, max_length=max_tokens, return_tensors="pt")


def tokens_of(tokenizer, encoding) -> list[str]:
    """The tokens of an encoding's first sequence as strings ([CLS], word pieces with ##, [SEP]). Taught in 04 §3.3."""
    return tokenizer.convert_ids_to_tokens(encoding["input_ids"][0].tolist())


@torch.no_grad()
def get_attentions(model: nn.Module, encoding) -> torch.Tensor:
    """All attention weights of one input: a float tensor (layers, heads, tokens, tokens), on the CPU. Taught in 04 §3."""
    device = model_device(model)
    inputs = {k: v.to(device) for k, v in encoding.items()}
    out = model(**inputs, output_attentions=True)
    if not out.attentions:
        raise RuntimeError("The model returned no attention weights: load it with attn_implementation='eager'.")
    return torch.stack([a[0] for a in out.attentions]).float().cpu()


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(batch, tokens, hidden) -> (batch, heads, tokens, hidden / heads): a slice per head. Taught in 04 §1."""
    batch, tokens, hidden = x.shape
    return x.view(batch, tokens, num_heads, hidden // num_heads).transpose(1, 2)


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 key_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q k^T / sqrt(d)) v with padded keys masked out; returns (output, weights). Taught in 04 §1."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if key_mask is not None:  # (batch, keys) with 1 = real token, 0 = padding
        scores = scores.masked_fill(key_mask[:, None, None, :] == 0, float("-inf"))
    weights = scores.softmax(dim=-1)
    return weights @ v, weights


def self_attention_weights(self_attention: nn.Module, hidden_states: torch.Tensor,
                           key_mask: torch.Tensor | None = None) -> torch.Tensor:
    """A BERT self-attention layer's weights recomputed from its Q, K, V: (batch, heads, q, k). Taught in 04 §1."""
    heads = self_attention.num_attention_heads
    q = split_heads(self_attention.query(hidden_states), heads)
    k = split_heads(self_attention.key(hidden_states), heads)
    v = split_heads(self_attention.value(hidden_states), heads)
    return scaled_dot_product_attention(q, k, v, key_mask)[1]


def special_token_mask(tokenizer, input_ids: torch.Tensor) -> torch.Tensor:
    """True where a token is special ([CLS], [SEP], [PAD]) for one sequence of ids. Taught in 04 §3.3."""
    return torch.isin(input_ids, torch.tensor(tokenizer.all_special_ids, device=input_ids.device))


def previous_token_scores(attn: torch.Tensor, ids: torch.Tensor, special: torch.Tensor):
    """Per query: attention on the token just before it. Queries: the real tokens (not [CLS]/[SEP]). Taught in 04 §5."""
    n = attn.shape[-1]
    values = attn.new_zeros(attn.shape[:-1])
    idx = torch.arange(1, n, device=attn.device)
    values[..., 1:] = attn[..., idx, idx - 1]
    return values, ~special


def token_scores(attn: torch.Tensor, ids: torch.Tensor, special: torch.Tensor, token_id: int):
    """Per real query token: total attention on every occurrence of one token (e.g. [SEP]). Taught in 04 §5."""
    return attn[..., ids == token_id].sum(-1), ~special


def same_token_scores(attn: torch.Tensor, ids: torch.Tensor, special: torch.Tensor):
    """Per repeating real token: total attention on the OTHER occurrences of its token id. Taught in 04 §5."""
    same = (ids[:, None] == ids[None, :]) & ~torch.eye(len(ids), dtype=torch.bool, device=ids.device)
    same &= ~special[:, None] & ~special[None, :]
    return (attn * same).sum(-1), same.any(-1)


def uniform_attention(n: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The chance baseline: each query's attention spread evenly over n tokens, (1, 1, n, n). Taught in 04 §5."""
    return torch.full((1, 1, n, n), 1.0 / n, device=device)


def attention_per_text(model: nn.Module, tokenizer, texts: Sequence[str], max_tokens: int = 128,
                       batch_size: int = 16) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(ids, attention (layers, heads, n, n)) per text, in batches on the model's device, unpadded. Taught in 04 §5."""
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(list(texts[start:start + batch_size]), truncation=True, max_length=max_tokens,
                          padding=True, return_tensors="pt").to(model_device(model))
        with torch.no_grad():
            out = model(**batch, output_attentions=True)
        for b, n in enumerate(batch["attention_mask"].sum(-1).tolist()):
            yield batch["input_ids"][b, :n], torch.stack([layer[b, :, :n, :n] for layer in out.attentions]).float()


def head_scores(model: nn.Module, tokenizer, texts: Sequence[str], scorers: dict[str, Scorer],
                max_tokens: int = 128, batch_size: int = 16) -> dict[str, dict[str, np.ndarray | float]]:
    """Each scorer's mean over all (text, query) pairs per layer and head, and its chance level. Taught in 04 §5.

    Returns {name: {"scores": (layers, heads), "chance": the same score for uniform attention}}.
    """
    sums, chance_sums, counts = dict.fromkeys(scorers, 0.0), dict.fromkeys(scorers, 0.0), dict.fromkeys(scorers, 0)
    for ids, attn in attention_per_text(model, tokenizer, texts, max_tokens, batch_size):
        special, uniform = special_token_mask(tokenizer, ids), uniform_attention(len(ids), attn.device)
        for name, scorer in scorers.items():
            values, valid = scorer(attn, ids, special)
            sums[name] = sums[name] + values[..., valid].sum(-1)
            chance_sums[name] += float(scorer(uniform, ids, special)[0][..., valid].sum())
            counts[name] += int(valid.sum())
    return {name: {"scores": (sums[name] / max(counts[name], 1)).cpu().numpy(),
                   "chance": chance_sums[name] / max(counts[name], 1)} for name in scorers}


def top_heads(scores: np.ndarray, k: int = 3) -> list[tuple[int, int, float]]:
    """The k highest-scoring heads as (layer, head, score), best first. Taught in 04 §5."""
    flat = np.argsort(-scores, axis=None, kind="stable")[:k]
    return [(int(i // scores.shape[1]), int(i % scores.shape[1]), float(scores.flat[i])) for i in flat]


def attention_rollout(attn: torch.Tensor, residual: float = 0.5) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema, 2020): (layers, heads, n, n) -> (layers, n, n). Taught in 04 §6.1.

    Head-mean attention mixed with the identity (the residual), rows renormalised, layers multiplied.
    """
    n = attn.shape[-1]
    eye = torch.eye(n, dtype=attn.dtype)
    rolled, out = eye, []
    for layer in attn.mean(dim=1):
        mixed = residual * eye + (1 - residual) * layer
        mixed = mixed / mixed.sum(-1, keepdim=True)
        rolled = mixed @ rolled
        out.append(rolled)
    return torch.stack(out)


def _short(token: str, width: int = 12) -> str:
    """A token label that fits a tick: long tokens end in an ellipsis."""
    return token if len(token) <= width else token[: width - 1] + "…"


def plot_head(attn: torch.Tensor, tokens: Sequence[str], title: str = "Attention", ax=None) -> Figure:
    """One head's (n, n) attention as a heatmap: rows are queries (who looks), columns keys. Taught in 04 §3.1."""
    import matplotlib.pyplot as plt

    labels = [_short(t) for t in tokens]
    if ax is None:
        size = max(4.0, 0.22 * len(tokens) + 1.5)
        fig, ax = plt.subplots(figsize=(size + 1, size))
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
    import matplotlib.pyplot as plt

    layers, heads = attn.shape[:2]
    fig, axes = plt.subplots(layers, heads, figsize=(heads * 0.9, layers * 0.9 + 0.6), squeeze=False)
    for l in range(layers):
        for h in range(heads):
            ax = axes[l, h]
            ax.imshow(attn[l, h].numpy(), cmap="viridis", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if l == 0:
                ax.set_title(str(h), fontsize=8)
            if h == 0:
                ax.set_ylabel(str(l), fontsize=8, rotation=0, labelpad=8)
    fig.suptitle(title)
    fig.supxlabel("head (each thumbnail: query rows x key columns)")
    fig.supylabel("layer")
    return fig


def plot_token_rows(rows: np.ndarray, tokens: Sequence[str], row_labels: Sequence[str], title: str,
                    ylabel: str = "layer", hide: Sequence[bool] | None = None) -> Figure:
    """Attention rows over the same tokens as one heatmap; `hide`s columns' weight goes in the labels. Taught in 04 §3.3."""
    import matplotlib.pyplot as plt

    rows, labels, tokens = np.asarray(rows), list(row_labels), list(tokens)
    if hide is not None:
        hide = np.asarray(hide, dtype=bool)
        hidden = rows[:, hide].sum(-1)
        names = "+".join(dict.fromkeys(t for t, h in zip(tokens, hide) if h))
        labels = [f"{label} ({names} {w:.2f})" for label, w in zip(labels, hidden)]
        rows, tokens = rows[:, ~hide], [t for t, h in zip(tokens, hide) if not h]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.25 * len(tokens) + 3), 0.45 * len(labels) + 1.8))
    im = ax.imshow(rows, cmap="magma", aspect="auto", vmin=0)
    ax.set_xticks(range(len(tokens)), [_short(t) for t in tokens], rotation=90, fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=9)
    ax.set(xlabel="token attended to", ylabel=ylabel, title=title)
    fig.colorbar(im, ax=ax, pad=0.02, label="attention weight")
    return fig


def plot_head_scores(results: dict[str, dict], title: str = "What heads do", columns: int = 2) -> Figure:
    """One layers x heads heatmap per score, on one 0-1 colour scale, with its chance level. Taught in 04 §5."""
    import matplotlib.pyplot as plt

    rows = math.ceil(len(results) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 3.3 * rows + 0.6), squeeze=False)
    for ax, (name, result) in zip(axes.flat, results.items()):
        scores = result["scores"]
        im = ax.imshow(scores, cmap="viridis", vmin=0, vmax=1, aspect="auto")
        ax.set_title(f"{name} (chance {result['chance']:.2f}, best {scores.max():.2f})", fontsize=10)
        ax.set(xlabel="head", ylabel="layer", xticks=range(scores.shape[1]), yticks=range(scores.shape[0]))
        ax.tick_params(labelsize=7)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="mean attention")
    for ax in list(axes.flat)[len(results):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def head_view_svg(attn: torch.Tensor, tokens: Sequence[str], heads: Sequence[int] | None = None,
                  title: str = "", query: int | None = None, token_types: Sequence[int] | None = None,
                  min_weight: float = 0.02, row_height: int = 18, width: int = 460) -> str:
    """A bertviz-style head view of one layer (heads, n, n) as SVG: a line per weight, opacity = weight. Taught in 04 §4.

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
        parts.append(f'<text x="{width / 2:.1f}" y="20" text-anchor="middle" font-weight="bold">'
                     f'{html.escape(title)}</text>')
    parts.append(f'<text x="{x_left:.1f}" y="{top - 6}" text-anchor="end" fill="#666" font-size="11">'
                 f'query</text><text x="{x_right:.1f}" y="{top - 6}" fill="#666" font-size="11">key</text>')
    if legend:
        for k, h in enumerate(heads):
            x = 8 + k * (width - 16) / len(heads)
            parts.append(f'<rect x="{x:.1f}" y="{top}" width="10" height="10" fill="{HEAD_COLORS[h % len(HEAD_COLORS)]}"/>'
                         f'<text x="{x + 13:.1f}" y="{top + 9}" font-size="10">{h}</text>')
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
        parts.extend(f'<line x1="{x_left + 6:.1f}" y1="{y(i) - 4:.1f}" x2="{x_right - 6:.1f}" y2="{y(j) - 4:.1f}" '
                     f'stroke-opacity="{w:.3f}"/>' for w, i, j in lines)
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
    """ipywidgets around head_view_svg (no JavaScript of its own): type text, pick layer, head, token. Taught in 04 §4."""

    def __init__(self, model: nn.Module, tokenizer, text: str, text_pair: str = "", layer: int = 0,
                 head: int = 0, max_tokens: int = MAX_VIEW_TOKENS):
        """Run the model on the text and build the widgets, showing the given layer and head."""
        import ipywidgets as widgets

        self.model, self.tokenizer, self.max_tokens = model, tokenizer, max_tokens
        layers, heads = model.config.num_hidden_layers, model.config.num_attention_heads
        self.text = widgets.Textarea(value=text, description="Sentence", rows=2,
                                     layout=widgets.Layout(width="95%"))
        self.text_pair = widgets.Text(value=text_pair, description="Pair (opt.)", placeholder="optional second sentence",
                                      layout=widgets.Layout(width="95%"))
        self.run_button = widgets.Button(description="Run the model", button_style="primary", icon="play")
        self.layer = widgets.IntSlider(value=layer, min=0, max=layers - 1, description="Layer",
                                       continuous_update=False)
        self.head = widgets.Dropdown(options=[("all heads", -1)] + [(f"head {h}", h) for h in range(heads)],
                                     value=head, description="Head")
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
        self._note = (f"capped: {full} tokens, showing the first {self.max_tokens}" if self.capped
                      else f"{len(self.tokens)} tokens")
        with self.query.hold_trait_notifications():
            self.query.options = [("all tokens", -1)] + [(f"{i}: {t}", i) for i, t in enumerate(self.tokens)]
            self.query.value = -1
        self.render()

    def render(self) -> None:
        """Redraw the head view for the selected layer, head and query token."""
        layer, head, query = self.layer.value, self.head.value, self.query.value
        heads = None if head == -1 else [head]
        which = "all heads" if head == -1 else f"head {head}"
        self.view.value = head_view_svg(self.attentions[layer], self.tokens, heads=heads,
                                        title=f"Layer {layer}, {which}", query=None if query == -1 else query,
                                        token_types=self.token_types,
                                        min_weight=0.05 if head == -1 else 0.02)
        self.status.value = (f"<span style='color:#555'>{html.escape(self._note)} · line opacity = attention "
                             f"weight · left: query, right: key</span>")


def cls_attention_summary(model: nn.Module, tokenizer, texts: Sequence[str], max_tokens: int = 128,
                          batch_size: int = 16) -> dict:
    """Where [CLS] looks over many texts: per layer, its share on special tokens and entropy. Taught in 04 §6.2.

    {"special_share": (layers,), "entropy": (layers,) divided by log(n), "words": {token: (mean last-layer
    weight, texts it is in)}}, averaged over heads and texts.
    """
    special_sum, entropy_sum, n_texts = 0.0, 0.0, 0
    weights: dict[str, list[float]] = defaultdict(list)
    texts_with: Counter[str] = Counter()
    for ids, attn in attention_per_text(model, tokenizer, texts, max_tokens, batch_size):
        rows, special = attn[:, :, 0, :].cpu(), special_token_mask(tokenizer, ids).cpu()  # [CLS]'s rows
        special_sum = special_sum + rows[..., special].sum(-1).mean(-1)
        entropy_sum = entropy_sum + (-(rows * rows.clamp_min(1e-12).log()).sum(-1) / math.log(len(ids))).mean(-1)
        n_texts += 1
        words = [t for t, s in zip(tokenizer.convert_ids_to_tokens(ids.tolist()), special.tolist()) if not s]
        for token, weight in zip(words, rows[-1].mean(0)[~special].tolist()):
            weights[token].append(weight)
        texts_with.update(set(words))
    return {"special_share": (special_sum / n_texts).numpy(), "entropy": (entropy_sum / n_texts).numpy(),
            "words": {w: (sum(v) / len(v), texts_with[w]) for w, v in sorted(weights.items())}}


def top_words(words: dict[str, tuple[float, int]], k: int = 10, min_texts: int = 3) -> list[tuple[str, float, int]]:
    """The k tokens of highest mean weight in at least min_texts texts: (token, mean, texts). Taught in 04 §6.2."""
    frequent = [(w, m, c) for w, (m, c) in words.items() if c >= min_texts]
    return sorted(frequent, key=lambda item: (-item[1], item[0]))[:k]
