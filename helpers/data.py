"""Data sets in the hub's schema: read from a local Parquet cache, else from the hub (then cached).

Command line, to prepare a machine for a workshop with no network:

    python -m helpers.data download            # IMDB, CIFAR-10 and the BERT model
    python -m helpers.data download imdb       # just one
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .hub import hub_offline, hub_reachable

if TYPE_CHECKING:  # `datasets` is imported where it is used, so that a bare GPU box can import helpers
    from datasets import Dataset, DatasetDict

HUB_NAMES: dict[str, str] = {"imdb": "stanfordnlp/imdb", "cifar10": "uoft-cs/cifar10"}
"""Where each course data set lives on the Hugging Face hub; the local cache keeps the same schema."""

SPLITS: tuple[str, ...] = ("train", "test")

CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)


class DataNotFoundError(FileNotFoundError):
    """Raised when a data set is neither cached locally nor reachable on the hub."""


def data_dir() -> Path:
    """The local data cache: $COURSE_DATA_DIR, else the repository's data/ (else ~/.cache/dl-course/data)."""
    env = os.environ.get("COURSE_DATA_DIR")
    if env:
        return Path(env).expanduser().resolve()
    repo = Path(__file__).resolve().parent.parent
    if (repo / "pyproject.toml").exists():
        return repo / "data"
    return Path.home() / ".cache" / "dl-course" / "data"


def parquet_files(name: str, root: Path | None = None) -> dict[str, Path]:
    """The Parquet files a data set is cached as: <root>/<name>/{train,test}.parquet."""
    root = Path(root) if root is not None else data_dir()
    return {split: root / name / f"{split}.parquet" for split in SPLITS}


def _missing_message(name: str, files: dict[str, Path], reason: str) -> str:
    """One error text that names the files expected and the ways to get them."""
    listed = "\n".join(f"  {p}" for p in files.values())
    return (
        f"The {name} data set is not available: {reason}.\n"
        f"Expected these Parquet files (the schema of the hub's {HUB_NAMES[name]}):\n{listed}\n"
        "To get them, either\n"
        f"  - on a machine with internet: python -m helpers.data download {name}\n"
        "    (then copy the data/ folder to the offline machine), or\n"
        "  - set COURSE_DATA_DIR to a folder that holds "
        f"{name}/train.parquet and {name}/test.parquet."
    )


def load_course_dataset(name: str, root: Path | None = None) -> DatasetDict:
    """Load one course data set (train and test) from the Parquet cache, or from the hub and cache it."""
    if name not in HUB_NAMES:
        raise ValueError(f"Unknown data set {name!r}: choose one of {', '.join(HUB_NAMES)}.")
    from datasets import DatasetDict, load_dataset

    files = parquet_files(name, root)
    if all(p.exists() for p in files.values()):
        return load_dataset("parquet", data_files={s: str(p) for s, p in files.items()})
    if hub_offline():
        raise DataNotFoundError(_missing_message(name, files, "no local copy, and HF_HUB_OFFLINE is set"))
    if not hub_reachable():
        raise DataNotFoundError(_missing_message(name, files, "no local copy, and the hub cannot be reached"))
    try:
        hub = load_dataset(HUB_NAMES[name])
    except Exception as error:  # no network, hub down, auth: all end in the same advice
        raise DataNotFoundError(
            _missing_message(name, files, f"no local copy, and the hub could not be reached ({type(error).__name__})")
        ) from error
    ds = DatasetDict({split: hub[split] for split in SPLITS})
    for split, path in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        ds[split].to_parquet(str(path))
    print(f"Downloaded {HUB_NAMES[name]} and cached it in {files['train'].parent}")
    return ds


def load_imdb(root: Path | None = None) -> DatasetDict:
    """IMDB reviews (25k train, 25k test; columns text, label 0=neg 1=pos), sorted by label: shuffle before use."""
    return load_course_dataset("imdb", root)


def load_cifar10(root: Path | None = None) -> DatasetDict:
    """CIFAR-10 (50k train, 10k test; columns img, label); the shared test split is sorted by class."""
    return load_course_dataset("cifar10", root)


def stratified_indices(labels: Sequence[int] | np.ndarray | torch.Tensor, size: int | None, seed: int = 0) -> np.ndarray:
    """Shuffled indices of a subset with the class proportions of the whole (all indices when size is None)."""
    labels = labels.cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    rng = np.random.default_rng(seed)
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
    """A shuffled subset with the class proportions of the whole (never a head slice of a sorted split)."""
    return ds.select(stratified_indices(ds[label_column], size, seed))


def images_to_tensor(ds: Dataset, column: str = "img") -> torch.Tensor:
    """Decode an image column to one uint8 tensor (N, C, H, W): the fast path for small images like CIFAR."""
    from datasets import Image
    from PIL import Image as PILImage

    raw = ds.cast_column(column, Image(decode=False))[column]
    arrays = [np.asarray(PILImage.open(BytesIO(item["bytes"])).convert("RGB")) for item in raw]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def download(names: Sequence[str] = ("imdb", "cifar10", "bert")) -> None:
    """Fetch everything a workshop needs offline: the data sets into data_dir(), BERT into the hub cache."""
    for name in names:
        if name == "bert":
            from .models import prefetch_bert

            prefetch_bert()
        else:
            ds = load_course_dataset(name)
            print(f"{name}: " + ", ".join(f"{s} {len(ds[s]):,} rows" for s in ds) + f" in {data_dir() / name}")


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point: python -m helpers.data download [imdb] [cifar10] [bert]."""
    parser = argparse.ArgumentParser(prog="python -m helpers.data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    get = sub.add_parser("download", help="fetch data sets and the BERT model for offline use")
    get.add_argument("what", nargs="*", choices=["imdb", "cifar10", "bert"], default=["imdb", "cifar10", "bert"])
    args = parser.parse_args(argv)
    download(args.what)


if __name__ == "__main__":
    main()
