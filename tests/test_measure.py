"""helpers.measure: counting parameters and FLOPs, and the timer."""

import time

import torch
from torch import nn

from helpers import measure as M
from helpers.cifar import CifarNet


def test_parameters_and_flops_of_the_cifar_net():
    model = CifarNet(widths=(8, 16, 32))
    assert model(torch.randn(3, 3, 32, 32)).shape == (3, 10)
    convs = 3 * 24 * 4 + 24 + (24 * 8 + 8 * 8 + 8 * 16 + 16 * 16 + 16 * 32 + 32 * 32) * 9
    norms = 2 * (8 + 16 + 32) * 2  # weight and bias of 6 BatchNorms
    assert M.count_parameters(model) == convs + norms + 32 * 10
    assert M.count_parameters(model, trainable_only=True) == convs + norms // 2 + 32 * 10
    total, per_module = M.count_flops(nn.Conv2d(3, 4, 3, padding=1, bias=False), torch.randn(1, 3, 8, 8))
    assert total == 2 * 3 * 4 * 9 * 64


def test_layer_summary_rows_follow_the_call_order_and_add_up():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 2))
    rows = M.layer_summary(model, torch.randn(1, 3, 8, 8))
    assert [r["kind"] for r in rows] == ["Conv2d", "ReLU", "Flatten", "Linear"]
    assert rows[0]["output"] == (4, 8, 8) and sum(r["params"] for r in rows) == M.count_parameters(model)
    assert rows[0]["flops"] == 2 * 3 * 4 * 9 * 64 and rows[3]["flops"] == 2 * 256 * 2


def test_timer_measures_a_sleep_on_the_cpu():
    with M.Timer("cpu") as timer:
        time.sleep(0.05)
    assert 0.04 < timer.seconds < 1.0
