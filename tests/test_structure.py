"""The house rules (issues 19 and 28): small modules and functions in helpers/, tools/ and benchmarks/, public library
APIs only, no file that loads another by its path, no import loop among the tools."""

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HELPERS = sorted((ROOT / "helpers").rglob("*.py"))
TOOLS = sorted((ROOT / "tools").glob("*.py")) + sorted((ROOT / "benchmarks").glob("*.py"))
OURS = HELPERS + sorted(p for d in ("exercises", "diagrams", "benchmarks", "tools") for p in (ROOT / d).rglob("*.py"))
EVERY_PY = sorted(p for p in ROOT.rglob("*.py") if not {".venv", ".venv-min", "runs", "_build", "pack"} & set(p.parts))
PUBLIC_TRANSFORMERS = {"transformers", "transformers.utils.logging"}
"""The transformers modules we import from: the package itself and its documented logging module."""


def code_cells(path: Path) -> str:
    """The source of every code cell of a notebook (not its outputs)."""
    cells = json.loads(path.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


@pytest.mark.parametrize("path", HELPERS + TOOLS, ids=[str(p.relative_to(ROOT)) for p in HELPERS + TOOLS])
def test_modules_and_functions_are_short(path):
    source = path.read_text()
    assert len(source.splitlines()) <= 400, f"{path.name}: over 400 lines; split it by job"
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            assert length <= 60, f"{path.name}: {node.name} has {length} lines; give a part of it a name"


def transformers_modules(source: str) -> set[str]:
    """Every transformers module a piece of Python imports from (`import x.y`, `from x.y import z`)."""
    found = set(re.findall(r"^\s*from\s+(transformers(?:\.\w+)*)\s+import\s+(\w+)", source, re.MULTILINE))
    modules = {
        m if m != "transformers.utils" or name != "logging" else "transformers.utils.logging" for m, name in found
    }
    return modules | set(re.findall(r"^\s*import\s+(transformers(?:\.\w+)*)", source, re.MULTILINE))


@pytest.mark.parametrize(
    "path", OURS + sorted((ROOT / "solutions").glob("*.ipynb")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_only_public_library_apis(path):
    source = code_cells(path) if path.suffix == ".ipynb" else path.read_text()
    assert transformers_modules(source) <= PUBLIC_TRANSFORMERS, "an internal transformers module: it gets renamed"
    private = re.findall(r"\btorch\.(?:\w+\.)*_[a-z]\w*\(", source)
    assert not private, f"private torch functions {private}: use the public API"


@pytest.mark.parametrize("path", EVERY_PY, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_file_loads_another_by_its_path(path):
    """Modules are imported as modules (tools/ and benchmarks/ are packages), never loaded from a file path."""
    loads = ("spec_from_" + "file_location", "Source" + "FileLoader", "run" + "_path")  # in pieces: not a hit here
    found = [name for name in loads if name in path.read_text()]
    assert not found, f"{found}: import the module instead (python -m tools.<name>, from tools import <name>)"


def tools_imports() -> dict[str, set[str]]:
    """tools/'s import graph: module -> the tools modules it imports (at any depth of the code)."""
    graph: dict[str, set[str]] = {}
    for path in sorted((ROOT / "tools").glob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "tools":
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tools."):
                names.add(node.module.removeprefix("tools."))
            elif isinstance(node, ast.Import):
                names |= {a.name.removeprefix("tools.") for a in node.names if a.name.startswith("tools.")}
        graph[path.stem] = names
    return graph


def test_the_tools_import_no_loop():
    graph = tools_imports()
    assert graph["gpu_check"] >= {"airbench", "notebook_run"}, "the graph is read from the real imports"

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph.get(start, ()))

    loops = sorted(module for module in graph if reaches(module, module, set()))
    assert not loops, f"import loop through {loops}: move what both need into a third module"
