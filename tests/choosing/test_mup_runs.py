"""The µP width experiment (optedu.choosing.mup_runs): its plan, the two parametrisations the
same run at the base width, µP's rates on the hidden weight, the optimum read off a curve,
the stored runs complete, and a sample of them reproduced exactly in a fresh process with the
runner's settings (one thread, CPU kernels capped at AVX2)."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys

import numpy as np
import pytest

from optedu.choosing import mup_runs as mr
from optedu.choosing import runner
from optedu.instruments.reproducible import pin_cpu_kernels

FULL = os.environ.get("OPTEDU_TESTS", "quick") == "full"


@pytest.fixture(scope="module")
def stored():
    records = runner.load(mr.PATH)
    assert records, f"{mr.PATH} holds no runs: make experiments-mup"
    return records


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
    with pytest.raises(ValueError, match="Invalid jobs: 2"):
        mr.main(["--jobs", "2"])


def test_the_stored_experiment_is_complete(stored):
    """Every run of the grid is stored, once, with its curve; the base width's two
    parametrisations agree; the optimum is inside the grid for every width and seed."""
    keys = [mr.key_of(r) for r in stored]
    assert len(keys) == len(set(keys)), "a run is stored twice"
    assert set(keys) == {j.key for j in mr.jobs()}
    for r in stored:
        assert r["lr"] == float(f"{10 ** r['log10_lr']:.6g}")
        assert [s for s, _ in r["train"]][-1] == r["steps"] or r["diverged"]
    by_key = {mr.key_of(r): r for r in stored}
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
    meta = json.loads(mr.PATH.with_suffix(".meta.json").read_text())
    assert meta["runs"] == len(stored) and meta["versions"]["torch"].startswith("2.13.0")


RERUN = """
import json, sys
from optedu.choosing import mup_runs as mr
print(json.dumps([mr.execute(mr.Job(**job)) for job in json.loads(sys.stdin.read())]))
"""


@pytest.mark.skipif(not FULL, reason="full tier (make test): a fresh pinned process "
                    "re-runs stored runs (about a minute)")
def test_a_sample_of_stored_runs_reproduces(stored):
    rng = random.Random(0)
    narrow = [r for r in stored if r["width"] <= 256]
    wide = [r for r in stored if r["width"] in (512, 1024)]
    sample = rng.sample(narrow, 4) + rng.sample(wide, 2)
    jobs = [{k: r[k] for k in ("param", "steps", "width", "log10_lr", "seed")}
            for r in sample]
    env = dict(os.environ)
    pin_cpu_kernels(env)
    out = subprocess.run([sys.executable, "-c", RERUN], input=json.dumps(jobs), env=env,
                         capture_output=True, text=True, check=True, timeout=900)
    for r, again in zip(sample, json.loads(out.stdout)):
        for k in ("lr", "train", "val", "diverged"):
            assert again[k] == r[k], (mr.key_of(r), k)
        assert math.isfinite(again["seconds"])
