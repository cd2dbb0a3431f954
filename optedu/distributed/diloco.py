r"""DiLoCo (Douillard et al., 2023): workers that train apart for :math:`H` steps, then
average where they went, and an outer optimizer that steps on that average.

Each of :math:`M` workers starts round :math:`r` from the global weights
:math:`\theta^{(r-1)}`, runs :math:`H` steps of its inner optimizer (AdamW in the paper) on its
own data, and reaches :math:`\theta_m^{(r)}`. One all-reduce gives the *outer gradient*, the
mean of where the workers went, read as a gradient,

.. math::

    \Delta^{(r)} = \frac{1}{M}\sum_{m=1}^{M} \bigl(\theta^{(r-1)} - \theta_m^{(r)}\bigr),

and the outer optimizer (SGD with Nesterov momentum in the paper: rate 0.7, momentum 0.9)
steps the global weights with it: :math:`\theta^{(r)} = \text{OuterOpt}(\theta^{(r-1)},
\Delta^{(r)})`. Every worker copies :math:`\theta^{(r)}` and goes on; its inner optimizer keeps
its own state across rounds. The workers communicate once per :math:`H` steps, not once per
step as data parallelism does.

With :math:`M = 1`, an outer SGD without momentum at rate :math:`\alpha` is Lookahead with
:math:`k = H` (:mod:`optedu.training.lookahead`): :math:`\theta \leftarrow \phi -
\alpha(\phi - \theta_H)`; with an outer rate of 1 and no momentum it is plain averaging of the
workers' weights every :math:`H` steps (local SGD, "model soups" along the run).

What a run needs is a *task*, a picklable object with ``model()`` (the initial model, the same
on every worker), ``inner(model)`` (its inner optimizer), ``batches(worker)`` (worker
:math:`m`'s endless batches), ``loss(model, x, y)`` and ``evaluate(model)`` (a float).
:func:`diloco_rank` runs on every rank of a :func:`~optedu.distributed.launcher.launch`;
:func:`diloco_single` runs the :math:`M` workers one after another in this process and gives
the same numbers bit for bit when :math:`M = 2` (a sum of two terms does not depend on its
order; gloo's ring sums three or more in another order). :func:`data_parallel_rank` and
:func:`data_parallel_single` are the baseline: the gradients averaged every step.

Reference: A. Douillard, Q. Feng, A. A. Rusu, R. Chhaparia, Y. Donchev, A. Kuncoro,
M. Ranzato, A. Szlam and J. Shen, *DiLoCo: Distributed low-communication training of language
models*, 2023.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from optedu.optim.adam import AdamW
from optedu.optim.sgd import SGD
from optedu.optim._validation import check_integer
from .data_parallel import average_gradients

__all__ = ["Task", "OuterOptimizer", "outer_gradient", "inner_steps", "diloco_rank",
           "diloco_single", "data_parallel_rank", "data_parallel_single", "both_rank", "ToyTask"]


class Task(Protocol):
    """What :func:`diloco_rank` and its relatives train (see the module's docstring)."""

    def model(self) -> nn.Module: ...
    def inner(self, model: nn.Module) -> torch.optim.Optimizer: ...
    def batches(self, worker: int) -> Iterator[tuple[Tensor, Tensor]]: ...
    def loss(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor: ...
    def evaluate(self, model: nn.Module) -> float: ...


@torch.no_grad()
def outer_gradient(global_params: Sequence[Tensor], local_params: Iterable[Tensor]
                   ) -> list[Tensor]:
    r"""One worker's outer gradient, :math:`\theta^{(r-1)} - \theta_m^{(r)}`, tensor by tensor."""
    return [g - p.detach() for g, p in zip(global_params, local_params)]


class OuterOptimizer:
    r"""The global weights :math:`\theta` (a copy of ``params``) and the outer optimizer on
    them: optedu's SGD, Nesterov momentum by default (the paper's rate 0.7, momentum 0.9)."""

    def __init__(self, params: Iterable[Tensor], lr: float = 0.7, momentum: float = 0.9,
                 nesterov: bool = True) -> None:
        self.params = [p.detach().clone() for p in params]
        self.optimizer = SGD(self.params, lr=lr, momentum=momentum, nesterov=nesterov)

    @torch.no_grad()
    def step(self, delta: Sequence[Tensor]) -> None:
        r"""Step :math:`\theta` with the averaged outer gradient :math:`\Delta` as its gradient."""
        for p, d in zip(self.params, delta):
            p.grad = d
        self.optimizer.step()                   # θ ← OuterOpt(θ, Δ)

    @torch.no_grad()
    def load_into(self, model: nn.Module) -> None:
        """Copy the global weights into ``model`` (a worker starts its next round there)."""
        for p, g in zip(model.parameters(), self.params):
            p.copy_(g)


def inner_steps(task: Task, model: nn.Module, optimizer: torch.optim.Optimizer,
                batches: Iterator[tuple[Tensor, Tensor]], steps: int) -> list[float]:
    """``steps`` steps of the inner optimizer on the worker's batches; their losses."""
    losses = []
    for _ in range(steps):
        x, y = next(batches)
        loss = task.loss(model, x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


def _check(H: int, rounds: int) -> None:
    check_integer("H", H, 1)
    check_integer("rounds", rounds, 1)


def diloco_rank(rank: int, world_size: int, task: Task, H: int, rounds: int,
                outer: dict[str, Any] | None = None) -> dict[str, Any]:
    """DiLoCo on this rank (worker ``rank``): ``rounds`` rounds of ``H`` inner steps, one
    all-reduce of the outer gradient per round. Returns the global weights after each round's
    outer step (``params``: the last), the validation value after each round (``evals``), this
    worker's inner losses and the number of all-reduce calls."""
    _check(H, rounds)
    model = task.model()
    inner = task.inner(model)
    global_ = OuterOptimizer(model.parameters(), **(outer or {}))
    batches = task.batches(rank)
    evals, losses, calls = [], [], 0
    for _ in range(rounds):
        losses += inner_steps(task, model, inner, batches, H)
        delta = outer_gradient(global_.params, model.parameters())
        for d in delta:
            dist.all_reduce(d)                  # Σ_m (θ − θ_m), on every rank
            d.div_(world_size)                  # Δ = (1/M) Σ_m (θ − θ_m)
            calls += 1
        global_.step(delta)
        global_.load_into(model)
        evals.append(task.evaluate(model))
    return {"params": [p.clone() for p in global_.params], "evals": evals,
            "losses": losses, "allreduces": calls}


def diloco_single(task: Task, world_size: int, H: int, rounds: int,
                  outer: dict[str, Any] | None = None) -> dict[str, Any]:
    """The same run in this process: the ``world_size`` workers one after another, their
    outer gradients summed in rank order. Returns what :func:`diloco_rank` returns on rank 0
    (``allreduces`` the number the ranks would have made)."""
    _check(H, rounds)
    check_integer("world_size", world_size, 1)
    models = [task.model() for _ in range(world_size)]
    inners = [task.inner(m) for m in models]
    global_ = OuterOptimizer(models[0].parameters(), **(outer or {}))
    streams = [task.batches(m) for m in range(world_size)]
    evals, losses, calls = [], [], 0
    for _ in range(rounds):
        deltas = []
        for m in range(world_size):
            worker = inner_steps(task, models[m], inners[m], streams[m], H)
            losses += worker if m == 0 else []
            deltas.append(outer_gradient(global_.params, models[m].parameters()))
        delta = [d.clone() for d in deltas[0]]
        with torch.no_grad():
            for other in deltas[1:]:
                for d, e in zip(delta, other):
                    d.add_(e)                   # Σ_m (θ − θ_m)
            for d in delta:
                d.div_(world_size)              # Δ
        calls += len(delta)
        global_.step(delta)
        for worker_model in models:
            global_.load_into(worker_model)
        evals.append(task.evaluate(models[0]))
    return {"params": [p.clone() for p in global_.params], "evals": evals,
            "losses": losses, "allreduces": calls}


def data_parallel_rank(rank: int, world_size: int, task: Task, steps: int,
                       every: int) -> dict[str, Any]:
    """The baseline on this rank: the inner optimizer on the gradients averaged over the ranks
    every step (:func:`~optedu.distributed.data_parallel.average_gradients`), ``steps`` steps,
    the validation value every ``every`` steps."""
    _check(every, steps)
    model = task.model()
    opt = task.inner(model)
    batches = task.batches(rank)
    evals, calls = [], 0
    for t in range(steps):
        x, y = next(batches)
        opt.zero_grad()
        task.loss(model, x, y).backward()
        average_gradients(model.parameters())
        calls += sum(p.grad is not None for p in model.parameters())
        opt.step()
        if (t + 1) % every == 0:
            evals.append(task.evaluate(model))
    return {"params": [p.detach().clone() for p in model.parameters()], "evals": evals,
            "allreduces": calls}


def data_parallel_single(task: Task, world_size: int, steps: int, every: int
                         ) -> dict[str, Any]:
    """:func:`data_parallel_rank` in this process: each step, every worker's gradient on its
    own batch, summed in rank order and divided by ``world_size``."""
    _check(every, steps)
    check_integer("world_size", world_size, 1)
    model = task.model()
    opt = task.inner(model)
    params = list(model.parameters())
    streams = [task.batches(m) for m in range(world_size)]
    evals, calls = [], 0
    for t in range(steps):
        total: list[Tensor | None] = [None] * len(params)
        for m in range(world_size):
            x, y = next(streams[m])
            grads = torch.autograd.grad(task.loss(model, x, y), params, allow_unused=True)
            for i, g in enumerate(grads):
                if g is not None:
                    s = total[i]
                    total[i] = g if s is None else s.add_(g)                # Σ_m g_m
        for p, s in zip(params, total):
            p.grad = None if s is None else s.div_(world_size)              # (1/M) Σ_m g_m
        calls += sum(g is not None for g in total)
        opt.step()
        if (t + 1) % every == 0:
            evals.append(task.evaluate(model))
    return {"params": [p.detach().clone() for p in params], "evals": evals,
            "allreduces": calls}


def both_rank(rank: int, world_size: int, task: Task, H: int, rounds: int
              ) -> dict[str, Any]:
    """On this rank: DiLoCo (the paper's outer step, ``rounds`` rounds of ``H`` steps), then
    data parallelism for as many steps, evaluated every ``H``; one launch for both."""
    return {"diloco": diloco_rank(rank, world_size, task, H, rounds),
            "dp": data_parallel_rank(rank, world_size, task, H * rounds, H)}


@dataclass(frozen=True)
class ToyTask:
    """A small :class:`Task` for tests and demonstrations: a tanh MLP 8-16-4 (``dtype``) fitted
    by mean squared error to random batches of ``batch`` examples (worker ``m``'s drawn with
    seed ``1000 * seed + m``), AdamW in two groups (weights with decay 0.1 at rate 0.01;
    biases without decay at rate 0.002)."""

    dtype: torch.dtype = torch.float64
    seed: int = 0
    batch: int = 16

    def model(self) -> nn.Module:
        torch.manual_seed(self.seed)
        return nn.Sequential(nn.Linear(8, 16, dtype=self.dtype), nn.Tanh(),
                             nn.Linear(16, 4, dtype=self.dtype))

    def inner(self, model: nn.Module) -> torch.optim.Optimizer:
        named = list(model.named_parameters())
        return AdamW([{"params": [p for n, p in named if not n.endswith("bias")]},
                      {"params": [p for n, p in named if n.endswith("bias")],
                       "weight_decay": 0.0, "lr": 2e-3}], lr=1e-2, weight_decay=0.1)

    def _batch(self, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        x = torch.randn(self.batch, 8, generator=gen, dtype=self.dtype)
        return x, torch.sin(x[:, :4]) + 0.1 * torch.randn(self.batch, 4, generator=gen,
                                                          dtype=self.dtype)

    def batches(self, worker: int) -> Iterator[tuple[Tensor, Tensor]]:
        gen = torch.Generator().manual_seed(1000 * self.seed + worker)
        while True:
            yield self._batch(gen)

    def loss(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        return F.mse_loss(model(x), y)

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> float:
        x, y = self._batch(torch.Generator().manual_seed(999_999))
        return float(F.mse_loss(model(x), y))
