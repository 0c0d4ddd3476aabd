"""The course's data sets: fetched from the hub once, cached as local Parquet files, loaded, and subset.

Which data sets there are is in helpers.catalog; whether a file is sound, in helpers.checks. Taught in 00 §3.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .catalog import COLUMNS, DATASETS, SPLITS
from .checks import check_contents, check_parquet, check_splits_differ
from .errors import DataNotFoundError, check_choice, check_int
from .hub import hub_offline, hub_reachable
from .paths import data_dir

if TYPE_CHECKING:  # `datasets` is imported where it is used, so that a bare GPU box can import helpers
    from datasets import Dataset, DatasetDict


def parquet_files(name: str, root: Path | None = None) -> dict[str, Path]:
    """The Parquet files a data set is cached as: <root>/<name>/{train,test}.parquet. Taught in 00 §3."""
    root = Path(root) if root is not None else data_dir()
    return {split: root / name / f"{split}.parquet" for split in SPLITS}


def _missing_message(name: str, files: dict[str, Path], reason: str) -> str:
    """One error text that names the files expected and the ways to get them."""
    listed = "\n".join(f"  {p}" for p in files.values())
    return (
        f"The {name} data set is not available: {reason}.\n"
        f"Expected these Parquet files (the schema of the hub's {DATASETS[name]}):\n{listed}\n"
        "To get them, either\n"
        f"  - on a machine with internet: python -m helpers.download {name}\n"
        "    (then copy the data/ folder to the offline machine), or\n"
        "  - set COURSE_DATA_DIR to a folder that holds "
        f"{name}/train.parquet and {name}/test.parquet."
    )


def local_files(name: str, root: Path | None = None) -> dict[str, Path]:
    """The Parquet files of a course data set, downloaded from the hub first when missing. Taught in 00 §3."""
    files = parquet_files(check_choice("name", name, DATASETS), root)
    if all(p.exists() for p in files.values()):
        for path in files.values():
            check_contents(name, path)
        check_splits_differ(name, files)
        return files
    if not hub_reachable():  # also False when HF_HUB_OFFLINE is set
        why = "HF_HUB_OFFLINE is set" if hub_offline() else "the hub cannot be reached"
        raise DataNotFoundError(_missing_message(name, files, f"no local copy, and {why}"))
    from datasets import load_dataset

    try:
        hub = load_dataset(DATASETS[name])
    except Exception as error:  # no network, hub down, auth: all end in the same advice
        raise DataNotFoundError(
            _missing_message(name, files, f"no local copy, and the hub could not be reached ({type(error).__name__})")
        ) from error
    for split, path in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        hub[split].to_parquet(str(path))
    print(f"Downloaded {DATASETS[name]} and cached it in {files['train'].parent}")
    return files


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
