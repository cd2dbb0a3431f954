"""The warmup experiment (optedu.experiments.warmup): its schedule and its criteria, and what
the stored scans show (tests/experiments/test_grids.py checks the stored runs complete and re-
runs a sample)."""

from __future__ import annotations

import math

import pytest
import torch

from optedu.experiments import warmup as wu
from optedu.optim.variants.adam_start import Adam2k, GIAdam


@pytest.fixture(scope="module")
def stored():
    return wu.read()


def test_rate_warms_up_linearly():
    assert [wu.rate(1.0, 4, t) for t in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert wu.rate(0.3, 0, 0) == 0.3
    for bad in (0.0, -0.1, math.nan):
        with pytest.raises(ValueError, match="Invalid peak"):
            wu.rate(bad, 4, 0)
    with pytest.raises(ValueError, match="Invalid warmup"):
        wu.rate(1.0, -1, 0)


def test_trains_needs_a_finite_loss_below_the_threshold():
    assert wu.trains(1.0, 0.9 * wu.THRESHOLD)
    assert not wu.trains(1.0, wu.THRESHOLD)
    assert not wu.trains(1.0, math.inf) and not wu.trains(1.0, math.nan)
    with pytest.raises(ValueError, match="Invalid initial loss"):
        wu.trains(math.inf, 0.1)


def test_largest_trained_stops_at_the_first_failure():
    rates = [0.1, 0.2, 0.4, 0.8]
    assert wu.largest_trained(rates, [True, True, False, True]) == 0.2
    assert wu.largest_trained(rates, [True] * 4) == 0.8
    assert wu.largest_trained(rates, [False, True, True, True]) == 0.0
    with pytest.raises(ValueError, match="Invalid scan"):
        wu.largest_trained(rates, [True] * 3)
    with pytest.raises(ValueError, match="Invalid scan"):
        wu.largest_trained(rates[::-1], [True] * 4)


def test_a_bad_optimizer_name_raises():
    with pytest.raises(ValueError, match="Invalid optimizer: 'sgd'"):
        wu.make_optimizer("sgd", [], 0.1)


def test_the_remedies_are_the_variants_at_their_defaults():
    params = [torch.zeros(1, requires_grad=True)]
    two_k = wu.make_optimizer("adam2k", params, 0.1)
    assert isinstance(two_k, Adam2k) and two_k.defaults["freeze"] == wu.FREEZE == 2000
    assert wu.FREEZE == round(2 / (1 - two_k.defaults["betas"][1]))
    assert isinstance(wu.make_optimizer("giadam", params, 0.1), GIAdam)


def test_adam_2k_holds_the_weights_for_its_first_steps(monkeypatch):
    """The held steps run before the STEPS that train, at the initial weights: a run whose
    rate would blow Adam up in one step still starts from the initial loss."""
    monkeypatch.setattr(wu, "FREEZE", 5)
    record = wu.train("adam2k", 100.0, 0, 0, steps=1)
    net = wu.network(0)
    assert record["initial"] == pytest.approx(wu.loss_of(net, *wu.data()).item(), rel=1e-5)
    assert record["steps_run"] == 1


def test_the_stored_runs(stored):
    """Every run of the grid is stored, once, at its rate, with its outcome consistent."""
    for r in stored:
        assert r["lr"] == float(f"{wu.RATES[r['optimizer']][r['point']]:.6g}")
        final = math.inf if r["final"] is None else r["final"]
        assert r["trains"] == wu.trains(r["initial"], final)
        assert r["diverged"] or r["steps_run"] == wu.STEPS
        if r["kind"] == "trace":
            assert len(r["sharpness"]) == len(r["grad_norms"]) // wu.EVERY  # steps taken
    table = wu.table(stored)
    assert set(table) == ({(o, w, s) for o in wu.OPTIMIZERS for w in wu.WARMUPS
                           for s in wu.SEEDS}
                          | {(o, 0, s) for o in wu.REMEDIES for s in wu.SEEDS})


def test_every_scan_brackets_its_limit(stored):
    """The grid is wide enough: each scan trains at its smallest rate and fails at its
    largest, so its largest trainable rate is measured, not cut off by the grid."""
    scans = {(r["optimizer"], r["warmup"], r["seed"], r["point"]): r["trains"]
             for r in stored if r["kind"] == "scan"}
    for (o, w, s), v in wu.table(stored).items():
        assert wu.RATES[o][0] <= v < wu.RATES[o][-1], (o, w, s, v)
        last = len(wu.RATES[o]) - 1
        assert scans[o, w, s, 0] and not scans[o, w, s, last], (o, w, s)


def test_table_refuses_an_incomplete_scan(stored):
    some = [r for r in stored if not (r["kind"] == "scan" and r["point"] == 0
                                      and r["seed"] == 0 and r["optimizer"] == "gd")]
    with pytest.raises(ValueError, match="Invalid records"):
        wu.table(some)
