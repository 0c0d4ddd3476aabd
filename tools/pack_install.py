"""A pack on the machine it is carried to: what it holds (manifest, checksums) and installing the course from it.

No network and no make: `python3 -m tools.pack install --pack DIR` (tools/pack.py's command line) runs install().
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TORCH_PRESENT = "present"
"""--torch present: the target machine has PyTorch; the pack holds no torch wheels and the venv reuses its torch."""
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


def install_command(manifest: dict, pack: Path, venv: Path, target: str) -> list[str]:
    """pip's offline install of the course into the venv: the pack's wheels only, held to the target's pins."""
    torch = [] if manifest["torch"] == TORCH_PRESENT else [manifest["torch"]]
    extras = ",".join(manifest.get("extras", ["offline"]))
    cmd = [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-index", "--find-links", str(pack / "wheels")]
    return cmd + ["-c", str(pack / "pins" / f"{target}.txt"), *torch, "-r", "requirements.txt", "-e", f".[{extras}]"]


def install(pack: Path, venv: Path, python: str = sys.executable) -> float:
    """Install the course from a pack into a (new) venv with pip --no-index; returns the seconds it took.

    A pack built with --torch present makes the venv with --system-site-packages: the machine's torch is used."""
    start = time.perf_counter()
    pack, manifest = pack.resolve(), verify(pack)
    target = choose_target(manifest, platform_name(), ".".join(platform.python_version_tuple()[:2]))
    present = manifest["torch"] == TORCH_PRESENT
    if not (venv / "bin" / "python").exists():
        subprocess.run([python, "-m", "venv", *(["--system-site-packages"] if present else []), str(venv)], check=True)
    if present and subprocess.run([str(venv / "bin" / "python"), "-c", "import torch"]).returncode != 0:
        raise PackError(
            f"This pack is for a machine that already has PyTorch, and {venv} cannot import torch: install PyTorch "
            "for this machine first (or make the venv from the Python that has it), or use a pack with torch wheels."
        )
    subprocess.run(install_command(manifest, pack, venv, target), cwd=ROOT, check=True)
    (venv / ".installed").touch()  # what `make setup` leaves, so `make test VENV=...` uses this install
    return time.perf_counter() - start
