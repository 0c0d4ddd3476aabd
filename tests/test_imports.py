"""Every helpers module, and both benchmarks, import on a bare GPU machine: no matplotlib, datasets or tqdm."""

import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import helpers

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted(m.name.removeprefix("helpers.") for m in pkgutil.walk_packages(helpers.__path__, "helpers."))

HIDE = textwrap.dedent("""
    import importlib.util, sys
    BLOCKED = {"matplotlib", "datasets", "tqdm"}
    class Hide:  # a meta-path finder that makes these packages look not installed
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None
    sys.meta_path.insert(0, Hide())
    original = importlib.util.find_spec
    def find_spec(name, package=None):
        return None if name.split(".")[0] in BLOCKED else original(name, package)
    importlib.util.find_spec = find_spec
""")

CHECK = HIDE + textwrap.dedent("""
    import importlib, sys
    try:
        import matplotlib
    except ModuleNotFoundError:
        print("hidden")
    for name in sys.argv[1:]:
        importlib.import_module("helpers." + name)
    import helpers
    for script in ("benchmarks.cifar10_speed", "benchmarks.imdb_finetune"):
        importlib.import_module(script)  # the imports and definitions, not main()
    print(sorted(m for m in ("matplotlib", "datasets", "tqdm") if m in sys.modules))
""")


def test_helpers_and_benchmarks_import_without_matplotlib_datasets_tqdm():
    done = subprocess.run(
        [sys.executable, "-c", CHECK, *MODULES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["hidden", "[]"], done.stdout
    assert {"data", "train", "plot", "attention", "cifar", "cifar.recipe", "text"} <= set(MODULES)


def test_the_blocker_really_hides_them():
    done = subprocess.run([sys.executable, "-c", HIDE + "import tqdm.auto"], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "No module named 'tqdm" in done.stderr
