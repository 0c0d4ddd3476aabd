"""Device, precision and seeding: one choice, made the same way everywhere."""

import os
import random
import types

import numpy as np
import pytest
import torch

from helpers import device as dev


def _no_accelerators(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def test_cpu_when_no_accelerator(monkeypatch, capsys):
    _no_accelerators(monkeypatch)
    assert dev.get_device().type == "cpu"
    assert "Using device: cpu" in capsys.readouterr().out


def test_cuda_first_then_mps(monkeypatch):
    _no_accelerators(monkeypatch)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert dev.get_device(verbose=False).type == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert dev.get_device(verbose=False).type == "cuda"


# Real GPUs as torch.cuda.get_device_properties describes them: (name, compute capability, memory in GiB).
GPUS = {
    "T4": ("Tesla T4", (7, 5), 15),
    "V100": ("Tesla V100-SXM2-16GB", (7, 0), 16),
    "P100": ("Tesla P100-PCIE-16GB", (6, 0), 16),
    "A100": ("NVIDIA A100-SXM4-40GB", (8, 0), 40),
    "A10G": ("NVIDIA A10G", (8, 6), 22),
    "L4": ("NVIDIA L4", (8, 9), 22),
    "H100": ("NVIDIA H100 80GB HBM3", (9, 0), 80),
}
EXPECTED = {
    "T4": torch.float16,
    "V100": torch.float16,
    "P100": None,
    "A100": torch.bfloat16,
    "A10G": torch.bfloat16,
    "L4": torch.bfloat16,
    "H100": torch.bfloat16,
}


def _fake_gpu(monkeypatch, gpu: str) -> None:
    """Fake the device properties of one real GPU on a CPU machine; the functions that decide stay real."""
    name, (major, minor), gib = GPUS[gpu]
    props = types.SimpleNamespace(name=name, major=major, minor=minor, total_memory=gib * 2**30)
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device=None: props)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (gib * 2**29, gib * 2**30))
    # is_bf16_supported's emulation check: a bf16 tensor can be created on a T4 or a V100, so it answers True there
    monkeypatch.setattr(torch.cuda, "_check_bf16_tensor_supported", lambda device: True)


def test_autocast_dtype_off_cuda_is_fp32(monkeypatch):
    monkeypatch.delenv("COURSE_PRECISION", raising=False)  # CI's second run sets it; this tests the device's choice
    assert dev.autocast_dtype(torch.device("cpu")) is None
    assert dev.autocast_dtype(torch.device("mps")) is None
    assert dev.precision_reason(torch.device("cpu")).startswith("float32 (no autocast): ")


@pytest.mark.parametrize("gpu", list(GPUS))
def test_precision_by_compute_capability(monkeypatch, gpu):
    monkeypatch.delenv("COURSE_PRECISION", raising=False)
    _fake_gpu(monkeypatch, gpu)
    cuda = torch.device("cuda")
    assert torch.cuda.get_device_capability(cuda) == GPUS[gpu][1]  # torch's own function reads the faked properties
    assert torch.cuda.is_bf16_supported()  # the trap: True on every one of them, emulated below 8.0
    assert torch.cuda.is_bf16_supported(including_emulation=False) is (GPUS[gpu][1] >= (8, 0))
    assert dev.autocast_dtype(cuda) is EXPECTED[gpu]
    reason = dev.precision_reason(cuda)
    assert reason.startswith(dev.precision_name(EXPECTED[gpu]) + ": " + GPUS[gpu][0])
    assert f"compute capability {GPUS[gpu][1][0]}.{GPUS[gpu][1][1]}" in reason
    assert ("GradScaler" in reason) is (EXPECTED[gpu] is torch.float16)


def test_rocm_gets_bf16(monkeypatch):
    monkeypatch.delenv("COURSE_PRECISION", raising=False)
    _fake_gpu(monkeypatch, "V100")
    monkeypatch.setattr(torch.version, "hip", "6.2.41133")  # ROCm builds report HIP here; capability means little
    assert dev.autocast_dtype(torch.device("cuda")) is torch.bfloat16
    assert "ROCm" in dev.precision_reason(torch.device("cuda"))


@pytest.mark.parametrize("forced, dtype", [("fp16", torch.float16), ("bf16", torch.bfloat16), ("fp32", None)])
def test_course_precision_overrides_the_gpu(monkeypatch, forced, dtype):
    _fake_gpu(monkeypatch, "T4")
    monkeypatch.setenv("COURSE_PRECISION", forced)
    assert dev.autocast_dtype(torch.device("cuda")) is dtype
    expected = f"{dev.precision_name(dtype)}: set by COURSE_PRECISION={forced}"
    assert dev.precision_reason(torch.device("cuda")) == expected


def test_precision_names():
    assert dev.precision_name(torch.float16) == "float16 autocast + GradScaler"
    assert dev.precision_name(torch.bfloat16) == "bfloat16 autocast"
    assert dev.precision_name(None) == "float32 (no autocast)"


@pytest.mark.parametrize("dtype, expected", [(torch.float16, True), (torch.bfloat16, False), (None, False)])
def test_grad_scaler_only_for_fp16(dtype, expected):
    assert dev.needs_grad_scaler(dtype) is expected


def test_seed_everything_repeats_all_generators():
    def draw():
        return random.random(), np.random.rand(), torch.rand(3)

    dev.seed_everything(123)
    a = draw()
    dev.seed_everything(123)
    b = draw()
    dev.seed_everything(124)
    c = draw()
    assert a[:2] == b[:2] and torch.equal(a[2], b[2])
    assert a[0] != c[0] and not torch.equal(a[2], c[2])


def test_seed_everything_leaves_the_environment_and_global_flags_alone(monkeypatch):
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    before = torch.are_deterministic_algorithms_enabled()
    dev.seed_everything(5)
    assert "PYTHONHASHSEED" not in os.environ  # it could not affect this process anyway
    assert torch.are_deterministic_algorithms_enabled() is before


def test_seed_everything_deterministic_algorithms_sets_global_flags(monkeypatch):
    flags = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    try:
        dev.seed_everything(5, deterministic_algorithms=True)
        assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.benchmark is False
    finally:
        torch.use_deterministic_algorithms(flags[0], warn_only=flags[1])


def test_environment_report_names_versions_and_device(monkeypatch):
    monkeypatch.delenv("COURSE_PRECISION", raising=False)
    _no_accelerators(monkeypatch)
    report = dev.environment_report()
    assert f"torch        {torch.__version__.split('+')[0]}" in report  # 2.6.0+cu124's metadata says 2.6.0
    assert f"device       {dev.describe_device(torch.device('cpu'))}\n" in report
    assert f"precision    {dev.precision_reason(torch.device('cpu'))}" in report


def test_environment_report_on_a_t4_says_float16_and_why(monkeypatch):
    monkeypatch.delenv("COURSE_PRECISION", raising=False)
    _fake_gpu(monkeypatch, "T4")
    report = dev.environment_report()
    assert "device       cuda (Tesla T4, 15 GiB)\n" in report
    assert (
        "precision    float16 autocast + GradScaler: Tesla T4 (compute capability 7.5) has float16 tensor cores "
        "but no bfloat16 in hardware"
    ) in report
    assert "gpu memory   7.5 GiB free of 15.0 GiB" in report


# What torch.cuda.get_arch_list() answers in today's wheels (pytorch/pytorch#182250): the CUDA 12.8 build that
# Kaggle's image ships has no sm_60 or sm_61 (and, from torch 2.11, no sm_70); the CUDA 12.6 build still has them.
ARCH_CU128 = ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"]
ARCH_CU126 = ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"]
# (name, capability, GiB) of the cards learners meet, and whether the cu128 wheel can drive them
CARDS = {
    "P100": ("Tesla P100-PCIE-16GB", (6, 0), 16, False),  # Kaggle's other GPU
    "GTX 1080": ("NVIDIA GeForce GTX 1080", (6, 1), 8, False),  # a learner's own Pascal card
    "V100": ("Tesla V100-SXM2-16GB", (7, 0), 16, False),
    "T4": ("Tesla T4", (7, 5), 15, True),  # Colab's, and Kaggle's T4 x2
    "L4": ("NVIDIA L4", (8, 9), 22, True),  # no sm_89 in the list: sm_86 code runs on it
    "H100": ("NVIDIA H100 80GB HBM3", (9, 0), 80, True),
    "RTX 5090": ("NVIDIA GeForce RTX 5090", (12, 0), 32, True),
}


def _fake_card(monkeypatch, card: str, arch_list: list[str]) -> None:
    """Fake one card's properties and the wheel's arch list; get_device, get_profile and the report stay real."""
    name, (major, minor), gib, _ = CARDS[card]
    props = types.SimpleNamespace(name=name, major=major, minor=minor, total_memory=gib * 2**30)
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    monkeypatch.delenv("COURSE_PRECISION", raising=False)
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device=None: props)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (gib * 2**29, gib * 2**30))
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: list(arch_list))


@pytest.mark.parametrize("card", [c for c in CARDS if not CARDS[c][3]])
def test_a_gpu_the_wheel_cannot_drive_falls_back_to_the_cpu_profile(monkeypatch, capsys, card):
    from helpers.profiles import get_profile

    _fake_card(monkeypatch, card, ARCH_CU128)
    name, (major, minor) = CARDS[card][:2]
    assert torch.cuda.is_available()  # the trap: torch says yes, and the first CUDA operation would fail
    assert dev.get_device().type == "cpu"
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"GPU not used: {name} (sm_{major}{minor}) cannot run this torch {torch.__version__}")
    assert all(s in lines[0] for s in ("sm_75 sm_80", "cpu profile", '"GPU T4 x2" (not P100)', "keep the CPU"))
    assert lines[1].startswith("Using device: cpu (") and len(lines) == 2
    assert get_profile() == "cpu"
    report = dev.environment_report()
    assert f"\ngpu          not used: {name} (sm_{major}{minor})" in report
    assert "device       cpu (" in report and "gpu memory" not in report
    assert not dev.cuda_usable()


@pytest.mark.parametrize("card", [c for c in CARDS if CARDS[c][3]])
def test_a_gpu_the_wheel_drives_is_used_with_the_gpu_profile(monkeypatch, capsys, card):
    from helpers.profiles import get_profile

    _fake_card(monkeypatch, card, ARCH_CU128)
    assert dev.get_device().type == "cuda" and dev.unsupported_gpu() is None
    assert capsys.readouterr().out == f"Using device: cuda ({CARDS[card][0]}, {CARDS[card][2]} GiB)\n"
    assert get_profile() == "gpu" and "not used" not in dev.environment_report()


@pytest.mark.parametrize("card", ["P100", "GTX 1080", "V100"])
def test_the_cuda_12_6_wheel_still_drives_pascal_and_volta(monkeypatch, card):
    _fake_card(monkeypatch, card, ARCH_CU126)
    assert dev.get_device(verbose=False).type == "cuda" and dev.cuda_usable()


@pytest.mark.parametrize(
    "arch_list, card, runs",
    [
        (["sm_80", "compute_80"], "H100", True),  # PTX for 8.0: the driver compiles it for 9.0
        (["sm_80"], "H100", False),  # a cubin runs only within its major
        (["sm_80", "compute_80"], "T4", False),  # PTX for 8.0 cannot run on 7.5
        (["sm_90a", "sm_100f"], "H100", True),  # suffixed targets are their capability
        ([], "P100", True),  # a build that lists nothing: no claim either way
    ],
)
def test_cubins_within_a_major_and_ptx_upwards(monkeypatch, arch_list, card, runs):
    _fake_card(monkeypatch, card, arch_list)
    assert (dev.unsupported_gpu() is None) is runs


def test_an_apple_gpu_gets_float32_with_its_reason(monkeypatch):
    monkeypatch.delenv("COURSE_PRECISION", raising=False)
    _no_accelerators(monkeypatch)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    report = dev.environment_report()
    assert "device       mps (Apple GPU)\n" in report
    assert "precision    float32 (no autocast): an Apple GPU: float32 is the safe default there;" in report
    assert "has measured neither its speed nor its accuracy on a Mac" in report
