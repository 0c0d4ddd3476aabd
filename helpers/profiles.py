"""Run profiles (COURSE_PROFILE=smoke|cpu|gpu, COURSE_TINY=1: smoke's sizes) and the config cells that use them."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping
from typing import Any

from .device import cuda_usable
from .errors import ProfileError, check_int

PROFILES: tuple[str, ...] = ("smoke", "cpu", "gpu")
"""smoke: tiny subsets, seconds per notebook (CI); cpu: minutes on a laptop; gpu: full data, full training."""


def get_profile(default: str | None = None) -> str:
    """The active profile from COURSE_PROFILE (else gpu with a CUDA GPU torch can drive, else cpu), validated."""
    value = os.environ.get("COURSE_PROFILE", "").strip().lower()
    if not value:
        value = default or ("gpu" if cuda_usable() else "cpu")
    if value not in PROFILES:
        raise ProfileError(
            f"Unknown COURSE_PROFILE {value!r}: choose one of {', '.join(PROFILES)} "
            "(smoke = seconds for CI, cpu = minutes on a laptop, gpu = full training)."
        )
    return value


def tiny() -> bool:
    """True when COURSE_TINY=1 asks for the chosen profile's code paths at the smoke profile's sizes."""
    value = os.environ.get("COURSE_TINY", "").strip()
    if value not in ("", "0", "1"):
        raise ProfileError(f"COURSE_TINY={value!r}: set it to 1 (smoke sizes, the profile's code paths) or 0.")
    return value == "1"


def _items(config: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    """Every (key, value) of a (nested) config dict, at any depth."""
    for key, value in config.items():
        yield key, value
        yield from _items(value) if isinstance(value, Mapping) else ()


def _shrink(chosen: Mapping[str, Any], smoke: Mapping[str, Any], sizes: set[str], where: str) -> dict[str, Any]:
    """A copy of `chosen` whose size keys (at any depth) hold smoke's values."""
    out = copy.deepcopy(dict(chosen))
    for key, value in chosen.items():
        if isinstance(value, Mapping):
            sub = smoke.get(key)
            out[key] = _shrink(value, sub if isinstance(sub, Mapping) else {}, sizes, f"{where}[{key!r}]")
        elif key in sizes:
            if key not in smoke:
                raise ProfileError(f"{where}[{key!r}] is a size but the smoke profile has none: add it there.")
            out[key] = copy.deepcopy(smoke[key])
    return out


def settings(config: Mapping[str, Mapping[str, Any]], sizes: Iterable[str], profile: str | None = None) -> dict:
    """The profile's dict of a config cell; with COURSE_TINY=1 its `sizes` keys take smoke's values."""
    profile = profile or get_profile()
    sizes = set(sizes)
    if missing := [p for p in PROFILES if p not in config]:
        raise ProfileError(f"CONFIG has no {', '.join(missing)} entry: give it one dict per profile {PROFILES}.")
    if unknown := sizes - {key for c in config.values() for key, _ in _items(c)}:
        raise ProfileError(f"sizes names {sorted(unknown)}, which no profile in CONFIG has: check the spelling.")
    for name, chosen in config.items():  # every size: None or positive integers (seeds from 0), before any training
        for key, value in _items(chosen):
            for v in (value if isinstance(value, (tuple, list)) else [value]) * (key in sizes):
                if v is not None and not isinstance(v, Mapping):
                    check_int(f"CONFIG[{name!r}][{key!r}]", v, low=0 if "seed" in key else 1)
    if not tiny() or profile == "smoke":
        return copy.deepcopy(dict(config[profile]))
    print(f"COURSE_TINY=1: the {profile} profile's code paths at smoke sizes ({', '.join(sorted(sizes))})")
    return _shrink(config[profile], config["smoke"], sizes, f"CONFIG[{profile!r}]")
