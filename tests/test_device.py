"""Device, precision and seeding: one choice, made the same way everywhere."""

import random

import numpy as np
import pytest
import torch

from helpers import device as dev


def _no_accelerators(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def test_cpu_when_no_accelerator(monkeypatch, capsys):
    _no_accelerators(monkeypatch)
    assert dev.get_device().type == "cpu"
    assert "Using device: cpu" in capsys.readouterr().out


def test_cuda_first_then_mps(monkeypatch):
    _no_accelerators(monkeypatch)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert dev.get_device(verbose=False).type == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert dev.get_device(verbose=False).type == "cuda"


def test_autocast_dtype(monkeypatch):
    monkeypatch.delenv("COURSE_PRECISION", raising=False)  # CI's second run sets it; this tests the device's choice
    assert dev.autocast_dtype(torch.device("cpu")) is None
    assert dev.autocast_dtype(torch.device("mps")) is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert dev.autocast_dtype(torch.device("cuda")) is torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert dev.autocast_dtype(torch.device("cuda")) is torch.float16


@pytest.mark.parametrize("dtype, expected", [(torch.float16, True), (torch.bfloat16, False), (None, False)])
def test_grad_scaler_only_for_fp16(dtype, expected):
    assert dev.needs_grad_scaler(dtype) is expected


def test_seed_everything_repeats_all_generators():
    def draw():
        return random.random(), np.random.rand(), torch.rand(3)

    dev.seed_everything(123)
    a = draw()
    dev.seed_everything(123)
    b = draw()
    dev.seed_everything(124)
    c = draw()
    assert a[:2] == b[:2] and torch.equal(a[2], b[2])
    assert a[0] != c[0] and not torch.equal(a[2], c[2])


def test_environment_report_names_versions_and_device():
    report = dev.environment_report()
    assert f"torch        {torch.__version__}" in report
    device = dev.get_device(verbose=False)
    assert f"device       {dev.describe_device(device)}\n" in report
    assert f"precision    {dev.autocast_dtype(device) or 'float32 (no autocast)'}" in report
