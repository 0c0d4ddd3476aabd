"""Counting, timing and scoring: parameters and FLOPs, device time, and what predictions got right or wrong."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

ArrayLike = Sequence[int] | np.ndarray | torch.Tensor


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (optionally only those that get gradients). Taught in 02 §2.5."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_flops(model: nn.Module, x: torch.Tensor) -> tuple[int, dict[str, int]]:
    """FLOPs of one forward pass (a multiply-add counts 2), total and per module (FlopCounterMode). 02 §2.5."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False, depth=None)
    with counter, torch.no_grad():
        model(x)
    per_module = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    return counter.get_total_flops(), per_module


def layer_summary(model: nn.Module, x: torch.Tensor) -> list[dict[str, Any]]:
    """One row per leaf module in call order: name, kind, output shape, parameters, FLOPs. Taught in 02 §2.5."""
    rows: dict[str, dict[str, Any]] = {}
    handles = []
    for name, module in model.named_modules():
        if name and not list(module.children()):

            def hook(mod: nn.Module, inputs: Any, output: torch.Tensor, name: str = name) -> None:
                rows.setdefault(
                    name,
                    {
                        "layer": name,
                        "kind": type(mod).__name__,
                        "output": tuple(output.shape[1:]),
                        "params": count_parameters(mod),
                        "flops": 0,
                    },
                )

            handles.append(module.register_forward_hook(hook))
    try:
        _, per_module = count_flops(model, x)
    finally:
        for handle in handles:
            handle.remove()
    prefix = type(model).__name__ + "."
    for key, flops in per_module.items():
        if key.startswith(prefix) and key[len(prefix) :] in rows:
            rows[key[len(prefix) :]]["flops"] = flops
    return list(rows.values())


class Timer:
    """Seconds of a block of device work: CUDA events on a GPU (no host stalls), else perf_counter. 02 §4.8."""

    def __init__(self, device: torch.device | str):
        self.cuda = torch.device(device).type == "cuda"
        self.seconds = 0.0

    def __enter__(self) -> Timer:
        if self.cuda:
            self.start, self.end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            self.start.record()
        else:
            self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.cuda:
            self.end.record()
            torch.cuda.synchronize()
            self.seconds = self.start.elapsed_time(self.end) / 1000
        else:
            self.seconds = time.perf_counter() - self.t0


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
