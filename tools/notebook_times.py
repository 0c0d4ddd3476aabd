"""Measuring a notebook run for tools/course_numbers.py's `measure`: the load while it ran, its seconds per section."""

from __future__ import annotations

import os
import platform
import threading
from pathlib import Path

import nbformat

from tools import section_times


class LoadSampler:
    """The 1-minute load average, sampled every few seconds while a run goes on (its mean is recorded)."""

    def __init__(self, every: float = 5.0) -> None:
        self.samples = [os.getloadavg()[0]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])


def sections_of(path: Path) -> dict[str, float]:
    """Seconds per `##` section of a just-executed notebook; sections without code cells count 0."""
    timed = section_times.section_times(str(path))
    titles = [
        line[3:].strip()
        for cell in nbformat.read(path, as_version=4).cells
        if cell.cell_type == "markdown"
        for line in cell.source.splitlines()
        if line.startswith("## ")
    ]
    return {title: round(timed.get(title, 0.0), 2) for title in dict.fromkeys([*timed, *titles])}


def machine() -> str:
    return f"{os.cpu_count()}-core {platform.machine()} CPU"
