"""Polar Express (Amsel et al., 2025) as an option of optedu's Muon orthogonalisation: the
coefficients are the paper's Algorithm 1 table, the per-step schedule is pytorch_optimizer's
bit for bit, the error against the polar factor obeys the paper's bound (12), and the default
(torch's one triple) is untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch_optimizer.optimizer.utils.matrix import zero_power_via_newton_schulz_5

import optedu
from optedu.optim.muon import (NS_COEFFICIENTS, POLAR_EXPRESS, coefficient_schedule,
                               zeropower_via_newtonschulz)

# Algorithm 1 of the paper (arXiv:2505.16932), as printed
PAPER = [(8.28721201814563, -23.595886519098837, 17.300387312530933),
         (4.107059111542203, -2.9478499167379106, 0.5448431082926601),
         (3.9486908534822946, -2.908902115962949, 0.5518191394370137),
         (3.3184196573706015, -2.488488024314874, 0.51004894012372),
         (2.300652019954817, -1.6689039845747493, 0.4188073119525673),
         (1.891301407787398, -1.2679958271945868, 0.37680408948524835),
         (1.8750014808534479, -1.2500016453999487, 0.3750001645474248),
         (1.875, -1.25, 0.375)]


def test_the_papers_table_with_its_safety_factor():
    expected = [(a / 1.01, b / 1.01**3, c / 1.01**5) for a, b, c in PAPER[:-1]] + [PAPER[-1]]
    assert list(POLAR_EXPRESS) == expected
    assert POLAR_EXPRESS[-1] == (15 / 8, -10 / 8, 3 / 8)     # the Padé quintic


def test_schedule_repeats_the_last_triple_and_keeps_torchs_single_one():
    assert coefficient_schedule(NS_COEFFICIENTS, 3) == [NS_COEFFICIENTS] * 3
    s = coefficient_schedule(POLAR_EXPRESS, 10)
    assert s[:8] == list(POLAR_EXPRESS) and s[8:] == [POLAR_EXPRESS[-1]] * 2
    with pytest.raises(ValueError, match="exactly 3 values"):
        coefficient_schedule((1.0, 2.0), 5)
    with pytest.raises(ValueError, match="exactly 3 values"):
        coefficient_schedule([(1.0, 2.0, 3.0), (1.0, 2.0)], 5)


@pytest.mark.parametrize("shape", [(16, 8), (8, 16), (12, 12)])
@pytest.mark.parametrize("steps", [3, 5, 10])
def test_bit_identical_to_pytorch_optimizer(shape, steps):
    g = torch.randn(shape, generator=torch.Generator().manual_seed(steps))
    ours = zeropower_via_newtonschulz(g, POLAR_EXPRESS, steps)
    theirs = zero_power_via_newton_schulz_5(g, num_steps=steps, weights=list(POLAR_EXPRESS))
    assert torch.equal(ours, theirs)


def _scalar_bound(coeffs, steps, low):
    x = np.logspace(np.log10(low), 0, 100_001)
    for a, b, c in coefficient_schedule(coeffs, steps):
        x = a * x + b * x**3 + c * x**5
    return np.abs(1 - x).max()


def test_error_obeys_the_bound():
    """||polar(M) - X_T||_2 <= sup over [l, 1] of |1 - p*(x)| (the paper's (12)), for a matrix
    whose singular values, normalised by its Frobenius norm, lie in [l, 1]; in float64."""
    gen = torch.Generator().manual_seed(0)
    u = torch.linalg.qr(torch.randn(40, 20, generator=gen, dtype=torch.float64))[0]
    v = torch.linalg.qr(torch.randn(20, 20, generator=gen, dtype=torch.float64))[0]
    sigma = torch.logspace(-2, 0, 20, dtype=torch.float64)
    m = u @ torch.diag(sigma) @ v.T
    low = (sigma.min() / sigma.norm()).item()
    x = (m / m.norm()).T
    for t, (a, b, c) in enumerate(coefficient_schedule(POLAR_EXPRESS, 8), start=1):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
        err = torch.linalg.matrix_norm(x.T - u @ v.T, ord=2).item()
        assert err <= _scalar_bound(POLAR_EXPRESS, t, low) + 1e-12
    assert err < 1e-4 < _scalar_bound(NS_COEFFICIENTS, 8, low)   # Jordan's stalls


def test_muon_takes_the_schedule():
    w = torch.randn(6, 4, generator=torch.Generator().manual_seed(1), requires_grad=True)
    w0 = w.detach().clone()
    opt = optedu.Muon([w], lr=0.1, weight_decay=0.0, ns_coefficients=POLAR_EXPRESS,
                      ns_steps=7, nesterov=False, momentum=0.0)
    w.grad = torch.randn(6, 4, generator=torch.Generator().manual_seed(2))
    opt.step()
    step = zeropower_via_newtonschulz(w.grad, POLAR_EXPRESS, 7)
    assert torch.equal(w.detach(), w0.add(step, alpha=-0.1 * (6 / 4) ** 0.5))
