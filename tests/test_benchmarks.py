"""The benchmark scripts must import the helpers they use on a bare GPU machine (no matplotlib, no datasets)."""

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

HIDE = textwrap.dedent('''
    # make these packages look not installed: imports fail, find_spec answers None
    import importlib.util, sys
    BLOCKED = {"matplotlib", "datasets"}
    class Hide:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None
    sys.meta_path.insert(0, Hide())
    original = importlib.util.find_spec
    importlib.util.find_spec = lambda name, package=None: None if name.split(".")[0] in BLOCKED else original(name, package)
''')

CHECK = textwrap.dedent('''
    import sys
    sys.path.insert(0, "benchmarks")
    from helpers_import import import_helpers
    print(import_helpers("cifar", "data", "device", "text", "train"))
    import helpers.text, helpers.cifar
    assert hasattr(helpers.text, "TokenBatches") and hasattr(helpers.cifar, "Recipe")
    assert "helpers.plot" not in sys.modules and "matplotlib" not in sys.modules
''')


def run_python(code: str, site_dir: Path | None = None) -> str:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site_dir) if site_dir else ""}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_helpers_import_without_matplotlib_and_datasets(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(HIDE)
    assert run_python(CHECK, tmp_path) == "minimal (helpers/__init__.py skipped: no matplotlib)"


def test_helpers_import_full_where_everything_is_installed():
    assert run_python(CHECK.replace('assert "helpers.plot" not in sys.modules and "matplotlib" not in sys.modules', "")) == "full"
