"""One run of notebook 02's recipe (§4.9) and its table of tricks (§4.8), each trick a Recipe switch."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from ..errors import check_choice
from ..measure import Timer
from ..train import History, evaluate, fit
from .loader import GpuLoader, channel_stats, normalize
from .net import CifarNet, identity_init_, init_whitening_
from .tricks import Lookahead, constant_schedule, triangular_schedule, tta_forward


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
    whiten_bias_until: float = 0.3  # the stem's bias learns during this fraction of training, then freezes
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
    accuracy: float
    tta_accuracy: float
    train_time_s: float
    eval_time_s: float
    tta_eval_time_s: float
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
    """Nesterov SGD (weights; BN shifts at 64x the LR; the stem bias) and its LR schedule. Taught in 02 §3.2."""
    norm_shifts = [p for n, p in model.named_parameters() if "norm" in n and p.requires_grad]
    stem_bias = [model.stem.bias]
    others = [
        p for n, p in model.named_parameters() if "norm" not in n and p.requires_grad and p is not model.stem.bias
    ]
    # Per-example step sizes stay the same when the batch size changes: LR and decay scale with it.
    scale = recipe.batch_size / 1024
    lr, bias_lr, decay = recipe.lr * scale, recipe.lr * recipe.bias_lr_scale * scale, recipe.weight_decay * scale
    # torch's SGD shrinks weights by lr * weight_decay per step, so divide by lr to make the shrink `decay`
    groups = [
        dict(params=others, lr=lr, weight_decay=decay / lr),  # first: the LR that helpers.fit reports
        dict(params=norm_shifts, lr=bias_lr, weight_decay=decay / bias_lr),
        dict(params=stem_bias, lr=lr, weight_decay=decay / lr),
    ]
    optimizer = torch.optim.SGD(groups, lr=lr, momentum=recipe.momentum, nesterov=True)
    shape = (triangular_schedule if recipe.schedule == "triangular" else constant_schedule)(total_steps)
    stem_steps = round(recipe.whiten_bias_until * total_steps) if recipe.whiten else total_steps + 1
    stem_shape = lambda step: shape(step) if step < stem_steps else 0.0  # noqa: E731  (LR 0 freezes the bias)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, [shape, shape, stem_shape])
    return optimizer, scheduler


Split = tuple[torch.Tensor, torch.Tensor]
"""(uint8 images (N, 3, 32, 32), labels (N,)) of one split."""


def fit_recipe(
    recipe: Recipe, model: CifarNet, net: nn.Module, loader: GpuLoader, whiten_sample: torch.Tensor, **fit_args: Any
) -> History:
    """Whiten the stem, build optimizer, schedule and lookahead, and run helpers.fit on `net`. Taught in 02 §4.9."""
    if recipe.whiten:
        init_whitening_(model.stem, whiten_sample)
    total_steps = recipe.epochs * len(loader)
    optimizer, scheduler = make_optimizer(model, recipe, total_steps, len(loader))
    start = round(recipe.lookahead_from * total_steps)
    lookahead = (
        Lookahead(model, optimizer, total_steps=total_steps, steps_per_epoch=len(loader), start_step=start)
        if recipe.lookahead
        else None
    )
    history = fit(net, loader, epochs=recipe.epochs, optimizer=optimizer, scheduler=scheduler, **fit_args)
    if lookahead is not None:
        lookahead.finish()
        lookahead.remove()
    return history


def train(
    recipe: Recipe,
    train_data: Split,
    eval_data: Split,
    device: torch.device,
    *,
    seed: int = 0,
    mean: torch.Tensor | None = None,
    std: torch.Tensor | None = None,
    progress: bool = False,
    log_every: int = 10,
    val_each_epoch: bool = False,
    keep_outputs: bool = False,
) -> Run:
    """Train on train_data with helpers.fit (timed with whitening), measure on eval_data with and without TTA.

    The caller names the evaluation split (validation while choosing, test once at the end). Taught in 02 §4.7.
    """
    torch.manual_seed(seed)
    if mean is None or std is None:
        mean, std = channel_stats(train_data[0])
    args = dict(mean=mean, std=std, device=device, channels_last=recipe.channels_last)
    augment = dict(translate=recipe.translate, flip=recipe.flip, seed=seed)
    train_loader = GpuLoader(*train_data, batch_size=recipe.batch_size, **augment, **args)
    eval_loader = GpuLoader(*eval_data, batch_size=recipe.eval_batch_size, train=False, **args)
    model = make_model(recipe, device)
    net = torch.compile(model) if recipe.compile else model
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    whiten_sample = normalize(train_data[0][: recipe.whiten_images].to(device), mean, std)
    benchmark = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = device.type == "cuda"  # fixed shapes: let cuDNN pick its fastest kernels
    try:
        with Timer(device) as train_timer:
            val_data = eval_loader if val_each_epoch else None
            history = fit_recipe(
                recipe,
                model,
                net,
                train_loader,
                whiten_sample,
                loss_fn=loss_fn,
                val_data=val_data,
                max_grad_norm=None,
                log_every=log_every,
                progress=progress,
            )
        with Timer(device) as eval_timer:
            plain = evaluate(net, eval_loader, loss_fn=loss_fn, return_outputs=keep_outputs)
        with Timer(device) as tta_timer:
            tta_fn = tta_forward(recipe.tta_level)
            tta = evaluate(net, eval_loader, loss_fn=loss_fn, forward=tta_fn, return_outputs=keep_outputs)
    finally:
        torch.backends.cudnn.benchmark = benchmark
    extra: dict[str, Any] = {"steps": recipe.epochs * len(train_loader), "interrupted": history.interrupted}
    if keep_outputs:
        (plain, extra["logits"], extra["labels"]), (tta, extra["tta_logits"], _) = plain, tta
    times = dict(train_time_s=train_timer.seconds, eval_time_s=eval_timer.seconds, tta_eval_time_s=tta_timer.seconds)
    return Run(model, history, recipe, plain["accuracy"], tta["accuracy"], **times, extra=extra)


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
