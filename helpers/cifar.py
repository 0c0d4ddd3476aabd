"""CIFAR-10 in seconds (notebook 02 and benchmarks/cifar10_speed.py): data on the device, the network, the tricks.

The recipe follows the ideas of Keller Jordan's airbench94 (github.com/KellerJordan/cifar10-airbench):
a frozen patch-whitening first layer, identity-initialised convolutions, BatchNorm with a fixed scale,
GELU, label smoothing, Nesterov SGD with a triangular learning rate, lookahead (an EMA of the weights),
alternating flips and test-time augmentation. The code is our own, and every trick can be switched off
(see `Recipe`), so the notebook can measure what each one buys. Training goes through `helpers.fit`.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import data_dir, images_to_tensor, load_cifar10, stratified_indices, stratified_subset
from .train import History, evaluate, fit

NUM_CLASSES = 10

# --------------------------------------------------------------------------------------------------
# Data: uint8 tensors, read through helpers.load_cifar10 when `datasets` is installed, else with pyarrow
# --------------------------------------------------------------------------------------------------


def _decode_jpegs(blobs: list[bytes]) -> torch.Tensor:
    """Decode image files to one uint8 (N, 3, H, W) tensor with Pillow, else with torchvision."""
    try:
        from PIL import Image
    except ImportError:  # a bare GPU machine may have torchvision but no Pillow
        from torchvision.io import ImageReadMode, decode_image

        return torch.stack([decode_image(torch.frombuffer(b, dtype=torch.uint8), ImageReadMode.RGB) for b in blobs])
    arrays = [np.asarray(Image.open(BytesIO(b)).convert("RGB")) for b in blobs]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def read_parquet_split(path: str | Path, size: int | None = None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (uint8 N,3,32,32) and labels of one split, read with pyarrow alone (no `datasets` needed).

    With `size`, only a class-balanced subset of that many images is decoded.
    """
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=["img", "label"])
    labels = torch.tensor(table.column("label").to_pylist(), dtype=torch.long)
    blobs = table.column("img").combine_chunks().field("bytes")
    if size is not None and size < len(labels):
        keep = torch.from_numpy(stratified_indices(labels, size, seed))
        return _decode_jpegs([blobs[i].as_py() for i in keep.tolist()]), labels[keep]
    return _decode_jpegs(blobs.to_pylist()), labels


def load_cifar10_tensors(train_size: int | None = None, test_size: int | None = None, seed: int = 0,
                         root: str | Path | None = None, backend: str = "auto") -> dict[str, torch.Tensor]:
    """CIFAR-10 as uint8 tensors {x_train, y_train, x_test, y_test}; sizes take class-balanced subsets.

    backend "datasets" goes through helpers.load_cifar10 (local Parquet, else the hub); "pyarrow" reads the
    local Parquet files directly (for machines without `datasets`); "auto" takes the first that is installed.
    """
    if backend not in ("auto", "datasets", "pyarrow"):
        raise ValueError(f"backend must be 'auto', 'datasets' or 'pyarrow', not {backend!r}")
    use_datasets = backend == "datasets"
    if backend == "auto":
        try:
            import datasets  # noqa: F401  (helpers.load_cifar10 reads through it)

            use_datasets = True
        except ImportError:
            use_datasets = False
    out: dict[str, torch.Tensor] = {}
    if use_datasets:
        ds = load_cifar10(Path(root) if root is not None else None)
        for split, size in (("train", train_size), ("test", test_size)):
            part = ds[split] if size is None else stratified_subset(ds[split], size, seed)
            out[f"x_{split}"] = images_to_tensor(part)
            out[f"y_{split}"] = torch.tensor(part["label"], dtype=torch.long)
        return out
    folder = (Path(root) if root is not None else data_dir()) / "cifar10"
    for split, size in (("train", train_size), ("test", test_size)):
        out[f"x_{split}"], out[f"y_{split}"] = read_parquet_split(folder / f"{split}.parquet", size, seed)
    return out


def subset_tensors(data: dict[str, torch.Tensor], train_size: int | None = None, test_size: int | None = None,
                   seed: int = 0) -> dict[str, torch.Tensor]:
    """Class-balanced subsets of a {x_train, y_train, x_test, y_test} dict (None keeps a split whole)."""
    out = dict(data)
    for split, size in (("train", train_size), ("test", test_size)):
        if size is not None and size < len(data[f"y_{split}"]):
            keep = torch.from_numpy(stratified_indices(data[f"y_{split}"], size, seed)).to(data[f"y_{split}"].device)
            out[f"x_{split}"], out[f"y_{split}"] = data[f"x_{split}"][keep], data[f"y_{split}"][keep]
    return out


def channel_stats(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of uint8 images, in [0, 1] units: what normalisation subtracts and divides by."""
    x = images.float().div_(255)
    return x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3))


def normalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 (N,3,H,W) -> float32 with zero mean and unit std per channel."""
    mean = mean.to(images.device).view(1, -1, 1, 1)
    std = std.to(images.device).view(1, -1, 1, 1)
    return (images.float() / 255 - mean) / std


def _reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    """Map indices that run past an edge back inside, mirror-wise (like reflect padding): -1 -> 1, size -> size-2."""
    index = index.abs()
    return torch.where(index > size - 1, 2 * (size - 1) - index, index)


def augment(images: torch.Tensor, shifts: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """Translate each image by (dy, dx) pixels (mirroring at the edges) and flip it left-right where asked.

    One gather on the uint8 images does both: the output pixel (i, j) reads input pixel
    (i + dy, j + dx), mirrored at the border; a flip reads the columns in reverse order.
    """
    n, c, h, w = images.shape
    rows = _reflect(torch.arange(h, device=images.device) + shifts[:, :1], h)  # (N, H)
    cols = _reflect(torch.arange(w, device=images.device) + shifts[:, 1:], w)  # (N, W)
    cols = torch.where(flips[:, None], cols.flip(1), cols)
    batch = torch.arange(n, device=images.device)[:, None, None, None]
    channel = torch.arange(c, device=images.device)[None, :, None, None]
    return images[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]


class GpuLoader:
    """Batches (x, y) from uint8 images that stay on the device: shuffle, augment, normalise, channels_last.

    The whole of CIFAR-10 is 150 MB as uint8, so it fits on any GPU; augmenting there avoids the CPU and
    the PCIe copy that a DataLoader would need for every batch. flip="random" flips each image with
    probability 1/2 every epoch; flip="alternating" draws that coin once and then flips every image in
    every other epoch, so each image is seen both ways in every pair of epochs.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, *, batch_size: int, mean: torch.Tensor,
                 std: torch.Tensor, train: bool = True, translate: int = 0, flip: str | None = None,
                 drop_last: bool | None = None, seed: int = 0, device: torch.device | str | None = None,
                 channels_last: bool = True):
        if flip not in (None, "random", "alternating"):
            raise ValueError(f"flip must be None, 'random' or 'alternating', not {flip!r}")
        device = torch.device(device) if device is not None else images.device
        self.images, self.labels = images.to(device), labels.to(device)
        self.batch_size, self.train = batch_size, train
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
                  if self.translate else None)
        self.epoch += 1
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            x = self.images[idx]
            if shifts is not None or (flips is not None and self.flip is not None):
                s = shifts[idx] if shifts is not None else torch.zeros(len(idx), 2, dtype=torch.long, device=device)
                f = flips[idx] if flips is not None else torch.zeros(len(idx), dtype=torch.bool, device=device)
                x = augment(x, s, f)
            x = torch.addcmul(self.shift, x.float(), self.scale).contiguous(memory_format=self.memory_format)
            yield x, self.labels[idx]


# --------------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------------


class BatchNorm(nn.BatchNorm2d):
    """BatchNorm whose scale is fixed at 1 (only the shift is learned), with fast-moving running statistics.

    momentum=0.4 weights each new batch's statistics by 0.4 (PyTorch's convention): a short training run
    has few steps, so the running averages used at test time must follow the weights quickly.
    """

    def __init__(self, channels: int, momentum: float = 0.4, eps: float = 1e-12, learn_scale: bool = False):
        super().__init__(channels, eps=eps, momentum=momentum)
        self.weight.requires_grad_(learn_scale)


class ConvGroup(nn.Module):
    """conv 3x3 -> max-pool 2x2 -> BN -> GELU -> conv 3x3 -> BN -> GELU: halves the resolution, changes the width."""

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
    """stem (2x2 conv, 24 channels) -> GELU -> three ConvGroups -> global max-pool -> linear head x logit_scale."""

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
    """Make each 3x3 conv in the groups pass its input through at start (dirac init of the first in_channels filters)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d) and module.kernel_size == (3, 3) and module.out_channels >= module.in_channels:
            with torch.no_grad():
                nn.init.dirac_(module.weight[: module.in_channels])
    return model


def image_patches(images: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Every kernel_size x kernel_size patch of every image, flattened: (N * H' * W', C * k * k)."""
    c = images.shape[1]
    patches = images.unfold(2, kernel_size, 1).unfold(3, kernel_size, 1)  # N, C, H', W', k, k
    return patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * kernel_size**2)


def whitening_filters(images: torch.Tensor, kernel_size: int = 2, eps: float = 5e-4) -> tuple[torch.Tensor, torch.Tensor]:
    """Conv filters that decorrelate image patches: eigenvectors of the patch covariance / sqrt(eigenvalue).

    Returns (filters (C*k*k, C, k, k), eigenvalues), largest eigenvalue first. Convolving normalised images
    with these filters gives channels that are uncorrelated and of (about) unit variance.
    """
    patches = image_patches(images.float(), kernel_size).double()
    patches = patches - patches.mean(dim=0)
    cov = patches.T @ patches / len(patches)
    eigenvalues, eigenvectors = torch.linalg.eigh(cov)  # ascending
    eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.flip(1)
    filters = eigenvectors.T / torch.sqrt(eigenvalues + eps)[:, None]
    c = images.shape[1]
    return filters.reshape(-1, c, kernel_size, kernel_size).float(), eigenvalues.float()


def init_whitening_(stem: nn.Conv2d, images: torch.Tensor, eps: float = 5e-4) -> nn.Conv2d:
    """Set a stem conv to the +/- whitening filters of the images' patches and freeze its weights (bias stays)."""
    filters, _ = whitening_filters(images, stem.kernel_size[0], eps)
    with torch.no_grad():
        stem.weight.copy_(torch.cat([filters, -filters]).to(stem.weight))
        stem.bias.zero_()
    stem.weight.requires_grad_(False)
    return stem


# --------------------------------------------------------------------------------------------------
# Optimisation: the learning-rate schedule, lookahead, test-time augmentation
# --------------------------------------------------------------------------------------------------


def triangular_schedule(total_steps: int, peak_at: float = 0.23, start: float = 0.2, end: float = 0.07) -> Callable[[int], float]:
    """LR multiplier per step: linear warm-up from `start` to 1 at `peak_at` of training, then down to `end`."""
    xs = [0, max(1, int(peak_at * total_steps)), total_steps]
    return lambda step: float(np.interp(step, xs, [start, 1.0, end]))


def constant_schedule(total_steps: int) -> Callable[[int], float]:
    """LR multiplier 1 throughout (the baseline the triangular schedule is compared with)."""
    return lambda step: 1.0


class Lookahead:
    """Every `every` optimizer steps, move a slow copy of the weights towards the fast ones and restart from it.

    slow <- rho * slow + (1 - rho) * fast, then fast <- slow. rho grows from 0 to decay**every over training
    (as (step / total)**power), so early training runs at full speed and late training averages over many
    steps, which removes the noise of the last SGD steps. At every epoch end the network takes the slow
    weights. Runs as an optimizer step hook, so helpers.fit needs no change.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, *, total_steps: int, steps_per_epoch: int,
                 start_step: int = 0, every: int = 5, decay: float = 0.95, power: float = 3.0):
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
                rho = self.decay**self.every * min(1.0, self.step / self.total_steps) ** self.power
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
    """Logits averaged over views: level 0 the image, 1 + its mirror image, 2 + both shifted by one pixel."""
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
    """A `forward` for helpers.evaluate/fit that applies test-time augmentation at a given level."""
    return lambda model, x: tta_logits(model, x, level)


# --------------------------------------------------------------------------------------------------
# Counting
# --------------------------------------------------------------------------------------------------


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (optionally only those that get gradients)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_flops(model: nn.Module, x: torch.Tensor) -> tuple[int, dict[str, int]]:
    """FLOPs of one forward pass (a multiply-add counts 2), total and per module, with torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False, depth=None)
    with counter, torch.no_grad():
        model(x)
    per_module = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    return counter.get_total_flops(), per_module


def layer_summary(model: nn.Module, x: torch.Tensor) -> list[dict[str, Any]]:
    """One row per leaf module in call order: name, kind, output shape, parameters, forward FLOPs (conv/linear only)."""
    rows: dict[str, dict[str, Any]] = {}
    handles = []
    for name, module in model.named_modules():
        if name and not list(module.children()):
            def hook(mod: nn.Module, inputs: Any, output: torch.Tensor, name: str = name) -> None:
                rows.setdefault(name, {"layer": name, "kind": type(mod).__name__, "output": tuple(output.shape[1:]),
                                       "params": sum(p.numel() for p in mod.parameters()), "flops": 0})
            handles.append(module.register_forward_hook(hook))
    try:
        _, per_module = count_flops(model, x)
    finally:
        for handle in handles:
            handle.remove()
    prefix = type(model).__name__ + "."
    for key, flops in per_module.items():
        if key.startswith(prefix) and key[len(prefix):] in rows:
            rows[key[len(prefix):]]["flops"] = flops
    return list(rows.values())


# --------------------------------------------------------------------------------------------------
# The recipe: one function that the notebook and the benchmark both call
# --------------------------------------------------------------------------------------------------


@dataclass
class Recipe:
    """Every setting of a training run; the defaults are the full fast recipe, each trick can be switched off."""

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
        if self.schedule not in ("triangular", "constant"):
            raise ValueError(f"schedule must be 'triangular' or 'constant', not {self.schedule!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for JSON."""
        return asdict(self)


@dataclass
class Run:
    """What one training run produced: the model, its history, accuracies and times."""

    model: nn.Module
    history: History
    recipe: Recipe
    accuracy: float
    tta_accuracy: float
    train_time_s: float
    eval_time_s: float
    tta_eval_time_s: float
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, float]:
        """The numbers, without the model."""
        return {"accuracy": self.accuracy, "tta_accuracy": self.tta_accuracy, "train_time_s": self.train_time_s,
                "eval_time_s": self.eval_time_s, "tta_eval_time_s": self.tta_eval_time_s}


class Timer:
    """Wall-clock time of a block of device work: CUDA events on a GPU (exact, no host stalls), else perf_counter."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.seconds = 0.0

    def __enter__(self) -> Timer:
        if self.cuda:
            self.start, self.end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            self.start.record()
        else:
            self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.cuda:
            self.end.record()
            torch.cuda.synchronize()
            self.seconds = self.start.elapsed_time(self.end) / 1000
        else:
            self.seconds = time.perf_counter() - self.t0


def make_model(recipe: Recipe, device: torch.device | str = "cpu") -> CifarNet:
    """The network of a recipe, on a device, in channels_last when asked (weights not yet whitened)."""
    model = CifarNet(recipe.widths, bn_momentum=recipe.bn_momentum)
    if recipe.identity_init:
        identity_init_(model)
    model = model.to(device)
    return model.to(memory_format=torch.channels_last) if recipe.channels_last else model


def make_optimizer(model: CifarNet, recipe: Recipe, total_steps: int, steps_per_epoch: int
                   ) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.LambdaLR]:
    """Nesterov SGD with three parameter groups (the weights, the BN shifts at 64x the LR, the stem bias) and a schedule."""
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
    """Train the network of a recipe with helpers.fit and evaluate it with and without TTA.

    The timed part (`train_time_s`) is what a benchmark counts: whitening statistics plus all epochs.
    `data` holds uint8 tensors (ideally already on `device`, so repeated runs share them). With
    keep_outputs, run.extra also holds the test logits without and with TTA and the labels (on the CPU).
    """
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


def ablation_recipes(base: Recipe) -> list[tuple[str, Recipe]]:
    """The tricks added one at a time: a plain baseline first, then each row adds one thing to the row above."""
    plain = replace(base, schedule="constant", label_smoothing=0.0, whiten=False, identity_init=False,
                    lookahead=False, flip="random", compile=False)
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
    """Train every recipe of `rows` once per seed and return one dict per row: mean accuracies and times.

    A row whose recipe compiles gets one extra, untimed warm-up run first; its compile time is reported as
    the warm-up's training time minus the mean of the timed ones.
    """
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
