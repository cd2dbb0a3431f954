"""The momentum conventions of optedu.theory.momentum against torch.optim.SGD, and
Polyak's tuning."""


import numpy as np
import pytest
import torch

import optedu
from optedu.theory import momentum, quadratic

STEPS = 60


def _grads(seed=0, n=STEPS, shape=(5,)):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=gen, dtype=torch.float64)
            for _ in range(n)]


def _torch_path(grads, lrs, **options):
    theta = torch.zeros(grads[0].shape, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([theta], lr=lrs[0], **options)
    path = []
    for g, lr in zip(grads, lrs):
        opt.param_groups[0]["lr"] = lr
        theta.grad = g.clone()
        opt.step()
        path.append(theta.detach().clone())
    return torch.stack(path)


def _form_path(step, grads, lrs, **options):
    theta = torch.zeros(grads[0].shape, dtype=torch.float64)
    velocity = torch.zeros_like(theta)
    path = []
    for g, lr in zip(grads, lrs):
        step(theta, g, velocity, lr=lr, **options)
        path.append(theta.clone())
    return torch.stack(path)


@pytest.mark.parametrize("beta", [0.5, 0.9, 0.99])
def test_ema_form_is_torch_with_rescaled_lr(beta):
    grads, lr = _grads(), 0.1
    ema = _form_path(momentum.ema_momentum, grads, [lr] * STEPS, beta=beta)
    ref = _torch_path(grads, [momentum.ema_lr_to_torch(lr, beta)] * STEPS,
                      momentum=beta)
    torch.testing.assert_close(ema, ref, rtol=1e-12, atol=1e-14)


def test_ema_form_is_not_torch_with_dampening():
    """torch's dampening=β starts the buffer at g_1, not (1-β) g_1: the
    buffers differ by β^t g_1."""
    beta, lr = 0.9, 0.1
    grads = _grads()
    ema = _form_path(momentum.ema_momentum, grads, [lr] * STEPS, beta=beta)
    damp = _torch_path(grads, [lr] * STEPS, momentum=beta, dampening=beta)
    # positions differ by -η Σ_{s≤t} β^s g_1
    expected = -lr * torch.stack(
        [sum(beta**s for s in range(1, t + 1)) * grads[0]
         for t in range(1, STEPS + 1)])
    torch.testing.assert_close(damp - ema, expected, rtol=1e-10, atol=1e-13)
    assert (damp[0] - ema[0]).abs().max() > 0.5 * lr * grads[0].abs().max()


@pytest.mark.parametrize("mu", [0.0, 0.5, 0.9])
def test_sutskever_form_is_torch_at_constant_lr(mu):
    grads = _grads(1)
    ours = _form_path(momentum.sutskever_momentum, grads, [0.05] * STEPS,
                      momentum=mu)
    ref = _torch_path(grads, [0.05] * STEPS, momentum=mu)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-14)


def test_sutskever_form_keeps_the_old_lr_after_a_change():
    mu, drop = 0.9, 30
    grads = _grads(2)
    lrs = [0.1] * drop + [0.01] * (STEPS - drop)
    ours = _form_path(momentum.sutskever_momentum, grads, lrs, momentum=mu)
    ref = _torch_path(grads, lrs, momentum=mu)
    torch.testing.assert_close(ours[:drop], ref[:drop], rtol=1e-12, atol=1e-14)
    # first step after the drop: torch moves by 0.01 b_t,
    # Sutskever by μ v_{t-1} - 0.01 g_t
    step_torch = ref[drop] - ref[drop - 1]
    step_ours = ours[drop] - ours[drop - 1]
    b_prev = -(ours[drop - 1] - ours[drop - 2]) / 0.1  # v = -η b before it
    torch.testing.assert_close(step_torch, -0.01 * (mu * b_prev + grads[drop]))
    torch.testing.assert_close(step_ours,
                               -0.1 * mu * b_prev - 0.01 * grads[drop])


def _t(x):
    return torch.tensor([x], dtype=torch.float64)


def test_hand_computed_steps():
    theta, v = _t(1.0), torch.zeros(1, dtype=torch.float64)
    momentum.ema_momentum(theta, _t(2.0), v, lr=0.1, beta=0.9)
    assert v.item() == pytest.approx(0.2)
    assert theta.item() == pytest.approx(0.98)
    momentum.ema_momentum(theta, _t(-1.0), v, lr=0.1, beta=0.9)
    assert v.item() == pytest.approx(0.08)
    assert theta.item() == pytest.approx(0.972)
    theta, v = _t(1.0), torch.zeros(1, dtype=torch.float64)
    momentum.sutskever_momentum(theta, _t(2.0), v, lr=0.1, momentum=0.9)
    momentum.sutskever_momentum(theta, _t(-1.0), v, lr=0.1, momentum=0.9)
    assert v.item() == pytest.approx(-0.08)
    assert theta.item() == pytest.approx(0.72)


@pytest.mark.parametrize("m, L", [(1.0, 10.0)] + [
    pytest.param(m, L, marks=pytest.mark.full)  # a grid search each
    for m, L in [(0.01, 1.0), (1.0, 1000.0)]])
def test_polyak_optimum_beats_a_grid(m, L):
    lr, mu, rate = quadratic.polyak_optimal(m, L)

    def worst(eta, beta):
        return max(quadratic.spectral_radius(h, lr=eta, momentum=beta,
                                             nesterov=False)
                   for h in np.linspace(m, L, 41))

    assert worst(lr, mu) == pytest.approx(rate, rel=1e-6)
    grid = [worst(eta, beta) for eta in np.linspace(0.2, 2.0, 19) * lr
            for beta in np.linspace(0.0, 0.999, 40)]
    assert min(grid) >= rate - 1e-9


def test_polyak_rate_matches_a_run():
    m, L = 1.0, 100.0
    lr, mu, rate = quadratic.polyak_optimal(m, L)
    theta = torch.tensor([1.0, 1.0], dtype=torch.float64, requires_grad=True)
    opt = optedu.SGD([theta], lr=lr, momentum=mu)
    h = torch.tensor([m, L], dtype=torch.float64)
    norms = []
    for _ in range(400):
        theta.grad = h * theta.detach()
        opt.step()
        norms.append(theta.detach().norm().item())
    measured = (norms[-1] / norms[199]) ** (1 / 200)
    assert measured == pytest.approx(rate, rel=0.02)


def test_closed_forms_by_hand():
    lr, mu, rate = quadratic.polyak_optimal(1.0, 100.0)
    assert rate == pytest.approx(9 / 11) and mu == pytest.approx(81 / 121)
    assert lr == pytest.approx(4 / 121)
    assert quadratic.gd_optimal(1.0, 100.0) == pytest.approx(
        (2 / 101, 99 / 101))
    assert momentum.ema_lr_to_torch(1.0, 0.9) == pytest.approx(0.1)


def test_buffer_weighs_a_gradient_k_steps_old_by_mu_to_the_k():
    """One gradient, then zeros: optedu.SGD's buffer keeps μ^k of it k steps
    later."""
    theta = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = optedu.SGD([theta], lr=0.0, momentum=0.9)
    for g in [1.0] + [0.0] * 10:
        theta.grad = torch.tensor([g], dtype=torch.float64)
        opt.step()
    buffer = opt.state[theta]["momentum_buffer"].item()
    assert buffer == pytest.approx(0.9**10, rel=1e-14)


@pytest.mark.parametrize("fn", [quadratic.polyak_optimal, quadratic.gd_optimal])
def test_bad_curvatures(fn):
    with pytest.raises(ValueError, match="smallest=2.0, largest=1.0"):
        fn(2.0, 1.0)
