"""python -m helpers.download [imdb] [cifar10] [bert]: fetch what a workshop needs, on a machine with internet."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .catalog import DATASETS, HUB_BERT
from .data import load_course_dataset
from .errors import check_choice
from .paths import data_dir

WHAT: tuple[str, ...] = (*DATASETS, "bert")
"""What can be fetched: every course data set (helpers.catalog), and the hub's BERT."""


def download(names: Sequence[str] = WHAT) -> None:
    """Fetch the data sets into data_dir() and BERT into the hub cache, for use offline later. Taught in 00 §3."""
    for name in names:
        if check_choice("download", name, WHAT) == "bert":
            from huggingface_hub import snapshot_download

            path = snapshot_download(HUB_BERT, allow_patterns=["*.json", "*.txt", "*.safetensors"])
            print(f"{HUB_BERT}: cached in {path}")
        else:
            ds = load_course_dataset(name)
            print(f"{name}: " + ", ".join(f"{s} {len(ds[s]):,} rows" for s in ds) + f" in {data_dir() / name}")


def main(argv: Sequence[str] | None = None) -> None:
    """Parse `[imdb] [cifar10] [bert]` (default: all three) and download them."""
    parser = argparse.ArgumentParser(prog="python -m helpers.download", description=__doc__)
    parser.add_argument("what", nargs="*", help="imdb, cifar10 and/or bert (default: all three)")
    download(parser.parse_args(argv).what or WHAT)


if __name__ == "__main__":
    main()
