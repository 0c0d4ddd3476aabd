"""Run profiles (COURSE_PROFILE=smoke|cpu|gpu, COURSE_TINY=1: smoke's sizes), config cells, and where files land."""

from __future__ import annotations

import copy
import numbers
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

PROFILES: tuple[str, ...] = ("smoke", "cpu", "gpu")
"""smoke: tiny subsets, seconds per notebook (CI); cpu: minutes on a laptop; gpu: full data, full training."""


class CourseError(ValueError):
    """Bad input to the course: the message names the file or value, what is wrong, and the fix."""


class ProfileError(CourseError):
    """A bad COURSE_PROFILE, COURSE_TINY or COURSE_PRECISION value, or a config dict the profiles cannot read."""


class ConfigError(CourseError):
    """A config value out of range: a size larger than the data, a batch size below 1, an unknown choice."""


class BadFileError(CourseError):
    """A course file that is there but truncated, corrupt, or of another data set or model."""


def check_int(name: str, value: Any, low: int = 1, high: int | None = None, fix: str = "") -> int:
    """`value` as an int, or a ConfigError naming it and its allowed range (checked before any training)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low or (high is not None and value > high):
        allowed = f"an integer from {low:,} to {high:,}" if high is not None else f"an integer of at least {low:,}"
        raise ConfigError(f"{name}={value!r} is not allowed: it must be {allowed}. {fix or 'Change it in the config cell.'}")
    return int(value)


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """`value` itself, or a ConfigError naming it and the values it may take."""
    if value not in (choices := tuple(choices)):
        raise ConfigError(f"{name}={value!r} is unknown: choose one of {', '.join(map(repr, choices))} in the config cell.")
    return value


def course_root() -> Path:
    """Where data/ and runs/ land: the course checkout the working directory is in, else the working directory."""
    cwd = Path.cwd()
    return next((p for p in (cwd, *cwd.parents) if (p / "pyproject.toml").exists() and (p / "helpers").is_dir()), cwd)


def runs_dir(profile: str | None = None) -> Path:
    """runs/<profile> (runs/<profile>-tiny under COURSE_TINY=1): no run overwrites another profile's models."""
    profile = profile or get_profile()
    return course_root() / "runs" / (profile + ("-tiny" if tiny() and profile != "smoke" else ""))


def get_profile(default: str | None = None) -> str:
    """The active profile from COURSE_PROFILE (else gpu with CUDA, else cpu), validated."""
    value = os.environ.get("COURSE_PROFILE", "").strip().lower()
    if not value:
        value = default or ("gpu" if torch.cuda.is_available() else "cpu")
    if value not in PROFILES:
        raise ProfileError(f"Unknown COURSE_PROFILE {value!r}: choose one of {', '.join(PROFILES)} "
                           "(smoke = seconds for CI, cpu = minutes on a laptop, gpu = full training).")
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
