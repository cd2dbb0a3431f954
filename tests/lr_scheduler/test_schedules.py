"""optedu.lr_scheduler.schedules: values at key steps computed by hand, shape properties, LambdaLR use, errors."""

from __future__ import annotations

import math
from functools import partial

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from optedu.lr_scheduler import schedules
from optedu.lr_scheduler.schedules import (inverse_sqrt, linear_warmup_cosine, linear_warmup_linear_decay,
                              warmup_stable_decay)

# (function, keyword arguments, {step: multiplier worked out by hand})
HAND = [
    # warmup 4: (s+1)/5 = .2 .4 .6 .8, peak at s=4; cosine over 10 steps; cos(pi/2) at s=9
    (linear_warmup_cosine, dict(warmup_steps=4, total_steps=14),
     {0: 0.2, 1: 0.4, 3: 0.8, 4: 1.0, 9: 0.5, 14: 0.0, 20: 0.0}),
    # min_ratio .1: halfway = .1 + .9/2 = .55; cos(pi/4) at s=4+2.5 is not a step, use s=14 (end)
    (linear_warmup_cosine, dict(warmup_steps=4, total_steps=14, min_ratio=0.1),
     {0: 0.2, 4: 1.0, 9: 0.55, 14: 0.1, 100: 0.1}),
    # no warmup: 1 at s=0; a quarter of the way through: .5 (1 + cos(pi/4)) = .5 + sqrt(2)/4
    (linear_warmup_cosine, dict(warmup_steps=0, total_steps=8),
     {0: 1.0, 2: 0.5 + math.sqrt(2) / 4, 4: 0.5, 8: 0.0}),
    # BERT: warmup 3 -> .25 .5 .75, then (10 - s)/7
    (linear_warmup_linear_decay, dict(warmup_steps=3, total_steps=10),
     {0: 0.25, 2: 0.75, 3: 1.0, 5: 5 / 7, 10: 0.0, 11: 0.0}),
    (linear_warmup_linear_decay, dict(warmup_steps=0, total_steps=4),
     {0: 1.0, 1: 0.75, 2: 0.5, 4: 0.0}),
    # Vaswani: min((s+1)/(w+1), sqrt((w+1)/(s+1))) with w+1 = 4
    (inverse_sqrt, dict(warmup_steps=3),
     {0: 0.25, 1: 0.5, 3: 1.0, 15: 0.5, 63: 0.25}),
    (inverse_sqrt, dict(warmup_steps=0), {0: 1.0, 3: 0.5, 99: 0.1}),
    # WSD: warmup 1 -> .5; stable at 1 for s in [1, 4); linear to .2 over 4 steps
    (warmup_stable_decay, dict(warmup_steps=1, stable_steps=3, decay_steps=4, min_ratio=0.2),
     {0: 0.5, 1: 1.0, 3: 1.0, 4: 1.0, 5: 0.8, 6: 0.6, 8: 0.2, 50: 0.2}),
    (warmup_stable_decay, dict(warmup_steps=0, stable_steps=0, decay_steps=2),
     {0: 1.0, 1: 0.5, 2: 0.0, 3: 0.0}),
]


@pytest.mark.parametrize("fn, kwargs, expected", HAND,
                         ids=[f"{f.__name__}-{i}" for i, (f, _, _) in enumerate(HAND)])
def test_values_worked_out_by_hand(fn, kwargs, expected):
    for step, value in expected.items():
        assert fn(step, **kwargs) == pytest.approx(value, rel=1e-14, abs=1e-15), step


def test_warmup_starts_above_zero_unlike_the_step_over_warmup_ramp():
    # the common `step / warmup_steps` ramp gives 0 at step 0 and wastes that step; ours: 1/(w+1)
    assert linear_warmup_cosine(0, warmup_steps=1000, total_steps=10000) == 1 / 1001


def test_inverse_sqrt_is_vaswanis_formula_normalised_to_its_peak():
    d_model, big_w = 512, 4000
    def vaswani(n):  # the paper's lrate, step_num counted from 1
        return d_model ** -0.5 * min(n ** -0.5, n * big_w ** -1.5)
    peak = vaswani(big_w)
    for step in (0, 10, 3998, 3999, 4000, 10_000, 99_999):
        assert inverse_sqrt(step, warmup_steps=big_w - 1) == pytest.approx(vaswani(step + 1) / peak,
                                                                        rel=1e-12)


ALL = [
    partial(linear_warmup_cosine, warmup_steps=7, total_steps=50, min_ratio=0.05),
    partial(linear_warmup_linear_decay, warmup_steps=7, total_steps=50),
    partial(inverse_sqrt, warmup_steps=7),
    partial(warmup_stable_decay, warmup_steps=7, stable_steps=20, decay_steps=23, min_ratio=0.05),
]


@pytest.mark.parametrize("fn", ALL, ids=lambda f: f.func.__name__)
def test_shape_rises_to_one_at_warmup_end_then_never_rises(fn):
    values = [fn(s) for s in range(200)]
    assert values[0] > 0
    assert all(a < b for a, b in zip(values[:7], values[1:8]))
    assert values[7] == 1.0 and max(values) == 1.0
    assert all(b <= a for a, b in zip(values[7:], values[8:]))
    assert min(values) >= 0


@pytest.mark.parametrize("fn", ALL, ids=lambda f: f.func.__name__)
def test_drives_lambdalr_with_partial(fn):
    w = torch.zeros(2, requires_grad=True)
    opt = torch.optim.AdamW([{"params": [w]}, {"params": [], "lr": 0.5}], lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, fn)
    seen = []
    for _ in range(60):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    for step, (a, b) in enumerate(seen):
        assert a == 1e-3 * fn(step) and b == 0.5 * fn(step)


@given(warmup=st.integers(0, 50), extra=st.integers(1, 500), step=st.integers(0, 2000),
       r=st.floats(0, 1))
def test_cosine_stays_between_min_ratio_and_one(warmup, extra, step, r):
    value = linear_warmup_cosine(step, warmup_steps=warmup, total_steps=warmup + extra, min_ratio=r)
    if step >= warmup:
        assert r - 1e-15 <= value <= 1.0
    else:
        assert 0 < value < 1


@given(warmup=st.integers(0, 50), stable=st.integers(0, 100), decay=st.integers(1, 100),
       r=st.floats(0, 1))
def test_wsd_ends_at_min_ratio_and_is_continuous_at_the_joints(warmup, stable, decay, r):
    f = partial(warmup_stable_decay, warmup_steps=warmup, stable_steps=stable, decay_steps=decay,
                min_ratio=r)
    end = warmup + stable + decay
    assert f(end) == pytest.approx(r) and f(end + 10) == pytest.approx(r)
    assert f(warmup) == 1.0
    # one step into the decay the multiplier drops by exactly (1 - r) / decay
    assert f(warmup + stable + 1) == pytest.approx(1 - (1 - r) / decay)


BAD = [
    (linear_warmup_cosine, dict(step=0, warmup_steps=-1, total_steps=10),
     "Invalid warmup_steps value: -1 (expected an integer >= 0)"),
    (linear_warmup_cosine, dict(step=0, warmup_steps=10, total_steps=10),
     "Invalid total_steps value: 10 (expected an integer >= 11)"),
    (linear_warmup_cosine, dict(step=0, warmup_steps=2.5, total_steps=10),
     "Invalid warmup_steps value: 2.5 (expected an integer >= 0)"),
    (linear_warmup_cosine, dict(step=0, warmup_steps=0, total_steps=10, min_ratio=1.5),
     "Invalid min_ratio value: 1.5 (expected a number in [0, 1])"),
    (linear_warmup_cosine, dict(step=-1, warmup_steps=0, total_steps=10),
     "Invalid step value: -1"),
    (linear_warmup_linear_decay, dict(step=0, warmup_steps=5, total_steps=3),
     "Invalid total_steps value: 3 (expected an integer >= 6)"),
    (linear_warmup_linear_decay, dict(step=0, warmup_steps=0, total_steps=0),
     "Invalid total_steps value: 0 (expected an integer >= 1)"),
    (inverse_sqrt, dict(step=0, warmup_steps=-3), "Invalid warmup_steps value: -3 (expected an integer >= 0)"),
    (inverse_sqrt, dict(step=math.nan, warmup_steps=3), "Invalid step value: nan"),
    (warmup_stable_decay, dict(step=0, warmup_steps=0, stable_steps=-1, decay_steps=3),
     "Invalid stable_steps value: -1 (expected an integer >= 0)"),
    (warmup_stable_decay, dict(step=0, warmup_steps=0, stable_steps=1, decay_steps=0),
     "Invalid decay_steps value: 0 (expected an integer >= 1)"),
    (warmup_stable_decay, dict(step=0, warmup_steps=0, stable_steps=1, decay_steps=1, min_ratio=-0.1),
     "Invalid min_ratio value: -0.1 (expected a number in [0, 1])"),
]


@pytest.mark.parametrize("fn, kwargs, message", BAD, ids=[f"{f.__name__}-{i}" for i, (f, _, _) in enumerate(BAD)])
def test_bad_arguments(fn, kwargs, message):
    step = kwargs.pop("step")
    with pytest.raises(ValueError) as raised:
        fn(step, **kwargs)
    assert str(raised.value) == message


def test_numpy_integers_are_steps_and_counts():
    steps = np.arange(3)
    assert [linear_warmup_cosine(s, warmup_steps=np.int64(2), total_steps=10) for s in steps] == [
        1 / 3, 2 / 3, 1.0]


def test_hyperparameters_are_keyword_only():
    with pytest.raises(TypeError):
        linear_warmup_cosine(0, 10, 100)  # type: ignore[misc]


def test_plot_schedules_draws_one_line_per_label():
    ax = schedules.plot_schedules({"a": [1.0, 0.5, 0.25], "b": [0.0, 1.0]})
    lines = ax.get_lines()
    assert [list(line.get_ydata()) for line in lines] == [[1.0, 0.5, 0.25], [0.0, 1.0]]
    assert [line.get_label() for line in lines] == ["a", "b"]
    fig, given_ax = plt.subplots()
    assert schedules.plot_schedules({"c": [1, 2]}, ax=given_ax) is given_ax
    plt.close("all")
