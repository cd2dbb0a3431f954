"""The two tiers' machinery (tests/conftest.py, tests/optimizers.py): what the quick tier
leaves out (the tests marked ``full``), and the cases ``crossed`` makes in each tier."""

import itertools
import pathlib
import tomllib

import pytest

import optimizers

ROOT = pathlib.Path(__file__).resolve().parents[2]
SAMPLE = """
import pytest

@pytest.mark.full
def test_heavy():
    pass

@pytest.mark.parametrize("n", [1, pytest.param(2, marks=pytest.mark.full)])
def test_grid(n):
    pass
"""


@pytest.fixture
def tiers_conftest(request):
    """tests/conftest.py as pytest loaded it in this run (a plugin: its hooks and FULL)."""
    path = ROOT / "tests" / "conftest.py"
    return next(plugin for plugin in request.config.pluginmanager.get_plugins()
                if getattr(plugin, "__file__", None) == str(path))


@pytest.mark.parametrize("full", [False, True], ids=["quick", "full"])
def test_the_quick_tier_deselects_what_is_marked_full(pytester, monkeypatch, tiers_conftest,
                                                     full):
    """A session run with tests/conftest.py's hook and pyproject.toml's markers (strict):
    the quick tier deselects the tests marked ``full``, the full tier collects them."""
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    options = options["ini_options"]
    assert "--strict-markers" in options["addopts"].split()
    pytester.makeini("[pytest]\naddopts = --strict-markers\nmarkers =\n"
                     + "".join(f"    {line}\n" for line in options["markers"]))
    pytester.makepyfile(test_sample=SAMPLE)
    monkeypatch.setattr(tiers_conftest, "FULL", full)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")   # xdist, hypothesis, ...: 1 s
    result = pytester.runpytest_inprocess("--collect-only", "-q", "-p", "no:cacheprovider",
                                          plugins=[tiers_conftest])
    collected = sorted(line.split("::")[1] for line in result.outlines if "::" in line)
    if full:
        assert collected == ["test_grid[1]", "test_grid[2]", "test_heavy"]
        result.stdout.fnmatch_lines(["3 tests collected*"])
    else:
        assert collected == ["test_grid[1]"]
        result.stdout.fnmatch_lines(["1/3 tests collected (2 deselected)*"])


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
