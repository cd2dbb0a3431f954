"""The WSD experiment (optedu.experiments.wsd): its plan and schedules, a branch equal to a
separate WSD run step for step, and what the stored runs record (tests/experiments/test_grids.py
checks the stored runs complete and re-runs a sample)."""

from __future__ import annotations

import math
import os

import pytest

from optedu.choosing import contestants, trial, workloads
from optedu.choosing.contestants import Training
from optedu.experiments import wsd as wd
from optedu.instruments import store

FULL = os.environ.get("OPTEDU_TESTS", "quick") == "full"


@pytest.fixture(scope="module")
def stored():
    return wd.read()


def test_the_plan_branches_every_budget_from_one_stable_run():
    rows = wd.branches(300)
    assert [r["start"] for r in rows] == sorted(r["start"] for r in rows)
    for b in wd.BUDGETS:
        for shape in wd.SHAPES:
            (row,) = [r for r in rows if (r["budget"], r["fraction"], r["shape"])
                      == (b, wd.FRACTION, shape)]
            assert row["steps"] == 300 * b and row["start"] == 300 * b - 60 * b
    swept = sorted(r["fraction"] for r in rows
                   if r["budget"] == wd.SWEEP_BUDGET and r["shape"] == "1-sqrt")
    assert swept == sorted(wd.SWEEP)
    assert wd.warmup(300) == 15 and wd.ema_window(300) == 60
    spent = wd.steps_spent(300)
    assert spent == {"cosine": 2100, "wsd_separate": 2100, "wsd_branched": 960 + 420}
    for bad in (0, -3):
        with pytest.raises(ValueError, match=f"Invalid base: {bad}"):
            wd.branches(bad)


def test_schedules_reach_zero_and_hold_the_peak():
    cos = wd.cosine_schedule(100, 5)
    assert cos(0) == pytest.approx(1 / 6) and cos(5) == 1.0 and cos(100) == 0.0
    wsd = wd.wsd_schedule(100, 80, 5, "1-sqrt")
    assert [wsd(t) for t in (5, 40, 79, 80)] == [1.0] * 4
    assert wsd(90) == pytest.approx(1 - math.sqrt(0.5)) and wsd(100) == 0.0
    with pytest.raises(ValueError, match="Invalid start: 100"):
        wd.wsd_schedule(100, 100, 5, "linear")
    with pytest.raises(ValueError, match="Invalid start: 3"):
        wd.wsd_schedule(100, 3, 5, "linear")


@pytest.mark.full  # trains the branch and the run
def test_a_branch_is_the_separate_wsd_run(monkeypatch):
    """The stable run's state, branched at T − D, decays to exactly the separate run's final
    validation loss: the point of WSD's "one run, many budgets"."""
    monkeypatch.setattr(wd, "BUDGETS", (1,))
    monkeypatch.setattr(wd, "SWEEP", ())
    w, name = workloads.get("digits_mlp"), "digits_mlp"
    record = wd.wsd_run(name, 0)
    (branch,) = [b for b in record["branches"] if b["shape"] == "1-sqrt"]
    warm = wd.warmup(w.steps)
    separate = trial.run(w, contestants.get(wd.CONTESTANT), wd.tuned(name), 0,
                         steps=w.steps, schedule=lambda opts, steps: Training(
                             opts, wd.wsd_schedule(steps, branch["start"], warm, "1-sqrt")))
    assert branch["evals"] == [[s, store.rounded(v)] for s, v in separate.evals
                               if s > branch["start"]]
    # and the stable run's curve is the separate run's up to the branch point
    assert [e for e in record["stable"]["evals"] if e[0] % w.eval_every == 0] == \
        [[s, store.rounded(v)] for s, v in separate.evals if s <= branch["start"]]


def test_a_bad_kind_or_job_count_raises():
    with pytest.raises(ValueError, match="Invalid kind: 'step'"):
        wd.execute(wd.KEY("step", "digits_mlp", None, 0))


def test_the_stored_runs(stored):
    """Every run of the grid is stored, once, with its whole plan and curves."""
    for r in stored:
        w = workloads.get(r["workload"])
        assert r["hyper"] == {k: float(f"{v:.6g}") for k, v in wd.tuned(w.name).items()}
        if r["kind"] == "cosine":
            assert r["evals"][-1][0] == r["budget"] * w.steps
        elif r["kind"] == "peak":
            assert sorted((q["factor"], q["schedule"]) for q in r["runs"]) == sorted(
                (f, s) for f in wd.PEAK_FACTORS for s in ("cosine", "1-sqrt"))
            assert all(q["evals"][-1][0] == r["budget"] * w.steps for q in r["runs"])
        else:
            plan = wd.branches(w.steps)
            assert [{k: b[k] for k in plan[0]} for b in r["branches"]] == plan
            for b in r["branches"]:
                assert b["evals"][-1][0] == b["steps"]
            last = max(b["start"] for b in plan)
            assert r["stable"]["evals"][-1][0] == last
        curves = ([r["evals"]] if r["kind"] == "cosine" else
                  [q["evals"] for q in r["runs"]] if r["kind"] == "peak" else
                  [r["stable"]["evals"], r["stable"]["ema"]]
                  + [b["evals"] for b in r["branches"]])
        assert all(v is not None for c in curves for _, v in c)   # nothing diverged
    table = wd.finals(stored)
    assert all(set(v) == set(wd.SEEDS) for v in table.values())
    peaks = wd.peaks(stored)
    assert len(peaks) == len(wd.PEAK_BUDGETS) * 2 * (len(wd.PEAK_FACTORS) + 1)
    assert all(set(v) == set(wd.SEEDS) for v in peaks.values())
