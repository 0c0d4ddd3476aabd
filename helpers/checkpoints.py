"""Checkpoints that resume a run exactly, written atomically, and refused whole when they do not fit the run."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .distributed import unwrap
from .errors import BadFileError, TrainingError

PRECISION_NAMES = {None: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}
"""How a checkpoint records the autocast dtype it was trained under."""


NO_SPACE = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EFBIG: "the file is over a size limit",
}
"""The write errors that mean 'no room for this file', and how the message names each."""


class CheckpointSpaceError(TrainingError, OSError):
    """No room to save a checkpoint (full disk, quota, file-size limit): the file, the space, what was kept."""


class _Sink:
    """A binary file for torch.save that keeps the OSError a write meets (torch reports only 'unexpected pos')."""

    def __init__(self, fd: int) -> None:
        self.fd, self.error = fd, None

    def _call(self, action):
        try:
            return action()
        except OSError as error:
            self.error = error
            raise

    def write(self, data) -> int:
        """Write every byte (os.write may write fewer: the next call then raises the reason)."""
        view = memoryview(data).cast("B")

        def write_all() -> int:
            done = 0
            while done < len(view):
                done += os.write(self.fd, view[done:])
            return done

        return self._call(write_all)

    def flush(self) -> None:
        """Nothing is buffered here; the bytes reach the disk at sync."""

    def sync(self) -> None:
        """fsync: a disk that is full may say so only now (network and delayed-allocation file systems)."""
        self._call(lambda: os.fsync(self.fd))


def _nbytes(value: Any, seen: set[int] | None = None) -> int:
    """The bytes of the tensors in a nested state (each storage once): about the size of the checkpoint file."""
    seen = set() if seen is None else seen
    if isinstance(value, torch.Tensor):
        storage = value.untyped_storage()
        if storage.data_ptr() in seen:
            return 0
        seen.add(storage.data_ptr())
        return storage.nbytes()
    if isinstance(value, Mapping):
        return sum(_nbytes(v, seen) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_nbytes(v, seen) for v in value)
    return 0


def _megabytes(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def _no_space(path: Path, state: Mapping[str, Any], error: OSError, kept: bool) -> CheckpointSpaceError:
    """Our error for a checkpoint that did not fit: which file, the space needed and free, what is kept."""
    free = shutil.disk_usage(path.parent).free
    earlier = (
        f"The earlier checkpoint {path} is kept, unchanged"
        if kept
        else "There was no earlier checkpoint at that path and none was written"
    )
    return CheckpointSpaceError(
        f"Could not save the checkpoint {path}: {NO_SPACE[error.errno]} ({error.strerror}). It needs about "
        f"{_megabytes(_nbytes(state))}; {_megabytes(free)} is free on that disk. {earlier}, and no half-written "
        "file is left. Fix: free some space (e.g. delete old runs under runs/) or pass checkpoint= a path on a disk "
        "with room, then run again: fit resumes from the last checkpoint saved."
    )


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler,
    history: Mapping[str, Any],
    dtype: torch.dtype | None,
) -> None:
    """Write model, optimizer, scheduler, scaler, precision and history atomically. Taught in 03 §4.

    Each writer has a temporary file of its own in the same folder, renamed over `path` when complete: two runs
    saving to one path (a notebook open in two tabs) never break each other, the last one saved wins. A disk
    without room is a CheckpointSpaceError saying so; the earlier checkpoint stays as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "model": unwrap(model).state_dict(),  # without DDP's or torch.compile's wrapper: loads into either
        "optimizer": optimizer.state_dict(),
        "optimizer_type": type(optimizer).__name__,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scheduler_type": type(scheduler).__name__ if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler.is_enabled() else None,
        "precision": PRECISION_NAMES.get(dtype, str(dtype)),
        "history": dict(history),
    }
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp, sink = Path(name), _Sink(fd)
    try:
        try:
            os.chmod(fd, 0o644)  # mkstemp's 0600 would make the checkpoint unreadable to the learner's group
            torch.save(state, sink)
            sink.sync()
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as error:
        if sink.error is not None and sink.error.errno in NO_SPACE:
            tmp.unlink(missing_ok=True)  # first, so that the free space reported is what the disk really has
            raise _no_space(path, state, sink.error, kept=path.exists()) from error
        raise
    finally:  # a failed write (disk full, Ctrl-C) leaves neither half a checkpoint nor a stray temporary file
        tmp.unlink(missing_ok=True)


def _check_model(saved: Mapping[str, torch.Tensor], model: nn.Module) -> None:
    """A ValueError when the saved weights are not this model's: other names or other shapes."""
    own = unwrap(model).state_dict()
    diff = sorted(set(own) ^ set(saved)) or [k for k in own if own[k].shape != saved[k].shape]
    if diff:
        raise ValueError(f"another model's weights: {len(diff)} differ, e.g. {diff[0]!r}")


def _check_optimizer(saved: Mapping[str, Any], kind: str, optimizer: torch.optim.Optimizer) -> None:
    """A ValueError when the saved optimizer state is of another optimizer or another set of parameters."""
    if kind != type(optimizer).__name__:
        raise ValueError(f"it was saved with {kind}, this run uses {type(optimizer).__name__}")
    groups = [len(g["params"]) for g in saved["param_groups"]]
    if groups != [len(g["params"]) for g in optimizer.param_groups]:
        raise ValueError(
            f"its parameter groups hold {groups} parameters, this optimizer's "
            f"{[len(g['params']) for g in optimizer.param_groups]}"
        )
    params = [p for g in optimizer.param_groups for p in g["params"]]
    for index, values in saved["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor) and value.ndim and value.shape != params[index].shape:
                raise ValueError(
                    f"its {name} for parameter {index} has shape {tuple(value.shape)}, "
                    f"the parameter {tuple(params[index].shape)}"
                )


def _check_scheduler(state: Mapping[str, Any], scheduler: Any) -> None:
    """A ValueError when the checkpoint has a schedule and the run none, or the other way round, or another kind."""
    kind = type(scheduler).__name__ if scheduler is not None else None
    if state["scheduler_type"] != kind:
        raise ValueError(
            f"it was saved with scheduler {state['scheduler_type']}, this run passes {kind} "
            "(resuming would restart or drop the learning-rate schedule)"
        )


def load_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    scaler: torch.amp.GradScaler | None = None,
    dtype: torch.dtype | None = None,
) -> dict[str, Any]:
    """Restore what save_checkpoint wrote and return its history; checks everything before changing anything.

    A file that does not fit this run is a BadFileError naming the difference. Taught in 03 §4.
    """
    fix = f"Fix: delete it (rm {path}) to train from the start, or pass another checkpoint= path."
    try:
        state = torch.load(path, map_location=next(model.parameters()).device, weights_only=True)
        _check_model(state["model"], model)
        if optimizer is not None:
            _check_optimizer(state["optimizer"], state["optimizer_type"], optimizer)
        _check_scheduler(state, scheduler)
        history = dict(state["history"])
    except Exception as error:  # a truncated zip, garbage, a .pt that fit did not write, another model or run
        raise BadFileError(
            f"The checkpoint {path} does not fit ({type(error).__name__}: {error}): it is "
            f"truncated, corrupt, or from another model or settings. {fix}"
        ) from error
    unwrap(model).load_state_dict(state["model"])
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    precision = PRECISION_NAMES.get(dtype, str(dtype))
    if state["precision"] != precision:  # the weights fit; a loss scale (if any) belongs to the old precision
        print(
            f"The checkpoint was trained in {state['precision']}, this run uses {precision}: resuming with "
            + ("a fresh loss scaler." if scaler is not None and scaler.is_enabled() else "no loss scaler.")
        )
    elif scaler is not None and scaler.is_enabled() and state["scaler"] is not None:
        scaler.load_state_dict(state["scaler"])
    return history
