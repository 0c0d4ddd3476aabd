"""helpers.optim: AdamW without decay on biases and LayerNorm, fused AdamW, warmup steps with the library schedule."""

import pytest
import torch
from torch import nn

from helpers import optim


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.lin = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 2)
        self.head.weight.requires_grad_(False)


def test_no_weight_decay_on_biases_and_layernorm():
    decay, no_decay = optim.decay_parameter_names(TinyNet())
    assert decay == ["emb.weight", "lin.weight"]
    assert no_decay == ["lin.bias", "norm.weight", "norm.bias", "head.bias"]
    opt = optim.make_adamw(TinyNet(), lr=1e-3, weight_decay=0.1)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]
    assert [len(g["params"]) for g in opt.param_groups] == [2, 4]
    assert opt.defaults["fused"]  # the model is on the CPU, where fused AdamW exists too


def test_fused_adamw_steps_like_the_default_one():
    torch.manual_seed(0)
    nets = [TinyNet(), TinyNet()]
    nets[1].load_state_dict(nets[0].state_dict())
    opts = [
        optim.make_adamw(nets[0], lr=1e-2, weight_decay=0.1, fused=False),
        optim.make_adamw(nets[1], lr=1e-2, weight_decay=0.1),
    ]
    assert not opts[0].defaults["fused"] and opts[1].defaults["fused"]
    start = nets[0].lin.weight.detach().clone()
    x = torch.randint(0, 10, (8, 3))
    for net, opt in zip(nets, opts):
        for _ in range(3):
            net.lin(net.norm(net.emb(x))).pow(2).sum().backward()
            opt.step()
            opt.zero_grad()
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    assert not torch.allclose(nets[0].lin.weight, start)  # the steps did move the weights


def test_linear_warmup_then_linear_decay():
    """Notebook 03's schedule: our warmup share, the library's linear warmup-then-decay."""
    from transformers import get_linear_schedule_with_warmup

    assert optim.warmup_steps_for(1000, 0.1) == 100 and optim.warmup_steps_for(95, 0.1) == 10
    assert optim.warmup_steps_for(1000, 7) == 7
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=2.0)
    sched = get_linear_schedule_with_warmup(opt, optim.warmup_steps_for(10, 0.2), 10)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.0, 1.0, 2.0, 1.75, 1.5, 1.25, 1.0, 0.75, 0.5, 0.25])
    assert opt.param_groups[0]["lr"] == 0.0
