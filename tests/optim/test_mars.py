"""optedu MARS against pytorch_optimizer.MARS 4.1.0: bit for bit with its per-parameter path
over every option of its AdamW and Lion forms, float32 and float64, one and two groups, a
scheduled rate, checkpoints both ways; its multi-tensor path; its L2 quirk; then the
correction's identity: gamma = 1 is STORM's estimator, gamma = 0 is AdamW on g."""

from __future__ import annotations

import copy
import itertools
import re

import pytest
import torch
from pytorch_optimizer import MARS as Reference

import optedu
from optedu.optim.mars import MARS
from optimizers import FULL
import reference_harness as harness

STATE = ("exp_avg", "exp_avg_sq", "last_grad", "max_exp_avg_sq")


DECAYS = {"none": dict(weight_decay=0.0, weight_decay_1d=0.0),
          "decoupled": dict(weight_decay=0.1), "fixed": dict(weight_decay=0.01, fixed_decay=True)}
OPTIONS = dict(mars_type=["adamw", "lion"], decay=list(DECAYS), optimize_1d=[False, True],
               ams_bound=[False, True], cautious=[False, True], maximize=[False, True])
# gamma 0.5 makes the clipping (norm > 1) fire on some steps, 0.025 (the default) on none
BASE = dict(lr=0.01, lr_1d=0.02, gamma=0.5, betas=(0.8, 0.99), betas_1d=(0.85, 0.9), eps=1e-8)
SECOND = {"betas": (0.7, 0.9), "eps": 1e-3, "weight_decay": 0.3, "gamma": 0.025}
HALVING = lambda opt: torch.optim.lr_scheduler.StepLR(opt, 7, gamma=0.5)  # noqa: E731


def _cases():
    combos = [dict(zip(OPTIONS, v)) for v in itertools.product(*OPTIONS.values())]
    cases = [(c, dtype, two) for c in combos
             for dtype in (torch.float32, torch.float64) for two in (False, True)]
    # quick tier: every 29th of the 384 (29 is prime to each factor)
    return cases if FULL else cases[::29]


@pytest.mark.parametrize(("options", "dtype", "two"), _cases(),
                         ids=lambda x: str(x).replace("torch.", ""))
def test_bit_identical_to_pytorch_optimizer(options, dtype, two):
    """25 steps under a halving rate: parameters, every state entry and the group's step bit
    for bit against its per-parameter path (foreach=False)."""
    options = dict(options)
    kwargs = {**BASE, **DECAYS[options.pop("decay")], **options}
    a, ours = harness.run(lambda g: MARS(g, **kwargs), dtype, two, SECOND, scheduler=HALVING)
    b, theirs = harness.run(lambda g: Reference(g, foreach=False, **kwargs), dtype, two,
                            SECOND, scheduler=HALVING)
    assert harness.same(a, b)
    for p, q in zip(a, b):
        assert sorted(ours.state[p]) == sorted(theirs.state[q])
        for key in STATE:
            if key in ours.state[p]:
                assert torch.equal(ours.state[p][key], theirs.state[q][key]), key
    assert [g["step"] for g in ours.param_groups] == [g["step"] for g in theirs.param_groups]
    assert not harness.same(a, harness.params(dtype))


@pytest.mark.parametrize("mars_type", ["adamw", "lion"])
def test_its_multi_tensor_path(mars_type):
    """Its CPU default (foreach=None) writes the correction's scalar as gamma*beta1/(1-beta1)
    (here gamma*(beta1/(1-beta1))) and divides by max(norm, 1): float32 and the Lion form
    stay bit for bit; float64 AdamW-form parameters differ by the last bit of that scalar,
    measured 1.1e-16 after 25 steps (gamma 0.5); bound 1e-15."""
    for dtype in (torch.float32, torch.float64):
        kwargs = dict(BASE, mars_type=mars_type, weight_decay=0.1, cautious=True)
        a, _ = harness.run(lambda g: MARS(g, **kwargs), dtype, True, SECOND)
        b, _ = harness.run(lambda g: Reference(g, **kwargs), dtype, True, SECOND)
        if dtype == torch.float32 or mars_type == "lion":
            assert harness.same(a, b)
        else:
            assert max((x - y).abs().max().item() for x, y in zip(a, b)) <= 1e-15


def test_its_l2_setting_reaches_only_last_grad():
    """Its weight_decouple=False adds lambda*theta to p.grad after the step: the parameters
    move as without decay, and the decay enters only last_grad (the next correction).
    optedu's is L2: the gradient gets lambda*theta first."""
    l2 = dict(BASE, weight_decay=0.1, weight_decay_1d=0.1, weight_decouple=False)
    none = dict(BASE, weight_decay=0.0, weight_decay_1d=0.0)
    theirs, t_opt = harness.run(lambda g: Reference(g, foreach=False, **l2), steps=1)
    undecayed, u_opt = harness.run(lambda g: MARS(g, **none), steps=1)
    assert harness.same(theirs, undecayed)
    assert not torch.equal(t_opt.state[theirs[0]]["last_grad"],
                           u_opt.state[undecayed[0]]["last_grad"])
    ours, _ = harness.run(lambda g: MARS(g, **l2))
    assert (ours[0] - harness.run(lambda g: MARS(g, **none))[0][0]).abs().max() > 1e-4


def test_defaults_are_pytorch_optimizer_s():
    ours = MARS(harness.params(torch.float64))
    theirs = Reference(harness.params(torch.float64))
    assert ours.defaults == {**{k: v for k, v in theirs.defaults.items() if k != "foreach"},
                             "maximize": False}


@pytest.mark.parametrize("load_into", [MARS, Reference], ids=["optedu", "reference"])
@pytest.mark.parametrize("save_from", [MARS, Reference], ids=["optedu", "reference"])
def test_state_dict_round_trip(save_from, load_into):
    kwargs = dict(BASE, weight_decay=0.1, ams_bound=True, cautious=True)
    make = lambda cls, g: cls(g, **kwargs, **({"foreach": False}  # noqa: E731
                                              if cls is Reference else {}))
    params, opt = harness.run(lambda g: make(save_from, g), two=True, second=SECOND, steps=10)
    twin = [p.detach().clone().requires_grad_() for p in params]
    twin_opt = make(load_into, harness.groups(twin, True, SECOND))
    twin_opt.load_state_dict(copy.deepcopy(opt.state_dict()))
    harness.train(params, opt, steps=10, start=10)
    harness.train(twin, twin_opt, steps=10, start=10)
    assert harness.same(params, twin)


def test_gamma_one_is_storm_and_gamma_zero_is_adamw():
    """m_t = beta m + (1-beta) c_t with c_t = g_t + gamma beta/(1-beta) (g_t - g_{t-1}) is, at
    gamma = 1, STORM's d_t = g_t + beta (d_{t-1} - g_{t-1}) (Cutkosky and Orabona 2019), its
    old gradient taken from the last batch (MARS-approx); at
    gamma = 0 with no clipping, AdamW on g with pytorch_optimizer's eps (sqrt(v + 1e-15))."""
    beta = 0.9
    x = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = MARS([x], lr=1e-3, betas=(beta, 0.99), gamma=1.0, optimize_1d=True)
    gen = torch.Generator().manual_seed(1)
    d = torch.zeros(3, dtype=torch.float64)
    last = torch.zeros(3, dtype=torch.float64)
    for _ in range(10):
        g = 0.01 * torch.randn(3, generator=gen, dtype=torch.float64)
        x.grad = g.clone()
        opt.step()
        d = g + beta * (d - last)           # STORM, with d_0 = 0 and g_0 = 0
        last = g
        assert torch.allclose(opt.state[x]["exp_avg"], d, rtol=1e-12, atol=0)
    # gamma = 0: the 2-D path is AdamW's step on the (unclipped) gradient
    w = torch.ones(2, 2, dtype=torch.float64, requires_grad=True)
    v = torch.ones(2, 2, dtype=torch.float64, requires_grad=True)
    ours = MARS([w], lr=1e-2, betas=(0.9, 0.99), gamma=0.0, eps=0.0)
    adam = optedu.AdamW([v], lr=1e-2, betas=(0.9, 0.99), eps=0.0, weight_decay=0.0)
    for t in range(5):
        w.grad = torch.full_like(w, 0.1 * (t + 1))
        v.grad = w.grad.clone()
        ours.step()
        adam.step()
    assert torch.allclose(w, v, rtol=0, atol=1e-12)


def test_grad_none_and_sparse():
    params = harness.params(torch.float64)
    unused = torch.ones(3, dtype=torch.float64, requires_grad=True)
    _, opt = harness.train(params, MARS([*params, unused]), steps=2)
    assert torch.equal(unused, torch.ones(3, dtype=torch.float64)) and unused not in opt.state
    emb = torch.zeros(4, 2, requires_grad=True)
    emb.grad = torch.zeros(4, 2).to_sparse()
    with pytest.raises(RuntimeError, match="MARS does not support sparse gradients"):
        MARS([emb]).step()


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=-0.1), "Invalid learning rate: -0.1 (expected a number > 0)"),
    (dict(lr=0.0), "Invalid learning rate: 0.0 (expected a number > 0)"),
    (dict(lr_1d=-0.1), "Invalid learning rate: -0.1"),
    (dict(betas=(1.0, 0.99)), "Invalid beta parameter at index 0: 1.0"),
    (dict(betas_1d=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
    (dict(gamma=-0.01), "Invalid gamma value: -0.01"),
    (dict(weight_decay=-0.01), "Invalid weight_decay value: -0.01"),
    (dict(weight_decay_1d=-0.01), "Invalid weight_decay_1d value: -0.01"),
    (dict(eps=-1e-8), "Invalid epsilon value: -1e-08"),
    (dict(mars_type="sgd"), "Invalid mars_type value: sgd (expected 'adamw' or 'lion')"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        MARS(harness.params(torch.float64), **kwargs)


def test_shampoo_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="shampoo.*Muon"):
        MARS(harness.params(torch.float64), mars_type="shampoo")


def test_pieces_are_refused():
    """The clip reads the norm of the whole tensor (see ._sharding)."""
    assert not MARS.element_wise and "whole tensor" in MARS.refuses_shards
