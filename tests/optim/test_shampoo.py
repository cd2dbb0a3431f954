"""optedu.optim.shampoo.Shampoo against pytorch_optimizer.Shampoo 4.1.0, bit for bit: every
combination of the options that change the step, float32 and float64, one and two groups, on a
matrix, a vector, a 3-D tensor, a wide matrix and a 0-d tensor; then checkpoints both ways,
errors, and what Gupta et al. (2018) prove: the Kronecker form, full-matrix AdaGrad for a
vector, and the bound of their Lemma 8."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
from pytorch_optimizer import Shampoo as Reference

from optedu.optim.shampoo import Shampoo, inverse_root
from optimizers import FULL

STEPS = 20
SHAPES = [(5, 4), (6,), (3, 4, 2), (2, 40), ()]


def _params(dtype: torch.dtype) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(s, generator=g, dtype=dtype).requires_grad_() for s in SHAPES]


def _grads(params: list[torch.Tensor], step: int) -> None:
    """A fresh gradient per step (the reference overwrites p.grad in place)."""
    g = torch.Generator().manual_seed(100 + step)
    for p in params:
        p.grad = torch.randn(p.shape, generator=g, dtype=p.dtype)


def _groups(params, two: bool):
    if not two:
        return params
    return [{"params": params[:2]},
            {"params": params[2:], "weight_decay": 0.03, "momentum": 0.5}]


def _run(cls, kwargs, *, dtype=torch.float64, two=False, steps=STEPS, params=None, opt=None):
    params = _params(dtype) if params is None else params
    opt = cls(_groups(params, two), **kwargs) if opt is None else opt
    for t in range(steps):
        _grads(params, t)
        opt.step()
    return params, opt


def _same(ours, theirs, a, b) -> None:
    """The same parameters, group keys, state keys and state tensors, bit for bit."""
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    keys = [[{k: v for k, v in g.items() if k != "params"} for g in o.param_groups]
            for o in (ours, theirs)]
    assert keys[0] == keys[1]
    for p, q in zip(a, b):
        s, r = ours.state[p], theirs.state[q]
        assert sorted(s) == sorted(r)
        for key in s:
            assert torch.equal(s[key], r[key]), key


DECAYS = {"none": {}, "l2": dict(weight_decay=0.1),
          "decoupled": dict(weight_decay=0.1, weight_decouple=True),
          "fixed": dict(weight_decay=0.1, weight_decouple=True, fixed_decay=True)}
OPTIONS = dict(momentum=[0.0, 0.9], decay=list(DECAYS), preconditioning_compute_steps=[1, 3],
               matrix_eps=[1e-6, 1e-2], maximize=[False, True])


def _cases():
    combos = [dict(zip(OPTIONS, v)) for v in itertools.product(*OPTIONS.values())]
    cases = [(c, dtype, two) for c in combos
             for dtype in (torch.float32, torch.float64) for two in (False, True)]
    # the quick tier: every 11th of the 256 (11 is prime to each factor, so every value of
    # every option, dtype and group count comes up)
    return cases if FULL else cases[::11]


@pytest.mark.parametrize(("options", "dtype", "two"), _cases(),
                         ids=lambda x: str(x).replace("torch.", ""))
def test_bit_identical_to_pytorch_optimizer(options, dtype, two):
    options = dict(options)
    kwargs = dict(lr=0.01, **options, **DECAYS[options.pop("decay")])
    kwargs.pop("decay")
    a, ours = _run(Shampoo, kwargs, dtype=dtype, two=two)
    b, theirs = _run(Reference, kwargs, dtype=dtype, two=two)
    _same(ours, theirs, a, b)
    assert not all(torch.equal(x, y) for x, y in zip(a, _params(dtype)))


@pytest.mark.parametrize("load_into", ["optedu", "reference"])
def test_checkpoint_moves_both_ways(load_into):
    kwargs = dict(lr=0.01, momentum=0.9, weight_decay=0.1, preconditioning_compute_steps=2)
    first, second = (Reference, Shampoo) if load_into == "optedu" else (Shampoo, Reference)
    a, half = _run(first, kwargs, steps=7)
    b = [p.detach().clone().requires_grad_() for p in a]
    moved = second(b, **kwargs)
    # a copy: load_state_dict keeps the given tensors, which the first would go on changing
    moved.load_state_dict(copy.deepcopy(half.state_dict()))
    _run(first, kwargs, steps=5, params=a, opt=half)
    _run(second, kwargs, steps=5, params=b, opt=moved)
    _same(moved, half, b, a) if load_into == "optedu" else _same(half, moved, a, b)


def test_a_deep_copy_keeps_the_optimizer_wide_options():
    """torch copies only defaults, state and groups; T and maximize live on the optimizer."""
    kwargs = dict(lr=0.01, preconditioning_compute_steps=3, maximize=True)
    a, opt = _run(Shampoo, kwargs, steps=4)
    twin = copy.deepcopy((a, opt))
    _run(Shampoo, kwargs, steps=5, params=a, opt=opt)
    _run(Shampoo, kwargs, steps=5, params=twin[0], opt=twin[1])
    _same(opt, twin[1], a, twin[0])


def test_leaves_the_gradient_alone():
    p = torch.randn(3, 2, requires_grad=True)
    p.grad = torch.randn(3, 2)
    before = p.grad.clone()
    Shampoo([p], lr=0.1, momentum=0.5, weight_decay=0.1, maximize=True).step()
    assert torch.equal(p.grad, before)


BAD = [
    (dict(lr=-1e-3), "Invalid learning rate: -0.001"),
    (dict(momentum=1.0), "Invalid momentum value: 1.0"),
    (dict(momentum=-0.1), "Invalid momentum value: -0.1"),
    (dict(weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
    (dict(preconditioning_compute_steps=0), "Invalid preconditioning_compute_steps value: 0"),
    (dict(matrix_eps=-1e-6), "Invalid matrix_eps value: -1e-06"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        Shampoo([torch.zeros(2, requires_grad=True)], **kwargs)
    with pytest.raises(Exception):                 # the reference refuses them too
        Reference([torch.zeros(2, requires_grad=True)], **kwargs)


def test_refuses_complex_and_sparse():
    p = torch.zeros(2, 2, dtype=torch.complex64, requires_grad=True)
    p.grad = torch.ones_like(p)
    with pytest.raises(RuntimeError, match="complex"):
        Shampoo([p]).step()
    q = torch.zeros(3, requires_grad=True)
    q.grad = torch.ones(3).to_sparse()
    with pytest.raises(RuntimeError, match="sparse"):
        Shampoo([q]).step()


def _sym_power(h: torch.Tensor, power: float) -> torch.Tensor:
    """H^power by eigh: an independent route to the roots."""
    w, v = torch.linalg.eigh(h)
    return (v * w.pow(power)) @ v.T


def test_matrix_step_is_the_kronecker_preconditioner():
    """vec(L^{-1/4} G R^{-1/4}) = (L ⊗ R)^{-1/4} vec(G) (row-major vec): Shampoo is a
    full-matrix preconditioner restricted to Kronecker products (Gupta et al., 2018, §3)."""
    torch.manual_seed(0)
    w = torch.zeros(4, 3, dtype=torch.float64, requires_grad=True)
    opt = Shampoo([w], lr=1.0, matrix_eps=1e-3)
    eye = (torch.eye(4, dtype=torch.float64), torch.eye(3, dtype=torch.float64))
    left, right = 1e-3 * eye[0], 1e-3 * eye[1]
    for _ in range(5):
        g = torch.randn(4, 3, dtype=torch.float64)
        w.grad = g.clone()
        before = w.detach().clone()
        opt.step()
        left, right = left + g @ g.T, right + g.T @ g
        full = _sym_power(torch.kron(left, right), -0.25)
        step = before - w.detach()
        torch.testing.assert_close(step.flatten(), full @ g.flatten(), rtol=1e-9, atol=1e-12)


def test_vector_step_is_full_matrix_adagrad():
    torch.manual_seed(1)
    v = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    opt = Shampoo([v], lr=1.0, matrix_eps=1e-2)
    h = 1e-2 * torch.eye(5, dtype=torch.float64)
    for _ in range(4):
        g = torch.randn(5, dtype=torch.float64)
        v.grad = g.clone()
        before = v.detach().clone()
        opt.step()
        h = h + torch.outer(g, g)
        torch.testing.assert_close(before - v.detach(), _sym_power(h, -0.5) @ g,
                                   rtol=1e-9, atol=1e-12)


def test_lemma_8_the_kronecker_factors_dominate_full_matrix_adagrad():
    """Gupta et al. (2018), Lemma 8: gradients of rank at most r give
    (1/r) Σ g gᵀ ≼ L^{1/2} ⊗ R^{1/2} (ε = 0 here; ε only adds to the right side)."""
    torch.manual_seed(2)
    rank, m, n = 2, 5, 4
    grads = [torch.randn(m, rank, dtype=torch.float64) @ torch.randn(rank, n, dtype=torch.float64)
             for _ in range(6)]
    left = sum(g @ g.T for g in grads)
    right = sum(g.T @ g for g in grads)
    full = sum(torch.outer(g.flatten(), g.flatten()) for g in grads) / rank
    kron = torch.kron(_sym_power(left + 1e-12 * torch.eye(m, dtype=torch.float64), 0.5),
                      _sym_power(right + 1e-12 * torch.eye(n, dtype=torch.float64), 0.5))
    assert torch.linalg.eigvalsh(kron - full).min() > -1e-9


def test_inverse_root_agrees_with_eigh():
    h = torch.randn(6, 6, dtype=torch.float64)
    h = h @ h.T + 0.1 * torch.eye(6, dtype=torch.float64)
    torch.testing.assert_close(inverse_root(h, 4), _sym_power(h, -0.25))
    assert inverse_root(h.float(), 4).dtype == torch.float32


def test_no_move_before_the_first_root():
    """The reference's roots start at zero: with T = 3 the first two steps leave the weights."""
    w = torch.randn(3, 3, requires_grad=True)
    start = w.detach().clone()
    opt = Shampoo([w], lr=0.1, preconditioning_compute_steps=3)
    for step in range(3):
        w.grad = torch.randn(3, 3)
        opt.step()
        assert torch.equal(w.detach(), start) == (step < 2)
