"""Notebook 01's diagrams: broadcasting on a grid of cells (§1.4) and the graph of the `Value` engine (§3)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyBboxPatch, Patch, Rectangle

from diagrams import DPI, DiagramError, new_figure

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
    view = _as_2d(t).expand(out_shape)          # a real broadcast view: stride 0 along stretched dimensions
    stored = 0
    for i in range(out_shape[0]):
        for j in range(out_shape[1]):
            real = (view.stride(0) != 0 or i == 0) and (view.stride(1) != 0 or j == 0)
            stored += real
            ax.add_patch(Rectangle((j, i), 1, 1, facecolor=color, alpha=0.85 if real else 0.2,
                                   edgecolor="black", linestyle="-" if real else "--"))
            ax.text(j + 0.5, i + 0.5, f"{view[i, j].item():g}", ha="center", va="center", fontsize=9,
                    color="black" if real else "gray")
    ax.set_xlim(0, width)
    ax.set_ylim(max(out_shape[0], 2), 0)        # row 0 at the top, as tensors print
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)
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
    fig, axes = plt.subplots(len(pairs), 3, figsize=(3.2 * 3, 0.65 * sum(max(s[0], 2) for s in shapes) + 1.4),
                             dpi=DPI, squeeze=False, gridspec_kw=dict(height_ratios=[max(s[0], 2) for s in shapes]))
    rows: list[list[BroadcastPanel]] = []
    for k, ((a, b), out_shape, row_axes) in enumerate(zip(pairs, shapes, axes)):
        panels = []
        for ax, (t, color, name) in zip(row_axes, ((a, "tab:blue", "a"), (b, "tab:orange", "b"),
                                                   (a + b, "tab:green", "a + b"))):
            shape = tuple(t.shape)
            title = (f"{'= ' if name == 'a + b' else '+ ' if name == 'b' else ''}{name}: shape {shape}"
                     + (f"\nstretched to {out_shape}" if _as_2d(t).shape != out_shape else ""))
            stored = _draw_cells(ax, t, out_shape, color, title, width)
            panels.append(BroadcastPanel(name, shape, out_shape, stored))
        rows.append(panels)
    fig.legend(handles=[Patch(facecolor="gray", alpha=0.85, edgecolor="black", label="stored in memory"),
                        Patch(facecolor="gray", alpha=0.2, edgecolor="black", linestyle="--",
                              label="broadcast copy (no memory)")], loc="lower center", ncol=2, fontsize=9)
    fig.suptitle("Broadcasting: " + "  and  ".join(
        f"{tuple(a.shape)} + {tuple(b.shape)} -> {tuple(torch.broadcast_shapes(a.shape, b.shape))}" for a, b in pairs),
        fontsize=11)
    fig.tight_layout(rect=(0, 0.07, 1, 1), h_pad=1.5)
    return fig, rows


@dataclass
class ValueGraph:
    """The graph below a root `Value`: nodes in topological order (leaves first) and parent -> child edges."""
    nodes: list = field(default_factory=list)
    edges: list = field(default_factory=list)
    level: dict = field(default_factory=dict)   # id(node) -> longest path from a leaf (leaves are 0)


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
        for parent in dict.fromkeys(parents):      # x * x has x twice as a parent: one edge
            graph.edges.append((parent, node))

    visit(root)
    return graph


def draw_value_graph(root, names: Mapping[str, object] | None = None,
                     title: str = "The graph your Value engine built") -> tuple[Figure, ValueGraph]:
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
        target = x1 - 1.2 - OP_RADIUS if getattr(child, "_op", "") else x1 - 0.9   # the op circle's left edge
        ax.annotate("", xy=(target, y1), xytext=(x0 + 0.9, y0),
                    arrowprops=dict(arrowstyle="->", color="gray", lw=1, shrinkA=0, shrinkB=0))
    for node in graph.nodes:
        x, y = where[id(node)]
        name = label.get(id(node), "")
        ax.add_patch(FancyBboxPatch((x - 0.9, y - 0.32), 1.8, 0.64, boxstyle="round,pad=0.02",
                                    facecolor="#dbe9f6" if name else "#eeeeee", edgecolor="black"))
        ax.text(x, y, (f"{name}\n" if name else "") + f"data {node.data:+.4f}\ngrad {node.grad:+.4f}",
                ha="center", va="center", fontsize=8, family="monospace")
        op = getattr(node, "_op", "")
        if op:
            ax.add_patch(Circle((x - 1.2, y), OP_RADIUS, facecolor="#fde2c8", edgecolor="black", zorder=3))
            ax.text(x - 1.2, y, op, ha="center", va="center", fontsize=10 if len(op) == 1 else 7, zorder=4)
            ax.annotate("", xy=(x - 0.9, y), xytext=(x - 1.2 + OP_RADIUS, y), arrowprops=dict(arrowstyle="->", lw=1))
    ax.set_xlim(-1.6, 3.0 * (len(columns) - 1) + 1.0)
    ax.set_ylim(tallest - 0.4, -0.6)
    fig.tight_layout()
    return fig, graph
