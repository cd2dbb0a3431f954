"""optedu's SophiaH against pytorch_optimizer.SophiaH 4.1.0, bit for bit: every option, float32
and float64, two groups, both of the reference's paths (foreach=False, and its default that
batches tensors), under the same seed so that both draw the same random vectors; then the
external ``hessian`` argument, checkpoints, errors, and the paper's rule worked by hand on a
quadratic whose Hessian is diagonal (where Rademacher vectors make Hutchinson's estimate exact)."""

from __future__ import annotations

import copy
import inspect
import itertools

import pytest
import torch
from pytorch_optimizer import SophiaH as Reference

import reference_harness as harness
from optedu.optim.sophia_h import SophiaH, hutchinson_
from optimizers import FULL, _pairwise_cover

F64 = torch.float64
SEED = 7
# the tests call backward(create_graph=True) on purpose (the estimate needs the graph)
pytestmark = pytest.mark.filterwarnings("ignore:Using backward.. with create_graph")
SECOND = dict(lr=0.01, betas=(0.9, 0.9), p=0.5, weight_decay=0.05)


def _train(params, opt, steps=harness.STEPS, start=0):
    for t in range(start, start + steps):
        opt.zero_grad()
        harness.loss(params, t).backward(create_graph=True)
        opt.step()
    return params, opt


def _run(cls, dtype, kwargs, two=True, **extra):
    torch.manual_seed(SEED)                        # the same vectors u for both
    params = harness.params(dtype)
    params, opt = _train(params, cls(harness.groups(params, two, SECOND), **kwargs, **extra))
    return params, opt, torch.get_rng_state()


def _assert_same(ours, theirs):
    (p, o, rng_a), (q, r, rng_b) = ours, theirs
    for x, y in zip(p, q):
        assert torch.equal(x, y), (x - y).abs().max()
        assert list(o.state[x]) == list(r.state[y])
        for key in r.state[y]:
            assert torch.equal(o.state[x][key], r.state[y][key]), key
    assert [g["step"] for g in o.param_groups] == [g["step"] for g in r.param_groups]
    assert torch.equal(rng_a, rng_b)               # the same number of draws


OPTIONS = dict(weight_decay=[0.0, 0.1], weight_decouple=[True, False], fixed_decay=[False, True],
               p=[1e-2, 1.0], update_period=[10, 1, 3], num_samples=[1, 3],
               hessian_distribution=["gaussian", "rademacher"], maximize=[False, True])
_INDICES = list(itertools.product(*(range(len(v)) for v in OPTIONS.values())))
CASES = [{key: OPTIONS[key][i] for key, i in zip(OPTIONS, indices)}
         for indices in (_INDICES if FULL else _pairwise_cover(_INDICES))]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("kwargs", CASES, ids=str)
def test_bit_identical(kwargs, dtype):
    ours = _run(SophiaH, dtype, kwargs)
    _assert_same(ours, _run(Reference, dtype, kwargs, foreach=False))
    _assert_same(ours, _run(Reference, dtype, kwargs))      # its default: foreach on CPU
    assert not torch.equal(ours[0][0], harness.params(dtype)[0])


def test_signature_and_defaults_are_the_references():
    ours = inspect.signature(SophiaH.__init__).parameters
    theirs = {k: v for k, v in inspect.signature(Reference.__init__).parameters.items()
              if k != "kwargs"}
    assert [(k, v.default) for k, v in ours.items()] == \
        [(k, v.default) for k, v in theirs.items()]
    params = harness.params()
    assert SophiaH(params).defaults == Reference(params).defaults


def test_external_hessian_bit_identical():
    """``step(hessian=...)`` on every third step, estimates the rest."""
    def run(cls):
        torch.manual_seed(SEED)
        params = harness.params()
        opt = cls(harness.groups(params, True, SECOND), update_period=4)
        for t in range(12):
            opt.zero_grad()
            harness.loss(params, t).backward(create_graph=True)
            given = [p.detach().abs() + t for p in params] if t % 3 == 2 else None
            opt.step(hessian=given)
        return params, opt, torch.get_rng_state()
    _assert_same(run(SophiaH), run(Reference))


@pytest.mark.parametrize("direction", ["theirs_to_ours", "ours_to_theirs"])
def test_checkpoint_moves_both_ways(direction):
    first, second = (Reference, SophiaH) if direction == "theirs_to_ours" \
        else (SophiaH, Reference)
    params, opt, _ = _run(first, F64, dict(update_period=3))
    saved = opt.state_dict()
    copies = [p.detach().clone().requires_grad_() for p in params]
    moved = second(harness.groups(params, True, SECOND), update_period=3)
    moved.load_state_dict(copy.deepcopy(saved))
    straight = first(harness.groups(copies, True, SECOND), update_period=3)
    straight.load_state_dict(copy.deepcopy(saved))
    for opt_, ps in ((moved, params), (straight, copies)):
        torch.manual_seed(SEED + 1)
        _train(ps, opt_, steps=7, start=harness.STEPS)
    assert harness.same(params, copies)


def test_two_steps_by_hand():
    """f(θ) = ½ Σ a_i θ_i², H = diag(a): a Rademacher u has u_i² = 1, so u ⊙ Hu = a exactly.
    η 0.1, β 0.5 and 0.5, ρ 1, k 2 (the second step keeps h)."""
    a = torch.tensor([2.0, 0.5, 4.0], dtype=F64)
    theta = torch.tensor([1.0, -2.0, 0.5], dtype=F64, requires_grad=True)
    opt = SophiaH([theta], lr=0.1, betas=(0.5, 0.5), p=1.0, update_period=2,
                  hessian_distribution="rademacher")

    def step():
        opt.zero_grad()
        (0.5 * (a * theta * theta).sum()).backward(create_graph=True)
        opt.step()
    # g_1 = aθ = [2, -1, 2]; m_1 = [1, -.5, 1]; ĥ = a; h_1 = [1, .25, 2]
    # m/h = [1, -2, .5], clipped [1, -1, .5]; θ_1 = θ - .1 [1, -1, .5] = [.9, -1.9, .45]
    step()
    assert torch.equal(opt.state[theta]["hessian"], a)
    torch.testing.assert_close(theta.detach(), torch.tensor([0.9, -1.9, 0.45], dtype=F64),
                               rtol=1e-15, atol=0)
    # g_2 = [1.8, -.95, 1.8]; m_2 = [1.4, -.725, 1.4]; h_2 = h_1 (no refresh at t = 2)
    # m/h = [1.4, -2.9, .7], clipped [1, -1, .7]; θ_2 = [.8, -1.8, .38]
    step()
    torch.testing.assert_close(opt.state[theta]["hessian_moment"],
                               torch.tensor([1.0, 0.25, 2.0], dtype=F64), rtol=0, atol=0)
    torch.testing.assert_close(theta.detach(), torch.tensor([0.8, -1.8, 0.38], dtype=F64),
                               rtol=1e-15, atol=0)


def test_gaussian_estimate_is_unbiased():
    """E[u ⊙ Au] = diag(A) for a full symmetric A: the mean of 2,000 Gaussian draws is within
    4 standard errors of diag(A) in every coordinate (one draw, u_i Σ_j A_ij u_j, has variance
    A_ii² + Σ_j A_ij²)."""
    gen = torch.Generator().manual_seed(0)
    b = torch.randn(5, 5, generator=gen, dtype=F64)
    a = b @ b.T
    theta = torch.randn(5, generator=gen, dtype=F64, requires_grad=True)
    (grad,) = torch.autograd.grad(0.5 * theta @ a @ theta, theta, create_graph=True)
    estimate = torch.empty(5, dtype=F64)
    torch.manual_seed(1)
    hutchinson_([estimate], [theta], [grad], num_samples=2000, distribution="gaussian")
    standard_error = ((a.diagonal() ** 2 + (a ** 2).sum(1)) / 2000).sqrt()
    z = (estimate - a.diagonal()).abs() / standard_error
    assert z.max() < 4, z


def test_gradient_without_graph_is_refused():
    params = harness.params()
    opt = SophiaH(params)
    harness.loss(params, 0).backward()
    with pytest.raises(RuntimeError, match=r"backward\(create_graph=True\)"):
        opt.step()


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=-0.1), "Invalid learning rate: -0.1"),
    (dict(betas=(1.0, 0.99)), "Invalid beta parameter at index 0: 1.0"),
    (dict(weight_decay=-0.01), "Invalid weight_decay value: -0.01"),
    (dict(p=-1.0), "Invalid p value: -1.0"),
    (dict(update_period=0), "Invalid update_period value: 0 (expected an integer >= 1)"),
    (dict(num_samples=0), "Invalid num_samples value: 0 (expected an integer >= 1)"),
    (dict(hessian_distribution="uniform"),
     "Invalid hessian_distribution value: uniform (expected 'gaussian' or 'rademacher')"),
    (dict(eps=-1e-12), "Invalid epsilon value: -1e-12"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError) as info:
        SophiaH(harness.params(), **kwargs)
    assert str(info.value) == message


def test_hessian_of_wrong_shape_is_refused():
    params = harness.params()
    opt = SophiaH(params)
    harness.loss(params, 0).backward(create_graph=True)
    with pytest.raises(ValueError, match="Invalid hessian value"):
        opt.step(hessian=[torch.ones(2)] * 4)
