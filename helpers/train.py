"""The training loop of every notebook (fit): one Step per batch, epochs, checkpoints, Ctrl-C. Taught in 01 §4.4.

Image tuples and Hugging Face dict batches alike; evaluation (evaluate, predict) is in helpers.evaluation, what
both share (batches, autocast, the DDP sums) in helpers.batches.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .batches import (
    Batch,
    ForwardFn,
    Tally,
    autocast,
    default_forward,
    mean_over_processes,
    one_writer,
    progress_bar,
    resolve_dtype,
    say,
    split_batch,
    to_device,
)
from .checkpoints import load_checkpoint, save_checkpoint
from .device import model_device, needs_grad_scaler
from .errors import ConfigError, TrainingError, check_int
from .evaluation import evaluate


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


FORMATS = {"lr": "lr {:.2e}", "time_s": "{:.1f} s", "samples_per_s": "{:,.0f} samples/s"}
"""How format_record writes the values that are not losses or accuracies (those get 4 places)."""


def format_record(record: Mapping[str, float], epochs: int) -> str:
    """One readable line per epoch: losses and accuracies to 4 places, the lr, seconds, throughput."""
    values = (FORMATS.get(key, key + " {:.4f}").format(value) for key, value in record.items() if key != "epoch")
    return " | ".join([f"epoch {record['epoch']}/{epochs}", *values])


def optimizer_stepped(scaler: torch.amp.GradScaler, optimizer: torch.optim.Optimizer, scheduler: Any) -> bool:
    """optimizer.step through the GradScaler; False when float16 gradients overflowed and the step was skipped.

    The skipped-step rule (01 §4.4): in float16 the GradScaler skips a step whose gradients overflowed and lowers
    its scale; the LR schedule must then wait, or it runs ahead of the optimizer. Reading the scale waits for the
    GPU, so the rule looks only while the schedule has not started (the first steps of a fresh run, where the
    scaler's first scale is too high); after that a rare skipped step lets the schedule go on.
    """
    watch = scaler.is_enabled() and scheduler is not None and scheduler.last_epoch == 0
    scale = scaler.get_scale() if watch else None
    scaler.step(optimizer)
    scaler.update()
    return scale is None or scaler.get_scale() >= scale


@dataclass
class Step:
    """One training step, with everything it needs besides the batch (fit builds it once). Taught in 01 §4.4."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any  # an LR scheduler stepped after every real optimizer step, or None
    loss_fn: Callable
    forward: ForwardFn
    device: torch.device  # where the model lives: each batch goes there
    dtype: torch.dtype | None  # autocast's dtype; None: float32
    scaler: torch.amp.GradScaler  # float16 only: scales the loss so small gradients do not underflow
    max_grad_norm: float | None

    def __call__(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The four steps of 01 §4.2 (forward, loss, backward, update) and named extras; (loss, logits, labels)."""
        inputs, labels = split_batch(to_device(batch, self.device))
        with autocast(self.device, self.dtype):  # extra: mixed precision
            logits = self.forward(self.model, inputs)  # 1. forward
        loss = self.loss_fn(logits.float(), labels)  # 2. loss
        self.scaler.scale(loss).backward()  # 3. backward (float16: of the scaled loss)
        self.clip_gradients()  # extra: gradient clipping
        stepped = optimizer_stepped(self.scaler, self.optimizer, self.scheduler)  # 4. update
        self.optimizer.zero_grad(set_to_none=True)
        if stepped and self.scheduler is not None:
            self.scheduler.step()  # extra: the LR schedule follows the optimizer's real steps
        return loss.detach(), logits.detach(), labels

    def clip_gradients(self) -> None:
        """Scale the gradients down to norm max_grad_norm at most (none when it is None). Taught in 03 §4."""
        if self.max_grad_norm is not None:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
            nn.utils.clip_grad_norm_(self.model.parameters(), self.max_grad_norm)


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


def epoch_progress(done_epochs: int, batches_done: int, batches_per_epoch: int | None) -> float:
    """Training progress in epochs: 2.25 is a quarter into the third (a loader without len counts whole epochs)."""
    return done_epochs + batches_done / (batches_per_epoch or batches_done)


def log_loss(history: History, window: torch.Tensor, steps: int, epoch: float) -> float:
    """Append the mean loss of the last `steps` steps to history.steps (one GPU sync); stop if it is not finite."""
    mean = mean_over_processes(window.item(), steps)  # under DDP: every process keeps the same History
    done = (int(history.steps[-1]["step"]) if history.steps else 0) + steps
    check_finite(mean, done, history)
    history.steps.append({"step": done, "epoch": epoch, "loss": mean})
    return mean


def train_epoch(
    step: Step,
    data: Iterable[Batch],
    history: History,
    *,
    accuracy: bool = True,
    desc: str = "",
    log_every: int = 10,
    progress: bool = True,
) -> dict[str, float]:
    """One pass over the data: a Step per batch, the running loss logged every `log_every` steps. Taught in 01 §4.4."""
    step.model.train()
    start = time.perf_counter()
    tally, window, window_steps = Tally(step.device, accuracy), torch.zeros((), device=step.device), 0
    n_batches = len(data) if hasattr(data, "__len__") else None
    bar = progress_bar(data, progress, total=n_batches, desc=desc)
    for i, batch in enumerate(bar):
        loss, logits, labels = step(batch)
        tally.add(loss, logits, labels)
        window += loss
        window_steps += 1
        if window_steps == log_every:  # reading a GPU value waits for the GPU: only every `log_every` steps
            mean = log_loss(history, window, window_steps, epoch_progress(len(history), i + 1, n_batches))
            if progress:
                bar.set_postfix(loss=f"{mean:.4f}", lr=f"{step.optimizer.param_groups[0]['lr']:.2e}")
            window.zero_()
            window_steps = 0
    if tally.count == 0:
        raise TrainingError(
            "fit() got no batches: the training data loader is empty. Check its size and batch "
            "size (drop_last drops a last batch smaller than batch_size)."
        )
    if window_steps:
        log_loss(history, window, window_steps, len(history) + 1.0)
    totals, count = tally.totals()  # under DDP: over all processes
    check_finite(totals["loss"], int(history.steps[-1]["step"]), history)
    record = {"epoch": len(history) + 1, **{f"train_{k}": v for k, v in totals.items()}}
    record["lr"] = step.optimizer.param_groups[0]["lr"]
    record["time_s"] = time.perf_counter() - start
    record["samples_per_s"] = count / record["time_s"]
    return record


def set_epoch(data: Any, epoch: int) -> None:
    """Tell a loader (or its sampler) which epoch comes: its shuffle and augmentation depend on it alone."""
    for part in (data, getattr(data, "sampler", None)):
        if hasattr(part, "set_epoch"):
            part.set_epoch(epoch)


def start_history(checkpoint: str | Path | None, history: History | None, step: Step, epochs: int) -> History:
    """The History to go on from: the checkpoint's (weights and all restored), else `history`, else a new one.

    Both an existing checkpoint and a history are refused: which run to continue would be a guess. 01 §4.4.
    """
    if checkpoint is None or not Path(checkpoint).exists():
        return history if history is not None else History()
    if history is not None:
        raise ConfigError(
            f"fit() got history= and the checkpoint {checkpoint}, which exists: it cannot continue both. "
            "Pass history=None to resume from the checkpoint, or give another checkpoint path (or delete "
            "the file) to continue the history in memory."
        )
    state = load_checkpoint(checkpoint, step.model, step.optimizer, step.scheduler, step.scaler, step.dtype)
    resumed = History.from_dict(state)
    say(f"Resumed from {Path(checkpoint).name}: {len(resumed)} of {epochs} epochs already done.")
    return resumed


def fit(
    model: nn.Module,
    train_data: Iterable[Batch],
    *,
    epochs: int,
    optimizer: torch.optim.Optimizer,
    scheduler: Any = None,
    loss_fn: Callable | None = None,
    accuracy: bool = True,
    val_data: Iterable[Batch] | None = None,
    dtype: torch.dtype | str | None = "auto",
    max_grad_norm: float | None = 1.0,
    forward: ForwardFn = default_forward,
    checkpoint: str | Path | None = None,
    history: History | None = None,
    log_every: int = 10,
    progress: bool = True,
) -> History:
    """Train for `epochs` (autocast, fp16 scaling, clipping, checkpoints, Ctrl-C, DDP): the History. 01 §4.4.

    accuracy=False for a model that is no classifier (a regression); checkpoint= resumes from the file when it
    exists, and then refuses a history= besides.
    """
    check_int("epochs", epochs)
    device = model_device(model)
    dtype = resolve_dtype(dtype, device)
    scaler = torch.amp.GradScaler(device.type, enabled=needs_grad_scaler(dtype))
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    step = Step(model, optimizer, scheduler, loss_fn, forward, device, dtype, scaler, max_grad_norm)
    history = start_history(checkpoint, history, step, epochs)
    history.interrupted = False
    try:
        for epoch in range(len(history), epochs):
            set_epoch(train_data, epoch)  # a resumed run shuffles and augments as the uninterrupted one did
            desc = f"epoch {epoch + 1}/{epochs}"
            record = train_epoch(
                step, train_data, history, accuracy=accuracy, desc=desc, log_every=log_every, progress=progress
            )
            if val_data is not None:
                val = evaluate(model, val_data, loss_fn=loss_fn, accuracy=accuracy, dtype=dtype, forward=forward)
                record.update({f"val_{k}": v for k, v in val.items()})
            history.epochs.append(record)
            if progress:
                say(format_record(record, epochs))
            if checkpoint is not None:
                state = history.to_dict()
                one_writer(save_checkpoint, checkpoint, model, optimizer, scheduler, scaler, state, dtype)
    except KeyboardInterrupt:
        history.interrupted = True
        optimizer.zero_grad(set_to_none=True)
        say(
            f"Interrupted in epoch {len(history) + 1}: the model keeps its current weights and the "
            f"history keeps the {len(history)} finished epoch(s). Run fit again to continue"
            + (" from the last checkpoint." if checkpoint is not None else ".")
        )
    model.eval()
    return history
