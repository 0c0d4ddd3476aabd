"""Checks of notebook 03's exercises: WordPiece counts, a frozen encoder against fine-tuning, 64 against 128 tokens.

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

LESSON_TRAIN_SIZE = 400
"""Training reviews from which exercises 2 and 3 must show their lesson (the cpu profile trains on 400)."""

FULL_BEATS_FROZEN_BY = 0.05
"""Exercise 2: full fine-tuning's validation accuracy must beat the frozen encoder's by at least this."""

FULL_ACCURACY_AT_LEAST = 0.65
"""Exercise 2: the fully fine-tuned model's validation accuracy must reach this (chance is 0.5)."""

MEAN_BEATS_CLS_BY = 0.02
"""Exercise 2: the frozen encoder read through its mean token must beat it read through [CLS] by at least this."""

LENGTH_RUNS_REACH = 0.58
"""Exercise 3: both fine-tuning runs (short and long max_length) must reach this validation accuracy."""

WORD = re.compile(r"[a-z]+")


def _is_number(x: Any) -> bool:
    """A real, finite number (a Python or NumPy float or int, not a bool)."""
    try:
        return not isinstance(x, bool) and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def check_split_words(
    split_words: Sequence[tuple[str, int, list[str]]] | None,
    texts: Sequence[str],
    tokenizer: Any,
    k: int = 10,
    min_pieces: int = 3,
) -> bool:
    """Exercise 1 (03 §2): the k most frequent words of `texts` that WordPiece cuts into min_pieces or more."""
    c = Checker("Exercise 1 (words WordPiece splits most)")
    if c.unanswered(
        split_words is None,
        f"count words with collections.Counter, then keep those with len(tokenizer.tokenize(word)) >= {min_pieces}",
    ):
        return c.verdict()
    counts = collections.Counter(w for t in texts for w in WORD.findall(t.lower()))
    expected = [(w, n) for w, n in counts.most_common() if len(tokenizer.tokenize(w)) >= min_pieces][:k]
    rows = list(split_words)
    shaped = all(isinstance(r, (tuple, list)) and len(r) == 3 for r in rows)
    c.check(
        len(rows) == k and shaped,
        f"{k} entries, each (word, count, pieces)",
        f"keep the first {k} of the split words, most frequent first, as (word, count, pieces) tuples",
    )
    if not shaped or not rows:
        return c.verdict()
    c.check(
        lambda: all(list(p) == tokenizer.tokenize(w) for w, _, p in rows),
        "each word's pieces are what the tokenizer gives",
        "pieces = tokenizer.tokenize(word), on the lower-cased word",
    )
    c.check(
        lambda: all(len(p) >= min_pieces for _, _, p in rows),
        f"every word has {min_pieces} or more pieces",
        f"filter with len(tokenizer.tokenize(word)) >= {min_pieces}",
    )
    c.check(
        lambda: all(counts[w] == n for w, n, _ in rows),
        "each count is how often the word occurs in the texts",
        "lower-case each text and find words with re.findall(r'[a-z]+', text), then count them all together",
    )
    c.check(
        lambda: sorted((n for _, n, _ in rows), reverse=True) == [n for _, n in expected],
        f"they are the {k} most frequent such words (ties in either order)",
        "go through Counter.most_common() in order and stop after the first k words that split",
    )
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
    print(
        f"ℹ️ {n_train} training reviews are too few to show the lesson: checked the mechanics only "
        f"(from {LESSON_TRAIN_SIZE} on, as on the cpu and gpu profiles, also the accuracies)."
    )


def _encoder_of(model: nn.Module) -> nn.Module | None:
    """The BERT encoder inside a model (the submodule with .embeddings and .encoder), or None."""
    for module in model.modules():
        if hasattr(module, "embeddings") and hasattr(module, "encoder") and hasattr(module, "config"):
            return module
    return None


def _mean_pooling_matches(model: nn.Module) -> bool:
    """The model's logits are its one trainable linear layer applied to the mean of the real tokens' final vectors.

    Checked on two short texts, the second padded with [PAD] tokens that the attention mask marks as padding.
    """
    import torch

    encoder = _encoder_of(model)
    heads = [m for m in model.modules() if isinstance(m, nn.Linear) and m.weight.requires_grad]
    if encoder is None or len(heads) != 1:
        return False
    device = next(model.parameters()).device
    ids = torch.tensor([[101, 2023, 3185, 2001, 2307, 999, 102], [101, 6659, 1012, 102, 0, 0, 0]], device=device)
    mask = (ids != 0).long()
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(input_ids=ids, attention_mask=mask)
            logits = getattr(out, "logits", out).float()
            hidden = encoder(input_ids=ids, attention_mask=mask).last_hidden_state.float()
            mean = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
            expected = heads[0](mean.to(heads[0].weight.dtype)).float()
    finally:
        model.train(was_training)
    return tuple(logits.shape) == (2, heads[0].out_features) and torch.allclose(logits, expected, atol=1e-4)


def check_frozen_encoder(
    frozen: nn.Module | None,
    frozen_mean: nn.Module | None,
    results: Mapping[str, Mapping[str, float]] | None,
    n_train: int,
) -> bool:
    """Exercise 2 (03 §3-4): a frozen encoder read through [CLS] or the mean of its tokens, and full fine-tuning."""
    c = Checker("Exercise 2 (a frozen encoder, read two ways, against full fine-tuning)")
    if c.unanswered(
        frozen is None or frozen_mean is None or results is None,
        "freeze a classifier's embeddings and encoder; build a mean-pooling classifier on a frozen "
        "encoder; train both and a fully trainable classifier",
    ):
        return c.verdict()
    bert = getattr(frozen, "bert", None)
    if not c.check(
        bert is not None and hasattr(frozen, "classifier"),
        "frozen is a BERT classifier",
        "frozen should be what load_classifier() returns (its first element)",
    ):
        return c.verdict()
    body = [p for part in (bert.embeddings, bert.encoder) for p in part.parameters()]
    head = [*bert.pooler.parameters(), *frozen.classifier.parameters()]
    c.check(
        not any(p.requires_grad for p in body),
        "frozen: embeddings and encoder are frozen (requires_grad False)",
        "call .requires_grad_(False) on frozen.bert.embeddings and on frozen.bert.encoder",
    )
    c.check(
        all(p.requires_grad for p in head),
        "frozen: the pooler and the classifier still train",
        "freeze only the embeddings and the encoder, not the whole model",
    )
    encoder = _encoder_of(frozen_mean) if isinstance(frozen_mean, nn.Module) else None
    if not c.check(
        encoder is not None,
        "frozen_mean is a module that holds a BERT encoder",
        "an nn.Module whose __init__ keeps a pretrained encoder (e.g. load_classifier()[0].bert) and a new "
        "nn.Linear(hidden size, 2)",
    ):
        return c.verdict()
    c.check(
        not any(p.requires_grad for p in encoder.parameters()),
        "frozen_mean: the whole encoder is frozen",
        "call .requires_grad_(False) on the encoder you keep inside it",
    )
    c.check(
        lambda: _mean_pooling_matches(frozen_mean),
        "frozen_mean returns (texts, 2) logits: its one trainable linear layer on the mean of the real tokens' "
        "final vectors ([PAD] left out)",
        "in forward, average last_hidden_state over the tokens where attention_mask is 1 (multiply by the mask, "
        "sum over tokens, divide by the mask's sum), then apply the linear layer",
    )
    names = ("frozen", "frozen_mean", "full")
    runs = {name: _run(results, name) for name in names}
    c.check(
        all(r is not None for r in runs.values()),
        'results holds a "frozen", a "frozen_mean" and a "full" run, each as train_and_validate returns it',
        'results = {"frozen": train_and_validate(frozen, ...), "frozen_mean": ..., "full": ...}',
    )
    if any(r is None for r in runs.values()):
        return c.verdict()
    c.check(
        _sane(list(runs.values())),
        "accuracies are between 0 and 1, speeds and times positive",
        "store what train_and_validate returns, unchanged",
    )
    if n_train < LESSON_TRAIN_SIZE:
        _too_few(n_train)
        return c.verdict()
    frozen_run, mean_run, full_run = (runs[name] for name in names)
    c.check(
        frozen_run["samples_per_s"] > 1.3 * full_run["samples_per_s"],
        "the frozen encoder trains faster per review",
        "with the encoder frozen the backward pass stops at the head: make sure the frozen run is the frozen model",
    )
    c.check(
        full_run["accuracy"] >= FULL_ACCURACY_AT_LEAST,
        f"full fine-tuning reaches {FULL_ACCURACY_AT_LEAST:.0%} validation accuracy",
        "train a fresh classifier (not the frozen one) with CONFIG['exercise_lr'], all parameters trainable",
    )
    c.check(
        mean_run["accuracy"] >= frozen_run["accuracy"] + MEAN_BEATS_CLS_BY,
        f"read through the mean of its tokens, the frozen encoder beats its [CLS] vector by {MEAN_BEATS_CLS_BY:.0%} "
        "or more",
        "train both frozen models on the same batches; frozen_mean at CONFIG['exercise_mean_lr'], a lone linear "
        "layer on fixed features needs larger steps",
    )
    c.check(
        full_run["accuracy"] >= frozen_run["accuracy"] + FULL_BEATS_FROZEN_BY,
        f"full fine-tuning beats the frozen [CLS] classifier by {FULL_BEATS_FROZEN_BY:.0%} or more",
        "give each run its own learning rate: CONFIG['exercise_frozen_lr'] for the frozen [CLS] head, "
        "CONFIG['exercise_lr'] for full fine-tuning",
    )
    return c.verdict()


def check_lengths(
    by_length: Mapping[int, Mapping[str, float]] | None, lengths: Sequence[int], n_train: int, n_val: int | None = None
) -> bool:
    """Exercise 3 (03 §2, §4): a longer max_length costs time per epoch; is its gain larger than the noise?

    A gain of a few points on a few hundred validation reviews is about one standard error, so the check tests the
    mechanism (each run really read its own length: the longer one costs more time, both learned) and prints the gain
    with its standard error instead of demanding a gain that another seed may not show.
    """
    c = Checker("Exercise 3 (a short against a long max_length)")
    if c.unanswered(
        by_length is None,
        "encode the exercise's reviews (and the validation reviews) at the shorter "
        "max_length, train a fresh classifier with train_and_validate, and put the run "
        "next to exercise 2's full run",
    ):
        return c.verdict()
    short, long = sorted(lengths)
    runs = {n: _run(by_length, n) for n in (short, long)}
    c.check(
        all(r is not None for r in runs.values()),
        f"by_length holds a run for {short} and for {long} tokens",
        f"by_length = {{{short}: train_and_validate(...), {long}: results['full']}}",
    )
    if any(r is None for r in runs.values()):
        return c.verdict()
    c.check(
        _sane(list(runs.values())),
        "accuracies are between 0 and 1, speeds and times positive",
        "store what train_and_validate returns, unchanged",
    )
    if n_train < LESSON_TRAIN_SIZE:
        _too_few(n_train)
        return c.verdict()
    c.check(
        runs[long]["seconds"] > 1.3 * runs[short]["seconds"],
        f"an epoch at {long} tokens takes longer than at {short}",
        f"encode the training reviews again at {short} tokens (textlib.encode_reviews), not once at {long}",
    )
    c.check(
        min(r["accuracy"] for r in runs.values()) >= LENGTH_RUNS_REACH,
        f"both runs learned: {LENGTH_RUNS_REACH:.0%} validation accuracy or more",
        "train the shorter run as exercise 2's full run was trained: a fresh classifier, CONFIG['exercise_lr']",
    )
    if n_val:
        gain = runs[long]["accuracy"] - runs[short]["accuracy"]
        p = (runs[long]["accuracy"] + runs[short]["accuracy"]) / 2
        se = math.sqrt(2 * p * (1 - p) / n_val)
        print(
            f"ℹ️ {long} against {short} tokens: {100 * gain:+.1f} points, one standard error of such a difference "
            f"on {n_val} validation reviews is about {100 * se:.1f} points ({gain / se:+.1f} standard errors)."
        )
    return c.verdict()
