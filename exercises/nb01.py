"""Checks of notebook 01's exercises: behaviour (values, shapes, gradients against autograd), never code text."""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from exercises import Checker


def _close(a, b, tol: float) -> bool:
    """Two numbers (or tensors) agree within an absolute tolerance."""
    return bool(
        torch.allclose(
            torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64), rtol=0, atol=tol
        )
    )


def check_standardise(data: torch.Tensor, standardised) -> None:
    """Exercise 1 (01 §1.4, §1.7): every column of the result has mean 0 and std 1, same shape as data."""
    c = Checker("Exercise 1 (standardise columns)")
    if c.unanswered(standardised is None, "compute one mean and one std per column with keepdim=True"):
        c.verdict()
        return
    is_tensor = isinstance(standardised, torch.Tensor)
    c.check(is_tensor, "standardised is a tensor", "build it from data with tensor operations")
    if not is_tensor:
        c.verdict()
        return
    c.check(
        tuple(standardised.shape) == tuple(data.shape),
        f"shape is {tuple(data.shape)}, the shape of data",
        "reduce over the rows (dim 0), then let broadcasting stretch the (1, 3) result back over the rows",
    )
    if tuple(standardised.shape) != tuple(data.shape):
        c.verdict()
        return
    s = standardised.double()
    c.check(
        lambda: s.mean(dim=0).abs().max().item() < 1e-4,
        "every column has mean 0",
        "subtract each column's own mean: data.mean(dim=...) over the dimension that has 100 entries",
    )
    c.check(
        lambda: (s.std(dim=0) - 1).abs().max().item() < 1e-2,
        "every column has standard deviation 1",
        "divide each column by its own standard deviation, after subtracting the mean",
    )
    corr = [torch.corrcoef(torch.stack([s[:, j], data[:, j].double()]))[0, 1].item() for j in range(data.shape[1])]
    c.check(
        min(corr) > 1 - 1e-6,
        "each column is a rescaled copy of the same column of data (nothing mixed)",
        "use one mean and one std per column, not per row or one for the whole tensor",
    )
    c.verdict()


def _g(a: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Exercise 2's function g(a, c) = a^2 c + e^(a c)."""
    return a**2 * c + torch.exp(a * c)


def check_gradient_by_hand(dg_da: Callable, dg_dc: Callable) -> None:
    """Exercise 2 (01 §2.2): the hand-derived partial derivatives of g agree with autograd at several points."""
    c = Checker("Exercise 2 (a gradient by hand)")
    points = [(1.0, 0.5), (-0.7, 1.3), (2.0, -0.4), (0.3, 0.0)]
    first = torch.tensor(points[0][0], dtype=torch.float64), torch.tensor(points[0][1], dtype=torch.float64)
    try:
        missing = dg_da(*first) is None and dg_dc(*first) is None
    except Exception:
        missing = False
    if c.unanswered(missing, "differentiate a^2 c + e^(ac) with the product and chain rules; return a tensor"):
        c.verdict()
        return
    expected = []
    for a0, c0 in points:
        a = torch.tensor(a0, dtype=torch.float64, requires_grad=True)
        cc = torch.tensor(c0, dtype=torch.float64, requires_grad=True)
        expected.append(torch.autograd.grad(_g(a, cc), (a, cc)))

    def agree(fn, k):
        with torch.no_grad():
            return all(
                _close(fn(torch.tensor(a0, dtype=torch.float64), torch.tensor(c0, dtype=torch.float64)), grads[k], 1e-9)
                for (a0, c0), grads in zip(points, expected)
            )

    c.check(
        lambda: agree(dg_da, 0),
        f"dg/da agrees with autograd at {len(points)} points",
        "treat c as a constant: a^2 c gives 2ac, and e^(ac) needs the chain rule (inner derivative c)",
    )
    c.check(
        lambda: agree(dg_dc, 1),
        f"dg/dc agrees with autograd at {len(points)} points",
        "treat a as a constant: a^2 c gives a^2, and e^(ac) needs the chain rule (inner derivative a)",
    )
    c.verdict()


def check_accumulate_gradients(accumulate_gradients: Callable) -> None:
    """Exercise 3 (01 §2.3): gradients accumulated over unequal micro-batches equal the full-batch gradient."""
    c = Checker("Exercise 3 (gradient accumulation)")
    gen = torch.Generator().manual_seed(3)
    inputs, targets = (
        torch.randn(10, 3, generator=gen, dtype=torch.float64),
        torch.randn(10, 2, generator=gen, dtype=torch.float64),
    )
    model, loss_fn = nn.Linear(3, 2).double(), nn.MSELoss()
    full = torch.autograd.grad(loss_fn(model(inputs), targets), list(model.parameters()))

    def matches(chunk_size: int, stale: bool = False) -> bool:
        if stale:  # gradients left over from an earlier backward
            for p in model.parameters():
                p.grad = torch.ones_like(p)
        else:
            model.zero_grad()
        accumulate_gradients(model, loss_fn, inputs, targets, chunk_size)
        grads = [p.grad for p in model.parameters()]
        return all(g is not None for g in grads) and all(_close(g, f, 1e-10) for g, f in zip(grads, full))

    model.zero_grad()
    with contextlib.suppress(Exception):  # a failing answer is reported by the checks below
        accumulate_gradients(model, loss_fn, inputs, targets, 4)
    if c.unanswered(
        all(p.grad is None or not p.grad.any() for p in model.parameters()),
        "call backward once per micro-batch (inputs.split(chunk_size)) on a scaled loss",
    ):
        c.verdict()
        return
    hint = "scale each micro-batch's mean loss by its share of all examples (its length over the total length)"
    c.check(lambda: matches(5), "equal micro-batches (2 of 5): accumulated == full-batch gradient", hint)
    c.check(lambda: matches(4), "unequal micro-batches (4, 4, 2): accumulated == full-batch gradient", hint)
    c.check(lambda: matches(3), "unequal micro-batches (3, 3, 3, 1): accumulated == full-batch gradient", hint)
    c.check(
        lambda: matches(4, stale=True),
        "old gradients in .grad are not added in",
        "start from model.zero_grad(): backward adds to whatever .grad holds",
    )
    model.zero_grad()
    c.verdict()


OPS = ("__neg__", "__sub__", "__rsub__", "__pow__", "exp", "relu")


def check_value_ops(Value: type) -> None:
    """Exercise 4 (01 §3): -v, a - b, k - a, v ** k, v.exp(), v.relu() give PyTorch's values and gradients."""
    c = Checker("Exercise 4 (more operations for Value)")
    if c.unanswered(
        not any(op in vars(Value) for op in OPS),
        "write each operation like tanh in section 3, then attach it, e.g. Value.exp = exp",
    ):
        c.verdict()
        return

    def case(build: Callable, torch_build: Callable, inputs: tuple[float, ...]) -> bool:
        ours = [Value(v) for v in inputs]
        out = build(*ours)
        out.backward()
        theirs = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in inputs]
        t_out = torch_build(*theirs)
        t_out.backward()
        return _close(out.data, t_out.item(), 1e-9) and all(
            _close(o.grad, t.grad.item() if t.grad is not None else 0.0, 1e-9) for o, t in zip(ours, theirs)
        )

    c.check(
        lambda: case(lambda a: -a, lambda a: -a, (1.7,)),
        "-v: value and gradient",
        "__neg__ can reuse * with the number -1",
    )
    c.check(
        lambda: case(lambda a, b: a - b, lambda a, b: a - b, (2.0, 0.5)),
        "a - b (two Values): value and gradients",
        "__sub__ can reuse + and unary minus; the gradient with respect to b is -1",
    )
    c.check(
        lambda: case(lambda a: a - 2.5, lambda a: a - 2.5, (1.0,)),
        "a - 2.5 (a number on the right)",
        "in __sub__, wrap a plain number in a Value first, as __add__ does",
    )
    c.check(
        lambda: case(lambda a: 3.0 - a, lambda a: 3.0 - a, (1.2,)),
        "3.0 - a (a number on the left, __rsub__)",
        "Python calls a.__rsub__(3.0) for 3.0 - a: that is 3.0 + (-a), not a - 3.0",
    )
    c.check(
        lambda: case(lambda a: a**3, lambda a: a**3, (1.5,)) and case(lambda a: a**0.5, lambda a: a**0.5, (2.0,)),
        "v ** k for k = 3 and k = 0.5: value and gradient",
        "the derivative of a^k is k a^(k-1); multiply by out.grad and add it to self.grad",
    )
    c.check(
        lambda: case(lambda a: a.exp(), torch.exp, (0.7,)),
        "v.exp(): value and gradient",
        "e^a is its own derivative; compute it once with math.exp in the forward pass",
    )
    c.check(
        lambda: case(lambda a: a.relu(), torch.relu, (0.8,)) and case(lambda a: a.relu(), torch.relu, (-0.8,)),
        "v.relu() for a positive and a negative input",
        "relu passes the gradient where the input was positive and blocks it (0) elsewhere",
    )
    c.check(
        lambda: case(
            lambda a, b, d: (a - b).relu() ** 2 * (-d).exp() + (1 - a),
            lambda a, b, d: torch.relu(a - b) ** 2 * torch.exp(-d) + (1 - a),
            (2.0, 0.5, 0.3),
        ),
        "h = relu(a - c)^2 e^(-d) + (1 - a): value and all three gradients",
        "each operation must record its inputs (the parents) so that backward reaches a, c and d",
    )
    c.verdict()


def check_softplus(Softplus: type) -> None:
    """Exercise 5 (01 §2.6): a torch.autograd.Function whose forward and hand-written backward are right."""
    c = Checker("Exercise 5 (your own autograd operation)")
    x = (torch.randn(10, dtype=torch.float64, generator=torch.Generator().manual_seed(5)) * 5).requires_grad_()
    try:
        missing = Softplus.apply(x) is None
    except Exception:
        missing = False
    if c.unanswered(missing, "forward returns log(1 + e^x) (save x for backward); backward returns grad * sigmoid(x)"):
        c.verdict()
        return
    c.check(
        lambda: tuple(Softplus.apply(x).shape) == tuple(x.shape),
        "the output has the input's shape",
        "softplus is element-wise: no sum or mean in forward",
    )
    c.check(
        lambda: _close(Softplus.apply(x), nn.functional.softplus(x), 1e-10),
        "forward agrees with torch.nn.functional.softplus",
        "log(1 + e^x); torch.log1p(y) computes log(1 + y)",
    )
    c.check(
        lambda: torch.autograd.gradcheck(Softplus.apply, (x,), raise_exception=False),
        "backward passes torch.autograd.gradcheck (float64)",
        "backward gets d(loss)/d(output) and returns it times the derivative of softplus, the sigmoid of x",
    )
    big = torch.tensor([-1000.0, 0.0, 1000.0])
    c.check(
        lambda: _close(Softplus.apply(big), [0.0, math.log(2.0), 1000.0], 1e-6),
        "bonus: stable for large |x| (softplus(1000) = 1000, softplus(-1000) = 0)",
        "e^1000 overflows: use max(x, 0) + log(1 + e^(-|x|)), which only ever exponentiates numbers <= 0",
    )
    c.verdict()


def check_engine_fit(w_v, b_v, xs: list[float], ys: list[float]) -> None:
    """Exercise 6 (01 §3, §4.2): w and b trained with the Value engine reach the least-squares line to 1e-3."""
    c = Checker("Exercise 6 (train with your own engine)")
    if c.unanswered(
        getattr(w_v, "data", 0.0) == 0.0 and getattr(b_v, "data", 0.0) == 0.0,
        "loop: build the MSE from Values, reset grads, backward, then w_v.data -= lr * w_v.grad",
    ):
        c.verdict()
        return
    c.check(
        all(hasattr(v, "data") and hasattr(v, "grad") for v in (w_v, b_v)),
        "w_v and b_v are Values",
        "keep w_v and b_v as Value objects and update their .data",
    )
    design = torch.tensor([xs, [1.0] * len(xs)], dtype=torch.float64).T
    target = torch.tensor(ys, dtype=torch.float64).unsqueeze(1)
    w_ls, b_ls = torch.linalg.lstsq(design, target).solution.squeeze(1).tolist()
    hint = (
        "train longer or with a larger step; check that the gradients are reset before every backward "
        "(they accumulate) and that the loss is the mean, not the sum"
    )
    c.check(lambda: abs(w_v.data - w_ls) < 1e-3, "w agrees with the least-squares slope to 1e-3", hint)
    c.check(lambda: abs(b_v.data - b_ls) < 1e-3, "b agrees with the least-squares intercept to 1e-3", hint)
    c.verdict()


def check_train_keep_best(train_keep_best: Callable, device: torch.device) -> None:
    """Exercise 7 (01 §4.4): curves per epoch, validation MSE per example, the best epoch's weights at the end."""
    c = Checker("Exercise 7 (your own fit, keeping the best model)")
    # A problem made to overfit: 32 noisy training points, a 64-unit MLP, 40 epochs. The validation MSE is best
    # well before the last epoch (epochs 15-38 over 20 seeds of this set-up), so keeping the best is visible.
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(96, 1, generator=gen) * 2 - 1
    y = torch.sin(4 * x) + 0.5 * torch.randn(96, 1, generator=gen)
    train_loader = DataLoader(
        TensorDataset(x[:32], y[:32]), batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(2)
    )
    val_loader = DataLoader(TensorDataset(x[32:], y[32:]), batch_size=16)
    epochs = 40
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(1, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1)).to(device)
    start = copy.deepcopy(model.state_dict())
    result = train_keep_best(model, train_loader, val_loader, epochs, 0.03, device)
    curves = result if isinstance(result, tuple) and len(result) == 2 else ([], [])
    if c.unanswered(not curves[0] and not curves[1], "fill train_curve and val_curve, one number per epoch"):
        c.verdict()
        return
    train_curve, val_curve = curves
    c.check(
        len(train_curve) == epochs and len(val_curve) == epochs,
        f"one train and one validation loss per epoch ({epochs})",
        "append to each curve once per epoch, after the loop over the batches",
    )
    c.check(
        lambda: train_curve[-1] < train_curve[0] / 2,
        "the training loss goes down",
        "per batch: zero_grad, forward, loss, backward, step, with the batch moved to the device",
    )
    c.check(
        lambda: any(not torch.equal(v, start[k].to(v.device)) for k, v in model.state_dict().items()),
        "the model's weights changed",
        "the optimizer must be built on model.parameters()",
    )
    model.eval()
    with torch.no_grad():
        total = sum(
            nn.functional.mse_loss(model(xb.to(device)), yb.to(device), reduction="sum").item() for xb, yb in val_loader
        )
    now = total / len(val_loader.dataset)
    c.check(
        lambda: math.isclose(now, min(val_curve), rel_tol=1e-4),
        "at the end the model holds the weights of its best validation epoch (its MSE equals the curve's minimum)",
        "validation MSE: mean over all validation examples under no_grad in eval mode; keep a deepcopy of "
        "state_dict() whenever it improves and load it after the last epoch",
    )
    c.verdict()
