"""Issue 20: a run stopped and resumed from its checkpoint ends where the uninterrupted run ends, and a checkpoint
that does not fit the run is refused whole, before anything changes; a diverging run stops with a clear error."""

import numpy as np
import pytest
import torch
from torch import nn

from helpers import cifar, text
from helpers.errors import BadFileError, TrainingError
from helpers.evaluation import predict_proba
from helpers.train import fit

EPOCHS = 3


def images(n=96, seed=0):
    """Small uint8 images whose class shows in their red channel."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randint(0, 120, (n, 3, 16, 16), generator=g, dtype=torch.uint8)
    x[y == 1, 0] += 120
    return x, y


def cifar_run(flip):
    """A fresh model, optimizer, scheduler and augmenting loader, built as a new session would build them."""
    x, y = images()
    mean, std = cifar.channel_stats(x)
    loader = cifar.GpuLoader(x, y, batch_size=16, mean=mean, std=std, translate=2, flip=flip, seed=3)
    torch.manual_seed(0)
    recipe = cifar.Recipe(widths=(8, 8, 8), batch_size=16, channels_last=False)
    model = cifar.make_model(recipe, "cpu")
    optimizer, scheduler = cifar.make_optimizer(model, recipe, EPOCHS * len(loader), len(loader))
    return model, loader, dict(optimizer=optimizer, scheduler=scheduler, max_grad_norm=None, progress=False)


class Bag(nn.Module):
    """Mean of token embeddings over the real tokens, then a linear layer: a tiny text classifier."""

    def __init__(self):
        super().__init__()
        self.embed, self.out = nn.Embedding(50, 8), nn.Linear(8, 2)

    def forward(self, input_ids, attention_mask):
        mask = attention_mask.float()[..., None]
        return self.out((self.embed(input_ids) * mask).sum(1) / mask.sum(1))


def token_run():
    """A fresh text model, optimizer, scheduler and shuffling, length-grouped TokenBatches."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 120)
    ids = [list(rng.integers(1, 25, rng.integers(3, 30)) + 25 * y) for y in labels]
    batches = text.TokenBatches(ids, labels, 16, shuffle=True, seed=5, group_batches=2)
    torch.manual_seed(0)
    model = Bag()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.05)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 / (1 + 0.1 * step))
    return model, batches, dict(optimizer=optimizer, scheduler=scheduler, progress=False)


@pytest.mark.parametrize(
    "make",
    [lambda: cifar_run("random"), lambda: cifar_run("alternating"), token_run],
    ids=["GpuLoader random flips", "GpuLoader alternating flips", "TokenBatches"],
)
@pytest.mark.parametrize("stop_after", [1, 2])
def test_stopped_and_resumed_equals_uninterrupted_bitwise(make, stop_after, tmp_path):
    model, data, args = make()
    fit(model, data, epochs=EPOCHS, **args)
    straight = {k: v.clone() for k, v in model.state_dict().items()}

    checkpoint = tmp_path / "run.pt"
    model, data, args = make()
    fit(model, data, epochs=stop_after, checkpoint=checkpoint, **args)
    model, data, args = make()  # a new session: everything built afresh, the loader at its epoch 0
    next(iter(data))  # a look at a batch first (03 does this) changes nothing
    history = fit(model, data, epochs=EPOCHS, checkpoint=checkpoint, **args)
    assert len(history) == EPOCHS
    for key, value in model.state_dict().items():
        assert torch.equal(value, straight[key]), f"{key} differs after resuming"


def test_a_pass_depends_on_the_epoch_alone():
    x, y = images()
    mean, std = cifar.channel_stats(x)
    loader = cifar.GpuLoader(x, y, batch_size=32, mean=mean, std=std, translate=2, flip="random", seed=1)
    first = [b[0] for b in loader]
    assert all(torch.equal(a, b[0]) for a, b in zip(first, loader)), "a second pass of epoch 0 is epoch 0 again"
    loader.set_epoch(1)
    assert not torch.equal(first[0], next(iter(loader))[0]), "epoch 1 shuffles and augments anew"


def test_predictions_come_back_in_dataset_order_after_any_number_of_passes():
    model, batches, args = token_run()
    fit(model, batches, epochs=2, **args)  # the loader is now at epoch 1
    ids = [batches.input_ids[i, : batches.lengths[i]].tolist() for i in range(len(batches.lengths))]
    plain = text.TokenBatches(ids, np.zeros(len(ids)), 16)
    expected = predict_proba(model, plain)
    for epoch in (0, 1, 7):
        batches.set_epoch(epoch)
        list(batches)
        assert np.allclose(predict_proba(model, batches), expected, atol=1e-6)


def _saved_plain_run(tmp_path, **fit_args):
    model, data, args = cifar_run("random")
    args.update(fit_args)
    fit(model, data, epochs=1, checkpoint=tmp_path / "run.pt", **args)
    return tmp_path / "run.pt"


def test_compiled_and_plain_models_share_checkpoints(tmp_path, capsys):
    checkpoint = _saved_plain_run(tmp_path)
    model, data, args = cifar_run("random")
    compiled = torch.compile(model, backend="eager")  # the wrapper's weights are named _orig_mod.*
    fit(compiled, data, epochs=2, checkpoint=checkpoint, **args)
    assert "Resumed from run.pt: 1 of 2" in capsys.readouterr().out
    model, data, args = cifar_run("random")
    fit(model, data, epochs=3, checkpoint=checkpoint, **args)  # the compiled run's checkpoint, in a plain model
    assert "Resumed from run.pt: 2 of 3" in capsys.readouterr().out


def test_a_float32_checkpoint_resumes_under_float16_with_a_fresh_scaler(tmp_path, capsys, monkeypatch):
    checkpoint = _saved_plain_run(tmp_path)
    monkeypatch.setenv("COURSE_PRECISION", "fp16")
    model, data, args = cifar_run("random")
    history = fit(model, data, epochs=2, checkpoint=checkpoint, **args)
    out = capsys.readouterr().out
    assert "trained in float32, this run uses float16: resuming with a fresh loss scaler." in out
    assert len(history) == 2


@pytest.mark.parametrize(
    "change, match",
    [
        ("drop the scheduler", r"saved with scheduler LambdaLR, this run passes None"),
        ("another optimizer", r"saved with SGD, this run uses AdamW"),
    ],
)
def test_a_checkpoint_of_other_settings_is_refused_before_anything_changes(tmp_path, change, match):
    checkpoint = _saved_plain_run(tmp_path)
    model, data, args = cifar_run("random")
    if change == "drop the scheduler":
        args["scheduler"] = None
    else:
        args["optimizer"] = torch.optim.AdamW(model.parameters())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(BadFileError, match=match):
        fit(model, data, epochs=2, checkpoint=checkpoint, **args)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_a_checkpoint_without_a_scheduler_is_refused_by_a_run_with_one(tmp_path):
    model, data, args = cifar_run("random")
    fit(model, data, epochs=1, checkpoint=tmp_path / "run.pt", **{**args, "scheduler": None})
    model, data, args = cifar_run("random")
    with pytest.raises(BadFileError, match=r"saved with scheduler None, this run passes LambdaLR .*restart"):
        fit(model, data, epochs=2, checkpoint=tmp_path / "run.pt", **args)


def test_a_checkpoint_with_code_in_it_is_not_loaded(tmp_path):
    checkpoint = _saved_plain_run(tmp_path)
    state = torch.load(checkpoint, weights_only=True)
    state["history"] = {"epochs": [], "steps": [], "hook": print}  # a pickled function: code, not data
    torch.save(state, checkpoint)
    model, data, args = cifar_run("random")
    with pytest.raises(BadFileError, match="does not fit"):
        fit(model, data, epochs=2, checkpoint=checkpoint, **args)


def test_a_diverging_run_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    model, data, args = token_run()
    fit(model, data, epochs=1, checkpoint=tmp_path / "run.pt", log_every=2, **args)
    good = (tmp_path / "run.pt").read_bytes()
    model, data, args = token_run()  # resumed with a schedule that blows the learning rate up: it diverges
    args["scheduler"] = torch.optim.lr_scheduler.LambdaLR(args["optimizer"], lambda step: 1e30 if step > 8 else 1)
    with pytest.raises(TrainingError, match=r"loss became (nan|inf) by step \d+ \(last finite loss [\d.]+ at step"):
        fit(model, data, epochs=3, checkpoint=tmp_path / "run.pt", log_every=2, **args)
    assert (tmp_path / "run.pt").read_bytes() == good


def test_an_empty_loader_is_a_course_error():
    model, _, args = token_run()
    with pytest.raises(TrainingError, match="loader is empty"):
        fit(model, [], epochs=1, **args)
