"""Notebook 01's new checks (§4.5 softmax and cross-entropy): the right answer passes, each typical mistake fails.

The checks of 01's exercises 1-7 are tested in tests/test_exercises.py.
"""

import pytest
import torch

from exercises import CheckFailed, nb01


@pytest.fixture
def strict_mode(monkeypatch):
    monkeypatch.setenv("COURSE_STRICT_CHECKS", "1")


def cross_entropy_of(stable=True, mean=True, smoothing_others="K", detach=False):
    """A cross-entropy from logits and labels, right by default, with one chosen mistake."""

    def cross_entropy(logits, labels, smoothing=0.0):
        k = logits.shape[1]
        if stable:
            m = logits.max(dim=1, keepdim=True).values
            log_probs = logits - m - (logits - m).exp().sum(dim=1, keepdim=True).log()
        else:
            log_probs = (logits.exp() / logits.exp().sum(dim=1, keepdim=True)).log()
        if detach:
            log_probs = log_probs.detach()
        others = smoothing / k if smoothing_others == "K" else smoothing / (k - 1)
        target = torch.full_like(logits, others)
        target.scatter_(1, labels.unsqueeze(1), 1 - smoothing + (others if smoothing_others == "K" else 0.0))
        rows = -(target * log_probs).sum(dim=1)
        return rows.mean() if mean else rows.sum()

    return cross_entropy


def test_cross_entropy_right_answer_passes(strict_mode):
    assert nb01.check_cross_entropy(cross_entropy_of()) is None  # strict mode: raises on any failure


@pytest.mark.parametrize(
    "mistake, failed",
    [
        (dict(stable=False), "stable for logits"),  # e^1000 overflows: inf / inf
        (dict(mean=False), "equals torch.nn.functional.cross_entropy"),  # a sum over the rows, not a mean
        (dict(smoothing_others="K-1"), "label smoothing"),  # 1 - eps on the label, eps / (K - 1) on the others
        (dict(detach=True), "gradient"),  # autograd cannot follow
    ],
)
def test_cross_entropy_mistakes_fail(strict_mode, mistake, failed):
    with pytest.raises(CheckFailed, match=failed):
        nb01.check_cross_entropy(cross_entropy_of(**mistake))


def test_cross_entropy_unanswered(strict_mode):
    with pytest.raises(CheckFailed, match="not answered"):
        nb01.check_cross_entropy(lambda logits, labels, smoothing=0.0: None)
