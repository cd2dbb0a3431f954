"""optedu's schedule-free SGD and AdamW against the authors' ``schedulefree``
package: y (training), z and x (after eval()) bit for bit."""

from __future__ import annotations

import copy

import pytest
import schedulefree
import torch

import optedu
from optimizers import crossed

F64 = torch.float64
STEPS = 50


def _params() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(s, generator=g, dtype=F64).requires_grad_()
            for s in [(4, 5), (5,), (5, 1)]]


_G = torch.Generator().manual_seed(1)
_X = torch.randn(16, 4, generator=_G, dtype=F64)
_Y = torch.randn(16, 1, generator=_G, dtype=F64)


def _loss(params) -> torch.Tensor:
    w1, b1, w2 = params
    return ((torch.tanh(_X @ w1 + b1) @ w2 - _Y) ** 2).mean()


def _run(make, groups, steps=STEPS, scheduler=None):
    params = _params()
    opt = make(groups(params))
    sched = scheduler(opt) if scheduler else None
    opt.train()
    for _ in range(steps):
        opt.zero_grad()
        _loss(params).backward()
        opt.step()
        if sched:
            sched.step()
    return params, opt


def _one(p):
    return p


def _two(second):
    return lambda p: [{"params": p[:2]}, {"params": p[2:], **second}]


BASE = dict(weight_decay=0.01, warmup_steps=10, r=0.5, weight_lr_power=1.0)
VARIATIONS = [{}, dict(weight_decay=0), dict(warmup_steps=0), dict(r=0.0),
              dict(weight_lr_power=2.0), dict(weight_decay=0, warmup_steps=0,
                                              r=0.0, weight_lr_power=0.0)]
RULES = {
    "SGD": (optedu.SGDScheduleFree, schedulefree.SGDScheduleFree,
            [dict(lr=0.1, momentum=0.9), dict(lr=0.1, momentum=0.5)],
            dict(lr=0.03, momentum=0.7, weight_decay=0.1, r=1.0)),
    "AdamW": (optedu.AdamWScheduleFree, schedulefree.AdamWScheduleFree,
              [dict(lr=0.01), dict(lr=0.01, betas=(0.5, 0.8), eps=1e-3)],
              dict(lr=0.003, betas=(0.8, 0.99), eps=1e-4, warmup_steps=3)),
}
CASES = [(name, {**first, **BASE, **change}, foreach)
         for name, (_, _, firsts, _) in RULES.items()
         for first in firsts for change in VARIATIONS
         for foreach in (False, True)]


@pytest.mark.parametrize("name, kwargs, foreach, two", crossed(
    {str(case): case for case in CASES}, {"1group": False, "2groups": True}))
def test_bit_equal_to_schedulefree(name, kwargs, foreach, two):
    """50 steps: y and z after training, then x after eval(), bit-equal
    (schedulefree's foreach and per-tensor paths alike)."""
    ours_cls, theirs_cls, _, second = RULES[name]
    groups = _two(second) if two else _one
    ours, opt_a = _run(lambda p: ours_cls(p, **kwargs), groups)
    theirs, opt_b = _run(lambda p: theirs_cls(p, foreach=foreach, **kwargs),
                         groups)
    for p, q in zip(ours, theirs):
        assert torch.equal(p, q)
        for key in opt_b.state[q]:
            assert torch.equal(opt_a.state[p][key], opt_b.state[q][key]), key
    y = [p.detach().clone() for p in ours]
    opt_a.eval()
    opt_b.eval()
    assert all(torch.equal(p, q) for p, q in zip(ours, theirs))
    assert not torch.equal(ours[0], y[0])  # x differs from y
    for ga, gb in zip(opt_a.param_groups, opt_b.param_groups):
        assert {k: gb[k] for k in ga if k != "params"} == {
            k: v for k, v in ga.items() if k != "params"}


@pytest.mark.parametrize("name", RULES)
def test_x_y_z_relation_and_round_trip(name):
    """y = (1-beta) z + beta x: eval() then train() returns to y up to
    rounding (measured below 1e-15 relative)."""
    ours_cls, _, firsts, _ = RULES[name]
    params, opt = _run(lambda p: ours_cls(p, **firsts[0]), _one, steps=20)
    beta = firsts[0].get("momentum", 0.9)
    y = [p.detach().clone() for p in params]
    opt.eval()
    for p, y0 in zip(params, y):
        z = opt.state[p]["z"]
        torch.testing.assert_close((1 - beta) * z + beta * p, y0,
                                   rtol=1e-13, atol=1e-15)
    opt.train()
    for p, y0 in zip(params, y):
        torch.testing.assert_close(p.detach(), y0, rtol=1e-14, atol=1e-15)


def test_schedulefree_changes_grad_in_place_optedu_does_not():
    for cls, alters in ((optedu.AdamWScheduleFree, False),
                        (schedulefree.AdamWScheduleFree, True)):
        p = torch.ones(3, dtype=F64, requires_grad=True)
        opt = cls([p], weight_decay=0.1)
        opt.train()
        p.grad = torch.full((3,), 2.0, dtype=F64)
        opt.step()
        assert (not torch.equal(p.grad, torch.full((3,), 2.0, dtype=F64))
                ) == alters


@pytest.mark.parametrize("name", RULES)
def test_step_in_eval_mode_refused(name):
    p = torch.ones(3, dtype=F64, requires_grad=True)
    opt = RULES[name][0]([p])
    p.grad = torch.ones(3, dtype=F64)
    with pytest.raises(RuntimeError, match="not in train mode"):
        opt.step()


@pytest.mark.parametrize("name", RULES)
@pytest.mark.parametrize("load_into", ["optedu", "schedulefree"])
def test_state_dict_round_trip(name, load_into):
    """Save in eval mode after 10 steps, resume (also in schedulefree):
    bit-identical to the uninterrupted run."""
    ours_cls, theirs_cls, firsts, second = RULES[name]
    target = ours_cls if load_into == "optedu" else theirs_cls
    params, opt = _run(lambda p: ours_cls(p, **firsts[1]), _two(second),
                       steps=10)
    opt.eval()
    twin = [p.detach().clone().requires_grad_() for p in params]
    twin_opt = target(_two(second)(twin), **firsts[1])
    twin_opt.load_state_dict(copy.deepcopy(opt.state_dict()))
    for group in twin_opt.param_groups:
        # optedu keeps no 'foreach' entry; schedulefree's step reads one
        group.setdefault("foreach", False)
    for ps, o in ((params, opt), (twin, twin_opt)):
        o.train()
        for _ in range(10):
            o.zero_grad()
            _loss(ps).backward()
            o.step()
        o.eval()
    assert all(torch.equal(p, q) for p, q in zip(params, twin))


@pytest.mark.parametrize("name", RULES)
def test_torch_scheduler_drives_lr(name):
    """A torch scheduler writes group['lr'] in both libraries alike."""
    ours_cls, theirs_cls, firsts, _ = RULES[name]
    sched = lambda o: torch.optim.lr_scheduler.StepLR(o, 7, gamma=0.5)
    ours, opt_a = _run(lambda p: ours_cls(p, **firsts[0]), _one,
                       scheduler=sched)
    theirs, opt_b = _run(lambda p: theirs_cls(p, **firsts[0]), _one,
                         scheduler=sched)
    assert opt_a.param_groups[0]["lr"] == firsts[0]["lr"] * 0.5**7
    assert all(torch.equal(p, q) for p, q in zip(ours, theirs))


@pytest.mark.parametrize("name", RULES)
def test_grad_none_skipped_and_sparse_refused(name):
    cls = RULES[name][0]
    used = torch.ones(3, dtype=F64, requires_grad=True)
    unused = torch.ones(3, dtype=F64, requires_grad=True)
    opt = cls([used, unused])
    opt.train()
    for _ in range(2):
        used.grad = torch.ones(3, dtype=F64)
        opt.step()
    assert torch.equal(unused, torch.ones(3, dtype=F64))
    assert unused not in opt.state
    emb = torch.zeros(4, 2, dtype=F64, requires_grad=True)
    emb.grad = torch.zeros(4, 2, dtype=F64).to_sparse()
    opt = cls([emb])
    opt.train()
    with pytest.raises(RuntimeError, match="does not support sparse"):
        opt.step()


@pytest.mark.parametrize("cls, kwargs, message", [
    (optedu.SGDScheduleFree, dict(lr=-1.0), "Invalid learning rate: -1.0"),
    (optedu.SGDScheduleFree, dict(momentum=1.0),
     "Invalid momentum value: 1.0 (expected a number in (0, 1))"),
    (optedu.SGDScheduleFree, dict(weight_decay=-0.1),
     "Invalid weight_decay value: -0.1"),
    (optedu.SGDScheduleFree, dict(warmup_steps=2.5),
     "Invalid warmup_steps value: 2.5 (expected an integer >= 0)"),
    (optedu.AdamWScheduleFree, dict(betas=(0.0, 0.9)),
     "Invalid betas value: (0.0, 0.9) (expected beta1 > 0: eval() divides "
     "by it)"),
    (optedu.AdamWScheduleFree, dict(eps=-1.0), "Invalid epsilon value: -1.0"),
    (optedu.AdamWScheduleFree, dict(r=-1.0), "Invalid r value: -1.0"),
    (optedu.AdamWScheduleFree, dict(weight_lr_power=float("nan")),
     "Invalid weight_lr_power value: nan"),
])
def test_bad_arguments(cls, kwargs, message):
    with pytest.raises(ValueError) as error:
        cls(_params(), **kwargs)
    assert str(error.value) == message
