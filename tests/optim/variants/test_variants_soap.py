"""The exact-eigenbasis variant of SOAP: after each refresh its bases diagonalise the factors,
where the paper's power-iteration refresh only approaches them; before the first refresh the
two are the same optimizer."""

from __future__ import annotations

import torch

from optedu.optim.soap import SOAP
from optedu.optim.variants.soap import SOAPEigh


def _run(cls, steps, k=4):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(6, 5, generator=g, dtype=torch.float64, requires_grad=True)
    opt = cls([w], lr=0.01, precondition_frequency=k)
    for _ in range(steps):
        w.grad = torch.randn(6, 5, generator=g, dtype=torch.float64) * torch.linspace(
            0.5, 3.0, 5, dtype=torch.float64)
        opt.step()
    return w, opt


def _off_diagonal(opt, w):
    worst = 0.0
    for factor, q in zip(opt.state[w]["GG"], opt.state[w]["Q"]):
        d = q.T @ factor @ q
        worst = max(worst, ((d - torch.diag(torch.diag(d))).norm() / d.norm()).item())
    return worst


def test_exact_refresh_diagonalises_the_factors_the_power_step_does_not():
    # 9 steps at k = 4: the preconditioner update of step 9 counts t = 8 and refreshes, after
    # feeding the factors: the bases are then those of the factors held
    w, exact = _run(SOAPEigh, 9)
    v, paper = _run(SOAP, 9)
    assert not torch.equal(w, v)
    assert _off_diagonal(exact, w) < 1e-12
    assert _off_diagonal(paper, v) > 1e-4


def test_the_same_before_the_first_refresh():
    w, _ = _run(SOAPEigh, 4)
    v, _ = _run(SOAP, 4)
    assert torch.equal(w, v)
