"""Profiles: smoke / cpu / gpu from COURSE_PROFILE, with a clear error for anything else."""

import pytest
import torch

from helpers.profiles import PROFILES, get_profile


def test_default_follows_cuda(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert get_profile() == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_profile() == "gpu"


@pytest.mark.parametrize("value", ["smoke", "CPU", " gpu "])
def test_explicit_profile(monkeypatch, value):
    monkeypatch.setenv("COURSE_PROFILE", value)
    assert get_profile() == value.strip().lower()


def test_unknown_profile_names_the_valid_ones(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "fast")
    with pytest.raises(ValueError) as err:
        get_profile()
    assert "'fast'" in str(err.value)
    assert all(p in str(err.value) for p in PROFILES)


# COURSE_TINY: the chosen profile's code paths at the smoke profile's sizes (helpers.profiles.settings)
from helpers.device import autocast_dtype  # noqa: E402
from helpers.errors import ProfileError  # noqa: E402
from helpers.profiles import settings, tiny  # noqa: E402

CONFIG = {
    "smoke": dict(train_size=200, epochs=1, mask="2d", table=dict(train_size=50, seeds=(0,), compile_row=False)),
    "cpu": dict(train_size=4000, epochs=2, mask="2d", table=None),
    "gpu": dict(train_size=None, epochs=10, mask="4d", table=dict(train_size=None, seeds=(0, 1), compile_row=True)),
}
SIZES = ("train_size", "epochs", "seeds")


@pytest.fixture
def env(monkeypatch):
    for name in ("COURSE_PROFILE", "COURSE_TINY", "COURSE_PRECISION"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_settings_returns_the_profile_unchanged_without_tiny(env, capsys):
    env.setenv("COURSE_PROFILE", "gpu")
    cfg = settings(CONFIG, sizes=SIZES)
    assert cfg == CONFIG["gpu"] and cfg is not CONFIG["gpu"]
    cfg["table"]["seeds"] = ()  # a copy: the notebook's CONFIG stays as written
    assert CONFIG["gpu"]["table"]["seeds"] == (0, 1)
    assert capsys.readouterr().out == ""


def test_tiny_keeps_code_paths_and_takes_smoke_sizes_at_every_depth(env, capsys):
    env.setenv("COURSE_TINY", "1")
    cfg = settings(CONFIG, sizes=SIZES, profile="gpu")
    assert cfg == dict(train_size=200, epochs=1, mask="4d", table=dict(train_size=50, seeds=(0,), compile_row=True))
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "COURSE_TINY=1" in out and "gpu" in out
    # a profile without a table keeps none (its code path), smoke itself is unchanged
    assert settings(CONFIG, sizes=SIZES, profile="cpu") == dict(train_size=200, epochs=1, mask="2d", table=None)
    assert settings(CONFIG, sizes=SIZES, profile="smoke") == CONFIG["smoke"]


@pytest.mark.parametrize("value, expected", [("", False), ("0", False), ("1", True)])
def test_tiny_values(env, value, expected):
    env.setenv("COURSE_TINY", value)
    assert tiny() is expected


def test_bad_tiny_value_is_a_profile_error(env):
    env.setenv("COURSE_TINY", "yes please")
    with pytest.raises(ProfileError, match="COURSE_TINY='yes please'"):
        settings(CONFIG, sizes=SIZES, profile="gpu")


def test_misspelt_size_key_and_missing_profile_are_errors(env):
    with pytest.raises(ProfileError, match="train_sise"):
        settings(CONFIG, sizes=("train_sise",), profile="gpu")
    with pytest.raises(ProfileError, match="no cpu"):
        settings({k: v for k, v in CONFIG.items() if k != "cpu"}, sizes=SIZES, profile="gpu")


def test_size_key_without_a_smoke_value_is_an_error(env):
    env.setenv("COURSE_TINY", "1")
    config = {**CONFIG, "smoke": dict(train_size=200, epochs=1, mask="2d", table=None)}
    with pytest.raises(ProfileError, match=r"CONFIG\['gpu'\]\['table'\]\['train_size'\] is a size"):
        settings(config, sizes=SIZES, profile="gpu")


def test_unknown_profile_is_a_profile_error(env):
    env.setenv("COURSE_PROFILE", "fast")
    with pytest.raises(ProfileError):
        settings(CONFIG, sizes=SIZES)


@pytest.mark.parametrize("value, dtype", [("fp16", torch.float16), ("BF16", torch.bfloat16), ("fp32", None)])
def test_course_precision_overrides_the_device_choice(env, value, dtype):
    assert autocast_dtype(torch.device("cpu")) is None
    env.setenv("COURSE_PRECISION", value)
    assert autocast_dtype(torch.device("cpu")) is dtype
    assert autocast_dtype(torch.device("cuda")) is dtype  # the override wins before any GPU is asked


def test_bad_course_precision_is_a_profile_error(env):
    env.setenv("COURSE_PRECISION", "fp8")
    with pytest.raises(ProfileError, match="fp8.*fp16, bf16, fp32"):
        autocast_dtype(torch.device("cpu"))
