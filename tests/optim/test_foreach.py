"""The foreach path (sgd_foreach, adam_foreach, optedu.optim.foreach's machinery): the multi-tensor
SGD and Adam/AdamW, bit for bit equal to optedu's one-tensor
rules and to torch.optim's own foreach implementations, in float64 and float32.

The grids are tests/optimizers.py's rows for SGD, Adam and AdamW (a pairwise cover of each in a
quick pytest, every combination under OPTEDU_TESTS=full). Each run has two parameter groups, a
parameter whose gradient is always None and one whose gradient first appears at the third step
(so SGD's momentum buffers are created in two different steps, Adam's states too), and fresh
seeded gradients at every step.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
import torch

import optedu
from optedu.optim.adam import adam_foreach
from optedu.optim.sgd import sgd_foreach
from optimizers import FULL, PAIRS

STEPS = 6
SHAPES = [(4, 5), (5,), (3, 1), (2, 2, 2)]
DTYPES = [torch.float64, torch.float32]
ROWS = {pair.name: pair for pair in PAIRS if pair.name in ("SGD", "Adam", "AdamW")}


def _cases(name: str) -> list[dict[str, Any]]:
    """Every combination (full tier), or the pairwise cover's case with the most options away
    from their first value (quick tier)."""
    grid = ROWS[name].grid
    cases = ROWS[name].cases()
    if FULL:
        return cases
    return [max(cases, key=lambda c: sum(c[k] != grid[k][0] for k in c))]


CASES = [(name, kwargs) for name in ROWS for kwargs in _cases(name)]
IDS = [f"{name}-{i}" for i, (name, _) in enumerate(CASES)]


def run(make: Callable[[list[dict[str, Any]]], torch.optim.Optimizer], dtype: torch.dtype,
        steps: int = STEPS) -> tuple[list[torch.Tensor], torch.optim.Optimizer]:
    """``steps`` steps of ``make(groups)`` on seeded parameters and gradients; returns the
    parameters and the optimizer."""
    gen = torch.Generator().manual_seed(0)
    params = [torch.randn(s, generator=gen, dtype=dtype).requires_grad_() for s in SHAPES]
    late = torch.randn(3, generator=gen, dtype=dtype).requires_grad_()   # grad from step 3
    never = torch.randn(2, generator=gen, dtype=dtype).requires_grad_()  # grad always None
    groups = [{"params": params[:2] + [never]},
              {"params": params[2:] + [late], "lr": 0.003}]
    optimizer = make(groups)
    for t in range(1, steps + 1):
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen, dtype=dtype)
        late.grad = torch.randn(3, generator=gen, dtype=dtype) if t >= 3 else None
        optimizer.step()
    return params + [late, never], optimizer


def assert_bit_equal(a: tuple[list[torch.Tensor], torch.optim.Optimizer],
                     b: tuple[list[torch.Tensor], torch.optim.Optimizer]) -> None:
    """Same parameters and same state entries, bit for bit."""
    (params_a, opt_a), (params_b, opt_b) = a, b
    for p, q in zip(params_a, params_b):
        assert torch.equal(p, q), (p - q).abs().max()
        state_a, state_b = opt_a.state.get(p, {}), opt_b.state.get(q, {})
        assert sorted(state_a) == sorted(state_b)
        for key in state_a:
            assert torch.equal(state_a[key], state_b[key]), key


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("name, kwargs", CASES, ids=IDS)
def test_foreach_equals_one_tensor_rule(name, kwargs, dtype):
    cls = ROWS[name].ours
    single = run(lambda groups: cls(groups, **kwargs), dtype)
    multi = run(lambda groups: cls(groups, foreach=True, **kwargs), dtype)
    assert_bit_equal(single, multi)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("name, kwargs", CASES, ids=IDS)
def test_foreach_equals_torch_foreach(name, kwargs, dtype):
    pair = ROWS[name]
    ours = run(lambda groups: pair.ours(groups, foreach=True, **kwargs), dtype)
    theirs = run(lambda groups: pair.theirs(groups, foreach=True, **kwargs), dtype)
    assert_bit_equal(ours, theirs)


def test_foreach_path_is_taken_only_when_asked():
    """``foreach=None`` (the default) and ``False`` run the one-tensor rule; ``True`` runs the
    list rule; a group can override the default."""
    for cls in (optedu.SGD, optedu.Adam, optedu.AdamW):
        for foreach, calls in ((None, 0), (False, 0), (True, 1)):
            with mock.patch.object(cls, "update_foreach", autospec=True) as update:
                run(lambda groups: cls(groups, lr=0.1, foreach=foreach), torch.float64, steps=1)
            assert update.call_count == 2 * calls, (cls, foreach)  # two groups
        mixed = run(lambda groups: cls([groups[0], {**groups[1], "foreach": True}], lr=0.1),
                    torch.float64, steps=3)
        assert_bit_equal(run(lambda groups: cls(groups, lr=0.1), torch.float64, steps=3), mixed)


def test_foreach_functions_on_lists_equal_the_one_tensor_functions():
    """The functions themselves, with a momentum buffer missing for one tensor only."""
    gen = torch.Generator().manual_seed(3)
    params = [torch.randn(4, generator=gen) for _ in range(3)]
    grads = [torch.randn(4, generator=gen) for _ in range(3)]
    buffers = [torch.randn(4, generator=gen), None, torch.randn(4, generator=gen)]
    kw = dict(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.1, nesterov=True,
              maximize=True)
    ours_p, ours_b = [p.clone() for p in params], [b if b is None else b.clone() for b in buffers]
    ours_b = sgd_foreach(ours_p, grads, ours_b, **kw)
    for i in range(3):
        p, b = params[i].clone(), buffers[i] if buffers[i] is None else buffers[i].clone()
        b = optedu.sgd(p, grads[i], b, **kw)
        assert torch.equal(p, ours_p[i]) and torch.equal(b, ours_b[i])
    moments = [[torch.rand(4, generator=gen) for _ in range(3)] for _ in range(3)]
    akw = dict(lr=0.01, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.1,
               decoupled_weight_decay=False, maximize=False)
    ours = [[t.clone() for t in ts] for ts in [params] + moments]
    adam_foreach(ours[0], grads, ours[1], ours[2], ours[3], [1, 5, 9], **akw)
    for i, step in enumerate([1, 5, 9]):
        p, m, v, vmax = (ts[i].clone() for ts in [params] + moments)
        optedu.adam(p, grads[i], m, v, vmax, step, **akw)
        for mine, theirs in zip((p, m, v, vmax), (ts[i] for ts in ours)):
            assert torch.equal(mine, theirs)


def test_nesterov_leaves_grad_alone_where_torch_foreach_overwrites_it():
    """The one documented difference from torch's ``_multi_tensor_sgd``: with Nesterov and
    neither ``maximize`` nor ``weight_decay``, torch's foreach SGD adds μ b_t into ``p.grad``
    in place; optedu's (like both one-tensor paths) leaves the gradient as it was."""
    grads = {}
    for label, make in (("optedu", lambda p: optedu.SGD(p, lr=0.1, momentum=0.9, nesterov=True,
                                                          foreach=True)),
                        ("torch", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9,
                                                            nesterov=True, foreach=True))):
        p = torch.ones(3, requires_grad=True)
        p.grad = torch.full((3,), 2.0)
        make([p]).step()
        grads[label] = p.grad
    assert torch.equal(grads["optedu"], torch.full((3,), 2.0))
    assert torch.equal(grads["torch"], torch.full((3,), 2.0 + 0.9 * 2.0))  # g + μ b_1, b_1 = g


@pytest.mark.parametrize("cls", [optedu.SGD, optedu.Adam, optedu.AdamW])
@pytest.mark.parametrize("value", ["yes", 1, 0.0])
def test_bad_foreach_is_refused(cls, value):
    with pytest.raises(ValueError, match=f"Invalid foreach value: {value}"):
        cls([torch.zeros(1, requires_grad=True)], lr=0.1, foreach=value)


def test_foreach_refuses_sparse_gradients():
    p = torch.zeros(3, requires_grad=True)
    p.grad = torch.ones(3).to_sparse()
    with pytest.raises(RuntimeError, match="Adam does not support sparse gradients"):
        optedu.Adam([p], foreach=True).step()


def test_foreach_checkpoint_round_trip_with_torch():
    """A foreach optedu optimizer's checkpoint loads into torch's foreach Adam and back; the
    runs continue equal."""
    gen = torch.Generator().manual_seed(5)
    p = torch.randn(4, dtype=torch.float64, generator=gen).requires_grad_()
    q = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    ours, theirs = optedu.AdamW([p], foreach=True), torch.optim.AdamW([q], foreach=True)
    for _ in range(2):
        p.grad = torch.randn(4, dtype=torch.float64, generator=gen)
        ours.step()
    theirs.load_state_dict(copy.deepcopy(ours.state_dict()))
    ours.load_state_dict(copy.deepcopy(theirs.state_dict()))
    assert ours.param_groups[0]["foreach"] is True
    g = torch.randn(4, dtype=torch.float64, generator=gen)
    p.grad, q.grad = g.clone(), g.clone()
    with torch.no_grad():
        q.copy_(p)
    ours.step()
    theirs.step()
    assert torch.equal(p, q)
