"""The flat-minima experiment (optedu.choosing.flat_runs): its stored runs are complete, a
sample of them reproduces exactly in a fresh process with the runner's settings (one thread,
CPU kernels capped at AVX2), and the pieces the chapter reads behave as documented."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import subprocess
import sys

import pytest
import torch

from optedu.choosing import flat_runs
from optedu.instruments.reproducible import pin_cpu_kernels

FULL = os.environ.get("OPTEDU_TESTS", "quick") == "full"
MEASURED = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc",
            "sharpness", "trace", "trace_se", "lanczos")


@pytest.fixture(scope="module")
def stored():
    records = flat_runs.runner.load(flat_runs.PATH)
    assert records, f"{flat_runs.PATH} holds no runs: make experiments-flat"
    return records


def test_the_stored_experiment_is_complete(stored):
    """Every run the grid asks for is stored once, with its gradients counted and every
    measurement present (a run that diverged has none)."""
    keys = [flat_runs.key_of(r) for r in stored]
    assert len(keys) == len(set(keys)), "a run is stored twice"
    assert set(keys) == {j.key for j in flat_runs.jobs()}
    for r in stored:
        job = flat_runs.Job(*flat_runs.key_of(r))
        assert r["gradients"] == job.gradients
        if not r["diverged"]:
            assert all(r[k] is not None for k in MEASURED), flat_runs.key_of(r)
    meta = json.loads(flat_runs.PATH.with_suffix(".meta.json").read_text())
    assert meta["runs"] == len(stored) and meta["versions"]["torch"].startswith("2.13.0")


RERUN = """
import json, sys
import torch
from optedu.choosing import flat_runs
torch.set_num_threads(1)    # as the runner's worker
data = flat_runs.digits()
out = [flat_runs.execute(flat_runs.Job(**job), data) for job in json.loads(sys.stdin.read())]
print(json.dumps(out))
"""


@pytest.mark.skipif(not FULL, reason="full tier (make test): a fresh pinned process "
                    "re-runs stored runs (about 10 s)")
def test_a_sample_of_stored_runs_reproduces(stored):
    sample = random.Random(0).sample(stored, 6)
    fields = [f.name for f in dataclasses.fields(flat_runs.Job)]
    jobs = [{k: r[k] for k in fields} for r in sample]
    env = dict(os.environ)
    pin_cpu_kernels(env)
    out = subprocess.run([sys.executable, "-c", RERUN], input=json.dumps(jobs), env=env,
                         capture_output=True, text=True, check=True, timeout=600)
    for r, again in zip(sample, json.loads(out.stdout)):
        for k in ("gradients", "diverged") + MEASURED:
            assert again.get(k) == r.get(k), (flat_runs.key_of(r), k)


def test_rescaling_keeps_the_function_and_moves_the_parameters():
    model = flat_runs.network(0)
    other = flat_runs.rescale(model, 0, 4.0)
    x = torch.rand(8, 64)
    assert torch.allclose(model(x), other(x), rtol=1e-5, atol=1e-6)
    assert torch.equal(other[0].weight, 4.0 * model[0].weight)
    assert torch.equal(other[2].weight, model[2].weight / 4.0)
    assert torch.equal(other[4].weight, model[4].weight)      # the others are untouched
    with pytest.raises(ValueError, match="Invalid alpha"):
        flat_runs.rescale(model, 0, -1.0)
    with pytest.raises(ValueError, match="Invalid layer"):
        flat_runs.rescale(model, 2, 2.0)                      # no layer after the last


@pytest.mark.parametrize("args, word", [
    (("lion", "none", 0.0, 0.1, 10, 0), "base"),
    (("adam", "gsam", 0.05, 0.1, 10, 0), "variant"),
    (("adam", "none", 0.05, 0.1, 10, 0), "rho"),
    (("adam", "sam", 0.0, 0.1, 10, 0), "rho"),
    (("adam", "sam", 0.05, -0.1, 10, 0), "lr"),
    (("adam", "sam", 0.05, 0.1, 0, 0), "steps"),
])
def test_bad_jobs_raise(args, word):
    with pytest.raises(ValueError, match=f"Invalid {word}"):
        flat_runs.Job(*args)


def test_sam_evaluates_two_gradients_per_step(monkeypatch):
    """SAM's closure is called once per step: two forward passes where the base makes one."""
    calls = []
    real = flat_runs.network

    def counted(seed):
        model = real(seed)
        model.register_forward_hook(lambda *_: calls.append(1))
        return model
    monkeypatch.setattr(flat_runs, "network", counted)
    x, y = torch.rand(flat_runs.N_TRAIN, 64), torch.randint(10, (flat_runs.N_TRAIN,))
    data, counts = flat_runs.Data(x, y, x, y, x, y), {}
    for variant, rho in (("none", 0.0), ("sam", 0.05), ("asam", 0.5)):
        job = flat_runs.Job("sgd_momentum", variant, rho, 0.01, 3, 0)
        calls.clear()
        flat_runs.train(job, data)
        counts[variant] = len(calls)
        assert counts[variant] == job.gradients
    assert counts == {"none": 3, "sam": 6, "asam": 6}


def _record(lr, seed, val, diverged=False):
    return {"base": "adam", "variant": "none", "rho": 0.0, "lr": lr, "steps": flat_runs.STEPS,
            "seed": seed, "val_loss": None if diverged else val, "diverged": diverged,
            "train_loss": val / 10, "test_loss": val, "test_acc": 0.9, "sharpness": 1.0,
            "trace": 2.0, "gradients": flat_runs.STEPS}


def test_tuned_picks_the_lowest_mean_validation_loss():
    records = [_record(0.001, 0, 0.30), _record(0.001, 1, 0.10),     # mean 0.20
               _record(0.003, 0, 0.18), _record(0.003, 1, 0.24),     # mean 0.21
               _record(0.01, 0, 0.01), _record(0.01, 1, 0.0, True)]  # one seed diverged
    assert flat_runs.tuned(records, "adam", "none", 0.0) == 0.001
    got = flat_runs.summary(records, "adam", "none", 0.0)
    assert got["lr"] == 0.001 and got["seeds"] == [0, 1] and got["val_loss"] == [0.30, 0.10]
    tie = [_record(0.003, 0, 0.2), _record(0.001, 0, 0.2)]
    assert flat_runs.tuned(tie, "adam", "none", 0.0) == 0.001        # the smaller on a tie
    with pytest.raises(ValueError, match="Invalid setting"):
        flat_runs.tuned(records, "adam", "sam", 0.05)
    assert math.isinf(flat_runs._score([0.1, None]))


def test_chosen_picks_the_radius_as_the_rate():
    def sam(rho, lr, val):
        return {**_record(lr, 0, val), "variant": "sam", "rho": rho}
    records = [sam(0.05, 0.001, 0.3), sam(0.05, 0.003, 0.2),   # 0.05 at its best: 0.2
               sam(0.1, 0.001, 0.15), sam(0.1, 0.003, 0.4)]    # 0.1 at its best: 0.15
    got = flat_runs.chosen(records, "adam", "sam")
    assert (got["rho"], got["lr"], got["val_loss"]) == (0.1, 0.001, [0.15])
    with pytest.raises(ValueError, match="Invalid setting"):
        flat_runs.chosen(records, "adam", "asam")
