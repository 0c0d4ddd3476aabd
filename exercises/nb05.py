"""Checks of notebook 05's exercises (data parallelism): each tests behaviour against torch's own objects."""

from __future__ import annotations

import gc
import math
from collections.abc import Callable

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from . import Checker, exercise


@exercise(
    "Exercise 1 (DistributedSampler by hand)", "define shard(n, world_size, rank, epoch, seed) returning a list of ints"
)
def check_shard(c: Checker, shard: Callable) -> None:
    """Exercise 1: shard(n, world_size, rank, epoch, seed) gives the indices DistributedSampler gives."""
    cases = [(10, 2, 0, 0), (10, 2, 1, 0), (11, 2, 1, 3), (7, 3, 2, 1), (16, 4, 3, 5)]

    def real(n, world, rank, epoch, seed=0):
        sampler = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True, seed=seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    c.check(
        lambda: all(len(shard(n, w, r, e, 0)) == math.ceil(n / w) for n, w, r, e in cases),
        "every rank gets ceil(n / world_size) indices",
        "pad the shuffled list by repeating its start until its length is a multiple of world_size",
    )
    c.check(
        lambda: all(set().union(*(shard(n, w, r, e, 0) for r in range(w))) == set(range(n)) for n, w, _, e in cases),
        "together the ranks read every example",
        "rank r takes every world_size-th index of the padded list, starting at r",
    )
    c.check(
        lambda: all([int(i) for i in shard(n, w, r, e, 0)] == real(n, w, r, e) for n, w, r, e in cases),
        "the same indices as torch's DistributedSampler, for several n, world sizes, ranks and epochs",
        "shuffle with torch.randperm(n, generator=g) where g = torch.Generator().manual_seed(seed + epoch)",
    )
    c.check(
        lambda: [int(i) for i in shard(12, 2, 0, 0, 1)] == real(12, 2, 0, 0, seed=1),
        "the seed changes the order the way it does in torch",
        "add the seed and the epoch: seed + epoch",
    )
    c.check(
        lambda: shard(20, 2, 0, 0, 0) != shard(20, 2, 0, 1, 0),
        "a new epoch gives a new order (what set_epoch is for)",
        "use the epoch in the generator's seed",
    )


@exercise(
    "Exercise 2 (batch, steps and learning rate of a launch)",
    "define plan(n, per_process_batch, world_size, base_lr, base_batch) returning a dict",
)
def check_plan(c: Checker, plan: Callable) -> None:
    """Exercise 2: effective batch, steps per epoch and the linearly scaled learning rate of a launch."""
    cases = [(50_000, 256, 1), (50_000, 256, 2), (50_000, 256, 8), (1_001, 10, 3), (9, 4, 4)]

    def steps(n, b, w):  # what a DataLoader over one rank's shard really yields
        return len(DataLoader(range(n), batch_size=b, sampler=DistributedSampler(range(n), num_replicas=w, rank=0)))

    c.check(
        lambda: all(plan(n, b, w, 0.1, 256)["effective_batch"] == b * w for n, b, w in cases),
        "effective batch = per-process batch x number of processes",
        "one optimizer step averages the gradients of every process's batch",
    )
    c.check(
        lambda: all(plan(n, b, w, 0.1, 256)["steps_per_epoch"] == steps(n, b, w) for n, b, w in cases),
        "steps per epoch equal the length of a DataLoader over one rank's DistributedSampler shard",
        "each rank gets ceil(n / world_size) examples (padding), then ceil(that / per_process_batch) batches",
    )
    c.check(
        lambda: all(math.isclose(plan(n, b, w, 0.1, 256)["lr"], 0.1 * b * w / 256) for n, b, w in cases),
        "the learning rate grows in proportion to the effective batch (the linear scaling rule)",
        "lr = base_lr x effective_batch / base_batch",
    )


@exercise("Exercise 3 (ring all-reduce)", "define ring_all_reduce(vectors) returning (results, sent)")
def check_ring_all_reduce(c: Checker, ring_all_reduce: Callable) -> None:
    """Exercise 3: a simulated ring all-reduce sums every rank's vector and sends 2 (W-1)/W of it per rank."""
    g = torch.Generator().manual_seed(0)
    cases = [[torch.randn(n, generator=g) for _ in range(w)] for w, n in ((2, 8), (3, 9), (4, 10), (5, 23))]

    def sums_everywhere():
        for vectors in cases:
            results, _ = ring_all_reduce([v.clone() for v in vectors])
            total = torch.stack(vectors).sum(0)
            if len(results) != len(vectors) or not all(torch.allclose(r, total, atol=1e-5) for r in results):
                return False
        return True

    def unchanged():
        for vectors in cases:
            copies = [v.clone() for v in vectors]
            ring_all_reduce(copies)
            if not all(torch.equal(a, b) for a, b in zip(copies, vectors)):
                return False
        return True

    c.check(
        sums_everywhere,
        "every rank ends with the sum of all ranks' vectors (W = 2..5, n not a multiple of W)",
        "reduce-scatter (W-1 steps: pass a chunk to the right neighbour, who adds it), then all-gather (W-1 steps)",
    )
    c.check(unchanged, "the inputs are left unchanged", "work on copies (v.clone()) of the vectors")

    def bandwidth():
        for vectors in cases:
            w, n = len(vectors), len(vectors[0])
            _, sent = ring_all_reduce([v.clone() for v in vectors])
            if len(sent) != w or sum(sent) != 2 * (w - 1) * n or max(sent) > 2 * (w - 1) * math.ceil(n / w):
                return False
        return True

    c.check(
        bandwidth,
        "each rank sends about 2 (W-1)/W of a vector, however many ranks there are",
        "count the numbers each rank sends: 2 (W-1) chunks of about n/W; sending whole vectors is too much",
    )


@exercise("Exercise 4 (SyncBatchNorm by hand)", "define sync_batch_norm(shards, eps=1e-5) returning a list of tensors")
def check_sync_batch_norm(c: Checker, sync_batch_norm: Callable) -> None:
    """Exercise 4: each shard normalised with the statistics of all shards, as SyncBatchNorm does."""
    g = torch.Generator().manual_seed(0)

    def shards(sizes):
        return [torch.randn(n, 3, 4, 4, generator=g) * (i + 1) + 2 * i for i, n in enumerate(sizes)]

    def same_as_whole_batch(sizes):
        parts = shards(sizes)
        whole = nn.functional.batch_norm(torch.cat(parts), None, None, training=True, eps=1e-5)
        mine = sync_batch_norm([p.clone() for p in parts], eps=1e-5)
        return (
            len(mine) == len(parts)
            and all(m.shape == p.shape for m, p in zip(mine, parts))
            and torch.allclose(torch.cat(mine), whole, atol=1e-4)
        )

    c.check(
        lambda: same_as_whole_batch((4, 4)),
        "equal shards: the same output as BatchNorm over the concatenated batch",
        "per channel (dim=(0, 2, 3)) add up counts, sums and sums of squares over ALL shards first",
    )
    c.check(
        lambda: same_as_whole_batch((1, 5, 2)),
        "shards of different sizes: still the whole batch's statistics",
        "do not average per-shard means: divide the total sum by the total count",
    )

    def gradients_match():
        parts = [p.requires_grad_() for p in shards((3, 2))]
        weights = torch.randn(5, 3, 4, 4, generator=g)
        (torch.cat(sync_batch_norm(parts, eps=1e-5)) * weights).sum().backward()
        mine = [p.grad.clone() for p in parts]
        copies = [p.detach().clone().requires_grad_() for p in parts]
        whole = nn.functional.batch_norm(torch.cat(copies), None, None, training=True, eps=1e-5)
        (whole * weights).sum().backward()
        return all(torch.allclose(a, b.grad, atol=1e-4) for a, b in zip(mine, copies))

    c.check(
        gradients_match,
        "gradients flow through the statistics like BatchNorm's (autograd)",
        "compute with differentiable torch operations only (no .item(), no torch.no_grad())",
    )


def _small_model() -> tuple[nn.Module, torch.optim.Optimizer]:
    """The same small classifier (no BatchNorm: each example's loss is its own) and a plain SGD, every time."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    return model, torch.optim.SGD(model.parameters(), lr=0.5)


def _count_all_reduce(calls, bucket):  # noqa: ANN001, ANN202  (DDP reads the annotations; strings would fail it)
    """A DDP communication hook that counts the all-reduce rounds (one per gradient bucket) and passes them on."""
    calls.append(bucket.index())
    future: torch.futures.Future = torch.futures.Future()
    future.set_result(bucket.buffer())  # one process: the sum over processes is its own gradient
    return future


def _all_reduces(step: Callable, micro_batches: list) -> tuple[int, int]:
    """(all-reduce rounds of one accumulated step, of one plain step) of a DDP model in a 1-process gloo group."""
    own_group = not dist.is_initialized()
    if own_group:
        dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        counts = []
        for accumulated in (True, False):
            model, optimizer = _small_model()
            ddp, calls = DistributedDataParallel(model), []
            ddp.register_comm_hook(calls, _count_all_reduce)
            if accumulated:
                step(ddp, optimizer, micro_batches)
            else:
                x, y = torch.cat([x for x, _ in micro_batches]), torch.cat([y for _, y in micro_batches])
                nn.functional.cross_entropy(ddp(x), y).backward()
            counts.append(len(calls))
            del ddp  # its reducer holds the process group (helpers.distributed.teardown's rule)
        return counts[0], counts[1]
    finally:
        if own_group:
            gc.collect()
            dist.destroy_process_group()


@exercise(
    "Exercise 5 (gradient accumulation with no_sync)",
    "define accumulation_step(model, optimizer, micro_batches): one optimizer step over a list of (x, y)",
)
def check_accumulation(c: Checker, accumulation_step: Callable) -> None:
    """Exercise 5: k micro-batches of B take the step of one batch of kB (= k processes x B), all-reduced once."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 6, generator=g), torch.randint(0, 3, (16,), generator=g)

    def same_as_one_batch(k: int, steps: int = 2) -> bool:
        reference, optimizer = _small_model()
        for _ in range(steps):  # what 2 processes x 8 take (section 6): one step on the whole batch of 16
            optimizer.zero_grad()
            nn.functional.cross_entropy(reference(x), y).backward()
            optimizer.step()
        mine, optimizer = _small_model()
        for _ in range(steps):
            accumulation_step(mine, optimizer, list(zip(x.chunk(k), y.chunk(k))))
        return all(torch.allclose(a, b, atol=1e-5) for a, b in zip(mine.parameters(), reference.parameters()))

    c.check(
        lambda: same_as_one_batch(2, steps=1),
        "2 micro-batches of 8 take the step of one batch of 16 (= 2 processes x 8)",
        "divide each micro-batch's loss by the number of micro-batches (the gradient of the mean), and call "
        "optimizer.step() once, after the last backward",
    )
    c.check(
        lambda: same_as_one_batch(4, steps=3),
        "4 micro-batches of 4, three steps in a row: the same steps as batches of 16",
        "start each step with optimizer.zero_grad(): the gradients of the previous step must not carry over",
    )
    rounds = lambda: _all_reduces(accumulation_step, list(zip(x.chunk(2), y.chunk(2))))  # noqa: E731
    c.check(
        lambda: (lambda mine, plain: mine == plain > 0)(*rounds()),
        "under DDP the gradients are all-reduced once per step, after the last micro-batch (no_sync before it)",
        "wrap every backward but the last in `with model.no_sync():`, and let the last one synchronise",
    )
