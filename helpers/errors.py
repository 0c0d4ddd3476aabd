"""The course's errors for bad input, and the value checks that raise them before any training time is spent."""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any


class CourseError(ValueError):
    """Bad input to the course: the message names the file or value, what is wrong, and the fix."""


class ProfileError(CourseError):
    """A bad COURSE_PROFILE, COURSE_TINY or COURSE_PRECISION value, or a config dict the profiles cannot read."""


class ConfigError(CourseError):
    """A config value out of range: a size larger than the data, a batch size below 1, an unknown choice."""


class BadFileError(CourseError):
    """A course file that is there but truncated, corrupt, or of another data set or model."""


class DataNotFoundError(CourseError, FileNotFoundError):
    """A data set that is neither cached locally nor reachable on the hub."""


class ModelNotFoundError(CourseError, FileNotFoundError):
    """A model that is neither on disk, in an installed package, nor reachable on the hub."""


class LaunchError(CourseError):
    """An environment that is half a torchrun launch (e.g. RANK without WORLD_SIZE)."""


class TrainingError(CourseError):
    """A run that cannot go on: an empty loader, or a loss that became NaN or infinite."""


def check_int(name: str, value: Any, low: int = 1, high: int | None = None, fix: str = "") -> int:
    """`value` as an int, or a ConfigError naming it and its allowed range (checked before any training)."""
    is_int = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not is_int or value < low or (high is not None and value > high):
        allowed = f"an integer from {low:,} to {high:,}" if high is not None else f"an integer of at least {low:,}"
        raise ConfigError(
            f"{name}={value!r} is not allowed: it must be {allowed}. {fix or 'Change it in the config cell.'}"
        )
    return int(value)


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """`value` itself, or a ConfigError naming it and the values it may take."""
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(
            f"{name}={value!r} is unknown: choose one of {', '.join(map(repr, choices))} in the config cell."
        )
    return value
