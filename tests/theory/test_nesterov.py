"""Nesterov's look-ahead form, its map onto torch's form, and the 2×2 theory on a quadratic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import optedu
from optedu.instruments import landscapes
from optedu.theory import nesterov, quadratic


def _grad_fn(surface):
    def grad(x):
        x = x.detach().clone().requires_grad_(True)
        return torch.autograd.grad(surface.f(x), x)[0]
    return grad


def _lookahead_as_torch(surface, start, steps, lr, momentum):
    """The look-ahead form's iterates, reported at torch's point φ = θ + μ v."""
    theta = torch.tensor(start, dtype=torch.float64)
    velocity = torch.zeros(2, dtype=torch.float64)
    grad = _grad_fn(surface)
    out = [theta.clone()]
    for _ in range(steps):
        nesterov.nag_lookahead(theta, velocity, grad, lr=lr, momentum=momentum)
        phi, _ = nesterov.lookahead_to_torch(theta, velocity, lr=lr, momentum=momentum)
        out.append(phi)
    return torch.stack(out).numpy(), velocity


@pytest.mark.parametrize("surface, lr, momentum", [
    (landscapes.quadratic(1.0, 50.0, angle=0.3), 0.02, 0.9),
    (landscapes.quadratic(1.0, 10.0), 0.1, 0.5),
    (landscapes.rosenbrock(), 1e-3, 0.9),
])
@pytest.mark.parametrize("impl", [optedu.SGD, torch.optim.SGD])
def test_lookahead_and_torch_forms_coincide(surface, lr, momentum, impl):
    steps = 400
    expected, _ = _lookahead_as_torch(surface, surface.start, steps, lr, momentum)
    path = landscapes.trajectory(
        surface, lambda p: impl(p, lr=lr, momentum=momentum, nesterov=True), steps)
    assert np.isfinite(path).all()
    assert np.abs(path - expected).max() <= 1e-12


def test_buffer_maps_back_to_velocity():
    surface, lr, mu = landscapes.rosenbrock(), 1e-3, 0.9
    _, velocity = _lookahead_as_torch(surface, surface.start, 100, lr, mu)
    point = torch.tensor(surface.start, dtype=torch.float64, requires_grad=True)
    opt = optedu.SGD([point], lr=lr, momentum=mu, nesterov=True)
    for _ in range(100):
        opt.zero_grad()
        surface.f(point).backward()
        opt.step()
    buffer = opt.state[point]["momentum_buffer"]
    theta, v = nesterov.torch_to_lookahead(point.detach(), buffer, lr=lr, momentum=mu)
    assert torch.allclose(v, velocity, rtol=0, atol=1e-12)
    phi, b = nesterov.lookahead_to_torch(theta, v, lr=lr, momentum=mu)
    assert torch.allclose(phi, point.detach(), rtol=0, atol=1e-12)
    assert torch.allclose(b, buffer, rtol=0, atol=1e-12)


def test_first_two_lookahead_steps_by_hand():
    # f(x) = x², ∇f = 2x; θ0 = 1, η = 0.1, μ = 0.9, v0 = 0
    theta, v = torch.tensor([1.0], dtype=torch.float64), torch.zeros(1, dtype=torch.float64)
    nesterov.nag_lookahead(theta, v, lambda x: 2 * x, lr=0.1, momentum=0.9)
    assert v.item() == pytest.approx(-0.2, abs=1e-15)            # v1 = -0.1·2·1
    assert theta.item() == pytest.approx(0.8, abs=1e-15)         # θ1 = 1 - 0.2
    nesterov.nag_lookahead(theta, v, lambda x: 2 * x, lr=0.1, momentum=0.9)
    # look-ahead 0.8 - 0.18 = 0.62; v2 = -0.18 - 0.1·1.24 = -0.304; θ2 = 0.496
    assert v.item() == pytest.approx(-0.304, abs=1e-15)
    assert theta.item() == pytest.approx(0.496, abs=1e-15)


def test_first_two_torch_steps_by_hand():
    # same problem in torch's form: φ1 = θ1 + μ v1 = 0.62, φ2 = θ2 + μ v2 = 0.2224
    phi = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([phi], lr=0.1, momentum=0.9, nesterov=True)
    for expected in (0.62, 0.2224):
        phi.grad = 2 * phi.detach()
        opt.step()
        assert phi.item() == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize("nesterov_flag", [True, False])
@pytest.mark.parametrize("h, lr, mu", [(10.0, 0.05, 0.9), (1.0, 0.5, 0.3), (4.0, 0.3, 0.99)])
def test_iteration_matrix_matches_a_run(nesterov_flag, h, lr, mu):
    x = torch.tensor([1.5], dtype=torch.float64, requires_grad=True)
    opt = optedu.SGD([x], lr=lr, momentum=mu, nesterov=nesterov_flag)
    matrix = quadratic.iteration_matrix(h, lr=lr, momentum=mu, nesterov=nesterov_flag)
    state = np.array([1.5, 0.0])                                  # (x0, b0 = 0)
    for _ in range(30):
        x.grad = h * x.detach()
        opt.step()
        state = matrix @ state
        measured = np.array([x.item(), opt.state[x]["momentum_buffer"].item()])
        assert np.allclose(measured, state, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("mu", [0.0, 0.5, 0.9, 0.99])
@pytest.mark.parametrize("nesterov_flag", [True, False])
def test_stability_limit_is_where_the_radius_crosses_one(mu, nesterov_flag):
    h = 3.0
    limit = quadratic.max_stable_lr(h, momentum=mu, nesterov=nesterov_flag)
    below = quadratic.spectral_radius(h, lr=0.999 * limit, momentum=mu, nesterov=nesterov_flag)
    above = quadratic.spectral_radius(h, lr=1.001 * limit, momentum=mu, nesterov=nesterov_flag)
    assert below < 1 < above


def test_nesterov_has_the_smaller_stable_range():
    for mu in (0.1, 0.5, 0.9):
        assert (quadratic.max_stable_lr(1.0, momentum=mu, nesterov=True)
                < quadratic.max_stable_lr(1.0, momentum=mu, nesterov=False))


@pytest.mark.parametrize("kappa", [10.0, 100.0, 1000.0])
def test_textbook_tuning_has_rate_one_minus_one_over_root_kappa(kappa):
    lr, mu, rate = quadratic.nesterov_textbook(1.0, kappa)
    assert lr == 1 / kappa and rate == pytest.approx(1 - kappa**-0.5, abs=1e-15)
    flat = quadratic.spectral_radius(1.0, lr=lr, momentum=mu, nesterov=True)
    assert flat == pytest.approx(rate, abs=1e-7)                 # a double root: eigvals lose digits
    curvatures = np.linspace(1.0, kappa, 200)
    assert quadratic.spectral_radius(curvatures, lr=lr, momentum=mu, nesterov=True).max() \
        <= rate + 1e-7


@pytest.mark.parametrize("kappa", [10.0, 100.0, 1000.0])
def test_optimal_tuning_is_a_local_minimum_of_the_worst_rate(kappa):
    lr, mu, rate = quadratic.nesterov_optimal(1.0, kappa)
    assert rate == pytest.approx(1 - 2 / np.sqrt(3 * kappa + 1), abs=1e-15)

    def worst(lr_, mu_):
        return np.maximum(*(quadratic.spectral_radius(h, lr=lr_, momentum=mu_, nesterov=True)
                            for h in (1.0, kappa)))

    assert worst(lr, mu) == pytest.approx(rate, abs=1e-7)
    rng = np.random.default_rng(0)
    lrs = lr * (1 + 0.02 * rng.uniform(-1, 1, 2000))
    mus = mu + 0.02 * rng.uniform(-1, 1, 2000) * (1 - mu)
    assert worst(lrs, mus).min() >= rate - 1e-7


@pytest.mark.parametrize("nesterov_flag", [True, False])
@pytest.mark.parametrize("h, lr, mu", [(1.0, 0.5, 0.9), (0.01, 0.5, 0.9), (4.0, 0.1, 0.5),
                                       (1.0, 0.05, 0.0)])
def test_stationary_variance_solves_the_lyapunov_equation(nesterov_flag, h, lr, mu):
    from scipy.linalg import solve_discrete_lyapunov
    matrix = quadratic.iteration_matrix(h, lr=lr, momentum=mu, nesterov=nesterov_flag)
    noise_in = np.array([-lr * (1 + mu) if nesterov_flag else -lr, 1.0])  # (x, b) per unit ξ
    cov = solve_discrete_lyapunov(matrix, 0.09 * np.outer(noise_in, noise_in))
    expected = quadratic.stationary_variance(h, lr=lr, momentum=mu, nesterov=nesterov_flag,
                                             sigma=0.3)
    assert cov[0, 0] == pytest.approx(expected, rel=1e-10)


def test_stationary_variance_matches_noisy_runs_of_sgd():
    gen = torch.Generator().manual_seed(0)
    h, lr, mu, sigma = 1.0, 0.5, 0.9, 0.1
    x = torch.zeros(4000, requires_grad=True)
    opt = optedu.SGD([x], lr=lr, momentum=mu, nesterov=True)
    samples = []
    for t in range(600):
        x.grad = h * x.detach() + sigma * torch.randn(4000, generator=gen, dtype=x.dtype)
        opt.step()
        if t >= 300:
            samples.append((x.detach() ** 2).mean().item())
    expected = quadratic.stationary_variance(h, lr=lr, momentum=mu, nesterov=True, sigma=sigma)
    assert np.mean(samples) == pytest.approx(expected, rel=0.05)


def test_stationary_variance_is_infinite_outside_the_stable_range():
    limit = quadratic.max_stable_lr(1.0, momentum=0.9, nesterov=True)
    assert quadratic.stationary_variance(1.0, lr=1.01 * limit, momentum=0.9, nesterov=True) \
        == np.inf


@pytest.mark.parametrize("mu", [0.3, 0.5, 0.9])
def test_noise_floor_ratio_to_first_order(mu):
    # Nesterov's stationary variance over heavy ball's is 1 + a μ(1-2μ)/(1-μ) + O(a²)
    for a in (1e-3, 1e-4):
        ratio = (quadratic.stationary_variance(1.0, lr=a, momentum=mu, nesterov=True)
                 / quadratic.stationary_variance(1.0, lr=a, momentum=mu, nesterov=False))
        assert abs(ratio - (1 + a * mu * (1 - 2 * mu) / (1 - mu))) < 10 * a**2 / (1 - mu)**2


@pytest.mark.parametrize("mu", [0.5, 0.9, 0.99])
def test_nesterov_is_slower_again_just_below_its_limit(mu):
    # the chapter's radius figure: Nesterov's radius is 0 at ηh = 1, but its
    # negative root nears -1 at its limit, above heavy ball's plateau √μ
    limit = quadratic.max_stable_lr(1.0, momentum=mu, nesterov=True)

    def gap(a):
        return (quadratic.spectral_radius(1.0, lr=a, momentum=mu, nesterov=True)
                - quadratic.spectral_radius(1.0, lr=a, momentum=mu,
                                            nesterov=False))

    assert gap(1.0) < 0 < gap(0.999 * limit)


def test_nesterov_floor_is_higher_near_its_limit():
    # lower than heavy ball's at ηh = 0.5 (μ = 0.9), higher near the limit
    def ratio(a):
        return (quadratic.stationary_variance(1.0, lr=a, momentum=0.9,
                                              nesterov=True)
                / quadratic.stationary_variance(1.0, lr=a, momentum=0.9,
                                                nesterov=False))

    limit = quadratic.max_stable_lr(1.0, momentum=0.9, nesterov=True)
    assert ratio(0.5) < 0.5 and ratio(0.99 * limit) > 1


@pytest.mark.parametrize("a, mu", [(1.2, 0.5), (1.2, 0.9), (0.9, 0.9)])
def test_first_step_is_one_plus_mu_times_heavy_balls(a, mu):
    # on ½ h x² from x0 = 1: Nesterov's x1 = 1 - a(1+μ), heavy ball's 1 - a
    for flag, expected in [(True, 1 - a * (1 + mu)), (False, 1 - a)]:
        x = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
        opt = optedu.SGD([x], lr=a / 4.0, momentum=mu, nesterov=flag)
        x.grad = 4.0 * x.detach()
        opt.step()
        assert x.item() == pytest.approx(expected, abs=1e-15)
