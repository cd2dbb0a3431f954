"""The folklore experiment (optedu.choosing.folklore): its training loop is the benchmark's,
its stored runs are complete, and a sample of them reproduces exactly in a fresh process with
the runner's settings (one thread, CPU kernels capped at AVX2)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import subprocess
import sys

import pytest

from optedu.choosing import contestants, folklore, runner, trial, workloads
from optedu.instruments.reproducible import pin_cpu_kernels

FULL = os.environ.get("OPTEDU_TESTS", "quick") == "full"


@pytest.fixture(scope="module")
def grid():
    records = runner.load(runner.EXPERIMENTS / "results-full.jsonl")
    assert records, "experiments/results-full.jsonl holds no runs: make experiments"
    return records


@pytest.fixture(scope="module")
def stored():
    records = runner.load(folklore.PATH)
    assert records, f"{folklore.PATH} holds no runs: make experiments-folklore"
    return records


def test_train_with_warmup_is_the_benchmarks_run(grid):
    w, c = workloads.get("digits_logreg"), contestants.get("adamw")
    hyper = folklore.tuned("adamw", "digits_logreg", grid)
    a = trial.run(w, c, hyper, 1)
    b = folklore.train(w, c, hyper, 1)
    assert (a.evals, a.train_loss, a.reached) == (b.evals, b.train_loss, b.reached)
    off = folklore.train(w, c, hyper, 1, warmup=False)
    assert off.train_loss != b.train_loss


def test_resized_keeps_the_examples_and_the_batches():
    w = workloads.get("digits_mlp")
    r = folklore.resized(w, 16)
    assert (r.batch_size, r.steps, r.eval_every) == (16, 4 * w.steps, 4 * w.eval_every)
    assert folklore.resized(w, w.batch_size) is w
    text = workloads.get("char_transformer")
    ours = folklore._text_windows(text.batch_size)(3)
    theirs = workloads.text_windows(3)
    for _ in range(3):
        (a, b), (c, d) = next(ours), next(theirs)
        assert a.equal(c) and b.equal(d)
    assert next(folklore.resized(text, 4).batches(0))[0].shape == (4, workloads.CONTEXT)


@pytest.mark.parametrize("batch", [0, -16, 2.5])
def test_bad_batch_raises(batch):
    with pytest.raises(ValueError, match="Invalid batch"):
        folklore.resized(workloads.get("digits_mlp"), batch)


def test_a_contestant_without_schedule_is_refused():
    c = contestants.get("schedule_free_adamw")
    with pytest.raises(ValueError, match="Invalid contestant"):
        folklore.train(workloads.get("digits_logreg"), c, dict(c.defaults), 0)


def test_the_stored_experiment_is_complete(stored, grid):
    """Every run the studies ask for is stored, once, at its rate and its number of steps."""
    keys = [folklore.key_of(r) for r in stored]
    assert len(keys) == len(set(keys)), "a run is stored twice"
    assert set(keys) == {j.key for j in folklore.jobs()}
    hypers = {}
    for r in stored:
        pair = (r["contestant"], r["workload"])
        if pair not in hypers:
            hypers[pair] = folklore.tuned(*pair, grid)
        assert r["lr"] == float(f"{hypers[pair]['lr'] * r['factor']:.6g}")
        w = folklore.resized(workloads.get(r["workload"]), r["batch"])
        assert r["steps"] == w.steps
        assert r["diverged"] or r["evals"][-1][0] == w.steps
    meta = json.loads(folklore.PATH.with_suffix(".meta.json").read_text())
    assert meta["runs"] == len(stored) and meta["versions"]["torch"].startswith("2.13.0")


def test_factor_one_with_warmup_is_the_grids_best_trial(stored, grid):
    """At the tuned rate, with warmup, at the workload's batch, a run is the stored grid's
    best trial (seed 0) itself."""
    for r in stored:
        if (r["study"], r["factor"], r["warmup"], r["seed"]) != ("warmup", 1.0, True, 0):
            continue
        trials = [g for g in grid if g["ruleset"] == "external" and g["seed"] == 0
                  and g["workload"] == r["workload"] and g["contestant"] == r["contestant"]]
        best = runner.best_trial(sorted(trials, key=lambda g: g["trial"]))
        same = next(g for g in trials if g["trial"] == best)
        assert (r["evals"], r["train_loss"]) == (same["evals"], same["train_loss"]), \
            (r["workload"], r["contestant"])


RERUN = """
import json, sys
from optedu.choosing import folklore, runner
records = runner.load(folklore.EXPERIMENTS / "results-full.jsonl")
out = []
for job in json.loads(sys.stdin.read()):
    job = folklore.Job(**job)
    out.append(folklore.execute(job, folklore.tuned(job.contestant, job.workload, records)))
print(json.dumps(out))
"""


# a fresh pinned process re-runs stored runs (9 s); the quick tier re-runs the grid's
# (test_stored.py), through the same training loop
@pytest.mark.full
def test_a_sample_of_stored_runs_reproduces(stored):
    sample = random.Random(0).sample(stored, 8 if FULL else 2)
    fields = [f.name for f in dataclasses.fields(folklore.Job)]
    jobs = [{k: r[k] for k in fields} for r in sample]
    env = dict(os.environ)
    pin_cpu_kernels(env)
    out = subprocess.run([sys.executable, "-c", RERUN], input=json.dumps(jobs), env=env,
                         capture_output=True, text=True, check=True, timeout=600)
    for r, again in zip(sample, json.loads(out.stdout)):
        what = folklore.key_of(r)
        for k in ("lr", "steps", "evals", "train_loss", "diverged"):
            assert again[k] == r[k], (what, k)


def test_exponent_reads_the_scaling_rule():
    batches = [16, 64, 256]
    assert folklore.exponent(batches, [0.01 * b for b in batches]) == pytest.approx(1.0)
    assert folklore.exponent(batches, [b ** 0.5 for b in batches]) == pytest.approx(0.5)
    assert folklore.exponent(batches, [3.0, 3.0, 3.0]) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="Invalid points"):
        folklore.exponent([16], [0.1])


def test_ranges_and_matching():
    by = {0.5: [0.3, 0.4, 0.5], 1.0: [0.2, 0.25, 0.3], 2.0: [0.28, 0.29, math.inf]}
    assert folklore.best_factor(by) == 1.0
    assert folklore.usable(by, max(by[1.0])) == [1.0, 2.0]
    ours, theirs = [(1.0, 0.5), (10.0, 0.9)], [(1.1, 0.4), (0.95, 0.6), (100.0, 2.0)]
    assert folklore.matched(ours, theirs) == [pytest.approx(0.0)]
    with pytest.raises(ValueError, match="Invalid window"):
        folklore.matched(ours, theirs, window=0)
    assert folklore.final({"evals": [[10, 0.5], [20, None]], "diverged": True}) == math.inf


def test_tuned_needs_every_trial(grid):
    some = [r for r in grid if not (r["workload"] == "digits_mlp" and r["trial"] == 3)]
    with pytest.raises(ValueError, match="Invalid records"):
        folklore.tuned("adam", "digits_mlp", some)
