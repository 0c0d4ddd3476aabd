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


def _graph_nodes(root) -> list:
    """Every Value below `root` (itself included), found by walking `_parents` as the engine's backward does."""
    seen: dict[int, object] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen[id(node)] = node
            stack.extend(getattr(node, "_parents", ()))
    return list(seen.values())


def _fit_counting_backward(fit_line: Callable, Value: type, xs: list[float], ys: list[float], steps: int, lr: float):
    """Run fit_line while counting the calls of Value.backward; return its result, the count and the last root."""
    seen = {"count": 0, "root": None}  # only the last root is kept: older graphs can be freed
    original = Value.backward

    def counting(self, *args, **kwargs):
        seen["count"], seen["root"] = seen["count"] + 1, self
        return original(self, *args, **kwargs)

    Value.backward = counting
    try:
        result = fit_line(xs, ys, steps, lr)
    finally:
        Value.backward = original
    return result, seen["count"], seen["root"]


def _least_squares(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """The least-squares line (slope, intercept) through the points, in float64."""
    design = torch.tensor([xs, [1.0] * len(xs)], dtype=torch.float64).T
    target = torch.tensor(ys, dtype=torch.float64).unsqueeze(1)
    slope, intercept = torch.linalg.lstsq(design, target).solution.squeeze(1).tolist()
    return slope, intercept


def check_engine_fit(fit_line: Callable, Value: type, xs: list[float], ys: list[float]) -> None:
    """Exercise 6 (01 §3, §4.2): fit_line trains w and b with the Value engine's backward to the least-squares line.

    The check runs `fit_line` itself, on the notebook's points and on a line of its own, while counting the calls
    of `Value.backward`: numbers copied from `torch.linalg.lstsq` or from a PyTorch fit never call it.
    """
    c = Checker("Exercise 6 (train with your own engine)")
    steps, lr = 200, 0.1
    try:
        first, count, root = _fit_counting_backward(fit_line, Value, xs, ys, steps, lr)
        w, b = first
        missing = getattr(w, "data", None) == 0.0 and getattr(b, "data", None) == 0.0
    except Exception:
        first, count, root, missing = None, 0, None, False
    if c.unanswered(missing, "loop: build the MSE from Values, reset the grads, backward, then w.data -= lr * w.grad"):
        c.verdict()
        return
    c.check(
        first is not None and all(isinstance(v, Value) for v in first),
        "fit_line returns two Values, w and b",
        "return w, b: the Value objects you trained (update their .data, do not replace them)",
    )
    if first is None or not all(isinstance(v, Value) for v in first):
        c.verdict()
        return
    w, b = first
    c.check(
        count >= steps // 2 and root is not None and {id(w), id(b)} <= {id(n) for n in _graph_nodes(root)},
        f"the fit ran on your engine: Value.backward was called {count} times, on graphs that reach w and b",
        "build the loss from w and b with Value operations and call loss.backward() once per step; "
        "numbers from torch.linalg.lstsq or a PyTorch fit are not trained by your engine",
    )
    hint = (
        "train longer or with a larger step; check that the gradients are reset before every backward "
        "(they accumulate) and that the loss is the mean, not the sum"
    )
    w_ls, b_ls = _least_squares(xs, ys)
    c.check(
        lambda: abs(w.data - w_ls) < 1e-3 and abs(b.data - b_ls) < 1e-3,
        f"on the notebook's {len(xs)} points, w and b agree with the least-squares line to 1e-3",
        hint,
    )
    gen = torch.Generator().manual_seed(6)
    other = [1.5 - 0.4 * xi + 0.05 * torch.randn((), generator=gen).item() for xi in xs]
    w_ls2, b_ls2 = _least_squares(xs, other)
    c.check(
        lambda: (lambda wb: abs(wb[0].data - w_ls2) < 1e-3 and abs(wb[1].data - b_ls2) < 1e-3)(
            fit_line(xs, other, steps, lr)
        ),
        "on the check's own points (another line), w and b agree with its least-squares line to 1e-3",
        "fit the xs and ys that fit_line receives, starting from w = b = 0 each time: nothing fixed in advance",
    )
    c.verdict()


class _Watch:
    """What the model was doing when it ran: inside a pass over the validation loader or not, its mode, grad."""

    def __init__(self, model: nn.Module, x_val: torch.Tensor, y_val: torch.Tensor) -> None:
        self.model, self.x_val, self.y_val = model, x_val, y_val
        self.in_val = False
        self.quiet = False
        self.calls: list[tuple[bool, bool, bool]] = []  # (during validation, model.training, grad enabled)
        self.truth: list[float] = []  # after each full validation pass: the per-example MSE in eval mode

    def hook(self, module: nn.Module, args) -> None:
        if not self.quiet:
            self.calls.append((self.in_val, module.training, torch.is_grad_enabled()))

    def true_mse(self) -> float:
        """The model's validation MSE, mean over all examples, in eval mode (the model's mode is restored)."""
        self.quiet, was_training = True, self.model.training
        device = next(self.model.parameters()).device
        try:
            self.model.eval()
            with torch.no_grad():
                return nn.functional.mse_loss(self.model(self.x_val.to(device)), self.y_val.to(device)).item()
        finally:
            self.model.train(was_training)
            self.quiet = False


class _WatchedLoader(DataLoader):
    """The validation DataLoader, telling the watch when a pass over it runs and recording the truth after each."""

    def __init__(self, watch: _Watch, *args, **kwargs) -> None:
        self.watch = watch
        super().__init__(*args, **kwargs)

    def __iter__(self):
        self.watch.in_val, complete = True, False
        try:
            yield from super().__iter__()
            complete = True
        finally:
            self.watch.in_val = False
            if complete:
                self.watch.truth.append(self.watch.true_mse())


def check_train_keep_best(train_keep_best: Callable, device: torch.device) -> None:
    """Exercise 7 (01 §4.4): curves per epoch, validation MSE per example in eval mode, the best epoch's weights.

    The check's model has dropout, so a validation pass without model.eval() gives other numbers; its validation
    batches are unequal (24, 24, 16), so a mean of the batches' means is not the mean over the examples.
    """
    c = Checker("Exercise 7 (your own fit, keeping the best model)")
    # A problem made to overfit: 32 noisy training points, a 64-unit MLP with dropout, 40 epochs. The validation
    # MSE is best well before the last epoch, so keeping the best is visible.
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(96, 1, generator=gen) * 2 - 1
    y = torch.sin(4 * x) + 0.5 * torch.randn(96, 1, generator=gen)
    train_loader = DataLoader(
        TensorDataset(x[:32], y[:32]), batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(2)
    )
    epochs = 40
    torch.manual_seed(2)
    model = nn.Sequential(
        nn.Linear(1, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Dropout(0.2), nn.Linear(64, 1)
    ).to(device)
    watch = _Watch(model, x[32:], y[32:])
    val_loader = _WatchedLoader(watch, TensorDataset(x[32:], y[32:]), batch_size=24)  # batches of 24, 24, 16
    start = copy.deepcopy(model.state_dict())
    handle = model.register_forward_pre_hook(watch.hook)
    try:
        result = train_keep_best(model, train_loader, val_loader, epochs, 0.03, device)
    finally:
        handle.remove()
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
    during_val = [call for call in watch.calls if call[0]]
    during_train = [call for call in watch.calls if not call[0]]
    c.check(
        bool(during_val) and not any(training for _, training, _ in during_val),
        "validation runs in eval mode (model.eval(): the check's model has dropout, which must be off)",
        "call model.eval() before the loop over val_loader",
    )
    c.check(
        bool(during_train) and all(training for _, training, _ in during_train),
        "training runs in train mode (model.train() again at the start of every epoch)",
        "call model.train() before the loop over train_loader, in every epoch: eval() stays on until undone",
    )
    c.check(
        bool(during_val) and not any(grad for _, _, grad in during_val),
        "validation runs under torch.no_grad()",
        "wrap the loop over val_loader in `with torch.no_grad():` (no graph, less memory)",
    )
    c.check(
        lambda: (
            len(watch.truth) == epochs and all(math.isclose(v, t, rel_tol=1e-5) for v, t in zip(val_curve, watch.truth))
        ),
        "each epoch's validation MSE is the mean over all validation examples (its batches hold 24, 24 and 16)",
        "add up loss * len(xb) over the batches and divide by len(val_loader.dataset): a mean of the batches' means "
        "weights the short last batch too much; and validate in eval mode, once per epoch, over every batch",
    )
    model.eval()
    with torch.no_grad():
        now = nn.functional.mse_loss(model(x[32:].to(device)), y[32:].to(device)).item()
    chosen = watch.truth[val_curve.index(min(val_curve))] if len(watch.truth) == len(val_curve) else min(val_curve)
    c.check(
        lambda: math.isclose(now, chosen, rel_tol=1e-4),
        "at the end the model holds the weights of its best validation epoch",
        "keep a deepcopy of state_dict() whenever the validation MSE improves and load it after the last epoch",
    )
    c.verdict()


def check_cross_entropy(cross_entropy: Callable) -> None:
    """01 §4.5: cross_entropy(logits, labels, smoothing) gives PyTorch's loss and gradient, stably, with smoothing."""
    c = Checker("Softmax and cross-entropy")
    gen = torch.Generator().manual_seed(45)
    logits = torch.randn(6, 4, generator=gen, dtype=torch.float64) * 3
    labels = torch.tensor([0, 3, 1, 1, 2, 0])
    try:
        missing = cross_entropy(logits, labels) is None
    except Exception:
        missing = False
    if c.unanswered(missing, "return the mean over the rows of -sum(target * log_softmax(logits))"):
        c.verdict()
        return
    f = nn.functional
    c.check(
        lambda: _close(cross_entropy(logits, labels), f.cross_entropy(logits, labels), 1e-10),
        "the loss equals torch.nn.functional.cross_entropy (a mean over the 6 rows)",
        "loss of a row = log(sum_j e^(z_j)) - z_label; average the rows",
    )
    big = logits.clone()
    big[0, 0], big[1, 2], big[2, 1] = 1000.0, -1000.0, 800.0
    c.check(
        lambda: (
            bool(torch.isfinite(torch.as_tensor(cross_entropy(big, labels))))
            and _close(cross_entropy(big, labels), f.cross_entropy(big, labels), 1e-8)
        ),
        "stable for logits of +-1000 (log-sum-exp: finite and still PyTorch's value)",
        "subtract each row's maximum before exp: log sum e^(z_j) = m + log sum e^(z_j - m)",
    )

    def gradient_is_p_minus_y() -> bool:
        z = logits.clone().requires_grad_()
        (grad,) = torch.autograd.grad(cross_entropy(z, labels), z)
        p_minus_y = (torch.softmax(logits, dim=1) - f.one_hot(labels, 4).double()) / len(labels)
        return _close(grad, p_minus_y, 1e-10)

    c.check(
        gradient_is_p_minus_y,
        "its autograd gradient is (softmax(z) - onehot(y)) / N",
        "build the loss from tensor operations on the logits (no .item(), no .detach()), so autograd can follow",
    )
    c.check(
        lambda: _close(cross_entropy(logits, labels, 0.1), f.cross_entropy(logits, labels, label_smoothing=0.1), 1e-10),
        "label smoothing 0.1 gives PyTorch's label_smoothing=0.1 (target 1 - 0.1 + 0.1/K, others 0.1/K)",
        "the smoothed target puts smoothing / K on every class and 1 - smoothing on top of that for the label",
    )
    c.verdict()
