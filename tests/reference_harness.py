"""The runs that the tests against reference packages share: one problem, two groups, a loop.

Each rule checked against its authors' or a third party's package (``tests/optim/test_<rule>.py``,
named by its row's ``test`` in ``optedu/optim/catalogue.py``) runs optedu's class and the
reference's on the same problem and compares parameters and state after every option
combination. The problem is the same in every such file: four tensors (two matrices, two biases)
of a small tanh network, a new seeded batch at each step, the first two tensors in one group and
the last two in a second group that changes some hyperparameters.

A test file keeps what is its own (its option grid, its state keys, its tolerance where the
reference is not bit-equal); the parity of torch twins is ``tests/optimizers.py``'s table.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest
import torch

STEPS = 25
# two matrices and their biases: x (8 × 4) → tanh(x w1 + b1) (8 × 5) → w2, b2 (8 × 3)
SHAPES = [(4, 5), (5,), (5, 3), (3,)]


def params(dtype: torch.dtype = torch.float64, seed: int = 0) -> list[torch.Tensor]:
    """The four tensors of :data:`SHAPES`, seeded, requiring gradients."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=dtype).requires_grad_() for s in SHAPES]


def loss(params: Sequence[torch.Tensor], step: int) -> torch.Tensor:
    """A small tanh network on a new batch each step (the batch is a function of the step)."""
    g = torch.Generator().manual_seed(100 + step)
    dtype = params[0].dtype
    x = torch.randn(8, 4, generator=g, dtype=dtype)
    y = torch.randn(8, 3, generator=g, dtype=dtype)
    w1, b1, w2, b2 = params
    return ((torch.tanh(x @ w1 + b1) @ w2 + b2 - y) ** 2).mean()


def cases(options: Mapping[str, Sequence[Any]], every: int, full: bool,
          keep: Callable[[dict[str, Any]], bool] | None = None
          ) -> list[tuple[dict[str, Any], torch.dtype, bool]]:
    """Every combination of ``options`` (those ``keep`` accepts), in float32 and float64,
    with one group and with two: ``(options, dtype, two)``. The full tier runs them all; the
    quick tier every ``every``-th, where ``every`` is prime to each factor's count so that
    each value of each factor comes up."""
    combos = [dict(zip(options, v)) for v in itertools.product(*options.values())]
    combos = [c for c in combos if keep is None or keep(c)]
    grid = [(c, dtype, two) for c in combos
            for dtype in (torch.float32, torch.float64) for two in (False, True)]
    return grid if full else grid[::every]


def complex_unused_sparse(ours: Callable[..., torch.optim.Optimizer],
                          theirs: Callable[..., torch.optim.Optimizer], name: str,
                          **kwargs: Any) -> None:
    """Three edges a reference-checked rule shares: on a complex parameter, six steps of
    ``ours(params, lr=0.05, **kwargs)`` equal the reference's one-tensor path bit for bit; a
    parameter without a gradient is neither moved nor given state; a sparse gradient is
    refused with "``name`` does not support sparse gradients"."""
    runs = []
    for make, extra in ((ours, {}), (theirs, dict(foreach=False))):
        z = torch.tensor([1 + 2j, -0.5 + 0.1j], dtype=torch.complex128, requires_grad=True)
        opt = make([z], lr=0.05, **kwargs, **extra)
        for t in range(6):
            opt.zero_grad()
            (z.abs() ** 2 * (1 + t)).sum().backward()
            opt.step()
        runs.append(z.detach())
    assert torch.equal(*runs)
    ps = params(torch.float64)
    unused = torch.ones(3, dtype=torch.float64, requires_grad=True)
    _, opt = train(ps, ours([*ps, unused]), steps=2)
    assert torch.equal(unused, torch.ones(3, dtype=torch.float64)) and unused not in opt.state
    emb = torch.zeros(4, 2, requires_grad=True)
    emb.grad = torch.zeros(4, 2).to_sparse()
    with pytest.raises(RuntimeError, match=f"{name} does not support sparse gradients"):
        ours([emb]).step()


def groups(params: list[torch.Tensor], two: bool, second: Mapping[str, Any]) -> list[Any]:
    """One group, or the first layer and the second layer with ``second``'s settings."""
    return [{"params": params[:2]}, {"params": params[2:], **second}] if two else params


def train(params: list[torch.Tensor], opt: torch.optim.Optimizer, steps: int = STEPS,
          start: int = 0, scheduler: Callable[[Any], Any] | None = None,
          after_first: Callable[[list[torch.Tensor]], None] | None = None
          ) -> tuple[list[torch.Tensor], torch.optim.Optimizer]:
    """``steps`` steps from step ``start``; ``scheduler(opt)`` steps after each, and
    ``after_first(params)`` runs after step 0."""
    sched = scheduler(opt) if scheduler else None
    for t in range(start, start + steps):
        opt.zero_grad()
        loss(params, t).backward()
        opt.step()
        if sched:
            sched.step()
        if t == 0 and after_first is not None:
            after_first(params)
    return params, opt


def run(make: Callable[[list[Any]], torch.optim.Optimizer], dtype: torch.dtype = torch.float64,
        two: bool = False, second: Mapping[str, Any] | None = None, **kwargs: Any
        ) -> tuple[list[torch.Tensor], torch.optim.Optimizer]:
    """:func:`train` the optimizer ``make(groups)`` builds on fresh :func:`params`."""
    ps = params(dtype)
    return train(ps, make(groups(ps, two, second or {})), **kwargs)


def on_random_gradients(make: Callable[[list[Any]], torch.optim.Optimizer],
                        shapes: Sequence[tuple[int, ...]], dtype: torch.dtype, steps: int,
                        shift: float = 0.0) -> list[torch.Tensor]:
    """``steps`` steps of ``make(params)`` on seeded parameters of ``shapes`` fed seeded
    normal gradients (plus ``shift``, so that their signs lean one way), no loss: for
    references that step whatever gradients they are handed."""
    g = torch.Generator().manual_seed(0)
    ps = [torch.nn.Parameter(torch.randn(s, generator=g, dtype=dtype)) for s in shapes]
    opt = make(ps)
    for t in range(steps):
        gg = torch.Generator().manual_seed(100 + t)
        for p in ps:
            p.grad = torch.randn(p.shape, generator=gg, dtype=dtype) + shift
        opt.step()
    return ps


def same(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> bool:
    """Whether two lists of tensors are equal bit for bit."""
    return all(torch.equal(x, y) for x, y in zip(a, b))


def worst(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> float:
    """The largest absolute difference between two lists of tensors."""
    return max((x.detach() - y.detach()).abs().max().item() for x, y in zip(a, b))


Make = Callable[[list[Any]], torch.optim.Optimizer]


def resume(save: Make, load: Make, second: Mapping[str, Any], steps: int = 10
           ) -> torch.optim.Optimizer:
    """A checkpoint taken after ``steps`` steps of ``save(groups)`` and loaded into
    ``load(groups)`` over a copy of the parameters: ``steps`` more steps in each must end bit
    for bit equal (two groups, the second with ``second``). Returns the loaded optimizer,
    for the checks a rule adds (its group keys, its step counts)."""
    params, opt = run(save, two=True, second=second, steps=steps)
    twin = [p.detach().clone().requires_grad_() for p in params]
    twin_opt = load(groups(twin, True, second))
    twin_opt.load_state_dict(copy.deepcopy(opt.state_dict()))
    train(params, opt, steps=steps, start=steps)
    train(twin, twin_opt, steps=steps, start=steps)
    assert same(params, twin), "the resumed run parted from the uninterrupted one"
    return twin_opt


def checkpoints_move_both_ways(ours: Make, theirs: Make, second: Mapping[str, Any]) -> None:
    """10 steps in one implementation, its state dict loaded into the other, 15 more: the
    same numbers as 25 steps of the reference, whichever way the checkpoint moves."""
    reference, _ = run(theirs, two=True, second=second)
    for first, then in ((ours, theirs), (theirs, ours)):
        ps = params()
        one = first(groups(ps, True, second))
        train(ps, one, steps=10)
        other = then(groups(ps, True, second))
        other.load_state_dict(copy.deepcopy(one.state_dict()))
        train(ps, other, steps=15, start=10)
        assert same(ps, reference), f"{type(one).__name__} → {type(other).__name__}"
