"""optedu's optimizers against torch.optim 2.13: every option combination, step for step.

One table drives the exhaustive part (every combination of each optimizer's options, in float64
and float32); hypothesis then draws hyperparameters from each argument's valid range. Every run
uses :func:`optedu.parity.compare`: 50 steps, tensors of three shapes and gradient scales spread
over five orders of magnitude, two parameter groups with different hyperparameters, a step with
all-zero gradients and a parameter whose grad stays None; parameters *and* every state entry must
agree.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import optedu
from optedu.parity import compare

RTOL = {torch.float64: 1e-10, torch.float32: 1e-5}


def _grid(**options):
    keys = list(options)
    return [dict(zip(keys, values)) for values in itertools.product(*options.values())]


def sgd_cases():
    for kw in _grid(lr=[0.05], momentum=[0.0, 0.9], dampening=[0.0, 0.3], nesterov=[False, True],
                    weight_decay=[0.0, 0.1], maximize=[False, True]):
        if kw["nesterov"] and (kw["momentum"] == 0 or kw["dampening"] != 0):
            continue
        yield kw


def adagrad_cases():
    yield from _grid(lr=[0.1], lr_decay=[0.0, 0.05], weight_decay=[0.0, 0.1],
                     initial_accumulator_value=[0.0, 0.5], eps=[1e-10, 1e-3], maximize=[False, True])


def rmsprop_cases():
    yield from _grid(lr=[0.01], alpha=[0.99, 0.5], eps=[1e-8, 1e-2], weight_decay=[0.0, 0.1],
                     momentum=[0.0, 0.9], centered=[False, True], maximize=[False, True])


def adam_cases():
    yield from _grid(lr=[0.01], betas=[(0.9, 0.999), (0.5, 0.8)], eps=[1e-8, 1e-3],
                     weight_decay=[0.0, 0.1], amsgrad=[False, True], maximize=[False, True],
                     decoupled_weight_decay=[False, True])


def adamw_cases():
    yield from _grid(lr=[0.01], betas=[(0.9, 0.999), (0.5, 0.8)], eps=[1e-8, 1e-3],
                     weight_decay=[0.0, 0.01, 0.3], amsgrad=[False, True], maximize=[False, True])


# (optedu class, torch class, option combinations, how the second group differs)
TABLE = [
    (optedu.SGD, torch.optim.SGD, sgd_cases, {"lr": 0.01, "weight_decay": 0.2}),
    (optedu.Adagrad, torch.optim.Adagrad, adagrad_cases, {"lr": 0.03, "lr_decay": 0.1}),
    (optedu.RMSprop, torch.optim.RMSprop, rmsprop_cases, {"lr": 0.003, "alpha": 0.9}),
    (optedu.Adam, torch.optim.Adam, adam_cases, {"lr": 0.002, "betas": (0.8, 0.99)}),
    (optedu.AdamW, torch.optim.AdamW, adamw_cases, {"lr": 0.002, "weight_decay": 0.05}),
]

CASES = [
    pytest.param(ours, theirs, kwargs, second, id=f"{ours.__name__}-{i}")
    for ours, theirs, cases, second in TABLE
    for i, kwargs in enumerate(cases())
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("ours, theirs, kwargs, second", CASES)
def test_every_option_combination(ours, theirs, kwargs, second, dtype):
    result = compare(ours, theirs, kwargs, [{}, second], steps=50, dtype=dtype)
    assert result.state_keys_match, "state keys differ from torch.optim's"
    assert result.worst <= RTOL[dtype], result


def test_grid_covers_every_argument():
    """The table is exhaustive: each constructor argument of the torch signature appears in it."""
    for ours, _, cases, _ in TABLE:
        seen = set().union(*(kw.keys() for kw in cases()))
        expected = set(ours.__init__.__code__.co_varnames[2:ours.__init__.__code__.co_argcount
                                                          + ours.__init__.__code__.co_kwonlyargcount])
        assert expected <= seen | {"self"}, f"{ours.__name__}: untested {expected - seen}"


def test_learning_rate_changed_mid_run():
    """A scheduler-style change of ``lr`` between steps takes effect identically."""
    def halve(optimizer, t):
        if t % 10 == 0:
            for group in optimizer.param_groups:
                group["lr"] *= 0.5
    for ours, theirs, cases, second in TABLE:
        kwargs = list(cases())[-1]
        result = compare(ours, theirs, kwargs, [{}, second], after_step=halve)
        assert result.ok(1e-10), (ours.__name__, result)


# --- property-based: hyperparameters drawn from each argument's valid range -------------------

rates = st.floats(1e-4, 0.5)
decays = st.floats(0.0, 0.5)
betas = st.floats(0.0, 0.999)
epsilons = st.sampled_from([0.0, 1e-12, 1e-8, 1e-3, 0.1])
flags = st.booleans()


@given(lr=rates, momentum=st.floats(0.0, 0.99), dampening=st.floats(0.0, 1.0), wd=decays,
       nesterov=flags, maximize=flags, lr2=rates)
def test_sgd_property(lr, momentum, dampening, wd, nesterov, maximize, lr2):
    if nesterov and (momentum <= 0 or dampening != 0):
        dampening = 0.0
        momentum = max(momentum, 0.1)
    kwargs = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=wd,
                  nesterov=nesterov, maximize=maximize)
    assert compare(optedu.SGD, torch.optim.SGD, kwargs, [{}, {"lr": lr2}]).ok(1e-10)


@given(lr=rates, lr_decay=decays, wd=decays, init=st.floats(0.0, 2.0), eps=epsilons,
       maximize=flags, lr2=rates)
def test_adagrad_property(lr, lr_decay, wd, init, eps, maximize, lr2):
    kwargs = dict(lr=lr, lr_decay=lr_decay, weight_decay=wd, initial_accumulator_value=init,
                  eps=eps, maximize=maximize)
    assert compare(optedu.Adagrad, torch.optim.Adagrad, kwargs, [{}, {"lr": lr2}]).ok(1e-10)


@given(lr=st.floats(1e-4, 0.05), alpha=st.floats(0.0, 0.999), eps=epsilons, wd=decays,
       momentum=st.floats(0.0, 0.95), centered=flags, maximize=flags, lr2=rates)
def test_rmsprop_property(lr, alpha, eps, wd, momentum, centered, maximize, lr2):
    if centered and eps == 0.0:
        eps = 1e-8  # √(v − ḡ²) is exactly 0 after one step when α = 0: 0/0 in torch and optedu
    kwargs = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=wd, momentum=momentum,
                  centered=centered, maximize=maximize)
    assert compare(optedu.RMSprop, torch.optim.RMSprop, kwargs, [{}, {"lr": lr2}]).ok(1e-10)


@given(lr=st.floats(1e-4, 0.1), b1=betas, b2=betas, eps=epsilons.filter(lambda e: e > 0),
       wd=decays, amsgrad=flags, maximize=flags, decoupled=flags, lr2=rates)
def test_adam_property(lr, b1, b2, eps, wd, amsgrad, maximize, decoupled, lr2):
    kwargs = dict(lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd, amsgrad=amsgrad,
                  maximize=maximize, decoupled_weight_decay=decoupled)
    assert compare(optedu.Adam, torch.optim.Adam, kwargs, [{}, {"lr": lr2}]).ok(1e-10)


@given(lr=st.floats(1e-4, 0.1), b1=betas, b2=betas, eps=epsilons.filter(lambda e: e > 0),
       wd=decays, amsgrad=flags, maximize=flags, lr2=rates)
def test_adamw_property(lr, b1, b2, eps, wd, amsgrad, maximize, lr2):
    kwargs = dict(lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd, amsgrad=amsgrad,
                  maximize=maximize)
    assert compare(optedu.AdamW, torch.optim.AdamW, kwargs, [{}, {"lr": lr2}]).ok(1e-10)
