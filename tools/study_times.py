"""Study times from one source: docs/study_times.toml's minutes per section and exercise, summed for the documents.

The minutes are estimates written by hand (reading, running, thinking); tools/course_numbers.py fills every lesson and
exercise time of README, guide and notebook headers from these sums. Taught nowhere: a tool for the course's authors.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

STUDY = Path(__file__).resolve().parent.parent / "docs" / "study_times.toml"


def minutes_of(text: str) -> int:
    """'1 h 30 min' -> 90."""
    hours = re.search(r"(\d+)\s*h\b", text)
    minutes = re.search(r"(\d+)\s*min", text)
    return (int(hours.group(1)) * 60 if hours else 0) + (int(minutes.group(1)) if minutes else 0)


def show_minutes(total: int) -> str:
    hours, minutes = divmod(total, 60)
    return " ".join(([f"{hours} h"] if hours else []) + ([f"{minutes} min"] if minutes or not hours else []))


def study_times(path: Path = STUDY) -> dict[str, dict]:
    """NN -> {'lesson', 'exercises', 'sections', 'each_exercise'}: docs/study_times.toml's minutes, summed."""
    found = {}
    for nn, entry in tomllib.loads(path.read_text()).items():
        sections, each = entry.get("sections", {}), entry.get("exercises", {})
        easy = sum(each[n] for n in entry.get("easy", []))
        found[nn] = {
            "lesson": show_minutes(sum(sections.values())),
            "exercises": f"{easy}–{sum(each.values())} min" if each else "",
            "sections": sections,
            "each_exercise": each,
            "easy": entry.get("easy", []),
        }
    return found


def study_minutes(minutes: dict[str, int], ids: str) -> int:
    """The study minutes of the sections (or exercises) named by 'ID+ID'."""
    missing = [i for i in ids.split("+") if i not in minutes]
    if missing:
        raise KeyError(f"no study time for {missing} in {STUDY.name} (it has {sorted(minutes)})")
    return sum(minutes[i] for i in ids.split("+"))


def all_study(numbers: dict, name: str) -> str:
    """The whole course: 'lesson' (every section) or 'exercises' (the easy ones to all of them)."""
    teach = [entry["teach"] for entry in numbers["notebooks"].values() if entry["teach"]]
    if name == "lesson":
        return show_minutes(sum(sum(t["sections"].values()) for t in teach))
    if name == "exercises":
        easy = sum(t["each_exercise"][n] for t in teach for n in t["easy"])
        return f"{show_minutes(easy)} to {show_minutes(sum(sum(t['each_exercise'].values()) for t in teach))}"
    raise KeyError(f"all.teach.{name}")
