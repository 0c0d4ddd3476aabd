"""A non-editable `pip install .` (a learner installing the helpers, or pip building a wheel) leaves the checkout's
`git status` as it was: setuptools' build/ and *.egg-info are ignored build outputs, never untracked clutter."""

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _status() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout")
@pytest.mark.skipif(importlib.util.find_spec("setuptools") is None, reason="setuptools (the build backend) missing")
def test_pip_install_dot_leaves_the_tree_clean(tmp_path):
    before = _status()
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", tmp_path, "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "helpers" / "__init__.py").exists()  # it really built and installed the package
    assert (ROOT / "build").exists()  # what setuptools leaves: ignored, so the status does not change
    after = _status()
    assert after == before, f"`pip install .` left files git sees:\n{after}"
    assert not [line for line in after.splitlines() if "build/" in line or ".egg-info" in line], after
