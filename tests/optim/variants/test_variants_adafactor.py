"""Adafactor as the paper writes it (optedu.optim.variants.adafactor).

A factored first step by hand, and the cases where the paper's conventions
give torch's rule: gradients far above both epsilons, rho_max = lr.
"""

import torch

import optedu
from optedu.optim.variants.adafactor import AdafactorPaper, adafactor_paper
from runs import path as _path

F64 = torch.float64


def test_first_factored_step_by_hand():
    # G = [[1, 2], [3, 4]]: row sums of G² 5, 25; column sums 10, 20;
    # V̂ = R C / 30; U = G / √V̂; θ = 1 everywhere so α_1 = 1 · ρ_1 = 0.01
    g = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=F64)
    theta = torch.ones(2, 2, dtype=F64)
    row, col = torch.zeros(2, 1, dtype=F64), torch.zeros(1, 2, dtype=F64)
    adafactor_paper(theta, g, row, col, None, 1, eps1=0.0)
    v_hat = torch.tensor([[5 * 10, 5 * 20], [25 * 10, 25 * 20]],
                         dtype=F64) / 30
    u = g / v_hat.sqrt()
    rms_u = (u.square().mean()).sqrt()
    expected = 1 - 0.01 * u / max(1.0, rms_u.item())
    assert torch.allclose(theta, expected, rtol=0, atol=1e-15)
    assert torch.equal(row, torch.tensor([[5.0], [25.0]], dtype=F64))


def test_vector_first_step_is_sign_step():
    theta = torch.zeros(3, dtype=F64)
    var = torch.zeros(3, dtype=F64)
    adafactor_paper(theta, torch.tensor([2.0, -5.0, 0.5], dtype=F64),
                    None, None, var, 1)
    # β̂_21 = 0: V_1 = G² + ε1, U = sign(G), RMS(U) = 1, α = ε2 · 0.01
    assert torch.allclose(theta, torch.tensor([-1e-5, 1e-5, -1e-5],
                                              dtype=F64), atol=1e-20)


def test_same_as_torch_rule_for_ordinary_gradients():
    gen = torch.Generator().manual_seed(0)
    for shape in [(6, 4), (7,), (2, 3, 5)]:
        grads = torch.randn(100, *shape, generator=gen, dtype=F64)
        theta0 = torch.randn(shape, generator=gen, dtype=F64)
        ref = _path(lambda p: optedu.Adafactor(p, lr=0.05), grads, theta0)
        paper = _path(lambda p: AdafactorPaper(p, rho_max=0.05), grads,
                      theta0)
        diff = ((paper - ref).abs().max() / ref.abs().max()).item()
        assert diff < 1e-13, (shape, diff)


def test_differs_from_torch_for_gradients_below_machine_epsilon():
    # float32: torch floors √V̂ at 1.19e-7; the paper adds 1e-30 to G²
    grads = torch.full((5, 4), 1e-9)
    theta0 = torch.ones(4)
    ref = _path(lambda p: optedu.Adafactor(p), grads, theta0)
    paper = _path(lambda p: AdafactorPaper(p), grads, theta0)
    step_ref = (ref[0] - ref[1]).abs().max().item()
    step_paper = (paper[0] - paper[1]).abs().max().item()
    assert abs(step_paper - 0.01) < 1e-6          # a full relative step
    eps32 = torch.finfo(torch.float32).eps
    assert abs(step_ref / step_paper - 1e-9 / eps32) < 1e-4   # G/ε1


def test_zero_row_and_zero_column_stay_finite_in_float32():
    # R_i C_j = (2e-30)(2e-30) underflows in float32; the factors do not
    g = torch.zeros(2, 2)
    g[0, 0] = 1.0
    theta = torch.ones(2, 2)
    row, col = torch.zeros(2, 1), torch.zeros(1, 2)
    adafactor_paper(theta, g, row, col, None, 1)
    assert torch.isfinite(theta).all()
    assert theta[1, 1] == 1.0 and theta[0, 0] < 1.0
