"""Speed and accuracy of notebook 02's CIFAR-10 recipe: N seeded training runs on one GPU, printed as JSON.

It trains exactly the notebook's code (helpers.cifar.train, airbench's loop in helpers/cifar/recipe.py), after one
warm-up run that is not counted (cuDNN autotuning, torch.compile). Times are CUDA-event times of the
device work: `train_time_s` = whitening statistics + all epochs; `tta_eval_time_s` = the test set with
test-time augmentation; `time_per_run_s` = both, which is what airbench94 reports as its run time.

    python -m benchmarks.cifar10_speed                 # 5 runs of the full recipe on the GPU
    python -m benchmarks.cifar10_speed --runs 10 --compile
    python -m benchmarks.cifar10_speed --smoke         # a tiny CPU run that checks the script end to end

Data: $COURSE_DATA_DIR/cifar10/{train,test}.parquet (or --data-dir), read with pyarrow by helpers.data,
so a bare GPU machine needs neither `datasets` nor matplotlib nor tqdm. Run it from the repository root
with the course installed (`pip install -e .`, or `--no-deps` on a bare machine) or with PYTHONPATH=.
The JSON goes to stdout and to benchmarks/results/ (file named after the hardware), or to --out, rewritten after
every timed run: a run stopped midway keeps the runs it finished (`runs` of `runs_planned`).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import re
import statistics
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from helpers import cifar

ROOT = Path(__file__).resolve().parent.parent
GOAL = {
    "tta_accuracy": 0.906,
    "time_per_run_s": 4.5,
    "reference": "airbench94 (no compile) on one H100 with the shared JPEG CIFAR-10: 90.6% with TTA, ~2.2 s per run",
}


def stats(values: list[float]) -> dict[str, float | list[float]]:
    """Mean, standard deviation, min and max, and the values themselves."""
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
        "per_run": values,
    }


def slug(text: str) -> str:
    """A file-name-safe lower-case version of a hardware name."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--runs", type=int, help="timed runs (seeds 0..runs-1) after one warm-up run (default 5; 2 with --smoke)"
    )
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile the network (compile time reported separately)"
    )
    parser.add_argument("--epochs", type=int, help="override the recipe's epochs")
    parser.add_argument("--batch-size", type=int, help="override the recipe's batch size")
    parser.add_argument("--tta-level", type=int, choices=(0, 1, 2), help="override the recipe's TTA level")
    parser.add_argument("--train-size", type=int, help="class-balanced N training images (default all; --smoke 2,000)")
    parser.add_argument("--test-size", type=int, help="class-balanced N test images (default all; --smoke 1,000)")
    parser.add_argument("--data-dir", help="folder holding cifar10/{train,test}.parquet (default: $COURSE_DATA_DIR)")
    parser.add_argument("--out", help="JSON file to write (default: benchmarks/results/cifar10_speed_<hardware>.json)")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny CPU run (2,000 images, narrow net) to test the script"
    )
    parser.add_argument("--cpu", action="store_true", help="run on the CPU even when a GPU is present")
    return parser.parse_args(argv)


def setup(args: argparse.Namespace) -> tuple[torch.device, cifar.Recipe, dict[str, int | None]]:
    """The device, the recipe (with --smoke and the overrides) and the data sizes."""
    device = torch.device("cuda" if torch.cuda.is_available() and not (args.cpu or args.smoke) else "cpu")
    if device.type != "cuda" and not args.smoke:
        print(
            "No GPU: this benchmark is meant for one. Running anyway (use --smoke for a quick check).", file=sys.stderr
        )
    recipe = cifar.Recipe(compile=args.compile)
    sizes: dict[str, int | None] = {"train_size": None, "test_size": None}
    if args.smoke:
        recipe = cifar.Recipe(widths=(16, 32, 32), epochs=2, batch_size=128, compile=args.compile, whiten_images=500)
        sizes = {"train_size": 2000, "test_size": 1000}
    sizes.update({k: v for k, v in {"train_size": args.train_size, "test_size": args.test_size}.items() if v})
    overrides = {
        k: v
        for k, v in {"epochs": args.epochs, "batch_size": args.batch_size, "tta_level": args.tta_level}.items()
        if v is not None
    }
    return device, replace(recipe, **overrides), sizes


def make_record(args: argparse.Namespace, device: torch.device, recipe: cifar.Recipe, info: dict, runs: list) -> dict:
    """The JSON record of the runs finished so far (`info`: data, hardware and warm-up facts)."""
    per_run = [r.train_time_s + r.tta_eval_time_s for r, _ in runs]
    tta = stats([r.tta_accuracy for r, _ in runs])
    return {
        "benchmark": "cifar10_speed",
        "smoke": args.smoke,
        "device": device.type,
        **info,
        "recipe": asdict(recipe),
        "runs": len(runs),
        "runs_planned": args.runs,
        "seeds": list(range(len(runs))),
        "accuracy": stats([r.accuracy for r, _ in runs]),
        "tta_accuracy": tta,
        "train_time_s": stats([r.train_time_s for r, _ in runs]),
        "tta_eval_time_s": stats([r.tta_eval_time_s for r, _ in runs]),
        "time_per_run_s": stats(per_run),
        # the warm-up run compiles; the timed runs reuse the compiled code, so the difference is the compile cost
        "compile_time_s": (info["warmup_run"]["wall_s"] - statistics.fmean(w for _, w in runs))
        if args.compile
        else None,
        "timing": "CUDA events around the device work (perf_counter on CPU); the warm-up run is excluded",
        "goal": {
            **GOAL,
            "met": (
                not args.smoke
                and device.type == "cuda"
                and tta["mean"] >= GOAL["tta_accuracy"]
                and statistics.fmean(per_run) <= GOAL["time_per_run_s"]
            ),
        },
    }


def facts(device: torch.device, data: dict, load_s: float) -> dict:
    """Hardware, software and data facts the record states once."""
    hardware = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({platform.processor() or platform.machine()})"
    )
    return {
        "hardware": hardware,
        "cpu_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if device.type == "cuda" else None,
        "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
        "python": platform.python_version(),
        "date": datetime.date.today().isoformat(),
        "data": {
            "name": "CIFAR-10, the course's shared copy (JPEG-compressed images, official split)",
            "train_images": len(data["y_train"]),
            "test_images": len(data["y_test"]),
            "reader": "helpers.data (pyarrow + Pillow)",
            "load_and_decode_s": round(load_s, 2),
        },
    }


def write(record: dict, out: Path) -> None:
    """The record written whole (a temporary file renamed), so a run stopped at any moment leaves a readable file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(out)


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; its JSON record is rewritten after every timed run, and returned."""
    args = parse_args(argv)
    args.runs = args.runs or (2 if args.smoke else 5)
    device, recipe, sizes = setup(args)
    t0 = time.perf_counter()
    data = cifar.load_cifar10_tensors(**sizes, root=args.data_dir)
    info = facts(device, data, time.perf_counter() - t0)
    data = {k: v.to(device) for k, v in data.items()}
    mean, std = cifar.channel_stats(data["x_train"])

    def one_run(seed: int):
        train, test = (data["x_train"], data["y_train"]), (data["x_test"], data["y_test"])
        return cifar.train(recipe, train, test, device, seed=seed, mean=mean, std=std, progress=False, log_every=10**9)

    start = time.perf_counter()
    warm = one_run(seed=10_000)
    info["warmup_run"] = {
        "wall_s": time.perf_counter() - start,
        "train_time_s": warm.train_time_s,
        "tta_accuracy": warm.tta_accuracy,
    }
    name = "cpu_smoke" if args.smoke else slug(info["hardware"]) + ("_compile" if args.compile else "")
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"cifar10_speed_{name}.json"
    runs = []
    for seed in range(args.runs):
        start = time.perf_counter()
        run = one_run(seed)
        runs.append((run, time.perf_counter() - start))
        print(
            f"run {seed}: accuracy {run.accuracy:.4f}, with TTA {run.tta_accuracy:.4f}, "
            f"train {run.train_time_s:.2f} s, TTA eval {run.tta_eval_time_s:.2f} s",
            file=sys.stderr,
        )
        record = make_record(args, device, recipe, info, runs)
        write(record, out)
    print(json.dumps(record, indent=2))
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out.name}", file=sys.stderr)
    return record


if __name__ == "__main__":
    main()
