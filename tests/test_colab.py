"""Where learners open the notebooks: Colab's GPU request in the metadata, badges for Colab and Kaggle, and a
setup cell that upgrades nothing Colab has already imported (checked against Colab's published pins)."""

import json
import re
import tomllib
from pathlib import Path

import nbformat
import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from tools import colab

ROOT = Path(__file__).resolve().parent.parent

PINS_FILES = sorted((ROOT / "tests" / "data").glob("colab_pins_*.txt"))
DEPENDENCIES = [Requirement(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]]


def colab_pins() -> dict[str, Version]:
    """Colab's package versions from the one dated copy in tests/data (name, lower case with '-' -> version)."""
    assert len(PINS_FILES) == 1, f"one dated copy of Colab's pins in tests/data, not {[p.name for p in PINS_FILES]}"
    pins = {}
    for line in PINS_FILES[0].read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = Version(version)
    return pins


def test_the_pins_say_where_they_come_from():
    text = PINS_FILES[0].read_text()
    date = re.fullmatch(r"colab_pins_(\d{4}-\d{2}-\d{2})\.txt", PINS_FILES[0].name).group(1)
    assert "https://github.com/googlecolab/backend-info/blob/" in text and f"commit of {date}" in text


@pytest.mark.parametrize("requirement", DEPENDENCIES, ids=[r.name for r in DEPENDENCIES])
def test_every_dependency_accepts_colabs_version(requirement):
    """pip leaves an installed package alone when it satisfies the requirement: nothing Colab imported is replaced."""
    pins = colab_pins()
    name = requirement.name.lower().replace("_", "-")
    assert name in pins, f"{requirement.name} is not in {PINS_FILES[0].name}: add Colab's version of it"
    assert requirement.specifier.contains(pins[name], prereleases=True), (
        f"pyproject.toml asks {requirement}, Colab has {pins[name]}: the setup cell would replace it and Colab would "
        "ask for a restart. Widen the range (the kernel side must accept Colab's version)."
    )


def test_the_check_catches_a_range_colab_does_not_meet():
    """A wrong answer: ipywidgets>=8 (the lab side's range) would upgrade Colab's 7.7.1."""
    assert not Requirement("ipywidgets>=8").specifier.contains(colab_pins()["ipywidgets"])
    assert Requirement("ipywidgets>=7.6.4").specifier.contains(colab_pins()["ipywidgets"])


def test_the_setup_cell_installs_only_the_course_and_upgrades_nothing():
    source = colab.setup_cell_source(colab.repo_url())
    command = re.search(r"\[sys\.executable, (.*?)\]", source, re.DOTALL).group(1)
    words = re.findall(r'"([^"]+)"', command)
    assert words == ["-m", "pip", "install", "-q", f"dl-course-helpers @ git+{colab.repo_url()}"]
    assert not re.search(r"-U\b|--upgrade|--force", source)
    # it runs on Colab and on Kaggle (whose notebooks set KAGGLE_KERNEL_RUN_TYPE), nowhere else
    assert 'if "google.colab" in sys.modules or "KAGGLE_KERNEL_RUN_TYPE" in os.environ:' in source


GPU = [p for folder in ("solutions", "notebooks") for p in sorted((ROOT / folder).glob("0[235]_*.ipynb"))]


@pytest.mark.parametrize("path", GPU, ids=[f"{p.parent.name}/{p.name}" for p in GPU])
def test_lessons_that_need_a_gpu_ask_colab_for_a_t4(path):
    metadata = json.loads(path.read_text())["metadata"]
    assert metadata["accelerator"] == "GPU" and metadata["colab"]["gpuType"] == "T4"


def test_the_other_lessons_ask_for_nothing():
    others = [p for p in sorted((ROOT / "notebooks").glob("*.ipynb")) if not colab.wants_gpu(p)]
    assert [p.name[:2] for p in others] == ["00", "01", "04"]
    assert all("accelerator" not in json.loads(p.read_text())["metadata"] for p in others)


def test_metadata_check_fixes_a_missing_and_a_needless_gpu_request():
    """Wrong answers fed to the check that `python -m tools.colab --check` runs (tests/test_repo.py)."""
    bare = nbformat.v4.new_notebook()
    assert len(colab.metadata_problems(bare, Path("solutions/02_cifar10_cnn.ipynb"))) == 2
    assert bare.metadata["accelerator"] == "GPU" and colab.metadata_problems(bare, Path("x/02_a.ipynb")) == []
    assert colab.metadata_problems(bare, Path("solutions/04_attention.ipynb")) == [
        "metadata 'accelerator' asks for a GPU this lesson does not need",
        "metadata 'colab' asks for a GPU this lesson does not need",
    ]


def test_badges_open_the_same_notebook_on_colab_and_kaggle():
    url, notebook = colab.repo_url(), ROOT / "notebooks" / "02_cifar10_cnn.ipynb"
    assert colab.kaggle_badge(url, notebook) == (
        "[![Open In Kaggle](https://kaggle.com/static/images/open-in-kaggle.svg)](https://kaggle.com/kernels/welcome"
        f"?src={url}/blob/main/notebooks/02_cifar10_cnn.ipynb)"
    )
    assert colab.colab_link(url, notebook).endswith(colab.kaggle_link(url, notebook).split("github.com/")[1])
