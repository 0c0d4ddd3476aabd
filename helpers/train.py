"""One plain PyTorch train/eval loop for every notebook: image tuples and Hugging Face dict batches alike."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from .device import autocast_dtype, model_device, needs_grad_scaler
from .distributed import barrier, is_main, sum_across, unwrap, world_size
from .profiles import BadFileError, check_int

Batch = Any
"""A batch: a dict of tensors with a "labels" (or "label") entry, or a tuple (inputs, labels)."""

ForwardFn = Callable[[nn.Module, Any], torch.Tensor]
"""How to get logits from a model and a batch's inputs (the default calls model(**inputs) or model(inputs))."""


@dataclass
class History:
    """What training measured: one dict of metrics per epoch, and the running train loss at logged steps. Taught in 01 §4.4."""

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
    """Move every tensor in a (nested) batch to a device; already-there tensors are left as they are. Taught in 01 §4.4."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def split_batch(batch: Batch) -> tuple[Any, torch.Tensor]:
    """Separate model inputs from labels: dicts by their "labels"/"label" key, tuples as (inputs, labels). Taught in 01 §4.4."""
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


def save_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: Any, scaler: torch.amp.GradScaler, history: History) -> None:
    """Write model, optimizer, scheduler and history atomically, so a disconnect never leaves half a file. Taught in 03 §4."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "model": unwrap(model).state_dict(),  # without DDP's "module." prefix: loads with or without DDP
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict(),
        "history": history.to_dict(),
    }
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:  # a failed write (disk full, Ctrl-C) leaves neither half a checkpoint nor a stray .tmp
        tmp.unlink(missing_ok=True)


def load_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    scheduler: Any = None, scaler: torch.amp.GradScaler | None = None) -> History:
    """Restore what save_checkpoint wrote, return its history; a bad file is a BadFileError first. Taught in 03 §4."""
    fix = f"Fix: delete it (rm {path}) to train from the start, or pass another checkpoint= path."
    try:
        state = torch.load(path, map_location=model_device(model), weights_only=False)
        saved, own, history = state["model"], unwrap(model).state_dict(), History.from_dict(state["history"])
        if diff := sorted(set(own) ^ set(saved)) or [k for k in own if own[k].shape != saved[k].shape]:
            raise ValueError(f"another model's weights: {len(diff)} differ, e.g. {diff[0]!r}")
        if optimizer is not None:  # checks its parameter groups before it changes anything
            optimizer.load_state_dict(state["optimizer"])
    except Exception as error:  # a truncated zip, garbage, a .pt that fit did not write, another model's run
        raise BadFileError(f"The checkpoint {path} does not fit ({type(error).__name__}: {error}): it is truncated, "
                           f"corrupt, or from another model or settings. {fix}") from error
    unwrap(model).load_state_dict(saved)
    if scheduler is not None and state["scheduler"] is not None:
        scheduler.load_state_dict(state["scheduler"])
    if scaler is not None:
        scaler.load_state_dict(state["scaler"])
    return history


@torch.inference_mode()
def evaluate(model: nn.Module, data: Iterable[Batch], *, loss_fn: Callable | None = None,
             dtype: torch.dtype | str | None = "auto", forward: ForwardFn = default_forward,
             return_outputs: bool = False, progress: bool = False, desc: str = "eval"):
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
        raise ValueError("evaluate() got no batches: the data loader is empty.")
    loss_sum, correct, count = sum_across(loss_sum, correct, count)  # under DDP: over every process's shard
    metrics = {"loss": loss_sum.item() / count}
    if classification:
        metrics["accuracy"] = correct.item() / count
    if return_outputs:
        return metrics, torch.cat(all_logits), torch.cat(all_labels)
    return metrics


def fit(model: nn.Module, train_data: Iterable[Batch], *, epochs: int, optimizer: torch.optim.Optimizer,
        scheduler: Any = None, loss_fn: Callable | None = None, val_data: Iterable[Batch] | None = None,
        dtype: torch.dtype | str | None = "auto", max_grad_norm: float | None = 1.0,
        forward: ForwardFn = default_forward, checkpoint: str | Path | None = None,
        history: History | None = None, log_every: int = 10, progress: bool = True) -> History:
    """Train with autocast, fp16 scaling, clipping, checkpoints, Ctrl-C and DDP; the History. Taught in 01 §4.4."""
    check_int("epochs", epochs)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    device = model_device(model)
    dtype = _resolve_dtype(dtype, device)
    scaler = torch.amp.GradScaler(device.type, enabled=needs_grad_scaler(dtype))
    history = history if history is not None else History()
    if checkpoint is not None and Path(checkpoint).exists():
        history = load_checkpoint(checkpoint, model, optimizer, scheduler, scaler)
        if is_main():
            print(f"Resumed from {Path(checkpoint).name}: {len(history)} of {epochs} epochs already done.")
    history.interrupted = False
    progress = progress and is_main()
    step = int(history.steps[-1]["step"]) if history.steps else 0
    stepped = not scaler.is_enabled()  # fp16: the scaler may skip first steps (inf gradients): no scheduler step
    try:
        for epoch in range(len(history), epochs):
            model.train()
            for loader in (train_data, getattr(train_data, "sampler", None)):  # a new shuffle every epoch
                if hasattr(loader, "set_epoch"):
                    loader.set_epoch(epoch)
            start = time.perf_counter()
            loss_sum = torch.zeros((), device=device)
            window = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.long)
            count = window_steps = 0
            classification = False
            n_batches = len(train_data) if hasattr(train_data, "__len__") else None
            bar = progress_bar(train_data, progress, total=n_batches, desc=f"epoch {epoch + 1}/{epochs}")
            for i, batch in enumerate(bar):
                inputs, labels = split_batch(to_device(batch, device))
                with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                    logits = forward(model, inputs)
                loss = loss_fn(logits.float(), labels)
                scaler.scale(loss).backward()
                if max_grad_norm is not None:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
                scale = None if stepped else scaler.get_scale()  # a sync, but only until a first step is taken
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                stepped = stepped or scaler.get_scale() >= scale  # a skipped step halves the scale
                if scheduler is not None and stepped:
                    scheduler.step()
                step += 1
                n = labels.shape[0]
                count += n
                loss_sum += loss.detach() * n
                window += loss.detach()
                window_steps += 1
                classification = _is_classification(logits, labels)
                if classification:
                    correct += (logits.detach().argmax(-1) == labels).sum()
                # reading a GPU value waits for the GPU, so do it only every `log_every` steps
                if window_steps == log_every or (n_batches is not None and i + 1 == n_batches):
                    # under DDP the mean over all processes, so that every process keeps the same History
                    mean = sum_across(window.item())[0] / (window_steps * world_size())
                    history.steps.append({"step": step, "epoch": epoch + (i + 1) / (n_batches or i + 1), "loss": mean})
                    if progress:
                        bar.set_postfix(loss=f"{mean:.4f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")
                    window.zero_()
                    window_steps = 0
            if count == 0:
                raise ValueError("fit() got no batches: the training data loader is empty.")
            loss_sum, correct, count = sum_across(loss_sum, correct, count)  # under DDP: over all processes
            record = {"epoch": epoch + 1, "train_loss": loss_sum.item() / count}
            if classification:
                record["train_accuracy"] = correct.item() / count
            record["lr"] = optimizer.param_groups[0]["lr"]
            record["time_s"] = time.perf_counter() - start
            record["samples_per_s"] = count / record["time_s"]
            if val_data is not None:
                val = evaluate(model, val_data, loss_fn=loss_fn, dtype=dtype, forward=forward)
                record.update({f"val_{k}": v for k, v in val.items()})
            history.epochs.append(record)
            if progress:
                print(format_record(record, epochs))
            if checkpoint is not None:
                if is_main():  # one writer; the others wait, so that nobody reads a stale file
                    save_checkpoint(checkpoint, model, optimizer, scheduler, scaler, history)
                barrier()
    except KeyboardInterrupt:
        history.interrupted = True
        optimizer.zero_grad(set_to_none=True)
        if is_main():
            print(f"Interrupted in epoch {len(history) + 1}: the model keeps its current weights and the "
                  f"history keeps the {len(history)} finished epoch(s). Run fit again to continue"
                  + (" from the last checkpoint." if checkpoint is not None else "."))
    model.eval()
    return history
