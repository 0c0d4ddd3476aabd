"""What a model costs: its parameters and FLOPs, and device time. Taught in 02 §2.5 and §4.8.

How good its predictions are (confusion matrix, precision and recall, mistakes) is in helpers.evaluation.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn


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
