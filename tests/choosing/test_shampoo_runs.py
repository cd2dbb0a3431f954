"""The Shampoo experiment (optedu.choosing.shampoo_runs): its plan, the grafted step (Adam's
length, Shampoo's direction), its stored runs complete, and a sample of them reproduced exactly
in a fresh process with the runner's settings (one thread, CPU kernels capped at AVX2)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import pytest
import torch

from optedu.choosing import shampoo_runs as sr
from optedu.instruments.reproducible import pin_cpu_kernels
from optedu.optim.adam import AdamW
from optedu.optim.shampoo import Shampoo

FULL = os.environ.get("OPTEDU_TESTS", "quick") == "full"


def test_the_plan():
    keys = [j.key for j in sr.jobs()]
    assert len(keys) == len(set(keys)) == sum(len(sr.RATES[o]) for o in sr.OPTIMIZERS) * 3
    assert len({len(r) for r in sr.RATES.values()}) == 1          # the same grid size
    with pytest.raises(ValueError, match="Invalid optimizer: 'sgd'"):
        sr.contestant("sgd")
    with pytest.raises(ValueError, match="Invalid jobs: 2"):
        sr.main(["--jobs", "2"])


def test_grafted_step_has_adams_length_and_shampoos_direction():
    torch.manual_seed(0)
    w = [torch.randn(4, 3, requires_grad=True), torch.randn(3, requires_grad=True)]
    copies = {name: [p.detach().clone().requires_grad_() for p in w]
              for name in ("adam", "shampoo")}
    grads = [torch.randn_like(p) for p in w]
    for params in (w, *copies.values()):
        for p, g in zip(params, grads):
            p.grad = g.clone()
    start = [p.detach().clone() for p in w]
    sr.grafted_step(AdamW(w, lr=0.01, weight_decay=0.0), Shampoo(w, lr=1.0))
    AdamW(copies["adam"], lr=0.01, weight_decay=0.0).step()
    Shampoo(copies["shampoo"], lr=1.0).step()
    for p, s, a, h in zip(w, start, copies["adam"], copies["shampoo"]):
        step, adam, sham = p.detach() - s, a.detach() - s, h.detach() - s
        torch.testing.assert_close(step.norm(), adam.norm())
        cosine = (step * sham).sum() / (step.norm() * sham.norm())
        torch.testing.assert_close(cosine, torch.tensor(1.0))


@pytest.fixture(scope="module")
def stored():
    return sr.read()


def test_the_stored_experiment_is_complete(stored):
    keys = [sr.key_of(r) for r in stored]
    assert len(keys) == len(set(keys)), "a run is stored twice"
    assert set(keys) == {j.key for j in sr.jobs()}
    steps = {r["evals"][-1][0] for r in stored if not r["diverged"]}
    assert steps == {500}
    table = sr.finals(stored)
    assert all(set(v) == set(sr.SEEDS) for v in table.values())
    meta = json.loads(sr.PATH.with_suffix(".meta.json").read_text())
    assert meta["runs"] == len(stored) and meta["versions"]["torch"].startswith("2.13.0")


RERUN = """
import json, sys
from optedu.choosing import shampoo_runs as sr
print(json.dumps([sr.execute(sr.Job(**job)) for job in json.loads(sys.stdin.read())]))
"""


@pytest.mark.skipif(not FULL, reason="full tier (make test): a fresh pinned process "
                    "re-runs stored runs (about 15 seconds)")
def test_a_sample_of_stored_runs_reproduces(stored):
    rng = random.Random(0)
    sample = [rng.choice([r for r in stored if r["optimizer"] == o]) for o in sr.OPTIMIZERS]
    jobs = [{k: r[k] for k in ("optimizer", "lr", "seed")} for r in sample]
    env = dict(os.environ)
    pin_cpu_kernels(env)
    out = subprocess.run([sys.executable, "-c", RERUN], input=json.dumps(jobs), env=env,
                         capture_output=True, text=True, check=True, timeout=600)
    for r, again in zip(sample, json.loads(out.stdout)):
        for k in ("evals", "train_loss", "diverged", "state_bytes"):
            assert again[k] == r[k], (sr.key_of(r), k)
