"""The sweeps (optedu.choosing.sweeps): their grids, the stored runs complete, a sample of
them re-run exactly (as tests/choosing/test_stored.py does for the grids)."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys

import numpy
import pytest

from optedu.choosing import contestants, runner, sweeps
from optedu.instruments import store
from optedu.instruments.reproducible import pin_cpu_kernels

FULL = os.environ.get("OPTEDU_TESTS", "quick") == "full"


def test_half_decades():
    assert sweeps.half_decades(1e-3, 1e-1) == [10.0 ** (k / 2) for k in range(-6, -1)]
    assert sweeps.half_decades(2e-3, 5e-3) == [10.0 ** -2.5]
    assert sweeps.half_decades(4e-3, 5e-3) == []
    with pytest.raises(ValueError, match=r"Invalid range: \(0\.1, 0\.01\)"):
        sweeps.half_decades(0.1, 0.01)


@pytest.mark.parametrize("name", sweeps.SWEEPS["lr"].contestants)
def test_the_lr_sweep_spans_the_search_range_a_decade_beyond(name):
    c = contestants.get(name)
    points = sweeps.lr_points(c)
    rates = [p["lr"] for p in points]
    low, high = c.space["lr"]
    assert rates == sorted(rates) and len(rates) >= 8
    assert rates[0] <= low and rates[-1] >= high
    assert low / 10 <= rates[0] * (1 + 1e-9) and rates[-1] <= high * 10 * (1 + 1e-9)
    for p in points:   # only the rate moves
        assert {k: v for k, v in p.items() if k != "lr"} == \
            {k: v for k, v in c.defaults.items() if k != "lr"}


def test_the_independent_decay_shrinks_by_lambda_whatever_the_rate():
    c = contestants.get("adamw")
    points = sweeps.SWEEPS["lr_wd_independent"].points(c)
    decays = sweeps.LR_WD_DECAYS["adamw_independent"]
    assert len(points) == len(sweeps.LR_WD_RATES) * len(decays)
    for i, p in enumerate(points):
        assert p["lr"] == sweeps.LR_WD_RATES[i // len(decays)]
        assert math.isclose(p["lr"] * p["weight_decay"], decays[i % len(decays)],
                            rel_tol=1e-12)


def test_jobs_are_keyed_once():
    for sweep in sweeps.SWEEPS.values():
        keys = [j.key for j in sweeps.jobs(sweep)]
        assert len(keys) == len(set(keys))
        assert {k[0] for k in keys} == {sweep.ruleset}
    with pytest.raises(ValueError, match="Invalid sweep: 'nope'"):
        sweeps.get("nope")


def _expected():
    return {j.key: j for sweep in sweeps.SWEEPS.values() for j in sweeps.jobs(sweep)}


def test_the_stored_sweeps_are_complete():
    records = sweeps.read()
    keys = [runner.key_of(r) for r in records]
    assert len(keys) == len(set(keys)), "a run is stored twice"
    expected = _expected()
    assert set(keys) == set(expected), (sorted(set(expected) - set(keys))[:3],
                                        sorted(set(keys) - set(expected))[:3])
    for r in records:
        job = expected[runner.key_of(r)]
        assert r["hyper"] == {k: float(f"{v:.6g}") for k, v in job.hyper.items()}
    meta = json.loads((store.folder() / sweeps.FILE).with_suffix(".meta.json").read_text())
    assert meta["runs"] == len(records) and meta["versions"]["torch"].startswith("2.13.0")
    assert meta["machine"]["kernels"] == "avx2"


RERUN = """
import json, sys
from optedu.choosing import runner
jobs = [runner.Job(**j) for j in json.loads(sys.stdin.read())]
runner._init_worker(())
print(json.dumps([runner.execute(j) for j in jobs]))
"""


# a fresh pinned process re-runs stored runs (5 s); the quick tier re-runs the grid's
# (test_stored.py), through the same training loop
@pytest.mark.full
def test_a_sample_of_stored_sweep_runs_reproduces():
    records = sweeps.read()
    expected = _expected()
    sample = random.Random(1).sample(records, 8 if FULL else 1)
    jobs = []
    for r in sample:   # the exact grid point (the stored one is rounded to six digits)
        job = expected[runner.key_of(r)]
        jobs.append({"ruleset": job.ruleset, "workload": job.workload,
                     "contestant": job.contestant, "trial": job.trial, "seed": job.seed,
                     "hyper": job.hyper})
    # the check can fail: AdamW at 10⁻³ on the logistic regression again, its rate one
    # float32 ulp higher
    key = ("sweep-lr", "digits_logreg", "adamw", 3, 0)
    probe = next(r for r in records if runner.key_of(r) == key)
    nudged = {k: v for k, v in zip(("ruleset", "workload", "contestant", "trial", "seed"),
                                   key)}
    hyper = expected[key].hyper
    assert hyper["lr"] == 1e-3
    lr = numpy.float32(hyper["lr"])
    nudged["hyper"] = {**hyper, "lr": float(numpy.nextafter(lr, numpy.float32(numpy.inf)))}
    env = dict(os.environ)
    pin_cpu_kernels(env)
    out = subprocess.run([sys.executable, "-c", RERUN], input=json.dumps(jobs + [nudged]),
                         env=env, capture_output=True, text=True, check=True, timeout=600)
    *reruns, moved = json.loads(out.stdout)
    assert moved["train_loss"] != probe["train_loss"], \
        "a learning rate one ulp off gave the same curve: the comparison cannot fail"
    for stored, again in zip(sample, reruns):
        what = runner.key_of(stored)
        assert again["evals"] == stored["evals"], what
        assert again["train_loss"] == stored["train_loss"], what
        assert (again["diverged"], again["state_bytes"], again["steps"]) == \
            (stored["diverged"], stored["state_bytes"], stored["steps"]), what


def test_basin_on_a_hand_made_curve():
    rates = [1e-4, 10 ** -3.5, 1e-3, 10 ** -2.5, 1e-2, 10 ** -1.5]
    values = [2.0, 1.2, 1.0, 1.25, 1.3, math.inf]
    b = sweeps.basin(rates, values)
    assert b["best_lr"] == 1e-3 and b["best"] == 1.0
    assert (b["low"], b["high"]) == (10 ** -3.5, 10 ** -2.5)   # 1.3 > 1.25: outside
    assert math.isclose(b["width"], 1.0)
    assert b["above"] == 1.3
    wide = sweeps.basin(rates, values, slack=0.5)
    assert wide["high"] == 1e-2 and math.isinf(wide["above"])   # then a divergence
    assert sweeps.basin(rates[:3], [3.0, 2.0, 1.0])["above"] is None   # the grid ends
    alone = sweeps.basin(rates, [5.0, 5.0, 1.0, 5.0, 5.0, 5.0])
    assert alone["width"] == 0.0
    assert sweeps.basin(rates[:2], [math.inf, math.inf])["best_lr"] is None
    with pytest.raises(ValueError, match="Invalid curve: 2 rates, 1 values"):
        sweeps.basin(rates[:2], [1.0])
    with pytest.raises(ValueError, match="Invalid slack: -0.1"):
        sweeps.basin(rates, values, slack=-0.1)


def test_final_is_infinite_for_a_diverged_run():
    assert sweeps.final({"evals": [[10, 0.5], [20, 0.25]], "diverged": False}) == 0.25
    assert math.isinf(sweeps.final({"evals": [[10, 0.5], [12, None]], "diverged": True}))
    assert math.isinf(sweeps.final({"evals": [], "diverged": False}))
