"""The two-momenta experiment (optedu.choosing.two_momenta_runs): its plan, its stored runs complete,
and a sample of them reproduced exactly in a fresh pinned process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from optedu.choosing import two_momenta_runs as tm
from optedu.instruments.reproducible import pin_cpu_kernels

FULL = os.environ.get("OPTEDU_TESTS", "quick") == "full"


@pytest.fixture(scope="module")
def stored():
    records = tm.runner.load(tm.PATH)
    assert records, f"{tm.PATH} holds no runs: make experiments-two-momenta"
    return records


def test_the_grids_have_the_same_size_and_a_bad_job_raises():
    assert len({len(g) for g in tm.GRIDS.values()}) == 1
    with pytest.raises(ValueError, match="Invalid contestant: 'sgd'"):
        tm.execute(tm.Job("sgd", 0.1, 0))
    with pytest.raises(ValueError, match="Invalid jobs: 2"):
        tm.main(["--jobs", "2"])


def test_the_stored_experiment_is_complete(stored):
    keys = [tm.key_of(r) for r in stored]
    assert len(keys) == len(set(keys)), "a run is stored twice"
    assert set(keys) == {j.key for j in tm.jobs()}
    assert all(r["evals"][-1][0] == r["steps"] == 200 and not r["diverged"] for r in stored)
    for c, grid in tm.GRIDS.items():   # tuned: the best rate is inside each grid
        assert grid[0] < tm.best(stored, c) < grid[-1]
    meta = json.loads(tm.PATH.with_suffix(".meta.json").read_text())
    assert meta["runs"] == len(stored) and meta["versions"]["torch"].startswith("2.13.0")


RERUN = """
import json, sys
from optedu.choosing import two_momenta_runs as tm
print(json.dumps([tm.execute(tm.Job(**job)) for job in json.loads(sys.stdin.read())]))
"""


@pytest.mark.skipif(not FULL, reason="full tier: a fresh pinned process re-runs stored runs")
def test_a_sample_of_stored_runs_reproduces(stored):
    sample = [r for r in stored if (r["contestant"], r["lr"], r["seed"]) in
              {("adamw", 3e-3, 1), ("adopt", 3e-3, 2), ("ademamix", 1e-3, 0)}]
    jobs = [{k: r[k] for k in ("contestant", "lr", "seed")} for r in sample]
    env = dict(os.environ)
    pin_cpu_kernels(env)
    out = subprocess.run([sys.executable, "-c", RERUN], input=json.dumps(jobs), env=env,
                         capture_output=True, text=True, check=True, timeout=600)
    for r, again in zip(sample, json.loads(out.stdout)):
        for k in ("hyper", "evals", "train_loss", "state_bytes"):
            assert again[k] == r[k], (tm.key_of(r), k)
