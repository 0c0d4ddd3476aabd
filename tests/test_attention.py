"""Tests of helpers.attention on a tiny random BERT and a tiny vocabulary: no download, a few seconds."""

import re

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")

from diagrams import nb04 as views  # noqa: E402  (notebook 04's views)
from helpers import attention as attn_lib  # noqa: E402
from helpers import bert  # noqa: E402
from helpers.errors import CourseError  # noqa: E402

WORDS = ["the", "movie", "was", "good", "bad", "it", "a", "film", "never", "bored", "me", ".", ",", "<b>"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A saved tiny BertForSequenceClassification (3 layers x 4 heads, eager) with its WordPiece tokenizer."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    folder = tmp_path_factory.mktemp("tiny-bert")
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    tokenizer = BertTokenizer(str(vocab), do_lower_case=True)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(WORDS) + 5,
        hidden_size=16,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=32,
        max_position_embeddings=128,
        num_labels=2,
    )
    model = BertForSequenceClassification(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    model, tokenizer = bert.load_eager(folder, classifier=True)
    return folder, model, tokenizer


def test_load_eager_gives_eager_attention_in_eval_mode(tiny):
    _, model, _ = tiny
    assert model.config._attn_implementation == "eager"
    assert not model.training


def test_load_attention_model_prefers_the_best_finetuned_run(tiny, tmp_path, monkeypatch, capsys):
    import shutil

    folder, _, _ = tiny
    monkeypatch.chdir(tmp_path)  # no course checkout here: runs/ is in the working directory
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    for run in ("smoke", "cpu"):
        shutil.copytree(folder, tmp_path / "runs" / run / "bert-imdb")
    model, tokenizer, kind = bert.load_attention_model()
    assert kind == "fine-tuned" and hasattr(model, "classifier")
    assert "fine-tuned in its 'cpu' run (runs/cpu/bert-imdb)" in capsys.readouterr().out
    shutil.rmtree(tmp_path / "runs" / "cpu")
    bert.load_attention_model()
    assert "fine-tuned in its 'smoke' run (runs/smoke/bert-imdb)" in capsys.readouterr().out


def test_load_attention_model_falls_back_to_the_pretrained_one(tiny, tmp_path, monkeypatch, capsys):
    folder, _, _ = tiny
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(bert, "resolve_bert", lambda choice="auto": str(folder))
    _, _, kind = bert.load_attention_model()
    assert kind == "pretrained"
    assert "No fine-tuned model" in capsys.readouterr().out


def test_get_attentions_one_tensor_per_layer(tiny):
    _, model, tokenizer = tiny
    enc = attn_lib.encode(tokenizer, "the movie was good .")
    attn = attn_lib.get_attentions(model, enc)
    n = enc["input_ids"].shape[1]
    assert attn.shape == (3, 4, n, n)
    assert torch.allclose(attn.sum(-1), torch.ones(3, 4, n), atol=1e-6)


def test_get_attentions_refuses_sdpa(tiny):
    from transformers import AutoModelForSequenceClassification

    folder, _, tokenizer = tiny
    sdpa = AutoModelForSequenceClassification.from_pretrained(folder, attn_implementation="sdpa").eval()
    with pytest.raises(CourseError, match="eager"):
        attn_lib.get_attentions(sdpa, attn_lib.encode(tokenizer, "the movie"))


def test_encode_caps_long_inputs_and_says_so(tiny, capsys):
    _, _, tokenizer = tiny
    enc = attn_lib.encode(tokenizer, " ".join(["film"] * 100), max_tokens=20)
    assert enc["input_ids"].shape[1] == 20
    assert "Input capped: 102 tokens" in capsys.readouterr().out
    attn_lib.encode(tokenizer, "the film", max_tokens=20)
    assert capsys.readouterr().out == ""


def test_split_heads_gives_each_head_its_slice():
    x = torch.arange(2 * 3 * 8, dtype=torch.float32).view(2, 3, 8)
    heads = attn_lib.split_heads(x, 4)
    assert heads.shape == (2, 4, 3, 2)
    assert torch.equal(heads[1, 2, 0], x[1, 0, 4:6])


def test_scaled_dot_product_attention_masks_padding():
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 1, 5, 4).unbind(0)
    mask = torch.tensor([[1, 1, 1, 0, 0]])
    out, weights = attn_lib.scaled_dot_product_attention(q, k, v, mask)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 1, 5))
    assert torch.all(weights[..., 3:] == 0)
    reference = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask.bool()[:, None, None, :])
    assert torch.allclose(out, reference, atol=1e-6)


def test_from_scratch_reproduces_every_layer_with_padding(tiny):
    _, model, tokenizer = tiny
    batch = tokenizer(["the movie was good", "it was a bad film , never bored me"], padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**batch, output_attentions=True, output_hidden_states=True)
        for layer in range(3):
            ours = attn_lib.self_attention_weights(
                model.base_model.encoder.layer[layer].attention.self, out.hidden_states[layer], batch["attention_mask"]
            )
            assert (ours - out.attentions[layer]).abs().max() < 1e-5


def _ids(tokens, tokenizer):
    return torch.tensor(tokenizer.convert_tokens_to_ids(tokens))


def test_previous_token_score_of_a_previous_token_head(tiny):
    _, _, tokenizer = tiny
    ids = _ids(["[CLS]", "the", "movie", "was", "good", "[SEP]"], tokenizer)
    special = attn_lib.special_token_mask(tokenizer, ids)
    assert special.tolist() == [True, False, False, False, False, True]
    attn = torch.zeros(1, 1, 6, 6)
    attn[0, 0, 0, 0] = 1
    for i in range(1, 6):
        attn[0, 0, i, i - 1] = 1
    values, valid = attn_lib.previous_token_scores(attn, ids, special)
    assert values[..., valid].mean() == 1
    uniform, _ = attn_lib.previous_token_scores(torch.full((1, 1, 6, 6), 1 / 6), ids, special)
    assert torch.allclose(uniform[..., valid], torch.full((1, 1, 4), 1 / 6))


def test_token_and_same_token_scores(tiny):
    _, _, tokenizer = tiny
    ids = _ids(["[CLS]", "the", "movie", "the", "film", "[SEP]"], tokenizer)
    special = attn_lib.special_token_mask(tokenizer, ids)
    attn = torch.zeros(1, 1, 6, 6)
    attn[0, 0, :, 5] = 0.5  # half of everything on [SEP]
    attn[0, 0, 1, 3] = 0.5  # first 'the' -> second 'the'
    attn[0, 0, 3, 1] = 0.25  # second 'the' -> first 'the'
    attn[0, 0, 3, 3] = 0.25  # ... and itself, which does not count
    attn[0, 0, [0, 2, 4, 5], [0, 2, 4, 5]] = 0.5
    sep, valid = attn_lib.token_scores(attn, ids, special, token_id=tokenizer.sep_token_id)
    assert valid.tolist() == [False, True, True, True, True, False]
    assert torch.allclose(sep[..., valid], torch.full((1, 1, 4), 0.5))
    same, repeats = attn_lib.same_token_scores(attn, ids, special)
    assert repeats.tolist() == [False, True, False, True, False, False]
    assert torch.allclose(same[0, 0, repeats], torch.tensor([0.5, 0.25]))


def test_head_scores_and_chance_on_real_runs(tiny):
    _, model, tokenizer = tiny
    texts = ["the movie was good . the film was good", "it was a bad movie , a bad film", "never bored me"]
    results = attn_lib.head_scores(
        model,
        tokenizer,
        texts,
        {"previous token": attn_lib.previous_token_scores, "same token": attn_lib.same_token_scores},
        batch_size=2,
    )
    for name, result in results.items():  # the batched (padded) means equal the means over texts one at a time
        assert result["scores"].shape == (3, 4)
        scorer = {"previous token": attn_lib.previous_token_scores, "same token": attn_lib.same_token_scores}[name]
        sums, count = 0, 0
        for text in texts:
            enc = attn_lib.encode(tokenizer, text)
            ids = enc["input_ids"][0]
            values, valid = scorer(
                attn_lib.get_attentions(model, enc), ids, attn_lib.special_token_mask(tokenizer, ids)
            )
            sums, count = sums + values[..., valid].sum(-1), count + int(valid.sum())
        assert np.allclose(result["scores"], (sums / count).numpy(), atol=1e-5)
        assert 0 < result["chance"] < 1
    # chance of the previous-token score: the mean of 1/n over the real tokens of each text
    lengths = [len(tokenizer(t)["input_ids"]) for t in texts]
    expected = sum((n - 2) / n for n in lengths) / sum(n - 2 for n in lengths)
    assert results["previous token"]["chance"] == pytest.approx(expected)


def test_top_heads_best_first():
    import numpy as np

    scores = np.array([[0.1, 0.9], [0.5, 0.2]])
    assert attn_lib.top_heads(scores, k=2) == [(0, 1, pytest.approx(0.9)), (1, 0, pytest.approx(0.5))]


def test_rollout_by_hand():
    eye = torch.eye(3).expand(2, 2, 3, 3)
    assert torch.allclose(attn_lib.attention_rollout(eye), torch.eye(3).expand(2, 3, 3))
    uniform = torch.full((2, 1, 3, 3), 1 / 3)
    assert torch.allclose(attn_lib.attention_rollout(uniform, residual=0.0)[-1], torch.full((3, 3), 1 / 3))
    # one layer where everyone looks at token 0: with the residual, half stays, half goes to token 0
    to_first = torch.zeros(1, 1, 3, 3)
    to_first[..., 0] = 1
    expected = torch.tensor([[1.0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5]])
    assert torch.allclose(attn_lib.attention_rollout(to_first)[0], expected)
    two = attn_lib.attention_rollout(to_first.expand(2, 1, 3, 3))[-1]
    assert torch.allclose(two, expected @ expected)


def test_head_view_svg_is_deterministic_escaped_and_scriptless():
    torch.manual_seed(0)
    attn = torch.softmax(torch.randn(4, 5, 5), dim=-1)
    tokens = ["[CLS]", "<b>", "a&b", "film", "[SEP]"]
    svg = views.head_view_svg(attn, tokens, heads=[1], title="Layer 0, head 1")
    assert svg == views.head_view_svg(attn, tokens, heads=[1], title="Layer 0, head 1")
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert (
        "<script" not in svg
        and not re.search(r"\bid=", svg)
        and "http://" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
    )
    assert "&lt;b&gt;" in svg and "a&amp;b" in svg and "<b>" not in svg
    assert svg.count("<line") == int((attn[1] >= 0.02).sum())
    only = views.head_view_svg(attn, tokens, heads=[1], query=2, min_weight=0.0)
    assert only.count("<line") == 5
    every = views.head_view_svg(attn, tokens, min_weight=0.0, token_types=[0, 0, 0, 1, 1])
    assert every.count("<line") == 4 * 25
    assert every.count('fill="#b5542d"') == 4  # the second sentence's two tokens, left and right


def test_explorer_follows_its_controls(tiny):
    _, model, tokenizer = tiny
    explorer = views.AttentionExplorer(model, tokenizer, "the movie was good", layer=0, head=1)
    assert "Layer 0, head 1" in explorer.view.value
    explorer.layer.value = 2
    assert "Layer 2, head 1" in explorer.view.value
    explorer.head.value = -1
    assert "Layer 2, all heads" in explorer.view.value
    explorer.query.value = 1
    attn = attn_lib.get_attentions(model, attn_lib.encode(tokenizer, "the movie was good"))[2, :, 1]  # layer 2, query 1
    assert explorer.view.value.count("<line") == int((attn >= 0.05).sum()) > 0  # all heads: weights of 0.05 and up
    explorer.text.value = " ".join(["film"] * 80)
    explorer.text_pair.value = "never bored me"
    explorer.run()
    assert explorer.capped and len(explorer.tokens) == attn_lib.MAX_VIEW_TOKENS
    assert "capped" in explorer.status.value
    assert len(explorer.query.options) == attn_lib.MAX_VIEW_TOKENS + 1 and explorer.query.value == -1


def test_cls_summary_and_top_words(tiny):
    _, model, tokenizer = tiny
    texts = ["the movie was good . the film was good", "it was a bad movie", "never bored me"]
    summary = attn_lib.cls_attention_summary(model, tokenizer, texts, batch_size=2)
    assert summary["special_share"].shape == summary["entropy"].shape == (3,)
    share, entropy = 0, 0  # the same per-layer means, from one text at a time
    for text in texts:
        enc = attn_lib.encode(tokenizer, text, max_tokens=128)
        rows = attn_lib.get_attentions(model, enc)[:, :, 0, :]
        special = attn_lib.special_token_mask(tokenizer, enc["input_ids"][0])
        share = share + rows[..., special].sum(-1).mean(-1) / len(texts)
        entropy = entropy + (-(rows * rows.log()).sum(-1) / np.log(rows.shape[-1])).mean(-1) / len(texts)
    assert np.allclose(summary["special_share"], share.numpy(), atol=1e-5)
    assert np.allclose(summary["entropy"], entropy.numpy(), atol=1e-5) and (summary["entropy"] < 1).all()
    assert "[CLS]" not in summary["words"] and summary["words"]["was"][1] == 2  # 3 times, in 2 texts
    top = attn_lib.top_words(summary["words"], k=3, min_texts=2)
    assert all(count >= 2 for _, _, count in top) and [m for _, m, _ in top] == sorted(
        [m for _, m, _ in top], reverse=True
    )


def test_plots_have_one_panel_per_head_and_score(tiny):
    import numpy as np

    attn = torch.softmax(torch.randn(3, 4, 5, 5), dim=-1)
    assert len(views.plot_model_view(attn).axes) == 12
    fig = views.plot_head_scores(
        {
            "a": {"scores": np.zeros((3, 4)), "chance": 0.1},
            "b": {"scores": np.ones((3, 4)), "chance": 0.2},
            "c": {"scores": np.ones((3, 4)), "chance": 0.3},
        }
    )
    visible = [ax for ax in fig.axes if ax.get_visible() and ax.axison and ax.get_title()]
    assert len(visible) == 3
