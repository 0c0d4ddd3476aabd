"""The course's files speak of the course (its learners, instructors, contributors), not of its build machines.

Every tracked text file is searched for paths outside the repository that only a build machine has, and for the
words of a machine-rental setup (its time budget, its README, its results variable, the agents that used it).
The patterns are written in pieces so that this file does not match itself.
"""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    "a build machine's path": r"(?<![\w.~-])/(?:" + "wo" + r"rk|ro" + r"ot|op" + r"t/pypi)/",
    "a build machine's folder": r"\.lib" + r"rary/|bash_" + r"jobs|shared/" + r"tools",
    "a results folder variable of the build machines": r"\$" + r"OUT\b",
    "a budget of rented machine time": r"device[ -]" + r"minutes|device " + r"README|\bl" + r"ent\b|\bl" + r"ending\b",
    "the build machines' agents": r"\bsess"
    + r"ions? (?:that|with|who) (?:wrote|had|have)\b|borrowed G"
    + r"PU machine",
}


def tracked_text_files() -> list[Path]:
    """Every file git tracks that reads as UTF-8 text."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    files = []
    for name in filter(None, names):
        path = ROOT / name.decode()
        try:
            path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue
        files.append(path)
    return files


def findings(text: str) -> list[str]:
    """What of FORBIDDEN a text holds: 'kind: the matched text'."""
    return [f"{kind}: {m.group(0)!r}" for kind, rx in FORBIDDEN.items() for m in re.finditer(rx, text, re.I)]


def test_the_search_finds_what_it_must_and_leaves_the_course_alone():
    wrong = [
        "/" + "work/main/runs",
        "carry it to $" + "OUT/x.json",
        "fits the 15 device-" + "minutes a task is l" + "ent",
    ]
    assert all(findings(text) for text in wrong), [findings(t) for t in wrong]
    fine = ["runs/cpu/bert-imdb", "a Jupyter session", "once per session", "the output folder (--out DIR)"]
    assert not any(findings(text) for text in fine)


def test_no_tracked_file_speaks_of_the_build_machines():
    found = {str(p.relative_to(ROOT)): f[:3] for p in tracked_text_files() if (f := findings(p.read_text("utf-8")))}
    assert not found, f"speak of the course and its readers instead: {found}"
