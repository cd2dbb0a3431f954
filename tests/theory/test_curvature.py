"""optedu.theory.curvature against dense Hessians (torch.autograd.functional.hessian and
torch.linalg.eigvalsh) on small problems, in float64."""

from __future__ import annotations

import math

import pytest
import torch

from optedu.theory import curvature


def _mlp(seed=0, n=40):
    """A tanh MLP (two weight matrices and a bias: three tensors) on a fixed batch; the loss
    as a function of the flat parameter vector too, for the dense Hessian."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(n, 1, generator=gen, dtype=torch.float64)
    shapes = [(4, 3), (4,), (1, 4)]
    params = [torch.randn(s, generator=gen, dtype=torch.float64).requires_grad_()
              for s in shapes]

    def loss_of(w1, b1, w2):
        return ((torch.tanh(x @ w1.T + b1) @ w2.T - y) ** 2).mean()

    def flat_loss(flat):
        parts, i = [], 0
        for s in shapes:
            k = math.prod(s)
            parts.append(flat[i:i + k].view(s))
            i += k
        return loss_of(*parts)

    flat = torch.cat([p.detach().reshape(-1) for p in params])
    dense = torch.autograd.functional.hessian(flat_loss, flat)
    return params, (lambda: loss_of(*params)), dense


def _flat(ts):
    return torch.cat([t.reshape(-1) for t in ts])


def test_hvp_is_the_dense_hessian_times_the_vector():
    params, closure, dense = _mlp()
    gen = torch.Generator().manual_seed(1)
    v = [torch.randn(p.shape, generator=gen, dtype=torch.float64) for p in params]
    hv = curvature.hvp(closure, params, v)
    assert torch.allclose(_flat(hv), dense @ _flat(v), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="Invalid vectors"):
        curvature.hvp(closure, params, v[:2])


@pytest.mark.parametrize("method", ["lanczos", "power"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_top_eigenvalue_matches_eigvalsh(method, seed):
    params, closure, dense = _mlp(seed)
    evals = torch.linalg.eigvalsh(dense)
    top = float(evals[-1])
    assert top > abs(float(evals[0]))        # the largest magnitude is the top: power's case
    found = curvature.top_eigenvalue(closure, params, method=method, tol=1e-12,
                                     max_iter=500)
    assert found.converged and found.hvps == found.iterations
    assert found.value == pytest.approx(top, rel=1e-8)
    # the vector is an eigenvector: H u = λ u
    hu = dense @ _flat(found.vector)
    assert torch.allclose(hu, found.value * _flat(found.vector), atol=1e-5 * top)
    assert curvature.sharpness(closure, params, method=method, tol=1e-12,
                               max_iter=500) == found.value


def test_lanczos_needs_fewer_products_than_power_iteration():
    params, closure, dense = _mlp(0)
    lanczos = curvature.top_eigenvalue(closure, params, tol=1e-10, max_iter=500)
    power = curvature.top_eigenvalue(closure, params, method="power", tol=1e-10,
                                     max_iter=500)
    assert lanczos.iterations < power.iterations
    # 21 parameters: Lanczos stops at the latest when the Krylov space is the whole space
    assert lanczos.iterations <= 21


def test_lanczos_finds_the_largest_algebraic_eigenvalue_when_a_negative_one_is_larger():
    d = torch.tensor([-5.0, 1.0, 2.0, 3.0], dtype=torch.float64)
    theta = torch.ones(4, dtype=torch.float64, requires_grad=True)

    def closure():
        return 0.5 * (d * theta ** 2).sum()

    assert curvature.sharpness(closure, [theta]) == pytest.approx(3.0, rel=1e-10)
    # power iteration returns the eigenvalue of largest magnitude, as documented
    assert curvature.sharpness(closure, [theta], method="power", tol=1e-12,
                               max_iter=2000) == pytest.approx(-5.0, rel=1e-8)


def test_preconditioned_top_eigenvalue():
    params, closure, dense = _mlp(3)
    gen = torch.Generator().manual_seed(4)
    pre = [torch.rand(p.shape, generator=gen, dtype=torch.float64) + 0.1 for p in params]
    d = _flat(pre)
    symmetric = dense / torch.sqrt(d)[:, None] / torch.sqrt(d)[None, :]
    top = float(torch.linalg.eigvalsh(symmetric)[-1])
    # the same as the largest real eigenvalue of P⁻¹H
    nonsym = torch.linalg.eigvals(dense / d[:, None])
    assert top == pytest.approx(float(nonsym.real.max()), rel=1e-9)
    found = curvature.top_eigenvalue(closure, params, preconditioner=pre, tol=1e-12,
                                     max_iter=500)
    assert found.value == pytest.approx(top, rel=1e-8)
    # P = 1 is no preconditioner
    ones = [torch.ones_like(p) for p in params]
    assert curvature.sharpness(closure, params, preconditioner=ones, tol=1e-12) == \
        pytest.approx(float(torch.linalg.eigvalsh(dense)[-1]), rel=1e-8)
    with pytest.raises(ValueError, match="Invalid preconditioner: every entry"):
        curvature.sharpness(closure, params, preconditioner=[-x for x in pre])
    with pytest.raises(ValueError, match="Invalid preconditioner: shapes"):
        curvature.sharpness(closure, params, preconditioner=pre[:1])


def test_an_unconverged_estimate_says_so():
    params, closure, _ = _mlp(0)
    found = curvature.top_eigenvalue(closure, params, method="power", tol=1e-14,
                                     max_iter=3)
    assert not found.converged and found.iterations == 3 and found.hvps == 3


def test_hutchinson_trace():
    params, closure, dense = _mlp(0)
    exact = float(torch.trace(dense))
    estimate, error = curvature.hutchinson_trace(closure, params, samples=400, seed=0)
    assert error > 0 and abs(estimate - exact) < 4 * error
    # exact, with no spread, for a diagonal Hessian: every probe gives zᵀDz = tr D
    d = torch.tensor([0.5, 2.0, 3.0], dtype=torch.float64)
    theta = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    estimate, error = curvature.hutchinson_trace(lambda: 0.5 * (d * theta ** 2).sum(),
                                                 [theta], samples=10)
    assert estimate == pytest.approx(5.5, abs=1e-12) and error == pytest.approx(0, abs=1e-12)


def test_float32_parameters():
    params, closure, dense = _mlp(1)
    p32 = [p.detach().float().requires_grad_() for p in params]
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(40, 3, generator=gen, dtype=torch.float64)  # _mlp's data, seed 1
    y = torch.randn(40, 1, generator=gen, dtype=torch.float64)

    def closure32():
        w1, b1, w2 = p32
        return ((torch.tanh(x.float() @ w1.T + b1) @ w2.T - y.float()) ** 2).mean()

    top = float(torch.linalg.eigvalsh(dense)[-1])
    assert curvature.sharpness(closure32, p32, tol=1e-6) == pytest.approx(top, rel=1e-4)


def test_bad_arguments():
    params, closure, _ = _mlp(0)
    with pytest.raises(ValueError, match="Invalid method: 'qr'"):
        curvature.sharpness(closure, params, method="qr")
    with pytest.raises(ValueError, match="Invalid max_iter: 0"):
        curvature.sharpness(closure, params, max_iter=0)
    with pytest.raises(ValueError, match="Invalid tol: 0"):
        curvature.sharpness(closure, params, tol=0)
    with pytest.raises(ValueError, match="Invalid samples: 1"):
        curvature.hutchinson_trace(closure, params, samples=1)
    with pytest.raises(ValueError, match="Invalid params: an empty list"):
        curvature.sharpness(closure, [])
    frozen = [p.detach() for p in params]
    with pytest.raises(ValueError, match="does not require grad"):
        curvature.sharpness(closure, frozen)
    with pytest.raises(ValueError, match="Invalid closure"):
        curvature.sharpness(lambda: 1.0, params)
