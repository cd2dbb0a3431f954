"""The workloads of optedu.choosing: they build and train, their data ships and is fixed, their
runs are deterministic, their held-out variants differ as they claim, and their targets come
from the calibration (tools/calibrate_targets.py) and can be missed."""

from __future__ import annotations

import math
import socket
import statistics

import pytest
import torch
from torch import nn

from optedu.choosing import calibrate, contestants, trial
from optedu.choosing import workloads as W
from optedu.training.muon_groups import muon_adamw_groups

NAMES = list(W.WORKLOADS)
# the transformers take about a second each to train twice: the full tier checks them
SLOW = {"char_transformer", "char_transformer_postln"}
TIERED = [pytest.param(n, marks=pytest.mark.full if n in SLOW else ()) for n in NAMES]
DATA = {"digits": W.digits.__wrapped__, "help_text": W.help_text.__wrapped__}
CHEAPEST = "digits_logreg"


def _has(model: nn.Module, kind: type[nn.Module]) -> bool:
    return any(isinstance(m, kind) for m in model.modules())


# held-out variant -> what it claims to change, as a test of (base, variant)
CLAIMS = {
    "digits_logreg_raw": lambda b, v: (v.data().train_x.max() == 16
                                       and abs(float(b.data().train_x.mean())) < 1e-5),
    "digits_mlp_tanh": lambda b, v: (_has(v.model(0), nn.Tanh) and not _has(v.model(0), nn.ReLU)
                                     and _has(b.model(0), nn.ReLU)),
    "digits_cnn_bn": lambda b, v: (_has(v.model(0), nn.BatchNorm2d)
                                   and not _has(b.model(0), nn.BatchNorm2d)),
    "digits_autoencoder_sigmoid": lambda b, v: (_has(v.model(0), nn.Sigmoid)
                                                and not _has(b.model(0), nn.Sigmoid)),
    "char_transformer_postln": lambda b, v: (
        not any(blk.pre_norm for blk in v.model(0).blocks)
        and all(blk.pre_norm for blk in b.model(0).blocks)),
}


def test_five_kinds_each_with_a_held_out_variant():
    bases = [w.name for w in W.base_workloads()]
    assert len(bases) == 5 and len(W.WORKLOADS) == 10
    for base in bases:
        assert W.held_out(base), base
    for w in W.WORKLOADS.values():
        if w.base is not None:
            assert w.base in bases and W.get(w.base).base is None


@pytest.mark.parametrize("name", sorted(CLAIMS))
def test_held_out_variant_differs_as_it_claims(name):
    variant = W.get(name)
    base = W.get(variant.base)
    assert CLAIMS[name](base, variant)
    assert (variant.metric, variant.steps, variant.batch_size) == \
        (base.metric, base.steps, base.batch_size)


def test_every_held_out_variant_has_a_claim():
    assert sorted(CLAIMS) == sorted(w.name for w in W.WORKLOADS.values() if w.base)


@pytest.mark.parametrize("name", NAMES)
def test_builds_trains_and_splits_for_muon(name):
    w = W.get(name)
    model = w.model(0)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    x, y = next(w.batches(0))
    assert len(x) == len(y) == w.batch_size
    loss = w.loss(model, x, y)
    assert loss.ndim == 0 and math.isfinite(float(loss.detach()))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    assert math.isfinite(w.evaluate(model)) and model.training
    hidden, rest = muon_adamw_groups(model, w.head)
    in_groups = [n for g in hidden + rest for n in g["param_names"]]
    assert sorted(in_groups) == sorted(n for n, _ in model.named_parameters())
    assert len(in_groups) == len(set(in_groups))
    head = [n for n, _ in model.named_parameters() if n.startswith(w.head + ".")]
    assert head and not any(n in g["param_names"] for g in hidden for n in head)


def test_data_ships_without_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("no network in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    for load in DATA.values():
        assert load() is not None


def test_digits_split_shapes_and_dtypes():
    for scale in ("standard", "raw"):
        d = W.digits(scale)
        assert d.train_x.shape == (1437, 64) and d.val_x.shape == (360, 64)
        assert d.train_x.dtype == d.val_x.dtype == torch.float32
        assert d.train_y.dtype == torch.long and set(d.val_y.tolist()) == set(range(10))
    standard, raw = W.digits("standard"), W.digits("raw")
    assert torch.equal(standard.train_y, raw.train_y)  # one split, two scalings


def test_text_split_shapes_and_vocabulary():
    d = W.help_text()
    assert d.train_x.dtype == torch.long and d.val_x.shape == (W.VAL_WINDOWS, W.CONTEXT)
    assert torch.equal(d.train_x[1:], d.train_y[:-1])  # y is x shifted by one character
    assert torch.equal(d.val_x[:, 1:], d.val_y[:, :-1])
    assert int(d.train_x.max()) < W.VOCAB and len(d.train_x) > 400_000
    x, y = next(W.text_windows(0))
    assert x.shape == y.shape == (W.TEXT_BATCH, W.CONTEXT)


@pytest.mark.parametrize("load", sorted(DATA))
def test_split_is_fixed_whatever_the_global_seed(load):
    cached = getattr(W, load)()
    torch.manual_seed(12345)
    fresh = DATA[load]()
    assert getattr(W, load)() is cached
    for a, b in zip(vars(cached).values(), vars(fresh).values()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", TIERED)
def test_same_seed_same_evals_other_seed_other_evals(name):
    w = W.get(name)
    adamw = contestants.get("adamw")
    steps = 2 * w.eval_every
    first, again, other = (trial.run(w, adamw, adamw.defaults, seed, steps=steps)
                           for seed in (0, 0, 1))
    assert first.evals == again.evals and first.train_loss == again.train_loss
    assert first.evals != other.evals


def test_targets_are_calibrated():
    for w in W.WORKLOADS.values():
        assert math.isfinite(w.target) and w.target > 0, w.name
        assert w.target_rule == calibrate.RULE, w.name
        setter, lr = w.target_setter
        assert setter in calibrate.BASELINES
        assert lr in calibrate.lr_grid(contestants.get(setter)), w.name  # exactly a grid point


def test_target_is_reproduced_by_its_setter():
    """The cheapest workload's target, from its setter's three seeds (as the calibration)."""
    w = W.get(CHEAPEST)
    name, lr = w.target_setter
    c = contestants.get(name)
    runs = [trial.run(w, c, {**c.defaults, "lr": lr}, seed) for seed in calibrate.SEEDS]
    within = calibrate.REACH * w.steps
    bests = [min(v for s, v in r.evals if s <= within) for r in runs]
    assert calibrate.round_up(statistics.median(bests)) == w.target
    # reached by at least two seeds within the first REACH of the budget
    assert sum(r.reached is not None and r.reached <= within for r in runs) >= 2


def test_a_target_can_be_missed_and_a_trivial_one_is_hit_at_once():
    w = W.get(CHEAPEST)
    name, lr = w.target_setter
    c = contestants.get(name)
    hyper = {**c.defaults, "lr": lr}
    assert trial.run(w, c, hyper, 0, target=w.target / 10).reached is None
    untrained = w.evaluate(w.model(0))  # a target no better than the initial weights
    assert trial.run(w, c, hyper, 0, target=untrained).reached == w.eval_every


def test_round_up_never_goes_below():
    assert calibrate.round_up(0.123421) == 0.1235
    assert calibrate.round_up(0.1699) == 0.1699
    assert calibrate.round_up(2.40161) == 2.402
    seventh = float(torch.tensor(7 / 360))  # an error rate, computed in float32
    assert seventh <= calibrate.round_up(seventh) <= seventh * 1.001


def test_lr_grid_spans_the_search_space():
    for name in calibrate.BASELINES:
        c = contestants.get(name)
        grid = calibrate.lr_grid(c)
        assert len(grid) == calibrate.GRID and (grid[0], grid[-1]) == c.space["lr"]
        ratios = [b / a for a, b in zip(grid, grid[1:])]
        assert max(ratios) == pytest.approx(min(ratios))


@pytest.mark.parametrize("bad, call", [
    ("nope", W.get),
    ("nope", lambda scale: W.digits.__wrapped__(scale)),
])
def test_bad_names_raise(bad, call):
    with pytest.raises(ValueError, match=repr(bad)):
        call(bad)


def test_another_pythons_help_text_is_refused(monkeypatch):
    """The language model's text comes from the interpreter; a text other than the one its
    targets were calibrated on is refused, naming the Python version."""
    monkeypatch.setattr(W, "TEXT_SHA256", "0" * 64)
    W.help_text.cache_clear()
    try:
        with pytest.raises(RuntimeError, match=r"help texts .*Python 3\.11\.7"):
            W.help_text()
    finally:
        monkeypatch.undo()
        W.help_text.cache_clear()
    assert len(W.help_text().train_x) > 400_000
