"""The T4 path on the CPU: float16 autocast + GradScaler through helpers.fit/evaluate agrees with float32.

COURSE_PRECISION=fp16 is what CI sets for the gpu-tiny notebook run (a T4 has no bfloat16); this test trains
the same seeded model twice, once so and once in float32, and bounds the difference. Tolerances: per-epoch
train loss and final eval loss within 2e-3 absolute, test accuracy within 1 point (measured on a 2-core CPU,
torch 2.13: loss differences <= 1.2e-4, identical accuracy), and the two runs must differ at all.
"""

import warnings

import pytest
import torch
from torch import nn

from helpers.evaluation import evaluate
from helpers.train import fit

LOSS_TOL = 2e-3
ACCURACY_TOL = 0.01


def blobs(n, seed):
    """Ten Gaussian classes in 32 dimensions, around seeded centres (not separable: accuracy is not 1)."""
    centres = torch.randn(10, 32, generator=torch.Generator().manual_seed(123)) * 0.6
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=g)
    return centres[y] + torch.randn(n, 32, generator=g), y


def batches(x, y, size=64):
    return [(x[i : i + size], y[i : i + size]) for i in range(0, len(x), size)]


class Spy:
    """Records the logits dtype of every forward and every GradScaler that fit creates."""

    def __init__(self, monkeypatch):
        self.dtypes, self.scalers = [], []
        real = torch.amp.GradScaler
        spy = self

        class RecordingScaler(real):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                self.scaled = 0
                spy.scalers.append(self)

            def scale(self, outputs):
                self.scaled += 1
                return super().scale(outputs)

        monkeypatch.setattr(torch.amp, "GradScaler", RecordingScaler)

    def forward(self, model, inputs):
        logits = model(inputs)
        self.dtypes.append(logits.dtype)
        return logits


def run(precision, monkeypatch):
    """One seeded training through fit (dtype "auto": the COURSE_PRECISION choice) and evaluate."""
    with monkeypatch.context() as patch:
        patch.setenv("COURSE_PRECISION", precision)
        spy = Spy(patch)
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.LayerNorm(64), nn.Linear(64, 10))
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
        history = fit(
            model, batches(*blobs(1024, seed=0)), epochs=3, optimizer=optimizer, forward=spy.forward, progress=False
        )
        n_train = len(spy.dtypes)
        metrics = evaluate(model, batches(*blobs(512, seed=1)), forward=spy.forward)
    return history, metrics, spy, n_train, model


def test_float16_with_grad_scaler_agrees_with_float32(monkeypatch):
    h16, m16, spy16, n16, model16 = run("fp16", monkeypatch)
    h32, m32, spy32, n32, model32 = run("fp32", monkeypatch)

    # the fp16 run really ran in float16 (training and evaluation) and scaled every loss
    assert n16 == 3 * 16 and set(spy16.dtypes) == {torch.float16}
    assert len(spy16.scalers) == 1 and spy16.scalers[0].is_enabled() and spy16.scalers[0].scaled == 3 * 16
    # the fp32 run ran without autocast and without loss scaling
    assert set(spy32.dtypes) == {torch.float32}
    assert len(spy32.scalers) == 1 and not spy32.scalers[0].is_enabled()

    # it learned something (chance: loss ln 10 = 2.30, accuracy 0.1), so agreement is not two untrained models'
    assert m32["accuracy"] > 0.5 and m32["loss"] < 1.5
    for a, b in zip(h16["train_loss"], h32["train_loss"]):
        assert a == pytest.approx(b, abs=LOSS_TOL)
    assert m16["loss"] == pytest.approx(m32["loss"], abs=LOSS_TOL)
    assert m16["accuracy"] == pytest.approx(m32["accuracy"], abs=ACCURACY_TOL)
    # ... and float16 changed the numbers at all (the two runs are not the same computation)
    assert h16["train_loss"] != h32["train_loss"]
    assert any(not torch.equal(p, q) for p, q in zip(model16.parameters(), model32.parameters()))


def test_a_step_the_scaler_skips_does_not_step_the_scheduler(monkeypatch):
    """fp16: an inf loss on the first step makes GradScaler skip optimizer.step; fit must not step the scheduler
    then (torch warns "lr_scheduler.step() before optimizer.step()"), and must step it for every real step."""
    monkeypatch.setenv("COURSE_PRECISION", "fp16")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    calls = []

    class InfGradient(torch.autograd.Function):  # a finite loss whose gradients overflow, as in float16
        @staticmethod
        def forward(ctx, loss):
            return loss.clone()

        @staticmethod
        def backward(ctx, grad):
            return grad * float("inf")

    def loss_fn(logits, labels):  # the first step's gradients are inf: the scaler skips it
        calls.append(1)
        loss = nn.functional.cross_entropy(logits, labels)
        return InfGradient.apply(loss) if len(calls) == 1 else loss

    data = batches(*blobs(256, seed=0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit(
            model,
            data,
            epochs=1,
            optimizer=optimizer,
            scheduler=scheduler,
            loss_fn=loss_fn,
            progress=False,
            max_grad_norm=None,
        )
    assert len(calls) == len(data) == 4
    assert scheduler.last_epoch == len(data) - 1  # every step but the skipped one
