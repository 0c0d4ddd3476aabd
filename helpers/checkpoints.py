"""Checkpoints that resume a run exactly, written atomically, and refused whole when they do not fit the run."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .distributed import unwrap
from .errors import BadFileError

PRECISION_NAMES = {None: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}
"""How a checkpoint records the autocast dtype it was trained under."""


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler,
    history: Mapping[str, Any],
    dtype: torch.dtype | None,
) -> None:
    """Write model, optimizer, scheduler, scaler, precision and history atomically. Taught in 03 §4."""
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
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:  # a failed write (disk full, Ctrl-C) leaves neither half a checkpoint nor a stray .tmp
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
