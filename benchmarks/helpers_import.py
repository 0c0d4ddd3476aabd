"""Import the course's `helpers` modules a benchmark needs, also on a bare GPU machine.

`helpers/__init__.py` imports everything the notebooks use, plotting included. A GPU machine set up only
for training may lack `matplotlib` (or `datasets`, or `tqdm`): then the package is registered without
running its `__init__.py`, only the modules asked for are imported, and `tqdm` gets a silent stand-in.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OPTIONAL = {"matplotlib", "datasets", "tqdm", "ipywidgets", "IPython"}


def import_helpers(*modules: str) -> str:
    """Import helpers.<module> for each name; returns "full", or how the package was imported instead."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # a script, not an installed package: find helpers/ next to benchmarks/
    try:
        importlib.import_module("helpers")
        mode = "full"
    except ImportError as error:
        missing = (error.name or "").split(".")[0]
        if missing not in OPTIONAL:
            raise
        for name in [m for m in sys.modules if m == "helpers" or m.startswith("helpers.")]:
            del sys.modules[name]
        package = types.ModuleType("helpers")
        package.__path__ = [str(ROOT / "helpers")]  # skips helpers/__init__.py
        sys.modules["helpers"] = package
        _stand_in_tqdm()
        mode = f"minimal (helpers/__init__.py skipped: no {missing})"
    for module in modules:
        importlib.import_module(f"helpers.{module}")
    return mode


def _stand_in_tqdm() -> None:
    """A tqdm.auto.tqdm that only iterates, where tqdm is not installed (helpers.train imports it)."""
    try:
        import tqdm.auto  # noqa: F401
        return
    except ImportError:
        pass

    class _NoBar:
        def __init__(self, iterable=None, **kwargs):
            self.iterable = iterable

        def __iter__(self):
            return iter(self.iterable)

        def set_postfix(self, **kwargs):
            pass

        def close(self):
            pass

    package = types.ModuleType("tqdm")
    auto = types.ModuleType("tqdm.auto")
    for module in (package, auto):  # a spec, because torch._dynamo looks modules up with find_spec
        module.__spec__ = importlib.machinery.ModuleSpec(module.__name__, None)
    auto.tqdm = _NoBar
    package.auto = auto
    sys.modules.update({"tqdm": package, "tqdm.auto": auto})
