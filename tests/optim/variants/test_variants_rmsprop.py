"""RMSProp's comparison variants (optedu.optim.variants.rmsprop).

First steps by hand, the cases where a variant is the same rule as optedu's
(and so torch's), and the executed relation between Keras's momentum buffer
and torch's when the rate changes.
"""

from math import sqrt

import torch

import optedu
from optedu.optim.variants.rmsprop import (RMSpropEpsInside, RMSpropKerasMomentum,
                                     rmsprop_eps_inside, rmsprop_keras_momentum)


F64 = torch.float64


def _t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=F64)


def _grads(steps: int, n: int = 4, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    scales = torch.logspace(-3, 2, n, dtype=F64)
    return torch.randn(steps, n, generator=gen, dtype=F64) * scales


def _run(make, grads: torch.Tensor, lrs=None) -> torch.Tensor:
    theta = torch.zeros(grads.shape[1], dtype=F64, requires_grad=True)
    opt = make([theta])
    for t, g in enumerate(grads):
        if lrs is not None:
            opt.param_groups[0]["lr"] = lrs[t]
        theta.grad = g.clone()
        opt.step()
    return theta.detach()


def test_eps_inside_first_two_steps_by_hand():
    theta, v = _t(1.0), _t(0.0)
    rmsprop_eps_inside(theta, _t(2.0), v, lr=0.01, alpha=0.9, eps=0.6)
    # v1 = 0.1·4 = 0.4; θ1 = 1 − 0.01·2/√(0.4 + 0.6) = 0.98
    assert abs(v.item() - 0.4) < 1e-15          # 1 − 0.9 is not exactly 0.1
    assert abs(theta.item() - 0.98) < 1e-15
    rmsprop_eps_inside(theta, _t(-1.0), v, lr=0.01, alpha=0.9, eps=0.6)
    # v2 = 0.9·0.4 + 0.1·1 = 0.46; θ2 = 0.98 + 0.01/√1.06
    assert abs(v.item() - 0.46) < 1e-15
    assert abs(theta.item() - (0.98 + 0.01 / sqrt(1.06))) < 1e-15


def test_eps_inside_is_optedu_rmsprop_when_eps_is_zero():
    grads = _grads(200)
    options = dict(lr=0.01, alpha=0.9, eps=0.0)
    variant = _run(lambda p: RMSpropEpsInside(p, **options), grads)
    rule = _run(lambda p: optedu.RMSprop(p, **options), grads)
    assert torch.equal(variant, rule)


def test_eps_inside_differs_from_torch_below_sqrt_eps():
    """Constant gradient 1e-6, eps 1e-8: torch's step ≈ η, the inside
    form's ≈ η·1e-6/1e-4."""
    grads = torch.full((3000, 1), 1e-6, dtype=F64)
    inside = _run(lambda p: RMSpropEpsInside(p, lr=0.01), grads[:-1])
    inside_last = _run(lambda p: RMSpropEpsInside(p, lr=0.01), grads)
    step = (inside - inside_last).abs().item()
    assert abs(step - 0.01 * 1e-6 / sqrt(1e-12 + 1e-8)) < 1e-12
    theta = torch.zeros(1, dtype=F64, requires_grad=True)
    opt = torch.optim.RMSprop([theta], lr=0.01)
    for g in grads:
        before = theta.detach().clone()
        theta.grad = g.clone()
        opt.step()
    torch_step = (theta.detach() - before).abs().item()
    assert abs(torch_step - 0.01 * 1e-6 / (1e-6 + 1e-8)) < 1e-12


def test_keras_momentum_first_two_steps_by_hand():
    theta, v, b = _t(1.0), _t(0.0), _t(0.0)
    rmsprop_keras_momentum(theta, _t(2.0), v, b,
                           lr=0.01, alpha=0.9, eps=0.0, momentum=0.5)
    b1 = 0.01 * 2 / sqrt(0.4)                      # v1 = 0.4
    assert abs(b.item() - b1) < 1e-15
    assert abs(theta.item() - (1 - b1)) < 1e-15
    rmsprop_keras_momentum(theta, _t(-1.0), v, b,
                           lr=0.001, alpha=0.9, eps=0.0, momentum=0.5)
    b2 = 0.5 * b1 + 0.001 * -1 / sqrt(0.46)   # v2 = 0.46; new rate only on g2
    assert abs(b.item() - b2) < 1e-15
    assert abs(theta.item() - (1 - b1 - b2)) < 1e-15


def test_keras_momentum_equals_torch_with_a_constant_rate():
    grads = _grads(300, seed=1)
    keras = _run(lambda p: RMSpropKerasMomentum(p, lr=0.01, momentum=0.9),
                 grads)
    torch_form = _run(lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.9),
                      grads)
    assert torch.allclose(keras, torch_form, rtol=1e-12, atol=1e-14)


def test_keras_momentum_against_torch_when_the_rate_changes():
    """Keras's buffer is Σ μ^(t−s) η_s u_s; torch's step is
    η_t Σ μ^(t−s) u_s (u_s = g_s/s_s)."""
    grads, mu, alpha, eps = _grads(120, seed=2), 0.9, 0.99, 1e-8
    lrs = [0.01 if t < 60 else 0.001 for t in range(120)]
    keras = _run(lambda p: RMSpropKerasMomentum(p, lr=0.01, momentum=mu),
                 grads, lrs)
    torch_form = _run(lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=mu),
                      grads, lrs)
    v = torch.zeros(grads.shape[1], dtype=F64)
    keras_buf = torch.zeros_like(v)
    torch_buf = torch.zeros_like(v)
    keras_pos, torch_pos = torch.zeros_like(v), torch.zeros_like(v)
    for g, lr in zip(grads, lrs):
        v = alpha * v + (1 - alpha) * g * g
        u = g / (v.sqrt() + eps)
        keras_buf = mu * keras_buf + lr * u
        torch_buf = mu * torch_buf + u
        keras_pos -= keras_buf
        torch_pos -= lr * torch_buf
    assert torch.allclose(keras, keras_pos, rtol=1e-12, atol=1e-14)
    assert torch.allclose(torch_form, torch_pos, rtol=1e-12, atol=1e-14)
    # the schedule change is not a rounding
    assert (keras - torch_form).abs().max() > 1e-3
