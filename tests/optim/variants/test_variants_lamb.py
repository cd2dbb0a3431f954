"""optedu.optim.variants.lamb: every switch off is optedu's rule; pytorch_optimizer's
switches are pytorch_optimizer 4.1.0's Lamb and LARS (float64, 50 steps)."""

from __future__ import annotations

import pytest
import pytorch_optimizer
import torch

from optedu.optim.lamb import lamb
from optedu.optim.lars import lars
from optedu.optim.variants.lamb import (PYTORCH_OPTIMIZER_LAMB,
                                  PYTORCH_OPTIMIZER_LARS, lamb_variant,
                                  lars_variant)

F64 = torch.float64
SHAPES = [(6, 5), (5,), (30, 20)]  # ‖θ‖ of the last one exceeds 10


def _params():
    g = torch.Generator().manual_seed(0)
    ps = [torch.randn(s, generator=g, dtype=F64) for s in SHAPES]
    ps[1].zero_()  # a zero bias: the zero-norm branch
    return ps


def _grads(steps):
    g = torch.Generator().manual_seed(1)
    return [[torch.randn(s, generator=g, dtype=F64) for s in SHAPES]
            for _ in range(steps)]


def _lr(t):
    return 0.01 if t < 25 else 0.004  # a change of lr mid-run


def _run_fn(fn, n_buffers, steps=50, **kw):
    ps = _params()
    bufs = [[torch.zeros_like(p) for _ in range(n_buffers)] for p in ps]
    for t, gs in enumerate(_grads(steps)):
        for p, g, b in zip(ps, gs, bufs):
            extra = (t + 1,) if n_buffers == 2 else ()
            fn(p, g, *b, *extra, lr=_lr(t), **kw)
    return ps


def _run_reference(make, steps=50):
    ps = [p.requires_grad_() for p in _params()]
    opt = make(ps)
    for t, gs in enumerate(_grads(steps)):
        for group in opt.param_groups:
            group["lr"] = _lr(t)
        for p, g in zip(ps, gs):
            p.grad = g.clone()
        opt.step()
    return [p.detach() for p in ps]


def _worst(a, b):
    return max(((x - y).abs().max() / y.abs().max()).item()
               for x, y in zip(a, b))


LAMB_KW = dict(beta1=0.9, beta2=0.99, eps=1e-6, weight_decay=0.1)
LARS_KW = dict(momentum=0.9, weight_decay=0.01, trust_coefficient=0.02)


def test_lamb_variant_defaults_are_optedu():
    assert _worst(_run_fn(lamb_variant, 2, **LAMB_KW),
                  _run_fn(lamb, 2, **LAMB_KW)) == 0


@pytest.mark.parametrize("nesterov", [False, True])
def test_lars_variant_defaults_are_optedu(nesterov):
    kw = dict(LARS_KW, eps=1e-9, nesterov=nesterov)
    assert _worst(_run_fn(lars_variant, 1, **kw), _run_fn(lars, 1, **kw)) == 0


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_lamb_variant_is_pytorch_optimizer(weight_decay):
    kw = dict(LAMB_KW, weight_decay=weight_decay)
    ours = _run_fn(lamb_variant, 2, **kw, **PYTORCH_OPTIMIZER_LAMB)
    theirs = _run_reference(lambda ps: pytorch_optimizer.Lamb(
        ps, lr=0.01, betas=(kw["beta1"], kw["beta2"]), eps=kw["eps"],
        weight_decay=weight_decay))
    assert _worst(ours, theirs) <= 1e-12


@pytest.mark.parametrize("nesterov", [False, True])
def test_lars_variant_is_pytorch_optimizer(nesterov):
    ours = _run_fn(lars_variant, 1, **LARS_KW, nesterov=nesterov,
                   **PYTORCH_OPTIMIZER_LARS)
    theirs = _run_reference(lambda ps: pytorch_optimizer.LARS(
        ps, lr=0.01, nesterov=nesterov, **LARS_KW))
    assert _worst(ours, theirs) <= 1e-12


def test_bias_correction_names():
    p = torch.ones(3, dtype=F64)
    with pytest.raises(ValueError, match="Invalid bias_correction: no"):
        lamb_variant(p, p.clone(), torch.zeros(3, dtype=F64),
                     torch.zeros(3, dtype=F64), 1, lr=0.1,
                     bias_correction="no", **LAMB_KW)


def test_each_switch_changes_the_result():
    base = _run_fn(lamb_variant, 2, **LAMB_KW)
    for key, value in PYTORCH_OPTIMIZER_LAMB.items():
        assert _worst(_run_fn(lamb_variant, 2, **LAMB_KW, **{key: value}),
                      base) > 1e-8, key
    base = _run_fn(lars_variant, 1, **LARS_KW)
    for key, value in PYTORCH_OPTIMIZER_LARS.items():
        assert _worst(_run_fn(lars_variant, 1, **LARS_KW, **{key: value}),
                      base) > 1e-8, key


def test_bias_correction_cancels_in_the_ratio_unless_a_tensor_is_zero():
    """With eps = 0 and no decay the corrections only scale u, and the trust
    ratio undoes them; a tensor at zero (ratio 1) lets them through. The
    gradients here do not depend on the parameters, so tensors are
    independent: the zero bias (ps[1]) differs, the others agree. (beta2 =
    0.999: with 0.99 the two first steps coincide, (1-b1)/sqrt(1-b2) = 1.)"""
    kw = dict(LAMB_KW, beta2=0.999, eps=0.0, weight_decay=0.0)
    none = _run_fn(lamb_variant, 2, **kw, bias_correction="none")
    inside = _run_fn(lamb, 2, **kw)
    assert _worst(none[::2], inside[::2]) <= 1e-12
    assert _worst(none[1:2], inside[1:2]) > 1e-3
