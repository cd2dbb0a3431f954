"""The µP width experiment (optedu.experiments.mup): its plan, the two parametrisations the same
run at the base width, µP's rates on the hidden weight, the optimum read off a curve, and what
the stored runs show (tests/experiments/test_grids.py checks the stored runs complete and re-
runs a sample)."""

from __future__ import annotations

import numpy as np
import pytest

from optedu.experiments import mup as mr


@pytest.fixture(scope="module")
def stored():
    return mr.read()


def test_the_plan_covers_the_grid():
    plan = mr.jobs()
    assert len(plan) == len({j.key for j in plan}) == (
        len(mr.PARAMS) * len(mr.BUDGETS) * len(mr.WIDTHS) * len(mr.LOG10_LRS)
        * len(mr.SEEDS))
    assert [w / mr.WIDTHS[0] for w in mr.WIDTHS] == [2 ** i for i in range(len(mr.WIDTHS))]
    assert mr.BASE in mr.WIDTHS
    steps = np.diff(mr.LOG10_LRS)
    assert np.allclose(steps, 0.5)                           # half-decades


def test_the_base_width_is_the_same_run():
    """At the base width µP is the standard parametrisation, bit for bit."""
    sp = mr.train("sp", mr.BASE, 1e-2, 1, 20)
    mu = mr.train("mup", mr.BASE, 1e-2, 1, 20)
    assert sp == mu and not sp["diverged"]
    assert [s for s, _ in sp["train"]] == [0, 5, 10, 15, 20]
    wide_sp = mr.train("sp", 2 * mr.BASE, 1e-2, 1, 20)
    wide_mu = mr.train("mup", 2 * mr.BASE, 1e-2, 1, 20)
    assert wide_sp["train"][0] != wide_mu["train"][0]       # the readout differs at 2x


def test_mup_divides_the_hidden_rate_by_the_width_multiplier():
    model, shapes = mr.make_model("mup", 4 * mr.BASE, 0)
    opt = mr.optimizer(model, shapes, 0.01)
    rates = {n: g["lr"] for g in opt.param_groups for n in g["param_names"]}
    assert rates == {"fc2.weight": 0.01 / 4, "fc1.weight": 0.01, "fc1.bias": 0.01,
                     "fc2.bias": 0.01, "head.weight": 0.01, "head.bias": 0.01}
    assert model.head.width_mult == 4
    sp, none = mr.make_model("sp", 4 * mr.BASE, 0)
    assert none is None and [g["lr"] for g in mr.optimizer(sp, None, 0.01).param_groups] == \
        [0.01]
    # the bug: µP everywhere but a plain nn.Linear readout
    bug, _ = mr.make_model("mup-sp-readout", 4 * mr.BASE, 0)
    assert type(bug.head).__name__ == "Linear"


def test_the_optimum_of_a_curve():
    x = np.array(mr.LOG10_LRS)
    y = np.exp((x + 2.2) ** 2)                                # log loss a parabola at -2.2
    assert mr.optimum(x, y) == pytest.approx(-2.2)
    assert mr.optimum(x, np.exp((x + 5) ** 2)) == x[0]       # at the edge: the edge
    y = np.exp((x + 2.0) ** 2)
    y[x > -1.8] = np.inf                                      # diverged above the best
    assert mr.optimum(x, y) == -2.0
    assert abs(mr.optimum(x, np.exp(np.abs(x + 2.05))) + 2.0) <= 0.25
    with pytest.raises(ValueError, match="Invalid losses"):
        mr.optimum(x, np.full(len(x), np.nan))


def test_bad_input_raises():
    with pytest.raises(ValueError, match="Invalid param: 'ntk'"):
        mr.make_model("ntk", 64, 0)
    with pytest.raises(ValueError, match="Invalid width: 0"):
        mr.make_model("sp", 0, 0)
    with pytest.raises(ValueError, match="Invalid lr: -0.1"):
        mr.train("sp", 64, -0.1, 0, 10)
    with pytest.raises(ValueError, match="Invalid steps: 0"):
        mr.train("sp", 64, 0.1, 0, 0)


def test_the_stored_runs(stored):
    """Every run of the grid is stored, once, with its curve; the base width's two
    parametrisations agree; the optimum is inside the grid for every width and seed."""
    for r in stored:
        assert r["lr"] == float(f"{10 ** r['log10_lr']:.6g}")
        assert [s for s, _ in r["train"]][-1] == r["steps"] or r["diverged"]
    by_key = {mr.KEY.of(r): r for r in stored}
    for steps in mr.BUDGETS:
        for lr in mr.LOG10_LRS:
            for s in mr.SEEDS:
                a = by_key["sp", steps, mr.BASE, lr, s]
                b = by_key["mup", steps, mr.BASE, lr, s]
                assert (a["train"], a["val"]) == (b["train"], b["val"])
    table = mr.final_losses(stored)
    assert all(not np.isnan(row).any() for row in table.values())
    for row in table.values():
        i = int(np.argmin(row))
        assert 0 < i < len(mr.LOG10_LRS) - 1, "an optimum at the grid's edge"
    best = mr.best_rates(stored)
    assert set(best) == {(p, b, w) for p in mr.PARAMS for b in mr.BUDGETS
                         for w in mr.WIDTHS}
