"""Claims the course makes about itself, checked: versions in one place, and links that resolve under `make lab`."""

import json
import re
import sys
import tomllib
import warnings
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

import tools.pack

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
MAKEFILE = (ROOT / "Makefile").read_text()


def requirement_lines(path: Path) -> list[Requirement]:
    """The requirements of a pip requirements or constraints file, comments and options left out."""
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line and not line.startswith("-")]


def lower_bound(req: Requirement) -> str | None:
    """The version after `>=` in a requirement, or None when it has no lower bound."""
    return next((spec.version for spec in req.specifier if spec.operator == ">="), None)


def pinned(req: Requirement) -> str:
    """The version of an `==` pin."""
    (spec,) = req.specifier
    assert spec.operator == "==", f"{req} is not an == pin"
    return spec.version


def make_default(name: str) -> str:
    """The default of a `NAME ?= value` line of the Makefile."""
    match = re.search(rf"^{name} \?= (.+)$", MAKEFILE, re.MULTILINE)
    assert match, f"no `{name} ?=` line in the Makefile"
    return match.group(1).strip()


def python_floor() -> tuple[int, int]:
    """pyproject.toml's requires-python floor as (major, minor)."""
    match = re.fullmatch(r">=\s*(\d+)\.(\d+)", PYPROJECT["project"]["requires-python"])
    assert match, "requires-python is not of the form >=X.Y"
    return int(match.group(1)), int(match.group(2))


def test_requirements_txt_is_pyproject_dependencies_plus_dev():
    """requirements.txt says the same as pyproject.toml: its dependencies and the `dev` extra, nothing else.

    A package in both (ipywidgets: >=7.6.4 for the kernel, Colab's 7.7.1; >=8 for JupyterLab 4) appears once, with
    the `dev` range, which must be the narrower one (a higher lower bound).
    """
    project = PYPROJECT["project"]
    expected = {Requirement(r).name: Requirement(r) for r in project["dependencies"]}
    for dev in map(Requirement, project["optional-dependencies"]["dev"]):
        if dev.name in expected:
            assert Version(lower_bound(dev)) > Version(lower_bound(expected[dev.name])), f"{dev} widens nothing"
        expected[dev.name] = dev
    assert {str(r) for r in requirement_lines(ROOT / "requirements.txt")} == {str(r) for r in expected.values()}


def test_the_lab_gets_ipywidgets_8_and_the_kernel_side_accepts_7():
    """JupyterLab 4 renders ipywidgets 8 only; Colab runs 7.7.1 (tests/test_colab.py checks its pins)."""
    project = PYPROJECT["project"]
    base = next(Requirement(r) for r in project["dependencies"] if r.startswith("ipywidgets"))
    lab = next(Requirement(r) for r in project["optional-dependencies"]["dev"] if r.startswith("ipywidgets"))
    assert base.specifier.contains("7.7.1") and not lab.specifier.contains("7.7.1") and lab.specifier.contains("8.0.0")
    assert any(
        r.name == "jupyterlab" and r.specifier.contains("4.0.0") for r in requirement_lines(ROOT / "requirements.txt")
    )
    assert next(r for r in requirement_lines(ROOT / "requirements.txt") if r.name == "ipywidgets") == lab


def test_requirements_min_pins_every_lower_bound():
    """requirements-min.txt (what `make test-min` installs) pins each dependency at pyproject.toml's lower bound."""
    pins = {r.name.lower(): r for r in requirement_lines(ROOT / "requirements-min.txt")}
    for req in map(Requirement, PYPROJECT["project"]["dependencies"]):
        bound = lower_bound(req)
        assert bound, f"{req} has no lower bound: say the oldest version the course runs with"
        assert req.name.lower() in pins, f"requirements-min.txt does not pin {req.name} (pyproject: {req})"
        pin = pins[req.name.lower()]
        assert Version(pinned(pin)) == Version(bound), f"pyproject.toml says {req} but requirements-min.txt {pin}"
    assert set(pins) == {Requirement(r).name.lower() for r in PYPROJECT["project"]["dependencies"]}


def test_make_test_min_installs_the_torch_floor():
    """`make test-min` installs the torch pinned in requirements-min.txt, the floor that pyproject.toml claims."""
    assert make_default("TORCH_MIN") == "$(shell grep -m1 '^torch==' requirements-min.txt)"
    recipe = MAKEFILE[MAKEFILE.index("$(MIN_VENV)/.installed:") :]
    assert '-m pip install -q "$(TORCH_MIN)"' in recipe.split("\n\n")[0]


def test_environment_yml_installs_what_make_installs():
    """environment.yml: a Python the course supports, Makefile's torch, then requirements.txt and the package."""
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    assert tuple(int(x) for x in python.removeprefix("python=").split(".")[:2]) >= python_floor()
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pip == [make_default("TORCH"), "-r requirements.txt", "-e .[offline]"]
    torch_range = next(r for r in requirement_lines(ROOT / "requirements.txt") if r.name == "torch").specifier
    assert torch_range.contains(pinned(Requirement(make_default("TORCH")))), "the Makefile's torch is out of range"


def test_readme_names_the_torch_make_installs_and_the_floor_tested():
    """README: `make` installs the Makefile's torch; `make test-min` ran at the floor of requirements-min.txt."""
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert f"pip install {make_default('TORCH')}" in readme
    floor = next(r for r in requirement_lines(ROOT / "requirements-min.txt") if r.name == "torch")
    assert f"lowest versions we claim (`requirements-min.txt`): torch {pinned(floor)}," in readme


def test_python_floor_is_the_one_tested_and_said_everywhere():
    """The tests run on the claimed floor or above; README and the offline pack claim nothing lower."""
    floor = python_floor()
    assert sys.version_info[:2] >= floor
    assert f"Python {floor[0]}.{floor[1]}+" in (ROOT / "README.md").read_text()
    targets = tools.pack.parse_targets(list(tools.pack.DEFAULT_TARGETS) + make_default("PACK_TARGETS").split())
    assert all(tuple(int(x) for x in version.split(".")) >= floor for _, version in targets), targets


# ---- `make lab` serves one root; every relative link of the course must resolve inside it (issue 20, part 6)

LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)|(?:src|href)=[\"']([^\"']+)[\"']")
DOCUMENTS = sorted(
    [
        *ROOT.glob("notebooks/*.ipynb"),
        *ROOT.glob("solutions/*.ipynb"),
        *ROOT.glob("*.md"),
        *ROOT.glob("docs/*.md"),
        *ROOT.glob("data/*.md"),
    ]
)


def served_root() -> Path:
    """The folder `make lab` serves, read from its recipe."""
    recipe = MAKEFILE[MAKEFILE.index("\nlab:") :].split("\n\n")[0]
    match = re.search(r"--(?:ServerApp\.root_dir|notebook-dir)=(\S+)", recipe)
    return (ROOT / (match.group(1) if match else ".")).resolve()


def markdown_of(path: Path) -> str:
    """The Markdown of a document: the file itself, or a notebook's markdown cells."""
    if path.suffix != ".ipynb":
        return path.read_text()
    cells = json.loads(path.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def relative_links(text: str) -> list[str]:
    """Links without a scheme or a leading #: the ones that must resolve to a file of the checkout."""
    links = (a or b for a, b in LINK.findall(text))
    return [link for link in links if not re.match(r"[a-zA-Z][\w+.-]*:|#|/", link)]


def test_make_lab_serves_the_whole_course():
    assert served_root() == ROOT.resolve(), "make lab must serve the checkout, so ../solutions/ links resolve"
    assert "--LabApp.default_url=/lab/tree/notebooks" in MAKEFILE, "make lab should open notebooks/ first"


def test_link_finder_finds_markdown_and_html_links():
    text = '[a](../solutions/x.ipynb) ![b](img.png "t") <img src="docs/y.png"> [c](https://x.org) [d](#top)'
    assert relative_links(text) == ["../solutions/x.ipynb", "img.png", "docs/y.png"]


@pytest.mark.parametrize("path", DOCUMENTS, ids=[str(p.relative_to(ROOT)) for p in DOCUMENTS])
def test_relative_links_resolve_inside_the_served_root(path):
    root, broken = served_root(), []
    for link in relative_links(markdown_of(path)):
        target = (path.parent / unquote(link.split("#")[0].split("?")[0])).resolve()
        if not target.is_relative_to(root) or not target.exists():
            broken.append(link)
    assert not broken, f"links that `make lab` cannot open from {path.relative_to(ROOT)}: {broken}"


# ---- deprecation warnings from the course's own code fail the tests (issue 20, part 5)


COURSE_PACKAGES = [name.rstrip("*") for name in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]]


@pytest.mark.parametrize("module", [*COURSE_PACKAGES, "helpers.device", "tools.pack"])
def test_our_deprecation_warnings_are_errors(module):
    for category in (DeprecationWarning, FutureWarning):
        with pytest.raises(category):
            warnings.warn_explicit("a deprecated call", category, "course.py", 1, module=module)


def test_third_party_deprecation_warnings_are_shown_not_raised():
    with pytest.warns(DeprecationWarning):
        warnings.warn_explicit("a deprecated call", DeprecationWarning, "lib.py", 1, module="torch.cuda")
