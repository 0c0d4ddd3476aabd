"""The house rules of issue 19: small helpers modules and functions, public library APIs only."""

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HELPERS = sorted((ROOT / "helpers").rglob("*.py"))
OURS = HELPERS + sorted(p for d in ("exercises", "diagrams", "benchmarks", "scripts") for p in (ROOT / d).rglob("*.py"))
PUBLIC_TRANSFORMERS = {"transformers", "transformers.utils.logging"}
"""The transformers modules we import from: the package itself and its documented logging module."""


def code_cells(path: Path) -> str:
    """The source of every code cell of a notebook (not its outputs)."""
    cells = json.loads(path.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


@pytest.mark.parametrize("path", HELPERS, ids=[str(p.relative_to(ROOT)) for p in HELPERS])
def test_helpers_modules_and_functions_are_short(path):
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


def test_the_module_scan_sees_internal_imports():
    source = "from transformers.trainer_pt_utils import get_length_grouped_indices\nfrom transformers import X\n"
    assert transformers_modules(source) == {"transformers.trainer_pt_utils", "transformers"}
    assert transformers_modules("    from transformers.utils import logging as hf_logging") <= PUBLIC_TRANSFORMERS


@pytest.mark.parametrize(
    "path", OURS + sorted((ROOT / "solutions").glob("*.ipynb")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_only_public_library_apis(path):
    source = code_cells(path) if path.suffix == ".ipynb" else path.read_text()
    assert transformers_modules(source) <= PUBLIC_TRANSFORMERS, "an internal transformers module: it gets renamed"
    private = re.findall(r"\btorch\.(?:\w+\.)*_[a-z]\w*\(", source)
    assert not private, f"private torch functions {private}: use the public API"
