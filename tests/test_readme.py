"""The README is a learner's front door (issue 31): short, and what to do on its first screen.

Its first ~60 lines hold the two commands (`make lab`, `make test`), the start-here links (notebook 00 on
Colab and on Kaggle) and the notebooks table; the whole README stays under 120 lines, the machinery lives in
CONTRIBUTING.md. The two commands stay true: each sets up first (the Makefile) and CI runs `make test`.
"""

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FIRST_SCREEN = 60
MAX_LINES = 120


def front_door_problems(text: str, notebooks: list[str]) -> list[str]:
    """What a learner would not find on the README's first screen, or a README that is too long."""
    lines = text.splitlines()
    screen = "\n".join(lines[:FIRST_SCREEN])
    problems = [f"the README has {len(lines)} lines (at most {MAX_LINES - 1})"] if len(lines) >= MAX_LINES else []
    for command in ("make lab", "make test"):
        if not re.search(rf"^{command}\s+#", screen, re.M):
            problems.append(f"`{command}` (with what it does) is not on the first screen")
    start = notebooks[0]
    for platform, link in (("Colab", "colab.research.google.com/github/"), ("Kaggle", "kaggle.com/kernels/welcome")):
        if not re.search(rf"\[!\[Open In {platform}\]\([^)]+\)\]\(https://{re.escape(link)}[^)]*/{start}\)", screen):
            problems.append(f"no {platform} link to {start} on the first screen")
    for name in notebooks:
        if not re.search(rf"^\|.*\]\(notebooks/{re.escape(name)}\) \|", screen, re.M):
            problems.append(f"the notebooks table has no row for {name} on the first screen")
    return problems


def test_the_first_screen_says_what_to_do():
    notebooks = [p.name for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))]
    problems = front_door_problems(README.read_text(), notebooks)
    assert not problems, "\n".join(problems)


def test_a_readme_with_its_start_below_the_first_screen_fails():
    good = README.read_text()
    notebooks = ["00_setup_check.ipynb", "01_tensors_autograd.ipynb"]
    assert front_door_problems(good, notebooks) == []
    pushed = "\n".join(["# A title", *["machinery, machinery"] * 70]) + "\n" + good
    problems = front_door_problems(pushed, notebooks)
    assert "`make lab` (with what it does) is not on the first screen" in problems
    assert "no Kaggle link to 00_setup_check.ipynb on the first screen" in problems
    assert "the notebooks table has no row for 01_tensors_autograd.ipynb on the first screen" in problems
    assert front_door_problems(good + "\nmore\n" * 60, notebooks) == [
        f"the README has {len(good.splitlines()) + 120} lines (at most 119)"
    ]


def _recipe(makefile: str, target: str) -> tuple[str, str]:
    """(prerequisites, recipe) of one Makefile rule."""
    match = re.search(rf"^{target}:([^\n]*)\n((?:\t[^\n]*\n)*)", makefile, re.M)
    assert match, f"no `{target}` rule in the Makefile"
    return match.group(1), match.group(2)


def test_the_two_commands_set_up_first_and_ci_runs_the_test_command():
    makefile = (ROOT / "Makefile").read_text()
    for target, runs in (("lab", "jupyter lab"), ("test", "pytest")):
        prerequisites, recipe = _recipe(makefile, target)
        assert "setup" in prerequisites.split(), f"`make {target}` no longer sets up first"
        assert runs in recipe, f"`make {target}` no longer runs {runs}"
    assert re.search(r"^make test$", (ROOT / ".ci" / "run").read_text(), re.M), "CI no longer runs `make test`"


def test_make_editions_needs_no_torch():
    """A contributor who fixes a typo rebuilds the student editions with nbformat alone (CONTRIBUTING.md)."""
    prerequisites, recipe = _recipe((ROOT / "Makefile").read_text(), "editions")
    assert "setup" not in prerequisites.split() and ".installed" not in prerequisites
    assert "TORCH" not in recipe and "torch" not in recipe and "requirements" not in recipe
    assert "editions" in recipe, "`make editions` no longer runs the editions builder"


@pytest.mark.parametrize("name", ["CONTRIBUTING.md", "LICENSE", "docs/teaching.md"])
def test_the_readme_links_the_other_doors(name):
    """Relative links, or (for a file the website has no page of) its address on GitHub's main branch."""
    readme, repository = README.read_text(), tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    assert f"]({name})" in readme or f"]({repository['Repository']}/blob/main/{name})" in readme
    assert (ROOT / name).is_file()


def test_the_license_is_the_mit_the_package_declares():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    text = (ROOT / "LICENSE").read_text()
    assert declared == {"text": "MIT"} and text.startswith("MIT License")
    assert "Copyright (c) 2026 The open deep-learning course contributors" in text
