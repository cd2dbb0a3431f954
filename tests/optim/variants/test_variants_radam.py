"""optedu.optim.variants.radam: RAdam's theory helpers and the paper's rule."""

import math

import numpy as np
import pytest
import torch

import optedu
from optedu.optim.variants.radam import (inverse_sqrt_moments,
                                   inverse_sqrt_variance, radam_paper,
                                   rectification, sma_length,
                                   weighted_inverse_sqrt_variance)

F64 = torch.float64


def test_sma_length_starts_at_one_and_tends_to_rho_inf():
    assert sma_length(1, 0.999) == pytest.approx(1.0, abs=1e-9)
    assert sma_length(math.inf, 0.999) == pytest.approx(1999.0)
    assert sma_length(10**6, 0.9) == pytest.approx(19.0)


def test_rectification_matches_optedu_formula_and_tends_to_one():
    assert math.isnan(rectification(4, 0.999))
    assert rectification(10**6, 0.999) == pytest.approx(1.0)
    rho_inf, rho = 1999.0, sma_length(6, 0.999)
    expected = math.sqrt((rho - 4) * (rho - 2) * rho_inf
                         / ((rho_inf - 4) * (rho_inf - 2) * rho))
    assert rectification(6, 0.999) == pytest.approx(expected, rel=1e-14)


def test_inverse_sqrt_variance_exact_against_sampling_and_approx():
    rng = np.random.default_rng(0)
    rho = 20
    v = (rng.standard_normal((200_000, rho)) ** 2).mean(axis=1)
    sampled = (1 / np.sqrt(v)).var()
    assert sampled == pytest.approx(inverse_sqrt_variance(rho), rel=0.02)
    assert math.isinf(inverse_sqrt_variance(2))
    assert math.isinf(inverse_sqrt_variance(4, exact=False))
    big = 1e4
    assert inverse_sqrt_variance(big, exact=False) == pytest.approx(
        inverse_sqrt_variance(big), rel=1e-3)


def test_inverse_sqrt_moments_first_step_is_one_over_abs_g():
    mean, var = inverse_sqrt_moments(0.999, 3, 1000, seed=1)
    rng = np.random.default_rng(1)
    g = rng.standard_normal(1000)
    assert mean[0] == pytest.approx((1 / np.abs(g)).mean(), rel=1e-12)
    assert mean.shape == var.shape == (3,)


def test_radam_paper_equals_torch_rule_without_eps_after_step_five():
    gen = torch.Generator().manual_seed(0)
    grads = torch.randn(30, 4, generator=gen, dtype=F64)
    theta = torch.zeros(4, dtype=F64, requires_grad=True)
    opt = optedu.RAdam([theta], lr=0.01, eps=0.0)
    p = torch.zeros(4, dtype=F64)
    m, v = torch.zeros(4, dtype=F64), torch.zeros(4, dtype=F64)
    for t, g in enumerate(grads, start=1):
        theta_before = theta.detach().clone()
        theta.grad = g.clone()
        opt.step()
        before = p.clone()
        radam_paper(p, g, m, v, t, lr=0.01, beta1=0.9, beta2=0.999)
        if t >= 6:   # both rectify: the same step, the offset of step 5 stays
            torch.testing.assert_close(before - p,
                                       theta_before - theta.detach(),
                                       rtol=1e-10, atol=0)
        if t <= 4:
            torch.testing.assert_close(p, theta.detach(), rtol=1e-14,
                                       atol=0)
        if t == 5:   # the paper rectifies at step 5, torch does not
            assert not torch.allclose(p, theta.detach())
            torch_step = 0.01 * m / (1 - 0.9**5)
            paper_step = before - p
            assert (paper_step.abs() < 0.1 * torch_step.abs()).all()


def test_weighted_inverse_sqrt_variance_equal_weights_is_chi2_form():
    for rho in [3, 5, 20, 300]:
        got = weighted_inverse_sqrt_variance(np.full(rho, 1 / rho))
        assert got == pytest.approx(inverse_sqrt_variance(rho), rel=1e-9)
    assert math.isinf(weighted_inverse_sqrt_variance([0.5, 0.5]))


def test_weighted_inverse_sqrt_variance_adam_weights_against_sampling():
    beta2, t = 0.999, 50
    w = (1 - beta2) * beta2 ** np.arange(t) / (1 - beta2**t)
    g = np.random.default_rng(0).standard_normal((200_000, t))
    sampled = (1 / np.sqrt((g**2) @ w)).var()
    assert sampled == pytest.approx(weighted_inverse_sqrt_variance(w),
                                    rel=0.02)
