"""How long each notebook will take on this machine: the reference cpu times scaled by this machine's speed. 00 §6.

The reference times come from the course's one source of numbers, helpers/course_numbers.json (written by
`python -m tools.course_numbers` from the timing records of the reference machine; it ships inside the package, so a
Colab or Kaggle install has it too). The speed is measured the way those
records measure a section: the summed run time of notebook 00's §5 cells (a tiny training run), here and there.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import CourseError

NUMBERS = Path(__file__).resolve().parent / "course_numbers.json"
SPEED_SECTION = "5"  # notebook 00's section whose run time is the speed probe: "5. A tiny training run"


def load_numbers(path: Path | str | None = None) -> dict[str, Any]:
    """The course's numbers (helpers/course_numbers.json, installed with the package), checked for what 00 reads."""
    path = Path(path) if path is not None else NUMBERS
    if not path.is_file():
        raise CourseError(
            f"{path} not found: the reference times ship inside the course package; reinstall it (`make setup`, or "
            "the notebook's first cell on Colab)"
        )
    try:
        numbers = json.loads(path.read_text())
        notebooks = numbers["notebooks"]
        for entry in notebooks.values():
            float(entry["cpu"]["seconds"])
            dict(entry["cpu"]["sections"])
    except (ValueError, KeyError, TypeError) as error:
        raise CourseError(
            f"{path} is damaged or of another version ({type(error).__name__}: {error}); "
            "rebuild it with `python -m tools.course_numbers`"
        ) from None
    if "00" not in notebooks:
        raise CourseError(f"{path} has no record of notebook 00; rebuild it with `python -m tools.course_numbers`")
    return numbers


def reference_speed_seconds(numbers: dict[str, Any], section: str = SPEED_SECTION) -> float:
    """Seconds that notebook 00's speed-probe section took in the reference machine's cpu run."""
    sections = numbers["notebooks"]["00"]["cpu"]["sections"]
    found = [seconds for title, seconds in sections.items() if title.split(".")[0].strip() == section]
    if len(found) != 1 or not float(found[0]) > 0:
        raise CourseError(
            f"course_numbers.json has no positive time for notebook 00's section {section} (it has {list(sections)}); "
            "re-measure 00 with `python -m tools.course_numbers measure --profile cpu 00`"
        )
    return float(found[0])


@dataclass(frozen=True)
class Estimate:
    """One notebook's cpu-profile run time on the reference machine and its estimate on this one."""

    notebook: str
    reference_seconds: float
    seconds: float


def estimate_times(measured_seconds: float, numbers: dict[str, Any]) -> tuple[float, list[Estimate]]:
    """This machine's slowdown against the reference (measured / reference probe), and each notebook's estimate."""
    if not measured_seconds > 0:
        raise CourseError(
            f"measured_seconds must be the positive run time of 00's section {SPEED_SECTION}, got {measured_seconds}; "
            "run the section's cells (with the data sets in place) before asking for an estimate"
        )
    slowdown = measured_seconds / reference_speed_seconds(numbers)
    estimates = [
        Estimate(nn, float(entry["cpu"]["seconds"]), float(entry["cpu"]["seconds"]) * slowdown)
        for nn, entry in sorted(numbers["notebooks"].items())
    ]
    return slowdown, estimates


def show_seconds(seconds: float) -> str:
    """A run time as the course writes it: '14 s', '5 min 3 s', '2 h 5 min'."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def time_table(measured_seconds: float, numbers: dict[str, Any]) -> str:
    """A small text table: each notebook's reference cpu time and its estimate here, under a line on the speed."""
    slowdown, estimates = estimate_times(measured_seconds, numbers)
    reference = reference_speed_seconds(numbers)
    if 0.9 <= slowdown <= 1.1:
        pace = "about as fast as"
    else:
        pace = f"{1 / slowdown:.1f}x as fast as" if slowdown < 1 else f"{slowdown:.1f}x slower than"
    lines = [
        f"§5 took {measured_seconds:.2f} s here, {reference:.2f} s on the reference machine: this machine is {pace} "
        "the reference",
        f"{'notebook':<10}{'reference (cpu)':>17}{'estimate here':>16}",
    ]
    lines += [
        f"{e.notebook:<10}{show_seconds(e.reference_seconds):>17}{show_seconds(e.seconds):>16}" for e in estimates
    ]
    return "\n".join(lines)


def report(measured_seconds: float, profile: str, path: Path | str | None = None) -> str:
    """What 00 §6 prints: the cpu table, or why there is none here (the gpu profile gets the measured gpu times)."""
    try:
        numbers = load_numbers(path)
    except CourseError as error:
        return f"No estimate: {error}"
    if profile == "gpu":
        return "\n".join(
            ["The gpu profile runs other sizes than the measured cpu runs; the course's gpu times (`make gpu-check`):"]
            + [
                f"{nn}: {entry.get('gpu', {}).get('time', 'not measured yet')}"
                for nn, entry in sorted(numbers["notebooks"].items())
            ]
        )
    if profile != "cpu":
        return (
            f"No estimate under the {profile} profile: its §{SPEED_SECTION} trains other sizes than the reference run"
        )
    return time_table(measured_seconds, numbers)


class CellClock:
    """Adds up the run time of the notebook cells run between start() and stop() (a re-run cell counts once).

    The reference's section times are sums of cell run times (tools/section_times.py), so reading and pauses
    between cells do not count, here as there. Outside IPython it falls back to the wall clock.
    """

    def __init__(self) -> None:
        self.cells: dict[str, float] = {}
        self._started: float | None = None
        self._wall: float | None = None
        self._shell: Any = None
        self._key = ""

    def start(self) -> CellClock:
        """Start counting with the next cell that runs; returns the clock, so `clock = CellClock().start()`."""
        try:
            from IPython import get_ipython
        except ImportError:
            get_ipython = None  # noqa: N806 (IPython's own name)
        self._shell = get_ipython() if get_ipython is not None else None
        if self._shell is None:
            self._wall = time.perf_counter()
        else:
            self._shell.events.register("pre_run_cell", self._pre_run_cell)
            self._shell.events.register("post_run_cell", self._post_run_cell)
        return self

    def _pre_run_cell(self, info: Any) -> None:
        self._key = str(getattr(info, "cell_id", None) or len(self.cells))
        self._started = time.perf_counter()

    def _post_run_cell(self, result: Any) -> None:
        if self._started is not None:  # the cell that called start() ran before the clock: it does not count
            self.cells[self._key] = time.perf_counter() - self._started
            self._started = None

    def stop(self) -> float:
        """Stop counting (the cell that calls stop() does not count) and return the summed seconds."""
        if self._shell is not None:
            self._shell.events.unregister("pre_run_cell", self._pre_run_cell)
            self._shell.events.unregister("post_run_cell", self._post_run_cell)
            self._shell = None
        elif self._wall is not None:
            self.cells["wall"] = time.perf_counter() - self._wall
            self._wall = None
        return sum(self.cells.values())
