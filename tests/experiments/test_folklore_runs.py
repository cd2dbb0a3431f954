"""The folklore experiment (optedu.experiments.folklore): its training loop is the benchmark's,
and its stored runs start from the full grid's best trials (tests/experiments/test_grids.py
checks the stored runs complete and re-runs a sample)."""

from __future__ import annotations

import math

import pytest

from optedu.choosing import contestants, runner, trial, workloads
from optedu.experiments import folklore
from optedu.instruments import store


@pytest.fixture(scope="module")
def grid():
    records = store.load(store.folder() / "results-full.jsonl")
    assert records, "experiments/results-full.jsonl holds no runs: make experiments"
    return records


@pytest.fixture(scope="module")
def stored():
    return folklore.read()


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


def test_the_stored_runs(stored, grid):
    """Every run the studies ask for is stored, once, at its rate and its number of steps."""
    hypers = {}
    for r in stored:
        pair = (r["contestant"], r["workload"])
        if pair not in hypers:
            hypers[pair] = folklore.tuned(*pair, grid)
        assert r["lr"] == float(f"{hypers[pair]['lr'] * r['factor']:.6g}")
        w = folklore.resized(workloads.get(r["workload"]), r["batch"])
        assert r["steps"] == w.steps
        assert r["diverged"] or r["evals"][-1][0] == w.steps


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
