"""helpers.cifar: augmentation, the device loader, whitening, identity init, schedules, lookahead, TTA, the recipe."""

import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers import cifar as C

DATA = Path(os.environ.get("COURSE_DATA_DIR", Path(__file__).resolve().parent.parent / "data")) / "cifar10"


def images(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)


def test_augment_without_shift_or_flip_is_the_identity():
    x = images()
    out = C.augment(x, torch.zeros(6, 2, dtype=torch.long), torch.zeros(6, dtype=torch.bool))
    assert out.dtype == torch.uint8 and torch.equal(out, x)


def test_augment_matches_reflect_padding_then_crop_and_flip():
    x = images()
    shifts = torch.tensor([[-2, -2], [2, 2], [0, 1], [-1, 2], [1, -2], [0, 0]])
    flips = torch.tensor([False, True, False, True, True, False])
    out = C.augment(x, shifts, flips)
    padded = F.pad(x.float(), (2, 2, 2, 2), mode="reflect")
    for k, ((dy, dx), flip) in enumerate(zip(shifts.tolist(), flips.tolist())):
        want = padded[k, :, 2 + dy : 34 + dy, 2 + dx : 34 + dx]
        want = want.flip(-1) if flip else want
        assert torch.equal(out[k].float(), want), k


def test_eval_loader_keeps_order_normalises_and_uses_channels_last():
    x, y = images(10), torch.arange(10) % 10
    mean, std = C.channel_stats(x)
    loader = C.GpuLoader(x, y, batch_size=4, mean=mean, std=std, train=False)
    batches = list(loader)
    assert len(loader) == len(batches) == 3 and [len(b[1]) for b in batches] == [4, 4, 2]
    xs = torch.cat([b[0] for b in batches])
    assert torch.equal(torch.cat([b[1] for b in batches]), y)
    assert batches[0][0].dtype == torch.float32 and batches[0][0].is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(xs.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(xs.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-4)
    assert torch.allclose(xs, C.normalize(x, mean, std), atol=1e-5)


def test_train_loader_drops_the_last_partial_batch_and_shuffles():
    x, y = images(10), torch.arange(10)
    loader = C.GpuLoader(x, y, batch_size=4, mean=torch.zeros(3), std=torch.ones(3), translate=2, flip="random")
    labels = [b[1] for b in loader]
    assert len(loader) == len(labels) == 2 and all(len(lab) == 4 for lab in labels)
    assert len(set(torch.cat(labels).tolist())) == 8 and torch.cat(labels).tolist() != list(range(8))


def test_augmentation_is_what_the_loader_applies_and_its_streams_are_apart():
    x, y = images(16), torch.arange(16)
    args = dict(batch_size=16, mean=torch.zeros(3), std=torch.ones(3), channels_last=False, seed=4)
    loader = C.GpuLoader(x, y, translate=2, flip="random", **args)
    loader.set_epoch(3)
    batch, labels = next(iter(loader))
    shifts, flips = loader.augmentation(3)
    assert torch.equal(
        batch, C.normalize(C.augment(x[labels], shifts[labels], flips[labels]), torch.zeros(3), torch.ones(3))
    )
    # another largest shift changes the shifts only: the shuffle and the flips come from streams of their own
    wider = C.GpuLoader(x, y, translate=3, flip="random", **args)
    wider.set_epoch(3)
    assert torch.equal(next(iter(wider))[1], labels) and torch.equal(wider.augmentation(3)[1], flips)
    no_flip = C.GpuLoader(x, y, translate=2, flip=None, **args)
    no_flip.set_epoch(3)
    assert torch.equal(no_flip.augmentation(3)[0], shifts) and torch.equal(next(iter(no_flip))[1], labels)
    # and the shuffle and the flip draws are not one stream read twice (the flips are not the order's parity)
    order = torch.randperm(16, generator=torch.Generator().manual_seed(C.epoch_seed(4, 3)))
    assert torch.equal(order, labels) and not torch.equal(
        flips, torch.rand(16, generator=torch.Generator().manual_seed(C.epoch_seed(4, 3))) < 0.5
    )


def test_sharded_loaders_cut_an_epoch_as_distributed_sampler_does():
    from torch.utils.data import DistributedSampler

    from helpers.errors import CourseError

    x, y = images(11), torch.arange(11)
    args = dict(batch_size=3, mean=torch.zeros(3), std=torch.ones(3), channels_last=False, world_size=2)
    ranks = [C.GpuLoader(x, y, train=False, rank=r, **args) for r in range(2)]
    got = [torch.cat([b[1] for b in loader]).tolist() for loader in ranks]
    assert got == [list(DistributedSampler(range(11), num_replicas=2, rank=r, shuffle=False)) for r in range(2)]
    assert len(ranks[0]) == 2  # ceil(6 / 3)
    shuffled = [
        C.GpuLoader(x, y, translate=2, flip="random", drop_last=False, seed=1, rank=r, **args) for r in range(2)
    ]
    parts = [torch.cat([b[1] for b in loader]).tolist() for loader in shuffled]
    assert len(parts[0]) == len(parts[1]) == 6 and set(parts[0]) | set(parts[1]) == set(range(11))
    whole = C.GpuLoader(x, y, translate=2, flip="random", drop_last=False, seed=1, **{**args, "world_size": 1})
    order = torch.cat([b[1] for b in whole]).tolist()
    assert parts[0] == order[0::2] and parts[1] == (order + order[:1])[1::2]  # one shuffle, every other index
    with pytest.raises(CourseError, match="rank=2"):
        C.GpuLoader(x, y, rank=2, **args)


def test_alternating_flip_flips_each_image_every_other_epoch():
    x, y = images(64), torch.zeros(64, dtype=torch.long)
    loader = C.GpuLoader(x, y, batch_size=8, mean=torch.zeros(3), std=torch.ones(3), flip="alternating")
    e0, e1, e2 = (loader.flips_for_epoch(e) for e in range(3))
    assert torch.equal(e1, ~e0) and torch.equal(e2, e0) and 10 < int(e0.sum()) < 54
    random = C.GpuLoader(x, y, batch_size=8, mean=torch.zeros(3), std=torch.ones(3), flip="random")
    assert not torch.equal(random.flips_for_epoch(0), ~random.flips_for_epoch(1))
    with pytest.raises(ValueError):
        C.GpuLoader(x, y, batch_size=8, mean=torch.zeros(3), std=torch.ones(3), flip="sometimes")


def test_whitening_filters_decorrelate_patches():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(64, 1, 33, 33, generator=g)
    smooth = F.avg_pool2d(base, 2, stride=1)  # neighbouring pixels strongly correlated
    x = torch.cat(
        [smooth, 0.5 * smooth + 0.1 * torch.randn(64, 1, 32, 32, generator=g), torch.randn(64, 1, 32, 32, generator=g)],
        1,
    )
    filters, eigenvalues = C.whitening_filters(x, kernel_size=2, eps=0.0)
    assert filters.shape == (12, 3, 2, 2) and torch.all(eigenvalues[:-1] >= eigenvalues[1:])
    out = F.conv2d(x, filters).permute(0, 2, 3, 1).reshape(-1, 12)
    out = out - out.mean(0)
    cov = out.T @ out / len(out)
    assert torch.allclose(cov, torch.eye(12), atol=1e-3)


def test_init_whitening_sets_plus_minus_pairs_and_freezes_the_weights():
    stem = nn.Conv2d(3, 24, 2)
    C.init_whitening_(stem, torch.randn(16, 3, 32, 32))
    assert not stem.weight.requires_grad and stem.bias.requires_grad
    assert torch.equal(stem.weight[:12], -stem.weight[12:])


def test_identity_init_passes_the_input_through_the_first_channels():
    model = C.identity_init_(C.CifarNet(widths=(8, 16, 16)))
    conv = model.groups[1].conv1  # 8 -> 16 channels
    x = torch.randn(2, 8, 7, 7)
    assert torch.allclose(conv(x)[:, :8], x, atol=1e-6)
    x16 = torch.randn(2, 16, 5, 5)
    assert torch.allclose(model.groups[1].conv2(x16), x16, atol=1e-6)
    plain = C.CifarNet(widths=(8, 16, 16)).groups[1].conv2
    assert not torch.allclose(plain(x16), x16, atol=1e-2)


def test_net_shape():
    assert C.CifarNet(widths=(8, 16, 32))(torch.randn(3, 3, 32, 32)).shape == (3, 10)


def test_compiled_net_under_bf16_autocast_has_finite_gradients():
    """The global max-pool is adaptive_max_pool2d: x.amax(dim=(2, 3)) gave NaN gradients once compiled under bf16
    autocast (torch 2.13, CPU; every layer below the pool), which the gpu profile's compile row would hit."""
    torch.manual_seed(0)
    net = C.CifarNet(widths=(16, 32, 32))
    compiled = torch.compile(net)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = compiled(torch.randn(64, 3, 32, 32)).float().square().mean()
    loss.backward()
    bad = [n for n, p in net.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradients in {bad}"
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


def test_denormalize_undoes_normalize():
    x = images(4)
    mean, std = C.channel_stats(x)
    assert torch.allclose(C.denormalize(C.normalize(x, mean, std), mean, std), x.float() / 255, atol=1e-5)
    assert C.denormalize(torch.full((1, 3, 2, 2), 50.0), mean, std).max() == 1.0


def test_triangular_schedule_warms_up_then_decays():
    f = C.triangular_schedule(100, peak_at=0.25, start=0.2, end=0.0)
    assert f(0) == pytest.approx(0.2) and f(25) == pytest.approx(1.0) and f(100) == pytest.approx(0.0)
    assert f(10) < f(20) and f(50) > f(75)


def test_optimizer_groups_scale_with_batch_size():
    recipe = C.Recipe(widths=(8, 8, 8), batch_size=256)
    model = C.make_model(recipe)
    model.stem.weight.requires_grad_(False)
    opt, sched = C.make_optimizer(model, recipe, total_steps=10, steps_per_epoch=5)
    ids = {id(p) for g in opt.param_groups for p in g["params"]}
    assert id(model.groups[0].norm1.weight) not in ids and id(model.groups[0].norm1.bias) in ids
    assert id(model.stem.bias) in ids and id(model.stem.weight) not in ids
    rest, norm_group = opt.param_groups
    assert rest["lr"] == pytest.approx(recipe.lr / 4 * 0.2) and norm_group["lr"] == pytest.approx(64 * rest["lr"])
    assert rest["lr"] * rest["weight_decay"] == pytest.approx(recipe.weight_decay / 4 * 0.2)


def test_lookahead_rho_grows_to_decay_to_the_every():
    assert C.lookahead_rho(0, 100) == 0.0 and C.lookahead_rho(100, 100) == pytest.approx(0.95**5)
    assert C.lookahead_rho(50, 100) == pytest.approx(0.95**5 / 8) and C.lookahead_rho(200, 100) == C.lookahead_rho(
        100, 100
    )


def test_lookahead_update_averages_then_restarts_the_network_from_the_slow_copy():
    model = nn.Linear(1, 1, bias=False)
    la = C.Lookahead()
    with torch.no_grad():
        model.weight.fill_(2.0)
        la.update(model, rho=0.5)  # the first update copies: slow = 2
        assert model.weight.item() == 2.0
        model.weight.fill_(4.0)  # the optimizer moved the network on
        la.update(model, rho=0.25)  # slow = 0.25 * 2 + 0.75 * 4 = 3.5, and the network restarts there
        assert model.weight.item() == pytest.approx(3.5) and la.slow[0].item() == pytest.approx(3.5)
        model.weight.fill_(10.0)
        la.update(model, rho=1.0)  # epoch end: the network takes the slow weights, the slow copy stays
        assert model.weight.item() == pytest.approx(3.5) and la.slow[0].item() == pytest.approx(3.5)


def test_tta_levels():
    torch.manual_seed(0)
    mirror_invariant = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 10))
    x = torch.randn(4, 3, 32, 32)
    assert torch.allclose(C.tta_logits(mirror_invariant, x, 1), mirror_invariant(x), atol=1e-6)
    net = C.CifarNet(widths=(8, 8, 8), logit_scale=1e4).eval()
    manual = 0.5 * (net(x) + net(x.flip(-1)))
    assert torch.allclose(C.tta_logits(net, x, 1), manual, rtol=1e-4, atol=1e-3)
    assert not torch.allclose(C.tta_logits(net, x, 2), manual, rtol=1e-2, atol=1e-2)
    assert C.tta_logits(net, x, 2).shape == (4, 10)


def test_train_learns_a_toy_task_and_reports_times():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (384,), generator=g)
    x = torch.randint(0, 120, (384, 3, 16, 16), generator=g, dtype=torch.uint8)  # small images: a fast test
    x[y == 1, 0] += 120  # class 1 is redder
    recipe = C.Recipe(widths=(8, 8, 8), epochs=4, batch_size=32, whiten_images=64, eval_batch_size=64)
    run = C.train(recipe, (x[:256], y[:256]), (x[256:], y[256:]), "cpu", val_each_epoch=True)  # a string works too
    assert run.accuracy > 0.9 and run.tta_accuracy > 0.9 and run.history["val_accuracy"][-1] == run.accuracy
    assert run.train_time_s >= sum(run.history["time_s"]) > 0 and len(run.history) == 4 and run.extra["steps"] == 32
    assert [s["step"] for s in run.history.steps] == [10, 20, 30] and 0 < run.history["train_accuracy"][-1] <= 1
    assert not run.model.stem.weight.requires_grad and not run.model.stem.bias.requires_grad


def test_the_stem_bias_learns_for_its_epochs_only(monkeypatch):
    """whiten_bias_until=0.5 of 4 epochs: the whitened stem's bias moves in epochs 1-2 and stays put in 3-4."""
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (128,), generator=g)
    x = torch.randint(0, 255, (128, 3, 16, 16), generator=g, dtype=torch.uint8)
    seen = []
    real_set_epoch = C.GpuLoader.set_epoch

    def set_epoch(loader, epoch):  # record the stem bias as each epoch starts (the loop calls set_epoch first)
        seen.append(model_of[0].stem.bias.detach().clone())
        real_set_epoch(loader, epoch)

    model_of = []
    real_make_model = C.recipe.make_model
    monkeypatch.setattr(C.recipe, "make_model", lambda *a: model_of.append(real_make_model(*a)) or model_of[0])
    monkeypatch.setattr(C.GpuLoader, "set_epoch", set_epoch)
    recipe = C.Recipe(widths=(8, 8, 8), epochs=4, batch_size=32, whiten_images=64, whiten_bias_until=0.5,
                      lookahead=False, eval_batch_size=64)  # fmt: skip
    run = C.train(recipe, (x, y), (x[:64], y[:64]), torch.device("cpu"))
    final = run.model.stem.bias.detach()
    assert not torch.equal(seen[1], seen[2]), "the bias learns in epoch 2"
    assert torch.equal(seen[2], seen[3]) and torch.equal(seen[3], final), "and is frozen from epoch 3 on"


def test_ablation_rows_add_one_trick_at_a_time():
    rows = C.ablation_recipes(C.Recipe())
    first, last = rows[0][1], rows[-1][1]
    assert first == C.baseline_recipe(C.Recipe())
    assert not first.whiten and first.schedule == "constant" and first.label_smoothing == 0
    assert last.whiten and last.lookahead and last.flip == "alternating" and last.schedule == "triangular"
    assert len({repr(r) for _, r in rows}) == len(rows)


@pytest.mark.skipif(not (DATA / "test.parquet").exists(), reason="no local CIFAR-10 copy")
def test_tensors_match_the_datasets_path_of_notebook_00():
    import helpers

    a = C.load_cifar10_tensors(train_size=20, test_size=100)
    ds = helpers.load_cifar10()
    for split, size in (("train", 20), ("test", 100)):  # the same images in the same order
        part = helpers.stratified_subset(ds[split], size, seed=0)
        assert torch.equal(a[f"x_{split}"], helpers.images_to_tensor(part))
        assert a[f"y_{split}"].tolist() == part["label"]
    assert a["x_test"].shape == (100, 3, 32, 32) and a["x_test"].dtype == torch.uint8
    assert torch.equal(a["y_train"].bincount(minlength=10), torch.full((10,), 2))
