"""The stored grids are complete and reproducible: a sample of their runs, re-run in a fresh
process with the runner's settings (one thread, CPU kernels capped at AVX2), gives the same
validation and training curves to the six digits stored.

The quick tier re-runs 1 run of each grid; the full tier (``make test``) 12. A stored run
that no longer reproduces means the workload, the contestant or the training loop changed
since the grid ran: run ``make experiments`` again (it resumes nothing then: delete the file).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import numpy
import pytest

from optedu.choosing import contestants, runner, search, workloads
from optedu.instruments import store
from optedu.instruments.reproducible import pin_cpu_kernels

FULL = os.environ.get("OPTEDU_TESTS", "quick") == "full"
GRIDS = ["quick", "full"]


def _records(grid):
    path = store.folder() / f"results-{grid}.jsonl"
    records = store.load(path)
    assert records, f"{path} holds no runs: make experiments"
    return records


@pytest.mark.parametrize("grid", GRIDS)
def test_the_stored_grid_is_complete(grid):
    """Every run the grid asks for is stored, once, with its hyperparameters as drawn."""
    spec = runner.GRIDS[grid]
    records = _records(grid)
    keys = [runner.key_of(r) for r in records]
    assert len(keys) == len(set(keys)), "a run is stored twice"
    first, second = runner.jobs_for(spec, records)
    expected = {j.key for j in first} | {j.key for j in second}
    assert set(keys) == expected, (sorted(expected - set(keys))[:3], sorted(set(keys) - expected)[:3])
    assert second or not spec.final_seeds
    drawn = {}                                  # each contestant's trials, drawn once
    for r in records:
        c = contestants.get(r["contestant"])
        if r["trial"] is None:
            hyper = c.defaults
        else:
            if c.name not in drawn:
                drawn[c.name] = search.trials(c.space, spec.trials)
            hyper = drawn[c.name][r["trial"]]
        assert r["hyper"] == {k: float(f"{v:.6g}") for k, v in hyper.items()}
        assert r["steps"] == workloads.get(r["workload"]).steps or r["diverged"]
    meta = json.loads((store.folder() / f"results-{grid}.meta.json").read_text())
    assert meta["runs"] == len(records) and meta["versions"]["torch"].startswith("2.13.0")


RERUN = """
import json, sys
from optedu.choosing import runner
jobs = [runner.Job(**j) for j in json.loads(sys.stdin.read())]
runner._init_worker(())
print(json.dumps([runner.execute(j) for j in jobs]))
"""


@pytest.mark.full  # re-runs stored runs in a fresh pinned process, about 5 s
@pytest.mark.parametrize("grid", ["full", "quick"])
def test_a_sample_of_stored_runs_reproduces(grid):
    records = _records(grid)
    sample = random.Random(0).sample(records, 12)
    jobs = [{"ruleset": r["ruleset"], "workload": r["workload"], "contestant": r["contestant"],
             "trial": r["trial"], "seed": r["seed"], "hyper": r["hyper"]} for r in sample]
    # the stored hyperparameters are rounded to 6 digits: re-run with the exact draw
    for job in jobs:
        c = contestants.get(job["contestant"])
        job["hyper"] = dict(c.defaults) if job["trial"] is None else \
            search.trials(c.space, runner.GRIDS[grid].trials)[job["trial"]]
    # the check can fail: AdamW's first trial on the logistic regression again, its learning
    # rate one float32 ulp higher (some runs absorb so small a change: a sign-based rule's,
    # an error-rate curve)
    probe = next(r for r in records if (r["ruleset"], r["workload"], r["contestant"],
                                        r["trial"], r["seed"])
                 == ("external", "digits_logreg", "adamw", 0, 0))
    nudged = {k: probe[k] for k in ("ruleset", "workload", "contestant", "trial", "seed")}
    lr = numpy.float32(search.trials(contestants.get("adamw").space, 1)[0]["lr"])
    nudged["hyper"] = {**search.trials(contestants.get("adamw").space, 1)[0],
                       "lr": float(numpy.nextafter(lr, numpy.float32(numpy.inf)))}
    env = dict(os.environ)
    pin_cpu_kernels(env)
    out = subprocess.run([sys.executable, "-c", RERUN], input=json.dumps(jobs + [nudged]), env=env,
                         capture_output=True, text=True, check=True, timeout=600)
    *reruns, moved = json.loads(out.stdout)
    assert moved["train_loss"] != probe["train_loss"], \
        "a learning rate one ulp off gave the same curve: the comparison cannot fail"
    for stored, again in zip(sample, reruns):
        what = (stored["ruleset"], stored["workload"], stored["contestant"], stored["trial"],
                stored["seed"])
        assert again["evals"] == stored["evals"], what
        assert again["train_loss"] == stored["train_loss"], what
        assert (again["diverged"], again["state_bytes"], again["steps"]) == \
            (stored["diverged"], stored["state_bytes"], stored["steps"]), what
