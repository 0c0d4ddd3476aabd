"""helpers.estimate (00 §6): notebook times scaled from the course's one record of numbers, and the cell clock."""

import json
import re
import time
from pathlib import Path

import nbformat
import pytest

from helpers import estimate
from helpers.errors import CourseError

ROOT = Path(__file__).resolve().parent.parent
NUMBERS = ROOT / "helpers" / "course_numbers.json"


def test_reference_numbers_come_from_the_course_record():
    numbers = estimate.load_numbers(NUMBERS)
    record = json.loads((ROOT / "benchmarks" / "results" / "times" / "00_cpu.json").read_text())
    probe = [s for title, s in record["sections"].items() if title.startswith("5.")]
    assert estimate.reference_speed_seconds(numbers) == pytest.approx(probe[0])
    slowdown, rows = estimate.estimate_times(probe[0], numbers)  # as fast as the reference: its own times
    assert slowdown == pytest.approx(1.0)
    assert [r.notebook for r in rows] == sorted(numbers["notebooks"])
    assert all(r.seconds == pytest.approx(numbers["notebooks"][r.notebook]["cpu"]["seconds"]) for r in rows)


def test_a_machine_twice_as_slow_doubles_every_estimate():
    numbers = estimate.load_numbers(NUMBERS)
    reference = estimate.reference_speed_seconds(numbers)
    slowdown, rows = estimate.estimate_times(2 * reference, numbers)
    assert slowdown == pytest.approx(2.0)
    assert all(r.seconds == pytest.approx(2 * r.reference_seconds) for r in rows)
    table = estimate.time_table(2 * reference, numbers)
    assert "2.0x slower than" in table and len(table.splitlines()) == 2 + len(rows)
    slowest = max(rows, key=lambda r: r.reference_seconds)
    assert estimate.show_seconds(2 * slowest.reference_seconds) in table


def test_the_speed_section_is_notebook_00s_section_5():
    cells = nbformat.read(ROOT / "notebooks" / "00_setup_check.ipynb", as_version=4).cells
    heads = [
        line for c in cells if c.cell_type == "markdown" for line in c.source.splitlines() if line.startswith("## ")
    ]
    assert any(h.startswith(f"## {estimate.SPEED_SECTION}. A tiny training run") for h in heads), heads


def test_show_seconds():
    assert [estimate.show_seconds(s) for s in (4.4, 59.6, 344.4, 7500)] == [
        "4 s",
        "1 min 0 s",
        "5 min 44 s",
        "2 h 5 min",
    ]


def test_bad_input_is_one_clear_course_error(tmp_path):
    numbers = estimate.load_numbers(NUMBERS)
    with pytest.raises(CourseError, match="positive run time"):
        estimate.estimate_times(0.0, numbers)
    with pytest.raises(CourseError, match="not found"):
        estimate.load_numbers(tmp_path / "missing.json")
    damaged = tmp_path / "damaged.json"
    damaged.write_text('{"notebooks": {"00": {"cpu": {}}}}')
    with pytest.raises(CourseError, match="damaged"):
        estimate.load_numbers(damaged)
    no_probe = json.loads(NUMBERS.read_text())
    no_probe["notebooks"]["00"]["cpu"]["sections"] = {"1. Environment and device": 1.0}
    with pytest.raises(CourseError, match="section 5"):
        estimate.reference_speed_seconds(no_probe)


def test_report_for_each_profile(tmp_path):
    reference = estimate.reference_speed_seconds(estimate.load_numbers(NUMBERS))
    assert "about as fast as" in estimate.report(reference, "cpu", NUMBERS)
    measured = json.loads(NUMBERS.read_text())
    measured["notebooks"]["02"]["gpu"] = {"time": "1 min 2 s on NVIDIA H100"}
    (tmp_path / "measured.json").write_text(json.dumps(measured))
    gpu = estimate.report(reference, "gpu", tmp_path / "measured.json").splitlines()
    assert "02: 1 min 2 s on NVIDIA H100" in gpu and "03: not measured yet" in gpu
    assert estimate.report(reference, "smoke", NUMBERS).startswith("No estimate under the smoke profile")
    assert estimate.report(reference, "cpu", tmp_path / "missing.json").startswith("No estimate:")


def test_cell_clock_counts_only_the_cells_between_start_and_stop():
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        shell.run_cell(
            "import time\nfrom helpers import estimate\nclock = estimate.CellClock().start()\ntime.sleep(0.3)"
        )
        shell.run_cell("time.sleep(0.1)")
        shell.run_cell("time.sleep(0.1)")
        shell.run_cell("time.sleep(0.3)\nseconds = clock.stop()")
        seconds = shell.user_ns["seconds"]
        assert 0.2 <= seconds < 0.45, seconds  # the two middle cells; not the start cell's or the stop cell's sleep
        assert len(shell.user_ns["clock"].cells) == 2
        shell.run_cell("time.sleep(0.1)")  # after stop: no longer counted
        assert shell.user_ns["clock"].stop() == seconds
    finally:
        InteractiveShell.clear_instance()


def test_cell_clock_outside_ipython_is_a_wall_clock():
    clock = estimate.CellClock().start()
    time.sleep(0.05)
    assert 0.05 <= clock.stop() < 1.0


def test_notebook_00s_stored_table_reads_the_current_numbers():
    """00's stored estimate table shows every notebook's reference time as the numbers file has it now.

    A notebook re-measured after 00's last run leaves 00's stored table behind: re-run 00 (cpu profile) after
    `python -m tools.course_numbers measure`, then `make editions`.
    """
    numbers = estimate.load_numbers(NUMBERS)
    nb = nbformat.read(ROOT / "notebooks" / "00_setup_check.ipynb", as_version=4)
    stored = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "reference (cpu)" in stored, "00's stored outputs have no estimate table (§6)"
    for name, entry in sorted(numbers["notebooks"].items()):
        reference = estimate.show_seconds(entry["cpu"]["seconds"])
        assert re.search(rf"^{name}\s+{re.escape(reference)}\s", stored, re.MULTILINE), (
            f"00's stored table does not show {name}'s reference time {reference}: re-run 00 after measuring"
        )
