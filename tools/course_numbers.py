"""The course's numbers in one place: run times and headline results, for README, guide and notebook headers.

Every time and headline result that the README's notebook table, docs/teaching.md and the first cell of
each notebook state sits between two markers, `<!-- num:KEY -->value<!-- /num -->`. This script computes
every KEY from two sources only, writes them all to `helpers/course_numbers.json` (shipped inside the package:
notebook 00 reads it on Colab too) and fills every marker with its value:

- the **timing records** `benchmarks/results/times/NN_<profile>.json`, written by `measure` below (the
  whole-notebook wall clock, the seconds per `##` section from `tools/section_times.py`, the date, the
  machine and its load average while the notebook ran);
- the **stored outputs** of the notebooks (`solutions/NN_*.ipynb`; 00: `notebooks/`), which the `cpu` runs
  made: the headline results (`RESULTS` below) are read from them;
- the **study times** `docs/study_times.toml` (minutes per section and per exercise, estimates written by
  hand there): their sums are every lesson and exercise time that README, guide and notebook headers state.

    python -m tools.course_numbers measure --profile cpu 00 01 05    # run each notebook in place (stores its
                                                                       # outputs), time it, rebuild the editions
    python -m tools.course_numbers measure --profile smoke 00 01 05  # time each notebook's nbval test
    python -m tools.course_numbers fill                              # write the JSON, fill every marker
    python -m tools.course_numbers --check                           # exit 1 when any place disagrees

`measure` ends by filling the markers too. tests/test_course_numbers.py runs the check, so README, guide,
headers and the stored outputs cannot drift apart. Keys: `NN.PROFILE.time`, `NN.PROFILE.how`,
`NN.PROFILE.sections:ID+ID` (seconds of those `##` sections; ID is a section's number, or its title when it
has none), `NN.cpu.RESULT` (see `RESULTS`), `NN.teach.lesson` (the sections' study minutes summed),
`NN.teach.exercises` (easy–all, e.g. '30–120 min'), `NN.teach.sections:ID+ID`, `NN.teach.exercises:N+N`,
`all.teach.lesson`, `all.teach.exercises`, `all.how`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import nbformat

from helpers.estimate import show_seconds  # the course's one time formatter (00 prints its estimates with it)
from tools import editions
from tools.notebook_times import LoadSampler, machine, sections_of
from tools.study_times import STUDY, all_study, show_minutes, study_minutes, study_times  # noqa: F401 (tests)

ROOT = Path(__file__).resolve().parent.parent
TIMES = ROOT / "benchmarks" / "results" / "times"
NUMBERS = ROOT / "helpers" / "course_numbers.json"
DOCUMENTS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "docs" / "teaching.md"]
PROFILES = ("smoke", "cpu", "gpu")
MARKER = re.compile(
    r"<!-- num:(?P<key>[^>]+?) -->(?P<value>(?:(?!<!--).)*?)<!-- /num -->", re.S
)  # one value, no comment
NOT_MEASURED = "not measured yet"
GPU_RESULTS = ROOT / "benchmarks" / "results" / "gpu"  # the GPU check's results: <date>_<gpu>/run.json, notebooks/
IDLE_LOAD = 2.5  # a 2-core machine running one notebook (its own two threads) and nothing else


# ---- the headline results, read from the stored outputs of the cpu runs ----------------------------------------


def _percent(fraction: str) -> str:
    return f"{float(fraction):.1%}"


def _count(number: str) -> str:
    return f"{int(number.replace(',', '')):,}"


RESULTS: dict[str, dict[str, tuple[str, Callable[[str], str]]]] = {
    # notebook: {result: (a regular expression over the stored text outputs, its first group's formatter)}
    "02": {"test_accuracy_tta": (r"test accuracy with TTA:\s+([0-9.]+)", _percent)},
    "03": {
        "test_size": (r"([\d,]+) test reviews in", _count),
        "test_accuracy": (r"test reviews in [^\n]*\n\s*accuracy: ([0-9.]+)", _percent),
    },
    "05": {
        "test_accuracy": (
            r"\d+ processes x batch \d+: .*?test accuracy, once at the end: ([\d.]+)%",
            lambda s: f"{float(s):.1f}%",
        ),
        "epochs": (r"\d+ processes x batch \d+: validation accuracy [\d.]+% after (\d+) epoch", str),
        "train_size": (r"([\d,]+) training, [\d,]+ validation and [\d,]+ test images", _count),
        "test_size": (r"[\d,]+ training, [\d,]+ validation and ([\d,]+) test images", _count),
    },
}


def notebooks() -> dict[str, Path]:
    """NN -> the notebook whose stored outputs are the cpu run: the solutions edition, else the student one (00)."""
    found = {p.name[:2]: p for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))}
    found.update({p.name[:2]: p for p in sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))})
    return dict(sorted(found.items()))


def stored_text(path: Path) -> str:
    """Every text output of a notebook's code cells (streams and text/plain), in cell order."""
    parts = []
    for cell in nbformat.read(path, as_version=4).cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            parts.append("".join(output.get("text", "")) or "".join(output.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


def results(nn: str, path: Path) -> dict[str, str]:
    """The headline results of notebook NN, formatted as the course prints them (e.g. '80.6%')."""
    text, found = stored_text(path), {}
    for name, (pattern, show) in RESULTS.get(nn, {}).items():
        match = re.search(pattern, text, re.M)
        if not match:
            raise SystemExit(
                f"{path.relative_to(ROOT)}: no stored output matches {pattern!r} ({nn}.cpu.{name}); "
                "run the notebook with COURSE_PROFILE=cpu, or update RESULTS in tools/course_numbers.py"
            )
        found[name] = show(match.group(1))
    return found


# ---- timing records ------------------------------------------------------------------------------------------------


def record_path(nn: str, profile: str) -> Path:
    return TIMES / f"{nn}_{profile}.json"


def load_record(nn: str, profile: str) -> dict | None:
    path = record_path(nn, profile)
    return json.loads(path.read_text()) if path.exists() else None


def show_section(seconds: float) -> str:
    """A section's time: '< 0.1 s', '3.9 s', '215 s'."""
    return "< 0.1 s" if seconds < 0.05 else f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"


def how(record: dict) -> str:
    """How a record was measured, in a few words (a notebook header shows it beside the time)."""
    day = dt.date.fromisoformat(record["date"]).strftime("%-d %b %Y")
    if record.get("carried_over"):  # measured before this script existed: its date, the machine idle
        return f"measured {day} on an idle {record['machine']}; to be remeasured by tools/course_numbers.py"
    load = record["load_average"]
    state = "idle" if load <= IDLE_LOAD else "other jobs shared it, so slower than idle"
    return f"measured {day} on a {record['machine']}, load average {load:.1f}: {state}"


def brief(record: dict) -> str:
    """When and under what load, in three words: '3 Dec 2026, load 7.9'."""
    day = dt.date.fromisoformat(record["date"]).strftime("%-d %b %Y")
    if record.get("carried_over"):
        return f"{day}, idle (carried over: to be remeasured)"
    return f"{day}, " + ("idle" if record["load_average"] <= IDLE_LOAD else f"load {record['load_average']:.1f}")


def section_id(title: str) -> str:
    """A `##` section's id in keys: its number ('1 · Tensors' -> '1', '3. The model' -> '3'), else its title."""
    match = re.match(r"(\d+)\s*[.·]", title)
    return match.group(1) if match else title.strip()


def section_seconds(record: dict, ids: str) -> float:
    """Seconds of the sections named by 'ID+ID' (a record carried over may store the group itself)."""
    sections = record.get("sections", {})
    if ids in sections:
        return sections[ids]
    wanted = ids.split("+")
    by_id: dict[str, float] = {}
    for title, seconds in sections.items():
        by_id[section_id(title)] = by_id.get(section_id(title), 0.0) + seconds
    missing = [i for i in wanted if i not in by_id]
    if missing:
        raise KeyError(f"no section {missing} in the record (it has {sorted(by_id)})")
    return sum(by_id[i] for i in wanted)


def gpu_measured(nn: str, results: Path = GPU_RESULTS) -> dict | None:
    """Notebook NN's latest complete run by the GPU check (tools.gpu_check) on a named GPU, or None."""
    found = None
    for run_file in sorted(results.glob("*/run.json")):
        run = json.loads(run_file.read_text())
        path = run_file.parent / "notebooks" / f"{nn}.json"
        if run.get("dry") or not run.get("gpu") or not path.exists():
            continue
        record = json.loads(path.read_text())
        if record.get("complete") and not record.get("tiny") and record.get("profile") == "gpu":
            day = dt.date.fromisoformat(run["date"]).strftime("%-d %b %Y")
            found = {
                "time": f"{show_seconds(record['seconds'])} on {run['gpu']}",
                "seconds": record["seconds"],
                "how": f"measured {day} on {run['gpu']} by the GPU check (results/gpu/{run_file.parent.name})",
                "brief": f"{day}, {run['gpu']}",
                "sections": record.get("sections", {}),
            }
    return found


# ---- all numbers, and the markers ----------------------------------------------------------------------------------


def compute() -> dict:
    """Everything the markers may show, from the records, the stored outputs and docs/study_times.toml."""
    teach = study_times()
    numbers: dict = {"generated_by": "python -m tools.course_numbers (do not edit: rerun it)", "notebooks": {}}
    for nn, path in notebooks().items():
        entry: dict = {
            "notebook": str(path.relative_to(ROOT)),
            "results_cpu": results(nn, path),
            "teach": teach.get(nn, {}),
        }
        for profile in ("smoke", "cpu"):
            record = load_record(nn, profile)
            if record:
                entry[profile] = {
                    "time": show_seconds(record["seconds"]),
                    "seconds": record["seconds"],
                    "how": how(record),
                    "brief": brief(record),
                    "sections": record.get("sections", {}),
                }
        if measured := gpu_measured(nn):
            entry["gpu"] = measured
        numbers["notebooks"][nn] = entry
    return numbers


def all_how(numbers: dict) -> str:
    """One sentence per profile: when, and at what load average, each notebook's time was measured."""
    lines = []
    for profile in ("smoke", "cpu"):
        done = [f"{nn} {entry[profile]['brief']}" for nn, entry in numbers["notebooks"].items() if profile in entry]
        if done:
            lines.append(f"*{profile}*: " + "; ".join(done) + ".")
    return " ".join(lines) + f" (Idle: a load average up to {IDLE_LOAD}, the notebook's own two threads.)"


def value(key: str, numbers: dict) -> str:
    """The text a marker with this key shows."""
    if key == "all.how":
        return all_how(numbers)
    if key.startswith("all.teach."):
        return all_study(numbers, key.removeprefix("all.teach."))
    nn, rest = key.split(".", 1)
    entry = numbers["notebooks"].get(nn)
    if entry is None:
        raise KeyError(f"no notebook {nn}")
    if rest.startswith("teach."):
        name = rest.removeprefix("teach.")
        if name.startswith(("sections:", "exercises:")):
            part, ids = name.split(":", 1)
            return show_minutes(study_minutes(entry["teach"]["each_exercise" if part == "exercises" else part], ids))
        return entry["teach"][name]
    profile, name = rest.split(".", 1)
    if profile == "cpu" and name in entry["results_cpu"]:
        return entry["results_cpu"][name]
    if profile not in PROFILES:
        raise KeyError(key)
    measured = entry.get(profile)
    if name in ("time", "how"):
        return measured[name] if measured else NOT_MEASURED
    if name.startswith("sections:"):
        return show_section(section_seconds(measured, name.removeprefix("sections:"))) if measured else NOT_MEASURED
    raise KeyError(key)


def fill(text: str, numbers: dict, where: str, problems: list[str]) -> str:
    """Text with every marker's value replaced by the computed one; disagreements go to `problems`."""

    def replace(match: re.Match) -> str:
        key = match.group("key")
        try:
            new = value(key, numbers)
        except (KeyError, ValueError) as error:
            problems.append(f"{where}: unknown number {key!r} ({error})")
            return match.group(0)
        if new != match.group("value"):
            problems.append(f"{where}: {key} says {match.group('value')!r}, the stored runs say {new!r}")
        return f"<!-- num:{key} -->{new}<!-- /num -->"

    return MARKER.sub(replace, text)


def places() -> list[Path]:
    """The files with markers: README, CONTRIBUTING, the guide, and every notebook source (00: notebooks/)."""
    return DOCUMENTS + list(notebooks().values())


def update(write: bool) -> list[str]:
    """Compare (and with write, fill) every marker and the JSON; return the disagreements found."""
    numbers = compute()
    problems: list[str] = []
    changed_sources = []
    for path in places():
        where = str(path.relative_to(ROOT))
        if path.suffix == ".ipynb":
            nb = nbformat.read(path, as_version=4)
            found = len(problems)
            for index, cell in enumerate(nb.cells):
                if cell.cell_type == "markdown" and "<!-- num:" in cell.source:
                    cell.source = fill(cell.source, numbers, f"{where}, cell {index}", problems)
            if write and len(problems) > found:
                path.write_text(editions.render(nb))
                changed_sources.append(path.name[:2])
        else:
            text = path.read_text()
            new = fill(text, numbers, where, problems)
            if write and new != text:
                path.write_text(new)
    stored = json.loads(NUMBERS.read_text()) if NUMBERS.exists() else None
    if stored != numbers:
        problems.append(f"{NUMBERS.relative_to(ROOT)} is not what the records and stored outputs give")
        if write:
            NUMBERS.write_text(json.dumps(numbers, indent=1, ensure_ascii=False) + "\n")
    if write and changed_sources:
        editions.build(False, changed_sources)  # the student editions carry the same headers
    return problems


# ---- measuring -----------------------------------------------------------------------------------------------------


def measure(nn: str, profile: str) -> dict:
    """Run notebook NN under a profile, time it and write its record. cpu: in place (its stored outputs)."""
    path = notebooks()[nn]
    env = dict(os.environ, COURSE_PROFILE=profile)
    bin_dir = Path(sys.executable).parent
    if profile == "smoke":  # the test of the student edition, as `make test TESTS=notebooks/NN.ipynb` runs it
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"notebooks/{path.name}"]
    else:
        command = [str(bin_dir / "jupyter"), "nbconvert", "--to", "notebook", "--execute", "--inplace", str(path)]
    print(f"{nn} ({profile}): {' '.join(command[1:])}", flush=True)
    with LoadSampler() as load:
        start = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{nn} ({profile}) failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    record = {
        "notebook": f"notebooks/{path.name}" if profile == "smoke" else str(path.relative_to(ROOT)),
        "profile": profile,
        "seconds": round(seconds, 1),
        "date": dt.date.today().isoformat(),
        "machine": machine(),
        "load_average": round(sum(load.samples) / len(load.samples), 2),
        "load_max": round(max(load.samples), 2),
        "command": (
            "COURSE_PROFILE=smoke python -m pytest notebooks/" + path.name
            if profile == "smoke"
            else f"COURSE_PROFILE={profile} jupyter nbconvert --to notebook --execute --inplace "
            f"{path.relative_to(ROOT)}"
        ),
    }
    if profile != "smoke":  # nbconvert left each cell's timestamps; editions.py strips them afterwards
        record["sections"] = sections_of(path)
    TIMES.mkdir(parents=True, exist_ok=True)
    record_path(nn, profile).write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    print(f"  {show_seconds(seconds)}, load average {record['load_average']:.1f} -> {record_path(nn, profile).name}")
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", choices=["fill", "measure"], default="fill")
    parser.add_argument("names", nargs="*", help="measure: the notebooks, e.g. 00 01 05")
    parser.add_argument("--profile", choices=["smoke", "cpu", "gpu"], default="cpu")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when any place disagrees")
    args = parser.parse_intermixed_args()
    if args.command == "measure":
        for nn in args.names or list(notebooks()):
            measure(nn, args.profile)
        if args.profile != "smoke":
            editions.build(False, args.names or None)  # strip the timestamps, rebuild the editions
    problems = update(write=not args.check)
    if args.check:
        print("\n".join(problems) or "every number agrees with the stored runs")
        sys.exit(1 if problems else 0)
    print(f"filled {len(problems)} place(s) from {NUMBERS.relative_to(ROOT)}" if problems else "nothing to change")


if __name__ == "__main__":
    main()
