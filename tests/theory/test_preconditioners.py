"""optedu.theory.preconditioners: the identities the chapter "The preconditioner view" uses,
checked in float64 on small dense problems."""

from __future__ import annotations

import math

import pytest
import torch

from optedu.theory import curvature
from optedu.theory import preconditioners as pc

SHAPES = [(5, 3), (4, 5), (3, 4)]


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=_gen(seed), dtype=torch.float64)


def _problem(n=40, seed=0):
    """A tanh MLP 3 → 5 → 4 → 3 at random weights, on a fixed batch with labels."""
    x = _randn(n, 3, seed=seed)
    y = torch.randint(0, 3, (n,), generator=_gen(seed + 1))
    flat = _randn(sum(o * i for o, i in SHAPES), seed=seed + 2)
    return flat, x, y


def _spd(n, seed=0, spread=1e3):
    q, _ = torch.linalg.qr(_randn(n, n, seed=seed))
    return (q * torch.logspace(0, math.log10(spread), n, dtype=torch.float64)) @ q.T


def test_kronecker_product_acts_on_rows_and_columns():
    a, b, g = _randn(4, 4, seed=1), _randn(3, 3, seed=2), _randn(4, 3, seed=3)
    expected = (a @ g @ b.T).reshape(-1)
    assert torch.allclose(torch.kron(a, b) @ g.reshape(-1), expected, atol=1e-12)
    assert torch.allclose(pc.kron_apply(a, b, g), expected, atol=1e-12)
    with pytest.raises(ValueError, match="Invalid g"):
        pc.kron_apply(a, b, g.T)


@pytest.mark.parametrize("shape", [(4, 4), (6, 6)])
def test_muon_is_shampoo_without_accumulation(shape):
    g = _randn(*shape, seed=4)
    u, _, vh = torch.linalg.svd(g)
    polar = pc.psd_power(g @ g.T, -0.25) @ g @ pc.psd_power(g.T @ g, -0.25)
    assert torch.allclose(polar, u @ vh, atol=1e-10)
    p = pc.muon(g.reshape(-1), [shape], delta=0.0)
    assert torch.allclose(p @ g.reshape(-1), (u @ vh).reshape(-1), atol=1e-10)


def test_muon_on_a_wide_gradient_needs_damping():
    g = _randn(3, 5, seed=5)               # G Gᵀ is invertible, Gᵀ G has rank 3 of 5
    with pytest.raises(ValueError, match="Invalid delta"):
        pc.muon(g.reshape(-1), [(3, 5)], delta=0.0)
    u, _, vh = torch.linalg.svd(g, full_matrices=False)
    step = pc.muon(g.reshape(-1), [(3, 5)], delta=1e-12) @ g.reshape(-1)
    assert torch.allclose(step, (u @ vh).reshape(-1), atol=1e-4)


def test_newton_gives_condition_one_on_a_quadratic():
    h = _spd(12, spread=1e4)
    mu = pc.preconditioned_spectrum(h, pc.newton(h, delta=0.0))
    assert torch.allclose(mu, torch.ones(12, dtype=torch.float64), atol=1e-8)
    assert pc.condition(mu, 12) == pytest.approx(1.0, abs=1e-8)
    assert pc.condition(pc.preconditioned_spectrum(h, pc.identity(12)), 12) == \
        pytest.approx(1e4, rel=1e-8)


def test_gauss_newton_is_the_hessian_for_a_linear_model_with_squared_loss():
    x, y = _randn(30, 4, seed=6), _randn(30, 2, seed=7)
    w = _randn(2 * 4, seed=8)

    def loss(f):
        return ((x @ f.reshape(2, 4).T - y) ** 2).mean()

    h = torch.autograd.functional.hessian(loss, w)
    jac = torch.autograd.functional.jacobian(lambda f: x @ f.reshape(2, 4).T, w)  # N, 2, n
    h_out = torch.eye(2, dtype=torch.float64).expand(30, 2, 2) * 2 / (30 * 2)
    assert torch.allclose(pc.gauss_newton_matrix(jac, h_out), h, atol=1e-12)


def test_gauss_newton_is_the_fisher_matrix_for_softmax_cross_entropy():
    flat, x, _ = _problem(n=6)
    gn = pc.gauss_newton_matrix(pc.mlp_jacobian(flat, SHAPES, x),
                                pc.softmax_output_hessian(
                                    pc.mlp_forward(pc.unflatten(flat, SHAPES), x)[0]))
    p = torch.softmax(pc.mlp_forward(pc.unflatten(flat, SHAPES), x)[0], -1)
    fisher = torch.zeros_like(gn)
    for label in range(3):                 # E over labels drawn from the model, exactly
        g = pc.per_example_grads(flat, SHAPES, x, torch.full((6,), label))
        fisher += torch.einsum("n,ni,nj->ij", p[:, label], g, g) / 6
    assert torch.allclose(gn, fisher, atol=1e-12)


def test_kfac_is_exact_when_the_inputs_do_not_vary():
    """One example, or one input repeated: the mean of S_i ⊗ a aᵀ is then S ⊗ A."""
    for n, repeat, exact in [(1, False, True), (4, True, True), (8, False, False)]:
        flat, x, _ = _problem(n=n)
        if repeat:
            x = x[:1].repeat(n, 1)
        gn = pc.gauss_newton_matrix(pc.mlp_jacobian(flat, SHAPES, x),
                                    pc.softmax_output_hessian(
                                        pc.mlp_forward(pc.unflatten(flat, SHAPES), x)[0]))
        a, s = pc.kfac_factors(flat, SHAPES, x)
        start = 0
        for (o, i), a_l, s_l in zip(SHAPES, a, s):
            block = gn[start:start + o * i, start:start + o * i]
            start += o * i
            close = torch.allclose(torch.kron(s_l, a_l), block, atol=1e-12)
            assert close == exact


def test_kfac_preconditioner_is_the_inverse_factors_on_rows_and_columns():
    flat, x, _ = _problem()
    a, s = pc.kfac_factors(flat, SHAPES, x)
    p = pc.kfac(a, s, delta=1e-3)
    g = _randn(flat.numel(), seed=18)
    parts = pc.unflatten(g, SHAPES)
    expected = torch.cat([pc.kron_apply(pc.psd_power(s_l, -1.0, 1e-3),
                                        pc.psd_power(a_l, -1.0, 1e-3), part)
                          for a_l, s_l, part in zip(a, s, parts)])
    assert torch.allclose(p @ g, expected, atol=1e-8 * expected.abs().max())


def test_dense_hessian_matches_the_curvature_tools():
    flat, x, y = _problem()
    h = pc.dense_hessian(flat, SHAPES, x, y)
    v = _randn(flat.numel(), seed=9)
    f = flat.clone().requires_grad_()
    hv = curvature.hvp(lambda: pc.mlp_loss(f, SHAPES, x, y), [f], [v])[0]
    assert torch.allclose(h @ v, hv, atol=1e-12)
    g = pc.per_example_grads(flat, SHAPES, x, y)
    (full,) = torch.autograd.grad(pc.mlp_loss(f, SHAPES, x, y), f)
    assert torch.allclose(g.mean(0), full, atol=1e-12)


def test_per_example_gradients_and_jacobians_match_autograd():
    flat, x, y = _problem(n=5)
    g = pc.per_example_grads(flat, SHAPES, x, y)
    jac = pc.mlp_jacobian(flat, SHAPES, x)
    for i in range(5):
        f = flat.clone().requires_grad_()
        (row,) = torch.autograd.grad(pc.mlp_loss(f, SHAPES, x[i:i + 1], y[i:i + 1]), f)
        assert torch.allclose(g[i], row, atol=1e-12)
        expected = torch.autograd.functional.jacobian(
            lambda w: pc.mlp_forward(pc.unflatten(w, SHAPES), x[i:i + 1])[0][0], flat)
        assert torch.allclose(jac[i], expected, atol=1e-12)


def test_diagonal_preconditioned_top_eigenvalue_matches_lanczos():
    flat, x, y = _problem()
    g = pc.per_example_grads(flat, SHAPES, x, y)
    h = pc.dense_hessian(flat, SHAPES, x, y)
    p = pc.diagonal(g, delta=1e-3)
    top = pc.preconditioned_spectrum(h, p)[0]
    f = flat.clone().requires_grad_()
    found = curvature.top_eigenvalue(lambda: pc.mlp_loss(f, SHAPES, x, y), [f],
                                     preconditioner=[1 / torch.diagonal(p)],
                                     tol=1e-12, max_iter=200)
    assert found.value == pytest.approx(float(top), rel=1e-8)


def test_diagonal_is_adagrad_state():
    flat, x, y = _problem()
    g = pc.per_example_grads(flat, SHAPES, x, y)
    w = torch.zeros_like(flat, requires_grad=True)
    opt = torch.optim.Adagrad([w], lr=0.0)
    for row in g:
        w.grad = row.clone()
        opt.step()
    total = opt.state[w]["sum"]
    v = total / len(g)
    expected = torch.diag((v + 1e-4 * v.max()).rsqrt())
    assert torch.allclose(pc.diagonal(g, delta=1e-4), expected, atol=1e-12)


def test_adafactor_equals_the_diagonal_when_the_second_moment_has_rank_one():
    r, c = _randn(4, seed=10).abs() + 0.1, _randn(3, seed=11).abs() + 0.1
    signs = torch.sign(_randn(7, 4, 3, seed=12))
    g = signs * torch.outer(r, c).sqrt()          # every sample's square is r cᵀ
    grads = g.reshape(7, -1)
    assert torch.allclose(pc.adafactor(grads, [(4, 3)]), pc.diagonal(grads), atol=1e-12)
    noisy = grads * (1 + 0.5 * _randn(7, 12, seed=13))
    assert not torch.allclose(pc.adafactor(noisy, [(4, 3)]), pc.diagonal(noisy), atol=1e-3)


def test_shampoo_of_one_layer_matches_its_kronecker_roots():
    g = _randn(6, 4 * 3, seed=14)
    p = pc.shampoo(g, [(4, 3)], delta=0.0)
    gs = g.reshape(6, 4, 3)
    left = sum(m @ m.T for m in gs) / 6
    right = sum(m.T @ m for m in gs) / 6
    x = _randn(4, 3, seed=15)
    expected = pc.kron_apply(pc.psd_power(left, -0.25), pc.psd_power(right, -0.25), x)
    assert torch.allclose(p @ x.reshape(-1), expected, atol=1e-10)


def test_preconditioning_keeps_the_inertia_of_the_hessian():
    """Sylvester: P^{1/2} H P^{1/2} has H's numbers of negative and positive eigenvalues."""
    q, _ = torch.linalg.qr(_randn(10, 10, seed=16))
    h = (q * torch.tensor([5, 3, 2, 1, 0.5, 0, 0, -0.1, -1, -4.0],
                          dtype=torch.float64)) @ q.T
    mu = pc.preconditioned_spectrum(h, _spd(10, seed=17, spread=1e2))
    assert int((mu > 1e-10).sum()) == 5 and int((mu < -1e-10).sum()) == 3
    assert pc.condition(mu, 5) > 1
    with pytest.raises(ValueError, match="Invalid k: 6"):
        pc.condition(mu, 6)


@pytest.mark.parametrize("call, message", [
    (lambda: pc.diagonal(torch.ones(3, 4), delta=-1.0), "Invalid delta: -1.0"),
    (lambda: pc.adafactor(torch.ones(3, 4), [(3, 3)]), "Invalid shapes"),
    (lambda: pc.diagonal(torch.ones(4)), "Invalid grads"),
    (lambda: pc.psd_power(torch.ones(2, 3), 0.5), "Invalid a"),
    (lambda: pc.gauss_newton(torch.zeros(3, 3), delta=0.1), "Invalid delta"),
    (lambda: pc.preconditioned_spectrum(torch.eye(3), torch.eye(4)), "Invalid p"),
    (lambda: pc.identity(0), "Invalid n: 0"),
    (lambda: pc.condition(torch.ones(3), 1), "Invalid k: 1"),
])
def test_bad_input_raises(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("shape, rank", [((5, 4), 1), ((5, 4), 2), ((4, 4), 3)])
def test_shampoo_bounds_full_matrix_adagrad(shape, rank):
    """Gupta et al. (2018): for gradients of rank at most r, sum g gᵀ ⪯ r L^{1/2} ⊗ R^{1/2}
    in torch's row-major vec, so Shampoo's P is the inverse root of a bound on full-matrix
    AdaGrad's statistic. The factors in the other order break the bound."""
    o, i = shape
    gs = [_randn(o, rank, seed=20 + k) @ _randn(rank, i, seed=40 + k) for k in range(12)]
    left = sum(g @ g.T for g in gs)
    right = sum(g.T @ g for g in gs)
    full = sum(torch.outer(g.reshape(-1), g.reshape(-1)) for g in gs)
    bound = rank * torch.kron(pc.psd_power(left, 0.5), pc.psd_power(right, 0.5))
    assert torch.linalg.eigvalsh(bound - full).min() > -1e-9 * full.norm()
    p = pc.shampoo(torch.stack([g.reshape(-1) for g in gs]), [shape], delta=0.0)
    # pc.shampoo averages L and R over the samples: P² = (bound / (r K))^{-1}
    assert torch.allclose(p @ p, pc.psd_power(bound / (rank * len(gs)), -1.0),
                          atol=1e-8 * p.norm() ** 2)


def test_shampoo_bound_needs_the_factors_in_torch_order():
    """Rank-one gradients δ aᵀ with δ near e₁ and a near e₂ (a square layer): the bound holds
    with L on the rows, fails with the factors swapped."""
    e1, e2 = torch.eye(4, dtype=torch.float64)[:2]
    gs = [torch.outer(e1 + 0.1 * _randn(4, seed=60 + k), e2 + 0.1 * _randn(4, seed=80 + k))
          for k in range(12)]
    left = sum(g @ g.T for g in gs)
    right = sum(g.T @ g for g in gs)
    full = sum(torch.outer(g.reshape(-1), g.reshape(-1)) for g in gs)
    for a, b, holds in [(left, right, True), (right, left, False)]:
        gap = torch.linalg.eigvalsh(torch.kron(pc.psd_power(a, 0.5), pc.psd_power(b, 0.5))
                                    - full).min()
        assert bool(gap > -1e-9 * full.norm()) == holds
