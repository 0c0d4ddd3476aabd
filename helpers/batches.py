"""What training and evaluation share: a batch moved, split and run through the model, and a pass's sums.

The loop's DDP bookkeeping is here, in one place (taught in 05 §5): every process runs the same loop on its own
shard; Tally.totals and mean_over_processes sum over all of them, only the main process draws a bar or speaks
(progress_bar, say), and one_writer lets it write a file while the others wait. helpers.train and
helpers.evaluation call helpers.distributed only through these.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn

from .device import autocast_dtype
from .distributed import barrier, is_main, sum_across
from .errors import ConfigError

Batch = Any
"""A batch: a dict of tensors with a "labels" (or "label") entry, or a tuple (inputs, labels)."""

ForwardFn = Callable[[nn.Module, Any], torch.Tensor]
"""How to get logits from a model and a batch's inputs (the default calls model(**inputs) or model(inputs))."""


def to_device(batch: Batch, device: torch.device) -> Batch:
    """Move every tensor in a (nested) batch to a device; tensors already there stay as they are. 01 §4.4."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def split_batch(batch: Batch) -> tuple[Any, torch.Tensor]:
    """Split a batch into inputs and labels: dicts by their "labels" or "label" key, tuples as (x, y). 01 §4.4."""
    if isinstance(batch, Mapping):
        key = "labels" if "labels" in batch else "label"
        return {k: v for k, v in batch.items() if k != key}, batch[key]
    inputs, labels = batch
    return inputs, labels


def default_forward(model: nn.Module, inputs: Any) -> torch.Tensor:
    """Call the model the way its inputs ask for and return logits (Hugging Face outputs are unwrapped)."""
    out = model(**inputs) if isinstance(inputs, Mapping) else model(inputs)
    return getattr(out, "logits", out)


def resolve_dtype(dtype: torch.dtype | str | None, device: torch.device) -> torch.dtype | None:
    """'auto' means the course-wide choice from helpers.device; None means full float32. Taught in 03 §4."""
    return autocast_dtype(device) if dtype == "auto" else dtype  # type: ignore[return-value]


def autocast(device: torch.device, dtype: torch.dtype | None) -> torch.autocast:
    """Mixed precision for the forward pass: autocast to `dtype`, or plain float32 when it is None. 03 §4."""
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def progress_bar(data: Iterable, enabled: bool, **kwargs: Any) -> Iterable:
    """tqdm.auto's bar over `data` when enabled (drawn by the main process only), else `data` itself."""
    if not enabled:
        return data
    from tqdm.auto import tqdm

    return tqdm(data, disable=not is_main(), **kwargs)


def say(text: str) -> None:
    """Print on the main process only: under DDP every process runs the loop, one speaks. Taught in 05 §5."""
    if is_main():
        print(text)


def one_writer(write: Callable[..., Any], *args: Any) -> None:
    """write(*args) on the main process only, then wait for it everywhere: nobody reads a stale file. 05 §5."""
    if is_main():
        write(*args)
    barrier()


def check_accuracy_fits(logits: torch.Tensor, labels: torch.Tensor) -> None:
    """A ConfigError unless logits are (..., classes) scores for integer labels, as accuracy=True needs."""
    if logits.ndim != labels.ndim + 1 or labels.is_floating_point():
        raise ConfigError(
            f"accuracy=True needs one score per class for each integer label, but the logits are "
            f"{tuple(logits.shape)} and the labels {tuple(labels.shape)} {labels.dtype}: this is not a "
            "classification. Pass accuracy=False (e.g. for a regression)."
        )


class Tally:
    """A pass's running sums on the device (no GPU sync per batch): loss x examples, right answers, examples."""

    def __init__(self, device: torch.device, accuracy: bool) -> None:
        self.accuracy = accuracy
        self.loss_sum = torch.zeros((), device=device)
        self.correct = torch.zeros((), device=device, dtype=torch.long)
        self.count = 0

    def add(self, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Count one batch: its mean loss, and (accuracy=True) how many argmax(logits) equal the labels."""
        self.loss_sum += loss.detach() * labels.shape[0]
        if self.accuracy:
            check_accuracy_fits(logits, labels)
            self.correct += (logits.argmax(-1) == labels).sum()
        self.count += labels.shape[0]

    def totals(self) -> tuple[dict[str, float], int]:
        """({"loss"[, "accuracy"]}, examples) over every process's shard: one all-reduce under DDP. 05 §5."""
        loss_sum, correct, count = sum_across(self.loss_sum, self.correct, self.count)
        metrics = {"loss": loss_sum.item() / count}
        if self.accuracy:
            metrics["accuracy"] = correct.item() / count
        return metrics, count


def mean_over_processes(total: float, steps: int) -> float:
    """total / steps, each summed over every process first: the same running loss on every process. 05 §5."""
    total, steps = sum_across(total, steps)
    return total / steps
