"""Data sets in the hub's schema: local Parquet files (fetched once), read with pyarrow or `datasets`, decoded."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .bert import HUB_BERT
from .hub import hub_offline, hub_reachable
from .profiles import BadFileError, CourseError, check_choice, check_int, course_root

if TYPE_CHECKING:  # `datasets` is imported where it is used, so that a bare GPU box can import helpers
    from datasets import Dataset, DatasetDict

HUB_NAMES: dict[str, str] = {"imdb": "stanfordnlp/imdb", "cifar10": "uoft-cs/cifar10"}
"""Where each course data set lives on the Hugging Face hub; the local cache keeps the same schema."""

SPLITS: tuple[str, ...] = ("train", "test")

CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)


class DataNotFoundError(CourseError, FileNotFoundError):
    """Raised when a data set is neither cached locally nor reachable on the hub."""


COLUMNS: dict[str, tuple[str, ...]] = {"imdb": ("text", "label"), "cifar10": ("img", "label")}
"""The columns each data set's Parquet files must have (the hub's schema)."""


def data_dir() -> Path:
    """The local data cache: $COURSE_DATA_DIR, else data/ in the course checkout or working directory. Taught in 00 §3."""
    env = os.environ.get("COURSE_DATA_DIR")
    return Path(env).expanduser().resolve() if env else course_root() / "data"


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
        f"  - on a machine with internet: python -m helpers.data download {name}\n"
        "    (then copy the data/ folder to the offline machine), or\n"
        "  - set COURSE_DATA_DIR to a folder that holds "
        f"{name}/train.parquet and {name}/test.parquet."
    )


def local_files(name: str, root: Path | None = None) -> dict[str, Path]:
    """The Parquet files of a course data set, downloaded from the hub first when missing. Taught in 00 §3."""
    files = parquet_files(check_choice("name", name, HUB_NAMES), root)
    if all(p.exists() for p in files.values()):
        for path in files.values():
            check_parquet(name, path)
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


def check_parquet(name: str, path: Path, read: Sequence[str] = ()) -> Any:
    """A BadFileError unless `path` is a readable Parquet file with data set `name`'s columns; the `read` columns' table."""
    import pyarrow.parquet as pq

    fix = (f"Fix: delete it (rm {path}) and run `python -m helpers.data download {name}`, or copy a good "
           f"{name}/ folder into {path.parent.parent}.")
    try:
        columns = pq.read_schema(path).names
        table = pq.read_table(path, columns=list(read)) if read else None
    except Exception as error:  # pyarrow's ArrowInvalid, OSError: truncated, overwritten, not Parquet at all
        raise BadFileError(f"{path} is not a readable Parquet file ({error}): it is truncated or corrupt. {fix}") from error
    if missing := [c for c in COLUMNS[name] if c not in columns]:
        raise BadFileError(f"{path} has the columns {columns}, not {name}'s {list(COLUMNS[name])} (missing "
                           f"{missing}): it holds another data set. {fix}")
    return table


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


def stratified_indices(labels: Sequence[int] | np.ndarray | torch.Tensor, size: int | None, seed: int = 0) -> np.ndarray:
    """Shuffled indices of a subset with the class proportions of the whole (all indices when size is None). Taught in 02 §1."""
    labels = labels.cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    rng = np.random.default_rng(seed)
    if size is not None:
        check_int("size", size, 1, len(labels), f"This split has {len(labels):,} rows: ask for at most that many "
                  "(None takes them all) in the config cell.")
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
    """A shuffled subset with the class proportions of the whole (never a head slice of a sorted split). Taught in 00 §3."""
    return ds.select(stratified_indices(ds[label_column], size, seed))


def decode_images(blobs: Sequence[bytes]) -> torch.Tensor:
    """Image files (PNG, JPEG) to one uint8 tensor (N, 3, H, W): with Pillow, else torchvision. Taught in 02 §1."""
    try:
        from PIL import Image
    except ImportError:  # a bare GPU machine may have torchvision but no Pillow
        from torchvision.io import ImageReadMode, decode_image

        return torch.stack([decode_image(torch.frombuffer(b, dtype=torch.uint8), ImageReadMode.RGB) for b in blobs])
    arrays = [np.asarray(Image.open(BytesIO(b)).convert("RGB")) for b in blobs]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def images_to_tensor(ds: Dataset, column: str = "img") -> torch.Tensor:
    """Decode a `datasets` image column to one uint8 tensor (N, C, H, W) without a PIL object per row. Taught in 00 §3."""
    from datasets import Image

    return decode_images([item["bytes"] for item in ds.cast_column(column, Image(decode=False))[column]])


def download(names: Sequence[str] = ("imdb", "cifar10", "bert")) -> None:
    """Fetch everything a workshop needs offline: the data sets into data_dir(), BERT into the hub cache. Taught in 00 §3."""
    for name in names:
        if check_choice("download", name, ("imdb", "cifar10", "bert")) == "bert":  # into the hub cache
            from huggingface_hub import snapshot_download

            path = snapshot_download(HUB_BERT, allow_patterns=["*.json", "*.txt", "*.safetensors"])
            print(f"{HUB_BERT}: cached in {path}")
        else:
            ds = load_course_dataset(name)
            print(f"{name}: " + ", ".join(f"{s} {len(ds[s]):,} rows" for s in ds) + f" in {data_dir() / name}")


def main(argv: Sequence[str] | None = None) -> None:
    """python -m helpers.data download [imdb] [cifar10] [bert]: fetch them (default: all) for a machine offline."""
    parser = argparse.ArgumentParser(prog="python -m helpers.data", description=main.__doc__)
    parser.add_argument("command", choices=["download"])
    parser.add_argument("what", nargs="*", help="imdb, cifar10 and/or bert (default: all three)")
    download(parser.parse_args(argv).what or ("imdb", "cifar10", "bert"))


if __name__ == "__main__":
    main()
