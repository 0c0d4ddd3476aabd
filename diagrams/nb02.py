"""Diagrams of notebook 02, drawn from the real objects: a convolution, max-pooling, the CNN's shapes per stage.

Each function computes what it draws with the module it is given (nothing is typed in by hand), returns the
figure together with the numbers it shows, so the notebook can print them and tests/test_diagrams.py can
check them against the module.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Rectangle
from torch import nn

from diagrams import DPI, DiagramError, show_widget  # DPI: projector-legible, 100 dpi, no text under 8 pt


def _grid(
    ax: plt.Axes,
    values: torch.Tensor,
    *,
    fill: dict[tuple[int, int], str] | None = None,
    bold: set[tuple[int, int]] | None = None,
    faded: set[tuple[int, int]] | None = None,
    fmt: str = "{:g}",
) -> None:
    """Draw a 2-D tensor as a grid of numbered cells (row 0 at the top)."""
    fill, bold, faded = fill or {}, bold or set(), faded or set()
    h, w = values.shape
    for i in range(h):
        for j in range(w):
            colour = fill.get((i, j), "#f4f4f4" if (i, j) in faded else "white")
            ax.add_patch(Rectangle((j, h - 1 - i), 1, 1, facecolor=colour, edgecolor="0.55", lw=0.8))
            ax.text(
                j + 0.5,
                h - 0.5 - i,
                fmt.format(float(values[i, j])),
                ha="center",
                va="center",
                fontsize=9,
                color="0.6" if (i, j) in faded else "black",
                fontweight="bold" if (i, j) in bold else "normal",
            )
    ax.set_xlim(-0.1, w + 0.1)
    ax.set_ylim(-0.1, h + 0.1)
    ax.set_aspect("equal")
    ax.axis("off")


def _outline(ax: plt.Axes, top: int, left: int, size: tuple[int, int], height: int, colour: str) -> None:
    """A thick frame around the cells [top:top+size[0], left:left+size[1]] of a grid of `height` rows."""
    ax.add_patch(Rectangle((left, height - top - size[0]), size[1], size[0], fill=False, edgecolor=colour, lw=2.5))


@dataclass
class ConvolutionDiagram:
    """What draw_convolution drew: the figure, the padded input, the output and the highlighted computation."""

    figure: Figure
    padded: torch.Tensor  # (H + 2p, W + 2p): the input with its zero border
    output: torch.Tensor  # (H_out, W_out): conv(x), computed by the module
    position: tuple[int, int]
    window: torch.Tensor  # (k, k): the input values under the filter at `position`
    value: float  # output[position] = (window * kernel).sum()


def draw_convolution(conv: nn.Conv2d, x: torch.Tensor, position: tuple[int, int] = (0, 0)) -> ConvolutionDiagram:
    """Input grid, filter and output grid of a 1-channel conv, with one window and its output cell highlighted.

    Taught in 02 §2.1. `x` is an (H, W) tensor; the output is conv(x) itself, so padding and stride are the module's.
    """
    if conv.in_channels != 1 or conv.out_channels != 1 or conv.groups != 1:
        raise DiagramError("draw_convolution shows one filter on one channel: give it an nn.Conv2d(1, 1, k).")
    if x.ndim != 2:
        raise DiagramError(f"x must be one (H, W) grid, got shape {tuple(x.shape)}")
    if isinstance(conv.padding, str):
        raise DiagramError(
            "give the conv a numeric padding (e.g. padding=1 instead of 'same') so the border can be drawn"
        )
    kernel = conv.weight.detach()[0, 0]
    k_h, k_w = kernel.shape
    (p_h, p_w), (s_h, s_w) = conv.padding, conv.stride
    with torch.no_grad():
        output = conv(x[None, None].to(conv.weight.dtype))[0, 0]
    i, j = position
    if not (0 <= i < output.shape[0] and 0 <= j < output.shape[1]):
        raise DiagramError(f"position {position} is outside the output, which is {tuple(output.shape)}")
    padded = torch.nn.functional.pad(x.to(kernel.dtype), (p_w, p_w, p_h, p_h))
    top, left = i * s_h, j * s_w
    window = padded[top : top + k_h, left : left + k_w]
    value = float(output[i, j])

    fig, axes = plt.subplots(
        1,
        3,
        figsize=(8.6, 3.2),
        dpi=DPI,
        gridspec_kw={"width_ratios": [padded.shape[1], k_w + 1.5, output.shape[1] + 1]},
    )
    border = {
        (r, c)
        for r in range(padded.shape[0])
        for c in range(padded.shape[1])
        if not (p_h <= r < p_h + x.shape[0] and p_w <= c < p_w + x.shape[1])
    }
    under = {(top + r, left + c): "#ffe2b3" for r in range(k_h) for c in range(k_w)}
    _grid(axes[0], padded, fill=under, faded=border)
    _outline(axes[0], top, left, (k_h, k_w), padded.shape[0], "tab:orange")
    pad_note = f" + zero border {p_h}" if p_h or p_w else ""
    axes[0].set_title(f"input {x.shape[0]}x{x.shape[1]}{pad_note}", fontsize=10)
    _grid(axes[1], kernel, fill={(r, c): "#ffe2b3" for r in range(k_h) for c in range(k_w)})
    axes[1].set_title(f"filter {k_h}x{k_w}", fontsize=10)
    _grid(axes[2], output, fill={(i, j): "#ffe2b3"}, bold={(i, j)})
    _outline(axes[2], i, j, (1, 1), output.shape[0], "tab:orange")
    axes[2].set_title(f"output {output.shape[0]}x{output.shape[1]}", fontsize=10)
    terms = " + ".join(
        f"{float(a):g}*{float(b):g}" if float(b) >= 0 else f"{float(a):g}*({float(b):g})"
        for a, b in zip(window.flatten(), kernel.flatten())
        if float(b) != 0
    )
    fig.suptitle(f"Convolution: output[{i}, {j}] = sum(window x filter) = {terms} = {value:g}", fontsize=10)
    fig.subplots_adjust(top=0.8, bottom=0.1)
    fig.text(
        0.5,
        0.02,
        f"output size = (H + 2*padding - k) // stride + 1 = ({x.shape[0]} + {2 * p_h} - {k_h}) // {s_h} + 1"
        f" = {output.shape[0]}",
        ha="center",
        fontsize=9,
    )
    return ConvolutionDiagram(fig, padded, output, (i, j), window, value)


@dataclass
class PoolDiagram:
    """What draw_max_pool drew: the figure, the pooled output and, per output cell, where its maximum came from."""

    figure: Figure
    output: torch.Tensor  # (H_out, W_out): pool(x), computed by the module
    argmax: dict[tuple[int, int], tuple[int, int]]  # output cell -> input cell holding the maximum
    dropped: set[tuple[int, int]]  # input cells that no window covers (rounding down)


_COLOURS = ("#cfe3f7", "#d8f0d0", "#fbe0c8", "#eadcf5", "#f7d4dc", "#f3f0c2", "#d3f1ef", "#e6e6e6", "#f9d8b0")


def draw_max_pool(pool: nn.MaxPool2d, x: torch.Tensor) -> PoolDiagram:
    """Input grid with each pooling window in its own colour and its maximum in bold, next to the pooled grid.

    Taught in 02 §2.2. `x` is an (H, W) tensor; rows and columns that no window covers (odd sizes) are greyed out.
    """
    if x.ndim != 2:
        raise DiagramError(f"x must be one (H, W) grid, got shape {tuple(x.shape)}")
    k = pool.kernel_size if isinstance(pool.kernel_size, int) else pool.kernel_size[0]
    s = pool.stride if isinstance(pool.stride, int) else pool.stride[0]
    if pool.padding not in (0, (0, 0)) or pool.dilation not in (1, (1, 1)) or s != k:
        raise DiagramError(
            "draw_max_pool shows non-overlapping windows: give it nn.MaxPool2d(k) (stride k, no padding)."
        )
    with torch.no_grad():
        output, flat = nn.functional.max_pool2d(x[None, None].float(), k, return_indices=True)
        if not torch.equal(output, pool(x[None, None].float())):
            raise DiagramError("the module's output differs from max_pool2d's: is it a plain nn.MaxPool2d?")
    output, flat = output[0, 0], flat[0, 0]
    h_out, w_out = output.shape
    argmax = {(i, j): divmod(int(flat[i, j]), x.shape[1]) for i in range(h_out) for j in range(w_out)}
    fill, covered = {}, set()
    for n, (i, j) in enumerate(argmax):
        for r in range(i * k, i * k + k):
            for c in range(j * k, j * k + k):
                fill[(r, c)] = _COLOURS[n % len(_COLOURS)]
                covered.add((r, c))
    dropped = {(r, c) for r in range(x.shape[0]) for c in range(x.shape[1])} - covered

    fig, axes = plt.subplots(1, 2, figsize=(6.4, 3.0), dpi=DPI, gridspec_kw={"width_ratios": [x.shape[1], w_out + 1]})
    _grid(axes[0], x.float(), fill=fill, bold=set(argmax.values()), faded=dropped)
    for i, j in argmax:
        _outline(axes[0], i * k, j * k, (k, k), x.shape[0], "0.3")
    note = f" (grey: left out, {x.shape[0]} // {k} = {h_out})" if dropped else ""
    axes[0].set_title(f"input {x.shape[0]}x{x.shape[1]}{note}", fontsize=10)
    _grid(axes[1], output, fill={cell: _COLOURS[n % len(_COLOURS)] for n, cell in enumerate(argmax)}, bold=set(argmax))
    axes[1].set_title(f"output {h_out}x{w_out}", fontsize=10)
    fig.suptitle(f"Max-pooling {k}x{k}: each output cell is the largest value of its window (bold)", fontsize=10)
    fig.subplots_adjust(top=0.8)
    return PoolDiagram(fig, output, argmax, dropped)


@dataclass
class NetworkDiagram:
    """What draw_network drew: the figure and the (name, shape without batch, operation) of every stage."""

    figure: Figure
    stages: list[tuple[str, tuple[int, ...], str]]


def network_stages(model: nn.Module, x: torch.Tensor) -> list[tuple[str, tuple[int, ...], str]]:
    """Shapes (without the batch) of a CifarNet's tensors from input to logits, recorded by forward hooks.

    Taught in 02 §2.5: input -> stem -> each conv group -> global max-pool -> linear head.
    """
    for part in ("stem", "groups", "head"):
        if not hasattr(model, part):
            raise DiagramError(f"network_stages draws a CifarNet (stem, groups, head); this model has no .{part}")
    shapes: dict[str, tuple[int, ...]] = {}

    def keep(name: str, of_input: bool = False):
        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            shapes[name] = tuple((inputs[0] if of_input else output).shape[1:])

        return hook

    modules = [("stem", model.stem), *((f"group {n + 1}", g) for n, g in enumerate(model.groups))]
    handles = [m.register_forward_hook(keep(name)) for name, m in modules]
    handles.append(model.head.register_forward_hook(keep("global max-pool", of_input=True)))
    handles.append(model.head.register_forward_hook(keep("head")))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            logits = model(x)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    stem = model.stem
    ops = {
        "stem": f"conv {stem.kernel_size[0]}x{stem.kernel_size[1]}, no padding + GELU",
        "global max-pool": "max over positions",
        "head": f"linear (x {Fraction(model.logit_scale).limit_denominator(100)})"
        if hasattr(model, "logit_scale")
        else "linear",
    }
    stages = [("input", tuple(x.shape[1:]), "")]
    for name, _ in modules:
        stages.append((name, shapes[name], ops.get(name, "conv 3x3, max-pool 2x2, BN, GELU, conv 3x3, BN, GELU")))
    stages.append(("global max-pool", shapes["global max-pool"], ops["global max-pool"]))
    stages.append(("head", tuple(logits.shape[1:]), ops["head"]))
    return stages


def draw_network(model: nn.Module, x: torch.Tensor) -> NetworkDiagram:
    """The CNN as a row of boxes, one per tensor: height ~ pixels per side, width ~ log(channels), shapes under each.

    Taught in 02 §2.5; the shapes come from a forward pass of `model` on `x` (network_stages).
    """
    import math

    stages = network_stages(model, x)
    fig, ax = plt.subplots(figsize=(10.5, 3.4), dpi=DPI)
    max_side = max(s[1][1] if len(s[1]) == 3 else 1 for s in stages)
    xpos, centres = 0.0, []
    for name, shape, _ in stages:
        channels = shape[0]
        side = shape[1] if len(shape) == 3 else 1
        width = 0.25 + 0.22 * math.log2(channels)
        height = 0.35 + 2.2 * side / max_side
        colour = "#cfe3f7" if len(shape) == 3 else "#fbe0c8"
        ax.add_patch(Rectangle((xpos, -height / 2), width, height, facecolor=colour, edgecolor="0.3"))
        ax.text(xpos + width / 2, height / 2 + 0.12, name, ha="center", va="bottom", fontsize=9)
        label = f"{channels} ch, " + "x".join(str(d) for d in shape[1:]) if len(shape) == 3 else f"{channels} numbers"
        ax.text(xpos + width / 2, -height / 2 - 0.12, f"{shape}\n{label}", ha="center", va="top", fontsize=8)
        centres.append((xpos, xpos + width))
        xpos += width + 1.35
    for (_, right), (left, _), (_, _, op) in zip(centres[:-1], centres[1:], stages[1:]):
        ax.add_patch(
            FancyArrowPatch((right + 0.05, 0), (left - 0.05, 0), arrowstyle="-|>", mutation_scale=10, color="0.3")
        )
        short = {"conv 3x3, max-pool 2x2, BN, GELU, conv 3x3, BN, GELU": "ConvGroup"}.get(op, op)
        ax.text(
            (right + left) / 2,
            0.08,
            short.replace(", ", "\n").replace(" + ", "\n+ ").replace("over ", "over\n"),
            ha="center",
            va="bottom",
            fontsize=8,
            color="0.25",
        )
    ax.set_xlim(-0.3, xpos - 0.9)
    ax.set_ylim(-2.2, 1.8)
    ax.axis("off")
    ax.set_title(
        f"{type(model).__name__}: tensor shapes (channels, height, width) of one image, from a forward pass\n"
        "ConvGroup = conv 3x3, max-pool 2x2, BN, GELU, conv 3x3, BN, GELU",
        fontsize=9,
    )
    fig.tight_layout()
    return NetworkDiagram(fig, stages)


# ---- 02 §3.1: what the training loader does to one image, epoch by epoch (an interactive view) --------------------


@dataclass
class AugmentationViews:
    """What draw_augmentations drew: the figure, each epoch's view as the loader yields it, and its shift and flip."""

    figure: Figure
    views: torch.Tensor  # (epochs, 3, 32, 32) uint8: the loader's batches, de-normalised
    shifts: list[tuple[int, int]]  # (dy, dx) per epoch
    flips: list[bool]  # mirrored in that epoch?


def augmentation_views(
    image: torch.Tensor,
    mean: torch.Tensor,
    std: torch.Tensor,
    *,
    epochs: int = 8,
    flip: str | None = "random",
    translate: int = 2,
    seed: int = 0,
) -> tuple[torch.Tensor, list[tuple[int, int]], list[bool]]:
    """One uint8 image (3, H, W) as a one-image training GpuLoader yields it in epochs 0..epochs-1 (set_epoch).

    Returns the views (uint8 again) and, per epoch, the shift and flip that cifar.augment applies to give it.
    """
    from helpers import cifar

    if image.ndim != 3 or image.dtype != torch.uint8:
        raise DiagramError(f"give one uint8 image of shape (3, H, W), got {image.dtype} {tuple(image.shape)}")
    loader = cifar.GpuLoader(
        image[None],
        torch.zeros(1, dtype=torch.long),
        batch_size=1,
        mean=mean,
        std=std,
        translate=translate,
        flip=flip,
        drop_last=False,
        seed=seed,
        channels_last=False,
    )
    views, shifts, flips = [], [], []
    for epoch in range(epochs):
        loader.set_epoch(epoch)  # the epoch's augmentation comes from (seed, epoch)
        x, _ = next(iter(loader))
        views.append((cifar.denormalize(x, mean, std) * 255).round().to(torch.uint8)[0].cpu())
        shift, flipped = loader.augmentation(epoch)  # what the loader applied to each image (here: the one)
        shifts.append((int(shift[0, 0]), int(shift[0, 1])))
        flips.append(bool(flipped[0]))
    return torch.stack(views), shifts, flips


def draw_augmentations(
    image: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, *, title: str = "", **options: Any
) -> AugmentationViews:
    """augmentation_views(image, mean, std, **options) in a row, labelled with epoch, shift and flip. 02 §3.1."""
    views, shifts, flips = augmentation_views(image, mean, std, **options)
    epochs, flip, translate = len(views), options.get("flip", "random"), options.get("translate", 2)
    fig, axes = plt.subplots(1, epochs, figsize=(1.05 * epochs, 1.75), dpi=DPI, squeeze=False)
    for e, ax in enumerate(axes[0]):
        ax.imshow(views[e].permute(1, 2, 0).numpy(), interpolation="nearest")
        dy, dx = shifts[e]
        ax.set_title(f"epoch {e}\n({dy:+d}, {dx:+d}){' flip' if flips[e] else ''}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(
        title or f"flip={flip!r}, translate={translate}: one image in {epochs} epochs (shift dy, dx in pixels)",
        fontsize=10,
    )
    fig.tight_layout()
    return AugmentationViews(fig, views, shifts, flips)


# ---- 02 §5: what test-time augmentation asks the network, view by view (an interactive view) ----------------------


@dataclass
class TTAViews:
    """What draw_tta_views drew: the figure, each view's name, weight and class probabilities, and TTA's verdict."""

    figure: Figure
    names: list[str]
    weights: list[float]
    probabilities: torch.Tensor  # (views, classes): softmax of each view's logits
    averaged: torch.Tensor  # (classes,): softmax of the weighted mean of the views' logits, what cifar.tta_logits gives


def draw_tta_views(
    model: nn.Module,
    image: torch.Tensor,
    mean: torch.Tensor,
    std: torch.Tensor,
    classes: list[str],
    *,
    label: int | None = None,
    level: int = 2,
) -> TTAViews:
    """The views cifar.tta_views makes of one uint8 test image, each with its top classes, and TTA's average. 02 §5."""
    from helpers import cifar

    if image.ndim != 3 or image.dtype != torch.uint8:
        raise DiagramError(f"give one uint8 image of shape (3, H, W), got {image.dtype} {tuple(image.shape)}")
    device = next(model.parameters()).device
    x = cifar.normalize(image[None].to(device), mean, std)
    views = cifar.tta_views(x, level)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        logits = torch.stack([model(view)[0].float() for _, _, view in views])
    model.train(was_training)
    weights = torch.tensor([w for _, w, _ in views], device=logits.device)
    probabilities, averaged = logits.softmax(-1).cpu(), (weights[:, None] * logits).sum(0).softmax(-1).cpu()
    fig, axes = plt.subplots(1, len(views) + 1, figsize=(1.45 * (len(views) + 1), 2.5), dpi=DPI, squeeze=False)
    for ax, (name, weight, view), p in zip(axes[0], views, probabilities):
        ax.imshow(cifar.denormalize(view, mean, std)[0].permute(1, 2, 0).cpu(), interpolation="nearest")
        top = p.topk(2)
        ax.set_title(f"{name.replace(' ', chr(10), 1)}\nweight {weight:g}", fontsize=8)
        ax.set_xlabel("\n".join(f"{classes[int(i)]} {v:.2f}" for v, i in zip(top.values, top.indices)), fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    last = axes[0][-1]
    top = averaged.topk(3)
    last.barh(range(3)[::-1], top.values.numpy(), color="tab:blue")
    last.set_yticks(range(3)[::-1], [classes[int(i)] for i in top.indices], fontsize=8)
    last.set_xlim(0, 1)
    last.tick_params(axis="x", labelsize=8)
    last.set_title("TTA (weighted\nmean of logits)", fontsize=8)
    truth = f"; true class: {classes[label]}" if label is not None else ""
    fig.suptitle(f"What each TTA view says about one test image (its two most likely classes){truth}", fontsize=9)
    fig.tight_layout()
    return TTAViews(fig, [n for n, _, _ in views], [w for _, w, _ in views], probabilities, averaged)


class TTAExplorer:
    """Standard ipywidgets over draw_tta_views: a slider over test images, each drawn with its TTA views. 02 §5.

    `widget` is what the notebook displays; `shown` is the TTAViews on show, so a test can move the slider and read
    what changed.
    """

    def __init__(
        self,
        model: nn.Module,
        images: torch.Tensor,
        labels: torch.Tensor,
        mean: torch.Tensor,
        std: torch.Tensor,
        classes: list[str],
    ) -> None:
        import ipywidgets as widgets

        self.model, self.images, self.labels, self.mean, self.std, self.classes = (
            model,
            images,
            labels,
            mean,
            std,
            classes,
        )
        self.image = widgets.IntSlider(
            value=0, min=0, max=len(images) - 1, description="test image", continuous_update=False
        )
        self.view = widgets.Output()
        self.widget = widgets.VBox([self.image, self.view])
        self.shown: TTAViews | None = None
        self.image.observe(lambda change: self.redraw(), names="value")
        self.redraw()

    def redraw(self) -> TTAViews:
        """Draw the selected image's views into the view."""
        from IPython.display import display

        i = self.image.value
        self.shown = draw_tta_views(
            self.model, self.images[i], self.mean, self.std, self.classes, label=int(self.labels[i])
        )
        self.view.clear_output(wait=True)
        with self.view:
            display(self.shown.figure)
        plt.close(self.shown.figure)
        return self.shown

    def _ipython_display_(self) -> None:
        """Show the widget; a notebook saved without widget state keeps only the text/plain line below."""
        show_widget(
            self.widget,
            "[a TTA viewer: a slider over the test images whose prediction TTA changed, each with its six views and "
            "their probabilities; it moves in JupyterLab, Colab or VS Code with a running kernel]",
        )
