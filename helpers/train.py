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
from tqdm.auto import tqdm

from .device import autocast_dtype, needs_grad_scaler

Batch = Any
"""A batch: a dict of tensors with a "labels" (or "label") entry, or a tuple (inputs, labels)."""

ForwardFn = Callable[[nn.Module, Any], torch.Tensor]
"""How to get logits from a model and a batch's inputs (the default calls model(**inputs) or model(inputs))."""


@dataclass
class History:
    """What training measured: one dict of metrics per epoch, and the running train loss at logged steps."""

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
    """Move every tensor in a (nested) batch to a device; already-there tensors are left as they are."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def split_batch(batch: Batch) -> tuple[Any, torch.Tensor]:
    """Separate model inputs from labels: dicts by their "labels"/"label" key, tuples as (inputs, labels)."""
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


def _model_device(model: nn.Module) -> torch.device:
    """The device the model's parameters live on (the loop follows the model)."""
    return next(model.parameters()).device


def format_record(record: Mapping[str, float], epochs: int) -> str:
    """One readable line per epoch: losses and accuracies to 4 places, time in seconds, throughput as a count."""
    parts = [f"epoch {record['epoch']}/{epochs}"]
    for key, value in record.items():
        if key == "epoch":
            continue
        if key == "lr":
            parts.append(f"lr {value:.2e}")
        elif key == "time_s":
            parts.append(f"{value:.1f} s")
        elif key == "samples_per_s":
            parts.append(f"{value:,.0f} samples/s")
        else:
            parts.append(f"{key} {value:.4f}")
    return " | ".join(parts)


def save_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: Any, scaler: torch.amp.GradScaler, history: History) -> None:
    """Write model, optimizer, scheduler and history atomically, so a disconnect never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict(),
        "history": history.to_dict(),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    scheduler: Any = None, scaler: torch.amp.GradScaler | None = None) -> History:
    """Restore what save_checkpoint wrote into the given objects and return the saved history."""
    state = torch.load(path, map_location=_model_device(model), weights_only=False)
    model.load_state_dict(state["model"])
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state["scheduler"] is not None:
        scheduler.load_state_dict(state["scheduler"])
    if scaler is not None:
        scaler.load_state_dict(state["scaler"])
    return History.from_dict(state["history"])


@torch.inference_mode()
def evaluate(model: nn.Module, data: Iterable[Batch], *, loss_fn: Callable | None = None,
             dtype: torch.dtype | str | None = "auto", forward: ForwardFn = default_forward,
             return_outputs: bool = False, progress: bool = False, desc: str = "eval"):
    """Mean loss (and accuracy for classification) over a data set; with return_outputs also (logits, labels) on CPU."""
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    device = _model_device(model)
    dtype = _resolve_dtype(dtype, device)
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    count, classification = 0, False
    all_logits, all_labels = [], []
    for batch in tqdm(data, desc=desc, leave=False, disable=not progress):
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
    """Train for `epochs` epochs and return the History; the model stays where it is (call get_device first).

    Batches come from any iterable (a DataLoader, or a generator that keeps data on the GPU). Each step
    runs under autocast (bf16/fp16 from helpers.device unless `dtype` says otherwise), scales the loss
    for fp16, clips gradients to `max_grad_norm`, steps the optimizer and then `scheduler` (per step).
    With `checkpoint`, the state is saved after every epoch and training resumes from it when the file
    exists. Ctrl-C (or Colab's stop button) ends training cleanly: the model keeps its weights and the
    history keeps every finished epoch, with `history.interrupted` set.
    """
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    device = _model_device(model)
    dtype = _resolve_dtype(dtype, device)
    scaler = torch.amp.GradScaler(device.type, enabled=needs_grad_scaler(dtype))
    history = history if history is not None else History()
    if checkpoint is not None and Path(checkpoint).exists():
        history = load_checkpoint(checkpoint, model, optimizer, scheduler, scaler)
        print(f"Resumed from {Path(checkpoint).name}: {len(history)} of {epochs} epochs already done.")
    history.interrupted = False
    step = int(history.steps[-1]["step"]) if history.steps else 0
    try:
        for epoch in range(len(history), epochs):
            model.train()
            start = time.perf_counter()
            loss_sum = torch.zeros((), device=device)
            window = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.long)
            count = window_steps = 0
            classification = False
            n_batches = len(train_data) if hasattr(train_data, "__len__") else None
            bar = tqdm(train_data, total=n_batches, desc=f"epoch {epoch + 1}/{epochs}", disable=not progress)
            for i, batch in enumerate(bar):
                inputs, labels = split_batch(to_device(batch, device))
                with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                    logits = forward(model, inputs)
                loss = loss_fn(logits.float(), labels)
                scaler.scale(loss).backward()
                if max_grad_norm is not None:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                if scheduler is not None:
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
                    mean = window.item() / window_steps
                    history.steps.append({"step": step, "epoch": epoch + (i + 1) / (n_batches or i + 1), "loss": mean})
                    bar.set_postfix(loss=f"{mean:.4f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")
                    window.zero_()
                    window_steps = 0
            if count == 0:
                raise ValueError("fit() got no batches: the training data loader is empty.")
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
                save_checkpoint(checkpoint, model, optimizer, scheduler, scaler, history)
    except KeyboardInterrupt:
        history.interrupted = True
        optimizer.zero_grad(set_to_none=True)
        print(f"Interrupted in epoch {len(history) + 1}: the model keeps its current weights and the "
              f"history keeps the {len(history)} finished epoch(s). Run fit again to continue"
              + (" from the last checkpoint." if checkpoint is not None else "."))
    model.eval()
    return history
