"""The tutorial's warmup-cosine multiplier (optedu.lr_scheduler.variants.schedules), against optedu's own."""

import math
from functools import partial

import torch

import optedu
from optedu import lr_scheduler as O
from optedu.lr_scheduler.schedules import linear_warmup_cosine
from optedu.lr_scheduler.variants.schedules import warmup_cosine_from_zero


def test_values_by_hand():
    f = partial(warmup_cosine_from_zero, warmup_steps=4, total_steps=14)
    assert [f(t) for t in range(5)] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert abs(f(9) - 0.5) < 1e-15                   # halfway down the cosine
    assert abs(f(14)) < 1e-15                        # 0 at total_steps


def test_first_step_runs_at_rate_zero():
    w = torch.ones(3, requires_grad=True)
    opt = optedu.SGD([w], lr=1.0)
    O.LambdaLR(opt, partial(warmup_cosine_from_zero, warmup_steps=10, total_steps=100))
    assert opt.param_groups[0]["lr"] == 0.0
    w.grad = torch.ones(3)
    opt.step()
    assert torch.equal(w.detach(), torch.ones(3))   # the step moved nothing


def test_rises_again_past_total_steps_where_optedu_holds():
    f = partial(warmup_cosine_from_zero, warmup_steps=10, total_steps=100)
    ours = partial(linear_warmup_cosine, warmup_steps=10, total_steps=100)
    for k in (1, 20, 45):
        assert abs(f(100 + k) - f(100 - k)) < 1e-12   # mirror image around total_steps
        assert ours(100 + k) == 0.0
    assert abs(f(190) - 1.0) < 1e-12


def test_equals_optedu_after_the_warmup():
    f = partial(warmup_cosine_from_zero, warmup_steps=10, total_steps=100)
    ours = partial(linear_warmup_cosine, warmup_steps=10, total_steps=100)
    for t in range(10, 101):
        assert math.isclose(f(t), ours(t), rel_tol=0, abs_tol=1e-15)
    for t in range(10):                              # the ramps differ: t/w against (t+1)/(w+1)
        assert f(t) == t / 10 and abs(ours(t) - (t + 1) / 11) < 1e-15
