"""Is a course data file sound? Readable Parquet of the right data set, every label and text in place. 00 §3.

Fetching and loading are in helpers.data; these checks run on every file it hands out, and in the room check.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .catalog import CLASS_COUNT, COLUMNS
from .errors import BadFileError


def _fix(name: str, path: Path) -> str:
    """How to replace a bad data file."""
    return (
        f"Fix: delete it (rm {path}) and run `python -m helpers.download {name}`, or copy a good "
        f"{name}/ folder into {path.parent.parent}."
    )


def check_parquet(name: str, path: Path, read: Sequence[str] = ()) -> Any:
    """A BadFileError unless `path` is readable Parquet with data set `name`'s columns; the `read` columns."""
    import pyarrow.parquet as pq

    fix = _fix(name, path)
    try:
        columns = pq.read_schema(path).names
        if missing := [c for c in COLUMNS[name] if c not in columns]:
            raise BadFileError(
                f"{path} has the columns {columns}, not {name}'s {list(COLUMNS[name])} (missing "
                f"{missing}): it holds another data set. {fix}"
            )
        return pq.read_table(path, columns=list(read)) if read else None
    except BadFileError:
        raise
    except Exception as error:  # pyarrow's ArrowInvalid, OSError: truncated, overwritten, not Parquet at all
        raise BadFileError(
            f"{path} is not a readable Parquet file ({error}): it is truncated or corrupt. {fix}"
        ) from error


_CHECKED: dict[tuple[str, int, int], None] = {}
"""The files whose contents passed check_contents, by (path, size, mtime): each is checked once per session."""


def _first_bad(mask: Any) -> int:
    """Index of the first True in a pyarrow boolean array."""
    import pyarrow.compute as pc

    return int(pc.index(mask, True).as_py())


def check_contents(name: str, path: Path) -> None:
    """A BadFileError naming the first bad row unless every label, text or image of `path` is sound. 00 §3."""
    import pyarrow.compute as pc

    key = (str(path), path.stat().st_size, path.stat().st_mtime_ns)
    if key in _CHECKED:
        return
    fix = _fix(name, path)
    table = check_parquet(name, path, COLUMNS[name])
    if table.num_rows == 0:
        raise BadFileError(f"{path} holds no rows: it is empty. {fix}")
    labels = table.column("label")
    if labels.null_count or not pc.all(pc.is_in(labels, value_set=pa_range(CLASS_COUNT[name]))).as_py():
        bad = _first_bad(pc.invert(pc.fill_null(pc.is_in(labels, value_set=pa_range(CLASS_COUNT[name])), False)))
        raise BadFileError(
            f"{path}: row {bad} has label {labels[bad].as_py()!r}, but {name}'s labels run from 0 "
            f"to {CLASS_COUNT[name] - 1}: the file holds another data set or is damaged. {fix}"
        )
    if missing := sorted(set(range(CLASS_COUNT[name])) - set(pc.unique(labels).to_pylist())):
        raise BadFileError(
            f"{path} has no row of class {missing[0]}: every split of {name} holds every class, "
            f"so this copy is cut short or filtered. {fix}"
        )
    if name == "imdb":
        empty = pc.fill_null(pc.less(pc.utf8_length(pc.utf8_trim_whitespace(table.column("text"))), 1), True)
        if pc.any(empty).as_py():
            raise BadFileError(f"{path}: row {_first_bad(empty)} has an empty or missing review text. {fix}")
    else:
        blobs = table.column("img").combine_chunks().field("bytes")
        rows = sorted({0, len(blobs) // 2, len(blobs) - 1})  # a sample: decode_images checks every image it reads
        from .cifar.images import decode_images  # here: the cifar package reads its data through helpers.data

        decode_images([blobs[i].as_py() for i in rows], f"{path} (rows {rows})")
    _CHECKED[key] = None


def pa_range(n: int) -> Any:
    """The integers 0 to n - 1 as a pyarrow array (the valid labels)."""
    import pyarrow as pa

    return pa.array(range(n), type=pa.int64())


def check_splits_differ(name: str, files: dict[str, Path]) -> None:
    """A BadFileError when the test file is a byte-for-byte copy of the training file."""
    train, test = files["train"], files["test"]
    if train.stat().st_size == test.stat().st_size and train.read_bytes() == test.read_bytes():
        raise BadFileError(
            f"{test} is a copy of {train}: the test split must be other "
            f"reviews or images than the training split. {_fix(name, test)}"
        )
