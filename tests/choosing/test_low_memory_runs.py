"""The low-memory comparison (optedu.choosing.low_memory_runs): its plan, its stored runs
complete, and a sample of them reproduced exactly in a fresh pinned process."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys

import pytest

from optedu.choosing import low_memory_runs as lm
from optedu.choosing import runner
from optedu.instruments.reproducible import pin_cpu_kernels

FULL = os.environ.get("OPTEDU_TESTS", "quick") == "full"


@pytest.fixture(scope="module")
def stored():
    records = runner.load(lm.PATH)
    assert records, f"{lm.PATH} holds no runs: make experiments-low-memory"
    return records


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


def test_the_stored_experiment_is_complete(stored):
    keys = [lm.key_of(r) for r in stored]
    assert len(keys) == len(set(keys)), "a run is stored twice"
    assert set(keys) == {j.key for j in lm.jobs(stored)}
    assert len(keys) == len(lm.CONTESTANTS) * (len(lm.LRS) + 2)
    for r in stored:   # 200 steps, or stopped at a non-finite loss with an infinite final
        assert r["evals"][-1][0] == 200 or r["final"] == math.inf
    meta = json.loads(lm.PATH.with_suffix(".meta.json").read_text())
    assert meta["runs"] == len(stored) and meta["versions"]["torch"].startswith("2.13.0")


RERUN = """
import json, sys
from optedu.choosing import low_memory_runs as lm
print(json.dumps([lm.execute(lm.Job(**job)) for job in json.loads(sys.stdin.read())]))
"""


@pytest.mark.skipif(not FULL, reason="full tier (make test): a fresh pinned process "
                    "re-runs stored runs (about 10 s)")
def test_a_sample_of_stored_runs_reproduces(stored):
    sample = random.Random(0).sample(stored, 4)
    jobs = [{k: r[k] for k in ("contestant", "lr", "seed")} for r in sample]
    env = dict(os.environ)
    pin_cpu_kernels(env)
    out = subprocess.run([sys.executable, "-c", RERUN], input=json.dumps(jobs), env=env,
                         capture_output=True, text=True, check=True, timeout=600)
    for r, again in zip(sample, json.loads(out.stdout)):
        assert again["evals"] == r["evals"], lm.key_of(r)
        assert again["final"] == r["final"]
