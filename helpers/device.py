"""Device, precision, seeding and an environment report: chosen one way for every notebook."""

from __future__ import annotations

import os
import platform
import random
import sys
from importlib import metadata

import numpy as np
import torch

from .errors import ProfileError

PRECISIONS: dict[str, torch.dtype | None] = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": None}
"""COURSE_PRECISION overrides the device's choice: fp16 (+ GradScaler, the T4 path, also on CPU in CI), bf16, fp32."""


def _sm_runs(arch_list: list[str], major: int, minor: int) -> bool:
    """True if a wheel built for arch_list runs on capability major.minor: a cubin of the same major and a minor
    no higher (sm_80 code runs on an sm_86 GPU), or PTX (compute_XY) for XY no higher, which the driver compiles."""
    for arch in arch_list:
        kind, _, number = arch.partition("_")
        number = number.rstrip("af")  # sm_90a, sm_100f: the same capability with extra features
        if not number.isdigit():
            continue
        code_major, code_minor = divmod(int(number), 10)
        if kind == "sm" and code_major == major and code_minor <= minor:
            return True
        if kind == "compute" and (code_major, code_minor) <= (major, minor):
            return True
    return False


def unsupported_gpu(index: int = 0) -> str | None:
    """Why the installed torch cannot drive CUDA GPU `index` (its sm_XY not in the wheel), in one line, else None.

    torch.cuda.is_available() is True on such a GPU (a Kaggle P100, a GTX 10xx with a current wheel) and the first
    CUDA operation fails with "no kernel image is available": get_device asks this first. Taught in 00 §1.
    """
    if not torch.cuda.is_available() or torch.version.hip:  # ROCm builds name their targets otherwise
        return None
    if not (arch_list := torch.cuda.get_arch_list()):  # a build that does not say: no claim either way
        return None
    major, minor = torch.cuda.get_device_capability(index)
    if _sm_runs(arch_list, major, minor):
        return None
    name = torch.cuda.get_device_properties(index).name
    forced = os.environ.get("COURSE_PROFILE", "").strip().lower()
    profile = f"COURSE_PROFILE={forced} as set" if forced else "the cpu profile"
    return (
        f"{name} (sm_{major}{minor}) cannot run this torch {torch.__version__}, which is built for "
        f"{' '.join(arch_list)}: using the CPU and {profile}. For a GPU: on Kaggle choose the accelerator "
        f'"GPU T4 x2" (not P100); on your own machine install a torch build that lists sm_{major}{minor} '
        "(https://pytorch.org/get-started/locally/); or keep the CPU."
    )


def cuda_usable() -> bool:
    """A CUDA GPU that the installed torch can drive: what picks the cuda device and the gpu profile. 00 §1."""
    return torch.cuda.is_available() and unsupported_gpu() is None


def get_device(verbose: bool = True) -> torch.device:
    """Pick the best available device (cuda, then mps, then cpu) so every notebook runs anywhere. Taught in 00 §1.

    A CUDA GPU the installed torch cannot drive is skipped, with one line saying which GPU, which torch and what
    to do (environment_report says it too).
    """
    if (unusable := unsupported_gpu()) is not None:
        if verbose:
            print(f"GPU not used: {unusable}")
        device = torch.device("cpu")
    elif torch.cuda.is_available():
        device = torch.device("cuda")
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        device = torch.device("mps")
    else:
        device = torch.device("cpu")
    if verbose:
        print(f"Using device: {describe_device(device)}")
    return device


def describe_device(device: torch.device) -> str:
    """Name a device in words (GPU model and memory on CUDA) for printed reports. Taught in 00 §1."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"cuda ({props.name}, {props.total_memory / 2**30:.0f} GiB)"
    if device.type == "mps":
        return "mps (Apple GPU)"
    return f"cpu ({torch.get_num_threads()} threads)"


def _precision_choice(device: torch.device) -> tuple[torch.dtype | None, str]:
    """The autocast dtype for a device and the reason in words: one decision behind autocast_dtype and the report."""
    if forced := os.environ.get("COURSE_PRECISION", "").strip().lower():
        if forced not in PRECISIONS:
            raise ProfileError(f"COURSE_PRECISION={forced!r}: choose one of {', '.join(PRECISIONS)}, or unset it.")
        return PRECISIONS[forced], f"set by COURSE_PRECISION={forced}"
    if device.type == "mps":
        return None, (
            "an Apple GPU: float32 is the safe default there; float16/bfloat16 autocast on MPS is recent in PyTorch "
            "and this course has measured neither its speed nor its accuracy on a Mac"
        )
    if device.type != "cuda":
        return None, f"mixed precision pays off on a CUDA GPU, not on {device.type}"
    if torch.version.hip:
        return torch.bfloat16, "a ROCm build: PyTorch's AMD GPUs compute in bfloat16 (no loss scaling needed)"
    # Not torch.cuda.is_bf16_supported(): by default it also answers True where bf16 is only emulated (a T4, a V100).
    major, minor = torch.cuda.get_device_capability(device)
    gpu = f"{torch.cuda.get_device_properties(device).name} (compute capability {major}.{minor})"
    if major >= 8:
        return torch.bfloat16, f"{gpu} has bfloat16 tensor cores; bf16 needs no loss scaling"
    if major == 7:
        return torch.float16, f"{gpu} has float16 tensor cores but no bfloat16 in hardware (emulated bf16 is slow)"
    # fp32 below 7.0: no tensor cores, fp16 gains little on a P100 and runs at 1/64 speed on 6.1 (GTX 10xx, P4, P40).
    return None, f"{gpu} has no tensor cores, so mixed precision gains little; COURSE_PRECISION=fp16 to try it"


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """Autocast dtype: COURSE_PRECISION, else bf16 from capability 8.0, fp16 on 7.x, None (fp32). Taught in 03 §4."""
    return _precision_choice(device)[0]


def precision_name(dtype: torch.dtype | None) -> str:
    """How the course names a precision in words: the dtype, and the loss scaling fp16 needs. Taught in 03 §4."""
    if dtype is None:
        return "float32 (no autocast)"
    return f"{str(dtype).removeprefix('torch.')} autocast" + (" + GradScaler" if needs_grad_scaler(dtype) else "")


def precision_reason(device: torch.device) -> str:
    """Which precision this device gets and why, in one line for the environment report. Taught in 00 §1, 03 §4."""
    dtype, why = _precision_choice(device)
    return f"{precision_name(dtype)}: {why}"


def needs_grad_scaler(dtype: torch.dtype | None) -> bool:
    """fp16 gradients underflow without loss scaling; bf16 and fp32 need none. Taught in 03 §4."""
    return dtype == torch.float16


def model_device(model: torch.nn.Module) -> torch.device:
    """The device a model's parameters live on: loops and helpers follow the model. Taught in 01 §4.4."""
    return next(model.parameters()).device


def seed_everything(seed: int = 0, deterministic_algorithms: bool = False) -> None:
    """Seed python, numpy, torch so runs repeat; deterministic_algorithms sets torch process flags. Taught in 00 §1."""
    # Not PYTHONHASHSEED: it takes effect only when a Python process starts, so setting it here would change nothing.
    # deterministic_algorithms=True switches use_deterministic_algorithms on and cudnn.benchmark off for the session.
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    if deterministic_algorithms:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def _version(package: str) -> str:
    """Installed version of a package, or 'not installed'."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment_report(packages: tuple[str, ...] = ("torch", "transformers", "datasets")) -> str:
    """Versions, device, precision and why, GPU memory: the top of a notebook, for bug reports. Taught in 00 §1."""
    device = get_device(verbose=False)
    lines = [
        f"python       {sys.version.split()[0]} ({platform.system()} {platform.machine()})",
        *(f"{name:<12} {_version(name)}" for name in packages),
        f"device       {describe_device(device)}",
        f"precision    {precision_reason(device)}",
    ]
    if (unusable := unsupported_gpu()) is not None:
        lines.insert(-1, f"gpu          not used: {unusable}")
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info()
        lines.append(f"gpu memory   {free / 2**30:.1f} GiB free of {total / 2**30:.1f} GiB")
    return "\n".join(lines)
