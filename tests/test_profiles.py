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
