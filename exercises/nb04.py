"""Checks of notebook 04's exercises (attention in BERT): each tests behaviour on inputs of the check's own
(random attention, random queries and keys, a second way of knocking out a head), never a stored answer."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from . import Checker, exercise


def _random_attention(*shape: int, seed: int = 0) -> torch.Tensor:
    """Random attention rows (non-negative, each summing to 1) of shape (..., n, n)."""
    g = torch.Generator().manual_seed(seed)
    return (3 * torch.randn(*shape, generator=g)).softmax(-1)


@exercise(
    "Exercise 1 (the head where one token looks most at another)",
    "define strongest_head(attn, query, key) returning (layer, head)",
)
def check_strongest_head(c: Checker, strongest_head: Callable, attn: torch.Tensor, query: int, key: int) -> None:
    """Exercise 1: strongest_head(attn, query, key) -> (layer, head) where attn[layer, head, query, key] is largest."""
    cases = [
        (_random_attention(3, 5, 6, 6, seed=1), 4, 1),
        (_random_attention(6, 12, 9, 9, seed=2), 8, 0),
        (_random_attention(2, 7, 4, 4, seed=3), 0, 3),
    ]
    edge = _random_attention(4, 3, 5, 5, seed=4) * 0.5
    edge[-1, -1, 2, 3] = 0.99  # the largest weight in the last layer's last head
    cases.append((edge, 2, 3))

    def best(attn, q, k):
        return attn[:, :, q, k].max().item()

    def ints(out):
        return isinstance(out, tuple) and len(out) == 2 and all(isinstance(i, int) for i in out)

    c.check(
        lambda: all(ints(strongest_head(a, q, k)) for a, q, k in cases),
        "returns a pair of Python ints (layer, head)",
        "turn tensor indices into ints with int(...), and return them as a tuple (layer, head)",
    )
    c.check(
        lambda: all(a[(*strongest_head(a, q, k), q, k)].item() == best(a, q, k) for a, q, k in cases),
        "the head it names has the largest weight from `query` to `key`, for models of several shapes",
        "look at the (layers, heads) tensor attn[:, :, query, key]; turn its flat argmax back into "
        "(layer, head) with the number of HEADS (attn.shape[1])",
    )
    c.check(
        lambda: attn[(*strongest_head(attn, query, key), query, key)].item() == best(attn, query, key),
        "on this notebook's attention tensor too",
        "the same function, applied to A and your two positions",
    )


@exercise("Exercise 2 (a next-token score)", "define next_token_scores(attn, ids, special) returning (values, valid)")
def check_next_token_scores(c: Checker, next_token_scores: Callable) -> None:
    """Exercise 2: a scorer in the style of previous_token_scores: each query's weight on the token after it."""
    n = 7
    attn = _random_attention(2, 3, n, n, seed=5)
    ids = torch.tensor([101, 7, 8, 7, 9, 10, 102])
    special = torch.tensor([True, False, False, False, False, False, True])
    pair_special = torch.tensor([True, False, False, True, False, False, True])  # [CLS] a a [SEP] b b [SEP]

    def values_and_valid(a=attn, s=special):
        values, valid = next_token_scores(a.clone(), ids, s)
        return values, valid

    def right_values():
        values, _ = values_and_valid()
        rows = torch.arange(n - 1)
        return tuple(values.shape) == (2, 3, n) and torch.allclose(values[..., :-1], attn[..., rows, rows + 1])

    def right_queries(s):
        values, valid = values_and_valid(s=s)
        valid = torch.as_tensor(valid, dtype=torch.bool)
        if tuple(valid.shape) != (n,) or not torch.equal(valid[:-1], ~s[:-1]):
            return False
        return not valid[-1] or bool((values[..., -1] == 0).all())  # the last token has no next token

    c.check(
        right_values,
        "values[..., i] is the weight of query i on token i + 1, shape (layers, heads, tokens)",
        "index attn[..., idx, idx + 1] with idx = torch.arange(n - 1), into a zero tensor of shape attn.shape[:-1]",
    )
    c.check(
        lambda: right_queries(special),
        "valid marks the real tokens, not [CLS] or [SEP]",
        "return ~special as the second value, like previous_token_scores",
    )
    c.check(
        lambda: right_queries(pair_special),
        "also for a sentence pair, with a [SEP] in the middle",
        "use the special mask you are given rather than dropping the first and last positions",
    )
    shifted = torch.zeros(1, 1, n, n)
    shifted[0, 0, torch.arange(n - 1), torch.arange(1, n)] = 1.0
    shifted[0, 0, n - 1, n - 1] = 1.0
    c.check(
        lambda: bool((next_token_scores(shifted, ids, special)[0][..., 1:-1] == 1).all()),
        "a head that always looks at the next token scores 1",
        "the value of query i is attn[..., i, i + 1] itself, not a sum or a mean over rows",
    )
    c.check(
        lambda: (next_token_scores(attn, ids, special), torch.equal(attn, _random_attention(2, 3, n, n, seed=5)))[1],
        "the attention tensor is left unchanged",
        "write into a new tensor (attn.new_zeros(...)), not into attn",
    )


@exercise("Exercise 3 (focused and broad heads)", "define head_entropy(attn) returning a (layers, heads) tensor")
def check_head_entropy(c: Checker, head_entropy: Callable, attn: torch.Tensor | None = None) -> None:
    """Exercise 3: head_entropy(attn) -> (layers, heads) mean row entropy divided by log(tokens)."""
    n = 6
    uniform = torch.full((2, 3, n, n), 1 / n)
    one_hot = torch.eye(n).expand(2, 3, n, n).clone()
    rand = _random_attention(3, 4, n, n, seed=6)
    expected = torch.distributions.Categorical(probs=rand).entropy().mean(-1) / torch.log(torch.tensor(float(n)))

    def out(a):
        return torch.as_tensor(head_entropy(a.clone()), dtype=torch.float32)

    c.check(
        lambda: tuple(out(rand).shape) == (3, 4),
        "one number per (layer, head)",
        "sum over the keys (last dimension), then average over the queries (the one before)",
    )
    c.check(
        lambda: torch.allclose(out(uniform), torch.ones(2, 3), atol=1e-5),
        "uniform attention gives 1",
        "divide by log(n), where n is the number of tokens (attn.shape[-1])",
    )
    c.check(
        lambda: bool(torch.isfinite(out(one_hot)).all()) and torch.allclose(out(one_hot), torch.zeros(2, 3), atol=1e-5),
        "attention on one token only gives 0 (and no NaN from 0 log 0)",
        "0 log 0 is 0: take the log of a.clamp_min(1e-12), or use torch.special.xlogy(a, a)",
    )
    c.check(
        lambda: torch.allclose(out(rand), expected, atol=1e-4),
        "random rows agree with torch.distributions.Categorical(probs=...).entropy()",
        "entropy is -sum_j a_ij log a_ij (natural log), averaged over the rows i",
    )
    if attn is not None:
        c.check(
            lambda: bool(((out(attn) >= -1e-5) & (out(attn) <= 1 + 1e-5)).all()),
            "on this notebook's review: every value between 0 and 1",
            "normalise by log of the number of keys",
        )


@exercise("Exercise 4 (a causal mask)", "define causal_attention(q, k, v) returning (output, weights)")
def check_causal_attention(
    c: Checker,
    causal_attention: Callable,
    q: torch.Tensor | None = None,
    k: torch.Tensor | None = None,
    v: torch.Tensor | None = None,
) -> None:
    """Exercise 4: causal_attention(q, k, v) -> (output, weights) with no weight on future tokens."""
    g = torch.Generator().manual_seed(7)
    cases = [tuple(torch.randn(2, 3, n, 8, generator=g) for _ in range(3)) for n in (1, 5, 9)]
    if q is not None:
        cases.append((q.detach().float().cpu(), k.detach().float().cpu(), v.detach().float().cpu()))

    def each(test):
        return all(test(*causal_attention(*case), *case) for case in cases)

    c.check(
        lambda: each(
            lambda out, w, q, k, v: (
                tuple(w.shape) == tuple(q.shape[:-1]) + (k.shape[-2],) and tuple(out.shape) == tuple(v.shape)
            )
        ),
        "weights (..., tokens, tokens) and output (..., tokens, d)",
        "return (weights @ v, weights)",
    )
    c.check(
        lambda: each(lambda out, w, *_: bool((w.triu(diagonal=1) == 0).all())),
        "no weight above the diagonal: no token looks at a later one",
        "fill the scores where column > row (torch.triu(ones, diagonal=1).bool()) with float('-inf') "
        "before the softmax",
    )
    c.check(
        lambda: each(lambda out, w, *_: torch.allclose(w.sum(-1), torch.ones(w.shape[:-1]), atol=1e-5)),
        "every row still sums to 1",
        "mask the scores, then take the softmax (not the other way round)",
    )
    c.check(
        lambda: each(lambda out, w, *_: torch.allclose(w[..., 0, 0], torch.ones(w.shape[:-2]))),
        "the first token attends only to itself",
        "row 0 may look at column 0 only",
    )
    c.check(
        lambda: each(
            lambda out, w, q, k, v: torch.allclose(
                out, nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True), atol=1e-5
            )
        ),
        "the output equals PyTorch's scaled_dot_product_attention(..., is_causal=True)",
        "scale the scores by 1 / sqrt(d) with d = q.shape[-1], as in section 1",
    )


def _cls(model: nn.Module, batch: dict) -> torch.Tensor:
    """The final hidden state of [CLS] for a batch, with no hooks of ours."""
    with torch.no_grad():
        return model(**batch, output_hidden_states=True).hidden_states[-1][:, 0].float()


@exercise("Exercise 5 (knock out a head)", "define cls_vectors(model, batch, knock_out=None) returning (cls, logits)")
def check_knock_out(c: Checker, cls_vectors: Callable, model: nn.Module, tokenizer, texts: Sequence[str]) -> None:
    """Exercise 5: cls_vectors(model, batch, knock_out) zeroes one head's output and leaves the model as it was.

    The reference knocks the same head out another way: it zeroes the columns of the attention's output
    projection that read that head's slice (which removes exactly that head's contribution).
    """
    device = next(model.parameters()).device
    batch = dict(
        tokenizer(list(texts[:4]), truncation=True, max_length=48, padding=True, return_tensors="pt").to(device)
    )
    cfg = model.config
    d = cfg.hidden_size // cfg.num_attention_heads
    layers = model.base_model.encoder.layer
    base = _cls(model, batch)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}

    def reference(layer: int, head: int) -> torch.Tensor:
        dense = layers[layer].attention.output.dense
        saved = dense.weight.detach().clone()
        try:
            with torch.no_grad():
                dense.weight[:, head * d : (head + 1) * d] = 0
            return _cls(model, batch)
        finally:
            with torch.no_grad():
                dense.weight.copy_(saved)

    def mine(knock_out):
        return torch.as_tensor(cls_vectors(model, batch, knock_out=knock_out)[0]).float()

    pairs = [(0, 0), (len(layers) - 1, cfg.num_attention_heads - 1), (len(layers) // 2, 1)]
    c.check(
        lambda: tuple(mine(None).shape) == tuple(base.shape) and torch.allclose(mine(None), base, atol=1e-4),
        "knock_out=None: the final [CLS] vectors of the unchanged model, (texts, hidden)",
        "return outputs.hidden_states[-1][:, 0] of model(**batch, output_hidden_states=True)",
    )
    c.check(
        lambda: all(torch.allclose(mine(pair), reference(*pair), atol=1e-4) for pair in pairs),
        "knocking out (layer, head) removes exactly that head's output, for heads in the first, middle and last layers",
        "in the hook, clone output[0], set out[..., head * d:(head + 1) * d] = 0 and return (out,) + output[1:]",
    )
    c.check(
        lambda: (mine(pairs[0]), torch.allclose(_cls(model, batch), base, atol=1e-5))[1],
        "afterwards the model is as before (the hook is removed)",
        "keep the handle of register_forward_hook and call handle.remove() in a finally block",
    )
    c.check(
        lambda: all(torch.equal(p, before[name]) for name, p in model.named_parameters()),
        "the model's weights are unchanged",
        "change the head's output with a hook, not the weights",
    )
