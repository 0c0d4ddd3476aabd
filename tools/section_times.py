"""Run time per `##` section of an executed notebook, from its cells' execution timestamps (docs/teaching.md).

nbconvert stores the timestamps in each cell's metadata.execution, which the committed notebooks must not keep:
read them from a copy before cleaning it, e.g.

    COURSE_PROFILE=cpu jupyter nbconvert --to notebook --execute notebooks/02_cifar10_cnn.ipynb --output-dir executed
    python -m tools.section_times executed/02_cifar10_cnn.ipynb
"""

import datetime as dt
import json
import sys
from pathlib import Path


def section_times(path: str) -> dict[str, float]:
    """Seconds of cell execution per `## ` section, in notebook order (cells before the first section: 'top')."""
    times: dict[str, float] = {}
    section = "top"
    for cell in json.loads(Path(path).read_text())["cells"]:
        if cell["cell_type"] == "markdown":
            heads = [line[3:].strip() for line in "".join(cell["source"]).splitlines() if line.startswith("## ")]
            section = heads[-1] if heads else section
        elif "shell.execute_reply" in (run := cell.get("metadata", {}).get("execution", {})):
            start, end = (
                dt.datetime.fromisoformat(run[k].replace("Z", "+00:00"))
                for k in ("iopub.execute_input", "shell.execute_reply")
            )
            times[section] = times.get(section, 0.0) + (end - start).total_seconds()
    return times


if __name__ == "__main__":
    for notebook in sys.argv[1:]:
        found = section_times(notebook)
        print(
            f"{notebook}: {sum(found.values()):.0f} s in cells"
            + ("" if found else " (no execution metadata: run it with nbconvert first)")
        )
        for name, seconds in found.items():
            print(f"  {seconds:7.1f} s  {name}")
