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
from collections.abc import Callable, Mapping, Sequence
from typing import Any

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
