"""The batch-size experiment (optedu.experiments.batch): its plan, the exact noise scale against
a hand computation, the fit of McCandlish et al.'s relation, and every best rate inside its
window in the stored runs (tests/experiments/test_grids.py checks the stored runs complete and
re-runs a sample)."""

from __future__ import annotations

import math

import pytest
import torch

from optedu.choosing import workloads
from optedu.experiments import batch as br


@pytest.fixture(scope="module")
def stored():
    return br.read()


def test_the_plan():
    js = br.jobs()
    assert len({j.key for j in js}) == len(js)
    assert sum(j.kind == "noise" for j in js) == len(br.WORKLOADS) * len(br.SEEDS)
    assert sum(j.kind == "steps" for j in js) == len(br.WORKLOADS) * len(br.BATCHES) * 5 * 3
    assert all(b2 == 2 * b1 for b1, b2 in zip(br.BATCHES, br.BATCHES[1:]))
    assert br.window("digits_mlp", 64) == (1, 2, 3, 4, 5)
    assert br.rate(3) == pytest.approx(0.8)
    assert [t for t in range(1, 200) if br.checked(t)][-5:] == [188, 190, 192, 195, 198]
    assert not br.checked(129) and br.checked(130) and br.checked(64)
    with pytest.raises(ValueError, match="Invalid batch: 48"):
        br.window("digits_mlp", 48)
    with pytest.raises(ValueError, match="Invalid workload: 'digits_cnn'"):
        br.window("digits_cnn", 64)
    with pytest.raises(ValueError, match="Invalid t: 0"):
        br.checked(0)


def test_the_fit_recovers_a_known_relation():
    batches = [4, 8, 16, 32, 64, 128, 256]
    steps = [25 * (1 + 60 / b) for b in batches]
    s_min, b_crit = br.fit(batches, steps)
    assert s_min == pytest.approx(25, rel=1e-10) and b_crit == pytest.approx(60, rel=1e-10)
    with pytest.raises(ValueError, match="Invalid steps"):
        br.fit([4, 8], [10, math.inf])
    with pytest.raises(ValueError, match="Invalid points: 1 batches"):
        br.fit([4], [10])
    assert br.lr_rule(60, 2.0, 60) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="Invalid batch: 0"):
        br.lr_rule(0, 2.0, 60)


def test_the_exact_noise_scale_is_the_per_example_covariance():
    """exact_noise against per-example gradients taken one example at a time with autograd,
    and B_noise against the Hessian built column by column, on the logistic regression."""
    w = workloads.get("digits_logreg")
    model = w.model(0)
    d = w.data()
    params = list(model.parameters())
    rows = []
    for i in range(len(d.train_x)):
        g = torch.autograd.grad(w.loss(model, d.train_x[i:i + 1], d.train_y[i:i + 1]), params)
        rows.append(torch.cat([x.flatten() for x in g]).double())
    per = torch.stack(rows)
    mean = per.mean(0)
    trace = float((per - mean).pow(2).sum(1).mean())
    got = br.exact_noise(w, model, 0)
    assert got["grad_sq"] == pytest.approx(float(mean.pow(2).sum()), rel=1e-5)
    assert got["trace_sigma"] == pytest.approx(trace, rel=1e-5)
    assert got["b_simple"] == pytest.approx(trace / float(mean.pow(2).sum()), rel=1e-4)
    m32 = mean.float()
    assert got["ghg"] == pytest.approx(float(m32 @ br._hvp(w, model, m32)), rel=1e-5)
    assert got["b_noise"] > 0


def test_a_run_stops_at_the_target_and_flags_divergence():
    r = br.steps_run("digits_logreg", 64, 0.8, 0, 0.3)
    w = workloads.get("digits_logreg")
    assert r["steps"] is not None and r["curve"][-1][0] == r["steps"]
    assert r["curve"][-1][1] <= 0.3 < r["curve"][-2][1]
    assert not r["diverged"]
    blown = br.steps_run("digits_mlp", 64, 1e4, 0, 0.1)
    assert blown["diverged"] and blown["steps"] is None
    capped = br.steps_run("digits_logreg", 64, 1e-4, 0, 0.3, cap=50)
    assert capped["steps"] is None and not capped["diverged"]
    with pytest.raises(ValueError, match="Invalid lr: -0.1"):
        br.steps_run("digits_logreg", 64, -0.1, 0, 0.3)
    assert w.batch_size == 64


def test_a_bad_kind_rate_or_job_count_raises():
    with pytest.raises(ValueError, match="Invalid kind: 'epoch'"):
        br.execute(br.KEY("epoch", "digits_mlp", 64, None, 0))
    with pytest.raises(ValueError, match="Invalid k: 9"):
        br.execute(br.KEY("steps", "digits_mlp", 64, 9, 0))


def test_the_stored_runs(stored):
    """Every run stored once; every noise run measured at every level; at every batch the
    best rate is strictly inside its window (the window brackets the best rate)."""
    for r in stored:
        if r["kind"] == "noise":
            assert [p.get("level") for p in r["points"]] == [None, *br.LEVELS[r["workload"]]]
            assert all(p["loss"] <= p["level"] for p in r["points"][1:])
        elif r["steps"] is not None:
            assert r["curve"][-1][0] == r["steps"]
            assert r["curve"][-1][1] <= br.TARGETS[r["workload"]]
    for w in br.WORKLOADS:
        by_batch = br.table(stored, w)
        best = br.best_rates(by_batch)
        assert sorted(best) == list(br.BATCHES)
        for b, (k, seeds) in best.items():
            assert all(math.isfinite(s) for s in seeds), (w, b)
            assert min(by_batch[b]) < k < max(by_batch[b]), (w, b, k, "on the edge")
