"""Adam with its second moment started otherwise (optedu.optim.variants.adam_start):
Adam-2k and GI-Adam. First steps in closed form, where each is Adam and where it is not,
and the argument checks."""

from math import sqrt

import pytest
import torch

import optedu
from optedu.optim.variants.adam_start import Adam2k, GIAdam
from runs import path as _path
from runs import spread_grads as _grads

B1, B2 = 0.9, 0.999


def _constant(steps: int, g: float = 0.3) -> torch.Tensor:
    return torch.full((steps, 1), g, dtype=torch.float64)


def test_gi_adam_first_two_steps_by_hand():
    # v_0 = g_1² = 4; v_1 = 4, v̂_1 = 4/0.001; m̂_1 = 2: step η √0.001
    # m_2 = 0.9·0.2 + 0.1·(-1) = 0.08, m̂_2 = 0.08/0.19
    # v_2 = 0.999·4 + 0.001·1 = 3.997, v̂_2 = 3.997/(1 - 0.999²)
    theta = _path(lambda p: GIAdam(p, lr=0.1, eps=0.0),
                  torch.tensor([[2.0], [-1.0]], dtype=torch.float64))[:, 0]
    step1 = 0.1 * sqrt(1 - B2)
    step2 = 0.1 * (0.08 / 0.19) / sqrt(3.997 / (1 - B2**2))
    assert abs(theta[1].item() + step1) < 1e-15
    assert abs(theta[2].item() + step1 + step2) < 1e-15


def test_gi_adam_steps_grow_as_sqrt_one_minus_beta2_power():
    """For a constant gradient: η √(1-β₂ᵗ) sign(g), a warmup set by β₂."""
    theta = _path(lambda p: GIAdam(p, lr=0.01, eps=0.0), _constant(300))[:, 0]
    t = torch.arange(1, 301, dtype=torch.float64)
    assert torch.allclose(-theta.diff(), 0.01 * torch.sqrt(1 - B2**t), rtol=1e-12, atol=0)


def test_adam_2k_holds_then_moves_by_one_minus_beta1():
    """freeze k, constant g: θ held k steps; then m starts uncorrected (t counts the held
    steps) and v̂ = g², so the moves are η (1-β₁^j)/(1-β₁^(k+j)) sign(g)."""
    k = 3
    theta = _path(lambda p: Adam2k(p, lr=0.1, eps=0.0, freeze=k), _constant(k + 3))[:, 0]
    assert theta[:k + 1].tolist() == [0.0] * (k + 1)
    moves = -theta[k:].diff()
    expected = [0.1 * (1 - B1**j) / (1 - B1**(k + j)) for j in (1, 2, 3)]
    assert torch.allclose(moves, torch.tensor(expected, dtype=torch.float64),
                          rtol=1e-12, atol=0)


def test_adam_2k_first_move_after_2000_steps_is_a_tenth_of_adams():
    theta = _path(lambda p: Adam2k(p, lr=0.1, eps=0.0), _constant(2001, -2.0))[:, 0]
    assert theta[2000].item() == 0.0
    assert abs(theta[2001].item() - 0.1 * (1 - B1)) < 1e-12


def test_adam_2k_without_freeze_is_optedu_adam_up_to_rounding():
    grads = _grads()
    ref = _path(lambda p: optedu.Adam(p, lr=0.01), grads)
    variant = _path(lambda p: Adam2k(p, lr=0.01, freeze=0), grads)
    assert ((variant - ref).abs().max() / ref.abs().max()).item() < 1e-13


def test_gi_adam_is_not_adam():
    grads = _grads(20)
    ref = _path(lambda p: optedu.Adam(p, lr=0.01), grads)
    gi = _path(lambda p: GIAdam(p, lr=0.01), grads)
    assert (gi[1] - ref[1]).abs().max().item() > 1e-3       # Adam's first step is η sign(g)


def _varying(steps: int, n: int = 5) -> torch.Tensor:
    """Gradients that differ across coordinates and steps, some of them negative."""
    gen = torch.Generator().manual_seed(1)
    scales = torch.logspace(-2, 1, n, dtype=torch.float64)
    return (torch.randn(steps, n, generator=gen, dtype=torch.float64) + 0.5) * scales


def _transcribed(grads: torch.Tensor, lr: float, eps: float, *, freeze: int = 0,
                 v0_first: bool = False) -> torch.Tensor:
    """The rules written out coordinate by coordinate in plain floats: Adam-2k's held
    steps accumulate gᵢ² per coordinate; GI-Adam (``v0_first``) starts from vᵢ = g₁ᵢ²."""
    steps, n = grads.shape
    rows = [[0.0] * n]
    for i in range(n):
        theta, m, v = 0.0, 0.0, 0.0
        for t in range(1, steps + 1):
            g = grads[t - 1, i].item()
            if v0_first and t == 1:
                v = g * g
            v = B2 * v + (1 - B2) * g * g
            if t > freeze:
                m = B1 * m + (1 - B1) * g
                theta -= lr * (m / (1 - B1**t)) / (sqrt(v / (1 - B2**t)) + eps)
            if i == 0:
                rows.append([0.0] * n)
            rows[t][i] = theta
    return torch.tensor(rows, dtype=torch.float64)


def test_adam_2k_held_steps_accumulate_each_coordinates_square():
    """Varying gradients per coordinate: held steps build v from each gᵢ², not a mean."""
    k, grads = 6, _varying(12)
    theta = _path(lambda p: Adam2k(p, lr=0.01, eps=1e-8, freeze=k), grads)
    expected = _transcribed(grads, 0.01, 1e-8, freeze=k)
    assert torch.allclose(theta, expected, rtol=1e-12, atol=1e-15)


def test_gi_adam_starts_each_coordinate_from_its_own_first_square():
    """Varying gradients per coordinate: v₀ = g₁ᵢ² in each coordinate, not one fill."""
    grads = _varying(12)
    theta = _path(lambda p: GIAdam(p, lr=0.01, eps=1e-8), grads)
    expected = _transcribed(grads, 0.01, 1e-8, v0_first=True)
    assert torch.allclose(theta, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("make, message", [
    (lambda p: Adam2k(p, freeze=-1),
     r"^Invalid freeze value: -1 \(expected an integer >= 0\)$"),
    (lambda p: Adam2k(p, freeze=2.5),
     r"^Invalid freeze value: 2.5 \(expected an integer >= 0\)$"),
    (lambda p: Adam2k(p, lr=-0.1), r"^Invalid learning rate: -0.1$"),
    (lambda p: GIAdam(p, lr=-0.1), r"^Invalid learning rate: -0.1$"),
    (lambda p: GIAdam(p, eps=-1.0), r"^Invalid epsilon value: -1.0$"),
    (lambda p: GIAdam(p, betas=(0.9, 1.0)),
     r"^Invalid beta parameter at index 1: 1.0$"),
])
def test_bad_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make([torch.zeros(1, requires_grad=True)])
