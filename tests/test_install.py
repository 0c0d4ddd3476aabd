"""The course as Colab and Kaggle install it: a wheel, non-editable, each notebook run alone in an empty folder.

The wheel is built from the files a `pip install git+...` sees (the tracked files, plus new ones not ignored) and
installed into a fresh venv whose heavy dependencies (torch, transformers, ...) come from this interpreter's
site-packages through a .pth line: seconds, no network. An editable install (`make setup`) hides a subpackage the
wheel leaves out, package data read at run time, and paths computed from the checkout; these tests look at the wheel:
every module of every course package imports from it, and the first code cells of every notebook (setup, imports,
device, config) run in a real kernel from an empty working directory, with notebook 00, the setup check, run whole.
"""

from __future__ import annotations

import ast
import json
import os
import pkgutil
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
KERNEL = "course-wheel"

PROBE = """
import json, os
import helpers
print(json.dumps({"helpers": helpers.__file__, "data_dir": str(helpers.data_dir()),
                  "finetuned_dir": os.path.abspath(helpers.finetuned_dir())}))
"""


def run(*args, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300, **kwargs)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done


def repository_files() -> list[str]:
    """What `pip install git+<repository>` builds from: the tracked files, and new files git does not ignore."""
    listed = run("git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", cwd=ROOT).stdout
    return sorted({name for name in listed.split("\0") if name and (ROOT / name).is_file()})


def imported_top_levels(source: str) -> set[str]:
    """The top-level names a notebook cell imports (`import a.b` and `from a.b import c` give `a`)."""
    names = set()
    for node in ast.walk(ast.parse(TransformerManager().transform_cell(source))):  # magics become calls
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def code_cells(notebook: Path) -> list[str]:
    return [cell.source for cell in nbformat.read(notebook, as_version=4).cells if cell.cell_type == "code"]


def course_packages() -> list[str]:
    """The repository's own packages that a notebook imports: each must be inside the wheel, with every submodule."""
    imported = set()
    for notebook in NOTEBOOKS:
        for source in code_cells(notebook):
            imported |= imported_top_levels(source)
    packages = sorted(name for name in imported if (ROOT / name / "__init__.py").is_file())
    assert "helpers" in packages, packages  # the notebooks' own imports are what this test is about
    return packages


def source_modules(package: str) -> list[str]:
    """Every module of a package in the checkout, its subpackages' modules included, as dotted names."""
    found = [package]
    for info in pkgutil.walk_packages([str(ROOT / package)], prefix=package + "."):
        found.append(info.name)
    return sorted(found)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The course's wheel, built as pip builds it for `pip install git+...` (from a copy: no build/ in the checkout)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    for name in repository_files():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, src / name)
    args = ("-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index", "-w", tmp / "dist", src)
    run(sys.executable, *args)
    (built,) = (tmp / "dist").glob("*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """The python of a fresh venv holding the wheel, installed non-editable, with a Jupyter kernel of its own."""
    tmp = tmp_path_factory.mktemp("install")
    venv = tmp / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    target = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    # torch, transformers, ipykernel, ... from this interpreter; a path in a .pth file does not run that folder's
    # own .pth files, so this environment's editable install of the course stays out
    (target / "course_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    run(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", wheel)
    return python


def clean_env(workdir: Path) -> dict[str, str]:
    """This environment less the course's variables and Python paths, with a home of its own (no cache leaks in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COURSE_", "PYTHON", "JUPYTER"))}
    env["HOME"] = str(workdir.parent / "home")
    return env


def probe(python: Path, workdir: Path) -> dict:
    return json.loads(run(python, "-c", PROBE, cwd=workdir, env=clean_env(workdir)).stdout.strip().splitlines()[-1])


def test_the_install_is_not_editable(installed, tmp_path):
    paths = probe(installed, tmp_path)
    assert "site-packages" in paths["helpers"] and not paths["helpers"].startswith(str(ROOT)), paths


def test_data_and_runs_land_in_the_working_directory(installed, tmp_path):
    work = tmp_path / "content"  # Colab's working directory
    work.mkdir()
    paths = probe(installed, work)
    assert Path(paths["data_dir"]) == work / "data", paths
    finetuned = Path(paths["finetuned_dir"])  # runs/<profile>/bert-imdb, the profile that this machine defaults to
    assert finetuned.name == "bert-imdb" and finetuned.parent.parent == work / "runs", paths
    assert not any("site-packages" in paths[k] for k in ("data_dir", "finetuned_dir")), paths


def test_the_wheel_holds_every_file_of_every_course_package(wheel):
    """A subpackage or a data file left out of the wheel exists only for editable installs (issue 26: helpers/cifar)."""
    inside = set(zipfile.ZipFile(wheel).namelist())
    wanted = {name for name in repository_files() for package in course_packages() if name.startswith(package + "/")}
    missing = sorted(wanted - inside)
    assert not missing, f"{wheel.name} leaves out {missing}: `pip install` (Colab's first cell) cannot import them"


def test_every_module_of_every_course_package_imports_from_the_wheel(installed, tmp_path):
    modules = [module for package in course_packages() for module in source_modules(package)]
    script = (
        "import importlib, json, sys\n"
        "found = {}\n"
        "for name in sys.argv[1:]:\n"
        "    found[name] = importlib.import_module(name).__file__\n"
        "print(json.dumps(found))\n"
    )
    found = json.loads(run(installed, "-c", script, *modules, cwd=tmp_path, env=clean_env(tmp_path)).stdout)
    outside = {name: path for name, path in found.items() if "site-packages" not in path}
    assert not outside, f"imported from outside the install: {outside}"


def test_the_download_command_runs_from_the_wheel(installed, tmp_path):
    """`python -m helpers.download`, the README's way to fetch the data sets, is there in a package install."""
    assert "imdb, cifar10" in run(installed, "-m", "helpers.download", "--help", cwd=tmp_path).stdout


@pytest.fixture(scope="module")
def kernel_dir(installed, tmp_path_factory) -> Path:
    """A Jupyter data folder with one kernel that runs the wheel's venv, as the notebook's kernel on Colab does."""
    data = tmp_path_factory.mktemp("jupyter")
    spec = data / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [str(installed), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": KERNEL, "language": "python"}))
    return data


def first_cells(notebook: Path) -> int:
    """How many code cells to run: through the config cell (setup, imports, device, profile and sizes), or all of 00."""
    sources = code_cells(notebook)
    if notebook.name.startswith("00_"):
        return len(sources)
    return 1 + next(i for i, source in enumerate(sources) if "CONFIG" in source and "=" in source)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_notebook_starts_from_the_wheel_in_an_empty_folder(notebook, installed, kernel_dir, tmp_path, monkeypatch):
    nb = nbformat.read(notebook, as_version=4)
    nb.cells = [cell for cell in nb.cells if cell.cell_type == "code"][: first_cells(notebook)]
    where = "import json, os, helpers\nprint(json.dumps({'helpers': helpers.__file__, 'cwd': os.getcwd()}))"
    nb.cells.append(nbformat.v4.new_code_cell(where))
    work = tmp_path / "content"
    work.mkdir()
    env = clean_env(work)
    env.update(COURSE_PROFILE="smoke", MPLBACKEND="agg")
    if os.environ.get("COURSE_DATA_DIR"):  # the offline copies (CI); elsewhere the hub, as for a learner
        env["COURSE_DATA_DIR"] = os.environ["COURSE_DATA_DIR"]
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_dir))  # where this process finds the kernel's spec
    client = NotebookClient(nb, kernel_name=KERNEL, timeout=600, resources={"metadata": {"path": str(work)}})
    client.execute(env=env)
    where = json.loads(nb.cells[-1].outputs[-1]["text"])
    assert "site-packages" in where["helpers"] and not where["helpers"].startswith(str(ROOT)), where
    assert Path(where["cwd"]) == work, where
