"""A trained model on held-out data: loss and accuracy, raw outputs, probabilities, and what it got wrong.

evaluate (metrics over every process), predict (logits, labels), predict_proba; from predictions: the confusion
matrix, precision/recall/F1 and the most confident mistakes. What a model costs (size, FLOPs, time): helpers.measure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from .batches import (
    Batch,
    ForwardFn,
    Tally,
    autocast,
    default_forward,
    progress_bar,
    resolve_dtype,
    split_batch,
    to_device,
)
from .device import model_device
from .errors import TrainingError

ArrayLike = Sequence[int] | np.ndarray | torch.Tensor
"""Labels or predictions: a list, a NumPy array or a tensor."""


def outputs(
    model: nn.Module,
    data: Iterable[Batch],
    dtype: torch.dtype | str | None,
    forward: ForwardFn,
    progress: bool,
    desc: str,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(float32 logits, labels) of each batch, on the model's device, in eval mode (restored after). 01 §4.4."""
    device = model_device(model)
    dtype = resolve_dtype(dtype, device)
    was_training = model.training
    model.eval()
    try:
        for batch in progress_bar(data, progress, desc=desc, leave=False):
            inputs, labels = split_batch(to_device(batch, device))
            with autocast(device, dtype):
                logits = forward(model, inputs)
            yield logits.float(), labels
    finally:
        model.train(was_training)


def no_batches(what: str) -> TrainingError:
    """The error for an empty loader, before a division by zero hides it."""
    return TrainingError(f"{what}() got no batches: the data loader is empty. Check its size and batch size.")


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    data: Iterable[Batch],
    *,
    loss_fn: Callable | None = None,
    accuracy: bool = True,
    dtype: torch.dtype | str | None = "auto",
    forward: ForwardFn = default_forward,
    progress: bool = False,
    desc: str = "eval",
) -> dict[str, float]:
    """{"loss", "accuracy"} over every process's shard; accuracy=False for a model that is no classifier. 01 §4.4."""
    tally = Tally(model_device(model), accuracy)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    for logits, labels in outputs(model, data, dtype, forward, progress, desc):
        tally.add(loss_fn(logits, labels), logits, labels)
    if tally.count == 0:
        raise no_batches("evaluate")
    return tally.totals()[0]


@torch.inference_mode()
def predict(
    model: nn.Module,
    data: Iterable[Batch],
    *,
    dtype: torch.dtype | str | None = "auto",
    forward: ForwardFn = default_forward,
    progress: bool = False,
    desc: str = "predict",
) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, labels) of every batch of this process, on the CPU, in the loader's order. Taught in 02 §5."""
    logits, labels = [], []
    for batch_logits, batch_labels in outputs(model, data, dtype, forward, progress, desc):
        logits.append(batch_logits.cpu())
        labels.append(batch_labels.cpu())
    if not logits:
        raise no_batches("predict")
    return torch.cat(logits), torch.cat(labels)


def predict_proba(model: nn.Module, data: Iterable[Batch], dtype: torch.dtype | str | None = "auto") -> np.ndarray:
    """Class probabilities (N, classes), in dataset order when the loader has order() (TokenBatches). 03 §5."""
    logits, _ = predict(model, data, dtype=dtype)
    probs = torch.softmax(logits, dim=-1).numpy()
    order = getattr(data, "order", None)  # a loader that yields rows out of dataset order says which rows it yields
    if order is None:
        return probs
    in_order = np.empty_like(probs)
    in_order[order()] = probs
    return in_order


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int) -> np.ndarray:
    """Counts[i, j] = how many examples of true class i were predicted as class j. Taught in 02 §5."""
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    return np.bincount(t * num_classes + p, minlength=num_classes**2).reshape(num_classes, num_classes)


def binary_metrics(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, float]:
    """Accuracy, and precision, recall and F1 of the positive class (label 1). Taught in 03 §5."""
    t, p = np.asarray(y_true), np.asarray(y_pred)
    tp = int(((p == 1) & (t == 1)).sum())
    precision = tp / max(1, int((p == 1).sum()))
    recall = tp / max(1, int((t == 1).sum()))
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"accuracy": float((t == p).mean()), "precision": precision, "recall": recall, "f1": f1}


def most_confident_mistakes(probs: np.ndarray | torch.Tensor, labels: ArrayLike, k: int = 5) -> np.ndarray:
    """Indices of the k wrong predictions the model was surest of, surest first. Taught in 02 §5 and 03 §5."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    pred = probs.argmax(-1)
    wrong = np.flatnonzero(pred != labels)
    return wrong[np.argsort(-probs[wrong, pred[wrong]], kind="stable")][:k]
