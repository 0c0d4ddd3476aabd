"""Device, precision, seeding and an environment report: chosen one way for every notebook."""

from __future__ import annotations

import os
import platform
import random
import sys
from importlib import metadata

import numpy as np
import torch


def get_device(verbose: bool = True) -> torch.device:
    """Pick the best available device (cuda, then mps, then cpu) so every notebook runs anywhere."""
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
    """Name a device in words (GPU model and memory on CUDA) for printed reports."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"cuda ({props.name}, {props.total_memory / 2**30:.0f} GiB)"
    if device.type == "mps":
        return "mps (Apple GPU)"
    return f"cpu ({torch.get_num_threads()} threads)"


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """Mixed-precision dtype for a device: bf16 where the GPU supports it, else fp16; None (fp32) on CPU/MPS."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def needs_grad_scaler(dtype: torch.dtype | None) -> bool:
    """fp16 gradients underflow without loss scaling; bf16 and fp32 need none."""
    return dtype == torch.float16


def seed_everything(seed: int = 0, deterministic: bool = False) -> None:
    """Seed python, numpy and torch (all devices) from one place so runs repeat."""
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
    """Versions, device and GPU memory in a few lines, printed at the top of a notebook for bug reports."""
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
