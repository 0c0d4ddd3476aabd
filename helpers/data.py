"""Data sets in the hub's schema: local Parquet files (fetched once), read with pyarrow or `datasets`, decoded."""

from __future__ import annotations

from collections.abc import Sequence
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .errors import BadFileError, DataNotFoundError, check_choice, check_int
from .hub import hub_offline, hub_reachable
from .paths import data_dir

if TYPE_CHECKING:  # `datasets` is imported where it is used, so that a bare GPU box can import helpers
    from datasets import Dataset, DatasetDict

HUB_NAMES: dict[str, str] = {"imdb": "stanfordnlp/imdb", "cifar10": "uoft-cs/cifar10"}
"""Where each course data set lives on the Hugging Face hub; the local cache keeps the same schema."""

SPLITS: tuple[str, ...] = ("train", "test")

CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


COLUMNS: dict[str, tuple[str, ...]] = {"imdb": ("text", "label"), "cifar10": ("img", "label")}
"""The columns each data set's Parquet files must have (the hub's schema)."""


def parquet_files(name: str, root: Path | None = None) -> dict[str, Path]:
    """The Parquet files a data set is cached as: <root>/<name>/{train,test}.parquet. Taught in 00 §3."""
    root = Path(root) if root is not None else data_dir()
    return {split: root / name / f"{split}.parquet" for split in SPLITS}


def _missing_message(name: str, files: dict[str, Path], reason: str) -> str:
    """One error text that names the files expected and the ways to get them."""
    listed = "\n".join(f"  {p}" for p in files.values())
    return (
        f"The {name} data set is not available: {reason}.\n"
        f"Expected these Parquet files (the schema of the hub's {HUB_NAMES[name]}):\n{listed}\n"
        "To get them, either\n"
        f"  - on a machine with internet: python -m helpers.download {name}\n"
        "    (then copy the data/ folder to the offline machine), or\n"
        "  - set COURSE_DATA_DIR to a folder that holds "
        f"{name}/train.parquet and {name}/test.parquet."
    )


def local_files(name: str, root: Path | None = None) -> dict[str, Path]:
    """The Parquet files of a course data set, downloaded from the hub first when missing. Taught in 00 §3."""
    files = parquet_files(check_choice("name", name, HUB_NAMES), root)
    if all(p.exists() for p in files.values()):
        for path in files.values():
            check_contents(name, path)
        if (
            files["train"].stat().st_size == files["test"].stat().st_size
            and files["train"].read_bytes() == files["test"].read_bytes()
        ):
            raise BadFileError(
                f"{files['test']} is a copy of {files['train']}: the test split must be other "
                f"reviews or images than the training split. {_fix(name, files['test'])}"
            )
        return files
    if not hub_reachable():  # also False when HF_HUB_OFFLINE is set
        why = "HF_HUB_OFFLINE is set" if hub_offline() else "the hub cannot be reached"
        raise DataNotFoundError(_missing_message(name, files, f"no local copy, and {why}"))
    from datasets import load_dataset

    try:
        hub = load_dataset(HUB_NAMES[name])
    except Exception as error:  # no network, hub down, auth: all end in the same advice
        raise DataNotFoundError(
            _missing_message(name, files, f"no local copy, and the hub could not be reached ({type(error).__name__})")
        ) from error
    for split, path in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        hub[split].to_parquet(str(path))
    print(f"Downloaded {HUB_NAMES[name]} and cached it in {files['train'].parent}")
    return files


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


CLASS_COUNT: dict[str, int] = {"imdb": 2, "cifar10": 10}
"""Labels run from 0 to CLASS_COUNT - 1, and every split holds every class."""

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
        decode_images([blobs[i].as_py() for i in rows], f"{path} (rows {rows})")
    _CHECKED[key] = None


def pa_range(n: int) -> Any:
    """The integers 0 to n - 1 as a pyarrow array (the valid labels)."""
    import pyarrow as pa

    return pa.array(range(n), type=pa.int64())


def load_course_dataset(name: str, root: Path | None = None) -> DatasetDict:
    """A course data set (train, test) as `datasets` objects over the local files (map caches). Taught in 00 §3."""
    from datasets import load_dataset

    files = local_files(name, root)
    try:
        return load_dataset("parquet", data_files={s: str(p) for s, p in files.items()})
    except Exception:  # a file readable in its footer but not in its pages: check_parquet names it
        for path in files.values():
            check_parquet(name, path, COLUMNS[name])
        raise


def read_split(name: str, split: str, columns: Sequence[str], root: Path | None = None) -> dict[str, list]:
    """Columns of one split as Python lists, read with pyarrow alone (no `datasets` needed). Taught in 02 §1."""
    table = check_parquet(name, local_files(name, root)[split], columns)
    return {column: table.column(column).to_pylist() for column in columns}


def load_imdb(root: Path | None = None) -> DatasetDict:
    """IMDB reviews (25k train, 25k test; columns text, label 0=neg 1=pos), sorted by label. Taught in 03 §1."""
    return load_course_dataset("imdb", root)


def load_cifar10(root: Path | None = None) -> DatasetDict:
    """CIFAR-10 (50k train, 10k test; columns img, label); the shared test split is sorted by class. Taught in 00 §3."""
    return load_course_dataset("cifar10", root)


def stratified_indices(
    labels: Sequence[int] | np.ndarray | torch.Tensor, size: int | None, seed: int = 0
) -> np.ndarray:
    """Shuffled indices of a subset with the class proportions of the whole (all when size is None). 02 §1."""
    labels = labels.cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    rng = np.random.default_rng(seed)
    if size is not None:
        check_int(
            "size",
            size,
            1,
            len(labels),
            f"This split has {len(labels):,} rows: ask for at most that many (None takes them all) in the config cell.",
        )
    if size is None or size >= len(labels):
        return rng.permutation(len(labels))
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts / counts.sum() * size
    take = np.floor(exact).astype(int)
    # hand the rounding remainder to the classes with the largest fractional parts
    for i in np.argsort(-(exact - take))[: size - take.sum()]:
        take[i] += 1
    chosen = [rng.choice(np.flatnonzero(labels == c), k, replace=False) for c, k in zip(classes, take)]
    return rng.permutation(np.concatenate(chosen))


def stratified_subset(ds: Dataset, size: int | None, seed: int = 0, label_column: str = "label") -> Dataset:
    """A shuffled subset with the class proportions of the whole (never a head slice of a sorted split). 00 §3."""
    return ds.select(stratified_indices(ds[label_column], size, seed))


def decode_images(blobs: Sequence[bytes | None], source: str = "the image column") -> torch.Tensor:
    """Image files (PNG, JPEG) to one uint8 tensor (N, 3, 32, 32); a BadFileError names a bad one. 02 §1."""
    try:
        from PIL import Image

        def decode(blob: bytes) -> np.ndarray:
            return np.asarray(Image.open(BytesIO(blob)).convert("RGB")).transpose(2, 0, 1)
    except ImportError:  # a bare GPU machine may have torchvision but no Pillow
        from torchvision.io import ImageReadMode, decode_image

        def decode(blob: bytes) -> np.ndarray:
            return decode_image(torch.frombuffer(blob, dtype=torch.uint8), ImageReadMode.RGB).numpy()

    arrays = []
    for i, blob in enumerate(blobs):
        try:
            arrays.append(decode(blob))
        except Exception as error:  # None, truncated bytes, not an image at all
            raise BadFileError(
                f"Image {i} of {source} does not decode ({type(error).__name__}: {error}): the "
                "data file is damaged. Replace it with a good copy (python -m helpers.download)."
            ) from error
        if arrays[-1].shape != (3, 32, 32):
            raise BadFileError(
                f"Image {i} of {source} is {arrays[-1].shape[2]}x{arrays[-1].shape[1]} pixels, "
                "not CIFAR-10's 32x32: the file holds another data set. Replace it with a good copy."
            )
    return torch.from_numpy(np.stack(arrays)) if arrays else torch.empty(0, 3, 32, 32, dtype=torch.uint8)


def images_to_tensor(ds: Dataset, column: str = "img") -> torch.Tensor:
    """Decode a `datasets` image column to one uint8 tensor (N, C, H, W), no PIL object per row. Taught in 00 §3."""
    from datasets import Image

    return decode_images([item["bytes"] for item in ds.cast_column(column, Image(decode=False))[column]])
