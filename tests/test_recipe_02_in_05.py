"""05 trains "02's recipe as 02's cpu table chose it": its RECIPE_02 must be what 02's stored cpu run chose.

02's tricks table (§4.8) prints `changed settings: {...}`, the baseline's settings that the kept tricks change; 05
writes them into its data file by hand (it cannot run 02's table). When 02's choice changes, this test fails until
05 follows it.
"""

import ast
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def stored_text(path: Path) -> str:
    """Every stream output of a notebook's code cells, as one string."""
    cells = json.loads(path.read_text())["cells"]
    return "".join("".join(o.get("text", "")) for c in cells if c["cell_type"] == "code" for o in c.get("outputs", []))


def recipe_in_05() -> dict:
    """The keyword arguments of 05's `RECIPE_02 = dict(...)` line."""
    cells = json.loads((ROOT / "solutions" / "05_distributed.ipynb").read_text())["cells"]
    source = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    line = re.search(r"^RECIPE_02 = (dict\(.*\))$", source, re.MULTILINE)
    assert line, "05 has no `RECIPE_02 = dict(...)` line"
    call = ast.parse(line.group(1), mode="eval").body
    return {k.arg: ast.literal_eval(k.value) for k in call.keywords}


def test_05_trains_the_recipe_02_chose():
    found = re.search(r"^changed settings: (\{.*\})$", stored_text(ROOT / "solutions" / "02_cifar10_cnn.ipynb"), re.M)
    assert found, "02's stored output has no `changed settings: {...}` line (§4.8)"
    assert recipe_in_05() == ast.literal_eval(found.group(1)), "05's RECIPE_02 is not what 02's stored table chose"
