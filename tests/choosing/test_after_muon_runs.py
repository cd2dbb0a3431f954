"""The "After Muon" experiment (optedu.choosing.after_muon_runs): its plan, its stored runs
complete, and a sample of them reproduced exactly in a fresh process with the runner's settings
(one thread, CPU kernels capped at AVX2)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import pytest
import torch

from optedu.choosing import after_muon_runs as am
from optedu.choosing import runner
from optedu.instruments.reproducible import pin_cpu_kernels
from optedu.optim.adam import AdamW
from optedu.optim.muon import POLAR_EXPRESS, Muon
from optedu.optim.normuon import NorMuon

FULL = os.environ.get("OPTEDU_TESTS", "quick") == "full"


@pytest.fixture(scope="module")
def stored():
    records = runner.load(am.PATH)
    assert records, f"{am.PATH} holds no runs: make experiments-after-muon"
    return records


def _model():
    return torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))


def test_the_plan():
    keys = [j.key for j in am.jobs()]
    assert len(keys) == len(set(keys))
    assert set(keys) == {(o, lr, s) for o in am.OPTIMIZERS for lr in am.RATES
                         for s in am.SEEDS}
    hp = {"lr": 1e-3, "weight_decay": 0.0}
    built = {name: [type(o) for o in am.contestant(name).build(_model(), hp, "2")]
             for name in am.OPTIMIZERS}
    assert built == {"adamw": [AdamW], "muon": [Muon, AdamW], "muon_pe": [Muon, AdamW],
                     "normuon": [NorMuon]}
    pe = am.contestant("muon_pe").build(_model(), hp, "2")[0]
    assert pe.param_groups[0]["ns_coefficients"] == POLAR_EXPRESS
    with pytest.raises(ValueError, match="Invalid optimizer: 'sgd'"):
        am.contestant("sgd")


def test_the_stored_experiment_is_complete(stored):
    keys = [am.key_of(r) for r in stored]
    assert len(keys) == len(set(keys)), "a run is stored twice"
    assert set(keys) == {j.key for j in am.jobs()}
    for r in stored:
        assert r["workload"] == am.WORKLOAD and r["steps"] == 200
        assert r["evals"][-1][0] == 200
        assert all(v is not None for _, v in r["evals"]) or r["diverged"]
    meta = json.loads(am.PATH.with_suffix(".meta.json").read_text())
    assert meta["runs"] == len(stored) and meta["versions"]["torch"].startswith("2.13.0")


RERUN = """
import json, sys
from optedu.choosing import after_muon_runs as am
print(json.dumps([am.execute(am.Job(**job)) for job in json.loads(sys.stdin.read())]))
"""


@pytest.mark.skipif(not FULL, reason="full tier (make test): a fresh pinned process "
                    "re-runs stored runs")
def test_a_sample_of_stored_runs_reproduces(stored):
    rng = random.Random(0)
    sample = [rng.choice([r for r in stored if r["optimizer"] == name])
              for name in am.OPTIMIZERS]
    jobs = [{k: r[k] for k in ("optimizer", "lr", "seed")} for r in sample]
    env = dict(os.environ)
    pin_cpu_kernels(env)
    out = subprocess.run([sys.executable, "-c", RERUN], input=json.dumps(jobs), env=env,
                         capture_output=True, text=True, check=True, timeout=600)
    for r, again in zip(sample, json.loads(out.stdout)):
        for k in ("evals", "train_loss", "state_bytes", "diverged"):
            assert again[k] == r[k], (am.key_of(r), k)
