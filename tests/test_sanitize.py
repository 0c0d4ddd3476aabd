"""tests/sanitize.cfg, read the way nbval reads it: what each rule blanks, and what it must leave alone."""

import re
from pathlib import Path

import pytest
from nbval.plugin import get_sanitize_patterns

PATTERNS = get_sanitize_patterns((Path(__file__).parent / "sanitize.cfg").read_text())


def sanitize(text: str) -> str:
    """What nbval compares: every rule applied in file order."""
    for regex, replace in PATTERNS:
        text = re.sub(regex, replace, text)
    return text


def test_every_rule_is_read():
    assert [replace for _, replace in PATTERNS] == ["RATE", "DURATION", "PATH", "ADDRESS"]


@pytest.mark.parametrize(
    "text, expected",
    [
        # what changes from run to run or machine to machine is blanked
        ("epoch 1 | 81.5 s | 34,074 samples/s | val_loss 1.99", "epoch 1 | DURATION | RATE | val_loss 1.99"),
        ("tokenised 6,000 reviews in 12.3 s, 3.4it/s", "tokenised 6,000 reviews in DURATION, RATE"),
        ("took 250 ms, then 2 min", "took DURATION, then DURATION"),
        ("saved to /Users/learner/course/runs/bert-imdb/", "saved to PATH"),
        ("data: /tmp/x.parquet", "data: PATH"),
        ("<Model object at 0x7f9f96201710>", "<Model object at ADDRESS>"),
        # what a lesson checks is kept: ratios, derivatives, figure sizes, dtype names, relative paths, counts
        ("epoch 1/3: 1/3 of the batches", "epoch 1/3: 1/3 of the batches"),
        ("dy/dx: autograd 11.58 | d(x * x)/dx = 4.0", "dy/dx: autograd 11.58 | d(x * x)/dx = 4.0"),
        ("<Figure size 1120x320 with 16 Axes>", "<Figure size 1120x320 with 16 Axes>"),
        ("float16s and 3 samples, 12 steps", "float16s and 3 samples, 12 steps"),
        ("saved in runs/bert-imdb", "saved in runs/bert-imdb"),
    ],
)
def test_what_is_blanked_and_what_is_kept(text, expected):
    assert sanitize(text) == expected
