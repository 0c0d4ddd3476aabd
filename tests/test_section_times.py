"""tools/section_times.py: run time per section, read from an executed notebook's cell timestamps."""

import json
from pathlib import Path

from tools import section_times

ROOT = Path(__file__).resolve().parent.parent


def code(start: str, end: str) -> dict:
    return {
        "cell_type": "code",
        "source": "x = 1",
        "outputs": [],
        "metadata": {"execution": {"iopub.execute_input": start, "shell.execute_reply": end}},
    }


def test_seconds_add_up_per_section(tmp_path):
    cells = [
        code("2026-01-01T10:00:00Z", "2026-01-01T10:00:01.5Z"),
        {"cell_type": "markdown", "source": "## 1 · Data\ntext", "metadata": {}},
        code("2026-01-01T10:00:02Z", "2026-01-01T10:00:04Z"),
        code("2026-01-01T10:00:05Z", "2026-01-01T10:00:08Z"),
        {"cell_type": "markdown", "source": "### 1.1 not a section", "metadata": {}},
        code("2026-01-01T10:00:08Z", "2026-01-01T10:00:09Z"),
        {"cell_type": "markdown", "source": "## 2 · Training", "metadata": {}},
        {"cell_type": "code", "source": "y = 2", "outputs": [], "metadata": {}},  # no timestamps: not counted
        code("2026-01-01T10:00:10Z", "2026-01-01T10:01:10Z"),
    ]
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": cells}))
    assert section_times.section_times(str(path)) == {"top": 1.5, "1 · Data": 6.0, "2 · Training": 60.0}
