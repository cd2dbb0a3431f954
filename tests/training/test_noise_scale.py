"""optedu.training.noise_scale: the simple noise scale of McCandlish et al. (2018), checked on a
least-squares problem whose gradient mean G and covariance Sigma are known exactly."""

from __future__ import annotations

import math

import pytest
import torch

from optedu.training.noise_scale import gradient_sq_norms, noise_scale


def test_exact_expectations_give_the_exact_ratio():
    g2, trace = 2.5, 40.0  # |G|^2 and tr(Sigma)
    small = [g2 + trace / 8] * 5
    big = [g2 + trace / 128] * 5
    est = noise_scale(small, big, 8, 128)
    assert est.grad_sq == pytest.approx(g2, rel=1e-14)
    assert est.trace_sigma == pytest.approx(trace, rel=1e-14)
    assert est.b_simple == pytest.approx(trace / g2, rel=1e-14) and est.stderr == 0.0


def _problem(n: int = 256, d: int = 12, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    y = x @ torch.randn(d, generator=gen, dtype=torch.float64) + 0.5 * torch.randn(
        n, generator=gen, dtype=torch.float64)
    w = torch.zeros(d, dtype=torch.float64, requires_grad=True)  # far from the optimum: G != 0
    per_example = (x @ w.detach() - y)[:, None] * x  # gradient of (x.w - y)^2 / 2
    mean = per_example.mean(0)
    trace = (per_example - mean).pow(2).sum(1).mean()  # population covariance, 1/n
    truth = float(trace / mean.pow(2).sum())

    def loss_of(indices):
        return 0.5 * (x[indices] @ w - y[indices]).pow(2).mean()
    return loss_of, w, n, truth, float(mean.pow(2).sum()), float(trace)


def test_the_estimate_finds_the_known_noise_scale_within_its_error():
    loss_of, w, n, truth, g2, trace = _problem()
    gen = torch.Generator().manual_seed(1)
    small = gradient_sq_norms(loss_of, [w], n, 4, 3000, gen)
    big = gradient_sq_norms(loss_of, [w], n, 64, 3000, gen)
    est = noise_scale(small, big, 4, 64)
    assert 0 < est.stderr < 0.1 * truth  # a useful measurement
    assert abs(est.b_simple - truth) < 4 * est.stderr
    assert abs(est.grad_sq - g2) < 4 * est.grad_sq_stderr
    assert abs(est.trace_sigma - trace) < 4 * est.trace_sigma_stderr


@pytest.mark.full  # a statistical check of 2 s
def test_the_standard_error_is_calibrated():
    """Over independent estimates, the spread of b_simple matches the stderr each reports."""
    loss_of, w, n, truth, _, _ = _problem(seed=2)
    gen = torch.Generator().manual_seed(3)
    estimates = []
    for _ in range(30):
        small = gradient_sq_norms(loss_of, [w], n, 2, 200, gen)
        big = gradient_sq_norms(loss_of, [w], n, 32, 200, gen)
        estimates.append(noise_scale(small, big, 2, 32))
    values = [e.b_simple for e in estimates]
    mean = sum(values) / len(values)
    spread = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    reported = sum(e.stderr for e in estimates) / len(estimates)
    assert 0.6 < spread / reported < 1.6
    assert abs(mean - truth) < 4 * spread / math.sqrt(len(values))


@pytest.mark.full  # a statistical check of 2 s
def test_draws_with_replacement_have_the_model_s_expected_norm():
    """E|G_b|^2 = |G|^2 + tr(Sigma)/b, the model the estimator inverts."""
    loss_of, w, n, _, g2, trace = _problem(seed=4)
    gen = torch.Generator().manual_seed(5)
    for b in (1, 16):
        norms = gradient_sq_norms(loss_of, [w], n, b, 4000, gen)
        mean = sum(norms) / len(norms)
        se = math.sqrt(sum((v - mean) ** 2 for v in norms) / (len(norms) - 1) / len(norms))
        assert abs(mean - (g2 + trace / b)) < 4 * se


@pytest.mark.parametrize("args, message", [
    (([1.0, 2.0], [1.0], 2, 8), "Invalid big_sq_norms value: 1 values"),
    (([1.0, 2.0], [1.0, 2.0], 8, 8), "Invalid big_batch value: 8"),
    (([1.0, 2.0], [1.0, 2.0], 0, 8), "Invalid small_batch value: 0"),
    (([10.0, 10.0], [1.0, 1.0], 2, 8), r"\|G\|\^2 is -?[\d.]+ <= 0"),
])
def test_bad_measurements_are_refused(args, message):
    with pytest.raises(ValueError, match=message):
        noise_scale(*args)
