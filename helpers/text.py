"""Text classification with BERT, shared by notebook 03 and benchmarks/imdb_finetune.py.

Tokenise once without padding (optionally keeping a review's head and tail), batch reviews of similar
length together and pad each batch only to its own longest review, build AdamW with no weight decay on
biases and LayerNorm, a linear warmup-then-decay schedule, and turn logits into predictions and metrics.

This module imports neither `datasets` nor `transformers` at import time, so that the benchmark runs
where only torch, numpy and transformers are installed.
"""

from __future__ import annotations

import html
import itertools
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .device import autocast_dtype

TRUNCATIONS: tuple[str, ...] = ("head", "head+tail")
"""head: keep the first tokens (the tokenizer's own truncation); head+tail: keep the first and the last."""

HEAD_TAIL_512 = (128, 382)
"""Sun et al. (2019), "How to Fine-Tune BERT for Text Classification?": at 512 tokens keep the first 128
and the last 382 of a review (510 text tokens plus [CLS] and [SEP]); the best truncation on IMDB."""

LABEL_NAMES: tuple[str, ...] = ("negative", "positive")
"""IMDB's labels: 0 = negative review, 1 = positive review."""

_BREAK = re.compile(r"<br\s*/?>", flags=re.IGNORECASE)
_SPACES = re.compile(r"\s+")


# ----------------------------------------------------------------------------------------------------------
# Text and tokens
# ----------------------------------------------------------------------------------------------------------

def clean_review(text: str, max_chars: int | None = None) -> str:
    """A review as a reader should see it: HTML line breaks and entities removed, shortened to max_chars."""
    text = _SPACES.sub(" ", html.unescape(_BREAK.sub(" ", text))).strip()
    if max_chars is not None and len(text) > max_chars:
        text = text[: max_chars - 1].rstrip() + "…"
    return text


def head_tail_sizes(budget: int, head: int | None = None) -> tuple[int, int]:
    """How many text tokens to keep from the start and from the end when a review has more than `budget`.

    By default the head gets the share Sun et al. found best at 512 tokens (128 of 510): 128 + 382 at
    max_length 512, 64 + 190 at 256, 32 + 94 at 128.
    """
    if budget < 1:
        raise ValueError(f"budget must be at least 1 token, got {budget}")
    if head is None:
        head = round(budget * HEAD_TAIL_512[0] / sum(HEAD_TAIL_512))
    head = min(max(head, 0), budget)
    return head, budget - head


def truncate_ids(ids: Sequence[int], budget: int, truncation: str = "head", head: int | None = None) -> list[int]:
    """Cut a list of text token ids (no special tokens) to at most `budget`: the first ones, or head and tail."""
    ids = list(ids)
    if len(ids) <= budget:
        return ids
    if truncation == "head":
        return ids[:budget]
    if truncation == "head+tail":
        n_head, n_tail = head_tail_sizes(budget, head)
        return ids[:n_head] + (ids[-n_tail:] if n_tail else [])
    raise ValueError(f"Unknown truncation {truncation!r}: choose one of {', '.join(TRUNCATIONS)}.")


def encode_reviews(tokenizer: Any, texts: Sequence[str], max_length: int = 512, truncation: str = "head",
                   head: int | None = None) -> list[list[int]]:
    """Token ids with [CLS] ... [SEP], at most max_length, not padded; truncation 'head' or 'head+tail'.

    The texts are tokenised in full (the fast tokenizer works in parallel) and cut afterwards, so both
    truncations share one code path; 'head' gives exactly what tokenizer(..., truncation=True) gives.
    """
    if truncation not in TRUNCATIONS:
        raise ValueError(f"Unknown truncation {truncation!r}: choose one of {', '.join(TRUNCATIONS)}.")
    budget = max_length - 2  # room for [CLS] and [SEP]
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    pieces = tokenizer(list(texts), add_special_tokens=False, truncation=False, verbose=False,
                       return_attention_mask=False, return_token_type_ids=False)["input_ids"]
    return [[cls, *truncate_ids(ids, budget, truncation, head), sep] for ids in pieces]


def tokenize_function(tokenizer: Any, max_length: int = 512, truncation: str = "head",
                      head: int | None = None, text_column: str = "text") -> Callable[[Mapping[str, list]], dict]:
    """A function for `datasets.Dataset.map(fn, batched=True)`: adds input_ids (unpadded) and their length."""

    def tokenize(batch: Mapping[str, list]) -> dict[str, list]:
        ids = encode_reviews(tokenizer, batch[text_column], max_length, truncation, head)
        return {"input_ids": ids, "length": [len(x) for x in ids]}

    return tokenize


def token_lengths(tokenizer: Any, texts: Sequence[str]) -> np.ndarray:
    """Length in WordPiece tokens of each text, [CLS] and [SEP] included, with no truncation."""
    pieces = tokenizer(list(texts), add_special_tokens=False, truncation=False, verbose=False,
                       return_attention_mask=False, return_token_type_ids=False)["input_ids"]
    return np.fromiter((len(p) + 2 for p in pieces), dtype=np.int64, count=len(pieces))


def pad_ids(sequences: Sequence[Sequence[int]], pad_id: int = 0, length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One (N, length) int64 matrix of right-padded token ids and the (N,) true lengths, built without a Python loop per token."""
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    width = int(lengths.max(initial=0)) if length is None else length
    if lengths.max(initial=0) > width:
        raise ValueError(f"a sequence has {lengths.max()} tokens, more than length={width}")
    flat = np.fromiter(itertools.chain.from_iterable(sequences), dtype=np.int64, count=int(lengths.sum()))
    out = np.full((len(sequences), width), pad_id, dtype=np.int64)
    out[np.arange(width)[None, :] < lengths[:, None]] = flat
    return out, lengths


# ----------------------------------------------------------------------------------------------------------
# Batching: which reviews go together, and how much padding that costs
# ----------------------------------------------------------------------------------------------------------

def random_batches(n: int, batch_size: int, shuffle: bool = True, seed: int = 0) -> list[np.ndarray]:
    """Index batches in random (or dataset) order: what a plain DataLoader does."""
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def length_grouped_batches(lengths: Sequence[int] | np.ndarray, batch_size: int, shuffle: bool = True,
                           seed: int = 0, group_batches: int = 50) -> list[np.ndarray]:
    """Index batches of reviews with similar lengths, so that padding each batch to its longest wastes little.

    Training (shuffle=True): shuffle, cut into groups of `group_batches` batches, sort each group by length,
    cut it into batches and shuffle the batches, so that every epoch sees new, still random-ish batches;
    the batch with the longest review goes first, so that running out of memory shows in the first step.
    Evaluation (shuffle=False): simply sort everything by length.
    """
    lengths = np.asarray(lengths)
    n = len(lengths)
    if not shuffle:
        order = np.argsort(-lengths, kind="stable")
        return [order[i:i + batch_size] for i in range(0, n, batch_size)]
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    group = batch_size * group_batches
    batches: list[np.ndarray] = []
    for start in range(0, n, group):
        chunk = perm[start:start + group]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    batches = [batches[i] for i in rng.permutation(len(batches))]
    longest = int(np.argmax([lengths[b].max() for b in batches]))
    batches[0], batches[longest] = batches[longest], batches[0]
    return batches


def padding_fraction(lengths: Sequence[int] | np.ndarray, batches: Sequence[np.ndarray],
                     pad_to: int | None = None) -> float:
    """Share of the tokens fed to the model that are [PAD]: each batch padded to its longest (or to pad_to)."""
    lengths = np.asarray(lengths)
    real = sum(int(lengths[b].sum()) for b in batches)
    fed = sum(len(b) * (pad_to or int(lengths[b].max())) for b in batches)
    return 1.0 - real / fed


class TokenBatches:
    """Batches of pre-tokenised reviews as dicts (input_ids, attention_mask, labels), each padded to its own longest.

    All token ids are padded once into one matrix that lives on `device` (the GPU keeps the whole IMDB set
    in ~100 MB), so making a batch is one indexing operation and a slice: no per-review Python work, no
    host-to-device copy per step, nothing for the GPU to wait for. With `group_by_length` the batches hold
    reviews of similar length (see length_grouped_batches); each pass over the object (each epoch)
    reshuffles with a new seed. `mask="4d"` gives SDPA models a ready boolean mask and none at all for a
    batch without padding: the model then skips building it (a GPU-to-CPU sync each step) and may use the
    flash kernel. Eager attention needs the usual `mask="2d"`.
    """

    def __init__(self, input_ids: Sequence[Sequence[int]], labels: Sequence[int] | np.ndarray, batch_size: int,
                 *, shuffle: bool = False, group_by_length: bool = True, seed: int = 0,
                 device: torch.device | str = "cpu", pad_id: int = 0, pad_to_multiple_of: int = 1,
                 mask: str = "2d", group_batches: int = 50) -> None:
        if mask not in ("2d", "4d"):
            raise ValueError(f"mask must be '2d' or '4d', got {mask!r}")
        if len(input_ids) != len(labels):
            raise ValueError(f"{len(input_ids)} token sequences but {len(labels)} labels")
        ids, lengths = pad_ids(input_ids, pad_id)
        self.device = torch.device(device)
        self.lengths = lengths
        self.batch_size = batch_size
        self.shuffle, self.group_by_length, self.seed = shuffle, group_by_length, seed
        self.pad_to_multiple_of, self.mask, self.group_batches = pad_to_multiple_of, mask, group_batches
        self.input_ids = torch.from_numpy(ids).to(self.device)
        self.token_lengths = torch.from_numpy(lengths).to(self.device)
        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.long).to(self.device)
        self.epoch = 0

    def __len__(self) -> int:
        """Number of batches per pass."""
        return math.ceil(len(self.lengths) / self.batch_size)

    def batches(self, epoch: int = 0) -> list[np.ndarray]:
        """The index batches of one pass (the same for the same epoch and seed)."""
        seed = self.seed + epoch
        if self.group_by_length:
            return length_grouped_batches(self.lengths, self.batch_size, self.shuffle, seed, self.group_batches)
        return random_batches(len(self.lengths), self.batch_size, self.shuffle, seed)

    def order(self) -> np.ndarray:
        """The dataset indices in the order the next pass yields them (to put outputs back in dataset order)."""
        return np.concatenate(self.batches(self.epoch))

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        """Yield one padded batch after another; every pass reshuffles (when shuffle is set)."""
        batches = self.batches(self.epoch)
        if self.shuffle:
            self.epoch += 1
        # one copy of all indices per pass, then only slices of it
        rows_all = torch.from_numpy(np.concatenate(batches))
        if self.device.type == "cuda":
            rows_all = rows_all.pin_memory()
        rows_all = rows_all.to(self.device, non_blocking=True)
        start = 0
        for batch in batches:
            rows = rows_all[start:start + len(batch)]
            start += len(batch)
            lengths = self.lengths[batch]
            width = int(lengths.max())
            width = min(-(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of, self.input_ids.shape[1])
            out = {"input_ids": self.input_ids[rows, :width]}
            if self.mask == "2d":
                out["attention_mask"] = self._mask(rows, width).long()
            elif int(lengths.min()) < width:
                out["attention_mask"] = self._mask(rows, width)[:, None, None, :]
            out["labels"] = self.labels[rows]
            yield out

    def _mask(self, rows: torch.Tensor, width: int) -> torch.Tensor:
        """True where a token is real, False where it is padding."""
        positions = torch.arange(width, device=self.device)
        return positions[None, :] < self.token_lengths[rows][:, None]


# ----------------------------------------------------------------------------------------------------------
# Optimiser and schedule
# ----------------------------------------------------------------------------------------------------------

def decay_parameter_names(model: nn.Module) -> tuple[list[str], list[str]]:
    """Names of the parameters to decay (weight matrices, embeddings) and not to (biases, LayerNorm)."""
    norm_params = {id(p) for m in model.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters(recurse=False)}
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        skip = name.endswith("bias") or id(param) in norm_params or param.ndim < 2
        (no_decay if skip else decay).append(name)
    return decay, no_decay


def parameter_groups(model: nn.Module, weight_decay: float = 0.01) -> list[dict[str, Any]]:
    """AdamW parameter groups: weight decay on weight matrices only (shrinking a bias or a LayerNorm scale helps nothing)."""
    decay, no_decay = decay_parameter_names(model)
    params = dict(model.named_parameters())
    return [{"params": [params[n] for n in decay], "weight_decay": weight_decay},
            {"params": [params[n] for n in no_decay], "weight_decay": 0.0}]


def make_adamw(model: nn.Module, lr: float, weight_decay: float = 0.01, betas: tuple[float, float] = (0.9, 0.999),
               eps: float = 1e-8, fused: bool | None = None) -> torch.optim.AdamW:
    """AdamW over parameter_groups; fused (one kernel for all parameters, several times faster) on CUDA and CPU."""
    if fused is None:
        fused = next(model.parameters()).device.type in ("cuda", "cpu")
    return torch.optim.AdamW(parameter_groups(model, weight_decay), lr=lr, betas=betas, eps=eps, fused=fused)


def warmup_steps_for(total_steps: int, warmup: float | int) -> int:
    """Warmup as a step count: a float in [0, 1) is a share of the total (rounded up, as Trainer does)."""
    if isinstance(warmup, float) and 0 <= warmup < 1:
        return math.ceil(total_steps * warmup)
    return int(warmup)


def linear_warmup_decay(optimizer: torch.optim.Optimizer, total_steps: int,
                        warmup: float | int = 0.1) -> torch.optim.lr_scheduler.LambdaLR:
    """Learning rate from 0 up to its peak over the warmup steps, then linearly down to 0 at total_steps (step per batch)."""
    warm = warmup_steps_for(total_steps, warmup)

    def factor(step: int) -> float:
        if step < warm:
            return step / max(1, warm)
        return max(0.0, (total_steps - step) / max(1, total_steps - warm))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# ----------------------------------------------------------------------------------------------------------
# Predictions and metrics
# ----------------------------------------------------------------------------------------------------------

@torch.inference_mode()
def predict_proba(model: nn.Module, batches: TokenBatches, dtype: torch.dtype | str | None = "auto") -> np.ndarray:
    """Class probabilities (N, classes) for every example of `batches`, in dataset order (batches may be length-sorted)."""
    device = next(model.parameters()).device
    dtype = autocast_dtype(device) if dtype == "auto" else dtype
    was_training = model.training
    model.eval()
    order = batches.order()
    probs = []
    for batch in batches:
        inputs = {k: v.to(device) for k, v in batch.items() if k != "labels"}
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            out = model(**inputs)
        probs.append(torch.softmax(getattr(out, "logits", out).float(), dim=-1))
    model.train(was_training)
    result = np.empty((len(order), probs[0].shape[-1]), dtype=np.float32)
    result[order] = torch.cat(probs).cpu().numpy()
    return result


def predict_texts(model: nn.Module, tokenizer: Any, texts: Sequence[str], max_length: int = 512,
                  truncation: str = "head", batch_size: int = 32) -> np.ndarray:
    """Class probabilities for raw texts: the same tokenisation and truncation as in training."""
    ids = encode_reviews(tokenizer, texts, max_length, truncation)
    device = next(model.parameters()).device
    batches = TokenBatches(ids, np.zeros(len(ids), dtype=np.int64), batch_size, device=device)
    return predict_proba(model, batches)


def binary_metrics(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray) -> dict[str, float]:
    """Accuracy, and precision, recall and F1 of the positive class (label 1)."""
    t, p = np.asarray(y_true), np.asarray(y_pred)
    tp = int(((p == 1) & (t == 1)).sum())
    precision = tp / max(1, int((p == 1).sum()))
    recall = tp / max(1, int((t == 1).sum()))
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"accuracy": float((t == p).mean()), "precision": precision, "recall": recall, "f1": f1}


def most_confident_mistakes(probs: np.ndarray, labels: Sequence[int] | np.ndarray, k: int = 5) -> np.ndarray:
    """Indices of the k wrong predictions the model was surest of, surest first."""
    labels = np.asarray(labels)
    pred = probs.argmax(-1)
    wrong = np.flatnonzero(pred != labels)
    return wrong[np.argsort(-probs[wrong, pred[wrong]], kind="stable")][:k]
