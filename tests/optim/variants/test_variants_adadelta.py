"""Adadelta's comparison variant (optedu.optim.variants.adadelta).

The paper's form is torch's rule at lr=1 to the bit; its first two steps by
hand; with the two epsilons scaled as the units demand, a change of the
parameters' units (a power of two) leaves the path exactly the same.
"""

from math import sqrt

import pytest
import torch

import optedu
from optedu.optim.variants.adadelta import AdadeltaPaper, adadelta_paper

F64 = torch.float64


def _grads(steps: int, n: int = 4, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    scales = torch.logspace(-3, 2, n, dtype=F64)
    return torch.randn(steps, n, generator=gen, dtype=F64) * scales


def _run(make, grads: torch.Tensor) -> tuple[torch.Tensor, dict]:
    theta = torch.zeros(grads.shape[1], dtype=F64, requires_grad=True)
    opt = make([theta])
    for g in grads:
        theta.grad = g.clone()
        opt.step()
    return theta.detach(), opt.state[theta]


@pytest.mark.parametrize("rho, eps", [(0.9, 1e-6), (0.95, 1e-6),
                                      (0.5, 1e-2), (0.0, 1e-8)])
def test_paper_form_is_torch_at_lr_one(rho, eps):
    grads = _grads(200)
    ours, ours_state = _run(lambda p: AdadeltaPaper(p, rho=rho, eps=eps),
                            grads)
    theirs, theirs_state = _run(
        lambda p: torch.optim.Adadelta(p, lr=1.0, rho=rho, eps=eps), grads)
    assert torch.equal(ours, theirs)
    for key in ("square_avg", "acc_delta"):
        assert torch.equal(ours_state[key], theirs_state[key])
    same_as_optedu, _ = _run(
        lambda p: optedu.Adadelta(p, lr=1.0, rho=rho, eps=eps), grads)
    assert torch.equal(ours, same_as_optedu)


def test_two_steps_by_hand():
    rho, eps = 0.9, 1e-2
    theta = torch.tensor([1.0], dtype=F64)
    v, u = torch.zeros(1, dtype=F64), torch.zeros(1, dtype=F64)
    expected = 1.0
    v_hand = u_hand = 0.0
    for g in (2.0, -1.0):
        adadelta_paper(theta, torch.tensor([g], dtype=F64), v, u,
                       rho=rho, eps=eps)
        v_hand = rho * v_hand + (1 - rho) * g * g
        delta = sqrt(u_hand + eps) / sqrt(v_hand + eps) * g
        u_hand = rho * u_hand + (1 - rho) * delta * delta
        expected -= delta
        assert theta.item() == pytest.approx(expected, rel=1e-15)
        assert v.item() == pytest.approx(v_hand, rel=1e-15)
        assert u.item() == pytest.approx(u_hand, rel=1e-15)


@pytest.mark.parametrize("c", [2.0**-10, 2.0**-3, 2.0**5])
def test_units_two_epsilons_make_the_path_exactly_equivariant(c):
    # theta = c * phi: the gradient in phi is c * g, so the denominator's
    # epsilon scales with c**2 and the numerator's with 1 / c**2.
    grads = _grads(300)
    eps, eps_delta = 1e-6, 1e-4
    theta, _ = _run(lambda p: AdadeltaPaper(p, rho=0.9, eps=eps,
                                            eps_delta=eps_delta), grads)
    phi, _ = _run(lambda p: AdadeltaPaper(p, rho=0.9, eps=eps * c**2,
                                          eps_delta=eps_delta / c**2),
                  grads * c)
    assert torch.equal(c * phi, theta)


def test_one_epsilon_is_not_equivariant():
    c = 2.0**5
    grads = _grads(300)
    theta, _ = _run(lambda p: AdadeltaPaper(p, rho=0.9, eps=1e-6), grads)
    phi, _ = _run(lambda p: AdadeltaPaper(p, rho=0.9, eps=1e-6), grads * c)
    assert not torch.allclose(c * phi, theta, rtol=1e-3)


def test_no_lr_so_no_scheduler():
    theta = torch.zeros(2, dtype=F64, requires_grad=True)
    opt = AdadeltaPaper([theta])
    assert "lr" not in opt.param_groups[0]
    with pytest.raises(KeyError):
        torch.optim.lr_scheduler.StepLR(opt, step_size=1)
