"""The stored evidence of the chapter "Finding the learning rate in practice"
(experiments/lr.jsonl) is complete and reproducible, and its schedules do what they say."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import pytest
import torch

from optedu.choosing import contestants, lr_experiments as lx, runner, trial, workloads
from optedu.instruments.reproducible import pin_cpu_kernels

FULL = os.environ.get("OPTEDU_TESTS", "quick") == "full"


def _records():
    records = runner.load(lx.PATH)
    assert records, f"{lx.PATH} holds no runs: make experiments-lr"
    return records


def test_the_stored_runs_are_complete():
    records = _records()
    keys = [lx.key_of(r) for r in records]
    assert len(keys) == len(set(keys)), "a run is stored twice"
    sweep, finals = lx.schedule_jobs(records)
    expected = {j.key for j in lx.range_jobs() + sweep + finals}
    assert set(keys) == expected, (sorted(expected - set(keys), key=str)[:3],
                                   sorted(set(keys) - expected, key=str)[:3])
    assert len(finals) == 2 * len(sweep) // len(lx.SWEEP)
    jobs = {j.key: j for j in lx.range_jobs() + sweep + finals}
    for r in records:
        assert r["hyper"] == {k: float(f"{v:.6g}") for k, v in jobs[lx.key_of(r)].hyper.items()}
    meta = json.loads(lx.PATH.with_suffix(".meta.json").read_text())
    assert meta["runs"] == len(records) and meta["versions"]["torch"].startswith("2.13.0")


RERUN = """
import json, sys
from optedu.choosing import lr_experiments as lx, runner
jobs = [lx.Job(**j) for j in json.loads(sys.stdin.read())]
runner._init_worker(())
print(json.dumps([lx.execute(j) for j in jobs]))
"""


def _job(r, **change):
    job = {k: r[k] for k in ("kind", "workload", "contestant", "schedule", "point", "seed")}
    jobs = {j.key: j for j in lx.range_jobs() + lx.schedule_jobs(_records())[0]
            + lx.schedule_jobs(_records())[1]}
    job["hyper"] = dict(jobs[lx.key_of(r)].hyper)      # the exact rate, not the stored digits
    job["hyper"].update(change)
    return job


# a fresh pinned process re-runs stored runs (8 s); the quick tier re-runs the grid's
# (test_stored.py), through the same training loop
@pytest.mark.full
def test_a_sample_of_stored_runs_reproduces():
    records = _records()
    rng = random.Random(0)
    ranges = [r for r in records if r["kind"] == "range"]
    schedules = [r for r in records if r["kind"] == "schedule"
                 and workloads.get(r["workload"]).name != "char_transformer"]
    sample = rng.sample(ranges, 3 if FULL else 1) + rng.sample(schedules, 6 if FULL else 2)
    # the check can fail: the first sampled schedule run with its rate 0.1 % higher
    nudged = _job(sample[-1], lr=_job(sample[-1])["hyper"]["lr"] * 1.001)
    env = dict(os.environ)
    pin_cpu_kernels(env)
    out = subprocess.run([sys.executable, "-c", RERUN],
                         input=json.dumps([_job(r) for r in sample] + [nudged]), env=env,
                         capture_output=True, text=True, check=True, timeout=600)
    *again, moved = json.loads(out.stdout)
    assert moved["train_loss"] != sample[-1]["train_loss"], "the comparison cannot fail"
    for stored, rerun in zip(sample, again):
        fields = ("lrs", "losses", "smoothed", "diverged", "suggestions") \
            if stored["kind"] == "range" else ("evals", "train_loss", "diverged", "steps")
        for f in fields:
            assert rerun[f] == stored[f], (lx.key_of(stored), f)


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
