"""Adafactor and Muon beyond the table's shapes: both of Adafactor's paths on tensors of 0 to 4
dimensions, Muon on tall, wide and square matrices, the Newton-Schulz iteration alone, and what
each refuses. Everything is compared with torch 2.13 bit for bit; the table's rows
(``tests/optimizers.py``) cover every option."""

from __future__ import annotations

from unittest import mock

import pytest
import torch
from torch.optim._muon import _zeropower_via_newtonschulz

import optedu
import optedu.instruments.parity
from optedu.optim.muon import NS_COEFFICIENTS, adjusted_lr, zeropower_via_newtonschulz


def _compare(ours, theirs, kwargs, shapes, dtype=torch.float64, steps=20):
    """optedu.instruments.parity.compare on the given shapes (the harness reads its module's SHAPES)."""
    with mock.patch.object(optedu.instruments.parity, "SHAPES", shapes):
        return optedu.instruments.parity.compare(ours, theirs, kwargs, [{}, {"lr": 0.003}], steps=steps,
                                     dtype=dtype, with_unused=False)


# --- Adafactor ------------------------------------------------------------------------------

ADAFACTOR_SHAPES = [((),), ((7,),), ((6, 2),), ((2, 6),), ((1, 5),), ((3, 4, 5),),
                    ((2, 3, 1, 4),)]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("shapes", ADAFACTOR_SHAPES,
                         ids=["0d", "1d", "tall", "wide", "1x5", "3d", "4d"])
def test_adafactor_is_bit_identical_on_every_rank(shapes, dtype):
    """0-D and 1-D: the full second moment; 2-D tall and wide, 3-D and 4-D: the factors over
    the last two dimensions."""
    kwargs = dict(lr=0.05, weight_decay=0.1, d=2.0, eps=(None, 1e-2))
    result = _compare(optedu.Adafactor, torch.optim.Adafactor, kwargs, shapes, dtype)
    assert result.state_keys_match and result.worst == 0.0, result


def test_adafactor_state_is_factored_over_the_last_two_dimensions():
    shapes = {(7,): {"variance": (7,)}, (): {"variance": ()},
              (6, 2): {"row_var": (6, 1), "col_var": (1, 2)},
              (2, 3, 4, 5): {"row_var": (2, 3, 4, 1), "col_var": (2, 3, 1, 5)}}
    for shape, expected in shapes.items():
        p = torch.ones(shape, requires_grad=True)
        opt = optedu.Adafactor([p])
        p.grad = torch.ones(shape)
        opt.step()
        layout = {k: tuple(v.shape) for k, v in opt.state[p].items() if k != "step"}
        assert layout == expected, shape


def test_adafactor_factored_step_by_hand():
    """One step on θ0 = 1 (2 x 2) with G = [[1, 2], [3, 4]]: row means of G² R = (2.5, 12.5),
    column means C = (5, 10), V̂ = R Cᵀ / mean(R) with mean(R) = 7.5, the rank-1 matrix with
    the row and column sums of G² (here V̂ = [[5/3, 10/3], [25/3, 50/3]]), U = G/√V̂;
    α = RMS(θ0)·min(0.01, 1) = 0.01 and RMS(U) = 0.6908 < d."""
    g = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    v_hat = torch.tensor([[5 / 3, 10 / 3], [25 / 3, 50 / 3]], dtype=torch.float64)
    u = g / v_hat.sqrt()
    assert u.square().mean().sqrt().item() < 1.0
    expected = 1 - 0.01 * u
    for cls in (optedu.Adafactor, torch.optim.Adafactor):
        theta = torch.ones(2, 2, dtype=torch.float64, requires_grad=True)
        opt = cls([theta])
        theta.grad = g.clone()
        opt.step()
        torch.testing.assert_close(theta.detach(), expected, rtol=1e-14, atol=0.0)


# --- Muon -----------------------------------------------------------------------------------

MUON_SHAPES = [((5, 2), (2, 5), (3, 3)), ((1, 6), (6, 1)), ((16, 4), (4, 16))]


@pytest.mark.parametrize("adjust_lr_fn", [None, "original", "match_rms_adamw"])
@pytest.mark.parametrize("shapes", MUON_SHAPES, ids=["small", "vectors", "4x"])
def test_muon_is_bit_identical_on_tall_wide_and_square_matrices(shapes, adjust_lr_fn):
    kwargs = dict(lr=0.02, adjust_lr_fn=adjust_lr_fn)
    for dtype in (torch.float64, torch.float32):
        result = _compare(optedu.Muon, torch.optim.Muon, kwargs, shapes, dtype)
        assert result.state_keys_match and result.worst == 0.0, (dtype, result)


def test_muon_bfloat16_heavy_ball_normalises_its_buffer_as_torch_does():
    """With bfloat16 parameters torch's ``grad.bfloat16()`` returns the momentum buffer itself,
    so without Nesterov the in-place normalisation X0 = B/‖B‖_F overwrites the buffer; optedu
    performs the same operations and keeps the same (odd) state."""
    kwargs = dict(lr=0.02, nesterov=False)
    result = _compare(optedu.Muon, torch.optim.Muon, kwargs, ((4, 3), (3, 4)), torch.bfloat16)
    assert result.worst == 0.0, result
    p = torch.ones(4, 3, dtype=torch.bfloat16, requires_grad=True)
    opt = optedu.Muon([p], nesterov=False)
    p.grad = torch.ones(4, 3, dtype=torch.bfloat16)
    opt.step()
    # 0.05 = (1 - μ)·g without the overwrite; 1/√12 ≈ 0.2887 with it
    assert opt.state[p]["momentum_buffer"][0, 0].item() == pytest.approx(12**-0.5, rel=1e-2)


def test_adjusted_lr_values():
    assert adjusted_lr(0.1, None, torch.Size([4, 1])) == 0.1 * 2.0     # √max(1, 4/1)
    assert adjusted_lr(0.1, "original", torch.Size([1, 4])) == 0.1     # wide: factor 1
    assert adjusted_lr(0.1, "match_rms_adamw", torch.Size([1, 16])) == pytest.approx(0.08)


@pytest.mark.parametrize("shape", [(3,), (2, 2, 2), ()], ids=["1d", "3d", "0d"])
def test_muon_refuses_a_non_matrix_as_torch_does(shape):
    messages = []
    for cls in (optedu.Muon, torch.optim.Muon):
        with pytest.raises(ValueError) as raised:
            cls([torch.zeros(2, 2, requires_grad=True), torch.zeros(shape, requires_grad=True)])
        messages.append(str(raised.value))
    assert messages[0] == messages[1]
    assert messages[0].startswith("Muon only supports 2D parameters")


def test_muon_vector_added_later_fails_at_step_as_torch_does():
    """``add_param_group`` does not check the shape (torch's either): ``step`` refuses."""
    messages = []
    for cls in (optedu.Muon, torch.optim.Muon):
        opt = cls([torch.zeros(2, 2, requires_grad=True)])
        v = torch.zeros(3, requires_grad=True)
        opt.add_param_group({"params": [v]})
        v.grad = torch.ones(3)
        with pytest.raises(ValueError) as raised:
            opt.step()
        messages.append(str(raised.value))
    assert messages[0] == messages[1] == "Param gradient must be a 2D matrix"


@pytest.mark.parametrize("kwargs", [dict(ns_steps=100), dict(ns_coefficients=(3.0, -4.0))],
                         ids=["ns_steps", "ns_coefficients"])
def test_muon_bad_newton_schulz_arguments_fail_at_step_as_torch_does(kwargs):
    """torch checks these in the iteration, so the constructor takes them and ``step`` raises."""
    messages = []
    for cls in (optedu.Muon, torch.optim.Muon):
        p = torch.zeros(2, 2, requires_grad=True)
        opt = cls([p], **kwargs)
        p.grad = torch.ones(2, 2)
        with pytest.raises(ValueError) as raised:
            opt.step()
        messages.append(str(raised.value))
    assert messages[0] == messages[1]


# --- Newton-Schulz alone --------------------------------------------------------------------

def _well_conditioned(shape, seed):
    """U diag(s) Vᵀ with singular values spread over [0.1, 1] (condition number 10)."""
    g = torch.Generator().manual_seed(seed)
    m, n = shape
    k = min(shape)
    u, _ = torch.linalg.qr(torch.randn(m, k, generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(n, k, generator=g, dtype=torch.float64))
    return u @ torch.diag(torch.linspace(0.1, 1.0, k, dtype=torch.float64)) @ v.T


@pytest.mark.parametrize("coefficients", [NS_COEFFICIENTS, (1.875, -1.25, 0.375)],
                         ids=["jordan", "quintic"])
@pytest.mark.parametrize("shape", [(7, 3), (3, 7), (5, 5), (1, 4)])
def test_newton_schulz_is_torchs_bit_for_bit(shape, coefficients):
    g = torch.randn(shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    for steps, eps in ((5, 1e-7), (0, 1e-7), (3, 10.0)):
        ours = zeropower_via_newtonschulz(g, coefficients, steps, eps)
        theirs = _zeropower_via_newtonschulz(g, coefficients, steps, eps)
        assert ours.dtype == theirs.dtype == torch.bfloat16
        assert torch.equal(ours, theirs), (steps, eps)


def test_newton_schulz_singular_values_land_in_the_coefficients_band():
    """Jordan's quintic is not iterated to convergence: five steps map every normalised singular
    value in [0.01, 1] into [0.682, 1.134] (the scalar iteration, computed here); the bfloat16
    output of well-conditioned matrices lies in that band, widened by 0.02 for rounding, and
    keeps the singular vectors (so O Oᵀ or Oᵀ O is close to the identity only up to that band)."""
    a, b, c = NS_COEFFICIENTS
    x = torch.linspace(0.01, 1.0, 10_001, dtype=torch.float64)
    for _ in range(5):
        x = a * x + b * x**3 + c * x**5
    low, high = x.min().item(), x.max().item()
    assert 0.68 < low < 0.69 and 1.13 < high < 1.14
    for seed, shape in enumerate([(32, 8), (8, 32), (16, 16)]):
        g = _well_conditioned(shape, seed)
        assert (torch.linalg.svdvals(g) / g.norm()).min() > 0.01
        out = zeropower_via_newtonschulz(g).double()
        sv = torch.linalg.svdvals(out)
        assert low - 0.02 < sv.min() and sv.max() < high + 0.02, (shape, sv)
        # O ≈ U diag(σ') Vᵀ with G's own U and V: Uᵀ O V is diagonal up to rounding
        u, _, vh = torch.linalg.svd(g, full_matrices=False)
        core = u.T @ out @ vh.T
        off_diagonal = core - torch.diag(torch.diagonal(core))
        assert off_diagonal.norm() < 0.02 * core.norm(), shape


def test_cubic_newton_schulz_converges_to_the_polar_factor():
    """The classic cubic (1.5, -0.5, 0) has 1 as an attracting fixed point: with enough steps
    every singular value reaches 1 up to bfloat16's rounding (2⁻⁸ relative)."""
    g = _well_conditioned((12, 6), 7)
    sv = torch.linalg.svdvals(zeropower_via_newtonschulz(g, (1.5, -0.5, 0.0), 40).double())
    assert (sv - 1).abs().max() < 0.02, sv


def test_newton_schulz_in_another_precision_leaves_its_input_alone():
    """torch's Newton–Schulz divides a bfloat16 input in place (``bfloat16()`` of a bfloat16
    tensor is that tensor); optedu keeps that for parity, but its ``dtype`` extension copies:
    a float64 input comes back unchanged."""
    g = torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    before = g.clone()
    zeropower_via_newtonschulz(g, dtype=torch.float64)
    assert torch.equal(g, before)
    b = before.bfloat16()
    ours, theirs = b.clone(), b.clone()
    zeropower_via_newtonschulz(ours)
    _zeropower_via_newtonschulz(theirs, NS_COEFFICIENTS, 5, 1e-7)
    assert torch.equal(ours, theirs) and not torch.equal(ours, b)   # both divided in place
