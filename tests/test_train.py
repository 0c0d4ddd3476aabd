"""The shared loop on small synthetic problems: it learns, resumes, survives Ctrl-C, handles dict batches."""

import warnings
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from helpers.batches import split_batch, to_device
from helpers.errors import ConfigError
from helpers.evaluation import evaluate, predict
from helpers.train import History, Step, epoch_progress, fit, format_record, optimizer_stepped


def separable(n=256, seed=0):
    """Two Gaussian blobs that a linear model separates."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 2, generator=g) * 0.5 + (y[:, None] * 2 - 1) * 2.0
    return x, y


def batches(x, y, size=32):
    return [(x[i : i + size], y[i : i + size]) for i in range(0, len(x), size)]


def new_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))


def sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)  # momentum: state a resume must restore


def test_loss_falls_and_accuracy_rises_on_a_separable_task():
    x, y = separable()
    model = new_model()
    before = evaluate(model, batches(x, y))
    history = fit(
        model, batches(x, y), epochs=5, optimizer=sgd(model), val_data=batches(*separable(seed=1)), progress=False
    )
    assert len(history) == 5
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0]
    assert before["accuracy"] < 0.7 and history["val_accuracy"][-1] > 0.95
    assert {"lr", "time_s", "samples_per_s", "val_loss"} <= set(history.epochs[-1])
    assert history.steps and history.steps[-1]["step"] == 5 * 8


def test_scheduler_steps_once_per_batch():
    x, y = separable(64)
    model = new_model()
    opt = sgd(model)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 / (1 + step))
    fit(model, batches(x, y), epochs=2, optimizer=opt, scheduler=sched, progress=False)
    assert sched.last_epoch == 2 * 2


def test_regression_reports_no_accuracy():
    torch.manual_seed(0)
    x = torch.linspace(-1, 1, 64)[:, None]
    y = 3 * x - 1
    model = nn.Linear(1, 1)
    history = fit(
        model,
        batches(x, y, 16),
        epochs=30,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.3),
        loss_fn=nn.MSELoss(),
        accuracy=False,
        progress=False,
    )
    assert "train_accuracy" not in history.epochs[0]
    assert history["train_loss"][-1] < 1e-3
    assert model.weight.item() == pytest.approx(3, abs=0.05)


class TinyHF(nn.Module):
    """A stand-in for a Hugging Face classifier: keyword inputs, an output object with .logits."""

    def __init__(self):
        super().__init__()
        self.emb = nn.EmbeddingBag(10, 2, mode="sum")

    def forward(self, input_ids, attention_mask):
        return SimpleNamespace(logits=self.emb(input_ids, per_sample_weights=attention_mask.float()))


def test_dict_batches_like_hugging_face():
    torch.manual_seed(0)
    ids = torch.randint(0, 10, (64, 5))
    labels = (ids < 5).sum(1).gt(2).long()
    data = [
        {"input_ids": ids[i : i + 16], "attention_mask": torch.ones(16, 5), "labels": labels[i : i + 16]}
        for i in range(0, 64, 16)
    ]
    model = TinyHF()
    history = fit(model, data, epochs=20, optimizer=torch.optim.Adam(model.parameters(), lr=0.1), progress=False)
    assert history["train_accuracy"][-1] > 0.9
    logits, y = predict(model, data)
    assert logits.shape == (64, 2) and torch.equal(y, labels)
    assert evaluate(model, data)["accuracy"] > 0.9


def test_bf16_autocast_path_trains():
    x, y = separable()
    model = new_model()
    dtypes = []

    def forward(m, inputs):
        logits = m(inputs)
        dtypes.append(logits.dtype)
        return logits

    history = fit(
        model, batches(x, y), epochs=3, optimizer=sgd(model), dtype=torch.bfloat16, forward=forward, progress=False
    )
    assert history["train_accuracy"][-1] > 0.9
    assert dtypes and set(dtypes) == {torch.bfloat16}, "fit must run the forward pass under bfloat16 autocast"


def test_checkpoint_resume_matches_an_uninterrupted_run(tmp_path, capsys):
    x, y = separable()
    data = batches(x, y)
    straight = new_model()
    fit(straight, data, epochs=3, optimizer=sgd(straight), progress=False)

    ckpt = tmp_path / "run.pt"
    first = new_model()
    fit(first, data, epochs=2, optimizer=sgd(first), checkpoint=ckpt, progress=False)
    resumed = new_model(seed=99)  # a fresh session: different init, restored from the file
    history = fit(resumed, data, epochs=3, optimizer=sgd(resumed), checkpoint=ckpt, progress=False)
    assert "Resumed from run.pt: 2 of 3 epochs already done." in capsys.readouterr().out
    assert [e["epoch"] for e in history.epochs] == [1, 2, 3]
    for a, b in zip(straight.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b)
    assert not (tmp_path / "run.pt.tmp").exists()


class InterruptAfter:
    """A loader that raises KeyboardInterrupt (as Ctrl-C would) partway through a later epoch."""

    def __init__(self, data, at_call):
        self.data, self.at_call, self.calls = data, at_call, 0

    def __iter__(self):
        for batch in self.data:
            self.calls += 1
            if self.calls == self.at_call:
                raise KeyboardInterrupt
            yield batch


def test_keyboard_interrupt_keeps_model_and_history(capsys):
    x, y = separable()
    model = new_model()
    loader = InterruptAfter(batches(x, y), at_call=8 + 3)  # third batch of the second epoch
    history = fit(model, loader, epochs=5, optimizer=sgd(model), progress=False)
    assert history.interrupted and len(history) == 1
    assert "Interrupted in epoch 2" in capsys.readouterr().out
    assert all(p.grad is None for p in model.parameters())
    assert evaluate(model, batches(x, y))["accuracy"] > 0.9  # still usable, and already trained
    assert not model.training


def test_epoch_line_is_readable():
    line = format_record(
        {
            "epoch": 2,
            "train_loss": 0.123456,
            "lr": 0.001,
            "time_s": 3.21,
            "samples_per_s": 38820.4,
            "val_accuracy": 0.9,
        },
        epochs=5,
    )
    assert line == "epoch 2/5 | train_loss 0.1235 | lr 1.00e-03 | 3.2 s | 38,820 samples/s | val_accuracy 0.9000"


def test_history_round_trips():
    h = History(epochs=[{"epoch": 1, "train_loss": 0.5}], steps=[{"step": 1, "epoch": 1.0, "loss": 0.5}])
    assert History.from_dict(h.to_dict()) == h
    assert h["train_loss"] == [0.5] and h["val_loss"] == []


def test_batch_utilities():
    batch = {"input_ids": torch.ones(2, 3), "labels": torch.tensor([0, 1]), "meta": "x"}
    inputs, labels = split_batch(to_device(batch, torch.device("cpu")))
    assert set(inputs) == {"input_ids", "meta"} and labels.tolist() == [0, 1]
    assert split_batch({"x": 1, "label": 2}) == ({"x": 1}, 2)
    x, y = split_batch((torch.zeros(1), torch.ones(1)))
    assert x.item() == 0 and y.item() == 1


def test_empty_loader_is_a_clear_error():
    model = new_model()
    with pytest.raises(ValueError, match="no batches"):
        fit(model, [], epochs=1, optimizer=sgd(model), progress=False)


def test_accuracy_is_asked_for_and_refused_where_it_means_nothing():
    x = torch.linspace(-1, 1, 32)[:, None]
    model = nn.Linear(1, 1)
    data = batches(x, 3 * x, 16)
    assert set(evaluate(model, data, loss_fn=nn.MSELoss(), accuracy=False)) == {"loss"}
    with pytest.raises(ConfigError, match="accuracy=False"):  # float targets: no classes to be right about
        evaluate(model, data, loss_fn=nn.MSELoss())
    with pytest.raises(ConfigError, match="accuracy=False"):
        fit(model, data, epochs=1, optimizer=sgd(model), loss_fn=nn.MSELoss(), progress=False)
    classifier = new_model()
    assert set(evaluate(classifier, batches(*separable()), accuracy=False)) == {"loss"}
    assert set(evaluate(classifier, batches(*separable()))) == {"loss", "accuracy"}


def test_predict_returns_every_logit_and_label_in_loader_order_and_leaves_the_mode():
    x, y = separable(70)
    model = new_model().train()
    logits, labels = predict(model, batches(x, y))
    torch.testing.assert_close(logits, model(x))
    assert torch.equal(labels, y) and model.training
    with pytest.raises(ValueError, match="no batches"):
        predict(model, [])


def test_epoch_progress_counts_batches_as_fractions_of_an_epoch():
    assert epoch_progress(2, 1, 4) == 2.25
    assert epoch_progress(0, 4, 4) == 1.0
    assert epoch_progress(1, 3, None) == 2.0  # a loader without len: whole epochs


def test_a_history_and_an_existing_checkpoint_are_refused_together(tmp_path):
    x, y = separable()
    model = new_model()
    ckpt = tmp_path / "run.pt"
    earlier = fit(model, batches(x, y), epochs=1, optimizer=sgd(model), checkpoint=ckpt, progress=False)
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(ConfigError, match="history=None"):
        fit(model, batches(x, y), epochs=2, optimizer=sgd(model), checkpoint=ckpt, history=earlier, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters())), "refused before training"
    # a history without a checkpoint file goes on in memory
    more = fit(model, batches(x, y), epochs=2, optimizer=sgd(model), history=earlier, progress=False)
    assert [e["epoch"] for e in more.epochs] == [1, 2]


class InfGradient(torch.autograd.Function):
    """The loss itself, but infinite gradients: what a float16 overflow does to a step."""

    @staticmethod
    def forward(ctx, loss):
        return loss.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * float("inf")


def fp16_step(loss_fn, scheduler_lambda=lambda step: 1.0):
    """A Step as fit builds it for float16 (loss scaling on), on the CPU, with a scheduler."""
    model = new_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, scheduler_lambda)
    scaler = torch.amp.GradScaler("cpu", enabled=True)
    return Step(model, opt, sched, loss_fn, lambda m, x: m(x), torch.device("cpu"), None, scaler, None)


def test_an_overflowing_fp16_step_updates_nothing_and_does_not_advance_the_schedule():
    calls = []

    def loss_fn(logits, labels):  # the first step overflows, the others are sound
        calls.append(1)
        loss = nn.functional.cross_entropy(logits, labels)
        return InfGradient.apply(loss) if len(calls) == 1 else loss

    step = fp16_step(loss_fn)
    x, y = separable(32)
    before = [p.clone() for p in step.model.parameters()]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns when a scheduler steps before the optimizer has
        step((x, y))
    assert step.scheduler.last_epoch == 0, "a skipped step must not advance the LR schedule"
    assert all(torch.equal(a, b) for a, b in zip(before, step.model.parameters()))
    step((x, y))
    assert step.scheduler.last_epoch == 1
    assert not all(torch.equal(a, b) for a, b in zip(before, step.model.parameters()))


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")  # stepped by hand here
def test_optimizer_stepped_reports_a_skip_only_while_the_schedule_has_not_started():
    model = new_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    scaler = torch.amp.GradScaler("cpu", enabled=True)

    def overflow(scaler):
        scaler.scale(InfGradient.apply(model(torch.ones(1, 2)).sum())).backward()

    overflow(scaler)
    assert optimizer_stepped(scaler, opt, sched) is False  # a fresh run: the skip is seen
    opt.zero_grad()
    sched.step()  # the schedule has started (a resumed run, say): no GPU sync to look for rare later skips
    overflow(scaler)
    assert optimizer_stepped(scaler, opt, sched) is True
    opt.zero_grad()
    plain = torch.amp.GradScaler("cpu", enabled=False)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    model(torch.ones(1, 2)).sum().backward()
    assert optimizer_stepped(plain, opt, sched) is True  # float32 and bfloat16: no scaler, no skipped steps
