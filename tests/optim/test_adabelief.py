"""optedu AdaBelief against pytorch_optimizer.AdaBelief 4.1.0: bit for bit with its per-parameter
path over every option (decay coupled, decoupled and fixed; rectify with and without the SGD
fallback; ams_bound; maximize), float32 and float64, one and two groups, a scheduled rate; its
multi-tensor path (its CPU default where it takes it) bit for bit too; checkpoints both ways."""

from __future__ import annotations

import re

import pytest
import torch
from pytorch_optimizer import AdaBelief as Reference

from optedu.optim.adabelief import AdaBelief
from optimizers import FULL
import reference_harness as harness

STATE = ("exp_avg", "exp_avg_var", "max_exp_avg_var")

DECAYS = {"none": dict(weight_decay=0.0), "decoupled": dict(weight_decay=0.1),
          "fixed": dict(weight_decay=0.01, fixed_decay=True),
          "l2": dict(weight_decay=0.1, weight_decouple=False)}
OPTIONS = dict(decay=list(DECAYS), rectify=[False, True], degenerated_to_sgd=[True, False],
               ams_bound=[False, True], maximize=[False, True])
# n_sma_threshold 6 with beta2 0.99: rho_t crosses it at step 6, inside the 25 steps
BASE = dict(lr=0.01, betas=(0.8, 0.99), eps=1e-8, n_sma_threshold=6)
SECOND = {"betas": (0.7, 0.9), "eps": 1e-3, "weight_decay": 0.3}
HALVING = lambda opt: torch.optim.lr_scheduler.StepLR(opt, 7, gamma=0.5)  # noqa: E731


def _cases():
    return harness.cases(OPTIONS, every=11, full=FULL)


@pytest.mark.parametrize(("options", "dtype", "two"), _cases(),
                         ids=lambda x: str(x).replace("torch.", ""))
def test_bit_identical_to_pytorch_optimizer(options, dtype, two):
    """25 steps under a halving rate: parameters, every state entry and the group's step bit
    for bit against its per-parameter path (foreach=False)."""
    options = dict(options)
    kwargs = {**BASE, **DECAYS[options.pop("decay")], **options}
    a, ours = harness.run(lambda g: AdaBelief(g, **kwargs), dtype, two, SECOND,
                          scheduler=HALVING)
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


@pytest.mark.parametrize("decay", list(DECAYS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_its_multi_tensor_path(decay, dtype):
    """Its default foreach=None takes the multi-tensor path without rectify and ams_bound:
    bit for bit too."""
    kwargs = dict(BASE, **DECAYS[decay], maximize=True)
    a, _ = harness.run(lambda g: AdaBelief(g, **kwargs), dtype, True, SECOND)
    b, _ = harness.run(lambda g: Reference(g, **kwargs), dtype, True, SECOND)
    assert harness.same(a, b)


def test_without_sgd_fallback_no_step_before_the_threshold():
    """rectify with degenerated_to_sgd=False: no move while rho_t < n_sma_threshold, though
    the averages run."""
    kwargs = dict(BASE, rectify=True, degenerated_to_sgd=False)
    a, opt = harness.run(lambda g: AdaBelief(g, **kwargs), steps=3)
    assert harness.same(a, harness.params())
    assert all(opt.state[p]["exp_avg"].abs().sum() > 0 for p in a)


def test_defaults_are_pytorch_optimizer_s():
    ours = AdaBelief(harness.params(torch.float64))
    theirs = Reference(harness.params(torch.float64))
    assert ours.defaults == {k: v for k, v in theirs.defaults.items() if k != "foreach"}
    for key in ("n_sma_threshold", "degenerated_to_sgd", "maximize"):
        assert getattr(ours, key) == getattr(theirs, key), key


def test_checkpoints_move_both_ways():
    kwargs = dict(BASE, weight_decay=0.1, rectify=True, ams_bound=True)
    harness.checkpoints_move_both_ways(
        lambda g: AdaBelief(g, **kwargs), lambda g: Reference(g, foreach=False, **kwargs),
        SECOND)


def test_complex_and_grad_none_and_sparse():
    harness.complex_unused_sparse(AdaBelief, Reference, "AdaBelief",
                                  weight_decay=0.1, weight_decouple=False, ams_bound=True)


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=-0.1), "Invalid learning rate: -0.1"),
    (dict(betas=(1.0, 0.99)), "Invalid beta parameter at index 0: 1.0"),
    (dict(betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
    (dict(weight_decay=-0.01), "Invalid weight_decay value: -0.01"),
    (dict(eps=-1e-8), "Invalid epsilon value: -1e-08"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        AdaBelief(harness.params(torch.float64), **kwargs)
