"""AdamW without weight decay on biases and LayerNorm, and warmup as a share of the steps (schedule: transformers')."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .device import model_device


def decay_parameter_names(model: nn.Module) -> tuple[list[str], list[str]]:
    """Names of the parameters to decay (weight matrices, embeddings) and not (biases, LayerNorm). Taught in 03 §4."""
    norm_params = {id(p) for m in model.modules() if isinstance(m, nn.LayerNorm) for p in m.parameters(recurse=False)}
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        skip = name.endswith("bias") or id(param) in norm_params or param.ndim < 2
        (no_decay if skip else decay).append(name)
    return decay, no_decay


def parameter_groups(model: nn.Module, weight_decay: float = 0.01) -> list[dict[str, Any]]:
    """AdamW parameter groups: weight decay on weight matrices only (shrinking a bias helps nothing). 03 §4."""
    decay, no_decay = decay_parameter_names(model)
    params = dict(model.named_parameters())
    return [
        {"params": [params[n] for n in decay], "weight_decay": weight_decay},
        {"params": [params[n] for n in no_decay], "weight_decay": 0.0},
    ]


def make_adamw(
    model: nn.Module,
    lr: float,
    weight_decay: float = 0.01,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    fused: bool | None = None,
) -> torch.optim.AdamW:
    """AdamW over parameter_groups; fused (one kernel for all parameters) on CUDA and CPU. Taught in 03 §4."""
    if fused is None:
        fused = model_device(model).type in ("cuda", "cpu")
    return torch.optim.AdamW(parameter_groups(model, weight_decay), lr=lr, betas=betas, eps=eps, fused=fused)


def warmup_steps_for(total_steps: int, warmup: float | int) -> int:
    """Warmup as a step count: a float in [0, 1) is a share of the total (rounded up, as Trainer does). 03 §4."""
    if isinstance(warmup, float) and 0 <= warmup < 1:
        return math.ceil(total_steps * warmup)
    return int(warmup)
