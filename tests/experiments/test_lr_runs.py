"""The stored evidence of the chapter "Finding the learning rate in practice"
(experiments/lr.jsonl): each run's hyperparameters are its plan's, and its schedules do what
they say (tests/experiments/test_grids.py checks the runs complete and reproduces a sample)."""

from __future__ import annotations

import pytest
import torch

from optedu.choosing import contestants, trial, workloads
from optedu.experiments import lr as lx


def _records():
    return lx.read()


def test_the_stored_runs_hold_their_plans_hyperparameters():
    records = _records()
    sweep, finals = lx.schedule_jobs(records)
    assert len(finals) == 2 * len(sweep) // len(lx.SWEEP)
    jobs = {j.key: j for j in lx.range_jobs() + sweep + finals}
    for r in records:
        assert r["hyper"] == {k: float(f"{v:.6g}") for k, v in jobs[lx.KEY.of(r)].hyper.items()}


def test_cosine_is_the_benchmarks_run():
    w, c = workloads.get("digits_logreg"), contestants.get("nesterov")
    hyper = {**c.defaults, "lr": 0.3}
    a, b = trial.run(w, c, hyper, 1), lx.run_schedule(w, c, hyper, 1, "cosine")
    assert (a.evals, a.train_loss) == (b.evals, b.train_loss)


def _rates(schedule, contestant="nesterov", lr=0.1):
    """The rate and momentum of every step of a run on digits_logreg."""
    w, c = workloads.get("digits_logreg"), contestants.get(contestant)
    model = w.model(0)
    opts = c.build(model, {**c.defaults, "lr": lr}, w.head)
    driver = lx._Driven(schedule, opts, w.steps)
    rates, momenta = [], []
    for t in range(w.steps):
        rates.append(opts[0].param_groups[0]["lr"])
        momenta.append(opts[0].param_groups[0].get("momentum"))
        opts[0].step()                           # no gradients: nothing moves
        driver.after_step(t)
        if (t + 1) % w.eval_every == 0:
            driver.after_eval(t + 1, 1.0)        # a metric that never improves
    return rates, momenta


def test_onecycle_runs_torchs_schedule():
    rates, momenta = _rates("onecycle")
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9,
                          nesterov=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=300)
    expected, expected_m = [], []
    for _ in range(300):
        expected.append(opt.param_groups[0]["lr"])
        expected_m.append(opt.param_groups[0]["momentum"])
        opt.step()
        sched.step()
    assert rates == pytest.approx(expected, rel=1e-12, abs=0)
    assert momenta == pytest.approx(expected_m, rel=1e-12)
    fixed_rates, fixed_m = _rates("onecycle_fixed")
    assert fixed_rates == rates and set(fixed_m) == {0.9}


def test_plateau_warms_up_then_halves_after_three_flat_evaluations():
    rates, _ = _rates("plateau")
    warmup = round(0.05 * 300)                   # 15 steps
    assert rates[:warmup] == pytest.approx([0.1 * (t + 1) / (warmup + 1)
                                            for t in range(warmup)])
    assert rates[warmup] == 0.1
    # evaluations at 20, 30, ...: the first sets the best, three more without improvement
    # (patience 2) cut the rate after the one at step 50
    assert set(rates[warmup:50]) == {0.1} and rates[50] == 0.05


def test_bad_schedule():
    w, c = workloads.get("digits_logreg"), contestants.get("adamw")
    with pytest.raises(ValueError, match="Invalid schedule: 'step'"):
        lx.run_schedule(w, c, c.defaults, 0, "step")
