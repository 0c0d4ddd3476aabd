"""The GPU check (tools/gpu_check.py) on a CPU: its dry run through the same code, killed at random moments, a budget.

The dry run here takes the quick steps (the environment, 02's training at tiny size, airbench94 without a copy,
notebook 00 in a real kernel); `make gpu-check-dry` runs every step.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from tools import gpu_check
from tools.notebook_run import NotebookRun

ROOT = Path(__file__).resolve().parent.parent
QUICK = "env,cifar10_speed,airbench94,nb00"


def run_check(out: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """The check as a user runs it: python -m tools.gpu_check ..., from the checkout."""
    command = [sys.executable, "-m", "tools.gpu_check", "--out", str(out), *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def assert_finished_parts_on_disk(out: Path) -> dict:
    """Every step run.json calls finished has its result, whole; every cell a notebook record lists is in its .ipynb."""
    run = json.loads((out / "run.json").read_text())
    for entry in run["steps"]:
        if entry["status"] == "finished":
            json.loads((out / entry["file"]).read_text())
    for record_path in (out / "notebooks").glob("*.json"):
        record = json.loads(record_path.read_text())
        nb = nbformat.read(record_path.with_suffix(".ipynb"), as_version=4)
        for cell in record["cells"]:
            assert nb.cells[cell["cell"]].execution_count is not None, (record_path.name, cell)
    return run


def test_the_dry_run_goes_through_every_kind_of_step(tmp_path):
    done = run_check(tmp_path, "--dry", "--only", QUICK)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = assert_finished_parts_on_disk(tmp_path)
    status = {e["step"]: e["status"] for e in run["steps"]}
    assert list(status) == QUICK.split(",") and run["dry"] and run["gpu"] == "cpu-dry"
    assert status["env"] == status["cifar10_speed"] == status["nb00"] == "finished", status
    if not list((ROOT / "benchmarks" / "ref").rglob("airbench94.py")):
        assert status["airbench94"].startswith("not started: no copy of airbench94.py: git clone"), status
    speed = json.loads((tmp_path / "cifar10_speed.json").read_text())
    assert speed["runs"] == 1 and speed["data"]["train_images"] == 512
    record = json.loads((tmp_path / "notebooks" / "00.json").read_text())
    assert record["complete"] and record["tiny"] and record["profile"] == "gpu"
    assert len(record["cells"]) == record["code_cells"] and record["seconds"] > 0
    assert all(c["peak_gpu_mib"] is None for c in record["cells"]), "no CUDA on a CPU: no peak to read"


def test_a_check_killed_at_random_moments_keeps_what_it_finished(tmp_path):
    rng = random.Random()  # a different moment each run; the property holds at every one
    for attempt in range(2):
        out = tmp_path / f"kill{attempt}"
        command = [sys.executable, "-m", "tools.gpu_check", "--dry", "--only", "env,nb00", "--out", str(out)]
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)  # fmt: skip
        time.sleep(rng.uniform(2, 25))  # the dry run of env and nb00 takes about 27 s on 2 cores
        os.killpg(process.pid, signal.SIGKILL)  # the runner and its step's process (a kernel ends with its parent)
        process.wait()
        if (out / "run.json").exists():
            assert_finished_parts_on_disk(out)


def test_a_step_that_does_not_fit_the_budget_is_not_started_and_says_so(tmp_path):
    done = run_check(tmp_path, "--dry", "--only", "cifar10_speed,nb02", "--budget", "5", timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    status = [e["status"] for e in json.loads((tmp_path / "run.json").read_text())["steps"]]
    assert len(status) == 2 and all(s.startswith("not started: estimated") for s in status), status
    assert not (tmp_path / "cifar10_speed.json").exists() and not (tmp_path / "notebooks").exists()


def test_a_missing_piece_is_named_with_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    speed = next(s for s in gpu_check.STEPS if s.name == "cifar10_speed")
    assert gpu_check.missing(speed, None) == (
        f"no cifar10 data in {tmp_path}: python -m helpers.download cifar10, or set COURSE_DATA_DIR"
    )
    step = gpu_check.Step("x", [], [], needs=("torch", "no_such_module_for_this_test"))
    assert gpu_check.missing(step, None).startswith("missing no_such_module_for_this_test: pip install")
    assert gpu_check.missing(gpu_check.Step("y", [], []), None) is None
    with pytest.raises(SystemExit):
        gpu_check.parse_args(["--only", "env,no_such_step"])


def write_notebook(path: Path, sources: list[str]) -> Path:
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources]), path)
    return path


def test_the_notebook_runner_stops_at_a_failing_cell_and_keeps_the_cells_before(tmp_path):
    source = write_notebook(tmp_path / "nb.ipynb", ["x = 2", "print(x * 21)", "raise ValueError('boom')", "x = 0"])
    record = NotebookRun(source, tmp_path / "out" / "nb").execute(time.time() + 120)
    assert not record["complete"] and record["failed"] and "ValueError" in record["stopped"]
    assert [c["cell"] for c in record["cells"]] == [0, 1]
    saved = nbformat.read(tmp_path / "out" / "nb.ipynb", as_version=4)
    assert saved.cells[1].outputs[0]["text"] == "42\n" and saved.cells[3].execution_count is None
    assert json.loads((tmp_path / "out" / "nb.json").read_text()) == record


def test_a_cell_whose_estimate_does_not_fit_is_not_started(tmp_path):
    source = write_notebook(tmp_path / "nb.ipynb", ["x = 1", "x = 2"])
    record = NotebookRun(source, tmp_path / "nb", estimates={1: 10_000.0}).execute(time.time() + 60)
    assert [c["cell"] for c in record["cells"]] == [0] and not record["failed"]
    assert record["stopped"].startswith("cell 1 not started: estimated 10000 s")


def test_the_peak_memory_reading_comes_back_from_the_kernel(tmp_path, monkeypatch):
    """The reading is a user expression the kernel evaluates after each cell; here one whose value is known."""
    from tools import notebook_run

    monkeypatch.setattr(notebook_run, "PEAK_EXPRESSION", "6 * 7 * 2**20")
    source = write_notebook(tmp_path / "nb.ipynb", ["x = 1"])
    record = NotebookRun(source, tmp_path / "nb").execute(time.time() + 60)
    assert record["cells"][0]["peak_gpu_mib"] == 42.0
