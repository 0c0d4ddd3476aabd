"""Where the course's files land: data/ and runs/ in the course checkout, never inside site-packages."""

from __future__ import annotations

import os
from pathlib import Path

from .profiles import get_profile, tiny


def course_root() -> Path:
    """Where data/ and runs/ land: the course checkout the working directory is in, else the working directory."""
    cwd = Path.cwd()
    return next((p for p in (cwd, *cwd.parents) if (p / "pyproject.toml").exists() and (p / "helpers").is_dir()), cwd)


def runs_dir(profile: str | None = None) -> Path:
    """runs/<profile> (runs/<profile>-tiny under COURSE_TINY=1): no run overwrites another profile's models."""
    profile = profile or get_profile()
    return course_root() / "runs" / (profile + ("-tiny" if tiny() and profile != "smoke" else ""))


def data_dir() -> Path:
    """The local data cache: $COURSE_DATA_DIR, else data/ in the course checkout or working directory. 00 §3."""
    env = os.environ.get("COURSE_DATA_DIR")
    return Path(env).expanduser().resolve() if env else course_root() / "data"
