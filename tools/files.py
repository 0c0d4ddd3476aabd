"""Small helpers the tools share: writing a file so that a killed process never leaves half of it, and names."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any


def write_atomic(path: Path, text: str) -> None:
    """Write text to path through a temporary file and a rename: readers see the old file or the new one, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(path: Path, record: Any) -> None:
    """A JSON record, indented, written atomically (see write_atomic)."""
    write_atomic(path, json.dumps(record, indent=1, ensure_ascii=False, default=str) + "\n")


def slug(text: str) -> str:
    """A file-name-safe lower-case version of a name (a GPU's, for a results folder)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
