"""Adamax's comparison variants (optedu.optim.variants.nadam).

The L^p form is Adam for p = 2 and tends to the paper's max recursion as p
grows; the paper's Adamax and torch's differ only by where eps sits.
"""

import math

import pytest
import torch

import optedu
from optedu.optim.variants.nadam import AdamPNorm, adam_p_norm
from runs import path as _path
from runs import spread_grads as _grads

F64 = torch.float64


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


def test_first_step_by_hand():
    # m_1 = 0.1 g, u_1 = (1-β2^p)^{1/p}|g|, û_1 = |g|: the step is η sign(g)
    for p in (1.0, 2.0, 7.0, math.inf):
        theta = torch.zeros(1, dtype=F64)
        m, u = torch.zeros(1, dtype=F64), torch.zeros(1, dtype=F64)
        adam_p_norm(theta, torch.tensor([-3.0], dtype=F64), m, u, 1,
                    lr=0.1, beta1=0.9, beta2=0.999, p=p, eps=0.0)
        assert theta.item() == pytest.approx(0.1, rel=1e-12)
        expected_u = 3.0 if math.isinf(p) else 3.0 * (1 - 0.999**p) ** (1 / p)
        assert u.item() == pytest.approx(expected_u, rel=1e-12)


def test_p_2_is_adam_with_beta2_squared():
    grads = _grads()
    ours = _path(lambda q: AdamPNorm(q, lr=0.01, betas=(0.9, 0.99), p=2.0,
                                     eps=1e-8), grads)
    adam = _path(lambda q: optedu.Adam(q, lr=0.01, betas=(0.9, 0.99**2),
                                       eps=1e-8), grads)
    assert _rel(ours, adam) < 1e-12


def test_large_p_tends_to_the_max_recursion():
    grads = _grads(200)
    limit = _path(lambda q: AdamPNorm(q, lr=0.01, p=math.inf), grads)
    gaps = [_rel(_path(lambda q: AdamPNorm(q, lr=0.01, p=p), grads), limit)
            for p in (4.0, 32.0, 256.0, 4096.0)]
    assert all(a > b for a, b in zip(gaps, gaps[1:]))
    assert gaps[-1] < 1e-3


def test_state_stays_finite_for_huge_p():
    grads = _grads(50) * 1e3
    path = _path(lambda q: AdamPNorm(q, lr=0.01, p=1e6), grads)
    assert torch.isfinite(path).all()


def test_paper_form_differs_from_torch_only_through_eps():
    grads = _grads()
    paper = _path(lambda q: AdamPNorm(q, lr=0.01, p=math.inf), grads)
    torch_eps0 = _path(lambda q: optedu.Adamax(q, lr=0.01, eps=0.0), grads)
    assert _rel(paper, torch_eps0) < 1e-14
    torch_default = _path(lambda q: optedu.Adamax(q, lr=0.01), grads)
    assert 0 < _rel(paper, torch_default) < 1e-4


def test_keras_form_is_eps_after_the_maximum():
    # zero gradients in one coordinate: the paper divides 0/0, torch and
    # the eps-after form (Keras) do not move it
    grads = _grads(20)
    grads[:, 0] = 0.0
    paper = _path(lambda q: AdamPNorm(q, lr=0.01, p=math.inf), grads)
    assert torch.isnan(paper[1:, 0]).all()
    keras = _path(lambda q: AdamPNorm(q, lr=0.01, p=math.inf, eps=1e-8),
                  grads)
    assert (keras[:, 0] == 0).all()


@pytest.mark.parametrize("kwargs", [dict(p=0.5), dict(lr=-1.0),
                                    dict(eps=-1.0), dict(betas=(1.0, 0.9))])
def test_errors(kwargs):
    with pytest.raises(ValueError):
        AdamPNorm([torch.zeros(1)], **kwargs)
