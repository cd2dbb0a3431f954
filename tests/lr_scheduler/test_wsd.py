"""Warmup-stable-decay: optedu's get_wsd_schedule against pytorch_optimizer 4.1.0's, value
for value; the closed form's decay shapes; where the two conventions meet."""

from __future__ import annotations

import itertools
import math
from functools import partial

import pytest
import torch

from optedu.lr_scheduler import get_wsd_schedule
from optedu.lr_scheduler.schedules import WSD_DECAYS, decay_shape, warmup_stable_decay
from optedu.lr_scheduler.wsd import COOLDOWN_TYPES

reference = pytest.importorskip("pytorch_optimizer.lr_scheduler.wsd")


def _optimizer() -> torch.optim.Optimizer:
    w, b = torch.zeros(3, requires_grad=True), torch.zeros(1, requires_grad=True)
    return torch.optim.SGD([{"params": [w]}, {"params": [b], "lr": 0.03}], lr=0.1)


def _rates(make, steps: int) -> list[list[float]]:
    opt = _optimizer()
    sched = make(opt)
    rates = []
    for _ in range(steps):
        rates.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    return rates


PHASES = [(0, 0, 5), (0, 7, 13), (4, 0, 9), (10, 25, 15), (3, 2, 1), (6, 6, 0)]
SETTINGS = list(itertools.product(PHASES, COOLDOWN_TYPES, [0.0, 0.1], [0.5, 1.25]))


@pytest.mark.parametrize("phases, cooldown, ratio, cycles", SETTINGS)
def test_rates_equal_pytorch_optimizers_value_for_value(phases, cooldown, ratio, cycles):
    warmup, stable, decay = phases
    kwargs = dict(num_warmup_steps=warmup, num_stable_steps=stable, num_decay_steps=decay,
                  min_lr_ratio=ratio, num_cycles=cycles, cooldown_type=cooldown)
    steps = warmup + stable + decay + 5
    ours = _rates(lambda o: get_wsd_schedule(o, **kwargs), steps)
    theirs = _rates(lambda o: reference.get_wsd_schedule(o, **kwargs), steps)
    assert ours == theirs  # exact floats, every step, both groups


def test_defaults_and_resuming_equal_the_reference():
    ours = _rates(lambda o: get_wsd_schedule(o, 3, 4, 6), 16)
    theirs = _rates(lambda o: reference.get_wsd_schedule(o, 3, 4, 6), 16)
    assert ours == theirs
    # resuming: last_epoch with initial_lr in the groups, as after a checkpoint
    def resumed(factory):
        opt = _optimizer()
        for g in opt.param_groups:
            g["initial_lr"] = g["lr"]
        sched = factory(opt, 3, 4, 6, last_epoch=7)
        return [sched.get_last_lr()] + [(opt.step(), sched.step(), sched.get_last_lr())[2]
                                         for _ in range(5)]
    assert resumed(get_wsd_schedule) == resumed(reference.get_wsd_schedule)


def test_the_references_conventions_are_kept():
    """The first step at rate 0; a linear, 1-sqrt or 1-square decay that ignores
    min_lr_ratio until the decay is over, then jumps to it; the cosine ends at it."""
    def multipliers(cooldown):
        opt = _optimizer()
        sched = get_wsd_schedule(opt, 2, 2, 4, min_lr_ratio=0.2, cooldown_type=cooldown)
        return [(sched.get_last_lr()[0] / 0.1, opt.step(), sched.step())[0]
                for _ in range(10)]
    linear = multipliers("linear")
    assert linear[0] == 0.0 and linear[1] == 0.5 and linear[2:4] == [1.0, 1.0]
    assert linear[4:8] == pytest.approx([1.0, 0.75, 0.5, 0.25]) and linear[8] == \
        pytest.approx(0.2)
    assert multipliers("1-sqrt")[7] == pytest.approx(1 - math.sqrt(0.75))  # below 0.2
    cosine = multipliers("cosine")
    assert cosine[7] == pytest.approx(0.2 + 0.8 * 0.5 * (1 + math.cos(math.pi * 0.75)))
    assert cosine[8] == pytest.approx(0.2) and all(c >= 0.2 for c in cosine[2:])


def test_with_no_warmup_and_min_ratio_zero_the_closed_form_agrees():
    for cooldown, (stable, decay) in itertools.product(COOLDOWN_TYPES, [(0, 8), (5, 11)]):
        opt = _optimizer()
        sched = get_wsd_schedule(opt, 0, stable, decay, cooldown_type=cooldown)
        for step in range(stable + decay + 3):
            closed = warmup_stable_decay(step, warmup_steps=0, stable_steps=stable,
                                         decay_steps=decay, decay=cooldown)
            assert sched.get_last_lr()[0] / 0.1 == pytest.approx(closed, abs=1e-15)
            opt.step()
            sched.step()


@pytest.mark.parametrize("decay", WSD_DECAYS)
def test_every_closed_form_shape_falls_from_the_peak_to_min_ratio(decay):
    f = partial(warmup_stable_decay, warmup_steps=3, stable_steps=10, decay_steps=20,
                min_ratio=0.1, decay=decay)
    values = [f(s) for s in range(40)]
    assert values[3:13] == [1.0] * 10 and values[13] == 1.0
    assert all(a >= b for a, b in zip(values[13:], values[14:]))  # never rises
    assert values[33] == pytest.approx(0.1) and values[39] == pytest.approx(0.1)
    # the shape at mid-decay: linear 1/2, cosine 1/2, 1-sqrt sqrt(1/2), 1-square 1/4
    assert decay_shape(0.5, decay) == pytest.approx(
        {"linear": 0.5, "cosine": 0.5, "1-sqrt": math.sqrt(0.5), "1-square": 0.25}[decay])
    assert (decay_shape(0.0, decay), decay_shape(1.0, decay)) == (0.0, 1.0)


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_warmup_steps=-1), "num_warmup_steps: -1"),
    (dict(num_decay_steps=2.5), "num_decay_steps: 2.5"),
    (dict(min_lr_ratio=1.5), "min_lr_ratio: 1.5"),
    (dict(num_cycles=0.0), "num_cycles: 0.0"),
    (dict(cooldown_type="exp"), "cooldown_type: 'exp'"),
])
def test_bad_arguments_are_named(kwargs, message):
    args = dict(num_warmup_steps=1, num_stable_steps=1, num_decay_steps=1) | kwargs
    name, value = message.split(": ")
    with pytest.raises(ValueError, match=f"Invalid {name} value: {value}".replace(".", r"\.")):
        get_wsd_schedule(_optimizer(), **args)
    with pytest.raises(ValueError, match="Invalid decay value: 'exp'"):
        warmup_stable_decay(0, warmup_steps=0, stable_steps=0, decay_steps=1, decay="exp")
