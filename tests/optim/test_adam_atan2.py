"""optedu.AdamAtan2 against lucidrains' adam-atan2-pytorch 0.4.1 (the reference of the
rule's arguments): bit for bit over its options in float32 and float64, one and two groups,
checkpoints both ways; the rule's two limits (Adam without ε where m̂/√v̂ is small, a bound
of aπ/2 where it is large); bad arguments refused by name."""

from __future__ import annotations

import math

import adam_atan2_pytorch
import pytest
import torch

from optedu.optim.adam_atan2 import AdamAtan2
from optimizers import FULL
import reference_harness as harness

OPTIONS = dict(lr=[1e-3, 0.05], weight_decay=[0.0, 0.1], regen_reg_rate=[0.0, 0.2],
               decoupled_wd=[False, True], cautious_wd=[False, True],
               cautious_factor=[1.0, 0.0, 0.5])
SECOND = {"lr": 0.02, "betas": (0.8, 0.95), "a": 1.0, "b": 2.0}
KEYS = ("exp_avg", "exp_avg_sq")


def _cases():
    return harness.cases(OPTIONS, every=13, full=FULL,
                         keep=lambda c: not (c["weight_decay"] and c["regen_reg_rate"]))


def _same_state(ours, theirs) -> None:
    for p, q in zip(ours.state, theirs.state):
        a, b = ours.state[p], theirs.state[q]
        assert a.keys() == b.keys()
        assert a["steps"] == b["steps"]
        for key in a:
            if key != "steps":
                assert torch.equal(a[key], b[key]), key
    for g, h in zip(ours.param_groups, theirs.param_groups):
        assert {k: v for k, v in g.items() if k != "params"} == \
            {k: v for k, v in h.items() if k != "params"}


@pytest.mark.parametrize(("options", "dtype", "two"), _cases(),
                         ids=lambda x: str(x).replace("torch.", ""))
def test_bit_identical_to_adam_atan2_pytorch(options, dtype, two):
    """25 steps: parameters, every state entry and the groups identical bit for bit."""
    a, ours = harness.run(lambda g: AdamAtan2(g, **options), dtype, two, SECOND)
    b, theirs = harness.run(lambda g: adam_atan2_pytorch.AdamAtan2(g, **options), dtype,
                            two, SECOND)
    assert harness.same(a, b)
    _same_state(ours, theirs)
    assert not harness.same(a, harness.params(dtype))


def test_defaults_match():
    ours = AdamAtan2(harness.params())
    theirs = adam_atan2_pytorch.AdamAtan2(harness.params())
    assert ours.defaults == theirs.defaults


def test_checkpoints_move_both_ways():
    harness.checkpoints_move_both_ways(lambda g: AdamAtan2(g, lr=0.01),
                                       lambda g: adam_atan2_pytorch.AdamAtan2(g, lr=0.01),
                                       SECOND)


@pytest.mark.parametrize("size", [1e-12, 1e-6, 1.0, 1e6])
def test_the_first_step_is_a_pi_over_4_at_every_gradient_scale(size):
    """No ε: at the first step m̂ = g and √v̂ = |g|, so every coordinate moves by
    η·a·atan2(1, 1) = η·a·π/4 whatever the gradient's scale; Adam's first step,
    η·g/(|g| + ε), falls below η once |g| nears ε (here: at 1e-12 it is 1e-4 η)."""
    p = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    p.grad = torch.tensor([size, -size, 2 * size], dtype=torch.float64)
    AdamAtan2([p], lr=0.1).step()
    assert torch.allclose(p.detach().abs(), torch.full((3,), 0.1 * 1.27 * math.pi / 4,
                                                       dtype=torch.float64), rtol=1e-15)
    q = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    q.grad = torch.tensor([size], dtype=torch.float64)
    torch.optim.Adam([q], lr=0.1).step()
    assert (abs(q.item()) < 0.01) == (size < 1e-9)


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(lr=0.0), "Invalid learning rate: 0.0"),
    (dict(betas=(0.9, 1.0)), "Invalid betas value"),
    (dict(weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
    (dict(regen_reg_rate=-0.1), "Invalid regen_reg_rate value: -0.1"),
    (dict(weight_decay=0.1, regen_reg_rate=0.1), "Invalid regen_reg_rate value: 0.1"),
    (dict(cautious_factor=1.5), "Invalid cautious_factor value: 1.5"),
])
def test_bad_arguments_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        AdamAtan2(harness.params(), **kwargs)


def test_complex_parameters_are_refused():
    p = torch.zeros(2, dtype=torch.complex64, requires_grad=True)
    p.grad = torch.ones_like(p)
    with pytest.raises(RuntimeError, match="does not support complex"):
        AdamAtan2([p]).step()
