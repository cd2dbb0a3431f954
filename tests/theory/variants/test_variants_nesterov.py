"""The Nesterov chapter's comparison variants (optedu.theory.variants.nesterov).

The long lesson's NAG is Sutskever's look-ahead form; Keras's form is torch's
at a constant learning rate and parts from it after a change of rate.
"""

import pytest
import torch

import optedu
from optedu.instruments import landscapes
from optedu.theory import nesterov
from optedu.theory.variants.nesterov import keras_nesterov, lesson_nag


def _grad_fn(surface):
    def grad(x):
        x = x.detach().clone().requires_grad_(True)
        return torch.autograd.grad(surface.f(x), x)[0]
    return grad


def _start(surface):
    return torch.tensor(surface.start, dtype=torch.float64)


def test_lesson_nag_by_hand():
    # f(x) = x², ∇f = 2x; θ0 = 1, η = 0.1, β = 0.9, v0 = 0
    theta = torch.ones(1, dtype=torch.float64)
    v = torch.zeros(1, dtype=torch.float64)
    lesson_nag(theta, v, lambda x: 2 * x, lr=0.1, beta=0.9)
    assert (v.item(), theta.item()) == pytest.approx((2.0, 0.8), abs=1e-15)
    lesson_nag(theta, v, lambda x: 2 * x, lr=0.1, beta=0.9)
    # look-ahead 0.8 - 0.1·0.9·2 = 0.62; v2 = 1.8 + 1.24 = 3.04; θ2 = 0.496
    assert (v.item(), theta.item()) == pytest.approx((3.04, 0.496),
                                                     abs=1e-15)


@pytest.mark.parametrize("lr, beta", [(1e-3, 0.9), (5e-4, 0.99)])
def test_lesson_nag_is_the_lookahead_form(lr, beta):
    surface = landscapes.rosenbrock()
    grad = _grad_fn(surface)
    theta_l, v_l = _start(surface), torch.zeros(2, dtype=torch.float64)
    theta_s, v_s = _start(surface), torch.zeros(2, dtype=torch.float64)
    for _ in range(500):
        lesson_nag(theta_l, v_l, grad, lr=lr, beta=beta)
        nesterov.nag_lookahead(theta_s, v_s, grad, lr=lr, momentum=beta)
        assert torch.allclose(theta_l, theta_s, rtol=0, atol=1e-12)
        assert torch.allclose(-lr * v_l, v_s, rtol=0, atol=1e-12)


def test_lesson_nag_is_not_torchs_iterate():
    surface, lr, beta = landscapes.rosenbrock(), 1e-3, 0.9
    grad = _grad_fn(surface)
    theta, v = _start(surface), torch.zeros(2, dtype=torch.float64)
    path = landscapes.trajectory(surface, lambda p: torch.optim.SGD(
        p, lr=lr, momentum=beta, nesterov=True), 200)
    gap = 0.0
    for t in range(1, 201):
        lesson_nag(theta, v, grad, lr=lr, beta=beta)
        gap = max(gap, (theta - torch.from_numpy(path[t])).abs().max().item())
    assert gap > 1e-2


def _keras_vs_torch(lrs, momentum=0.9):
    surface = landscapes.quadratic(1.0, 10.0)
    grad = _grad_fn(surface)
    phi_k, v_k = _start(surface), torch.zeros(2, dtype=torch.float64)
    phi_t = _start(surface).requires_grad_(True)
    opt = optedu.SGD([phi_t], lr=lrs[0], momentum=momentum, nesterov=True)
    gaps = []
    for lr in lrs:
        opt.param_groups[0]["lr"] = lr
        keras_nesterov(phi_k, v_k, grad(phi_k), lr=lr, momentum=momentum)
        opt.zero_grad()
        surface.f(phi_t).backward()
        opt.step()
        buffer = opt.state[phi_t]["momentum_buffer"]
        gaps.append(max((phi_k - phi_t.detach()).abs().max().item(),
                        (v_k + lr * buffer).abs().max().item()))
    return gaps


def test_keras_form_by_hand():
    # f(x) = x²: v1 = -0.2, φ1 = 1 - 0.18 - 0.2 = 0.62 (torch's 0.62)
    phi = torch.ones(1, dtype=torch.float64)
    v = torch.zeros(1, dtype=torch.float64)
    keras_nesterov(phi, v, 2 * phi, lr=0.1, momentum=0.9)
    assert (v.item(), phi.item()) == pytest.approx((-0.2, 0.62), abs=1e-15)


def test_keras_form_is_torchs_rule_at_a_constant_rate():
    assert max(_keras_vs_torch([0.09] * 300)) <= 1e-15


def test_keras_form_parts_from_torch_after_a_rate_change():
    gaps = _keras_vs_torch([0.09] * 20 + [0.009] * 280)
    assert max(gaps[:20]) <= 1e-15
    assert max(gaps[20:]) > 1e-2
