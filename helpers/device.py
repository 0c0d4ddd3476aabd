"""Device, precision, seeding and an environment report: chosen one way for every notebook."""

from __future__ import annotations

import os
import platform
import random
import sys
from importlib import metadata

import numpy as np
import torch

from .profiles import ProfileError

PRECISIONS: dict[str, torch.dtype | None] = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": None}
"""COURSE_PRECISION overrides the device's choice: fp16 (+ GradScaler, the T4 path, also on CPU in CI), bf16, fp32."""


def get_device(verbose: bool = True) -> torch.device:
    """Pick the best available device (cuda, then mps, then cpu) so every notebook runs anywhere. Taught in 00 §1."""
    if torch.cuda.is_available():
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


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """Mixed-precision dtype: COURSE_PRECISION if set, else bf16 where the GPU has it, else fp16; None (fp32) on CPU/MPS."""
    if forced := os.environ.get("COURSE_PRECISION", "").strip().lower():
        if forced not in PRECISIONS:
            raise ProfileError(f"COURSE_PRECISION={forced!r}: choose one of {', '.join(PRECISIONS)}, or unset it.")
        return PRECISIONS[forced]
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def needs_grad_scaler(dtype: torch.dtype | None) -> bool:
    """fp16 gradients underflow without loss scaling; bf16 and fp32 need none. Taught in 03 §4."""
    return dtype == torch.float16


def model_device(model: torch.nn.Module) -> torch.device:
    """The device a model's parameters live on: loops and helpers follow the model. Taught in 01 §4.4."""
    return next(model.parameters()).device


def seed_everything(seed: int = 0, deterministic: bool = False) -> None:
    """Seed python, numpy and torch (all devices) from one place so runs repeat. Taught in 00 §1."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def _version(package: str) -> str:
    """Installed version of a package, or 'not installed'."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment_report(packages: tuple[str, ...] = ("torch", "transformers", "datasets")) -> str:
    """Versions, device and GPU memory in a few lines, printed at the top of a notebook for bug reports. Taught in 00 §1."""
    device = get_device(verbose=False)
    lines = [
        f"python       {sys.version.split()[0]} ({platform.system()} {platform.machine()})",
        *(f"{name:<12} {_version(name)}" for name in packages),
        f"device       {describe_device(device)}",
        f"precision    {autocast_dtype(device) or 'float32 (no autocast)'}",
    ]
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info()
        lines.append(f"gpu memory   {free / 2**30:.1f} GiB free of {total / 2**30:.1f} GiB")
    return "\n".join(lines)
