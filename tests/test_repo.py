"""Repository conventions a reviewer checks by eye: Colab cells and badges, imports, time tables, outputs."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "solutions").glob("*.ipynb"))  # sources = solutions editions (tools/editions.py)
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
ALL = NOTEBOOKS + SOURCES
IDS = [f"{p.parent.name}/{p.name}" for p in ALL]
LESSONS = [p for p in NOTEBOOKS if p.name[:2].isdigit() and p.name[:2] != "00"]  # 00 is a setup check


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no notebook"


def test_colab_cells_and_badges_follow_the_one_repository_url():
    result = subprocess.run([sys.executable, "-m", "tools.colab", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", ALL, ids=IDS)
def test_notebook_conventions(path):
    nb = json.loads(path.read_text())
    sources = ["".join(c["source"]) for c in nb["cells"]]
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "sys.path" not in code, "import helpers as an installed package, never via sys.path"
    first = sources[0]
    assert nb["cells"][0]["cell_type"] == "markdown" and all(p in first for p in ("smoke", "cpu", "gpu")), (
        "the first cell gives a time estimate per profile"
    )
    outputs = json.dumps([c.get("outputs", []) for c in nb["cells"] if c["cell_type"] == "code"])
    assert not re.search(r"/(work|tmp|root|home)/", outputs), "machine paths in stored outputs"
    assert '"output_type": "error"' not in outputs, "a stored error output"


@pytest.mark.parametrize("path", ALL, ids=IDS)
def test_clean_stored_outputs(path):
    """Issue 11: under 1.5 MB (issue 21: figures at >= 100 dpi), no widget state, no execution metadata, one kernel."""
    assert path.stat().st_size < 1_500_000, (
        f"{path.stat().st_size / 1e6:.2f} MB: make its figures leaner (fewer, smaller)"
    )
    nb = json.loads(path.read_text())
    assert "widgets" not in nb["metadata"], "saved widget state in the notebook metadata"
    assert not [c.get("id") for c in nb["cells"] if "execution" in c.get("metadata", {})], (
        "per-cell execution metadata (timestamps): strip it (python -m tools.editions clean)"
    )
    kernel = nb["metadata"].get("kernelspec", {})
    assert (kernel.get("name"), kernel.get("display_name")) == ("python3", "Python 3 (ipykernel)")
    outputs = json.dumps([c.get("outputs", []) for c in nb["cells"] if c["cell_type"] == "code"])
    assert "application/vnd.jupyter.widget-view+json" not in outputs, "widget views in stored outputs"
    bars = [
        text
        for c in nb["cells"]
        if c["cell_type"] == "code"
        for o in c.get("outputs", [])
        for text in ["".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))]
        if re.search(r"(^|[\r\n])[^\r\n]*( 0%\||: 0 examples \[)", text)
    ]
    assert not bars, (
        f"a progress bar's first frame in stored outputs (python -m tools.editions clean drops them): {bars[0][:80]!r}"
    )


@pytest.mark.parametrize("path", SOURCES, ids=[p.name for p in SOURCES])
def test_student_edition_points_at_its_solutions(path):
    """The student edition's exercises end with where the solutions are, with a Colab link for them."""
    nb = json.loads((ROOT / "notebooks" / path.name).read_text())
    text = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]
    start = next(i for i, s in enumerate(text) if re.match(r"##\s+Exercises", s))
    end = next((i for i in range(start + 1, len(text)) if text[i].startswith("## ")), len(text))
    pointer = text[end - 1]
    assert f"](../solutions/{path.name})" in pointer, "the exercises do not end with a link to the solutions"
    assert f"/blob/main/solutions/{path.name})" in pointer and "colab.research.google.com" in pointer


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_course_map_next_link_and_further_reading(path):
    """Issue 12: a course map at the top, a Next link and Further reading at the end, understanding checks."""
    nb = json.loads(path.read_text())
    text = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]
    top, end = "\n".join(text[:3]), "\n".join(text[-3:])
    assert "**Course map**" in top, "no course map near the top"
    assert all((ROOT / "notebooks" / link).exists() for link in re.findall(r"\]\((\d\d_\w+\.ipynb)\)", top)), (
        "a course-map link points at no notebook"
    )
    if path != NOTEBOOKS[-1]:
        assert re.search(r"\*\*Next:\*\* \[[^\]]+\]\(\d\d_\w+\.ipynb\)", end), "no Next link at the end"
    assert "**Further reading**" in end, "no Further reading at the end"
    blocks = [s for s in text if "**Check your understanding**" in s]
    assert len(blocks) >= 2, "fewer than two check-your-understanding blocks"
    for block in blocks:
        questions = re.findall(r"^\d+\.", block, re.MULTILINE)
        assert 3 <= len(questions) <= 5 and block.count("<details><summary>Answer</summary>") == len(questions)
