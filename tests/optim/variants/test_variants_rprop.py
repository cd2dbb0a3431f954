"""Rprop's comparison variants (optedu.optim.variants.rprop).

First steps by hand for each form, the case where iRprop+ is torch's rule
(the loss never rises), and the backtracking that only the "+" forms do.
"""

import pytest
import torch

import optedu
from optedu.optim.variants.rprop import RpropVariant, rprop_variant
from runs import path, spread_grads

F64 = torch.float64
OPTS = dict(etaminus=0.5, etaplus=1.2, step_size_min=1e-6, step_size_max=50)


def _t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=F64)


def _steps(form, grads, loss_increased=False):
    theta, prev, update = _t(0.0), _t(0.0), _t(0.0)
    delta = _t(0.1)
    thetas = []
    for g in grads:
        rprop_variant(theta, _t(g), prev, delta, update, form=form,
                      loss_increased=loss_increased, **OPTS)
        thetas.append(theta.item())
    return thetas, delta.item(), prev.item()


def test_rprop_plus_backtracks_by_hand():
    # g = 1, 1: moves −0.1 then −0.12; g = −1 (flip): Δ = 0.06, undo −0.12
    thetas, delta, prev = _steps("rprop+", [1.0, 1.0, -1.0])
    assert thetas == pytest.approx([-0.1, -0.22, -0.1], abs=1e-15)
    assert delta == pytest.approx(0.06, abs=1e-15) and prev == 0.0
    # next step: no growth (prev = 0), move +0.06
    thetas, delta, _ = _steps("rprop+", [1.0, 1.0, -1.0, -1.0])
    assert thetas[-1] == pytest.approx(-0.04, abs=1e-15)
    assert delta == pytest.approx(0.06, abs=1e-15)


def test_rprop_minus_moves_at_once_by_hand():
    # the flip shrinks Δ to 0.06 and moves +0.06 at once, remembering g
    thetas, delta, prev = _steps("rprop-", [1.0, 1.0, -1.0, -1.0])
    assert thetas == pytest.approx([-0.1, -0.22, -0.16, -0.088], abs=1e-15)
    assert prev == -1.0 and delta == pytest.approx(0.072, abs=1e-15)


def test_irprop_plus_backtracks_only_when_the_loss_rose():
    up, _, _ = _steps("irprop+", [1.0, 1.0, -1.0], loss_increased=True)
    down, _, _ = _steps("irprop+", [1.0, 1.0, -1.0], loss_increased=False)
    assert up[-1] == pytest.approx(-0.1, abs=1e-15)
    assert down[-1] == pytest.approx(-0.22, abs=1e-15)   # waits, as torch


def test_irprop_plus_is_torch_when_the_loss_never_rises():
    grads = spread_grads(200, seed=3)
    options = dict(lr=0.01, etas=(0.4, 1.3), step_sizes=(1e-4, 2.0))
    rule = path(lambda p: optedu.Rprop(p, **options), grads)
    twin = path(lambda p: torch.optim.Rprop(p, **options), grads)
    theta = torch.zeros(grads.shape[1], dtype=F64)
    prev, update = torch.zeros_like(theta), torch.zeros_like(theta)
    delta = torch.full_like(theta, 0.01)
    for t, g in enumerate(grads, start=1):
        rprop_variant(theta, g, prev, delta, update, etaminus=0.4,
                      etaplus=1.3, step_size_min=1e-4, step_size_max=2.0,
                      form="irprop+", loss_increased=False)
        assert torch.equal(theta, rule[t])
    assert torch.equal(rule, twin)


def test_forms_differ_from_torch_after_a_flip():
    grads = spread_grads(100, seed=4)
    rule = path(lambda p: optedu.Rprop(p), grads)
    for form in ("rprop+", "rprop-"):
        other = path(lambda p: RpropVariant(p, form=form), grads)
        assert (other - rule).abs().max() > 1e-3


def test_irprop_plus_needs_a_closure_and_reads_the_loss():
    x = torch.tensor([1.0, -2.0], dtype=F64, requires_grad=True)
    opt = RpropVariant([x], lr=0.5, form="irprop+")
    with pytest.raises(ValueError):
        opt.step()

    def closure():
        opt.zero_grad()
        loss = (x * x).sum()
        loss.backward()
        return loss

    losses = [opt.step(closure) for _ in range(20)]
    assert losses[-1] < 1e-2 * losses[0]
    with pytest.raises(ValueError, match="form"):
        RpropVariant([x], form="rprop")
