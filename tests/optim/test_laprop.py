"""optedu LaProp against pytorch_optimizer.LaProp 4.1.0: bit for bit with its per-parameter
path over every option, float32 and float64, one and two groups, a scheduled rate, checkpoints
both ways; its multi-tensor path to a measured bound; its L2 setting, which does not decay;
then the paper's bound on the step, which Adam breaks when beta1 > sqrt(beta2)."""

from __future__ import annotations

import re

import pytest
import torch
from pytorch_optimizer import LaProp as Reference

import optedu
from optedu.optim.laprop import LaProp
from optimizers import FULL
import reference_harness as harness

STATE = ("exp_avg", "exp_avg_sq", "exp_mean_avg_beta2", "max_exp_avg_sq", "exp_avg_lr_1",
         "exp_avg_lr_2")


DECAYS = {"none": dict(weight_decay=0.0), "decoupled": dict(weight_decay=0.1),
          "fixed": dict(weight_decay=0.01, fixed_decay=True)}
OPTIONS = dict(decay=list(DECAYS), centered=[False, True], ams_bound=[False, True],
               maximize=[False, True])
BASE = dict(lr=0.01, betas=(0.8, 0.99), eps=1e-8, steps_before_using_centered=5)
SECOND = {"betas": (0.7, 0.9), "eps": 1e-3, "weight_decay": 0.3}
# a scheduled rate: the momentum's correction weighs the rates it holds
HALVING = lambda opt: torch.optim.lr_scheduler.StepLR(opt, 7, gamma=0.5)  # noqa: E731


def _cases():
    return harness.cases(OPTIONS, every=13, full=FULL)


@pytest.mark.parametrize(("options", "dtype", "two"), _cases(),
                         ids=lambda x: str(x).replace("torch.", ""))
def test_bit_identical_to_pytorch_optimizer(options, dtype, two):
    """25 steps under a halving rate: parameters, every state entry and the group's step bit
    for bit against its per-parameter path (foreach=False)."""
    options = dict(options)
    kwargs = {**BASE, **DECAYS[options.pop("decay")], **options}
    a, ours = harness.run(lambda g: LaProp(g, **kwargs), dtype, two, SECOND, scheduler=HALVING)
    b, theirs = harness.run(lambda g: Reference(g, foreach=False, **kwargs), dtype, two,
                            SECOND, scheduler=HALVING)
    assert harness.same(a, b)
    for p, q in zip(a, b):
        assert sorted(ours.state[p]) == sorted(theirs.state[q])
        for key in STATE:
            if key in ours.state[p]:
                assert torch.equal(torch.as_tensor(ours.state[p][key]),
                                   torch.as_tensor(theirs.state[q][key])), key
    assert [g["step"] for g in ours.param_groups] == [g["step"] for g in theirs.param_groups]
    assert not harness.same(a, harness.params(dtype))


def test_its_multi_tensor_path():
    """Its CPU default (foreach=None) keeps the step size 1/c_t as a float32 tensor: float32
    parameters bit for bit; float64 ones differ by the float32 rounding of 1/c_t (relative
    2^-24 on each move): 25 steps measured 9.6e-10 over all options; bound 1e-8."""
    kwargs = dict(BASE, weight_decay=0.1, centered=True, ams_bound=True)
    for dtype in (torch.float32, torch.float64):
        a, _ = harness.run(lambda g: LaProp(g, **kwargs), dtype)
        b, _ = harness.run(lambda g: Reference(g, **kwargs), dtype)
        if dtype == torch.float32:
            assert harness.same(a, b)
        else:
            assert 0 < harness.worst(a, b) <= 1e-8


def test_its_l2_setting_does_not_decay():
    """Its weight_decouple=False adds lambda*theta to p.grad after the step: the parameters
    move exactly as without decay. optedu's is L2 (the gradient gets lambda*theta first)."""
    l2 = dict(BASE, weight_decay=0.1, weight_decouple=False)
    theirs, _ = harness.run(lambda g: Reference(g, foreach=False, **l2))
    undecayed, _ = harness.run(lambda g: LaProp(g, **BASE))
    assert harness.same(theirs, undecayed)
    ours, _ = harness.run(lambda g: LaProp(g, **l2))
    assert harness.worst(ours, undecayed) > 1e-4


def test_defaults_are_pytorch_optimizer_s():
    ours = LaProp(harness.params(torch.float64))
    theirs = Reference(harness.params(torch.float64))
    assert ours.defaults == {**{k: v for k, v in theirs.defaults.items() if k != "foreach"},
                             "maximize": False}
    assert ours.steps_before_using_centered == theirs.steps_before_using_centered == 10


@pytest.mark.parametrize("load_into", [LaProp, Reference], ids=["optedu", "reference"])
@pytest.mark.parametrize("save_from", [LaProp, Reference], ids=["optedu", "reference"])
def test_state_dict_round_trip(save_from, load_into):
    kwargs = dict(BASE, weight_decay=0.1, centered=True, ams_bound=True, foreach=False)
    make = lambda cls, g: cls(g, **{k: v for k, v in kwargs.items()  # noqa: E731
                                    if k != "foreach" or cls is Reference})
    harness.resume(lambda g: make(save_from, g),
                   lambda g: make(load_into, g), SECOND)


def _largest_move(make, beta1: float, beta2: float, n: int = 200) -> float:
    """The largest |theta_t - theta_{t-1}| over small alternating gradients with one spike."""
    x = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = make([x], lr=0.01, betas=(beta1, beta2), eps=0.0)
    moves = []
    for t in range(n):
        x.grad = torch.full_like(x, 1.0 if t == 50 else 1e-3 * (-1) ** t)
        before = x.item()
        opt.step()
        moves.append(abs(x.item() - before))
    return max(moves)


@pytest.mark.parametrize("betas", [(0.999, 0.9), (0.99, 0.5), (0.9, 0.999)], ids=str)
def test_step_bounded_for_any_betas(betas):
    """LaProp's momentum averages g/sqrt(v_hat), each at most 1/sqrt(1-beta2) in size (v_t
    holds (1-beta2) g_t^2), so every move is at most lr/sqrt(1-beta2), whatever beta1 (Ziyin
    et al.). Adam's m_hat/sqrt(v_hat) has no such bound once beta1 > sqrt(beta2): after a
    spike its v forgets faster than its m."""
    beta1, beta2 = betas
    bound = 0.01 / (1 - beta2) ** 0.5
    assert _largest_move(LaProp, beta1, beta2) <= bound * (1 + 1e-12)
    adam = _largest_move(optedu.Adam, beta1, beta2)
    assert (adam > bound) == (beta1 > beta2**0.5)


def test_complex_and_grad_none_and_sparse():
    harness.complex_unused_sparse(LaProp, Reference, "LaProp")


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=-0.1), "Invalid learning rate: -0.1"),
    (dict(betas=(1.0, 0.99)), "Invalid beta parameter at index 0: 1.0"),
    (dict(betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
    (dict(weight_decay=-0.01), "Invalid weight_decay value: -0.01"),
    (dict(eps=-1e-8), "Invalid epsilon value: -1e-08"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        LaProp(harness.params(torch.float64), **kwargs)
