"""The exercises' reporter: ✅/❌ lines with hints, ⏳ for unanswered, a verdict, CheckFailed in strict mode."""

import pytest

from exercises import Checker, CheckFailed, strict


def run(monkeypatch, strict_mode, body):
    """Run a check body with a Checker that records its lines; returns (verdict, lines)."""
    if strict_mode:
        monkeypatch.setenv("COURSE_STRICT_CHECKS", "1")
    else:
        monkeypatch.delenv("COURSE_STRICT_CHECKS", raising=False)
    lines = []
    checker = Checker("Exercise 9", printer=lines.append)
    return body(checker), lines


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), (" YES ", True), ("0", False), ("", False)])
def test_strict_reads_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("COURSE_STRICT_CHECKS", value)
    assert strict() is expected


def test_all_passed_prints_ticks_and_a_verdict(monkeypatch):
    def body(c):
        c.check(True, "shape is (3, 4)", hint="look at keepdim")
        c.check(lambda: 1 + 1 == 2, "values match", hint="subtract the mean")
        return c.verdict()

    ok, lines = run(monkeypatch, False, body)
    assert ok is True
    assert lines[:2] == ["✅ shape is (3, 4)", "✅ values match"]
    assert "all 2 checks passed" in lines[-1]


def test_a_failure_prints_the_hint_and_says_so_in_the_verdict(monkeypatch):
    def body(c):
        c.check(True, "shape is (3, 4)", hint="h1")
        c.check(False, "column means are 0", hint="reduce over dim 0")
        return c.verdict()

    ok, lines = run(monkeypatch, False, body)
    assert ok is False
    assert lines[1] == "❌ column means are 0. Hint: reduce over dim 0"
    assert "1 of 2 checks failed" in lines[-1] and "column means are 0" in lines[-1]


def test_an_exception_in_the_learners_code_is_a_failed_criterion(monkeypatch):
    def body(c):
        c.check(lambda: 1 / 0, "forward runs", hint="no division by zero")
        return c.verdict()

    ok, lines = run(monkeypatch, False, body)
    assert ok is False
    assert lines[0].startswith("❌ forward runs (raised ZeroDivisionError") and lines[0].endswith(
        "Hint: no division by zero"
    )


def test_strict_mode_raises_on_failure_with_the_failed_criteria(monkeypatch):
    def body(c):
        c.check(False, "gradients match autograd", hint="h")
        return c.verdict()

    with pytest.raises(CheckFailed, match="gradients match autograd"):
        run(monkeypatch, True, body)


def test_strict_mode_passes_silently_through_a_correct_answer(monkeypatch):
    ok, lines = run(monkeypatch, True, lambda c: c.check(True, "ok", hint="h") and c.verdict())
    assert ok is True and lines[-1].startswith("🎉")


def test_unanswered_prints_an_hourglass_and_stops(monkeypatch):
    def body(c):
        if c.unanswered(True, hint="fill in standardised"):
            return c.verdict()
        c.check(True, "never reached", hint="h")

    ok, lines = run(monkeypatch, False, body)
    assert ok is False
    assert lines == ["⏳ Exercise 9: not answered yet. Hint: fill in standardised"]


def test_unanswered_raises_in_strict_mode(monkeypatch):
    with pytest.raises(CheckFailed, match="not answered"):
        run(monkeypatch, True, lambda c: c.unanswered(True, hint="h"))


def test_answered_is_not_reported(monkeypatch):
    ok, lines = run(monkeypatch, True, lambda c: c.unanswered(False, hint="h"))
    assert ok is False and lines == []


def test_checkfailed_is_an_assertion_error():
    assert issubclass(CheckFailed, AssertionError)


# ---- notebook 01's checks: a right answer passes (strict), a wrong one fails, a missing one is ⏳ ----------------
import copy  # noqa: E402
import math  # noqa: E402

import torch  # noqa: E402
from test_diagrams import notebook_engine  # noqa: E402
from torch import nn  # noqa: E402

from exercises import nb01  # noqa: E402


@pytest.fixture
def strict_mode(monkeypatch):
    monkeypatch.setenv("COURSE_STRICT_CHECKS", "1")


@pytest.fixture
def lenient(monkeypatch):
    monkeypatch.delenv("COURSE_STRICT_CHECKS", raising=False)


def test_nb01_standardise(strict_mode):
    data = torch.randn(100, 3) * torch.tensor([1.0, 10.0, 100.0]) + torch.tensor([5.0, -2.0, 40.0])
    nb01.check_standardise(data, (data - data.mean(0, keepdim=True)) / data.std(0, keepdim=True))
    with pytest.raises(CheckFailed, match="mean 0"):
        nb01.check_standardise(data, (data - data.mean()) / data.std(0, keepdim=True))  # one mean for all
    with pytest.raises(CheckFailed, match="shape"):
        nb01.check_standardise(data, (data - data.mean(1, keepdim=True)).T)


def test_nb01_unanswered_is_an_hourglass(lenient, capsys):
    nb01.check_standardise(torch.zeros(4, 3), None)
    out = capsys.readouterr().out
    assert out.startswith("⏳") and "✅" not in out and "❌" not in out


def test_nb01_gradient_by_hand(strict_mode):
    nb01.check_gradient_by_hand(lambda a, c: 2 * a * c + c * torch.exp(a * c), lambda a, c: a**2 + a * torch.exp(a * c))
    with pytest.raises(CheckFailed, match="dg/da"):  # forgot the chain rule's inner derivative
        nb01.check_gradient_by_hand(lambda a, c: 2 * a * c + torch.exp(a * c), lambda a, c: a**2 + a * torch.exp(a * c))
    with pytest.raises(CheckFailed, match="not answered"):
        nb01.check_gradient_by_hand(lambda a, c: None, lambda a, c: None)


def accumulate(scale_by_share):
    def accumulate_gradients(model, loss_fn, inputs, targets, chunk_size):
        model.zero_grad()
        chunks = list(zip(inputs.split(chunk_size), targets.split(chunk_size)))
        for x, y in chunks:
            weight = len(x) / len(inputs) if scale_by_share else 1 / len(chunks)
            (loss_fn(model(x), y) * weight).backward()

    return accumulate_gradients


def test_nb01_accumulate_gradients(strict_mode):
    nb01.check_accumulate_gradients(accumulate(True))
    with pytest.raises(CheckFailed, match="unequal"):  # right only for equal chunks
        nb01.check_accumulate_gradients(accumulate(False))
    with pytest.raises(CheckFailed, match="not answered"):
        nb01.check_accumulate_gradients(lambda model, *args: model.zero_grad())


def engine_with_ops(wrong_relu=False):
    Value = notebook_engine()

    def power(self, k):
        out = Value(self.data**k, (self,), f"**{k}")

        def _backward():
            self.grad += k * self.data ** (k - 1) * out.grad

        out._backward = _backward
        return out

    def unary(fn, dfn, name):
        def op(self):
            out = Value(fn(self.data), (self,), name)

            def _backward():
                self.grad += dfn(self.data) * out.grad

            out._backward = _backward
            return out

        return op

    Value.__neg__ = lambda self: self * -1
    Value.__sub__ = lambda self, other: self + (-other if isinstance(other, Value) else Value(-other))
    Value.__rsub__ = lambda self, other: Value(other) + (-self)
    Value.__pow__ = power
    Value.exp = unary(math.exp, math.exp, "exp")
    Value.relu = unary(lambda v: max(v, 0.0), (lambda v: 1.0) if wrong_relu else (lambda v: float(v > 0)), "relu")
    return Value


def test_nb01_value_ops(strict_mode):
    nb01.check_value_ops(engine_with_ops())
    with pytest.raises(CheckFailed, match="relu"):
        nb01.check_value_ops(engine_with_ops(wrong_relu=True))
    with pytest.raises(CheckFailed, match="not answered"):
        nb01.check_value_ops(notebook_engine())


def softplus(stable, right_backward=True):
    class Softplus(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.clamp(min=0) + torch.log1p(torch.exp(-x.abs())) if stable else torch.log(1 + torch.exp(x))

        @staticmethod
        def backward(ctx, grad_output):
            (x,) = ctx.saved_tensors
            return grad_output * (torch.sigmoid(x) if right_backward else torch.exp(x))

    return Softplus


def test_nb01_softplus(strict_mode):
    nb01.check_softplus(softplus(stable=True))
    with pytest.raises(CheckFailed, match="gradcheck"):
        nb01.check_softplus(softplus(stable=True, right_backward=False))
    with pytest.raises(CheckFailed, match="bonus"):
        nb01.check_softplus(softplus(stable=False))


def engine_fit(reset_grads=True):
    """Exercise 6's answer: gradient descent on the notebook's own Value engine."""

    def fit_line(xs, ys, steps, lr):
        Value = fit_line.Value
        w, b = Value(0.0), Value(0.0)
        for _ in range(steps):
            errors = [w * xi + b + (-yi) for xi, yi in zip(xs, ys)]
            mse = sum(e * e for e in errors) * (1 / len(errors))
            if reset_grads:
                w.grad = b.grad = 0.0
            mse.backward()
            w.data -= lr * w.grad
            b.data -= lr * b.grad
        return w, b

    return fit_line


def test_nb01_engine_fit(strict_mode):
    Value = notebook_engine()
    xs = torch.linspace(-1.6, 1.6, 39).tolist()
    ys = [3.07 + 0.28 * x + 0.1 * math.sin(7 * x) for x in xs]
    right = engine_fit()
    right.Value = Value
    nb01.check_engine_fit(right, Value, xs, ys)

    def least_squares(xs, ys, steps, lr):  # copied from torch.linalg.lstsq: right numbers, no engine
        design = torch.tensor([xs, [1.0] * len(xs)], dtype=torch.float64).T
        w, b = torch.linalg.lstsq(design, torch.tensor(ys, dtype=torch.float64).unsqueeze(1)).solution.flatten()
        return Value(w.item()), Value(b.item())

    def torch_fit(xs, ys, steps, lr):  # PyTorch's autograd, copied into Values
        p = torch.zeros(2, dtype=torch.float64, requires_grad=True)
        x, y = torch.tensor(xs, dtype=torch.float64), torch.tensor(ys, dtype=torch.float64)
        for _ in range(steps):
            p.grad = None
            ((p[0] * x + p[1] - y) ** 2).mean().backward()
            with torch.no_grad():
                p -= lr * p.grad
        return Value(p[0].item()), Value(p[1].item())

    with pytest.raises(CheckFailed, match="ran on your engine"):
        nb01.check_engine_fit(least_squares, Value, xs, ys)
    with pytest.raises(CheckFailed, match="ran on your engine"):
        nb01.check_engine_fit(torch_fit, Value, xs, ys)
    w_fixed, b_fixed = least_squares(xs, ys, 0, 0)
    with pytest.raises(CheckFailed, match="check's own points"):  # the notebook's answer, typed in
        nb01.check_engine_fit(lambda *args: (Value(w_fixed.data), Value(b_fixed.data)), Value, xs, ys)
    no_reset = engine_fit(reset_grads=False)
    no_reset.Value = Value
    with pytest.raises(CheckFailed, match="least-squares line"):  # gradients accumulate over the steps
        nb01.check_engine_fit(no_reset, Value, xs, ys)
    with pytest.raises(CheckFailed, match="not answered"):
        nb01.check_engine_fit(lambda *args: (Value(0.0), Value(0.0)), Value, xs, ys)


def trainer(keep_best=True, per_example=True, evaluate=True, back_to_train=True):
    def train_keep_best(model, train_loader, val_loader, epochs, lr, device):
        opt, loss_fn, train_curve, val_curve = torch.optim.Adam(model.parameters(), lr=lr), nn.MSELoss(), [], []
        best, state = math.inf, None
        for epoch in range(epochs):
            if back_to_train or epoch == 0:
                model.train()
            total = 0.0
            for xb, yb in train_loader:
                opt.zero_grad()
                loss = loss_fn(model(xb), yb)
                loss.backward()
                opt.step()
                total += loss.item() * len(xb)
            train_curve.append(total / len(train_loader.dataset))
            if evaluate:
                model.eval()
            with torch.no_grad():
                if per_example:
                    val_total = sum(loss_fn(model(xb), yb).item() * len(xb) for xb, yb in val_loader)
                    val = val_total / len(val_loader.dataset)
                else:  # the mean of the batches' means
                    val = sum(loss_fn(model(xb), yb).item() for xb, yb in val_loader) / len(val_loader)
            val_curve.append(val)
            if val_curve[-1] < best:
                best, state = val_curve[-1], copy.deepcopy(model.state_dict())
        if keep_best:
            model.load_state_dict(state)
        return train_curve, val_curve

    return train_keep_best


def test_nb01_train_keep_best(strict_mode):
    cpu = torch.device("cpu")
    nb01.check_train_keep_best(trainer(), cpu)
    with pytest.raises(CheckFailed, match="best validation epoch"):  # trained, but kept the last weights
        nb01.check_train_keep_best(trainer(keep_best=False), cpu)
    with pytest.raises(CheckFailed, match="mean over all validation examples"):  # unequal batches, averaged as equal
        nb01.check_train_keep_best(trainer(per_example=False), cpu)
    with pytest.raises(CheckFailed, match="eval mode"):  # dropout left on while validating
        nb01.check_train_keep_best(trainer(evaluate=False), cpu)
    with pytest.raises(CheckFailed, match="train mode"):  # eval() never undone: dropout off for training
        nb01.check_train_keep_best(trainer(back_to_train=False), cpu)
    with pytest.raises(CheckFailed, match="not answered"):
        nb01.check_train_keep_best(lambda *args: ([], []), cpu)


# ---- notebook 02 (exercises/nb02.py): each check passes the intended answer and fails a typical mistake -------


def test_nb02_conv_cost(strict_mode):
    from exercises import nb02

    nb02.check_conv_cost(256 * 64 * 9, 2 * 64 * 9 * 256 * 15 * 15)
    with pytest.raises(CheckFailed, match="FLOP"):
        nb02.check_conv_cost(256 * 64 * 9, 64 * 9 * 256 * 15 * 15)  # multiply-adds, not FLOPs
    with pytest.raises(CheckFailed, match="parameter"):
        nb02.check_conv_cost(256 * 64 * 9 + 256, 2 * 64 * 9 * 256 * 15 * 15)  # a bias it does not have


def test_nb02_most_confused(strict_mode):
    from exercises import nb02

    labels = torch.tensor([3] * 10 + [5] * 10 + [1] * 10)
    preds = torch.tensor([5] * 6 + [3] * 4 + [3] * 2 + [5] * 8 + [9] * 3 + [1] * 7)
    nb02.check_most_confused(labels, preds, (3, 5), 6, 2)
    with pytest.raises(CheckFailed, match="largest off-diagonal"):
        nb02.check_most_confused(labels, preds, (1, 9), 3, 0)
    with pytest.raises(CheckFailed, match="reverse_count"):
        nb02.check_most_confused(labels, preds, (3, 5), 6, 6)
    with pytest.raises(CheckFailed, match="different classes"):
        nb02.check_most_confused(labels, preds, (5, 5), 8, 8)


def tiny_cifar_model():
    from helpers import cifar

    torch.manual_seed(0)
    model = cifar.CifarNet(widths=(8, 8, 8)).eval()
    x, y = torch.randn(64, 3, 32, 32), torch.randint(0, 10, (64,))
    return model, [(x, y)]


def test_nb02_tta_accuracies(strict_mode):
    from exercises import nb02
    from helpers import cifar, evaluate

    model, loader = tiny_cifar_model()
    right = lambda m, data: {lv: evaluate(m, data, forward=cifar.tta_forward(lv))["accuracy"] for lv in (0, 1, 2)}  # noqa: E731
    nb02.check_tta_accuracies(right, model, loader)
    every_level_plain = lambda m, data: {lv: evaluate(m, data)["accuracy"] for lv in (0, 1, 2)}  # noqa: E731
    x, y = loader[0]
    with torch.no_grad():  # labels where TTA changes the answer, so that ignoring the level is caught
        y = cifar.tta_logits(model, x, 2).argmax(1)
    if not torch.equal(model(x).argmax(1), y):
        with pytest.raises(CheckFailed, match="level 2"):
            nb02.check_tta_accuracies(every_level_plain, model, [(x, y)])
    with pytest.raises(CheckFailed, match="returns"):
        nb02.check_tta_accuracies(lambda m, data: [0.1, 0.2, 0.3], model, loader)


def test_nb02_whitening3(strict_mode):
    from exercises import nb02
    from helpers import cifar

    torch.manual_seed(0)
    x = torch.randn(40, 3, 12, 12).cumsum(dim=3)  # correlated neighbours, like pixels
    filters, ev = cifar.whitening_filters(x, kernel_size=3)
    share = (ev[:3].sum() / ev.sum()).item()
    nb02.check_whitening3(x, filters, ev, share)
    with pytest.raises(CheckFailed, match="share"):
        nb02.check_whitening3(x, filters, ev, 100 * share)  # a percentage
    f2, ev2 = cifar.whitening_filters(x, kernel_size=2)
    with pytest.raises(CheckFailed, match="27 filters"):
        nb02.check_whitening3(x, f2, ev2, share)


def good_cutout(x, size=8):
    n, _, h, w = x.shape
    top = torch.randint(-(size // 2), h - size // 2, (n, 1, 1, 1))
    left = torch.randint(-(size // 2), w - size // 2, (n, 1, 1, 1))
    rows, cols = torch.arange(h).view(1, 1, h, 1), torch.arange(w).view(1, 1, 1, w)
    return x.masked_fill((rows >= top) & (rows < top + size) & (cols >= left) & (cols < left + size), 0.0)


def test_nb02_cutout(strict_mode):
    from exercises import nb02

    nb02.check_cutout(good_cutout)

    def same_square(x, size=8):
        y = x.clone()
        y[:, :, 10:18, 10:18] = 0
        return y

    def per_channel(x, size=8):
        return torch.cat([good_cutout(x[:, i : i + 1], size) for i in range(3)], dim=1)

    def in_place(x, size=8):
        x[:, :, 4:12, 4:12] = 0
        return x

    with pytest.raises(CheckFailed, match="random places"):
        nb02.check_cutout(same_square)
    with pytest.raises(CheckFailed, match="channels"):
        nb02.check_cutout(per_channel)
    with pytest.raises(CheckFailed, match="not modified"):
        nb02.check_cutout(in_place)
    with pytest.raises(CheckFailed, match="not answered"):
        nb02.check_cutout(lambda x, size=8: x)


def test_nb02_cutout_training(strict_mode, monkeypatch):
    from exercises import nb02

    x = torch.randn(32, 3, 32, 32)
    monkeypatch.setenv("COURSE_PROFILE", "cpu")
    monkeypatch.delenv("COURSE_TINY", raising=False)
    nb02.check_cutout_training([(good_cutout(x), torch.zeros(32))], 0.31)
    with pytest.raises(CheckFailed, match="not answered"):
        nb02.check_cutout_training([(x, torch.zeros(32))], 0.31)  # the loader erases nothing
    half = torch.cat([good_cutout(x[:16]), x[16:]])
    with pytest.raises(CheckFailed, match="every image"):
        nb02.check_cutout_training([(half, torch.zeros(32))], 0.31)
    with pytest.raises(CheckFailed, match="at least"):
        nb02.check_cutout_training([(good_cutout(x), torch.zeros(32))], 0.10)  # chance: it did not train
    monkeypatch.setenv("COURSE_TINY", "1")  # tiny sizes: only the form is checked
    nb02.check_cutout_training([(good_cutout(x), torch.zeros(32))], 0.10)


def test_nb02_epoch_curve(strict_mode, monkeypatch):
    from exercises import nb02

    monkeypatch.setenv("COURSE_PROFILE", "cpu")
    monkeypatch.delenv("COURSE_TINY", raising=False)
    nb02.check_epoch_curve([(1, 10.0, 0.26), (2, 20.0, 0.38), (4, 40.0, 0.47)])
    with pytest.raises(CheckFailed, match="fewer epochs cost accuracy"):
        nb02.check_epoch_curve([(1, 10.0, 0.40), (2, 20.0, 0.41), (4, 40.0, 0.42)])
    with pytest.raises(CheckFailed, match="take longer"):
        nb02.check_epoch_curve([(1, 40.0, 0.26), (2, 20.0, 0.38), (4, 10.0, 0.47)])
    with pytest.raises(CheckFailed, match="at least 3"):
        nb02.check_epoch_curve([(1, 10.0, 0.26), (2, 20.0, 0.38)])


# ---- notebook 04 (exercises/nb04.py): the intended answer passes, a typical mistake fails ----------------------


def nb04_strongest_head(attn, query, key):
    layer, head = divmod(int(attn[:, :, query, key].argmax()), attn.shape[1])
    return layer, head


def test_nb04_strongest_head(strict_mode):
    from exercises import nb04

    attn = torch.randn(6, 12, 16, 16).softmax(-1)
    nb04.check_strongest_head(nb04_strongest_head, attn, 10, 2)
    with pytest.raises(CheckFailed, match="largest weight"):  # divmod by the number of layers, not of heads
        nb04.check_strongest_head(lambda a, q, k: divmod(int(a[:, :, q, k].argmax()), a.shape[0]), attn, 10, 2)
    with pytest.raises(CheckFailed, match="Python ints"):
        nb04.check_strongest_head(lambda a, q, k: torch.tensor(nb04_strongest_head(a, q, k)), attn, 10, 2)


def test_nb04_unanswered_is_an_hourglass(lenient, capsys):
    from exercises import nb04

    assert nb04.check_causal_attention(None) is False
    out = capsys.readouterr().out
    assert out.startswith("⏳") and "❌" not in out


def nb04_next_token_scores(attn, ids, special, mask_last=False):
    n = attn.shape[-1]
    values = attn.new_zeros(attn.shape[:-1])
    idx = torch.arange(n - 1)
    values[..., :-1] = attn[..., idx, idx + 1]
    valid = ~special
    if mask_last:
        valid = valid.clone()
        valid[-1] = False
    return values, valid


def test_nb04_next_token_scores(strict_mode):
    from exercises import nb04

    nb04.check_next_token_scores(nb04_next_token_scores)
    nb04.check_next_token_scores(lambda a, i, s: nb04_next_token_scores(a, i, s, mask_last=True))

    def previous(attn, ids, special):  # the previous-token score instead
        from helpers.attention import previous_token_scores

        return previous_token_scores(attn, ids, special)

    with pytest.raises(CheckFailed, match="token i \\+ 1"):
        nb04.check_next_token_scores(previous)

    def first_and_last(attn, ids, special):  # drops positions instead of reading the special mask
        values, _ = nb04_next_token_scores(attn, ids, special)
        valid = torch.ones(len(ids), dtype=torch.bool)
        valid[0] = valid[-1] = False
        return values, valid

    with pytest.raises(CheckFailed, match="sentence pair"):
        nb04.check_next_token_scores(first_and_last)

    def in_place(attn, ids, special):
        attn[..., 0, 0] = 0
        return nb04_next_token_scores(attn, ids, special)

    with pytest.raises(CheckFailed, match="left unchanged"):  # it would spoil the other scorers' attention
        nb04.check_next_token_scores(in_place)


def test_nb04_head_entropy(strict_mode):
    from exercises import nb04

    def right(a):
        return -(torch.special.xlogy(a, a)).sum(-1).mean(-1) / math.log(a.shape[-1])

    attn = torch.randn(6, 12, 20, 20).softmax(-1)
    nb04.check_head_entropy(right, attn)
    with pytest.raises(CheckFailed, match="no NaN"):
        nb04.check_head_entropy(lambda a: -(a * a.log()).sum(-1).mean(-1) / math.log(a.shape[-1]), attn)
    with pytest.raises(CheckFailed, match="uniform attention gives 1"):
        nb04.check_head_entropy(lambda a: -(torch.special.xlogy(a, a)).sum(-1).mean(-1), attn)  # not divided by log n
    with pytest.raises(CheckFailed, match="one number per"):
        nb04.check_head_entropy(lambda a: -(torch.special.xlogy(a, a)).sum(-1) / math.log(a.shape[-1]), attn)


def nb04_causal(q, k, v, scale=True, mask_after=False):
    scores = q @ k.transpose(-2, -1) / (q.shape[-1] ** 0.5 if scale else 1)
    future = torch.triu(torch.ones(scores.shape[-2:], dtype=torch.bool), diagonal=1)
    if mask_after:
        weights = scores.softmax(-1).masked_fill(future, 0)
    else:
        weights = scores.masked_fill(future, float("-inf")).softmax(-1)
    return weights @ v, weights


def test_nb04_causal_attention(strict_mode):
    from exercises import nb04

    q, k, v = (torch.randn(1, 12, 16, 32) for _ in range(3))
    nb04.check_causal_attention(nb04_causal, q, k, v)
    with pytest.raises(CheckFailed, match="sums to 1"):
        nb04.check_causal_attention(lambda *t: nb04_causal(*t, mask_after=True), q, k, v)
    with pytest.raises(CheckFailed, match="is_causal"):
        nb04.check_causal_attention(lambda *t: nb04_causal(*t, scale=False), q, k, v)
    with pytest.raises(CheckFailed, match="above the diagonal"):
        nb04.check_causal_attention(
            lambda q, k, v: ((q @ k.transpose(-2, -1)).softmax(-1) @ v, (q @ k.transpose(-2, -1)).softmax(-1)), q, k, v
        )


class _WordTokenizer:
    """A stand-in tokenizer for a 50-word vocabulary: [CLS]=1, [SEP]=2, [PAD]=0, words hashed to 3..49."""

    def __call__(self, texts, truncation=True, max_length=48, padding=True, return_tensors="pt"):
        from transformers import BatchEncoding

        rows = [[1] + [3 + sum(map(ord, w)) % 47 for w in t.split()][: max_length - 2] + [2] for t in texts]
        width = max(map(len, rows))
        ids = torch.tensor([r + [0] * (width - len(r)) for r in rows])
        return BatchEncoding(
            {"input_ids": ids, "attention_mask": (ids != 0).long(), "token_type_ids": torch.zeros_like(ids)}
        )


def nb04_cls_vectors(model, batch, knock_out=None, remove=True, slice_of=None):
    handle = None
    if knock_out is not None:
        layer, head = knock_out
        d = model.config.hidden_size // model.config.num_attention_heads
        lo, hi = slice_of(head, d) if slice_of else (head * d, (head + 1) * d)

        def zero_head(module, args, output):
            out = output[0].clone()
            out[..., lo:hi] = 0
            return (out,) + tuple(output[1:])

        handle = model.base_model.encoder.layer[layer].attention.self.register_forward_hook(zero_head)
    try:
        with torch.no_grad():
            result = model(**batch, output_hidden_states=True)
    finally:
        if handle is not None and remove:
            handle.remove()
    return result.hidden_states[-1][:, 0], getattr(result, "logits", None)


def test_nb04_knock_out(strict_mode):
    from transformers import BertConfig, BertForSequenceClassification

    from exercises import nb04

    torch.manual_seed(0)
    config = BertConfig(
        hidden_size=32,
        num_attention_heads=4,
        num_hidden_layers=3,
        intermediate_size=16,
        vocab_size=50,
        attn_implementation="eager",
    )
    model = BertForSequenceClassification(config).eval()
    texts = ["a good film", "a very bad and long film indeed", "boring", "the best film of the year by far"]
    tokenizer = _WordTokenizer()
    nb04.check_knock_out(nb04_cls_vectors, model, tokenizer, texts)
    with pytest.raises(CheckFailed, match="exactly that head"):  # the wrong slice: head d .. instead of head * d ..
        nb04.check_knock_out(
            lambda m, b, knock_out=None: nb04_cls_vectors(m, b, knock_out, slice_of=lambda h, d: (h, h + d)),
            model,
            tokenizer,
            texts,
        )
    with pytest.raises(CheckFailed, match="hook is removed"):
        nb04.check_knock_out(
            lambda m, b, knock_out=None: nb04_cls_vectors(m, b, knock_out, remove=False), model, tokenizer, texts
        )
    for layer in model.bert.encoder.layer:  # the leaked hooks of the failed attempt above
        layer.attention.self._forward_hooks.clear()
    nb04.check_knock_out(nb04_cls_vectors, model, tokenizer, texts)
