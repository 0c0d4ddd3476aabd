"""The training tricks of notebook 02 §4: LR schedules, lookahead and test-time augmentation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def triangular_schedule(
    total_steps: int, peak_at: float = 0.23, start: float = 0.2, end: float = 0.07
) -> Callable[[int], float]:
    """LR multiplier per step: linear from `start` to 1 at `peak_at` of training, then to `end`. Taught in 02 §4.1."""
    # ours, not OneCycleLR: a multiplier for LambdaLR, so the stem bias's group can follow it and stop at 0 mid-run
    xs = [0, max(1, int(peak_at * total_steps)), total_steps]
    return lambda step: float(np.interp(step, xs, [start, 1.0, end]))


def constant_schedule(total_steps: int) -> Callable[[int], float]:
    """LR multiplier 1 throughout (the baseline the triangular schedule is compared with). Taught in 02 §4.1."""
    return lambda step: 1.0


LOOKAHEAD_EVERY, LOOKAHEAD_DECAY, LOOKAHEAD_POWER = 5, 0.95, 3.0
"""Lookahead's settings: an update every 5 steps, the slow weight rho growing to 0.95**5 as (step / total)**3."""


def lookahead_rho(
    step: int,
    total_steps: int,
    every: int = LOOKAHEAD_EVERY,
    decay: float = LOOKAHEAD_DECAY,
    power: float = LOOKAHEAD_POWER,
) -> float:
    """The weight of the slow copy at an update: decay**every * (step / total_steps)**power. Taught in 02 §4.5."""
    return decay**every * min(1.0, step / total_steps) ** power


class Lookahead:
    """Every `every` steps: slow <- rho * slow + (1 - rho) * fast, then fast <- slow (step hook). Taught in 02 §4.5."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        total_steps: int,
        steps_per_epoch: int,
        start_step: int = 0,
        every: int = LOOKAHEAD_EVERY,
        decay: float = LOOKAHEAD_DECAY,
        power: float = LOOKAHEAD_POWER,
    ):
        self.tensors = [t for t in model.state_dict().values() if t.is_floating_point()]
        self.slow: list[torch.Tensor] | None = None
        self.total_steps, self.steps_per_epoch = total_steps, steps_per_epoch
        self.start_step, self.every, self.decay, self.power = start_step, every, decay, power
        self.step = 0
        self.handle = optimizer.register_step_post_hook(self._after_step)

    @torch.no_grad()
    def _after_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        """Called by the optimizer after each step."""
        self.step += 1
        if self.step >= self.start_step and self.step % self.every == 0:
            if self.slow is None:
                self.slow = [t.detach().clone() for t in self.tensors]
            else:
                rho = lookahead_rho(self.step, self.total_steps, self.every, self.decay, self.power)
                for slow, fast in zip(self.slow, self.tensors):
                    slow.lerp_(fast, 1 - rho)
                    fast.copy_(slow)
        if self.slow is not None and self.step % self.steps_per_epoch == 0:
            self.finish()

    @torch.no_grad()
    def finish(self) -> None:
        """Give the network the slow weights (called at epoch ends and after training)."""
        for slow, fast in zip(self.slow or [], self.tensors):
            fast.copy_(slow)

    def remove(self) -> None:
        """Detach from the optimizer."""
        self.handle.remove()


def tta_logits(model: nn.Module, x: torch.Tensor, level: int = 2) -> torch.Tensor:
    """Logits averaged over views: 0 the image, 1 + its mirror, 2 + both shifted by a pixel. Taught in 02 §4.7."""
    if level == 0:
        return model(x)

    def with_mirror(v: torch.Tensor) -> torch.Tensor:
        return model(torch.cat([v, v.flip(-1)])).view(2, len(v), -1).mean(0)

    logits = with_mirror(x)
    if level >= 2:
        padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
        shifted = with_mirror(padded[..., :-2, :-2]) + with_mirror(padded[..., 2:, 2:])
        logits = 0.5 * logits + 0.25 * shifted
    return logits


def tta_forward(level: int) -> Callable[[nn.Module, torch.Tensor], torch.Tensor]:
    """A `forward` for helpers.evaluate/fit that applies test-time augmentation at a given level. Taught in 02 §4.7."""
    return lambda model, x: tta_logits(model, x, level)
