"""optedu.Lion against lion-pytorch (bit for bit) and the paper's Program 1
computed by hand."""

from __future__ import annotations

import copy
import itertools

import lion_pytorch
import pytest
import torch

import optedu

F64 = torch.float64
STEPS = 50


def _params(seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shapes = [(4, 5), (5,), (5, 1)]
    return [torch.randn(s, generator=g, dtype=F64).requires_grad_()
            for s in shapes]


def _loss(params: list[torch.Tensor]) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(16, 4, generator=g, dtype=F64)
    y = torch.randn(16, 1, generator=g, dtype=F64)
    w1, b1, w2 = params
    return ((torch.tanh(x @ w1 + b1) @ w2 - y) ** 2).mean()


def _groups(params, two: bool, second: dict):
    if not two:
        return params
    return [{"params": params[:2]}, {"params": params[2:], **second}]


def _run(cls, kwargs, two, second, steps=STEPS, scheduler=None, unused=None):
    params = _params()
    opt = cls(_groups(params, two, second) if unused is None
              else [*params, unused], **kwargs)
    sched = scheduler(opt) if scheduler else None
    for _ in range(steps):
        opt.zero_grad()
        _loss(params).backward()
        opt.step()
        if sched:
            sched.step()
    return params, opt


CASES = [dict(lr=lr, betas=betas, weight_decay=wd)
         for lr, betas, wd in itertools.product(
             [1e-3, 0.03], [(0.9, 0.99), (0.5, 0.8)], [0.0, 0.1])]
SECOND = {"lr": 0.01, "betas": (0.8, 0.95), "weight_decay": 0.3}


@pytest.mark.parametrize("two", [False, True], ids=["1group", "2groups"])
@pytest.mark.parametrize("kwargs", CASES, ids=str)
def test_bit_equal_to_lion_pytorch(kwargs, two):
    """50 steps, parameters and ``exp_avg`` identical bit for bit."""
    ours, opt_a = _run(optedu.Lion, kwargs, two, SECOND)
    theirs, opt_b = _run(lion_pytorch.Lion, kwargs, two, SECOND)
    for p, q in zip(ours, theirs):
        assert torch.equal(p, q)
        assert torch.equal(opt_a.state[p]["exp_avg"], opt_b.state[q]["exp_avg"])
    assert not torch.equal(ours[0], _params()[0])


def test_defaults_match_lion_pytorch():
    a = optedu.Lion(_params()).defaults
    b = lion_pytorch.Lion(_params()).defaults
    assert a == {k: tuple(v) if k == "betas" else v for k, v in b.items()}


def test_decoupled_weight_decay_is_weight_decay_over_lr():
    """lion-pytorch's ``decoupled_weight_decay=True`` divides the decay by the
    initial lr: optedu reaches it with ``weight_decay=wd / lr``, bit for bit,
    also when a scheduler changes lr."""
    lr, wd = 0.03, 0.003
    step = lambda o: torch.optim.lr_scheduler.StepLR(o, 10, gamma=0.5)
    ours, _ = _run(optedu.Lion, dict(lr=lr, weight_decay=wd / lr), False, {},
                   scheduler=step)
    theirs, _ = _run(lambda p, **k: lion_pytorch.Lion(
        p, decoupled_weight_decay=True, **k), dict(lr=lr, weight_decay=wd),
        False, {}, scheduler=step)
    assert all(torch.equal(p, q) for p, q in zip(ours, theirs))


def test_two_steps_by_hand():
    """Program 1 of Chen et al. (2023) worked on paper: eta 0.1, betas
    (0.9, 0.99), lambda 0.5; the third coordinate has c_1 = 0, sign 0."""
    theta = torch.tensor([1.0, -2.0, 0.5], dtype=F64, requires_grad=True)
    opt = optedu.Lion([theta], lr=0.1, betas=(0.9, 0.99), weight_decay=0.5)
    # step 1: theta*(1-0.05) = [0.95, -1.9, 0.475]; c = 0.1 g = [.03,-.01,0]
    theta.grad = torch.tensor([0.3, -0.1, 0.0], dtype=F64)
    opt.step()
    expected = torch.tensor([0.85, -1.8, 0.475], dtype=F64)
    torch.testing.assert_close(theta.detach(), expected, rtol=1e-15, atol=0)
    torch.testing.assert_close(  # m_1 = 0.01 g_1
        opt.state[theta]["exp_avg"],
        torch.tensor([0.003, -0.001, 0.0], dtype=F64), rtol=1e-15, atol=0)
    # step 2: theta*0.95 = [0.8075, -1.71, 0.45125];
    # c = 0.9 m_1 + 0.1 g_2 = [-0.0173, -0.0059, 0.04], sign [-1, -1, 1]
    theta.grad = torch.tensor([-0.2, -0.05, 0.4], dtype=F64)
    opt.step()
    expected = torch.tensor([0.9075, -1.61, 0.35125], dtype=F64)
    torch.testing.assert_close(theta.detach(), expected, rtol=1e-15, atol=0)
    torch.testing.assert_close(  # m_2 = 0.99 m_1 + 0.01 g_2
        opt.state[theta]["exp_avg"],
        torch.tensor([0.00097, -0.00149, 0.004], dtype=F64),
        rtol=1e-14, atol=0)


def test_every_coordinate_moves_by_lr():
    theta = torch.zeros(1000, dtype=F64, requires_grad=True)
    opt = optedu.Lion([theta], lr=0.01)
    theta.grad = torch.randn(1000, dtype=F64)
    opt.step()
    lr = torch.full((1000,), 0.01, dtype=F64)
    assert torch.equal(theta.detach().abs(), lr)


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=-0.1), "Invalid learning rate: -0.1"),
    (dict(betas=(1.0, 0.99)), "Invalid beta parameter at index 0: 1.0"),
    (dict(betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
    (dict(weight_decay=-0.01), "Invalid weight_decay value: -0.01"),
    (dict(lr=float("nan")), "Invalid learning rate: nan"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=f"^{message}$".replace(".", r"\.")):
        optedu.Lion(_params(), **kwargs)


def test_grad_none_skipped_and_sparse_refused():
    unused = torch.ones(3, dtype=F64, requires_grad=True)
    _, opt = _run(optedu.Lion, dict(lr=0.01), False, {}, steps=2,
                  unused=unused)
    assert torch.equal(unused, torch.ones(3, dtype=F64))
    assert unused not in opt.state
    emb = torch.zeros(4, 2, dtype=F64, requires_grad=True)
    emb.grad = torch.zeros(4, 2, dtype=F64).to_sparse()
    with pytest.raises(RuntimeError, match="does not support sparse"):
        optedu.Lion([emb]).step()


def _continue(params, opt, steps=10):
    for _ in range(steps):
        opt.zero_grad()
        _loss(params).backward()
        opt.step()


@pytest.mark.parametrize("load_into", [optedu.Lion, lion_pytorch.Lion],
                         ids=["optedu", "lion_pytorch"])
def test_state_dict_round_trip(load_into):
    """Checkpoint after 10 steps, resume in a fresh optimizer: bit-identical
    to the uninterrupted run (also when lion-pytorch resumes)."""
    kwargs = dict(lr=0.01, weight_decay=0.1)
    params, opt = _run(optedu.Lion, kwargs, True, SECOND, steps=10)
    twin = [p.detach().clone().requires_grad_() for p in params]
    twin_opt = load_into(_groups(twin, True, SECOND), **kwargs)
    twin_opt.load_state_dict(copy.deepcopy(opt.state_dict()))
    _continue(params, opt)
    _continue(twin, twin_opt)
    assert all(torch.equal(p, q) for p, q in zip(params, twin))


SCHEDULERS = {
    "step": lambda o: torch.optim.lr_scheduler.StepLR(o, 7, gamma=0.5),
    "cosine": lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 50),
    "onecycle": lambda o: torch.optim.lr_scheduler.OneCycleLR(
        o, max_lr=0.05, total_steps=50),
}


@pytest.mark.parametrize("name", SCHEDULERS)
def test_torch_schedulers_drive_lion(name):
    """Same schedule (OneCycle also cycles beta1) on both: bit-identical."""
    kwargs = dict(lr=0.03, weight_decay=0.1)
    runs = [_run(cls, kwargs, True, SECOND, scheduler=SCHEDULERS[name])
            for cls in (optedu.Lion, lion_pytorch.Lion)]
    (ours, opt_a), (theirs, opt_b) = runs
    assert [g["lr"] for g in opt_a.param_groups] == [
        g["lr"] for g in opt_b.param_groups]
    assert opt_a.param_groups[0]["lr"] != 0.03
    assert all(torch.equal(p, q) for p, q in zip(ours, theirs))
