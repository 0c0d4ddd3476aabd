"""Looking inside BERT's attention (notebook 04): extraction, recomputation, head scores, rollout.

Loading a model with its attention weights visible is in helpers.bert (load_attention_model, load_eager).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from .device import model_device
from .errors import ConfigError

MAX_VIEW_TOKENS = 64
"""Longest input the views show: a 64 x 64 head is still readable, and the widgets stay fast."""

Scorer = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def encode(tokenizer, text: str, text_pair: str | None = None, max_tokens: int = MAX_VIEW_TOKENS, verbose: bool = True):
    """Tokenise one text (or a pair) for the views, capped at max_tokens; says so when it cuts. Taught in 04 §3."""
    full = len(tokenizer(text, text_pair, truncation=False, verbose=False)["input_ids"])
    if full > max_tokens and verbose:
        print(
            f"Input capped: {full} tokens, the views show the first {max_tokens} "
            f"(raise max_tokens to see more; the views get slower and harder to read)."
        )
    return tokenizer(text, text_pair, truncation=True, max_length=max_tokens, return_tensors="pt")


def tokens_of(tokenizer, encoding) -> list[str]:
    """The tokens of an encoding's first sequence as strings ([CLS], word pieces with ##, [SEP]). Taught in 04 §3.3."""
    return tokenizer.convert_ids_to_tokens(encoding["input_ids"][0].tolist())


@torch.no_grad()
def get_attentions(model: nn.Module, encoding) -> torch.Tensor:
    """All attention weights of one input: float (layers, heads, tokens, tokens) on the CPU. Taught in 04 §3."""
    device = model_device(model)
    inputs = {k: v.to(device) for k, v in encoding.items()}
    out = model(**inputs, output_attentions=True)
    if not out.attentions:
        raise ConfigError("The model returned no attention weights: load it with attn_implementation='eager'.")
    return torch.stack([a[0] for a in out.attentions]).float().cpu()


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(batch, tokens, hidden) -> (batch, heads, tokens, hidden / heads): a slice per head. Taught in 04 §1."""
    batch, tokens, hidden = x.shape
    return x.view(batch, tokens, num_heads, hidden // num_heads).transpose(1, 2)


def scaled_dot_product_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q k^T / sqrt(d)) v with padded keys masked out; returns (output, weights). Taught in 04 §1."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if key_mask is not None:  # (batch, keys) with 1 = real token, 0 = padding
        scores = scores.masked_fill(key_mask[:, None, None, :] == 0, float("-inf"))
    weights = scores.softmax(dim=-1)
    return weights @ v, weights


def self_attention_weights(
    self_attention: nn.Module, hidden_states: torch.Tensor, key_mask: torch.Tensor | None = None
) -> torch.Tensor:
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


def attention_per_text(
    model: nn.Module, tokenizer, texts: Sequence[str], max_tokens: int = 128, batch_size: int = 16
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(ids, attention (layers, heads, n, n)) per text, in batches on the model's device, unpadded. Taught in 04 §5."""
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(
            list(texts[start : start + batch_size]),
            truncation=True,
            max_length=max_tokens,
            padding=True,
            return_tensors="pt",
        ).to(model_device(model))
        with torch.no_grad():
            out = model(**batch, output_attentions=True)
        for b, n in enumerate(batch["attention_mask"].sum(-1).tolist()):
            yield batch["input_ids"][b, :n], torch.stack([layer[b, :, :n, :n] for layer in out.attentions]).float()


def head_scores(
    model: nn.Module,
    tokenizer,
    texts: Sequence[str],
    scorers: dict[str, Scorer],
    max_tokens: int = 128,
    batch_size: int = 16,
) -> dict[str, dict[str, np.ndarray | float]]:
    """{name: {"scores": mean per (layer, head) over all (text, query) pairs, "chance": uniform's}}. Taught in 04 §5."""
    sums, chance_sums, counts = dict.fromkeys(scorers, 0.0), dict.fromkeys(scorers, 0.0), dict.fromkeys(scorers, 0)
    for ids, attn in attention_per_text(model, tokenizer, texts, max_tokens, batch_size):
        special = special_token_mask(tokenizer, ids)
        uniform = torch.full((1, 1, len(ids), len(ids)), 1.0 / len(ids), device=attn.device)  # chance
        for name, scorer in scorers.items():
            values, valid = scorer(attn, ids, special)
            sums[name] = sums[name] + values[..., valid].sum(-1)
            chance_sums[name] += float(scorer(uniform, ids, special)[0][..., valid].sum())
            counts[name] += int(valid.sum())
    return {
        name: {
            "scores": (sums[name] / max(counts[name], 1)).cpu().numpy(),
            "chance": chance_sums[name] / max(counts[name], 1),
        }
        for name in scorers
    }


def top_heads(scores: np.ndarray, k: int = 3) -> list[tuple[int, int, float]]:
    """The k highest-scoring heads as (layer, head, score), best first. Taught in 04 §5."""
    flat = np.argsort(-scores, axis=None, kind="stable")[:k]
    return [(int(i // scores.shape[1]), int(i % scores.shape[1]), float(scores.flat[i])) for i in flat]


def attention_rollout(attn: torch.Tensor, residual: float = 0.5) -> torch.Tensor:
    """Rollout (Abnar & Zuidema 2020): head means plus identity, renormalised, multiplied up. Taught in 04 §6.1."""
    n = attn.shape[-1]
    eye = torch.eye(n, dtype=attn.dtype)
    rolled, out = eye, []
    for layer in attn.mean(dim=1):
        mixed = residual * eye + (1 - residual) * layer
        mixed = mixed / mixed.sum(-1, keepdim=True)
        rolled = mixed @ rolled
        out.append(rolled)
    return torch.stack(out)


def cls_attention_summary(
    model: nn.Module, tokenizer, texts: Sequence[str], max_tokens: int = 128, batch_size: int = 16
) -> dict:
    """[CLS] per layer: share on special tokens, entropy / log n; words: last-layer weight, texts. Taught in 04 §6.2."""
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
    return {
        "special_share": (special_sum / n_texts).numpy(),
        "entropy": (entropy_sum / n_texts).numpy(),
        "words": {w: (sum(v) / len(v), texts_with[w]) for w, v in sorted(weights.items())},
    }


def top_words(words: dict[str, tuple[float, int]], k: int = 10, min_texts: int = 3) -> list[tuple[str, float, int]]:
    """The k tokens of highest mean weight in at least min_texts texts: (token, mean, texts). Taught in 04 §6.2."""
    frequent = [(w, m, c) for w, (m, c) in words.items() if c >= min_texts]
    return sorted(frequent, key=lambda item: (-item[1], item[0]))[:k]
