"""The two tiers' machinery (tests/conftest.py, tests/optimizers.py): what the quick tier
leaves out, and the cases ``crossed`` makes in each tier."""

import itertools

import pytest

import optimizers
from optimizers import full_tier_only


def test_full_tier_marks_are_recognised():
    full = pytest.mark.skipif(True, reason="full tier: about 3 s").mark
    assert full_tier_only([full])
    assert full_tier_only([pytest.mark.skip(reason="compiles kernels: full tier").mark])
    assert not full_tier_only([pytest.mark.skipif(False, reason="full tier").mark])
    assert not full_tier_only([pytest.mark.skipif(True, reason="needs a GPU").mark])
    assert not full_tier_only([pytest.mark.parametrize("x", [1]).mark])
    assert not full_tier_only([])


def _values(cases):
    return [tuple(case.values) for case in cases]


def test_crossed_full_tier_is_every_combination(monkeypatch):
    monkeypatch.setattr(optimizers, "FULL", True)
    cases = optimizers.crossed(["a", "b", "c"], {"one": 1, "two": 2}, {"pair": ("x", "y")})
    assert _values(cases) == [(n, k, "x", "y")
                              for n, k in itertools.product("abc", (1, 2))]
    assert [case.id for case in cases][:2] == ["a-one-pair", "a-two-pair"]


def test_crossed_quick_tier_shows_every_value_once_in_step(monkeypatch):
    monkeypatch.setattr(optimizers, "FULL", False)
    cases = optimizers.crossed(["a", "b", "c"], {"one": 1, "two": 2}, [True])
    assert _values(cases) == [("a", 1, True), ("b", 2, True), ("c", 1, True)]
    cases = optimizers.crossed(["a"], [1, 2, 3, 4])
    assert _values(cases) == [("a", 1), ("a", 2), ("a", 3), ("a", 4)]


def test_crossed_refuses_values_that_show_alike():
    with pytest.raises(AssertionError, match="show the same"):
        optimizers.crossed([1, "1"])


def test_the_running_process_is_set_up_by_conftest():
    """tests/conftest.py sets torch to one thread and matplotlib off-screen in every process
    that runs tests (pytest-xdist's workers, or pytest itself with -n 0)."""
    import matplotlib
    import torch

    assert torch.get_num_threads() == 1
    assert matplotlib.get_backend().lower() == "agg"
