"""Checks of notebook 02's exercises: behaviour (counts, values, shapes, what an augmentation does), never code text.

Accuracy bounds are checked only at a profile's real sizes (`cpu`, `gpu` without COURSE_TINY): at smoke or tiny
sizes a few hundred images train for a few steps and the numbers mean nothing, so only their form is checked.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from exercises import Checker
from helpers.device import autocast_dtype

BOUNDS: dict[str, dict[str, float]] = {
    # What the intended solutions reach, with margin (measured values and their noise are in the notebook).
    "cpu": {"cutout_min_accuracy": 0.20, "epochs_min_gain": 0.05, "tta_level2_vs_0": -0.01},
    "gpu": {"cutout_min_accuracy": 0.80, "epochs_min_gain": 0.01, "tta_level2_vs_0": -0.005},
}
"""Per profile: the validation accuracy the Cutout run must reach, the gain from the fewest to the most epochs
in exercise 6, and how far TTA level 2 may fall below level 0 in exercise 3 (it should not)."""


def _real_sizes() -> str | None:
    """The profile whose bounds apply, or None at smoke/tiny sizes (where accuracies carry no lesson)."""
    from helpers import profiles

    profile = profiles.get_profile()
    return None if profile == "smoke" or profiles.tiny() else profile


def _is_number(value: Any) -> bool:
    """A finite real number (a Python or NumPy scalar, or a one-element tensor)."""
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


# --------------------------------------------------------------------------------------------------
# Exercise 1: parameters and FLOPs of a convolution by hand
# --------------------------------------------------------------------------------------------------


def check_conv_cost(
    params_by_hand: Any,
    flops_by_hand: Any,
    channels_in: int = 64,
    channels_out: int = 256,
    kernel: int = 3,
    side: int = 15,
) -> bool:
    """Exercise 1 (02 §2.1, §2.5): the hand counts equal what the module holds and what FlopCounterMode counts.

    The notebook asks about a layer that §2.5's table does not print (128 -> 256 channels on a 16x16 map), so
    the answer is not on the page before the exercise; the defaults are group 2's first convolution.
    """
    from torch.utils.flop_counter import FlopCounterMode

    c = Checker("Exercise 1 (parameters and FLOPs of a convolution)")
    if c.unanswered(
        params_by_hand is None or flops_by_hand is None,
        "parameters: one weight per (output channel, input channel, filter row, filter column)",
    ):
        return c.verdict()
    conv = nn.Conv2d(channels_in, channels_out, kernel, padding="same", bias=False)
    params = sum(p.numel() for p in conv.parameters())
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        conv(torch.zeros(1, channels_in, side, side))
    flops = counter.get_total_flops()
    c.check(
        _is_number(params_by_hand) and int(params_by_hand) == params,
        "the parameter count is right",
        "the layer has no bias"
        if _is_number(params_by_hand) and int(params_by_hand) == params + channels_out
        else f"count the weights: out_channels x in_channels x {kernel} x {kernel}",
    )
    if _is_number(flops_by_hand) and int(flops_by_hand) * 2 == flops:
        hint = "a multiply-add counts as 2 FLOPs"
    elif _is_number(flops_by_hand) and int(flops_by_hand) == 2 * params * (side - kernel + 1) ** 2:
        hint = f'padding="same" keeps the map at {side}x{side}: count the output values of a {side}x{side} map'
    else:
        hint = (
            f"each output value needs in_channels x {kernel} x {kernel} multiply-adds; "
            f"there are out_channels x {side} x {side} of them"
        )
    c.check(_is_number(flops_by_hand) and int(flops_by_hand) == flops, "the FLOP count is right", hint)
    return c.verdict()


# --------------------------------------------------------------------------------------------------
# Exercise 2: the most confused pair of classes
# --------------------------------------------------------------------------------------------------


def check_most_confused(
    labels: torch.Tensor,
    predictions: torch.Tensor,
    pair: Any,
    pair_count: Any,
    reverse_count: Any,
    num_classes: int = 10,
) -> bool:
    """Exercise 2 (02 §5): (true a, predicted b) is a largest off-diagonal cell; both counts match the data."""
    c = Checker("Exercise 2 (the most confused pair)")
    if c.unanswered(pair is None, "set the diagonal of a copy of the counts to 0, then find its largest entry"):
        return c.verdict()
    y, p = torch.as_tensor(labels).cpu().long(), torch.as_tensor(predictions).cpu().long()
    counts = torch.bincount(y * num_classes + p, minlength=num_classes**2).view(num_classes, num_classes)
    off = counts.clone()
    off.fill_diagonal_(0)
    ok_form = isinstance(pair, Sequence) and len(pair) == 2 and all(_is_number(v) for v in pair)
    c.check(ok_form, "pair is two class indices (a, b)", "pair = (a, b) with a the true class, b the predicted one")
    if not ok_form:
        return c.verdict()
    a, b = (int(v) for v in pair)
    inside = 0 <= a < num_classes and 0 <= b < num_classes
    c.check(inside and a != b, "a and b are two different classes", "ignore the diagonal: it counts the right answers")
    if not (inside and a != b):
        return c.verdict()
    c.check(
        int(off[a, b]) == int(off.max()),
        f"({a}, {b}) is the largest off-diagonal cell ({int(off.max())} images)",
        "rows are the true class and columns the prediction; look at every off-diagonal cell, not one row",
    )
    c.check(
        _is_number(pair_count) and int(pair_count) == int(counts[a, b]),
        f"pair_count is the number of class {a} images predicted as {b}",
        "read counts[a, b]",
    )
    c.check(
        _is_number(reverse_count) and int(reverse_count) == int(counts[b, a]),
        f"reverse_count is the number of class {b} images predicted as {a}",
        "read counts[b, a]: the mirror cell",
    )
    return c.verdict()


# --------------------------------------------------------------------------------------------------
# Exercise 3: what each level of TTA buys
# --------------------------------------------------------------------------------------------------


def _reference_tta_logits(model: nn.Module, x: torch.Tensor, level: int) -> torch.Tensor:
    """TTA as 02 §4.7 defines it, written out independently of helpers: the check's ground truth."""
    views = [(x, 1.0)]
    if level >= 1:
        views = [(x, 0.5), (x.flip(-1), 0.5)]
    if level >= 2:
        padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
        up_left, down_right = padded[..., :-2, :-2], padded[..., 2:, 2:]
        views = [(v, w * 0.5) for v, w in views]
        views += [(v, 0.125) for v in (up_left, up_left.flip(-1), down_right, down_right.flip(-1))]
    return sum(w * model(v).float() for v, w in views)


def check_tta_accuracies(
    tta_accuracies: Callable | None, model: nn.Module, loader: Iterable, images: int = 200
) -> bool:
    """Exercise 3 (02 §4.7): the learner's function gives the accuracy of TTA levels 0-2 on a slice of the loader."""
    c = Checker("Exercise 3 (what each level of TTA buys)")
    if c.unanswered(
        tta_accuracies is None,
        "a function (model, loader) -> {level: accuracy} that calls helpers' evaluate once per level",
    ):
        return c.verdict()
    x, y = next(iter(loader))
    small = [(x[:images], y[:images])]
    model.eval()
    device = next(model.parameters()).device
    dtype = autocast_dtype(device)  # the precision helpers.evaluate runs in: bf16 rounding flips near-ties otherwise
    with torch.no_grad(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        expected = {
            level: (_reference_tta_logits(model, small[0][0], level).argmax(1) == small[0][1]).float().mean().item()
            for level in (0, 1, 2)
        }
    try:
        got = tta_accuracies(model, small)
        error = None
    except Exception as exc:  # a finding about the learner's code, reported as a failed criterion
        got, error = None, exc
    c.check(
        error is None,
        "tta_accuracies(model, loader) runs" + (f" (it raised {type(error).__name__}: {error})" if error else ""),
        "it gets a model and any iterable of (images, labels) batches",
    )
    if error is not None:
        return c.verdict()
    ok_form = isinstance(got, Mapping) and set(got) == {0, 1, 2} and all(_is_number(v) for v in got.values())
    c.check(ok_form, "it returns {0: accuracy, 1: accuracy, 2: accuracy}", "return a dict keyed by the level")
    if not ok_form:
        return c.verdict()
    tol = 3 / len(small[0][1]) + 1e-9  # batching may still flip a prediction or two under 16-bit autocast
    for level in (0, 1, 2):
        c.check(
            abs(float(got[level]) - expected[level]) <= tol,
            f"level {level}: accuracy {float(got[level]):.3f} on {images} images (expected {expected[level]:.3f})",
            f"use forward=cifar.tta_forward({level}) in the evaluation, and report accuracy as a fraction",
        )
    return c.verdict()


def check_tta_result(results: Mapping[int, float] | None) -> bool:
    """Exercise 3's measured accuracies on the validation images: three fractions, TTA no worse than none."""
    c = Checker("Exercise 3 (the measured levels)")
    if c.unanswered(results is None, "call your tta_accuracies on the exercise loader and keep the dict"):
        return c.verdict()
    ok_form = (
        isinstance(results, Mapping)
        and set(results) == {0, 1, 2}
        and all(_is_number(v) and 0 <= float(v) <= 1 for v in results.values())
    )
    c.check(ok_form, "three accuracies between 0 and 1", "keep the dict that tta_accuracies returned")
    profile = _real_sizes()
    if ok_form and profile is not None:
        bound = BOUNDS[profile]["tta_level2_vs_0"]
        c.check(
            float(results[2]) - float(results[0]) >= bound,
            f"level 2 is not worse than level 0 (by more than {-bound:.1%})",
            "evaluate the final model (not the baseline), with the validation images normalised like in training",
        )
    return c.verdict()


# --------------------------------------------------------------------------------------------------
# Exercise 4: whitening with 3x3 patches
# --------------------------------------------------------------------------------------------------


def check_whitening3(x: torch.Tensor, filters3: Any, eigenvalues3: Any, top3_fraction: Any) -> bool:
    """Exercise 4 (02 §4.3): 27 filters of shape (3, 3, 3) from the 3x3 patch covariance, and its variance share."""
    c = Checker("Exercise 4 (whitening with 3x3 patches)")
    if c.unanswered(
        filters3 is None or eigenvalues3 is None or top3_fraction is None,
        "cifar.whitening_filters(x_ex, kernel_size=3) returns the filters and the eigenvalues",
    ):
        return c.verdict()
    c.check(
        isinstance(filters3, torch.Tensor) and tuple(filters3.shape) == (27, 3, 3, 3),
        "27 filters of shape (3, 3, 3)",
        "a 3x3 patch of 3 channels has 27 numbers: one filter per direction",
    )
    patches = x.double().unfold(2, 3, 1).unfold(3, 3, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, 27)
    patches = patches - patches.mean(dim=0)
    expected = torch.linalg.eigvalsh(patches.T @ patches / len(patches)).flip(0)
    ev = (
        torch.as_tensor(eigenvalues3).double().cpu().flatten()
        if isinstance(eigenvalues3, (torch.Tensor, np.ndarray, list))
        else None
    )
    c.check(
        ev is not None and len(ev) == 27 and torch.allclose(ev, expected, rtol=1e-3, atol=1e-6),
        "the eigenvalues are those of the 3x3 patch covariance, largest first",
        "compute them from the normalised images x_ex with kernel_size=3",
    )
    if isinstance(filters3, torch.Tensor) and tuple(filters3.shape) == (27, 3, 3, 3):
        out = F.conv2d(x.double(), filters3.double().to(x.device)).permute(0, 2, 3, 1).reshape(-1, 27)
        out = out - out.mean(dim=0)
        cov = out.T @ out / len(out)
        off = (cov - torch.diag(torch.diagonal(cov))).abs().max().item()
        c.check(
            off < 1e-3 and torch.diagonal(cov).max().item() < 1.01,
            "the filters whiten: their outputs are uncorrelated, with variance at most 1",
            "use the filters whitening_filters returns, unchanged",
        )
    share = float(expected[:3].sum() / expected.sum())
    c.check(
        _is_number(top3_fraction) and abs(float(top3_fraction) - share) < 1e-3,
        "top3_fraction is the share of the variance in the first 3 directions of 3x3 patches",
        "the sum of the 3 largest eigenvalues over the sum of all 27, as a fraction (not a percentage)",
    )
    return c.verdict()


# --------------------------------------------------------------------------------------------------
# Exercise 5: Cutout
# --------------------------------------------------------------------------------------------------


def _erased_squares(before: torch.Tensor, after: torch.Tensor) -> list[tuple[int, int, int, int] | None]:
    """Per image: the bounding box (top, bottom, left, right) of the pixels that became 0, or None."""
    boxes = []
    for b, a in zip(before, after):
        changed = (a != b).any(dim=0)
        if not changed.any():
            boxes.append(None)
            continue
        rows, cols = changed.any(dim=1).nonzero().flatten(), changed.any(dim=0).nonzero().flatten()
        boxes.append((int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])))
    return boxes


def check_cutout(cutout: Callable, size: int = 8, device: torch.device | str = "cpu") -> bool:
    """Exercise 5, part 1 (02 §3.1's augmentations): one size x size square per image set to 0, input untouched."""
    c = Checker("Exercise 5 (Cutout)")
    torch.manual_seed(0)
    x = torch.randn(64, 3, 32, 32, device=device) + 5.0  # no pixel is 0 before cutout
    original = x.clone()
    try:
        out = cutout(x, size)
        error = None
    except Exception as exc:  # reported as the first criterion
        out, error = None, exc
    if c.unanswered(
        error is None and isinstance(out, torch.Tensor) and torch.equal(out, original) and torch.equal(x, original),
        "build a (N, 1, 32, 32) boolean mask from random centres and use x.masked_fill(mask, 0)",
    ):
        return c.verdict()
    c.check(
        error is None and isinstance(out, torch.Tensor) and out.shape == x.shape and out.device == x.device,
        "cutout(x, 8) returns a tensor of x's shape on x's device"
        + (f" (it raised {type(error).__name__}: {error})" if error else ""),
        "return x.masked_fill(mask, 0.0), which has x's shape",
    )
    if error is not None or not isinstance(out, torch.Tensor) or out.shape != x.shape:
        return c.verdict()
    c.check(torch.equal(x, original), "x itself is not modified", "masked_fill (no underscore) returns a copy")
    changed = out != original
    c.check(
        bool((out[changed] == 0).all()),
        "erased pixels are set to 0 (the mean after normalisation)",
        "fill with 0.0, not with random values",
    )
    c.check(
        bool((changed.any(dim=1, keepdim=True) == changed).all()),
        "all three colour channels are erased together",
        "one (N, 1, H, W) mask broadcasts over the channels",
    )
    boxes = _erased_squares(original, out)
    c.check(all(b is not None for b in boxes), "every image has an erased region", "draw one centre per image")
    full = [b for b in boxes if b is not None and b[0] > 0 and b[1] < 31 and b[2] > 0 and b[3] < 31]
    squares = all(
        b is not None and (b[1] - b[0] + 1) * (b[3] - b[2] + 1) == int(changed[i, 0].sum()) for i, b in enumerate(boxes)
    )
    c.check(
        squares,
        "each erased region is one filled rectangle",
        "erase every pixel whose row AND column are near the centre",
    )
    c.check(
        bool(full) and all(b[1] - b[0] + 1 == b[3] - b[2] + 1 and abs((b[1] - b[0] + 1) - size) <= 1 for b in full),
        f"away from the border the erased square is about {size}x{size}",
        "|row - centre| <= size // 2 and the same for the column",
    )
    clipped = [b for b in boxes if b is not None and b not in full]
    c.check(
        len({b[:3:2] for b in boxes if b is not None}) > 10 and len(clipped) > 0,
        "the squares sit at random places, and may run over the border (then they are clipped)",
        "draw the centres with torch.randint over the whole image, one per image",
    )
    again = cutout(original.clone(), size)
    c.check(not torch.equal(again, out), "two calls erase different squares", "draw new random centres in every call")
    return c.verdict()


def check_cutout_training(loader: Iterable, accuracy: Any, size: int = 8) -> bool:
    """Exercise 5, part 2: the loader's batches carry erased squares, and the run trained (a real accuracy)."""
    c = Checker("Exercise 5 (training with Cutout)")
    try:
        x, _ = next(iter(loader))
        error = None
    except Exception as exc:  # reported below
        x, error = None, exc
    c.check(
        error is None,
        "the loader yields (images, labels) batches"
        + (f" (it raised {type(error).__name__}: {error})" if error else ""),
        "in __iter__, wrap the parent's batches: ((cutout(x), y) for x, y in super().__iter__())",
    )
    if error is not None:
        return c.verdict()
    zero = (x == 0).all(dim=1)  # (N, H, W): pixels erased in every channel (normalised images are almost never 0)
    per_image = zero.flatten(1).sum(dim=1)
    if c.unanswered(not bool(per_image.any()), "CutoutLoader.__iter__ must pass every batch through cutout"):
        return c.verdict()
    c.check(
        bool((per_image > 0).float().mean() > 0.9),
        "(almost) every image of a batch has an erased region",
        "apply cutout to every batch the parent loader yields",
    )
    c.check(
        bool(per_image.max() <= (size + 1) ** 2),
        f"no image loses more than a {size + 1}x{size + 1} square",
        "one square per image, not one per channel or per batch",
    )
    c.check(
        _is_number(accuracy) and 0 <= float(accuracy) <= 1,
        "cutout_accuracy is a validation accuracy between 0 and 1",
        "keep helpers.evaluate(...)['accuracy'] of the model trained with your loader",
    )
    profile = _real_sizes()
    if profile is not None and _is_number(accuracy):
        bound = BOUNDS[profile]["cutout_min_accuracy"]
        c.check(
            float(accuracy) >= bound,
            f"the Cutout run reaches at least {bound:.0%} (it trained)",
            "train with the optimizer and schedule of section 3.2 for the table's epochs, on the table's images",
        )
    return c.verdict()


# --------------------------------------------------------------------------------------------------
# Exercise 6: how far can the epochs go down?
# --------------------------------------------------------------------------------------------------


def check_epoch_curve(points: Any) -> bool:
    """Exercise 6 (02 §4): (epochs, seconds, accuracy) for 3+ budgets; more epochs take longer and reach more."""
    c = Checker("Exercise 6 (accuracy against training time)")
    if c.unanswered(not points, "append (epochs, run.train_time_s, run.tta_accuracy) for every number of epochs"):
        return c.verdict()
    ok_form = isinstance(points, Sequence) and all(
        isinstance(p, Sequence) and len(p) == 3 and all(_is_number(v) for v in p) for p in points
    )
    c.check(
        ok_form and len(points) >= 3,
        "at least 3 points, each (epochs, seconds, accuracy)",
        "one tuple per run, in the order (epochs, seconds, accuracy)",
    )
    if not (ok_form and len(points) >= 3):
        return c.verdict()
    pts = sorted((int(e), float(t), float(a)) for e, t, a in points)
    c.check(
        len({e for e, _, _ in pts}) == len(pts),
        "every point has its own number of epochs",
        "use a different number of epochs for each run",
    )
    c.check(all(0 <= a <= 1 for _, _, a in pts), "accuracies are fractions between 0 and 1", "use run.tta_accuracy")
    c.check(
        pts[-1][1] > pts[0][1],
        "the most epochs take longer than the fewest",
        "use run.train_time_s (the training time), not the evaluation time",
    )
    profile = _real_sizes()
    if profile is not None:
        gain = BOUNDS[profile]["epochs_min_gain"]
        c.check(
            pts[-1][2] - pts[0][2] >= gain,
            f"{pts[-1][0]} epochs beat {pts[0][0]} by at least {gain:.0%} (fewer epochs cost accuracy)",
            "change only the epochs between runs (dataclasses.replace(RECIPE, epochs=e)), same data and seed",
        )
    return c.verdict()
