"""helpers.fit under DistributedDataParallel, launched with torchrun on 2 CPU processes (gloo), as notebook 05 does.

The claims of 05 §5-§6, checked:
- 2 processes with batch B end with the same weights as 1 process with batch 2B (same data, same order);
- a 2-process run stopped after 2 epochs and resumed from its checkpoint ends where a 3-epoch run ends;
- metrics are summed over processes, every rank ends with the same weights and History, rank 0 alone prints;
- fit sets the sampler's epoch, so each epoch has a new shuffle (also after a resume).

This file is also the worker script: `torchrun ... tests/test_distributed.py MODE OUT ...` runs `worker`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from helpers import distributed
from helpers.errors import CourseError
from helpers.evaluation import evaluate
from helpers.train import History, fit

N, B = 192, 16  # 192 examples: 6 steps per epoch of 2 x 16 (or 1 x 32)
# float32 sums in a different order (two halves, then an average) differ in the last bits; after a dozen
# SGD steps the weights agree to about 1e-7. The tolerance below is 100x that and 1000x smaller than the
# distance to a run with the wrong batch size (asserted too), so the test can tell the two apart.
ATOL, RTOL = 1e-5, 1e-4


def dataset() -> TensorDataset:
    """Small fixed images with a learnable 4-class label."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, 3, 8, 8, generator=g)
    y = (x[:, 0].mean((1, 2)) > 0).long() + 2 * (x[:, 1, :4].mean((1, 2)) > 0).long()
    return TensorDataset(x, y)


def new_model(seed: int, batch_norm: bool) -> nn.Module:
    torch.manual_seed(seed)
    norm = [nn.BatchNorm2d(8)] if batch_norm else []
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), *norm, nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 4)
    )


def loader(batch_size: int, world: int, rank: int, shuffle: bool = True) -> DataLoader:
    """A DataLoader over this rank's shard; with world=1 it is the whole set in the same shuffled order."""
    sampler = DistributedSampler(dataset(), num_replicas=world, rank=rank, shuffle=shuffle, seed=7)
    return DataLoader(dataset(), batch_size=batch_size, sampler=sampler)


def run(
    batch_size: int,
    epochs: int,
    *,
    seed: int = 0,
    batch_norm: bool = False,
    checkpoint: str | None = None,
    progress: bool = False,
) -> tuple[nn.Module, History, dict]:
    """Train with helpers.fit in this process, or in each process of a torchrun launch (DDP-wrapped)."""
    model = new_model(seed, batch_norm)
    net = DistributedDataParallel(model) if distributed.is_distributed() else model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)  # momentum: state that resuming restores
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 / (1 + 0.05 * step))
    world, rank = distributed.world_size(), distributed.rank()
    history = fit(
        net,
        loader(batch_size, world, rank),
        epochs=epochs,
        optimizer=optimizer,
        scheduler=scheduler,
        checkpoint=checkpoint,
        log_every=4,
        progress=progress,
    )
    return model, history, evaluate(net, loader(batch_size, world, rank, shuffle=False))


def worker(mode: str, out: str, tmp: str) -> None:
    """What each torchrun process does; it saves its weights, History and metrics to OUT.rankR.pt."""
    distributed.setup()
    results = {}
    if mode == "equivalence":
        results["ddp"] = run(B, epochs=2, progress=True)
    elif mode == "stop":  # an uninterrupted 3-epoch run, then a run that stops after epoch 2
        results["straight"] = run(B, epochs=3, batch_norm=True)
        run(B, epochs=2, batch_norm=True, checkpoint=f"{tmp}/run.pt")
    elif mode == "resume":  # a new launch: other initial weights, restored from the checkpoint
        results["resumed"] = run(B, epochs=3, seed=99, batch_norm=True, checkpoint=f"{tmp}/run.pt", progress=True)
    torch.save(
        {k: (m.state_dict(), h.to_dict(), e) for k, (m, h, e) in results.items()}, f"{out}.rank{distributed.rank()}.pt"
    )
    del results  # the models carry DDP's hooks, whose reducer holds the process group (see distributed.teardown)
    distributed.teardown()


def torchrun(tmp_path: Path, mode: str) -> tuple[str, list[dict]]:
    """Launch this file as the worker on 2 CPU processes with gloo; return rank 0's stdout and both ranks' results."""
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    out = str(tmp_path / mode)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            __file__,
            mode,
            out,
            str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout, [torch.load(f"{out}.rank{r}.pt", weights_only=False) for r in range(2)]


def assert_same_weights(a: dict, b: dict, **tolerance) -> None:
    for key in a:
        torch.testing.assert_close(a[key], b[key], **tolerance, msg=lambda m, key=key: f"{key}: {m}")


def distance(a: dict, b: dict) -> float:
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


def test_two_processes_with_batch_b_equal_one_process_with_batch_2b(tmp_path):
    stdout, ranks = torchrun(tmp_path, "equivalence")
    (w0, h0, e0), (w1, h1, e1) = ranks[0]["ddp"], ranks[1]["ddp"]
    single, history, metrics = run(2 * B, epochs=2)
    assert_same_weights(w0, single.state_dict(), atol=ATOL, rtol=RTOL)
    assert_same_weights(w0, w1, atol=0, rtol=0)  # DDP keeps the copies identical, bit for bit
    small, _, _ = run(B, epochs=2)  # what a wrong effective batch gives: far outside the tolerance
    assert distance(w0, small.state_dict()) > 1000 * ATOL
    assert distance(w0, new_model(0, False).state_dict()) > 1000 * ATOL  # and it did train
    # the History is over all processes: the same as one process's, and the same on both ranks
    timing = ("time_s", "samples_per_s")  # each process's own clock
    assert h0["steps"] == h1["steps"]
    assert [{k: v for k, v in e.items() if k not in timing} for e in h0["epochs"]] == [
        {k: v for k, v in e.items() if k not in timing} for e in h1["epochs"]
    ]
    for mine, theirs in zip(History.from_dict(h0).epochs, history.epochs):
        assert abs(mine["train_loss"] - theirs["train_loss"]) < 1e-5
        assert mine["train_accuracy"] == theirs["train_accuracy"]
    assert len(h0["steps"]) == len(history.steps) == 2 * 2  # log_every=4 and the epoch end, 6 steps per epoch
    for mine, theirs in zip(h0["steps"], history.steps):
        assert abs(mine["loss"] - theirs["loss"]) < 1e-5
    assert e0 == e1 and abs(e0["loss"] - metrics["loss"]) < 1e-5 and e0["accuracy"] == metrics["accuracy"]
    assert stdout.count("epoch 1/2 |") == 1 and stdout.count("epoch 2/2 |") == 1  # printed by rank 0 only


def test_a_stopped_and_resumed_two_process_run_ends_where_an_uninterrupted_one_ends(tmp_path):
    _, stopped = torchrun(tmp_path, "stop")
    assert History.from_dict(torch.load(tmp_path / "run.pt", weights_only=False)["history"]).epochs[-1]["epoch"] == 2
    stdout, resumed = torchrun(tmp_path, "resume")
    assert stdout.count("Resumed from run.pt: 2 of 3 epochs already done.") == 1
    straight_weights, straight_history, straight_eval = stopped[0]["straight"]
    for rank in range(2):
        weights, history, metrics = resumed[rank]["resumed"]
        assert_same_weights(weights, straight_weights, atol=ATOL, rtol=RTOL)  # BatchNorm's buffers included
        assert [e["epoch"] for e in history["epochs"]] == [1, 2, 3]
        assert abs(history["epochs"][-1]["train_loss"] - straight_history["epochs"][-1]["train_loss"]) < 1e-5
        assert abs(metrics["loss"] - straight_eval["loss"]) < 1e-5
    assert distance(straight_weights, new_model(99, True).state_dict()) > 1000 * ATOL


class RecordingSampler(torch.utils.data.Sampler):
    """A sampler that remembers the epochs it was given."""

    def __init__(self, n: int):
        self.n, self.epochs = n, []

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self):
        return self.n

    def set_epoch(self, epoch: int) -> None:
        self.epochs.append(epoch)


def test_fit_sets_the_sampler_epoch_every_epoch_and_after_a_resume(tmp_path):
    sampler = RecordingSampler(N)
    data = DataLoader(dataset(), batch_size=32, sampler=sampler)
    model = new_model(0, False)
    fit(
        model,
        data,
        epochs=2,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        checkpoint=tmp_path / "c.pt",
        progress=False,
    )
    fit(
        model,
        data,
        epochs=3,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        checkpoint=tmp_path / "c.pt",
        progress=False,
    )
    assert sampler.epochs == [0, 1, 2]


def test_outside_torchrun_the_helpers_are_one_process():
    assert not distributed.is_distributed() and distributed.rank() == 0 and distributed.world_size() == 1
    assert distributed.is_main() and distributed.sum_across(3, torch.tensor(2.0)) == (3, torch.tensor(2.0))
    assert distributed.unwrap(model := nn.Linear(1, 1)) is model


@pytest.mark.parametrize("gpus, plan", [(0, (2, "gloo")), (1, (2, "gloo")), (2, (2, "nccl")), (4, (4, "nccl"))])
def test_the_launch_plan_is_one_nccl_process_per_gpu_from_two_gpus(monkeypatch, gpus, plan):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)  # a machine with `gpus` CUDA GPUs, faked
    assert distributed.launch_plan() == plan == distributed.launch_plan(gpus)


def test_half_a_launch_environment_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    with pytest.raises(CourseError, match="torchrun"):
        distributed.setup()


# ---- exercises.nb05: the checks accept the notebook's solutions and reject typical mistakes ----------------


def solutions_of_05() -> dict:
    """The exercise functions of solutions/05_distributed.ipynb, executed from its cells."""
    import nbformat

    namespace: dict = {}
    exec("import math\nimport torch\nfrom torch import nn\nimport torch.nn.functional as F", namespace)
    path = Path(__file__).resolve().parent.parent / "solutions" / "05_distributed.ipynb"
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "code" and "### BEGIN SOLUTION" in cell.source:
            exec(cell.source.split("### END SOLUTION")[0], namespace)
    return namespace


def test_the_checks_pass_the_solutions_of_05(monkeypatch, capsys):
    from exercises import nb05

    monkeypatch.setenv("COURSE_STRICT_CHECKS", "1")
    ns = solutions_of_05()
    assert nb05.check_shard(ns["shard"]) and nb05.check_plan(ns["plan"])
    assert nb05.check_ring_all_reduce(ns["ring_all_reduce"]) and nb05.check_sync_batch_norm(ns["sync_batch_norm"])
    assert nb05.check_accumulation(ns["accumulation_step"])
    assert capsys.readouterr().out.count("🎉") == 5


def test_the_checks_of_05_reject_typical_mistakes(monkeypatch, capsys):
    import math

    from exercises import nb05

    monkeypatch.delenv("COURSE_STRICT_CHECKS", raising=False)

    def no_padding(n, world_size, rank, epoch, seed=0):
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch)).tolist()
        return order[rank::world_size]

    def no_lr_scaling(n, b, w, base_lr, base_batch):
        return {"effective_batch": b * w, "steps_per_epoch": math.ceil(math.ceil(n / w) / b), "lr": base_lr}

    def naive_all_reduce(vectors):  # right sums, but everybody sends its whole vector to everybody
        total = torch.stack(vectors).sum(0)
        return [total.clone() for _ in vectors], [(len(vectors) - 1) * len(v) for v in vectors]

    def per_shard_norm(shards, eps=1e-5):  # what plain BatchNorm does under DDP
        return [nn.functional.batch_norm(s, None, None, training=True, eps=eps) for s in shards]

    assert not nb05.check_shard(no_padding)
    assert not nb05.check_plan(no_lr_scaling)
    assert not nb05.check_ring_all_reduce(naive_all_reduce)
    assert not nb05.check_sync_batch_norm(per_shard_norm)
    assert not nb05.check_shard(None)
    out = capsys.readouterr().out
    assert out.count("❌") >= 4 and "⏳" in out and "🎉" not in out


def test_the_accumulation_check_rejects_wrong_averaging_syncing_and_leftover_gradients(capsys):
    import contextlib

    from exercises import nb05

    def mean_loss(model, x, y, k):
        return nn.functional.cross_entropy(model(x), y) / k

    def summed(model, optimizer, micro_batches):  # the sum of the micro-batch means: k times the gradient
        optimizer.zero_grad()
        for x, y in micro_batches:
            mean_loss(model, x, y, 1).backward()
        optimizer.step()

    def syncs_every_backward(model, optimizer, micro_batches):  # right numbers, k all-reduces per step
        optimizer.zero_grad()
        for x, y in micro_batches:
            mean_loss(model, x, y, len(micro_batches)).backward()
        optimizer.step()

    def never_syncs(model, optimizer, micro_batches):  # no_sync on the last backward too: nothing is sent
        optimizer.zero_grad()
        for x, y in micro_batches:
            with model.no_sync() if hasattr(model, "no_sync") else contextlib.nullcontext():
                mean_loss(model, x, y, len(micro_batches)).backward()
        optimizer.step()

    def keeps_old_gradients(model, optimizer, micro_batches):  # no zero_grad: the last step's gradients carry over
        for i, (x, y) in enumerate(micro_batches):
            last = i == len(micro_batches) - 1
            with contextlib.nullcontext() if last or not hasattr(model, "no_sync") else model.no_sync():
                mean_loss(model, x, y, len(micro_batches)).backward()
        optimizer.step()

    for wrong in (summed, syncs_every_backward, never_syncs, keeps_old_gradients):
        assert not nb05.check_accumulation(wrong), wrong.__name__
    out = capsys.readouterr().out
    assert "🎉" not in out and "all-reduced once per step" in out and "zero_grad" in out


if __name__ == "__main__":
    worker(*sys.argv[1:4])
