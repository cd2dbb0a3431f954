"""optedu Adan against pytorch_optimizer.Adan 4.1.0: bit for bit with both of its paths
(per-parameter and multi-tensor) over every option, float32 and float64, one and two groups,
a scheduled rate, checkpoints both ways; two steps by hand; torch-optimi 0.3.3's Adan to a
measured bound.

Where pytorch_optimizer departs from the paper's Algorithm 1 (Xie et al. 2022), optedu follows
it for parity:

* bias corrections: the step divides m by 1-beta1^t, v by 1-beta2^t and sqrt(n) by
  sqrt(1-beta3^t); the paper has none, and starts m_0 = g_0, n_0 = g_0^2 from a gradient taken
  before the first step instead;
* the first difference: previous_grad starts as -g_1, so Delta_1 = 0; the paper's v_1 is
  g_1 - g_0, from that extra gradient;
* epsilon after the bias correction, sqrt(n_t/(1-beta3^t)) + eps (the paper: sqrt(n_t) + eps);
* the betas are the paper's complements (0.98, 0.92, 0.99 for its 0.02, 0.08, 0.01);
* weight_decouple=False is the paper's proximal decay, theta/(1+lr*lambda) after the step;
  True multiplies by 1-lr*lambda before it (the authors' code's no_prox=True);
* the paper's restart condition is not implemented;
* two quirks of its own, reproduced: previous_grad starts from g_1 before maximize and
  gradient centralisation, so with maximize Delta_1 = -2 g_1, and with use_gc it is
  gc(g_1) - g_1; the global clip reads the constructor's max_grad_norm and eps, not a group's.
"""

from __future__ import annotations

import math
import re

import optimi
import pytest
import torch
from pytorch_optimizer import Adan as Reference

from optedu.optim.adan import Adan
from optimizers import FULL
import reference_harness as harness

STATE = ("exp_avg", "exp_avg_sq", "exp_avg_diff", "previous_grad", "exp_grad_adanorm")
DECAYS = {"none": dict(weight_decay=0.0),
          "proximal": dict(weight_decay=0.1),
          "decoupled": dict(weight_decay=0.1, weight_decouple=True)}
OPTIONS = dict(decay=list(DECAYS), max_grad_norm=[0.0, 0.5], maximize=[False, True],
               use_gc=[False, True], adanorm=[False, True], foreach=[False, True])
BASE = dict(lr=0.01, betas=(0.9, 0.8, 0.95), eps=1e-6)
SECOND = {"betas": (0.7, 0.9, 0.99), "eps": 1e-3, "weight_decay": 0.3, "lr": 0.02}
HALVING = lambda opt: torch.optim.lr_scheduler.StepLR(opt, 7, gamma=0.5)  # noqa: E731


def _split(options):
    """optedu's arguments and the reference's (``foreach`` picks its path; the hidden
    ``**kwargs`` go in only when set, as a user would pass them)."""
    options = dict(options)
    kwargs = {**BASE, **DECAYS[options.pop("decay")]}
    kwargs.update({k: v for k, v in options.items() if k != "foreach" and v is not False})
    return kwargs, {**kwargs, "foreach": options["foreach"]}


def _cases():
    return harness.cases(OPTIONS, every=17, full=FULL)


def _same_state(ours, theirs, a, b):
    for p, q in zip(a, b):
        assert sorted(ours.state[p]) == sorted(theirs.state[q])
        for key in STATE:
            if key in ours.state[p]:
                assert torch.equal(ours.state[p][key], theirs.state[q][key]), key
    assert [g["step"] for g in ours.param_groups] == [g["step"] for g in theirs.param_groups]


@pytest.mark.parametrize(("options", "dtype", "two"), _cases(),
                         ids=lambda x: str(x).replace("torch.", ""))
def test_bit_identical_to_pytorch_optimizer(options, dtype, two):
    """25 steps under a halving rate: parameters, every state entry and the group's step bit
    for bit against the path ``foreach`` selects (False: per parameter; True: multi-tensor,
    which it leaves for the per-parameter one with use_gc or adanorm)."""
    ours_kw, theirs_kw = _split(options)
    a, ours = harness.run(lambda g: Adan(g, **ours_kw), dtype, two, SECOND,
                          scheduler=HALVING)
    b, theirs = harness.run(lambda g: Reference(g, **theirs_kw), dtype, two, SECOND,
                            scheduler=HALVING)
    assert harness.same(a, b)
    _same_state(ours, theirs, a, b)
    assert not harness.same(a, harness.params(dtype))


@pytest.mark.parametrize("option", ["max_grad_norm", "maximize", "use_gc", "adanorm",
                                    "proximal", "decoupled"])
def test_every_option_changes_the_run(option):
    """The grid is not vacuous: each option moves the parameters elsewhere than the plain
    rule (the clip at 0.5 acts on these gradients, AdaNorm lifts some of them)."""
    plain, _ = harness.run(lambda g: Adan(g, **BASE))
    extra = DECAYS[option] if option in DECAYS else {option: 0.5 if option == "max_grad_norm"
                                                    else True}
    other, _ = harness.run(lambda g: Adan(g, **BASE, **extra))
    assert harness.worst(plain, other) > 1e-4


def test_two_steps_by_hand():
    """theta_2 from the formulas, in float64 scalars, on one coordinate with decay."""
    lr, (b1, b2, b3), eps, lam = 0.1, (0.9, 0.8, 0.95), 1e-8, 0.2
    theta, g1, g2 = 1.0, 0.5, -0.25
    x = torch.tensor([theta], dtype=torch.float64, requires_grad=True)
    opt = Adan([x], lr=lr, betas=(b1, b2, b3), eps=eps, weight_decay=lam)
    m = v = n = 0.0
    prev = g1                                            # Delta_1 = 0
    for t, g in ((1, g1), (2, g2)):
        x.grad = torch.tensor([g], dtype=torch.float64)
        opt.step()
        delta = g - prev
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * delta
        n = b3 * n + (1 - b3) * (g + b2 * delta) ** 2
        d = math.sqrt(n / (1 - b3**t)) + eps
        theta = (theta - lr * m / ((1 - b1**t) * d)
                 - lr * b2 * v / ((1 - b2**t) * d)) / (1 + lr * lam)
        prev = g
    assert math.isclose(x.item(), theta, rel_tol=1e-15)
    assert opt.state[x]["previous_grad"].item() == -g2      # the negative is stored


def test_first_difference_and_the_gradient_left_alone():
    """Delta_1 = 0, so v_1 = 0; with maximize the reference's Delta_1 is -2 g_1 (its
    previous_grad is taken before the sign), reproduced. It leaves -g_t (clipped) in p.grad;
    optedu leaves p.grad as it was."""
    for maximize, expected in ((False, 0.0), (True, -2.0)):
        runs = []
        for cls in (Adan, Reference):
            x = torch.zeros(3, dtype=torch.float64, requires_grad=True)
            grad = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
            x.grad = grad.clone()
            opt = cls([x], maximize=maximize, max_grad_norm=1.0)
            opt.step()
            runs.append((opt.state[x]["exp_avg_diff"], x.grad))
        (ours, our_grad), (theirs, their_grad) = runs
        assert torch.equal(ours, theirs)
        clipped = grad * (1.0 / (grad.norm().float().item() + 1e-8))
        assert torch.allclose(ours, (1 - 0.92) * expected * clipped, rtol=1e-6)
        assert torch.equal(our_grad, grad)
        assert not torch.equal(their_grad, grad)


def test_defaults_are_pytorch_optimizer_s():
    ours = Adan(harness.params(torch.float64))
    theirs = Reference(harness.params(torch.float64))
    assert ours.defaults == {**theirs.defaults, "maximize": False}
    assert theirs.maximize is False


@pytest.mark.parametrize("load_into", [Adan, Reference], ids=["optedu", "reference"])
@pytest.mark.parametrize("save_from", [Adan, Reference], ids=["optedu", "reference"])
def test_state_dict_round_trip(save_from, load_into):
    kwargs = dict(BASE, weight_decay=0.1, max_grad_norm=0.5, foreach=False)
    harness.resume(lambda g: save_from(g, **kwargs),
                   lambda g: load_into(g, **kwargs), SECOND)


@pytest.mark.parametrize("dtype, bound", [(torch.float64, 1e-15), (torch.float32, 1e-6)],
                         ids=["float64", "float32"])
def test_torch_optimi_within_rounding(dtype, bound):
    """torch-optimi 0.3.3's Adan folds the bias corrections into the averages' weights
    (beta_hat = beta (1-beta^(t-1))/(1-beta^t)): the same rule in exact arithmetic, rounded
    elsewhere. 25 steps, two groups, without and with the proximal decay: measured 2.2e-16
    (float64) and 2.4e-7 (float32) on parameters of size about 1; bound 1e-15 and 1e-6.
    Its adam_wd=True is never passed to its step (0.3.3), so its decay is always the
    proximal one: it matches optedu's weight_decouple=False, not True."""
    second = {"betas": (0.9, 0.8, 0.95), "lr": 0.02}
    theirs_second = {"beta1": 0.9, "beta2": 0.8, "beta3": 0.95, "lr": 0.02}
    for wd in (0.0, 0.1):
        a, _ = harness.run(lambda g: Adan(g, lr=0.01, weight_decay=wd), dtype, True, second)
        b, _ = harness.run(lambda g: optimi.Adan(g, lr=0.01, weight_decay=wd, eps=1e-8),
                           dtype, True, theirs_second)
        assert 0 < harness.worst(a, b) <= bound
    decoupled, _ = harness.run(lambda g: optimi.Adan(g, lr=0.01, weight_decay=0.1, eps=1e-8,
                                                      adam_wd=True))
    proximal, _ = harness.run(lambda g: optimi.Adan(g, lr=0.01, weight_decay=0.1, eps=1e-8))
    assert harness.same(decoupled, proximal)


def test_complex_and_grad_none_and_sparse():
    harness.complex_unused_sparse(Adan, Reference, "Adan", weight_decay=0.1)


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=-0.1), "Invalid learning rate: -0.1"),
    (dict(betas=(1.0, 0.92, 0.99)), "Invalid beta parameter at index 0: 1.0"),
    (dict(betas=(0.98, -0.1, 0.99)), "Invalid beta parameter at index 1: -0.1"),
    (dict(betas=(0.98, 0.92, 1.5)), "Invalid beta parameter at index 2: 1.5"),
    (dict(betas=(0.9, 0.99)), "Invalid betas value: (0.9, 0.99) (expected three values)"),
    (dict(weight_decay=-0.01), "Invalid weight_decay value: -0.01"),
    (dict(max_grad_norm=-1.0), "Invalid max_grad_norm value: -1.0"),
    (dict(eps=-1e-8), "Invalid epsilon value: -1e-08"),
    (dict(adanorm=True, adanorm_r=2.0),
     "Invalid adanorm_r value: 2.0 (expected a number in [0, 1])"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        Adan(harness.params(torch.float64), **kwargs)
