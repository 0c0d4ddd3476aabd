"""BERT on IMDB (notebook 03): tokenise once (head and tail kept), batch by length, pad per batch; texts scored."""

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

from .device import model_device
from .errors import ConfigError, check_choice, check_int
from .evaluation import predict_proba

TRUNCATIONS: tuple[str, ...] = ("head", "head+tail")
"""head: keep the first tokens (the tokenizer's own truncation); head+tail: keep the first and the last."""

HEAD_TAIL_512 = (128, 382)
"""Sun et al. (2019): at 512 tokens, keeping the first 128 and last 382 text tokens is the best truncation on IMDB."""

LABEL_NAMES: tuple[str, ...] = ("negative", "positive")
"""IMDB's labels: 0 = negative review, 1 = positive review."""

_BREAK = re.compile(r"<br\s*/?>", flags=re.IGNORECASE)
_SPACES = re.compile(r"\s+")


def clean_review(text: str, max_chars: int | None = None) -> str:
    """A review as a reader should see it: HTML line breaks and entities removed, shortened. Taught in 03 §1."""
    text = _SPACES.sub(" ", html.unescape(_BREAK.sub(" ", text))).strip()
    if max_chars is not None and len(text) > max_chars:
        text = text[: max_chars - 1].rstrip() + "…"
    return text


def head_tail_sizes(budget: int, head: int | None = None) -> tuple[int, int]:
    """Text tokens to keep from a review's start and end; by default Sun et al.'s 128 of 510. Taught in 03 §2."""
    check_int("budget", budget, 1, fix="max_length must leave at least one token beside [CLS] and [SEP].")
    if head is None:
        head = round(budget * HEAD_TAIL_512[0] / sum(HEAD_TAIL_512))
    head = min(max(head, 0), budget)
    return head, budget - head


def truncate_ids(ids: Sequence[int], budget: int, truncation: str = "head", head: int | None = None) -> list[int]:
    """Cut text token ids (no special tokens) to at most `budget`: the first ones, or head and tail. Taught in 03 §2."""
    ids = list(ids)
    if len(ids) <= budget or check_choice("truncation", truncation, TRUNCATIONS) == "head":
        return ids[:budget]
    n_head, n_tail = head_tail_sizes(budget, head)
    return ids[:n_head] + (ids[-n_tail:] if n_tail else [])


def encode_reviews(
    tokenizer: Any, texts: Sequence[str], max_length: int = 512, truncation: str = "head", head: int | None = None
) -> list[list[int]]:
    """Token ids [CLS] ... [SEP], at most max_length, unpadded, cut at the head or head+tail. Taught in 03 §2."""
    budget = check_encoding(tokenizer, max_length, truncation) - 2  # room for [CLS] and [SEP]
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    return [[cls, *truncate_ids(ids, budget, truncation, head), sep] for ids in _text_ids(tokenizer, texts)]


def check_encoding(tokenizer: Any, max_length: int, truncation: str) -> int:
    """max_length itself, or a ConfigError when it is beyond the model's limit or the truncation is unknown."""
    check_choice("truncation", truncation, TRUNCATIONS)
    limit = getattr(tokenizer, "model_max_length", 512)
    return check_int(
        "max_length",
        max_length,
        3,
        limit if limit < 1e6 else None,
        f"{getattr(tokenizer, 'name_or_path', 'This model')} reads at most {limit} tokens: lower max_length.",
    )


def _text_ids(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    """Every text's token ids in full: no special tokens, no truncation (the fast tokenizer runs them in parallel)."""
    return tokenizer(
        list(texts),
        add_special_tokens=False,
        truncation=False,
        verbose=False,
        return_attention_mask=False,
        return_token_type_ids=False,
    )["input_ids"]


def tokenize_function(
    tokenizer: Any, max_length: int = 512, truncation: str = "head", head: int | None = None, text_column: str = "text"
) -> Callable[[Mapping[str, list]], dict]:
    """A function for `Dataset.map(fn, batched=True)`: adds input_ids (unpadded) and their length. Taught in 03 §2."""
    check_encoding(tokenizer, max_length, truncation)  # now, not in the middle of a map

    def tokenize(batch: Mapping[str, list]) -> dict[str, list]:
        ids = encode_reviews(tokenizer, batch[text_column], max_length, truncation, head)
        return {"input_ids": ids, "length": [len(x) for x in ids]}

    return tokenize


def token_lengths(tokenizer: Any, texts: Sequence[str]) -> np.ndarray:
    """Length in WordPiece tokens of each text, [CLS] and [SEP] included, with no truncation. Taught in 03 §1."""
    return np.array([len(ids) + 2 for ids in _text_ids(tokenizer, texts)], dtype=np.int64)


def pad_ids(
    sequences: Sequence[Sequence[int]], pad_id: int = 0, length: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One (N, length) int64 matrix of right-padded token ids and the (N,) true lengths. Taught in 03 §4."""
    # ours, not pad_sequence: 25,000 reviews pad in 0.36 s against 2.29 s (with a tensor per review), 2-core CPU
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    width = int(lengths.max(initial=0)) if length is None else length
    if lengths.max(initial=0) > width:
        raise ConfigError(f"a sequence has {lengths.max()} tokens, more than length={width}")
    flat = np.fromiter(itertools.chain.from_iterable(sequences), dtype=np.int64, count=int(lengths.sum()))
    out = np.full((len(sequences), width), pad_id, dtype=np.int64)
    out[np.arange(width)[None, :] < lengths[:, None]] = flat
    return out, lengths


Seed = int | Sequence[int]
"""A seed for numpy's default_rng: an int, or a sequence such as (seed, epoch)."""


def random_batches(n: int, batch_size: int, shuffle: bool = True, seed: Seed = 0) -> list[np.ndarray]:
    """Index batches in random (or dataset) order: what a plain DataLoader does. Taught in 03 §4."""
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def length_grouped_batches(
    lengths: Sequence[int] | np.ndarray, batch_size: int, shuffle: bool = True, seed: Seed = 0, group_batches: int = 50
) -> list[np.ndarray]:
    """Index batches of similar length: shuffle, sort within mega-batches, shuffle the batches. Taught in 03 §4.

    Unshuffled: sorted by length, longest first. Shuffled: the longest batch comes first, so that a batch too big for
    the GPU's memory fails at step 1, not an hour in.
    """
    # the idea of transformers' group_by_length, our code: its function lives in an internal module
    lengths = np.asarray(lengths)
    if not shuffle:
        order = np.argsort(-lengths, kind="stable")
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    mega = batch_size * group_batches  # sort each random mega-batch by length, longest first
    order = np.concatenate(
        [part[np.argsort(-lengths[part], kind="stable")] for part in np.split(order, range(mega, len(order), mega))]
    )
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    longest = int(np.argmax([lengths[b].max() for b in batches]))
    rest = [b for b in rng.permutation(len(batches)) if b != longest]
    return [batches[longest], *(batches[b] for b in rest)]


def padding_fraction(
    lengths: Sequence[int] | np.ndarray, batches: Sequence[np.ndarray], pad_to: int | None = None
) -> float:
    """Share of the tokens fed that are [PAD]: each batch padded to its longest (or pad_to). Taught in 03 §4."""
    lengths = np.asarray(lengths)
    real = sum(int(lengths[b].sum()) for b in batches)
    fed = sum(len(b) * (pad_to or int(lengths[b].max())) for b in batches)
    return 1.0 - real / fed


class TokenBatches:
    """Padded batches (input_ids, attention_mask, labels) sliced from one matrix on `device`. Taught in 03 §4."""

    # ours, not DataLoader + collator: an epoch of 25,000 reviews in 1.2 s (+0.6 s to pad) against 5.1 s, 2-core CPU

    def __init__(
        self,
        input_ids: Sequence[Sequence[int]],
        labels: Sequence[int] | np.ndarray,
        batch_size: int,
        *,
        shuffle: bool = False,
        group_by_length: bool = True,
        seed: int = 0,
        device: torch.device | str = "cpu",
        pad_id: int = 0,
        pad_to_multiple_of: int = 1,
        mask: str = "2d",
        group_batches: int = 50,
    ) -> None:
        check_choice("mask", mask, ("2d", "4d"))
        if len(input_ids) != len(labels):
            raise ConfigError(f"{len(input_ids)} token sequences but {len(labels)} labels: give one label per review")
        ids, lengths = pad_ids(input_ids, pad_id)
        self.device = torch.device(device)
        self.lengths = lengths
        self.batch_size = check_int("batch_size", batch_size)
        self.shuffle, self.group_by_length, self.seed = shuffle, group_by_length, seed
        self.pad_to_multiple_of, self.mask, self.group_batches = pad_to_multiple_of, mask, group_batches
        self.input_ids = torch.from_numpy(ids).to(self.device)
        self.token_lengths = torch.from_numpy(lengths).to(self.device)
        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.long).to(self.device)
        self.epoch = 0  # which epoch's order a pass yields: set by set_epoch (helpers.fit does), never by a pass

    def __len__(self) -> int:
        """Number of batches per pass."""
        return math.ceil(len(self.lengths) / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order the next passes yield (PyTorch's sampler convention: seed and epoch only)."""
        self.epoch = epoch

    def batches(self, epoch: int = 0) -> list[np.ndarray]:
        """The index batches of one pass in a given epoch (the same for the same epoch and seed)."""
        seed = (self.seed, epoch)
        if self.group_by_length:
            return length_grouped_batches(self.lengths, self.batch_size, self.shuffle, seed, self.group_batches)
        return random_batches(len(self.lengths), self.batch_size, self.shuffle, seed)

    def order(self) -> np.ndarray:
        """The dataset indices in the order a pass yields them (to put outputs back in dataset order)."""
        return np.concatenate(self.batches(self.epoch))

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        """Yield one padded batch after another, in the order of the epoch that set_epoch chose."""
        batches = self.batches(self.epoch)
        # one copy of all indices per pass, then only slices of it
        rows_all = torch.from_numpy(np.concatenate(batches))
        if self.device.type == "cuda":
            rows_all = rows_all.pin_memory()
        rows_all = rows_all.to(self.device, non_blocking=True)
        start = 0
        for batch in batches:
            rows = rows_all[start : start + len(batch)]
            start += len(batch)
            lengths = self.lengths[batch]
            width = int(lengths.max())
            width = min(-(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of, self.input_ids.shape[1])
            out = {"input_ids": self.input_ids[rows, :width]}
            if self.mask == "2d":  # what eager attention needs
                out["attention_mask"] = self._mask(rows, width).long()
            elif int(lengths.min()) < width:  # "4d": SDPA's ready mask, none without padding: no GPU sync per step
                out["attention_mask"] = self._mask(rows, width)[:, None, None, :]
            out["labels"] = self.labels[rows]
            yield out

    def _mask(self, rows: torch.Tensor, width: int) -> torch.Tensor:
        """True where a token is real, False where it is padding."""
        positions = torch.arange(width, device=self.device)
        return positions[None, :] < self.token_lengths[rows][:, None]


def predict_texts(
    model: nn.Module,
    tokenizer: Any,
    texts: Sequence[str],
    max_length: int = 512,
    truncation: str = "head",
    batch_size: int = 32,
) -> np.ndarray:
    """Class probabilities for raw texts: the same tokenisation and truncation as in training. Taught in 03 §5."""
    ids = encode_reviews(tokenizer, texts, max_length, truncation)
    batches = TokenBatches(ids, np.zeros(len(ids), dtype=np.int64), batch_size, device=model_device(model))
    return predict_proba(model, batches)
