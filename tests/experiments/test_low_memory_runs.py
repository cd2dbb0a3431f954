"""The low-memory comparison (optedu.experiments.low_memory): its plan grows with the seed-0
results, and the stored runs ran their 200 steps (tests/experiments/test_grids.py checks them
complete and reproduces a sample)."""

from __future__ import annotations

import math

import pytest

from optedu.experiments import low_memory as lm


@pytest.fixture(scope="module")
def stored():
    return lm.read()


def test_the_plan_gives_every_contestant_the_same_grid():
    plan = lm.jobs()
    assert len(plan) == len(lm.CONTESTANTS) * len(lm.LRS)
    seed0 = [{"contestant": c, "lr": lr, "seed": 0, "final": 1.0 + lr}
             for c in lm.CONTESTANTS for lr in lm.LRS]
    more = lm.jobs(seed0)[len(plan):]
    assert {(j.contestant, j.lr, j.seed) for j in more} == {
        (c, lm.LRS[0], s) for c in lm.CONTESTANTS for s in (1, 2)}
    assert lm.best_lr(seed0[:-1], "adam_mini") is None          # grid incomplete
    with pytest.raises(ValueError, match="Invalid contestant: 'sgd'"):
        lm.build("sgd", None, 0.1)


def test_the_stored_runs_ran_their_steps_and_the_best_rates_again(stored):
    assert len(stored) == len(lm.CONTESTANTS) * (len(lm.LRS) + 2)
    for r in stored:   # 200 steps, or stopped at a non-finite loss with an infinite final
        assert r["evals"][-1][0] == 200 or r["final"] == math.inf
