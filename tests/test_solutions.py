"""Every solutions/*.ipynb runs top to bottom with its checks strict, on the gpu code paths at tiny sizes.

CI's second notebook run (issue 11): COURSE_PROFILE=gpu COURSE_TINY=1 COURSE_PRECISION=fp16 (bf16 for the
convolutional notebooks, see CONVOLUTIONAL) COURSE_STRICT_CHECKS=1, so every gpu code path, every solution and
every check runs, and a failed or unanswered check fails the test. Stored outputs are not compared (nbval does that
for the student editions). The notebooks run in order in one temporary folder beside a copy of the solutions, so a
notebook that reads what an earlier one saved (03 -> 04 under runs/) finds it there, and nothing is written into the
repository.
"""

import inspect
import os
import re
import shutil
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "solutions").glob("*.ipynb"))
ENV = {"COURSE_PROFILE": "gpu", "COURSE_TINY": "1", "COURSE_PRECISION": "fp16", "COURSE_STRICT_CHECKS": "1"}
TIMEOUT_S = 600  # per cell; a tiny run of a whole notebook takes seconds to a minute on 2 CPU cores
# CPUs have no float16 convolution kernels worth the name: one training step of 02's tiny CNN (batch 128) takes 3.7 s
# under float16 autocast against 0.06 s in float32 and 0.04 s in bfloat16 (torch 2.13, this 2-core machine), which
# made 02 alone take 5-10 minutes of CI. The convolutional notebooks take the other gpu path here (bf16, as on an
# A100/H100); the float16 path (GradScaler, skipped steps, fp16 resume) is tested in tests/test_precision.py and
# tests/test_resume.py, and on real CUDA kernels by the GPU check (`make gpu-check`, tools/gpu_check.py).
CONVOLUTIONAL = {"02_cifar10_cnn.ipynb": "bf16", "05_distributed.ipynb": "bf16"}


def tiny_functions() -> set[str]:
    """Names of helpers.profiles functions that apply COURSE_TINY to a config."""
    from helpers import profiles

    names = set()
    for name, fn in inspect.getmembers(profiles, inspect.isfunction):
        if name.startswith("_") or name == "tiny" or fn.__module__ != profiles.__name__:
            continue
        if "tiny()" in inspect.getsource(fn) or "COURSE_TINY" in inspect.getsource(fn):
            names.add(name)
    return names


def uses_tiny_sizes(nb: nbformat.NotebookNode) -> bool:
    """True when a code cell calls one of the tiny-aware config functions, e.g. helpers.profiles.settings(...)."""
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    return any(re.search(rf"\b{name}\(", code) for name in tiny_functions())


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A scratch course root: solutions/ copied, docs/ and data/ linked, shared by the notebooks in order."""
    root = tmp_path_factory.mktemp("course")
    shutil.copytree(ROOT / "solutions", root / "solutions", ignore=shutil.ignore_patterns("runs"))
    for name in ("docs", "solutions/data"):  # no checkout here: data/ and runs/ land in solutions/ (helpers.runs_dir)
        if (ROOT / Path(name).name).exists():
            (root / name).symlink_to(ROOT / Path(name).name)
    return root


def test_there_are_solutions():
    assert SOURCES, "solutions/ holds no notebook"


def test_a_config_cell_without_the_tiny_mechanism_is_caught():
    """The guard above must fail a notebook that forgets settings(), not let it pass vacuously."""
    with_settings = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("cfg = helpers.profiles.settings(CONFIG, sizes=('n',))")]
    )
    without = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("cfg = CONFIG[helpers.get_profile()]")])
    assert "settings" in tiny_functions()
    assert uses_tiny_sizes(with_settings) and not uses_tiny_sizes(without)


@pytest.mark.parametrize("path", SOURCES, ids=[p.name for p in SOURCES])
def test_solutions_run_with_strict_checks(path, workdir, monkeypatch):
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    assert uses_tiny_sizes(nb), (
        f"{path.name}: its config cell does not call helpers.profiles' COURSE_TINY mechanism "
        f"({', '.join(sorted(tiny_functions()))}), so its gpu profile would run at full size here: "
        "give it a config cell with helpers.profiles.settings(CONFIG, sizes=...)"
    )
    for key, value in {**ENV, "COURSE_PRECISION": CONVOLUTIONAL.get(path.name, ENV["COURSE_PRECISION"])}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MPLBACKEND", "agg")
    if "COURSE_DATA_DIR" not in os.environ and (ROOT.parent / "shared" / "data").exists():
        monkeypatch.setenv("COURSE_DATA_DIR", str(ROOT.parent / "shared" / "data"))
    client = NotebookClient(
        nb, timeout=TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(workdir / "solutions")}}
    )
    repo_runs = {p: p.stat().st_mtime_ns for p in (ROOT / "runs" / "gpu-tiny").rglob("*")}  # what this mode writes
    client.execute()  # raises CellExecutionError (with the failing cell and traceback) on any error
    assert repo_runs == {p: p.stat().st_mtime_ns for p in (ROOT / "runs" / "gpu-tiny").rglob("*")}, "wrote into runs/"
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "⏳" not in text and "❌" not in text, "a check did not pass in a solutions edition"
    for cell in (c for c in nb.cells if "check" in c.metadata.get("tags", [])):  # every check ran and reported
        assert "✅" in "".join(o.get("text", "") for o in cell.outputs), f"check cell {cell.id} printed no ✅ line"
