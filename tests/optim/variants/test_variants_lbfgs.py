"""The dense BFGS matrix (optedu.optim.variants.lbfgs) against the two-loop recursion.

A worked 2 x 2 update by hand, the secant condition and positive definiteness,
and the equality of ``-lbfgs_matrix(...) @ g`` with ``two_loop`` on the
curvature pairs of a real ``optedu.LBFGS`` run.
"""

import torch

import optedu
from optedu.optim.lbfgs import two_loop
from optedu.optim.variants.lbfgs import bfgs_inverse_update, lbfgs_matrix

F64 = torch.float64


def test_one_update_by_hand():
    # H = I, s = (1, 0), y = (2, 1): rho = 1/2, V = I - rho y s^T = [[0, 0], [-1/2, 1]]
    # V^T V = [[1/4, -1/2], [-1/2, 1]]; plus rho s s^T = [[1/2, 0], [0, 0]]
    H = bfgs_inverse_update(torch.eye(2, dtype=F64), torch.tensor([1.0, 0.0], dtype=F64),
                            torch.tensor([2.0, 1.0], dtype=F64))
    assert torch.equal(H, torch.tensor([[0.75, -0.5], [-0.5, 1.0]], dtype=F64))


def test_secant_condition_and_positive_definiteness():
    gen = torch.Generator().manual_seed(0)
    n = 5
    A = torch.randn(n, n, generator=gen, dtype=F64)
    A = A @ A.T + torch.eye(n, dtype=F64)
    H = torch.eye(n, dtype=F64)
    for _ in range(3):
        s = torch.randn(n, generator=gen, dtype=F64)
        y = A @ s
        H = bfgs_inverse_update(H, s, y)
        torch.testing.assert_close(H @ y, s, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(H, H.T, rtol=0, atol=1e-12)
        assert torch.linalg.eigvalsh(H).min() > 0


def test_dense_matrix_times_gradient_is_the_two_loop_direction():
    gen = torch.Generator().manual_seed(1)
    X = torch.randn(30, 4, generator=gen, dtype=F64)
    t = (X @ torch.randn(4, generator=gen, dtype=F64) > 0).to(F64)
    w = torch.zeros(4, dtype=F64, requires_grad=True)
    opt = optedu.LBFGS([w], history_size=3, max_iter=8)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(X @ w, t)
        loss.backward()
        return loss
    opt.step(closure)
    state = opt.state[w]
    assert len(state["old_dirs"]) == 3                 # the history is full
    g = torch.randn(4, generator=gen, dtype=F64)
    d = two_loop(g, state["old_dirs"], state["old_stps"], state["ro"],
                 state["H_diag"], [None] * 3)
    H = lbfgs_matrix(state["old_stps"], state["old_dirs"], state["H_diag"])
    torch.testing.assert_close(d, -H @ g, rtol=1e-10, atol=1e-12)
