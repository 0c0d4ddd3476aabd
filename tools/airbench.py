"""airbench94 (KellerJordan/cifar10-airbench, a copy you fetch; never committed) on the course's CIFAR-10 copy.

The reference that benchmarks/cifar10_speed.py is compared with, on the same data: the course's Parquet files are
converted to airbench's cifar10/{train,test}.pt, then 1 warm-up and N timed runs of its `main`, each written to
the JSON as it ends. Get a copy with `git clone https://github.com/KellerJordan/cifar10-airbench benchmarks/ref/
cifar10-airbench` (the folder is ignored by git), or pass --script PATH/airbench94.py.

    python -m tools.airbench --runs 5 --out results/airbench94.json
    python -m tools.airbench --check --out results/airbench94.json   # on a CPU: the script parses, the data converts
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib
import io
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tools.files import write_json

ROOT = Path(__file__).resolve().parent.parent
REF = ROOT / "benchmarks" / "ref"
HOW_TO_GET = (
    "git clone https://github.com/KellerJordan/cifar10-airbench benchmarks/ref/cifar10-airbench "
    "(or --airbench PATH/airbench94.py)"
)


def find_script(given: Path | None = None) -> Path | None:
    """The airbench94.py to run: the one given, else the first under benchmarks/ref/ (None when there is none)."""
    if given is not None:
        return given if given.is_file() else None
    found = sorted(REF.rglob("airbench94.py"), key=lambda p: len(p.parts)) if REF.is_dir() else []
    return found[0] if found else None


def write_data(folder: Path, limit: int | None = None) -> None:
    """The course's CIFAR-10 Parquet files as airbench's cifar10/{train,test}.pt (uint8 NHWC images, labels)."""
    import torch

    from helpers import CIFAR10_CLASSES, cifar

    data = cifar.load_cifar10_tensors(train_size=limit, test_size=limit)
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        images = data[f"x_{split}"]
        images = images.permute(0, 2, 3, 1).contiguous() if images.shape[1] == 3 else images
        record = {"images": images, "labels": data[f"y_{split}"], "classes": list(CIFAR10_CLASSES)}
        torch.save(record, folder / f"{split}.pt")


def reported_time(log: str) -> float | None:
    """The run time airbench prints in the last row of its table ('| ... | 3.83 |'), or None."""
    rows = [line for line in log.strip().splitlines() if line.strip().startswith("|")]
    for line in reversed(rows):
        match = re.search(r"\|\s*([\d.]+)\s*\|\s*$", line)
        if match:
            return float(match.group(1))
    return None


def run(script: Path, runs: int, out: Path, record: dict[str, Any]) -> None:
    """1 warm-up and `runs` timed runs of airbench's main on the course's data; the JSON rewritten after each."""
    import torch

    work = Path(tempfile.mkdtemp())
    write_data(work / "cifar10")
    os.chdir(work)  # airbench reads cifar10/{train,test}.pt relative to the working directory
    sys.path.insert(0, str(script.parent))  # a fetched copy, not part of the course: imported from its folder
    module = importlib.import_module(script.stem)
    record.update(status="running", gpu=torch.cuda.get_device_name(), runs=[])
    for run_id in ["warmup", *range(runs)]:
        buffer = io.StringIO()
        start = time.perf_counter()
        with contextlib.redirect_stdout(buffer):
            accuracy = module.main(run_id)
        torch.cuda.synchronize()
        if run_id != "warmup":
            record["runs"].append(
                {
                    "tta_accuracy": float(accuracy),
                    "wall_s": round(time.perf_counter() - start, 3),
                    "reported_time_s": reported_time(buffer.getvalue()),
                }
            )
            write_json(out, record)
    record["status"] = "ran"
    write_json(out, record)


def main(argv: list[str] | None = None) -> None:
    """Command line: check (CPU) or run airbench94, or say in the JSON how to get it."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--script", type=Path, default=None, help="airbench94.py (default: under benchmarks/ref/)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--check", action="store_true", help="no CUDA needed: parse the script, convert 200 images")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    script = find_script(args.script)
    record: dict[str, Any] = {"benchmark": "airbench94", "script": str(script) if script else None}
    if script is None:
        raise SystemExit(f"no airbench94.py: {HOW_TO_GET}")
    if args.check:
        ast.parse(script.read_text())
        with tempfile.TemporaryDirectory() as tmp:
            write_data(Path(tmp) / "cifar10", limit=200)
            record["data_files"] = sorted(p.name for p in (Path(tmp) / "cifar10").iterdir())
        record["status"] = "checked on a CPU: the script parses and the data converts (it runs only on CUDA)"
        write_json(args.out, record)
    else:
        run(script, args.runs, args.out.resolve(), record)
    print(f"airbench94: {record['status']}")


if __name__ == "__main__":
    main()
