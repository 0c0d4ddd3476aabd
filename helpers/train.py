"""One plain PyTorch train/eval loop for every notebook: image tuples and Hugging Face dict batches alike."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoints import load_checkpoint, save_checkpoint
from .device import autocast_dtype, model_device, needs_grad_scaler
from .distributed import barrier, is_main, sum_across, world_size
from .errors import TrainingError, check_int

Batch = Any
"""A batch: a dict of tensors with a "labels" (or "label") entry, or a tuple (inputs, labels)."""

ForwardFn = Callable[[nn.Module, Any], torch.Tensor]
"""How to get logits from a model and a batch's inputs (the default calls model(**inputs) or model(inputs))."""


@dataclass
class History:
    """What training measured: a dict of metrics per epoch, and the running loss at logged steps. Taught in 01 §4.4."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    steps: list[dict[str, float]] = field(default_factory=list)
    interrupted: bool = False

    def __getitem__(self, key: str) -> list[float]:
        """The per-epoch values of one metric, e.g. history["val_accuracy"]."""
        return [e[key] for e in self.epochs if key in e]

    def __len__(self) -> int:
        """Number of completed epochs."""
        return len(self.epochs)

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for checkpoints and JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> History:
        """Rebuild a history saved by to_dict."""
        return cls(epochs=list(data["epochs"]), steps=list(data["steps"]), interrupted=bool(data.get("interrupted")))


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


def _is_classification(logits: torch.Tensor, labels: torch.Tensor) -> bool:
    """Accuracy makes sense when there is one more logits dimension than labels and labels are integers."""
    return logits.ndim == labels.ndim + 1 and not labels.is_floating_point()


def _resolve_dtype(dtype: torch.dtype | str | None, device: torch.device) -> torch.dtype | None:
    """'auto' means the course-wide choice from helpers.device; None means full fp32."""
    return autocast_dtype(device) if dtype == "auto" else dtype  # type: ignore[return-value]


def progress_bar(data: Iterable, enabled: bool, **kwargs: Any) -> Iterable:
    """tqdm.auto's bar over `data` when enabled, else `data` itself: tqdm is imported only to draw a bar."""
    if not enabled:
        return data
    from tqdm.auto import tqdm

    return tqdm(data, **kwargs)


FORMATS = {"lr": "lr {:.2e}", "time_s": "{:.1f} s", "samples_per_s": "{:,.0f} samples/s"}
"""How format_record writes the values that are not losses or accuracies (those get 4 places)."""


def format_record(record: Mapping[str, float], epochs: int) -> str:
    """One readable line per epoch: losses and accuracies to 4 places, the lr, seconds, throughput."""
    values = (FORMATS.get(key, key + " {:.4f}").format(value) for key, value in record.items() if key != "epoch")
    return " | ".join([f"epoch {record['epoch']}/{epochs}", *values])


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    data: Iterable[Batch],
    *,
    loss_fn: Callable | None = None,
    dtype: torch.dtype | str | None = "auto",
    forward: ForwardFn = default_forward,
    return_outputs: bool = False,
    progress: bool = False,
    desc: str = "eval",
):
    """Mean loss (and accuracy) over all shards; return_outputs adds this rank's (logits, labels). Taught in 01 §4.4."""
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    device = model_device(model)
    dtype = _resolve_dtype(dtype, device)
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    count, classification = 0, False
    all_logits, all_labels = [], []
    for batch in progress_bar(data, progress and is_main(), desc=desc, leave=False):
        inputs, labels = split_batch(to_device(batch, device))
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            logits = forward(model, inputs)
        logits = logits.float()
        loss_sum += loss_fn(logits, labels) * labels.shape[0]
        classification = _is_classification(logits, labels)
        if classification:
            correct += (logits.argmax(-1) == labels).sum()
        count += labels.shape[0]
        if return_outputs:
            all_logits.append(logits.cpu())
            all_labels.append(labels.cpu())
    model.train(was_training)
    if count == 0:
        raise TrainingError("evaluate() got no batches: the data loader is empty. Check its size and batch size.")
    loss_sum, correct, count = sum_across(loss_sum, correct, count)  # under DDP: over every process's shard
    metrics = {"loss": loss_sum.item() / count}
    if classification:
        metrics["accuracy"] = correct.item() / count
    if return_outputs:
        return metrics, torch.cat(all_logits), torch.cat(all_labels)
    return metrics


@dataclass
class Step:
    """One training step, with everything it needs besides the batch (fit builds it once). Taught in 01 §4.4."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    loss_fn: Callable
    forward: ForwardFn
    dtype: torch.dtype | None  # autocast's dtype; None: float32
    scaler: torch.amp.GradScaler  # float16 only: scales the loss so small gradients do not underflow
    max_grad_norm: float | None
    stepped: bool = False  # has the optimizer taken a real step yet (GradScaler may skip the first ones)

    def __call__(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Forward under autocast, backward, clip, optimizer and LR steps; returns (loss, logits, labels)."""
        inputs, labels = split_batch(to_device(batch, model_device(self.model)))
        with torch.autocast(model_device(self.model).type, dtype=self.dtype, enabled=self.dtype is not None):
            logits = self.forward(self.model, inputs)
        loss = self.loss_fn(logits.float(), labels)
        self.scaler.scale(loss).backward()
        if self.max_grad_norm is not None:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
            nn.utils.clip_grad_norm_(self.model.parameters(), self.max_grad_norm)
        # float16: GradScaler skips a step whose gradients overflowed, and halves its scale; until a first real
        # step, read the scale (a GPU sync) so that the LR schedule does not run ahead of the optimizer
        scale = None if self.stepped or not self.scaler.is_enabled() else self.scaler.get_scale()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.stepped = scale is None or self.scaler.get_scale() >= scale
        if self.scheduler is not None and self.stepped:
            self.scheduler.step()
        return loss.detach(), logits.detach(), labels


def check_finite(loss: float, step: int, history: History) -> None:
    """A TrainingError when the running loss is NaN or infinite: training on would only waste time."""
    if not math.isfinite(loss):
        last = next((s for s in reversed(history.steps) if math.isfinite(s["loss"])), None)
        raise TrainingError(
            f"The training loss became {loss} by step {step}"
            + (f" (last finite loss {last['loss']:.4f} at step {last['step']})" if last else " (from the start)")
            + ". The run diverged: lower the learning rate, turn on gradient clipping (max_grad_norm), or train in "
            "float32 (COURSE_PRECISION=fp32) to see whether float16 overflowed. The model's weights are now "
            "unusable; the last checkpoint (from the last finished epoch) is untouched."
        )


def log_loss(history: History, window: torch.Tensor, steps: int, epoch: float) -> float:
    """Append the mean loss of the last `steps` steps to history.steps (one GPU sync); stop if it is not finite."""
    # under DDP the mean over all processes, so that every process keeps the same History
    mean = sum_across(window.item())[0] / (steps * world_size())
    done = (int(history.steps[-1]["step"]) if history.steps else 0) + steps
    check_finite(mean, done, history)
    history.steps.append({"step": done, "epoch": epoch, "loss": mean})
    return mean


def train_epoch(
    step: Step, data: Iterable[Batch], history: History, *, desc: str = "", log_every: int = 10, progress: bool = True
) -> dict[str, float]:
    """One pass over the data: a Step per batch, the running loss logged every `log_every` steps. Taught in 01 §4.4."""
    step.model.train()
    device = model_device(step.model)
    start = time.perf_counter()
    loss_sum, window = torch.zeros((), device=device), torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    count = window_steps = 0
    n_batches = len(data) if hasattr(data, "__len__") else None
    bar = progress_bar(data, progress, total=n_batches, desc=desc)
    for i, batch in enumerate(bar):
        loss, logits, labels = step(batch)
        count += labels.shape[0]
        loss_sum += loss * labels.shape[0]
        window += loss
        window_steps += 1
        classification = _is_classification(logits, labels)
        if classification:
            correct += (logits.argmax(-1) == labels).sum()
        if window_steps == log_every:  # reading a GPU value waits for the GPU: only every `log_every` steps
            mean = log_loss(history, window, window_steps, len(history) + (i + 1) / (n_batches or i + 1))
            if progress:
                bar.set_postfix(loss=f"{mean:.4f}", lr=f"{step.optimizer.param_groups[0]['lr']:.2e}")
            window.zero_()
            window_steps = 0
    if count == 0:
        raise TrainingError(
            "fit() got no batches: the training data loader is empty. Check its size and batch "
            "size (drop_last drops a last batch smaller than batch_size)."
        )
    if window_steps:
        log_loss(history, window, window_steps, len(history) + 1.0)
    loss_sum, correct, count = sum_across(loss_sum, correct, count)  # under DDP: over all processes
    record = {"epoch": len(history) + 1, "train_loss": loss_sum.item() / count}
    check_finite(record["train_loss"], int(history.steps[-1]["step"]), history)
    if classification:
        record["train_accuracy"] = correct.item() / count
    record["lr"] = step.optimizer.param_groups[0]["lr"]
    record["time_s"] = time.perf_counter() - start
    record["samples_per_s"] = count / record["time_s"]
    return record


def set_epoch(data: Any, epoch: int) -> None:
    """Tell a loader (or its sampler) which epoch comes: its shuffle and augmentation depend on it alone."""
    for part in (data, getattr(data, "sampler", None)):
        if hasattr(part, "set_epoch"):
            part.set_epoch(epoch)


def fit(
    model: nn.Module,
    train_data: Iterable[Batch],
    *,
    epochs: int,
    optimizer: torch.optim.Optimizer,
    scheduler: Any = None,
    loss_fn: Callable | None = None,
    val_data: Iterable[Batch] | None = None,
    dtype: torch.dtype | str | None = "auto",
    max_grad_norm: float | None = 1.0,
    forward: ForwardFn = default_forward,
    checkpoint: str | Path | None = None,
    history: History | None = None,
    log_every: int = 10,
    progress: bool = True,
) -> History:
    """Train for `epochs` (autocast, fp16 scaling, clipping, checkpoints, Ctrl-C, DDP): the History. 01 §4.4."""
    check_int("epochs", epochs)
    dtype = _resolve_dtype(dtype, model_device(model))
    scaler = torch.amp.GradScaler(model_device(model).type, enabled=needs_grad_scaler(dtype))
    step = Step(model, optimizer, scheduler, loss_fn or nn.CrossEntropyLoss(), forward, dtype, scaler, max_grad_norm)
    history = history if history is not None else History()
    if checkpoint is not None and Path(checkpoint).exists():
        history = History.from_dict(load_checkpoint(checkpoint, model, optimizer, scheduler, scaler, dtype))
        step.stepped = True
        if is_main():
            print(f"Resumed from {Path(checkpoint).name}: {len(history)} of {epochs} epochs already done.")
    history.interrupted = False
    progress = progress and is_main()
    try:
        for epoch in range(len(history), epochs):
            set_epoch(train_data, epoch)  # a resumed run shuffles and augments as the uninterrupted one did
            record = train_epoch(
                step, train_data, history, desc=f"epoch {epoch + 1}/{epochs}", log_every=log_every, progress=progress
            )
            if val_data is not None:
                val = evaluate(model, val_data, loss_fn=step.loss_fn, dtype=dtype, forward=forward)
                record.update({f"val_{k}": v for k, v in val.items()})
            history.epochs.append(record)
            if progress:
                print(format_record(record, epochs))
            if checkpoint is not None:
                if is_main():  # one writer; the others wait, so that nobody reads a stale file
                    save_checkpoint(checkpoint, model, optimizer, scheduler, scaler, history.to_dict(), dtype)
                barrier()
    except KeyboardInterrupt:
        history.interrupted = True
        optimizer.zero_grad(set_to_none=True)
        if is_main():
            print(
                f"Interrupted in epoch {len(history) + 1}: the model keeps its current weights and the "
                f"history keeps the {len(history)} finished epoch(s). Run fit again to continue"
                + (" from the last checkpoint." if checkpoint is not None else ".")
            )
    model.eval()
    return history
