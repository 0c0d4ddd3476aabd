"""The training tricks of notebook 02 §4: LR schedules, lookahead and test-time augmentation."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def triangular_schedule(
    total_steps: int, peak_at: float = 0.23, start: float = 0.2, end: float = 0.07
) -> Callable[[int], float]:
    """LR multiplier per step: linear from `start` to 1 at `peak_at` of training, then to `end`. Taught in 02 §4.1."""
    # ours, not OneCycleLR: a multiplier for LambdaLR, written as the three points it interpolates
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
    """A slow copy of the weights: update() moves it to the network's, then the network restarts from it. 02 §4.5."""

    # airbench's LookaheadState: the training loop calls update(model, rho) every LOOKAHEAD_EVERY steps and
    # update(model, 1.0) at each epoch end (the network takes the slow weights; the slow copy stays)

    def __init__(self) -> None:
        self.slow: list[torch.Tensor] | None = None

    @torch.no_grad()
    def update(self, model: nn.Module, rho: float) -> None:
        """slow <- rho * slow + (1 - rho) * fast (the first call: slow <- fast), then fast <- slow."""
        fast = [t for t in model.state_dict().values() if t.is_floating_point()]  # BN running stats too
        if self.slow is None:
            self.slow = [t.detach().clone() for t in fast]
        for slow, weights in zip(self.slow, fast):
            slow.lerp_(weights, 1 - rho)
            weights.copy_(slow)


def tta_views(x: torch.Tensor, level: int = 2) -> list[tuple[str, float, torch.Tensor]]:
    """(name, weight, view) per view TTA averages: 0 the image, 1 + its mirror, 2 + both shifted a pixel. 02 §4.7."""
    if level == 0:
        return [("image", 1.0, x)]
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    shifted = [("shifted up-left", padded[..., :-2, :-2]), ("shifted down-right", padded[..., 2:, 2:])]
    pairs = [("image", x)] + (shifted if level >= 2 else [])
    weights = [1.0] + [0.5, 0.5][: len(pairs) - 1]  # the unshifted pair counts as much as both shifted pairs
    total = sum(weights)
    return [
        (name + mirror, weight / total / 2, view.flip(-1) if mirror else view)
        for (name, view), weight in zip(pairs, weights)
        for mirror in ("", " mirrored")
    ]


def tta_logits(model: nn.Module, x: torch.Tensor, level: int = 2) -> torch.Tensor:
    """Logits averaged over the views of tta_views, with their weights (one forward pass per view). 02 §4.7."""
    return sum(weight * model(view) for _, weight, view in tta_views(x, level))  # type: ignore[return-value]


def tta_forward(level: int) -> Callable[[nn.Module, torch.Tensor], torch.Tensor]:
    """A `forward` for helpers.evaluate/fit that applies test-time augmentation at a given level. Taught in 02 §4.7."""
    return lambda model, x: tta_logits(model, x, level)
