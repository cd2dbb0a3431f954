"""The PSGD-Kron experiment (optedu.experiments.kron): equal grids, a bad contestant refused,
and what the stored runs show: every run trained its 200 steps, every best rate inside its grid
(tests/experiments/test_grids.py checks the stored runs complete and re-runs a sample)."""

from __future__ import annotations

import pytest

from optedu.experiments import kron as kr


@pytest.fixture(scope="module")
def stored():
    return kr.read()


def test_the_grids_have_the_same_size_and_a_bad_job_raises():
    assert len({len(g) for g in kr.GRIDS.values()}) == 1
    with pytest.raises(ValueError, match="Invalid contestant: 'sgd'"):
        kr.execute(kr.KEY("sgd", 0.1, 0))


def test_the_stored_runs(stored):
    assert all(r["evals"][-1][0] == r["steps"] == 200 and not r["diverged"] for r in stored)
    for c, grid in kr.GRIDS.items():   # tuned: the best rate is inside each grid
        assert grid[0] < kr.best(stored, c) < grid[-1]
