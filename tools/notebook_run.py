"""Run one notebook cell by cell in a real kernel, saving the executed notebook and its per-cell record as it goes.

Used by tools/gpu_check.py. After every cell, `<name>.ipynb` (the cells run so far, with their outputs) and then
`<name>.json` (seconds and peak GPU memory per cell, each `##` section's seconds) are rewritten whole, so a run
stopped at any moment keeps every cell it finished. Peak GPU memory is read inside the kernel, from
torch.cuda.max_memory_allocated, once the notebook has started CUDA (None before, and on a CPU).

    python -m tools.notebook_run solutions/01_tensors_autograd.ipynb --out results/nb01
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import nbformat

from tools.files import write_atomic, write_json

# Evaluated inside the kernel after each cell (a user expression: nothing is added to the notebook's namespace):
# the peak since the last reading in bytes, then the counter is reset; None when torch or CUDA is not in use yet.
PEAK_EXPRESSION = (
    "(lambda t: None if t is None or not t.cuda.is_available() or not t.cuda.is_initialized() else "
    "(t.cuda.max_memory_allocated(), t.cuda.reset_peak_memory_stats())[0])"
    "(__import__('sys').modules.get('torch'))"
)


def section_of_cells(nb: Any) -> list[str]:
    """The `##` section each cell belongs to ('' before the first one)."""
    current, sections = "", []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            titles = [line[3:].strip() for line in cell.source.splitlines() if line.startswith("## ")]
            current = titles[-1] if titles else current
        sections.append(current)
    return sections


def peak_memory(client: Any) -> int | None:
    """The kernel's peak GPU memory (bytes) since the last reading, read with a silent user expression."""
    from jupyter_core.utils import run_sync

    kc = client.kc
    msg_id = kc.execute("", silent=True, store_history=False, user_expressions={"peak": PEAK_EXPRESSION})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        reply = run_sync(kc.get_shell_msg)(timeout=max(deadline - time.monotonic(), 0.1))
        if reply["parent_header"].get("msg_id") == msg_id:
            value = reply["content"].get("user_expressions", {}).get("peak", {})
            text = value.get("data", {}).get("text/plain", "None") if value.get("status") == "ok" else "None"
            return None if text == "None" else int(text)
    return None


class NotebookRun:
    """One notebook's run: the notebook being executed, its record, and where both are saved."""

    def __init__(self, source: Path, out: Path, estimates: dict[int, float] | None = None) -> None:
        self.source, self.out = source, out
        self.nb = nbformat.read(source, as_version=4)
        for cell in self.nb.cells:  # the stored outputs of another profile must not pass for this run's
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
                cell.metadata.pop("execution", None)
        self.sections = section_of_cells(self.nb)
        self.estimates = estimates or {}
        self.record: dict[str, Any] = {
            "notebook": source.as_posix(),
            "profile": os.environ.get("COURSE_PROFILE"),
            "tiny": os.environ.get("COURSE_TINY") == "1",
            "precision": os.environ.get("COURSE_PRECISION", "auto"),
            "code_cells": sum(c.cell_type == "code" for c in self.nb.cells),
            "cells": [],
            "sections": {},
            "complete": False,
            "stopped": None,
            "failed": False,
            "seconds": 0.0,
        }

    def save(self) -> None:
        """The executed notebook first, then the record: every cell the record lists is in the saved notebook."""
        write_atomic(self.out.with_suffix(".ipynb"), nbformat.writes(self.nb))
        write_json(self.out.with_suffix(".json"), self.record)

    def add(self, index: int, seconds: float, peak: int | None) -> None:
        """Record one finished cell and add its seconds to its section."""
        cell = self.nb.cells[index]
        self.record["cells"].append(
            {
                "cell": index,
                "seconds": round(seconds, 3),
                "peak_gpu_mib": None if peak is None else round(peak / 2**20, 1),
                "section": self.sections[index],
                "first_line": cell.source.split("\n")[0][:80],
            }
        )
        sections = self.record["sections"]
        sections[self.sections[index]] = round(sections.get(self.sections[index], 0.0) + seconds, 3)
        self.record["seconds"] = round(self.record["seconds"] + seconds, 3)

    def execute(self, deadline: float) -> dict[str, Any]:
        """Run the code cells in order until one fails or the next would not fit before `deadline` (time.time())."""
        import nbclient

        client = nbclient.NotebookClient(
            self.nb, kernel_name="python3", resources={"metadata": {"path": str(self.source.parent)}}
        )
        self.save()
        with client.setup_kernel():
            for index, cell in enumerate(self.nb.cells):
                if cell.cell_type != "code":
                    continue
                left = deadline - time.time()
                estimate = self.estimates.get(index, 0.0)
                if estimate > left or left < 1:
                    self.record["stopped"] = f"cell {index} not started: estimated {estimate:.0f} s, {left:.0f} s left"
                    break
                client.timeout = max(int(left), 1)  # nbclient's timeout is per cell: what is left of the budget
                start = time.perf_counter()
                try:
                    client.execute_cell(cell, index)
                except nbclient.exceptions.CellTimeoutError:
                    self.record["stopped"] = f"cell {index} stopped at the budget after {left:.0f} s"
                    break
                except nbclient.exceptions.CellExecutionError as error:
                    self.record["stopped"] = f"cell {index}: {str(error).strip().splitlines()[-1][:300]}"
                    self.record["failed"] = True
                    break
                self.add(index, time.perf_counter() - start, peak_memory(client))
                self.save()
        self.record["complete"] = self.record["stopped"] is None
        self.save()
        return self.record


def main(argv: list[str] | None = None) -> None:
    """Command line: one notebook, its outputs beside --out (.ipynb and .json)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="path without suffix: OUT.ipynb and OUT.json")
    parser.add_argument("--budget", type=float, default=3600.0, help="seconds; a cell that would not fit is not run")
    args = parser.parse_args(argv)
    record = NotebookRun(args.notebook, args.out).execute(time.time() + args.budget)
    print(json.dumps({k: record[k] for k in ("notebook", "complete", "stopped", "seconds")}))


if __name__ == "__main__":
    main()
