"""Run profiles: how big an experiment is (smoke for CI, cpu for a laptop, gpu for full training)."""

from __future__ import annotations

import os

import torch

PROFILES: tuple[str, ...] = ("smoke", "cpu", "gpu")
"""smoke: tiny subsets, seconds per notebook (CI); cpu: minutes on a laptop; gpu: full data, full training."""


def get_profile(default: str | None = None) -> str:
    """The active profile from COURSE_PROFILE (else gpu with CUDA, else cpu), validated."""
    value = os.environ.get("COURSE_PROFILE", "").strip().lower()
    if not value:
        value = default or ("gpu" if torch.cuda.is_available() else "cpu")
    if value not in PROFILES:
        raise ValueError(
            f"Unknown COURSE_PROFILE {value!r}: choose one of {', '.join(PROFILES)} "
            "(smoke = seconds for CI, cpu = minutes on a laptop, gpu = full training)."
        )
    return value
