"""The GPU check: what the course claims on a GPU, measured on yours, every finished part written to disk as it ends.

    python -m tools.gpu_check                                  # every step, on the CUDA GPU (make gpu-check)
    python -m tools.gpu_check --only env,cifar10_speed --budget 600 --out results/gpu
    python -m tools.gpu_check --dry                            # every step at tiny size on the CPU (make gpu-check-dry)
    python -m tools.gpu_check --list                           # the steps, in order, and what each needs

Steps, in priority order: the environment (GPU, compute capability, the precision chosen and why, versions);
benchmarks/cifar10_speed.py and airbench94 on the same data (when a copy is present: tools/airbench.py says how to
get one); notebooks 02-05 and 00-01 under the `gpu` profile in a real kernel, timed per cell with peak GPU memory
(tools/notebook_run.py); the IMDB benchmark, our loop and the Trainer alternating; the T4 path (COURSE_PRECISION=
fp16) for 02's and 03's training; 02's training with torch.compile. Results go to benchmarks/results/gpu/<date>_<gpu>/
(or --out): run.json (the steps so far), one JSON per step, notebooks/NN.ipynb and .json, logs/. With --budget a
step (or a notebook cell) whose estimate does not fit what is left is not started, and run.json says so; estimates
are this GPU's earlier results in benchmarks/results/gpu/, else the planning values below. A step whose optional
pieces are missing is not started either, with one line saying what to install.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.airbench import HOW_TO_GET, find_script
from tools.files import slug, write_json
from tools.notebook_run import NotebookRun

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "gpu"
DRY_OUT = ROOT / "runs" / "gpu-check-dry"  # ignored by git
NOTEBOOK_NEEDS = ("nbclient", "ipykernel", "ipywidgets", "matplotlib", "tqdm", "datasets", "transformers")


@dataclass
class Step:
    """One step: a command (or a notebook), its tiny version for the dry run, what it needs, a planning time."""

    name: str
    real: list[str]
    dry: list[str]
    needs: tuple[str, ...] = ("torch",)
    env: dict[str, str] = field(default_factory=dict)
    plan_s: float = 60.0  # seconds planned on a GPU when this GPU has no earlier result: decides only what starts
    notebook: str | None = None
    data: tuple[str, ...] = ()  # the data sets it reads


def _nb(nn: str, path: str, plan_s: float, data: tuple[str, ...] = ()) -> Step:
    """A notebook under the gpu profile (tiny sizes in the dry run)."""
    return Step(f"nb{nn}", [], [], NOTEBOOK_NEEDS, {"COURSE_PROFILE": "gpu"}, plan_s, notebook=path, data=data)


CIFAR = ["-m", "benchmarks.cifar10_speed"]
CIFAR_TINY = [*CIFAR, "--smoke", "--runs", "1", "--epochs", "1", "--train-size", "512", "--test-size", "256"]
IMDB = ["-m", "benchmarks.imdb_finetune", "--model", "small", "--epochs", "1", "--test-size", "5000"]
IMDB_TINY = ["-m", "benchmarks.imdb_finetune", "--model", "small", "--smoke", "--train-size", "64", "--test-size", "64"]
FP16 = {"COURSE_PRECISION": "fp16"}  # the T4 path (fp16 autocast + GradScaler) forced on any GPU
ALTERNATING = ["--runs", "ours,trainer,trainer,ours,ours,trainer"]
STEPS: list[Step] = [
    Step("env", ["-m", "tools.gpu_check", "env"], ["-m", "tools.gpu_check", "env"], plan_s=30),
    Step("cifar10_speed", [*CIFAR, "--runs", "5"], CIFAR_TINY, ("torch", "pyarrow", "PIL"), plan_s=150),
    Step("airbench94", ["-m", "tools.airbench", "--runs", "5"], ["-m", "tools.airbench", "--check"], plan_s=120),
    _nb("02", "solutions/02_cifar10_cnn.ipynb", 900, ("cifar10",)),
    _nb("03", "solutions/03_bert_imdb.ipynb", 900, ("imdb",)),
    _nb("04", "solutions/04_attention.ipynb", 180, ("imdb",)),
    _nb("05", "solutions/05_distributed.ipynb", 240, ("cifar10",)),
    _nb("00", "notebooks/00_setup_check.ipynb", 90),
    _nb("01", "solutions/01_tensors_autograd.ipynb", 90),
    Step(
        "imdb", [*IMDB, *ALTERNATING], [*IMDB_TINY, "--runs", "ours,trainer"], ("transformers", "accelerate"), {}, 900
    ),
    Step("cifar10_fp16", [*CIFAR, "--runs", "2"], CIFAR_TINY, ("torch",), FP16, 120),
    Step("imdb_fp16", [*IMDB, "--runs", "ours"], [*IMDB_TINY, "--runs", "ours"], ("transformers",), FP16, 300),
    Step("cifar10_compile", [*CIFAR, "--runs", "5", "--compile"], [*CIFAR_TINY, "--compile"], plan_s=300),
]
for _step in STEPS:
    if _step.name.startswith(("cifar10", "airbench")):
        _step.data = ("cifar10",)
    elif _step.name.startswith("imdb"):
        _step.data = ("imdb",)
INSTALL = {
    "accelerate": "pip install accelerate (the Trainer's side of the IMDB benchmark)",
    "nbclient": "pip install nbclient ipykernel (running notebooks)",
    "ipykernel": "pip install ipykernel (running notebooks)",
}


def missing(step: Step, airbench: Path | None) -> str | None:
    """One line saying what a step needs and this Python lacks, and how to get it; None when all is there."""
    absent = [name for name in step.needs if importlib.util.find_spec(name) is None]
    if absent:
        how = "; ".join(INSTALL.get(n, f"pip install {n}") for n in absent)
        return f"missing {', '.join(absent)}: {how}, or install the course (make setup, or an offline pack)"
    if step.name == "airbench94" and find_script(airbench) is None:
        return f"no copy of airbench94.py: {HOW_TO_GET}"
    folder = Path(os.environ["COURSE_DATA_DIR"]) if os.environ.get("COURSE_DATA_DIR") else ROOT / "data"  # as helpers
    for name in step.data:  # .paths.data_dir finds it (importing helpers here would import torch)
        if not (folder / name / "train.parquet").exists():
            return f"no {name} data in {folder}: python -m helpers.download {name}, or set COURSE_DATA_DIR"
    return None


def gpu_name() -> str | None:
    """The CUDA GPU's name, asked of a child process (this one never starts CUDA); None without one."""
    code = "import torch; print(torch.cuda.get_device_name() if torch.cuda.is_available() else '')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"PyTorch does not import here ({out.stderr.strip().splitlines()[-1]}): install the course.")
    return out.stdout.strip() or None


def earlier(gpu: str) -> dict[str, Any]:
    """This GPU's earlier results in benchmarks/results/gpu/: seconds per finished step and per notebook cell."""
    found: dict[str, Any] = {"steps": {}, "cells": {}}
    for folder in sorted(RESULTS.glob(f"*_{slug(gpu)}")):
        if (folder / "run.json").exists():
            for entry in json.loads((folder / "run.json").read_text())["steps"]:
                if entry["status"] == "finished":
                    found["steps"][entry["step"]] = entry["seconds"]
        for record in (folder / "notebooks").glob("*.json"):
            cells = json.loads(record.read_text())["cells"]
            found["cells"][record.stem] = {c["cell"]: c["seconds"] for c in cells}
    return found


def run_process(step: Step, argv: list[str], out: Path, env: dict[str, str], left: float) -> tuple[str, float]:
    """A step's command in its own process (its log in logs/); stopped when it would outlast the budget."""
    start = time.perf_counter()
    (out / "logs").mkdir(parents=True, exist_ok=True)
    with open(out / "logs" / f"{step.name}.log", "w") as log:
        process = subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            rc = process.wait(timeout=max(left, 1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return f"stopped at the budget after {left:.0f} s", time.perf_counter() - start
    status = "finished" if rc == 0 else f"failed (exit {rc}; see logs/{step.name}.log)"
    return status, time.perf_counter() - start


def run_step(step: Step, args: argparse.Namespace, out: Path, deadline: float, past: dict) -> dict[str, Any]:
    """One step within the budget: not started when pieces are missing or its estimate does not fit; else run."""
    estimate = past["steps"].get(step.name, step.plan_s)
    entry: dict[str, Any] = {"step": step.name, "estimate_s": estimate}
    left = deadline - time.time()
    if reason := missing(step, args.airbench):
        return entry | {"status": f"not started: {reason}"}
    if estimate > left:
        return entry | {"status": f"not started: estimated {estimate:.0f} s, {left:.0f} s left of the budget"}
    env = {**os.environ, **step.env, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.update({"COURSE_TINY": "1", "COURSE_PROFILE": "gpu"} if args.dry else {})
    if step.notebook:
        saved = dict(os.environ)
        os.environ.update({k: v for k, v in env.items() if k.startswith("COURSE_") or k == "PYTHONPATH"})
        try:
            cells = past["cells"].get(step.name[2:], {}) if not args.dry else {}
            run = NotebookRun(ROOT / step.notebook, out / "notebooks" / step.name[2:], cells)
            record = run.execute(deadline)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        status = (
            "finished" if record["complete"] else f"{'failed' if record['failed'] else 'stopped'}: {record['stopped']}"
        )
        return entry | {"status": status, "seconds": record["seconds"], "file": f"notebooks/{step.name[2:]}.json"}
    argv = (step.dry if args.dry else step.real) + ["--out", str(out / f"{step.name}.json")]
    if step.name == "airbench94" and args.airbench:
        argv += ["--script", str(args.airbench)]
    status, seconds = run_process(step, argv, out, env, left)
    return entry | {"status": status, "seconds": round(seconds, 1), "file": f"{step.name}.json"}


def run_all(args: argparse.Namespace, gpu: str, out: Path) -> dict[str, Any]:
    """Every chosen step in priority order; run.json rewritten after each one."""
    start = time.time()
    deadline = start + (args.budget or 10**9)
    past = earlier(gpu) if not args.dry else {"steps": {}, "cells": {}}
    chosen = [s for s in STEPS if not args.only or s.name in args.only]
    record: dict[str, Any] = {
        "gpu": gpu,
        "dry": args.dry,
        "date": dt.date.today().isoformat(),
        "budget_s": args.budget,
        "command": " ".join(["python -m tools.gpu_check", *(args.argv or [])]),
        "steps": [],
    }
    write_json(out / "run.json", record)
    for step in chosen:
        print(f"{step.name}: ...", flush=True)
        entry = run_step(step, args, out, deadline, past)
        record["steps"].append(entry)
        record["seconds"] = round(time.time() - start, 1)
        write_json(out / "run.json", record)
        print(f"{step.name}: {entry['status']}" + (f" ({entry['seconds']:.0f} s)" if "seconds" in entry else ""))
    return record


def cmd_env(out: Path) -> None:
    """The env step: GPU, compute capability, precision and why, versions, one bf16/fp16 matrix-rate reading."""
    import platform

    import torch

    from helpers.device import autocast_dtype, describe_device, get_device, precision_reason

    device = get_device(verbose=False)
    record: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": describe_device(device),
        "precision": str(autocast_dtype(device) or "float32"),
        "precision_why": precision_reason(device),
        "COURSE_PRECISION": os.environ.get("COURSE_PRECISION", "auto"),
    }
    for name in ("transformers", "accelerate", "datasets", "nbclient", "ipykernel", "ipywidgets", "numpy"):
        spec = importlib.util.find_spec(name)
        record[name] = __import__(name).__version__ if spec else "missing"
    if device.type == "cuda":
        record["gpu"] = torch.cuda.get_device_name(device)
        record["compute_capability"] = ".".join(map(str, torch.cuda.get_device_capability(device)))
        record["memory_gib"] = round(torch.cuda.get_device_properties(device).total_memory / 2**30, 1)
        dtype = autocast_dtype(device) or torch.float32
        a = torch.randn(8192, 8192, device=device, dtype=dtype)
        for _ in range(3):
            a @ a
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(10):
            a @ a
        torch.cuda.synchronize()
        record[f"matmul_tflops_{dtype}"] = round(10 * 2 * 8192**3 / (time.perf_counter() - start) / 1e12, 1)
    write_json(out, record)
    print(json.dumps(record))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options (and the env sub-command the env step runs)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", nargs="?", choices=["check", "env"], default="check", help=argparse.SUPPRESS)
    parser.add_argument("--only", type=lambda s: [n.strip() for n in s.split(",") if n.strip()], default=None)
    parser.add_argument("--budget", type=float, default=None, help="seconds for the whole check (default: no limit)")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default benchmarks/results/gpu/...)")
    parser.add_argument("--dry", action="store_true", help="every step at tiny size on the CPU, through the same code")
    parser.add_argument("--airbench", type=Path, default=None, help="airbench94.py (default: under benchmarks/ref/)")
    parser.add_argument("--list", action="store_true", help="list the steps and what each needs")
    args = parser.parse_args(argv)
    args.argv = argv if argv is not None else sys.argv[1:]
    unknown = sorted(set(args.only or []) - {s.name for s in STEPS})
    if unknown:
        parser.error(f"unknown step(s) {', '.join(unknown)}; the steps: {', '.join(s.name for s in STEPS)}")
    return args


def main(argv: list[str] | None = None) -> None:
    """Command line: the check, its dry run, the step list, or the env step's own work."""
    args = parse_args(argv)
    if args.what == "env":
        return cmd_env(args.out or Path("env.json"))
    if args.list:
        for step in STEPS:
            print(f"{step.name:16s} needs {', '.join(step.needs)}; planned {step.plan_s:.0f} s on a GPU")
        return None
    if os.environ.get("COURSE_DATA_DIR"):  # the steps run in the checkout: a relative folder is the caller's
        os.environ["COURSE_DATA_DIR"] = str(Path(os.environ["COURSE_DATA_DIR"]).expanduser().resolve())
    gpu = "cpu-dry" if args.dry else gpu_name()
    if gpu is None:
        raise SystemExit("No CUDA GPU is visible to PyTorch: the check needs one (or run the dry run: --dry).")
    out = args.out or (DRY_OUT if args.dry else RESULTS / f"{dt.date.today().isoformat()}_{slug(gpu)}")
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    print(f"GPU check on {gpu}: results in {out}")
    record = run_all(args, gpu, out)
    failed = [s["step"] for s in record["steps"] if s["status"].startswith("failed")]
    print(
        f"done in {record['seconds']:.0f} s: {out / 'run.json'}" + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    if failed:
        raise SystemExit(1)
    return None


if __name__ == "__main__":
    main()
