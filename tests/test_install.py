"""A non-editable install, as on Colab (`pip install git+...`): data/ and runs/ land in the working directory.

The course's packages are built into a wheel and installed into a fresh venv (the heavy dependencies come
from this interpreter's site-packages through a .pth line, so it takes seconds and no network); a notebook's
paths are then read from an empty working directory. They must point into that directory (where the learner
sees them, and where notebook 04 finds what 03 saved), never into site-packages.
"""

import json
import os
import shutil
import site
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, os
import helpers
print(json.dumps({"helpers": helpers.__file__, "data_dir": str(helpers.data_dir()),
                  "finetuned_dir": os.path.abspath(helpers.finetuned_dir())}))
"""


def run(*args, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300, **kwargs)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The python of a fresh venv holding a non-editable install of this repository's packages."""
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"  # a copy: building never writes build/ or *.egg-info into the repository
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for package in packages:
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "-w",
        tmp / "wheel",
        src,
    )
    venv = tmp / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    target = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    # torch, transformers, ... from this interpreter; a path in a .pth file does not run that folder's own
    # .pth files, so this environment's editable install of the course stays out
    (target / "course_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "install",
        "-q",
        "--no-deps",
        "--no-index",
        *sorted((tmp / "wheel").glob("*.whl")),
    )
    return python


def probe(python: Path, workdir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COURSE_", "PYTHON"))}
    env["HOME"] = str(workdir.parent / "home")  # no fallback into the real home's cache either
    return json.loads(run(python, "-c", PROBE, cwd=workdir, env=env).stdout.strip().splitlines()[-1])


def test_the_install_is_not_editable(installed, tmp_path):
    paths = probe(installed, tmp_path)
    assert "site-packages" in paths["helpers"] and not paths["helpers"].startswith(str(ROOT)), paths


def test_data_and_runs_land_in_the_working_directory(installed, tmp_path):
    work = tmp_path / "content"  # Colab's working directory
    work.mkdir()
    paths = probe(installed, work)
    assert Path(paths["data_dir"]) == work / "data", paths
    finetuned = Path(paths["finetuned_dir"])  # runs/<profile>/bert-imdb, the profile that this machine defaults to
    assert finetuned.name == "bert-imdb" and finetuned.parent.parent == work / "runs", paths
    assert not any("site-packages" in paths[k] for k in ("data_dir", "finetuned_dir")), paths
