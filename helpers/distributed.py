"""Data parallelism with plain torch.distributed under torchrun; without it, one process (rank 0 of 1). Taught in 05."""

from __future__ import annotations

import gc
import os

import torch
import torch.distributed as dist
from torch import nn

from .errors import LaunchError


def is_distributed() -> bool:
    """True inside a process group (after setup() under torchrun). Taught in 05 §4."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's number, 0..world_size-1 (0 without a process group). Taught in 05 §4."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """How many processes train together (1 without a process group). Taught in 05 §4."""
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """True on rank 0, the one process that prints, draws progress bars and writes checkpoints. Taught in 05 §5."""
    return rank() == 0


def launch_plan(gpus: int | None = None) -> tuple[int, str]:
    """(processes, backend) of a launch: one process per GPU with NCCL from 2 GPUs, else 2 CPU ones with gloo. 05 §4."""
    gpus = torch.cuda.device_count() if gpus is None else gpus
    return (gpus, "nccl") if gpus >= 2 else (2, "gloo")


def setup(backend: str | None = None) -> torch.device:
    """Join torchrun's process group (NCCL on GPUs, else gloo); return cuda:LOCAL_RANK (or cpu). Taught in 05 §4."""
    launched = [name for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK") if name in os.environ]
    if not launched:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if len(launched) < 3:
        raise LaunchError(
            f"Only {', '.join(launched)} is set: start the script with torchrun "
            "(e.g. torchrun --nproc_per_node=2 script.py), which sets RANK, WORLD_SIZE and LOCAL_RANK."
        )
    local_rank = int(os.environ["LOCAL_RANK"])
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if not is_distributed():
        dist.init_process_group(backend or ("nccl" if device.type == "cuda" else "gloo"))
    return device


def teardown() -> None:
    """Leave the process group together, once, after `del` of the DDP model (its reducer holds the group). 05 §4."""
    if is_distributed():
        gc.collect()  # a deleted DDP model's reference cycles go now, not during interpreter shutdown
        dist.barrier()  # no process tears its connections down while another still uses them
        dist.destroy_process_group()


def barrier() -> None:
    """Wait until every process gets here (e.g. until rank 0 has written a checkpoint). Taught in 05 §5."""
    if is_distributed():
        dist.barrier()


def sum_across(*values):
    """Sum numbers or 0-d tensors (same types back, on the CPU) over all processes: one all-reduce. 05 §5."""
    if not is_distributed():
        return values
    device = next((v.device for v in values if isinstance(v, torch.Tensor)), torch.device("cpu"))
    if dist.get_backend() == "nccl" and device.type != "cuda":
        device = torch.device("cuda", torch.cuda.current_device())
    packed = torch.stack([torch.as_tensor(v, dtype=torch.float64, device=device).reshape(()) for v in values])
    dist.all_reduce(packed)
    packed = packed.cpu()
    return tuple(p.to(v.dtype) if isinstance(v, torch.Tensor) else type(v)(p.item()) for v, p in zip(values, packed))


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside DistributedDataParallel and torch.compile wrappers (what checkpoints store). Taught in 05 §5."""
    if isinstance(model, nn.parallel.DistributedDataParallel):
        model = model.module
    return getattr(model, "_orig_mod", model)  # torch.compile's wrapper holds the model as _orig_mod
