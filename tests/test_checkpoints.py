"""Saving checkpoints where real runs fail: a disk without room, and two runs saving to one path.

The disk-full case is a real failed write, not a faked torch.save: a child process lowers its file-size limit
(RLIMIT_FSIZE, with SIGXFSZ ignored) so that the kernel refuses the bytes past it with EFBIG, the same path
through torch.save and save_checkpoint as a full disk's ENOSPC (both are in checkpoints.NO_SPACE).
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from helpers import checkpoints

ROOT = Path(__file__).resolve().parent.parent

CHILD = textwrap.dedent(
    """
    import resource, signal, sys
    import torch
    from torch import nn
    from helpers.checkpoints import CheckpointSpaceError, save_checkpoint

    path, limit = sys.argv[1], int(sys.argv[2])
    scaler = torch.amp.GradScaler("cpu", enabled=False)

    def save(width):
        torch.manual_seed(width)
        model = nn.Linear(width, width)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        save_checkpoint(path, model, optimizer, None, scaler, {"epochs": []}, None)

    if sys.argv[3] == "small-first":
        save(8)  # about 1 kB: fits
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the kernel then refuses with EFBIG instead of a signal
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    try:
        save(300)  # 300 x 301 float32 weights: about 361 kB, over the limit
    except CheckpointSpaceError as error:
        print(type(error).__name__, isinstance(error, OSError), error, sep="|")
    """
)


def _child(path: Path, mode: str, limit: int = 100_000) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(limit), mode], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().split("|")


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="RLIMIT_FSIZE semantics of Linux")
def test_no_room_is_our_error_and_the_earlier_checkpoint_is_kept(tmp_path):
    path = tmp_path / "runs" / "run.pt"
    kind, is_oserror, message = _child(path, "small-first")
    assert (kind, is_oserror) == ("CheckpointSpaceError", "True")
    assert message.startswith(
        f"Could not save the checkpoint {path}: the file is over a size limit (File too large). It needs about "
    )
    assert "It needs about 0.4 MB; " in message  # 300 x 300 + 300 float32 = 361,200 bytes
    assert " MB is free on that disk. " in message
    assert f"The earlier checkpoint {path} is kept, unchanged, and no half-written file is left." in message
    assert "Fix: free some space" in message
    # the earlier (8 x 8) checkpoint is intact and loads; no temporary file is left beside it
    model = torch.nn.Linear(8, 8)
    assert checkpoints.load_checkpoint(path, model) == {"epochs": []}
    torch.manual_seed(8)
    assert torch.equal(model.weight, torch.nn.Linear(8, 8).weight)
    assert [p.name for p in path.parent.iterdir()] == ["run.pt"]


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="RLIMIT_FSIZE semantics of Linux")
def test_no_room_and_no_earlier_checkpoint(tmp_path):
    path = tmp_path / "run.pt"
    kind, _, message = _child(path, "only-large")
    assert kind == "CheckpointSpaceError"
    assert "There was no earlier checkpoint at that path and none was written" in message
    assert list(tmp_path.iterdir()) == []


def test_the_space_needed_counts_each_tensor_once():
    shared = torch.zeros(1000)
    assert checkpoints._nbytes({"a": shared, "b": [shared, shared[:10]], "c": {"d": torch.zeros(5)}, "e": 3}) == 4020


WRITER = textwrap.dedent(
    """
    import os, sys, time
    import torch
    from torch import nn
    from helpers.checkpoints import save_checkpoint

    path, seed, go = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    torch.manual_seed(seed)
    model = nn.Linear(256, 256)
    optimizer = torch.optim.Adam(model.parameters())
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    print("ready", flush=True)
    while not os.path.exists(go):  # both writers begin together
        time.sleep(0.005)
    end, saves = time.time() + 3, 0
    while time.time() < end or saves < 20:
        save_checkpoint(path, model, optimizer, None, scaler, {"writer": seed, "saves": saves}, None)
        saves += 1
    print("done", saves)
    """
)


def test_two_runs_saving_to_one_path_both_finish(tmp_path):
    """Two processes (the same notebook open in two tabs) save to one path for 3 s each, at the same time."""
    path, go = tmp_path / "run.pt", tmp_path.parent / f"{tmp_path.name}-go"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(seed), str(go)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2)
    ]
    for writer in writers:
        assert writer.stdout.readline().strip() == "ready", writer.communicate()[1][-3000:]
    go.touch()
    results = [w.communicate(timeout=300) for w in writers]
    for writer, (out, err) in zip(writers, results):
        assert writer.returncode == 0 and out.startswith("done"), err[-3000:]
    # the file is whole: the last save of one of the two writers, with its own weights
    model = torch.nn.Linear(256, 256)
    history = checkpoints.load_checkpoint(path, model)
    last = {int(seed): int(out.split()[1]) - 1 for seed, (out, _) in zip((1, 2), results)}
    assert history["saves"] == last[history["writer"]]
    torch.manual_seed(history["writer"])
    assert torch.equal(model.weight, torch.nn.Linear(256, 256).weight)
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)
