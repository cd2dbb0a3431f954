"""Adafactor beyond the table's shapes: both of its paths on tensors of 0 to 4 dimensions, and
a factored step by hand. Compared with torch 2.13 bit for bit; the table's row
(``tests/optimizers.py``) covers every option."""

from __future__ import annotations

from unittest import mock

import pytest
import torch

import optedu
import optedu.parity


def _compare(ours, theirs, kwargs, shapes, dtype=torch.float64, steps=20):
    """optedu.parity.compare on the given shapes (the harness reads its module's SHAPES)."""
    with mock.patch.object(optedu.parity, "SHAPES", shapes):
        return optedu.parity.compare(ours, theirs, kwargs, [{}, {"lr": 0.003}], steps=steps,
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
