"""The checks of notebook 03's exercises (exercises/nb03.py): right answers pass, each kind of wrong one fails."""

import pytest
import torch

from exercises import CheckFailed, nb03


@pytest.fixture
def strict_mode(monkeypatch):
    monkeypatch.setenv("COURSE_STRICT_CHECKS", "1")


class ThreeLetterPieces:
    """A stand-in tokenizer: words cut into pieces of 3 letters, so words of 7+ letters have 3+ pieces."""

    def tokenize(self, word):
        return [word[:3]] + ["##" + word[i:i + 3] for i in range(3, len(word), 3)]


TEXTS = ["Unbelievable acting, unbelievable plot.<br />Wonderful, wonderful, WONDERFUL music.",
         "A wonderful cast; the cinematography is unbelievable and the soundtrack wonderful too.",
         "Cinematography and soundtrack: soundtrack first."]


def test_nb03_split_words(strict_mode):
    tok = ThreeLetterPieces()
    # wonderful 5, unbelievable 3, soundtrack 3, cinematography 2 (other words split into fewer than 3 pieces)
    right = [("wonderful", 5, tok.tokenize("wonderful")), ("soundtrack", 3, tok.tokenize("soundtrack")),
             ("unbelievable", 3, tok.tokenize("unbelievable"))]
    assert nb03.check_split_words(right, TEXTS, tok, k=3)
    tie_swapped = [right[0], right[2], right[1]]          # equal counts may come in either order
    assert nb03.check_split_words(tie_swapped, TEXTS, tok, k=3)
    wrong_count = [("wonderful", 4, right[0][2]), *right[1:]]
    not_top = [right[0], right[1], ("cinematography", 2, tok.tokenize("cinematography"))]
    short_word = [right[0], right[1], ("acting", 1, tok.tokenize("acting"))]
    for wrong in (wrong_count, not_top, short_word, right[:2], None):
        with pytest.raises(CheckFailed):
            nb03.check_split_words(wrong, TEXTS, tok, k=3)


def _tiny_classifier():
    from transformers import BertConfig, BertForSequenceClassification
    torch.manual_seed(0)
    return BertForSequenceClassification(BertConfig(vocab_size=40, hidden_size=8, num_hidden_layers=1,
                                                    num_attention_heads=2, intermediate_size=16,
                                                    max_position_embeddings=16))


def _frozen():
    model = _tiny_classifier()
    for part in (model.bert.embeddings, model.bert.encoder):
        part.requires_grad_(False)
    return model


def run(accuracy, samples_per_s, seconds=10.0):
    return {"accuracy": accuracy, "samples_per_s": samples_per_s, "seconds": seconds}


def test_nb03_frozen_encoder_lesson_size(strict_mode):
    big = nb03.LESSON_TRAIN_SIZE
    good = {"frozen": run(0.64, 30.0), "full": run(0.83, 11.0)}
    assert nb03.check_frozen_encoder(_frozen(), good, n_train=big)
    everything_frozen = _tiny_classifier().requires_grad_(False)
    cases = [(_tiny_classifier(), good),                                   # nothing frozen
             (everything_frozen, good),                                    # the head frozen too
             (_frozen(), {"frozen": run(0.70, 30.0), "full": run(0.72, 11.0)}),   # no clear win
             (_frozen(), {"frozen": run(0.60, 30.0), "full": run(0.70, 11.0)}),   # full below the bound
             (_frozen(), {"frozen": run(0.64, 11.0), "full": run(0.83, 11.0)}),   # frozen not faster
             (_frozen(), {"frozen": (0.64, 30.0), "full": (0.83, 11.0)}),         # not what train_and_validate gives
             (None, None)]
    for model, results in cases:
        with pytest.raises(CheckFailed):
            nb03.check_frozen_encoder(model, results, n_train=big)


def test_nb03_frozen_encoder_small_runs_check_the_mechanics_only(strict_mode, capsys):
    near_chance = {"frozen": run(0.52, 30.0), "full": run(0.50, 11.0)}
    assert nb03.check_frozen_encoder(_frozen(), near_chance, n_train=96)
    assert "mechanics only" in capsys.readouterr().out
    with pytest.raises(CheckFailed):                                       # the mechanics still count
        nb03.check_frozen_encoder(_tiny_classifier(), near_chance, n_train=96)
    with pytest.raises(CheckFailed):
        nb03.check_frozen_encoder(_frozen(), {"frozen": run(1.5, 30.0), "full": run(0.5, 11.0)}, n_train=96)


def test_nb03_lengths(strict_mode):
    big = nb03.LESSON_TRAIN_SIZE
    good = {64: run(0.80, 28.0, 35.0), 128: run(0.835, 12.0, 83.0)}
    assert nb03.check_lengths(good, (128, 64), n_train=big)
    for wrong in ({64: run(0.80, 28.0, 35.0), 128: run(0.805, 12.0, 83.0)},   # 128 not clearly better
                  {64: run(0.80, 12.0, 80.0), 128: run(0.835, 12.0, 83.0)},   # not re-encoded: same time
                  {32: good[64], 128: good[128]},                             # the wrong lengths
                  None):
        with pytest.raises(CheckFailed):
            nb03.check_lengths(wrong, (64, 128), n_train=big)
    assert nb03.check_lengths({32: run(0.5, 50.0, 1.0), 64: run(0.49, 40.0, 1.2)}, (32, 64), n_train=96)
