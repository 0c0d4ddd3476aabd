"""One source for the course's numbers (issue 21, item 5): README, guide and notebook headers agree with the runs.

tools/course_numbers.py computes every time and headline result from the timing records
(benchmarks/results/times/) and the stored outputs of the notebooks, and fills the `<!-- num:KEY -->`
markers; these tests fail when a marker, or helpers/course_numbers.json, says anything else.
"""

import json
from pathlib import Path

import nbformat
import pytest

from tools import course_numbers as numbers

ROOT = Path(__file__).resolve().parent.parent

# Headers that carry no markers yet: their notebooks' owners add them (the keys: see tools/course_numbers.py).
HEADERS_PENDING: set[str] = set()


def test_every_number_agrees_with_the_stored_runs():
    problems = numbers.update(write=False)
    assert not problems, "run `python -m tools.course_numbers fill` (after `... measure` for new runs):\n" + "\n".join(
        problems[:20]
    )


@pytest.mark.parametrize("nn", sorted(numbers.notebooks()))
def test_headers_and_tables_take_their_times_from_the_records(nn):
    """Each notebook's first cell (times per profile), its README row and its guide table are markers."""
    readme = (ROOT / "README.md").read_text()
    guide = (ROOT / "docs" / "teaching.md").read_text()
    for profile in ("smoke", "cpu", "gpu"):
        assert f"<!-- num:{nn}.{profile}.time -->" in readme, f"README's row of {nn}: {profile} time is no marker"
        assert f"<!-- num:{nn}.{profile}.time -->" in guide, f"the guide's table of {nn}: {profile} time is no marker"
    header = nbformat.read(numbers.notebooks()[nn], as_version=4).cells[0].source
    if nn not in HEADERS_PENDING:
        for profile in ("smoke", "cpu"):
            assert f"<!-- num:{nn}.{profile}.time -->" in header, f"{nn}'s header states its {profile} time by hand"


def test_every_result_the_course_quotes_comes_from_a_stored_output():
    for nn, results in numbers.RESULTS.items():
        found = numbers.results(nn, numbers.notebooks()[nn])
        assert set(found) == set(results)
    stored = json.loads(numbers.NUMBERS.read_text())
    assert stored["notebooks"]["05"]["results_cpu"]["test_size"] == "2,000"  # issue 21: not 10,000


def test_records_say_how_they_were_measured():
    for path in sorted(numbers.TIMES.glob("*.json")):
        record = json.loads(path.read_text())
        assert record["seconds"] > 0 and record["profile"] in numbers.PROFILES, path.name
        assert {"date", "machine"} <= set(record), path.name
        assert record.get("carried_over") or {"load_average", "command"} <= set(record), path.name
        if record["profile"] == "cpu":
            assert record.get("sections"), f"{path.name}: no seconds per section"


def test_formats_and_sums():
    assert numbers.show_seconds(14.4) == "14 s" and numbers.show_seconds(303) == "5 min 3 s"
    assert numbers.show_section(0.04) == "< 0.1 s" and numbers.show_section(3.94) == "3.9 s"
    assert numbers.show_section(215.2) == "215 s"
    assert numbers.section_id("3. The model") == "3" and numbers.section_id("1 · Tensors") == "1"
    assert numbers.section_id("Exercises") == "Exercises"
    record = {"sections": {"Setup": 1.0, "1 · Tensors": 2.0, "1 · again": 0.5, "Exercises": 3.0}}
    assert numbers.section_seconds(record, "Setup+1") == 3.5
    with pytest.raises(KeyError):
        numbers.section_seconds(record, "9")


def test_a_wrong_number_is_found_and_filled(tmp_path):
    current = numbers.compute()
    text = "01 takes <!-- num:01.cpu.time -->1 s<!-- /num --> and <!-- num:99.cpu.time -->?<!-- /num -->"
    problems: list[str] = []
    filled = numbers.fill(text, current, "x.md", problems)
    assert f"<!-- num:01.cpu.time -->{current['notebooks']['01']['cpu']['time']}<!-- /num -->" in filled
    assert len(problems) == 2 and "says '1 s'" in problems[0] and "unknown number '99.cpu.time'" in problems[1]


def gpu_run(root, folder: str, gpu: str, dry: bool, records: dict) -> None:
    """A results folder as tools/gpu_check.py writes it: run.json and notebooks/NN.json."""
    (root / folder / "notebooks").mkdir(parents=True)
    (root / folder / "run.json").write_text(json.dumps({"gpu": gpu, "dry": dry, "date": folder[:10], "steps": []}))
    for nn, record in records.items():
        (root / folder / "notebooks" / f"{nn}.json").write_text(json.dumps(record))


def test_the_gpu_column_shows_only_complete_gpu_check_runs_on_a_named_gpu(tmp_path):
    done = {"complete": True, "tiny": False, "profile": "gpu", "seconds": 130.4, "sections": {"1 · Data": 30.0}}
    gpu_run(tmp_path, "2026-12-01_nvidia-t4", "Tesla T4", False, {"02": done, "03": done | {"complete": False}})
    gpu_run(tmp_path, "2026-12-02_cpu-dry", "cpu-dry", True, {"01": done})
    gpu_run(tmp_path, "2026-12-03_nvidia-t4", "Tesla T4", False, {"04": done | {"tiny": True}, "05": done})
    assert numbers.gpu_measured("02", tmp_path)["time"] == "2 min 10 s on Tesla T4"
    assert numbers.gpu_measured("02", tmp_path)["sections"] == {"1 · Data": 30.0}
    for nn in ("01", "03", "04", "00"):  # a dry run, a run cut short, a tiny run, no run at all
        assert numbers.gpu_measured(nn, tmp_path) is None, nn
    entry = {"teach": {}, "results_cpu": {}}
    assert numbers.value("03.gpu.time", {"notebooks": {"03": entry}}) == "not measured yet"
