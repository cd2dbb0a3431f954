"""The SOAP experiment (optedu.choosing.soap_runs): its plan, its stored runs complete, and a
sample of them reproduced exactly in a fresh process with the runner's settings (one thread,
CPU kernels capped at AVX2)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import pytest

from optedu.choosing import runner, soap_runs as sr
from optedu.instruments.reproducible import pin_cpu_kernels
from optedu.optim.adam import AdamW
from optedu.optim.soap import SOAP
from optedu.optim.variants.soap import SOAPEigh

FULL = os.environ.get("OPTEDU_TESTS", "quick") == "full"


@pytest.fixture(scope="module")
def stored():
    records = runner.load(sr.PATH)
    assert records, f"{sr.PATH} holds no runs: make experiments-soap"
    return records


def test_the_plan():
    keys = [j.key for j in sr.jobs()]
    assert len(keys) == len(set(keys))
    for lr in sr.RATES:                            # the same grid for both, three seeds
        for name, k in (("soap", sr.DEFAULT_K), ("adamw", None)):
            assert {s for o, r, kk, s in keys if (o, r, kk) == (name, lr, k)} == set(sr.SEEDS)
    for lr in sr.PERIOD_RATES:
        assert {(k, s) for o, r, k, s in keys if (o, r) == ("soap", lr)} >= {
            (k, s) for k in sr.PERIODS for s in sr.SEEDS}
        assert {(k, s) for o, r, k, s in keys if (o, r) == ("soap_eigh", lr)} == {
            (k, s) for k in sr.EIGH_PERIODS for s in sr.SEEDS}
    classes = {name: type(sr.contestant(name, 10).build(_model(), {"lr": 1e-3,
                                                                    "weight_decay": 0.0},
                                                           None)[0])
               for name in ("soap", "soap_eigh", "adamw")}
    assert classes == {"soap": SOAP, "soap_eigh": SOAPEigh, "adamw": AdamW}
    with pytest.raises(ValueError, match="Invalid optimizer: 'sgd'"):
        sr.contestant("sgd")
    with pytest.raises(ValueError, match="Invalid jobs: 2"):
        sr.main(["--jobs", "2"])


def _model():
    import torch
    return torch.nn.Linear(3, 2)


def test_the_stored_experiment_is_complete(stored):
    keys = [sr.key_of(r) for r in stored]
    assert len(keys) == len(set(keys)), "a run is stored twice"
    assert set(keys) == {j.key for j in sr.jobs()}
    for r in stored:
        assert r["workload"] == sr.WORKLOAD and r["steps"] == 200
        assert r["evals"][-1][0] == 200 and not r["diverged"]
        assert all(v is not None for _, v in r["evals"])
    meta = json.loads(sr.PATH.with_suffix(".meta.json").read_text())
    assert meta["runs"] == len(stored) and meta["versions"]["torch"].startswith("2.13.0")


RERUN = """
import json, sys
from optedu.choosing import soap_runs as sr
print(json.dumps([sr.execute(sr.Job(**job)) for job in json.loads(sys.stdin.read())]))
"""


@pytest.mark.skipif(not FULL, reason="full tier (make test): a fresh pinned process "
                    "re-runs stored runs")
def test_a_sample_of_stored_runs_reproduces(stored):
    rng = random.Random(0)
    sample = [rng.choice([r for r in stored if r["optimizer"] == name])
              for name in ("soap", "soap_eigh", "adamw")]
    jobs = [{k: r[k] for k in ("optimizer", "lr", "k", "seed")} for r in sample]
    env = dict(os.environ)
    pin_cpu_kernels(env)
    out = subprocess.run([sys.executable, "-c", RERUN], input=json.dumps(jobs), env=env,
                         capture_output=True, text=True, check=True, timeout=600)
    for r, again in zip(sample, json.loads(out.stdout)):
        for k in ("evals", "train_loss", "state_bytes", "diverged"):
            assert again[k] == r[k], (sr.key_of(r), k)
