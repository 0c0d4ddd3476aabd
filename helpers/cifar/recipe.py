"""One run of notebook 02's recipe (§4.9) and its table of tricks (§4.8), each trick a Recipe switch."""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from ..batches import progress_bar
from ..device import autocast_dtype, needs_grad_scaler
from ..errors import check_choice
from ..evaluation import evaluate
from ..measure import Timer
from ..train import History, check_finite, format_record
from .loader import GpuLoader, channel_stats, normalize
from .net import CifarNet, identity_init_, init_whitening_
from .tricks import LOOKAHEAD_EVERY, Lookahead, constant_schedule, lookahead_rho, triangular_schedule, tta_forward


@dataclass
class Recipe:
    """Every setting of a run: the defaults are the full fast recipe; each trick can be switched off. 02 §4.9."""

    widths: tuple[int, ...] = (64, 256, 256)
    epochs: int = 10
    batch_size: int = 1024
    lr: float = 1.5  # peak LR of Nesterov SGD on the mean loss, for a batch of 1024 (scaled with batch_size)
    momentum: float = 0.85
    weight_decay: float = 0.002  # weights shrink by this fraction per step at peak LR, for a batch of 1024 (scaled too)
    bias_lr_scale: float = 64.0  # BatchNorm shifts learn 64x faster (same shrink per step)
    label_smoothing: float = 0.2
    schedule: str = "triangular"  # or "constant"
    whiten: bool = True  # frozen patch-whitening stem (else: an ordinary learned stem)
    whiten_bias_until: float = 0.3  # the stem's bias learns during this fraction of the epochs (rounded), then freezes
    identity_init: bool = True
    lookahead: bool = True
    lookahead_from: float = 0.3  # lookahead starts after this fraction of training
    flip: str | None = "alternating"  # or "random" or None
    translate: int = 2
    tta_level: int = 2
    compile: bool = False
    channels_last: bool = True
    bn_momentum: float = 0.4
    whiten_images: int = 5000  # training images the whitening statistics are computed from
    eval_batch_size: int = 2000

    def __post_init__(self) -> None:
        self.widths = tuple(self.widths)
        check_choice("schedule", self.schedule, ("triangular", "constant"))


@dataclass
class Run:
    """What one training run produced: the model, its history, accuracies and times. Taught in 02 §4.9."""

    model: nn.Module
    history: History
    recipe: Recipe
    train_time_s: float
    accuracy: float = math.nan  # on the evaluation split, filled in by measure()
    tta_accuracy: float = math.nan
    eval_time_s: float = 0.0
    tta_eval_time_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def make_model(recipe: Recipe, device: torch.device | str = "cpu") -> CifarNet:
    """A recipe's network on a device, channels_last when asked (stem not yet whitened). Taught in 02 §3.2."""
    model = CifarNet(recipe.widths, bn_momentum=recipe.bn_momentum)
    if recipe.identity_init:
        identity_init_(model)
    model = model.to(device)
    return model.to(memory_format=torch.channels_last) if recipe.channels_last else model


def make_optimizer(
    model: CifarNet, recipe: Recipe, total_steps: int, steps_per_epoch: int
) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.LambdaLR]:
    """Nesterov SGD (BN shifts at 64x the LR of the weights) and its LR schedule. Taught in 02 §3.2."""
    norm_shifts = [p for n, p in model.named_parameters() if "norm" in n and p.requires_grad]
    others = [p for n, p in model.named_parameters() if "norm" not in n and p.requires_grad]
    # Per-example step sizes stay the same when the batch size changes: LR and decay scale with it.
    scale = recipe.batch_size / 1024
    lr, bias_lr, decay = recipe.lr * scale, recipe.lr * recipe.bias_lr_scale * scale, recipe.weight_decay * scale
    # torch's SGD shrinks weights by lr * weight_decay per step, so divide by lr to make the shrink `decay`
    groups = [
        dict(params=others, lr=lr, weight_decay=decay / lr),  # first: the LR that the history reports
        dict(params=norm_shifts, lr=bias_lr, weight_decay=decay / bias_lr),
    ]
    optimizer = torch.optim.SGD(groups, lr=lr, momentum=recipe.momentum, nesterov=True)
    shape = (triangular_schedule if recipe.schedule == "triangular" else constant_schedule)(total_steps)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, shape)


Split = tuple[torch.Tensor, torch.Tensor]
"""(uint8 images (N, 3, 32, 32), labels (N,)) of one split."""


def train(
    recipe: Recipe,
    train_data: Split,
    eval_data: Split,
    device: torch.device | str,
    *,
    seed: int = 0,
    mean: torch.Tensor | None = None,
    std: torch.Tensor | None = None,
    progress: bool = False,
    log_every: int = 10,
    val_each_epoch: bool = False,
) -> Run:
    """Train a recipe in airbench's loop, each trick where it acts; measure eval_data with and without TTA. 02 §4.7.

    The caller names the evaluation split (validation while choosing, test once at the end).
    """
    device = torch.device(device)  # "cpu" or "cuda" as a string works too
    torch.manual_seed(seed)
    mean, std = (mean, std) if mean is not None and std is not None else channel_stats(train_data[0])
    model, loader, evaluation = setup(recipe, train_data, eval_data, device, seed, mean, std)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    dtype = autocast_dtype(device)  # bf16 from capability 8.0, fp16 + loss scaling on 7.x, fp32 on a CPU
    scaler = torch.amp.GradScaler(device.type, enabled=needs_grad_scaler(dtype))
    with cudnn_benchmark(device), Timer(device) as timer:
        if recipe.whiten:  # timed: computing the whitening filters is part of the training cost
            init_whitening_(model.stem, normalize(train_data[0][: recipe.whiten_images].to(device), mean, std))
        total_steps = recipe.epochs * len(loader)
        optimizer, scheduler = make_optimizer(model, recipe, total_steps, len(loader))
        lookahead = Lookahead() if recipe.lookahead else None
        lookahead_start = round(recipe.lookahead_from * total_steps)
        bias_epochs = max(1, round(recipe.whiten_bias_until * recipe.epochs)) if recipe.whiten else recipe.epochs
        history, step = History(), 0
        for epoch in range(recipe.epochs):
            model.stem.bias.requires_grad_(epoch < bias_epochs)  # the whitened stem's bias learns, then freezes
            loader.set_epoch(epoch)  # this epoch's shuffle and augmentation
            model.train()
            meter = EpochMeter(history, len(loader), log_every)
            for x, y in progress_bar(loader, progress, desc=f"epoch {epoch + 1}/{recipe.epochs}"):
                with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                    logits = model(x)
                loss = loss_fn(logits.float(), y)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                step += 1
                if lookahead is not None and step >= lookahead_start and step % LOOKAHEAD_EVERY == 0:
                    lookahead.update(model, rho=lookahead_rho(step, total_steps))
                meter.add(loss, logits, y, step)
            if lookahead is not None and lookahead.slow is not None:
                lookahead.update(model, rho=1.0)  # epoch end: the network takes the slow weights
            history.epochs.append(meter.record(optimizer.param_groups[0]["lr"]))
            if val_each_epoch:
                val = evaluate(model, evaluation, loss_fn=loss_fn)
                history.epochs[-1].update({f"val_{k}": v for k, v in val.items()})
            if progress:
                print(format_record(history.epochs[-1], recipe.epochs))
    return measure(Run(model, history, recipe, timer.seconds, extra={"steps": step}), evaluation, loss_fn, device)


def setup(
    recipe: Recipe,
    train_data: Split,
    eval_data: Split,
    device: torch.device,
    seed: int,
    mean: torch.Tensor,
    std: torch.Tensor,
) -> tuple[nn.Module, GpuLoader, GpuLoader]:
    """The network and the two loaders of one run of train(): what it trains, on what, measured on what."""
    loader = GpuLoader(*train_data, batch_size=recipe.batch_size, mean=mean, std=std, translate=recipe.translate,
                       flip=recipe.flip, seed=seed, device=device, channels_last=recipe.channels_last)  # fmt: skip
    model = make_model(recipe, device)
    if recipe.compile:
        model = torch.compile(model)  # the same parameters, one handle: model.stem is the compiled model's stem
    evaluation = GpuLoader(*eval_data, batch_size=recipe.eval_batch_size, mean=mean, std=std, train=False,
                           device=device, channels_last=recipe.channels_last)  # fmt: skip
    return model, loader, evaluation


@contextlib.contextmanager
def cudnn_benchmark(device: torch.device) -> Iterator[None]:
    """cuDNN times its kernels for each shape once and keeps the fastest (fixed shapes: worth it); restored after."""
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = device.type == "cuda"
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


class EpochMeter:
    """One epoch's running numbers: the loss logged every `log_every` steps, the epoch's mean loss and accuracy."""

    def __init__(self, history: History, n_batches: int, log_every: int):
        self.history, self.n_batches, self.log_every = history, n_batches, log_every
        self.losses: list[torch.Tensor] = []
        self.correct, self.seen, self.start = 0, 0, time.perf_counter()

    def add(self, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor, step: int) -> None:
        """Count one step; every `log_every` steps read the mean loss (reading a GPU value waits for the GPU)."""
        self.losses.append(loss.detach())
        self.correct += (logits.argmax(1) == labels).sum()
        self.seen += len(labels)
        if step % self.log_every == 0:
            window = torch.stack(self.losses[-self.log_every :]).mean().item()
            check_finite(window, step, self.history)
            self.history.steps.append({"step": step, "epoch": step / self.n_batches, "loss": window})

    def record(self, lr: float) -> dict[str, float]:
        """The epoch's line of the history, as helpers.fit writes it."""
        seconds = time.perf_counter() - self.start
        loss = torch.stack(self.losses).mean().item()
        check_finite(loss, len(self.history) * self.n_batches + len(self.losses), self.history)
        accuracy = float(self.correct) / self.seen
        epoch = len(self.history) + 1
        return dict(epoch=epoch, train_loss=loss, train_accuracy=accuracy, lr=lr, time_s=seconds,
                    samples_per_s=self.seen / seconds)  # fmt: skip


def measure(run: Run, evaluation: GpuLoader, loss_fn: nn.Module, device: torch.device) -> Run:
    """Fill in a run's accuracy on the evaluation split, without and with TTA, and the time each takes."""
    with Timer(device) as plain_timer:
        run.accuracy = evaluate(run.model, evaluation, loss_fn=loss_fn)["accuracy"]
    with Timer(device) as tta_timer:
        tta = tta_forward(run.recipe.tta_level)
        run.tta_accuracy = evaluate(run.model, evaluation, loss_fn=loss_fn, forward=tta)["accuracy"]
    run.eval_time_s, run.tta_eval_time_s = plain_timer.seconds, tta_timer.seconds
    run.model.eval()
    return run


def baseline_recipe(base: Recipe) -> Recipe:
    """A recipe without the tricks: constant LR, no smoothing, learned stem, default init, random flips. 02 §3.2."""
    return replace(
        base,
        schedule="constant",
        label_smoothing=0.0,
        whiten=False,
        identity_init=False,
        lookahead=False,
        flip="random",
        compile=False,
    )


def ablation_recipes(base: Recipe) -> list[tuple[str, Recipe]]:
    """The tricks added one at a time: the baseline, then each row adds one thing to the row above. 02 §4.8."""
    plain = baseline_recipe(base)
    rows = [("baseline: plain net, constant LR, random flip + translate", plain)]
    steps = [
        ("+ triangular LR schedule", dict(schedule="triangular")),
        ("+ label smoothing 0.2", dict(label_smoothing=base.label_smoothing or 0.2)),
        ("+ patch-whitening stem (frozen)", dict(whiten=True)),
        ("+ identity init of the convs", dict(identity_init=True)),
        ("+ lookahead (EMA of weights)", dict(lookahead=True)),
        ("+ alternating flip", dict(flip="alternating")),
    ]
    current = plain
    for name, change in steps:
        current = replace(current, **change)
        rows.append((name, current))
    return rows


def tricks_table(
    rows: list[tuple[str, Recipe]],
    train_data: Split,
    eval_data: Split,
    device: torch.device,
    *,
    seeds: tuple[int, ...] = (0,),
    report: Callable[[str], None] | None = print,
) -> list[dict[str, Any]]:
    """Each row's recipe once per seed on eval_data: mean accuracies and times (compile: minus a warm-up run).

    Taught in 02 §4.8.
    """
    mean, std = channel_stats(train_data[0])
    results = []
    for name, recipe in rows:
        warmup_s = None
        if recipe.compile:
            warmup_s = train(recipe, train_data, eval_data, device, seed=10_000, mean=mean, std=std).train_time_s
        runs = [train(recipe, train_data, eval_data, device, seed=s, mean=mean, std=std) for s in seeds]
        row = {
            "trick": name,
            "accuracy": statistics.fmean(r.accuracy for r in runs),
            "tta_accuracy": statistics.fmean(r.tta_accuracy for r in runs),
            "train_time_s": statistics.fmean(r.train_time_s for r in runs),
            "tta_eval_time_s": statistics.fmean(r.tta_eval_time_s for r in runs),
            "runs": len(runs),
        }
        if warmup_s is not None:
            row["compile_time_s"] = warmup_s - row["train_time_s"]
        results.append(row)
        if report is not None:
            report(
                f"{name:<58} accuracy {row['accuracy']:.4f} | with TTA {row['tta_accuracy']:.4f} | "
                f"train {row['train_time_s']:.1f} s"
            )
    return results
