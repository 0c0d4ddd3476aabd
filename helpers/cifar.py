"""CIFAR-10 in seconds (notebook 02): the ideas of Keller Jordan's airbench94, our code, each trick a Recipe switch."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import decode_images, read_split, stratified_indices
from .measure import Timer
from .profiles import check_choice, check_int
from .train import History, evaluate, fit

NUM_CLASSES = 10


def load_cifar10_tensors(train_size: int | None = None, test_size: int | None = None, seed: int = 0,
                         root: str | Path | None = None) -> dict[str, torch.Tensor]:
    """CIFAR-10 as uint8 tensors {x_train, y_train, x_test, y_test}; sizes take class-balanced subsets. Taught in 02 §1."""
    out: dict[str, torch.Tensor] = {}
    for split, size in (("train", train_size), ("test", test_size)):
        columns = read_split("cifar10", split, ("img", "label"), Path(root) if root is not None else None)
        labels = torch.tensor(columns["label"], dtype=torch.long)
        keep = (torch.from_numpy(stratified_indices(labels, size, seed)) if size is not None and size != len(labels)
                else torch.arange(len(labels)))
        out[f"x_{split}"] = decode_images([columns["img"][i]["bytes"] for i in keep.tolist()])
        out[f"y_{split}"] = labels[keep]
    return out


def subset_tensors(data: dict[str, torch.Tensor], train_size: int | None = None, test_size: int | None = None,
                   seed: int = 0) -> dict[str, torch.Tensor]:
    """Class-balanced subsets of a {x_train, y_train, x_test, y_test} dict (None: the whole split). Taught in 02 §3.2."""
    out = dict(data)
    for split, size in (("train", train_size), ("test", test_size)):
        if size is not None and size != len(data[f"y_{split}"]):
            keep = torch.from_numpy(stratified_indices(data[f"y_{split}"], size, seed)).to(data[f"y_{split}"].device)
            out[f"x_{split}"], out[f"y_{split}"] = data[f"x_{split}"][keep], data[f"y_{split}"][keep]
    return out


def channel_stats(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of uint8 images in [0, 1] units: what normalize uses. Taught in 02 §1.2."""
    x = images.float().div_(255)
    return x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3))


def normalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 (N,3,H,W) -> float32 with zero mean and unit std per channel. Taught in 02 §1.2."""
    mean = mean.to(images.device).view(1, -1, 1, 1)
    std = std.to(images.device).view(1, -1, 1, 1)
    return (images.float() / 255 - mean) / std


def denormalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Undo normalize for display: float images back to [0, 1] per channel, clamped. Taught in 02 §3.1."""
    mean, std = mean.to(images.device).view(1, -1, 1, 1), std.to(images.device).view(1, -1, 1, 1)
    return (images * std + mean).clamp(0, 1)


def _reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    """Map indices that run past an edge back inside, mirror-wise (like reflect padding): -1 -> 1, size -> size-2."""
    index = index.abs()
    return torch.where(index > size - 1, 2 * (size - 1) - index, index)


def augment(images: torch.Tensor, shifts: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """Shift each image by (dy, dx) pixels, mirrored at the edges, and flip it where asked. Taught in 02 §3.1."""
    # ours, not F.pad(mode="reflect") + crops: 1,024 images in 33 ms against 69 ms (a crop per image), 2-core CPU
    n, c, h, w = images.shape
    rows = _reflect(torch.arange(h, device=images.device) + shifts[:, :1], h)  # (N, H)
    cols = _reflect(torch.arange(w, device=images.device) + shifts[:, 1:], w)  # (N, W)
    cols = torch.where(flips[:, None], cols.flip(1), cols)
    batch = torch.arange(n, device=images.device)[:, None, None, None]
    channel = torch.arange(c, device=images.device)[None, :, None, None]
    return images[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]


class GpuLoader:
    """Batches (x, y) from uint8 images that stay on the device: shuffle, augment, normalise. Taught in 02 §3.1."""
    # ours, not a DataLoader: CIFAR-10 is 150 MB as uint8, so it stays on the GPU and no batch waits for a copy

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, *, batch_size: int, mean: torch.Tensor,
                 std: torch.Tensor, train: bool = True, translate: int = 0, flip: str | None = None,
                 drop_last: bool | None = None, seed: int = 0, device: torch.device | str | None = None,
                 channels_last: bool = True):
        check_choice("flip", flip, (None, "random", "alternating"))
        device = torch.device(device) if device is not None else images.device
        self.images, self.labels = images.to(device), labels.to(device)
        self.batch_size, self.train = check_int("batch_size", batch_size), train
        self.translate, self.flip = (translate, flip) if train else (0, None)
        self.drop_last = train if drop_last is None else drop_last
        self.scale = (1 / (255 * std)).to(device).view(1, -1, 1, 1)
        self.shift = (-mean / std).to(device).view(1, -1, 1, 1)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.epoch = 0
        self.first_flips: torch.Tensor | None = None

    def __len__(self) -> int:
        """Batches per epoch."""
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def flips_for_epoch(self, epoch: int) -> torch.Tensor:
        """Which images (by index in the data set) are flipped in a given epoch (alternating: a fixed pattern)."""
        n, device = len(self.labels), self.labels.device
        if self.flip is None:
            return torch.zeros(n, dtype=torch.bool, device=device)
        if self.flip == "random":
            return torch.rand(n, generator=self.generator, device=device) < 0.5
        if self.first_flips is None:
            self.first_flips = torch.rand(n, generator=self.generator, device=device) < 0.5
        return self.first_flips ^ bool(epoch % 2)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of (normalised float32 images, labels) batches."""
        n, device = len(self.labels), self.labels.device
        order = torch.randperm(n, generator=self.generator, device=device) if self.train else torch.arange(n, device=device)
        flips = self.flips_for_epoch(self.epoch) if self.train else None
        shifts = (torch.randint(-self.translate, self.translate + 1, (n, 2), generator=self.generator, device=device)
                  if self.translate else torch.zeros(n, 2, dtype=torch.long, device=device))
        augmenting = bool(self.translate) or self.flip is not None  # (eval loaders have neither)
        self.epoch += 1
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            x = augment(self.images[idx], shifts[idx], flips[idx]) if augmenting else self.images[idx]
            x = torch.addcmul(self.shift, x.float(), self.scale).contiguous(memory_format=self.memory_format)
            yield x, self.labels[idx]


class BatchNorm(nn.BatchNorm2d):
    """BatchNorm with its scale fixed at 1 and fast running statistics (momentum 0.4: short runs). Taught in 02 §2.3."""

    def __init__(self, channels: int, momentum: float = 0.4, eps: float = 1e-12, learn_scale: bool = False):
        super().__init__(channels, eps=eps, momentum=momentum)
        self.weight.requires_grad_(learn_scale)


class ConvGroup(nn.Module):
    """conv 3x3 -> max-pool 2x2 -> BN -> GELU -> conv 3x3 -> BN -> GELU: half the resolution. Taught in 02 §2.5."""

    def __init__(self, channels_in: int, channels_out: int, bn_momentum: float = 0.4):
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, padding="same", bias=False)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = BatchNorm(channels_out, bn_momentum)
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, padding="same", bias=False)
        self.norm2 = BatchNorm(channels_out, bn_momentum)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the group."""
        x = self.act(self.norm1(self.pool(self.conv1(x))))
        return self.act(self.norm2(self.conv2(x)))


class CifarNet(nn.Module):
    """2x2-conv stem (24 channels) -> GELU -> three ConvGroups -> global max-pool -> scaled linear head. Taught in 02 §2.5."""

    def __init__(self, widths: tuple[int, ...] = (64, 256, 256), stem_kernel: int = 2, num_classes: int = NUM_CLASSES,
                 logit_scale: float = 1 / 9, bn_momentum: float = 0.4):
        super().__init__()
        stem_width = 2 * 3 * stem_kernel**2  # room for +/- copies of every whitening filter
        self.stem = nn.Conv2d(3, stem_width, stem_kernel, padding=0, bias=True)
        self.act = nn.GELU()
        chans = (stem_width, *widths)
        self.groups = nn.Sequential(*(ConvGroup(a, b, bn_momentum) for a, b in zip(chans[:-1], chans[1:])))
        self.head = nn.Linear(widths[-1], num_classes, bias=False)
        self.logit_scale = logit_scale

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The image -> feature-vector part (before the linear head)."""
        x = self.groups(self.act(self.stem(x)))
        return x.amax(dim=(2, 3))  # global max-pool: one number per channel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_classes)."""
        return self.head(self.features(x)) * self.logit_scale


def identity_init_(model: nn.Module) -> nn.Module:
    """Each 3x3 conv starts by passing its input through (dirac init of the first filters). Taught in 02 §4.4."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d) and module.kernel_size == (3, 3) and module.out_channels >= module.in_channels:
            with torch.no_grad():
                nn.init.dirac_(module.weight[: module.in_channels])
    return model


def image_patches(images: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Every kernel_size x kernel_size patch of every image, flattened: (N * H' * W', C * k * k). Taught in 02 §4.3."""
    c = images.shape[1]
    patches = images.unfold(2, kernel_size, 1).unfold(3, kernel_size, 1)  # N, C, H', W', k, k
    return patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * kernel_size**2)


def whitening_filters(images: torch.Tensor, kernel_size: int = 2, eps: float = 5e-4) -> tuple[torch.Tensor, torch.Tensor]:
    """Patch-covariance eigenvectors / sqrt(eigenvalue), largest first, and the eigenvalues. Taught in 02 §4.3."""
    patches = image_patches(images.float(), kernel_size).double()
    patches = patches - patches.mean(dim=0)
    cov = patches.T @ patches / len(patches)
    eigenvalues, eigenvectors = torch.linalg.eigh(cov)  # ascending
    eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.flip(1)
    filters = eigenvectors.T / torch.sqrt(eigenvalues + eps)[:, None]
    c = images.shape[1]
    return filters.reshape(-1, c, kernel_size, kernel_size).float(), eigenvalues.float()


def init_whitening_(stem: nn.Conv2d, images: torch.Tensor, eps: float = 5e-4) -> nn.Conv2d:
    """Set a stem conv to +/- the images' whitening filters and freeze its weights (not its bias). Taught in 02 §4.3."""
    filters, _ = whitening_filters(images, stem.kernel_size[0], eps)
    with torch.no_grad():
        stem.weight.copy_(torch.cat([filters, -filters]).to(stem.weight))
        stem.bias.zero_()
    stem.weight.requires_grad_(False)
    return stem


def triangular_schedule(total_steps: int, peak_at: float = 0.23, start: float = 0.2, end: float = 0.07) -> Callable[[int], float]:
    """LR multiplier per step: linear from `start` to 1 at `peak_at` of training, then to `end`. Taught in 02 §4.1."""
    xs = [0, max(1, int(peak_at * total_steps)), total_steps]
    return lambda step: float(np.interp(step, xs, [start, 1.0, end]))


def constant_schedule(total_steps: int) -> Callable[[int], float]:
    """LR multiplier 1 throughout (the baseline the triangular schedule is compared with). Taught in 02 §4.1."""
    return lambda step: 1.0


LOOKAHEAD_EVERY, LOOKAHEAD_DECAY, LOOKAHEAD_POWER = 5, 0.95, 3.0
"""Lookahead's settings: an update every 5 steps, the slow weight rho growing to 0.95**5 as (step / total)**3."""


def lookahead_rho(step: int, total_steps: int, every: int = LOOKAHEAD_EVERY, decay: float = LOOKAHEAD_DECAY,
                  power: float = LOOKAHEAD_POWER) -> float:
    """The weight of the slow copy at an update: decay**every * (step / total_steps)**power. Taught in 02 §4.5."""
    return decay**every * min(1.0, step / total_steps) ** power


class Lookahead:
    """Every `every` steps: slow <- rho * slow + (1 - rho) * fast, then fast <- slow (step hook). Taught in 02 §4.5."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, *, total_steps: int, steps_per_epoch: int,
                 start_step: int = 0, every: int = LOOKAHEAD_EVERY, decay: float = LOOKAHEAD_DECAY,
                 power: float = LOOKAHEAD_POWER):
        self.tensors = [t for t in model.state_dict().values() if t.is_floating_point()]
        self.slow: list[torch.Tensor] | None = None
        self.total_steps, self.steps_per_epoch = total_steps, steps_per_epoch
        self.start_step, self.every, self.decay, self.power = start_step, every, decay, power
        self.step = 0
        self.handle = optimizer.register_step_post_hook(self._after_step)

    @torch.no_grad()
    def _after_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        """Called by the optimizer after each step."""
        self.step += 1
        if self.step >= self.start_step and self.step % self.every == 0:
            if self.slow is None:
                self.slow = [t.detach().clone() for t in self.tensors]
            else:
                rho = lookahead_rho(self.step, self.total_steps, self.every, self.decay, self.power)
                torch._foreach_lerp_(self.slow, self.tensors, 1 - rho)
                torch._foreach_copy_(self.tensors, self.slow)
        if self.slow is not None and self.step % self.steps_per_epoch == 0:
            self.finish()

    @torch.no_grad()
    def finish(self) -> None:
        """Give the network the slow weights (called at epoch ends and after training)."""
        if self.slow is not None:
            torch._foreach_copy_(self.tensors, self.slow)

    def remove(self) -> None:
        """Detach from the optimizer."""
        self.handle.remove()


def tta_logits(model: nn.Module, x: torch.Tensor, level: int = 2) -> torch.Tensor:
    """Logits averaged over views: 0 the image, 1 + its mirror, 2 + both shifted by a pixel. Taught in 02 §4.7."""
    if level == 0:
        return model(x)

    def with_mirror(v: torch.Tensor) -> torch.Tensor:
        return model(torch.cat([v, v.flip(-1)])).view(2, len(v), -1).mean(0)

    logits = with_mirror(x)
    if level >= 2:
        padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
        shifted = with_mirror(padded[..., :-2, :-2]) + with_mirror(padded[..., 2:, 2:])
        logits = 0.5 * logits + 0.25 * shifted
    return logits


def tta_forward(level: int) -> Callable[[nn.Module, torch.Tensor], torch.Tensor]:
    """A `forward` for helpers.evaluate/fit that applies test-time augmentation at a given level. Taught in 02 §4.7."""
    return lambda model, x: tta_logits(model, x, level)


@dataclass
class Recipe:
    """Every setting of a run: the defaults are the full fast recipe, each trick can be switched off. Taught in 02 §4.9."""

    widths: tuple[int, ...] = (64, 256, 256)
    epochs: int = 10
    batch_size: int = 1024
    lr: float = 1.5                 # peak LR of Nesterov SGD on the mean loss, for a batch of 1024 (scaled with batch_size)
    momentum: float = 0.85
    weight_decay: float = 0.002     # weights shrink by this fraction per step at peak LR, for a batch of 1024 (scaled too)
    bias_lr_scale: float = 64.0     # BatchNorm shifts learn 64x faster (same shrink per step)
    label_smoothing: float = 0.2
    schedule: str = "triangular"    # or "constant"
    whiten: bool = True             # frozen patch-whitening stem (else: an ordinary learned stem)
    whiten_bias_until: float = 0.3  # the stem's bias learns during this fraction of training, then freezes
    identity_init: bool = True
    lookahead: bool = True
    lookahead_from: float = 0.3     # lookahead starts after this fraction of training
    flip: str | None = "alternating"  # or "random" or None
    translate: int = 2
    tta_level: int = 2
    compile: bool = False
    channels_last: bool = True
    bn_momentum: float = 0.4
    whiten_images: int = 5000       # training images the whitening statistics are computed from
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


def make_optimizer(model: CifarNet, recipe: Recipe, total_steps: int, steps_per_epoch: int
                   ) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.LambdaLR]:
    """Nesterov SGD (weights; BN shifts at 64x the LR; the stem bias) and its LR schedule. Taught in 02 §3.2."""
    norm_shifts = [p for n, p in model.named_parameters() if "norm" in n and p.requires_grad]
    stem_bias = [model.stem.bias]
    others = [p for n, p in model.named_parameters()
              if "norm" not in n and p.requires_grad and p is not model.stem.bias]
    # Per-example step sizes stay the same when the batch size changes: LR and decay scale with it.
    scale = recipe.batch_size / 1024
    lr, bias_lr, decay = recipe.lr * scale, recipe.lr * recipe.bias_lr_scale * scale, recipe.weight_decay * scale
    # torch's SGD shrinks weights by lr * weight_decay per step, so divide by lr to make the shrink `decay`
    groups = [dict(params=others, lr=lr, weight_decay=decay / lr),  # first: the LR that helpers.fit reports
              dict(params=norm_shifts, lr=bias_lr, weight_decay=decay / bias_lr),
              dict(params=stem_bias, lr=lr, weight_decay=decay / lr)]
    optimizer = torch.optim.SGD(groups, lr=lr, momentum=recipe.momentum, nesterov=True)
    shape = (triangular_schedule if recipe.schedule == "triangular" else constant_schedule)(total_steps)
    stem_steps = round(recipe.whiten_bias_until * total_steps) if recipe.whiten else total_steps + 1
    stem_shape = lambda step: shape(step) if step < stem_steps else 0.0  # noqa: E731  (LR 0 freezes the bias)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, [shape, shape, stem_shape])
    return optimizer, scheduler


def train(recipe: Recipe, data: dict[str, torch.Tensor], device: torch.device, *, seed: int = 0,
          mean: torch.Tensor | None = None, std: torch.Tensor | None = None, progress: bool = False,
          log_every: int = 10, val_each_epoch: bool = False, keep_outputs: bool = False) -> Run:
    """Train a recipe's net with helpers.fit (timed with whitening), test it with and without TTA. Taught in 02 §4.7."""
    torch.manual_seed(seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if mean is None or std is None:
        mean, std = channel_stats(data["x_train"])
    loader_args = dict(mean=mean, std=std, device=device, channels_last=recipe.channels_last)
    train_loader = GpuLoader(data["x_train"], data["y_train"], batch_size=recipe.batch_size, train=True,
                             translate=recipe.translate, flip=recipe.flip, seed=seed, **loader_args)
    test_loader = GpuLoader(data["x_test"], data["y_test"], batch_size=recipe.eval_batch_size, train=False, **loader_args)
    model = make_model(recipe, device)
    steps_per_epoch = len(train_loader)
    total_steps = recipe.epochs * steps_per_epoch
    net = torch.compile(model) if recipe.compile else model
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    with Timer(device) as train_timer:
        if recipe.whiten:
            sample = data["x_train"][: recipe.whiten_images].to(device)
            init_whitening_(model.stem, normalize(sample, mean, std))
        optimizer, scheduler = make_optimizer(model, recipe, total_steps, steps_per_epoch)
        lookahead = (Lookahead(model, optimizer, total_steps=total_steps, steps_per_epoch=steps_per_epoch,
                               start_step=round(recipe.lookahead_from * total_steps)) if recipe.lookahead else None)
        history = fit(net, train_loader, epochs=recipe.epochs, optimizer=optimizer, scheduler=scheduler,
                      loss_fn=loss_fn, val_data=test_loader if val_each_epoch else None, max_grad_norm=None,
                      log_every=log_every, progress=progress)
        if lookahead is not None:
            lookahead.finish()
            lookahead.remove()
    extra: dict[str, Any] = {"steps": total_steps, "interrupted": history.interrupted}
    with Timer(device) as eval_timer:
        plain = evaluate(net, test_loader, loss_fn=loss_fn, return_outputs=keep_outputs)
    with Timer(device) as tta_timer:
        tta = evaluate(net, test_loader, loss_fn=loss_fn, forward=tta_forward(recipe.tta_level), return_outputs=keep_outputs)
    if keep_outputs:
        (plain, extra["logits"], extra["labels"]), (tta, extra["tta_logits"], _) = plain, tta
    return Run(model=model, history=history, recipe=recipe, accuracy=plain["accuracy"], tta_accuracy=tta["accuracy"],
               train_time_s=train_timer.seconds, eval_time_s=eval_timer.seconds, tta_eval_time_s=tta_timer.seconds,
               extra=extra)


def baseline_recipe(base: Recipe) -> Recipe:
    """A recipe without the tricks: constant LR, no smoothing, learned stem, default init, random flips. Taught in 02 §3.2."""
    return replace(base, schedule="constant", label_smoothing=0.0, whiten=False, identity_init=False,
                   lookahead=False, flip="random", compile=False)


def ablation_recipes(base: Recipe) -> list[tuple[str, Recipe]]:
    """The tricks added one at a time: the baseline first, then each row adds one thing to the row above. Taught in 02 §4.8."""
    plain = baseline_recipe(base)
    rows = [("baseline: plain net, constant LR, random flip + translate", plain)]
    steps = [("+ triangular LR schedule", dict(schedule="triangular")),
             ("+ label smoothing 0.2", dict(label_smoothing=base.label_smoothing or 0.2)),
             ("+ patch-whitening stem (frozen)", dict(whiten=True)),
             ("+ identity init of the convs", dict(identity_init=True)),
             ("+ lookahead (EMA of weights)", dict(lookahead=True)),
             ("+ alternating flip", dict(flip="alternating"))]
    current = plain
    for name, change in steps:
        current = replace(current, **change)
        rows.append((name, current))
    return rows


def tricks_table(rows: list[tuple[str, Recipe]], data: dict[str, torch.Tensor], device: torch.device, *,
                 seeds: tuple[int, ...] = (0,), report: Callable[[str], None] | None = print) -> list[dict[str, Any]]:
    """Each row's recipe once per seed: mean accuracies and times (compile: minus a warm-up run). Taught in 02 §4.8."""
    mean, std = channel_stats(data["x_train"])
    results = []
    for name, recipe in rows:
        warmup_s = None
        if recipe.compile:
            warmup_s = train(recipe, data, device, seed=10_000, mean=mean, std=std).train_time_s
        runs = [train(recipe, data, device, seed=s, mean=mean, std=std) for s in seeds]
        row = {"trick": name,
               "accuracy": statistics.fmean(r.accuracy for r in runs),
               "tta_accuracy": statistics.fmean(r.tta_accuracy for r in runs),
               "train_time_s": statistics.fmean(r.train_time_s for r in runs),
               "tta_eval_time_s": statistics.fmean(r.tta_eval_time_s for r in runs),
               "runs": len(runs)}
        if warmup_s is not None:
            row["compile_time_s"] = warmup_s - row["train_time_s"]
        results.append(row)
        if report is not None:
            report(f"{name:<58} accuracy {row['accuracy']:.4f} | with TTA {row['tta_accuracy']:.4f} | "
                   f"train {row['train_time_s']:.1f} s")
    return results
