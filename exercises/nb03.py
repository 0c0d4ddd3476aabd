"""Checks of notebook 03's exercises: WordPiece counts, a frozen encoder against full fine-tuning, 64 against 128 tokens.

Exercises 2 and 3 train models, and what their results show depends on how much they train: with at least
LESSON_TRAIN_SIZE training reviews (the `cpu` and `gpu` profiles) the checks ask for the lesson each exercise
is about, with bounds that the solution reaches with margin (measured on the `cpu` profile, see the notebook);
on fewer (the `smoke` profile, COURSE_TINY=1 in CI) a few dozen steps cannot show it, so they check the
mechanics only.
"""

from __future__ import annotations

import collections
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from exercises import Checker

LESSON_TRAIN_SIZE = 800
"""Training reviews from which exercises 2 and 3 must show their lesson (the cpu profile trains on 1,000)."""

FULL_BEATS_FROZEN_BY = 0.05
"""Exercise 2: full fine-tuning's validation accuracy must beat the frozen encoder's by at least this."""

FULL_ACCURACY_AT_LEAST = 0.75
"""Exercise 2: the fully fine-tuned model's validation accuracy must reach this (chance is 0.5)."""

LONGER_BEATS_SHORTER_BY = 0.01
"""Exercise 3: 128 tokens must beat 64 tokens in validation accuracy by at least this."""

WORD = re.compile(r"[a-z]+")


def _is_number(x: Any) -> bool:
    """A real, finite number (a Python or NumPy float or int, not a bool)."""
    try:
        return not isinstance(x, bool) and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def check_split_words(split_words: Sequence[tuple[str, int, list[str]]] | None, texts: Sequence[str],
                      tokenizer: Any, k: int = 10, min_pieces: int = 3) -> bool:
    """Exercise 1 (03 §2): the k most frequent words of `texts` that WordPiece cuts into min_pieces or more."""
    c = Checker("Exercise 1 (words WordPiece splits most)")
    if c.unanswered(split_words is None, "count words with collections.Counter, then keep those with "
                                         f"len(tokenizer.tokenize(word)) >= {min_pieces}"):
        return c.verdict()
    counts = collections.Counter(w for t in texts for w in WORD.findall(t.lower()))
    expected = [(w, n) for w, n in counts.most_common() if len(tokenizer.tokenize(w)) >= min_pieces][:k]
    rows = list(split_words)
    shaped = all(isinstance(r, (tuple, list)) and len(r) == 3 for r in rows)
    c.check(len(rows) == k and shaped, f"{k} entries, each (word, count, pieces)",
            f"keep the first {k} of the split words, most frequent first, as (word, count, pieces) tuples")
    if not shaped or not rows:
        return c.verdict()
    c.check(lambda: all(list(p) == tokenizer.tokenize(w) for w, _, p in rows), "each word's pieces are what the tokenizer gives",
            "pieces = tokenizer.tokenize(word), on the lower-cased word")
    c.check(lambda: all(len(p) >= min_pieces for _, _, p in rows), f"every word has {min_pieces} or more pieces",
            f"filter with len(tokenizer.tokenize(word)) >= {min_pieces}")
    c.check(lambda: all(counts[w] == n for w, n, _ in rows), "each count is how often the word occurs in the texts",
            "lower-case each text and find words with re.findall(r'[a-z]+', text), then count them all together")
    c.check(lambda: sorted((n for _, n, _ in rows), reverse=True) == [n for _, n in expected],
            f"they are the {k} most frequent such words (ties in either order)",
            "go through Counter.most_common() in order and stop after the first k words that split")
    return c.verdict()


RUN_KEYS = ("accuracy", "samples_per_s", "seconds")
"""What train_and_validate returns for one run (the notebook defines it before the exercises)."""


def _run(results: Any, key: Any) -> dict[str, float] | None:
    """One run's {"accuracy", "samples_per_s", "seconds"} from a results dict, or None when it is not one."""
    value = results.get(key) if isinstance(results, Mapping) else None
    if isinstance(value, Mapping) and all(_is_number(value.get(k)) for k in RUN_KEYS):
        return {k: float(value[k]) for k in RUN_KEYS}
    return None


def _sane(runs: Sequence[dict[str, float]]) -> bool:
    """Accuracies in [0, 1], speeds and times positive."""
    return all(0 <= r["accuracy"] <= 1 and r["samples_per_s"] > 0 and r["seconds"] > 0 for r in runs)


def _too_few(n_train: int) -> None:
    """Say why only the mechanics were checked."""
    print(f"ℹ️ {n_train} training reviews are too few to show the lesson: checked the mechanics only "
          f"(from {LESSON_TRAIN_SIZE} on, as on the cpu and gpu profiles, also the accuracies).")


def check_frozen_encoder(frozen: nn.Module | None, results: Mapping[str, Mapping[str, float]] | None,
                         n_train: int) -> bool:
    """Exercise 2 (03 §3-4): only the head trains; full fine-tuning is slower per review but more accurate."""
    c = Checker("Exercise 2 (frozen encoder against full fine-tuning)")
    if c.unanswered(frozen is None or results is None,
                    "load a fresh classifier, freeze model.bert.embeddings and model.bert.encoder, train both models"):
        return c.verdict()
    bert = getattr(frozen, "bert", None)
    if not c.check(bert is not None and hasattr(frozen, "classifier"), "frozen is a BERT classifier",
                   "frozen should be what load_classifier() returns (its first element)"):
        return c.verdict()
    body = [p for part in (bert.embeddings, bert.encoder) for p in part.parameters()]
    head = [*bert.pooler.parameters(), *frozen.classifier.parameters()]
    c.check(not any(p.requires_grad for p in body), "embeddings and encoder are frozen (requires_grad False)",
            "call .requires_grad_(False) on frozen.bert.embeddings and on frozen.bert.encoder")
    c.check(all(p.requires_grad for p in head), "the pooler and the classifier still train",
            "freeze only the embeddings and the encoder, not the whole model")
    frozen_run, full_run = _run(results, "frozen"), _run(results, "full")
    c.check(frozen_run is not None and full_run is not None,
            'results holds a "frozen" and a "full" run, each as train_and_validate returns it',
            'results = {"frozen": train_and_validate(frozen, ...), "full": train_and_validate(fresh model, ...)}')
    if frozen_run is None or full_run is None:
        return c.verdict()
    c.check(_sane([frozen_run, full_run]), "accuracies are between 0 and 1, speeds and times positive",
            "store what train_and_validate returns, unchanged")
    if n_train < LESSON_TRAIN_SIZE:
        _too_few(n_train)
        return c.verdict()
    c.check(frozen_run["samples_per_s"] > 1.3 * full_run["samples_per_s"], "the frozen encoder trains faster per review",
            "with the encoder frozen the backward pass stops at the head: make sure the frozen run is the frozen model")
    c.check(full_run["accuracy"] >= FULL_ACCURACY_AT_LEAST,
            f"full fine-tuning reaches {FULL_ACCURACY_AT_LEAST:.0%} validation accuracy",
            "train a fresh classifier (not the frozen one) with CONFIG['exercise_lr'], all parameters trainable")
    c.check(full_run["accuracy"] >= frozen_run["accuracy"] + FULL_BEATS_FROZEN_BY,
            f"full fine-tuning beats the frozen encoder by {FULL_BEATS_FROZEN_BY:.0%} or more",
            "give each run its own learning rate: 1e-3 for the frozen head, CONFIG['exercise_lr'] for full fine-tuning")
    return c.verdict()


def check_lengths(by_length: Mapping[int, Mapping[str, float]] | None, lengths: Sequence[int], n_train: int) -> bool:
    """Exercise 3 (03 §2, §4): a longer max_length costs time per epoch and, trained enough, buys accuracy."""
    c = Checker("Exercise 3 (a short against a long max_length)")
    if c.unanswered(by_length is None, "loop over the two max_lengths; for each, encode, batch, train a fresh "
                                       "classifier with train_and_validate and keep what it returns"):
        return c.verdict()
    short, long = sorted(lengths)
    runs = {n: _run(by_length, n) for n in (short, long)}
    c.check(all(r is not None for r in runs.values()), f"by_length holds a run for {short} and for {long} tokens",
            f"by_length[max_length] = train_and_validate(...) for max_length in ({short}, {long})")
    if any(r is None for r in runs.values()):
        return c.verdict()
    c.check(_sane(list(runs.values())), "accuracies are between 0 and 1, speeds and times positive",
            "store what train_and_validate returns, unchanged")
    if n_train < LESSON_TRAIN_SIZE:
        _too_few(n_train)
        return c.verdict()
    c.check(runs[long]["seconds"] > 1.3 * runs[short]["seconds"], f"an epoch at {long} tokens takes longer than at {short}",
            "encode the training reviews again at each max_length (textlib.encode_reviews), not once at 128")
    c.check(runs[long]["accuracy"] >= runs[short]["accuracy"] + LONGER_BEATS_SHORTER_BY,
            f"{long} tokens beat {short} tokens by {LONGER_BEATS_SHORTER_BY:.0%} or more in validation accuracy",
            "train both runs the same way (same reviews, learning rate, epochs); only max_length may differ")
    return c.verdict()
