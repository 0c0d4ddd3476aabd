"""Notebook 01's diagrams: broadcasting (§1.4), the graph of the `Value` engine (§3), gradient descent (§4.2)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyBboxPatch, Patch, Rectangle

from diagrams import DiagramError, new_figure, show_widget
from helpers.plot import LABEL_PT, MIN_FONT_PT, PROJECTOR_DPI

OP_RADIUS = 0.26  # of the circle drawn for an operation, in data units (x and y scale alike)
MAX_SIDE = 8  # cells per side in the broadcasting picture; more would not be readable


@dataclass
class BroadcastPanel:
    """One drawn operand or result: its own shape, the shape it is drawn at, how many cells are stored."""

    label: str
    shape: tuple[int, ...]
    drawn_shape: tuple[int, int]
    stored_cells: int


def _as_2d(t: torch.Tensor) -> torch.Tensor:
    """A 0-, 1- or 2-D tensor as 2-D by broadcasting's rule 1 (missing dimensions on the left are size 1)."""
    if t.ndim > 2:
        raise DiagramError(f"draw_broadcasting draws tensors of at most 2 dimensions, got shape {tuple(t.shape)}")
    return t.reshape((1,) * (2 - t.ndim) + tuple(t.shape))


def _draw_cells(ax: plt.Axes, t: torch.Tensor, out_shape: tuple[int, int], color: str, title: str, width: int) -> int:
    """Draw t stretched to out_shape: stored cells solid, broadcast copies faded and dashed; count the stored."""
    view = _as_2d(t).expand(out_shape)  # a real broadcast view: stride 0 along stretched dimensions
    stored = 0
    for i in range(out_shape[0]):
        for j in range(out_shape[1]):
            real = (view.stride(0) != 0 or i == 0) and (view.stride(1) != 0 or j == 0)
            stored += real
            ax.add_patch(
                Rectangle(
                    (j, i),
                    1,
                    1,
                    facecolor=color,
                    alpha=0.85 if real else 0.2,
                    edgecolor="black",
                    linestyle="-" if real else "--",
                )
            )
            ax.text(
                j + 0.5,
                i + 0.5,
                f"{view[i, j].item():g}",
                ha="center",
                va="center",
                fontsize=LABEL_PT,
                color="black" if real else "gray",
            )
    ax.set_xlim(0, width)
    ax.set_ylim(max(out_shape[0], 2), 0)  # row 0 at the top, as tensors print
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title(title, fontsize=LABEL_PT)
    return stored


def draw_broadcasting(pairs: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> tuple[Figure, list[list[BroadcastPanel]]]:
    """One row per pair (a, b): a and b stretched to the broadcast shape, then a + b. Taught in 01 §1.4."""
    if not pairs:
        raise DiagramError("draw_broadcasting needs at least one (a, b) pair of tensors")
    shapes = []
    for a, b in pairs:
        try:
            out = torch.broadcast_shapes(a.shape, b.shape)
        except RuntimeError as error:
            raise DiagramError(f"shapes {tuple(a.shape)} and {tuple(b.shape)} do not broadcast: {error}") from None
        if len(out) > 2 or max(out, default=1) > MAX_SIDE:
            raise DiagramError(f"broadcast shape {tuple(out)}: draw at most 2-D and {MAX_SIDE} cells per side")
        shapes.append(tuple(_as_2d(torch.empty(out)).shape))
    width = max(s[1] for s in shapes)
    fig, axes = plt.subplots(
        len(pairs),
        3,
        figsize=(3.2 * 3, 0.65 * sum(max(s[0], 2) for s in shapes) + 1.4),
        dpi=PROJECTOR_DPI,
        squeeze=False,
        gridspec_kw=dict(height_ratios=[max(s[0], 2) for s in shapes]),
    )
    rows: list[list[BroadcastPanel]] = []
    for (a, b), out_shape, row_axes in zip(pairs, shapes, axes):
        panels = []
        for ax, (t, color, name) in zip(
            row_axes, ((a, "tab:blue", "a"), (b, "tab:orange", "b"), (a + b, "tab:green", "a + b"))
        ):
            shape = tuple(t.shape)
            title = f"{'= ' if name == 'a + b' else '+ ' if name == 'b' else ''}{name}: shape {shape}" + (
                f"\nstretched to {out_shape}" if _as_2d(t).shape != out_shape else ""
            )
            stored = _draw_cells(ax, t, out_shape, color, title, width)
            panels.append(BroadcastPanel(name, shape, out_shape, stored))
        rows.append(panels)
    fig.legend(
        handles=[
            Patch(facecolor="gray", alpha=0.85, edgecolor="black", label="stored in memory"),
            Patch(facecolor="gray", alpha=0.2, edgecolor="black", linestyle="--", label="broadcast copy (no memory)"),
        ],
        loc="lower center",
        ncol=2,
        fontsize=LABEL_PT,
    )
    fig.suptitle(
        "Broadcasting: "
        + "  and  ".join(
            f"{tuple(a.shape)} + {tuple(b.shape)} -> {tuple(torch.broadcast_shapes(a.shape, b.shape))}"
            for a, b in pairs
        ),
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0.07, 1, 1), h_pad=1.5)
    return fig, rows


@dataclass
class ValueGraph:
    """The graph below a root `Value`: nodes in topological order (leaves first) and parent -> child edges."""

    nodes: list = field(default_factory=list)
    edges: list = field(default_factory=list)
    level: dict = field(default_factory=dict)  # id(node) -> longest path from a leaf (leaves are 0)


def _parents(node) -> tuple:
    """A node's inputs: `_parents` in notebook 01's engine (`_prev` in micrograd)."""
    for name in ("_parents", "_prev"):
        if hasattr(node, name):
            return tuple(getattr(node, name))
    raise DiagramError(f"{type(node).__name__} has no _parents (or _prev): pass a Value of notebook 01's engine")


def value_graph(root) -> ValueGraph:
    """Walk a `Value`'s parents (depth first) into nodes, distinct edges and levels. Taught in 01 §3."""
    graph, seen = ValueGraph(), set()

    def visit(node):
        if id(node) in seen:
            return
        seen.add(id(node))
        parents = _parents(node)
        for parent in parents:
            visit(parent)
        graph.level[id(node)] = 1 + max((graph.level[id(p)] for p in parents), default=-1)
        graph.nodes.append(node)
        for parent in dict.fromkeys(parents):  # x * x has x twice as a parent: one edge
            graph.edges.append((parent, node))

    visit(root)
    return graph


def draw_value_graph(
    root, names: Mapping[str, object] | None = None, title: str = "The graph your Value engine built"
) -> tuple[Figure, ValueGraph]:
    """Draw the graph below `root` (micrograd style): a box per Value (name, data, grad), a circle per op."""
    graph = value_graph(root)
    if len(graph.nodes) > 60:
        raise DiagramError(f"{len(graph.nodes)} Values are too many to draw; draw a smaller expression (<= 60)")
    label = {id(v): k for k, v in (names or {}).items()}
    columns: dict[int, list] = {}
    for node in graph.nodes:
        columns.setdefault(graph.level[id(node)], []).append(node)
    tallest = max(len(c) for c in columns.values())
    fig, ax = new_figure(2.4 * len(columns) + 0.5, 0.8 * tallest + 0.8, title)
    where = {}
    for level, nodes in columns.items():
        for k, node in enumerate(nodes):
            where[id(node)] = (3.0 * level, (tallest - len(nodes)) / 2 + k)
    for parent, child in graph.edges:
        (x0, y0), (x1, y1) = where[id(parent)], where[id(child)]
        target = x1 - 1.2 - OP_RADIUS if getattr(child, "_op", "") else x1 - 0.9  # the op circle's left edge
        ax.annotate(
            "",
            xy=(target, y1),
            xytext=(x0 + 0.9, y0),
            arrowprops=dict(arrowstyle="->", color="gray", lw=1, shrinkA=0, shrinkB=0),
        )
    for node in graph.nodes:
        x, y = where[id(node)]
        name = label.get(id(node), "")
        ax.add_patch(
            FancyBboxPatch(
                (x - 0.9, y - 0.32),
                1.8,
                0.64,
                boxstyle="round,pad=0.02",
                facecolor="#dbe9f6" if name else "#eeeeee",
                edgecolor="black",
            )
        )
        ax.text(
            x,
            y,
            (f"{name}\n" if name else "") + f"data {node.data:+.4f}\ngrad {node.grad:+.4f}",
            ha="center",
            va="center",
            fontsize=MIN_FONT_PT,
            family="monospace",
        )
        op = getattr(node, "_op", "")
        if op:
            ax.add_patch(Circle((x - 1.2, y), OP_RADIUS, facecolor="#fde2c8", edgecolor="black", zorder=3))
            ax.text(
                x - 1.2, y, op, ha="center", va="center", fontsize=LABEL_PT if len(op) == 1 else MIN_FONT_PT, zorder=4
            )
            ax.annotate("", xy=(x - 0.9, y), xytext=(x - 1.2 + OP_RADIUS, y), arrowprops=dict(arrowstyle="->", lw=1))
    ax.set_xlim(-1.6, 3.0 * (len(columns) - 1) + 1.0)
    ax.set_ylim(tallest - 0.4, -0.6)
    fig.tight_layout()
    return fig, graph


# ---- §4.2: gradient descent on the notebook's own loss, and a learning-rate slider (issue 23) -------------------


@dataclass
class DescentRun:
    """Plain gradient descent on the mean squared error of a straight line y ≈ w x + b (01 §4.2)."""

    lr: float
    path: torch.Tensor  # (steps + 1, 2): (w, b) before the first step and after each step
    losses: list[float]  # the loss at each point of the path
    best: tuple[float, float]  # the least-squares (w, b): the bottom of the bowl
    best_loss: float
    critical_lr: float  # 2 / the largest curvature of the loss: above it every step overshoots further
    regime: str  # "crawls", "converges" or "diverges"
    curvatures: tuple[float, float] = (0.0, 0.0)  # the two curvatures of the bowl, smallest first
    zigzags: bool = False  # 1 < lr x largest curvature < 2: each step overshoots the steep axis, less each time

    @property
    def condition_number(self) -> float:
        """Largest over smallest curvature: how stretched the bowl is (1 is round)."""
        return self.curvatures[1] / self.curvatures[0]


def line_mse_curvatures(x: torch.Tensor) -> torch.Tensor:
    """Eigenvalues of the Hessian of mean((w x + b - y)^2) over (w, b): 2 [[E x², E x], [E x, 1]] (any y)."""
    x = x.detach().double().flatten()
    hessian = 2 * torch.stack(
        [torch.stack([(x * x).mean(), x.mean()]), torch.stack([x.mean(), torch.ones((), dtype=x.dtype)])]
    )
    return torch.linalg.eigvalsh(hessian)


def gradient_descent(
    x: torch.Tensor, y: torch.Tensor, lr: float, steps: int = 30, start: tuple[float, float] = (0.0, 0.0)
) -> DescentRun:
    """The raw-tensor loop of 01 §4.2 (autograd, w -= lr * w.grad), recording every (w, b) and loss it visits.

    Stops early once the loss passes 1e6 (a diverging run). "crawls": after `steps` steps more than 1% of the
    starting excess loss (above the least-squares loss) is left; "converges": less is left; "diverges": lr is at
    or above the critical learning rate, 2 divided by the largest eigenvalue of the loss's Hessian.
    """
    if lr <= 0 or steps < 1:
        raise DiagramError(f"gradient_descent needs lr > 0 and steps >= 1, got lr={lr}, steps={steps}")
    x, y = x.detach().flatten(), y.detach().flatten()
    w = torch.tensor(start[0], dtype=x.dtype, requires_grad=True)
    b = torch.tensor(start[1], dtype=x.dtype, requires_grad=True)
    path, losses = [(start[0], start[1])], []
    for _ in range(steps):
        loss = ((w * x + b - y) ** 2).mean()
        losses.append(loss.item())
        if not loss.isfinite() or loss.item() > 1e6:
            break
        loss.backward()
        with torch.no_grad():
            w -= lr * w.grad
            b -= lr * b.grad
        w.grad = None
        b.grad = None
        path.append((w.item(), b.item()))
    else:
        with torch.no_grad():
            losses.append(((w * x + b - y) ** 2).mean().item())
    design = torch.stack([x, torch.ones_like(x)], dim=1).double()
    solution = torch.linalg.lstsq(design, y.double().unsqueeze(1)).solution.flatten()
    best = (solution[0].item(), solution[1].item())
    best_loss = ((design @ solution - y.double()) ** 2).mean().item()
    low, high = line_mse_curvatures(x).tolist()
    critical = 2 / high
    if lr >= critical:
        regime = "diverges"
    elif losses[-1] - best_loss > 0.01 * (losses[0] - best_loss):
        regime = "crawls"
    else:
        regime = "converges"
    return DescentRun(
        lr, torch.tensor(path[: len(losses)]), losses, best, best_loss, critical, regime, (low, high), 1 < lr * high < 2
    )


COLOURS = {"crawls": "tab:orange", "converges": "tab:green", "diverges": "tab:red"}


def _draw_column(
    top: plt.Axes,
    bottom: plt.Axes,
    x: torch.Tensor,
    y: torch.Tensor,
    run: DescentRun,
    steps: int,
    start: tuple[float, float],
    label: str = "",
) -> None:
    """One run: its path of (w, b) over the contours of its own loss (top), and its loss per step (bottom)."""
    (w_best, b_best), floor = run.best, run.best_loss
    w_span = max(abs(w_best - start[0]), 0.5) * 2.2
    b_span = max(abs(b_best - start[1]), 0.5) * 1.6
    if run.regime != "diverges":  # widen to show the whole path (a zig-zag swings far out), up to twice as wide
        w_span = min(max(w_span, 1.1 * (run.path[:, 0] - w_best).abs().max().item()), 2 * w_span)
        b_span = min(max(b_span, 1.1 * (run.path[:, 1] - b_best).abs().max().item()), 2 * b_span)
    ws = torch.linspace(w_best - w_span, w_best + w_span, 90, dtype=torch.float64)
    bs = torch.linspace(b_best - b_span, b_best + b_span, 90, dtype=torch.float64)
    xd, yd = x.detach().double().flatten(), y.detach().double().flatten()
    grid = ((ws[None, :, None] * xd + bs[:, None, None] - yd) ** 2).mean(-1)  # (b, w)
    levels = floor + (grid.max().item() - floor) * torch.logspace(-3, 0, 8).numpy()
    colour = COLOURS[run.regime]
    top.contour(ws.numpy(), bs.numpy(), grid.numpy(), levels=levels, colors="#999", linewidths=0.8)
    top.plot(*run.path.T.numpy(), "o-", color=colour, ms=3.5, lw=1.3, clip_on=True)
    top.plot(*start, "ks", ms=6, label="start")
    top.plot(w_best, b_best, "k*", ms=12, label="least squares")
    top.set(xlim=(ws[0].item(), ws[-1].item()), ylim=(bs[0].item(), bs[-1].item()), xlabel="w", ylabel="b")
    top.set_title(
        (f"{label}\n" if label else "")
        + f"learning rate {run.lr:.3g}: {run.regime}"
        + (", zig-zags" if run.zigzags and run.regime != "diverges" else ""),
        fontsize=LABEL_PT + 2,
        color=colour,
    )
    top.legend(loc="lower right", fontsize=LABEL_PT)
    bottom.semilogy(range(len(run.losses)), run.losses, "o-", color=colour, ms=3, lw=1.3)
    bottom.axhline(run.best_loss, color="k", ls="--", lw=1, label=f"least squares: {run.best_loss:.4f}")
    bottom.set(xlabel="step", ylabel="mean squared error (log)", xlim=(0, steps))
    bottom.grid(alpha=0.3)
    bottom.legend(loc="upper right", fontsize=LABEL_PT)
    for ax in (top, bottom):
        ax.tick_params(labelsize=LABEL_PT)
        ax.xaxis.label.set_size(LABEL_PT)
        ax.yaxis.label.set_size(LABEL_PT)


def _columns(count: int) -> tuple[Figure, object]:
    """A figure with `count` columns of (contours above, loss curve below), at the course's dpi."""
    return plt.subplots(
        2,
        count,
        figsize=(max(3.9 * count + 0.4, 6.4), 6.2),
        dpi=PROJECTOR_DPI,
        squeeze=False,
        gridspec_kw=dict(height_ratios=[1.35, 1]),
    )


def _bowl(run: DescentRun) -> str:
    """The bowl's shape in words: its curvatures, condition number and critical learning rate."""
    low, high = run.curvatures
    return (
        f"curvatures {low:.2f} and {high:.2f} (condition number {run.condition_number:.1f}): "
        f"it diverges above lr = {run.critical_lr:.2f}"
    )


def draw_gradient_descent(
    x: torch.Tensor,
    y: torch.Tensor,
    lrs: Sequence[float],
    steps: int = 30,
    start: tuple[float, float] = (0.0, 0.0),
    inputs: str = "",
) -> tuple[Figure, list[DescentRun]]:
    """One column per learning rate: the path of (w, b) over the loss's contours, and the loss per step. 01 §4.2."""
    if not 1 <= len(lrs) <= 4:
        raise DiagramError(f"draw_gradient_descent draws 1 to 4 learning rates side by side, got {len(lrs)}")
    runs = [gradient_descent(x, y, lr, steps, start) for lr in lrs]
    fig, axes = _columns(len(runs))
    for (top, bottom), run in zip(axes.T, runs):
        _draw_column(top, bottom, x, y, run, steps, start)
    fig.suptitle(
        f"Gradient descent on the S&P 500 line, {steps} steps from (w, b) = {start}:"
        + (f"\ninputs: {inputs}\n" if inputs else "\n")
        + _bowl(runs[0]),
        fontsize=LABEL_PT + 2,
    )
    fig.tight_layout()
    return fig, runs


def draw_conditioning(
    inputs: Mapping[str, torch.Tensor],
    y: torch.Tensor,
    lr: float,
    steps: int = 30,
    start: tuple[float, float] = (0.0, 0.0),
) -> tuple[Figure, list[DescentRun]]:
    """One column per choice of input x (e.g. uncentred, centred), all at the same learning rate. 01 §4.2."""
    if not 1 <= len(inputs) <= 4:
        raise DiagramError(f"draw_conditioning draws 1 to 4 choices of inputs side by side, got {len(inputs)}")
    runs = [gradient_descent(x, y, lr, steps, start) for x in inputs.values()]
    fig, axes = _columns(len(runs))
    for (top, bottom), run, (name, x) in zip(axes.T, runs, inputs.items()):
        _draw_column(top, bottom, x, y, run, steps, start, label=name)
        bottom.set_title(
            f"condition number {run.condition_number:.1f}, critical lr {run.critical_lr:.2f}", fontsize=LABEL_PT
        )
    fig.suptitle(
        f"The same data and learning rate ({lr:.3g}), {steps} steps: only the inputs' offset differs",
        fontsize=LABEL_PT + 2,
    )
    fig.tight_layout()
    return fig, runs


class GradientDescentExplorer:
    """A learning-rate slider and an inputs switch (standard ipywidgets) over `draw_gradient_descent`; 01 §4.2.

    `widget` is what the notebook displays: a `FloatLogSlider` (and, for several choices of inputs, `ToggleButtons`)
    above an `Output` that is redrawn when a control changes. `run` is the DescentRun on show, so a test can move
    the controls and read the result.
    """

    def __init__(
        self, x: torch.Tensor | Mapping[str, torch.Tensor], y: torch.Tensor, lr: float = 0.1, steps: int = 30
    ) -> None:
        import ipywidgets as widgets

        self.inputs = dict(x) if isinstance(x, Mapping) else {"": x}
        if not self.inputs:
            raise DiagramError("GradientDescentExplorer needs an x tensor, or a dict of named choices of x")
        self.y, self.steps = y, steps
        self.slider = widgets.FloatLogSlider(
            value=lr,
            base=10,
            min=-2.5,
            max=0.25,
            step=0.05,
            description="learning rate",
            readout_format=".3f",
            continuous_update=False,
            layout=widgets.Layout(width="60%"),
            style={"description_width": "initial"},
        )
        self.switch = widgets.ToggleButtons(
            options=list(self.inputs), description="inputs", style={"description_width": "initial"}
        )
        self.view = widgets.Output()
        controls = [self.slider] + ([self.switch] if len(self.inputs) > 1 else [])
        self.widget = widgets.VBox([*controls, self.view])
        self.run: DescentRun | None = None
        self.slider.observe(lambda change: self.redraw(), names="value")
        self.switch.observe(lambda change: self.redraw(), names="value")
        self.redraw()

    def redraw(self) -> DescentRun:
        """Draw the path for the chosen inputs and learning rate into the view (replacing the last picture)."""
        from IPython.display import display

        name = self.switch.value
        fig, (self.run,) = draw_gradient_descent(
            self.inputs[name], self.y, [self.slider.value], self.steps, inputs=name
        )
        self.view.clear_output(wait=True)
        with self.view:
            display(fig)
        plt.close(fig)
        return self.run

    def _ipython_display_(self) -> None:
        """Show the widget; a notebook saved without widget state keeps only the text/plain line below."""
        switch = f" and a switch between {' / '.join(self.inputs)} inputs" if len(self.inputs) > 1 else ""
        show_widget(
            self.widget,
            f"[a learning-rate slider, from {10**self.slider.min:.3f} to {10**self.slider.max:.2f}{switch}: "
            "it moves in JupyterLab, Colab or VS Code with a running kernel]",
        )
