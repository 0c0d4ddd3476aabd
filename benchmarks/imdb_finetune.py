#!/usr/bin/env python
"""Fine-tune BERT on IMDB two ways and print JSON: the course's loop (helpers.fit + helpers.text) and
the Hugging Face Trainer, on the same model, tokenised data, max length, epochs and hyperparameters.

Full run (one GPU; the 25k training reviews, accuracy on all 25k test reviews):
    python -m benchmarks.imdb_finetune --model MODEL --out benchmarks/results/imdb_finetune_<gpu>.json
Proof that it runs end to end, on a CPU in a minute or two (a few hundred reviews):
    python -m benchmarks.imdb_finetune --smoke

MODEL is a hub name or a folder with a BERT (`auto`, the default, asks helpers.resolve_bert). The data
come from $COURSE_DATA_DIR/imdb/{train,test}.parquet, read with pyarrow by helpers.data. Needs torch,
transformers, numpy, pyarrow; the Trainer also needs accelerate. Run it from the repository root with the
course installed (`pip install -e .`) or with PYTHONPATH=. See benchmarks/README.md for what is measured.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.imdb_runs import Prepared, load_model, run_ours, run_trainer
from helpers import text as T
from helpers.bert import resolve_bert
from helpers.data import read_split, stratified_indices
from helpers.device import autocast_dtype, describe_device, get_device, seed_everything
from helpers.evaluation import predict_proba

# ----------------------------------------------------------------------------------------------------------
# Data and model
# ----------------------------------------------------------------------------------------------------------


def read_imdb(split: str) -> tuple[list[str], np.ndarray]:
    """Texts and labels of one IMDB split (helpers.data.read_split: the local Parquet files, with pyarrow)."""
    columns = read_split("imdb", split, ("text", "label"))
    return columns["text"], np.asarray(columns["label"], dtype=np.int64)


def resolve_model(choice: str) -> str:
    """A hub name or folder; `auto` and `small` ask helpers.resolve_bert (`small`: the 6-layer MiniLM, offline)."""
    return resolve_bert(choice) if choice in ("auto", "small") else choice


def model_label(name: str) -> str:
    """A short name for the report: the hub name, or a folder's name (its package's for the offline model)."""
    path = Path(name)
    if not path.exists():
        return name
    return path.parent.name if path.name == "model" else path.name


# ----------------------------------------------------------------------------------------------------------
# Measuring
# ----------------------------------------------------------------------------------------------------------


def mask_check(model: torch.nn.Module, ids: list[list[int]], device: torch.device) -> float:
    """Largest logit difference between a batch with the usual 2-D mask and with the ready 4-D one (eval, fp32)."""
    outputs = []
    for mask in ("2d", "4d"):
        batches = T.TokenBatches(ids, np.zeros(len(ids), dtype=np.int64), len(ids), device=device, mask=mask)
        outputs.append(predict_proba(model, batches, dtype=None))
    return float(np.abs(outputs[0] - outputs[1]).max())


def warm_up(model: torch.nn.Module, device: torch.device, batch_size: int, max_length: int) -> None:
    """A few untimed forward/backward passes so neither timed run pays for CUDA and kernel start-up."""
    if device.type != "cuda":
        return
    dtype = autocast_dtype(device)
    for length in (max_length, max(8, max_length // 4)):
        ids = torch.randint(1000, 20000, (batch_size, length), device=device)
        for _ in range(3):
            with torch.autocast("cuda", dtype=dtype):
                loss = model(input_ids=ids).logits.float().sum()
            loss.backward()
    model.zero_grad(set_to_none=True)
    torch.cuda.synchronize(device)


# ----------------------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; --smoke shrinks everything to a CPU-sized proof run."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--model", default="auto", help="hub name or folder of a BERT, or auto / small (helpers.resolve_bert)"
    )
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument(
        "--truncation",
        choices=T.TRUNCATIONS,
        default="head+tail",
        help="how reviews longer than max-length are cut, the same for both runs (default: head+tail)",
    )
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup", type=float, default=0.1, help="share of all steps spent warming up")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-size", type=int, default=None, help="stratified subset of the training set (default: all)")
    p.add_argument("--test-size", type=int, default=None, help="stratified subset of the test set (default: all)")
    p.add_argument("--eval-batch-size", type=int, default=256)
    p.add_argument("--mask", choices=("2d", "4d"), default="4d", help="our loop's attention mask (see TokenBatches)")
    p.add_argument("--pad-multiple", type=int, default=8, help="our loop pads each batch to a multiple of this")
    p.add_argument(
        "--trainer-sampling", default="random", help="the Trainer's train_sampling_strategy (random is its default)"
    )
    p.add_argument(
        "--runs",
        default="ours,trainer",
        help="which runs in which order, comma-separated, repeats allowed: e.g. ours,trainer,trainer,ours",
    )
    p.add_argument("--log-every", type=int, default=100, help="steps between loss reads (each one waits for the GPU)")
    p.add_argument("--progress", action="store_true", help="show progress bars")
    p.add_argument(
        "--smoke",
        action="store_true",
        help="CPU proof run: 400 train / 256 test reviews, max length 64, 1 epoch, batch 8, lr 2e-4",
    )
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here (after every run)")
    args = p.parse_args(argv)
    if args.smoke:  # the smoke profile of notebook 03: enough steps to see both loops learn
        args.train_size = args.train_size or 400
        args.test_size = args.test_size or 256
        args.max_length, args.epochs, args.batch_size, args.lr = 64, 1, 8, 2e-4
    return args


def prepare(args: argparse.Namespace) -> tuple[Prepared, dict[str, Any]]:
    """Read, subset and tokenise the reviews once; check the 4-D mask; warm up; the report's shared part."""
    from transformers import AutoTokenizer

    device = get_device(verbose=False)
    seed_everything(args.seed)
    model_name = resolve_model(args.model)
    tokenizer = AutoTokenizer.from_pretrained(model_name)
    start = time.perf_counter()
    texts_train, labels_train = read_imdb("train")
    texts_test, labels_test = read_imdb("test")
    pick_train = stratified_indices(labels_train, args.train_size, args.seed)
    pick_test = stratified_indices(labels_test, args.test_size, args.seed)
    y_train, y_test = labels_train[pick_train], labels_test[pick_test]
    read_s, start = time.perf_counter() - start, time.perf_counter()
    train_ids = T.encode_reviews(tokenizer, [texts_train[i] for i in pick_train], args.max_length, args.truncation)
    test_ids = T.encode_reviews(tokenizer, [texts_test[i] for i in pick_test], args.max_length, args.truncation)
    tokenize_s = time.perf_counter() - start
    lengths = np.array([len(x) for x in train_ids])
    test_batches = T.TokenBatches(
        test_ids, y_test, args.eval_batch_size, device=device, pad_to_multiple_of=args.pad_multiple, mask=args.mask
    )
    probe = load_model(model_name, device, args.seed)
    mask_diff = None
    if args.mask == "4d":
        mask_diff = mask_check(
            probe, [train_ids[i] for i in np.argsort(lengths)[:: max(1, len(lengths) // 8)][:8]], device
        )
        if not mask_diff < 1e-3:
            print(f"warning: 4-D mask changes the logits by {mask_diff:.2e}; using 2-D masks", file=sys.stderr)
            args.mask = test_batches.mask = "2d"
    warm_up(probe, device, args.batch_size, args.max_length)
    n_params = sum(p.numel() for p in probe.parameters())
    del probe
    data = {"train_reviews": len(y_train), "test_reviews": len(y_test), "read_seconds": round(read_s, 3)}
    data |= {"tokenize_seconds": round(tokenize_s, 3), "mean_train_tokens": round(float(lengths.mean()), 1)}
    data["padding_fraction"] = {
        "random_batches": round(T.padding_fraction(lengths, T.random_batches(len(lengths), args.batch_size)), 4),
        "length_grouped": round(
            T.padding_fraction(lengths, T.length_grouped_batches(lengths, args.batch_size, seed=args.seed)), 4
        ),
    }
    shared = {"model": model_label(model_name), "model_parameters": n_params, "data": data}
    shared["mask_check_max_logit_diff"] = mask_diff
    return Prepared(args, model_name, tokenizer, device, train_ids, y_train, test_batches, y_test), shared


def summarise(report: dict[str, Any], smoke: bool) -> None:
    """Mean and spread per side over the runs so far, and the comparison with the goal when both sides ran."""
    summary: dict[str, Any] = {}
    for side, runs in report["runs"].items():
        secs = [r["train_seconds"] for r in runs if "train_seconds" in r]
        if secs:
            summary[side] = {
                "runs": len(secs),
                "train_seconds_mean": round(statistics.fmean(secs), 3),
                "train_seconds_std": round(statistics.stdev(secs), 3) if len(secs) > 1 else 0.0,
                "accuracy_mean": round(statistics.fmean(r["test_accuracy"] for r in runs if "test_accuracy" in r), 5),
            }
    report["summary"] = summary
    if "ours" in summary and "trainer" in summary:
        ratio = summary["ours"]["train_seconds_mean"] / summary["trainer"]["train_seconds_mean"]
        report["comparison"] = {
            "time_ours_over_trainer": round(ratio, 4),
            "speedup": round(1 / ratio, 3),
            "accuracy_difference": round(summary["ours"]["accuracy_mean"] - summary["trainer"]["accuracy_mean"], 5),
            "goal": "test accuracy >= 0.926 in at most half of the Trainer's training time "
            "(full data, max length 512, 2 epochs)",
            "goal_met": bool(ratio <= 0.5 and summary["ours"]["accuracy_mean"] >= 0.926) if not smoke else None,
        }


def write(report: dict[str, Any], out: Path | None) -> None:
    """The report written whole (a temporary file renamed): a run stopped midway leaves every finished run."""
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(json.dumps(report, indent=2) + "\n")
        tmp.replace(out)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Prepare the data once, run the loops in the order given (repeats allowed); the report rewritten after each."""
    args = parse_args(argv)
    order = [r.strip() for r in args.runs.split(",") if r.strip()]
    if unknown := sorted(set(order) - {"ours", "trainer"}):
        raise SystemExit(f"unknown run {unknown[0]!r}: choose ours, trainer")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the "classifier weights newly initialised" report, twice, says nothing new
    prepared, shared = prepare(args)
    device = prepared.device
    report: dict[str, Any] = {
        "benchmark": "imdb_finetune",
        "smoke": args.smoke,
        "device": describe_device(device),
        "device_type": device.type,
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "precision": str(autocast_dtype(device) or "float32"),
        "versions": {name: _version(name) for name in ("torch", "transformers", "accelerate", "numpy")},
        "python": platform.python_version(),
        **shared,
        "hyperparameters": {
            k: getattr(args, k)
            for k in ("max_length", "truncation", "epochs", "batch_size", "lr", "weight_decay", "warmup", "seed")
        },
        "order": order,
        "runs": {name: [] for name in dict.fromkeys(order)},
    }
    for name in order:
        print(f"--- {name} ---", file=sys.stderr, flush=True)
        result = run_ours(prepared) if name == "ours" else run_trainer(prepared)
        report["runs"][name].append(result)
        summarise(report, args.smoke)
        write(report, args.out)
        print(json.dumps({name: result}, indent=1), file=sys.stderr, flush=True)
    print(json.dumps(report, indent=2))
    return report


def _version(package: str) -> str | None:
    """Installed version of a package, or None."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    main()
