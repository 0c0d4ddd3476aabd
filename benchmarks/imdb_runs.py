"""The two loops that benchmarks/imdb_finetune.py compares, on the same prepared data: ours and the Trainer's.

ours: notebook 03's code (helpers.fit with helpers.text's GPU-resident, length-grouped batches); trainer: the Hugging
Face Trainer with its defaults and the same hyperparameters. One evaluation code for both (evaluate_run).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import math
import tempfile
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from helpers import text as T
from helpers.bert import load_bert
from helpers.device import autocast_dtype, seed_everything
from helpers.evaluation import binary_metrics, predict_proba
from helpers.measure import Timer
from helpers.optim import make_adamw, warmup_steps_for
from helpers.train import fit


def load_model(name: str, device: torch.device, seed: int) -> torch.nn.Module:
    """The classifier in float32 with SDPA attention (helpers.bert.load_bert); seeded, so both runs start alike."""
    return load_bert(name, T.LABEL_NAMES, device=device, seed=seed)[0]


def reset_memory(device: torch.device) -> None:
    """Free what the last run left and restart the peak-memory counter."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_gib(device: torch.device) -> float | None:
    """Most GPU memory PyTorch held since the last reset (None on a CPU)."""
    return round(torch.cuda.max_memory_allocated(device) / 2**30, 3) if device.type == "cuda" else None


def speed_record(n_samples: int, epochs: int, train_s: float, device: torch.device) -> dict[str, Any]:
    """The timing fields both runs report, in the same units."""
    return {
        "train_seconds": round(train_s, 3),
        "samples_per_s": round(n_samples * epochs / train_s, 1),
        "peak_memory_gib": peak_memory_gib(device),
    }


def evaluate_run(
    model: torch.nn.Module, test_batches: T.TokenBatches, labels: np.ndarray, device: torch.device
) -> dict[str, float]:
    """Test metrics with one evaluation code for both runs (length-sorted batches, the same autocast)."""
    with Timer(device) as timer:
        probs = predict_proba(model, test_batches)
    metrics = binary_metrics(labels, probs.argmax(-1))
    return {
        "test_accuracy": round(metrics["accuracy"], 5),
        "test_f1": round(metrics["f1"], 5),
        "eval_seconds": round(timer.seconds, 3),
    }


@dataclass
class Prepared:
    """What both loops share: the options, the model to load, the device, and the data tokenised once."""

    args: argparse.Namespace
    model_name: str
    tokenizer: Any
    device: torch.device
    train_ids: list[list[int]]
    y_train: np.ndarray
    test_batches: T.TokenBatches
    y_test: np.ndarray


def run_ours(p: Prepared) -> dict[str, Any]:
    """The course's loop: GPU-resident, length-grouped, per-batch padded data; fused AdamW; helpers.fit."""
    args, model_name, device, train_ids, y_train = p.args, p.model_name, p.device, p.train_ids, p.y_train
    reset_memory(device)
    model = load_model(model_name, device, args.seed)
    seed_everything(args.seed)
    with Timer(device) as prepare:
        batches = T.TokenBatches(
            train_ids,
            y_train,
            args.batch_size,
            shuffle=True,
            seed=args.seed,
            device=device,
            pad_to_multiple_of=args.pad_multiple,
            mask=args.mask,
        )
    from transformers import get_linear_schedule_with_warmup

    optimizer = make_adamw(model, args.lr, args.weight_decay)
    total = args.epochs * len(batches)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup_steps_for(total, args.warmup), total)
    with Timer(device) as training:
        history = fit(
            model,
            batches,
            epochs=args.epochs,
            optimizer=optimizer,
            scheduler=scheduler,
            max_grad_norm=1.0,
            log_every=args.log_every,
            progress=args.progress,
        )
    result = speed_record(len(y_train), args.epochs, training.seconds, device)
    result.update(
        {
            "prepare_seconds": round(prepare.seconds, 3),
            "steps": total,
            "epochs": [{k: round(v, 5) if isinstance(v, float) else v for k, v in e.items()} for e in history.epochs],
            "setup": (
                f"helpers.fit; TokenBatches on {device.type}: length-grouped batches (groups of "
                f"{batches.group_batches} batches), each padded to a multiple of {args.pad_multiple}, mask "
                f"{args.mask}; AdamW fused={optimizer.defaults.get('fused')}, no decay on biases/LayerNorm; "
                "linear warmup and decay; autocast " + str(autocast_dtype(device))
            ),
        }
    )
    result.update(evaluate_run(model, p.test_batches, p.y_test, device))
    del model, optimizer, batches
    return result


class _Reviews(torch.utils.data.Dataset):
    """Pre-tokenised reviews as the Trainer wants them: one dict per review, padded later by its collator."""

    def __init__(self, ids: list[list[int]], labels: np.ndarray) -> None:
        self.ids, self.labels = ids, labels

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"input_ids": self.ids[i], "labels": int(self.labels[i])}


def run_trainer(p: Prepared) -> dict[str, Any]:
    """Hugging Face Trainer with its defaults plus the same hyperparameters (dynamic padding per batch)."""
    args, model_name, device, y_train = p.args, p.model_name, p.device, p.y_train
    if importlib.util.find_spec("accelerate") is None:
        return {"skipped": "the Trainer needs accelerate: pip install 'dl-course-helpers[bench]'"}
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    reset_memory(device)
    model = load_model(model_name, device, args.seed)
    dtype = autocast_dtype(device)
    total = args.epochs * math.ceil(len(y_train) / args.batch_size)
    options = dict(
        per_device_train_batch_size=args.batch_size,
        num_train_epochs=args.epochs,
        learning_rate=args.lr,
        weight_decay=args.weight_decay,
        warmup_steps=warmup_steps_for(total, args.warmup),
        lr_scheduler_type="linear",
        max_grad_norm=1.0,
        bf16=dtype == torch.bfloat16,
        fp16=dtype == torch.float16,
        logging_steps=args.log_every,
        save_strategy="no",
        report_to="none",
        seed=args.seed,
        disable_tqdm=not args.progress,
        use_cpu=device.type == "cpu",
        dataloader_pin_memory=device.type == "cuda",
    )
    if args.trainer_sampling != "random":
        options["train_sampling_strategy"] = args.trainer_sampling
    with tempfile.TemporaryDirectory() as out_dir:
        targs = TrainingArguments(output_dir=out_dir, **options)
        trainer = Trainer(
            model=model,
            args=targs,
            train_dataset=_Reviews(p.train_ids, y_train),
            data_collator=DataCollatorWithPadding(p.tokenizer),
        )
        with Timer(device) as training:
            output = trainer.train()
    result = speed_record(len(y_train), args.epochs, training.seconds, device)
    result.update(
        {
            "trainer_train_runtime": round(float(output.metrics["train_runtime"]), 3),
            "steps": int(output.global_step),
            "final_train_loss": round(float(output.training_loss), 5),
            "setup": (
                f"transformers.Trainer: optim {getattr(targs.optim, 'value', targs.optim)}, DataCollatorWithPadding, "
                "sampler "
                f"{args.trainer_sampling}, dataloader_num_workers {targs.dataloader_num_workers}, "
                f"bf16={targs.bf16} fp16={targs.fp16}"
            ),
        }
    )
    result.update(evaluate_run(trainer.model, p.test_batches, p.y_test, device))
    del model, trainer
    return result
