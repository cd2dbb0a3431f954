r"""Tensor parallelism: one MLP block's matrices cut over the ranks, Megatron's way.

Shoeybi et al. (2019) cut a transformer's MLP block
:math:`Y = \mathrm{GeLU}(X A^\top) B^\top` over :math:`t` ranks without
gathering any matrix:

* :class:`ColumnParallelLinear` holds a block of **rows** of :math:`A`
  (:math:`A` is ``out × in`` as torch stores it; a block of the output
  features, "columns" of :math:`A^\top` in the paper): each rank computes its
  slice of the hidden features from the whole input;
* :class:`RowParallelLinear` holds the matching block of **columns** of
  :math:`B`: each rank multiplies its slice of the hidden features and gets a
  partial sum of the whole output, and one all-reduce adds them.

The two operators of the paper make autograd do the communication: ``f``
(:func:`copy_to_tensor_parallel`) is the identity in the forward pass and an
all-reduce of the input's gradient in the backward pass; ``g``
(:func:`reduce_from_tensor_parallel`) is an all-reduce in the forward pass and
the identity in the backward pass. One block costs one all-reduce of the
activations forward and one backward.

:func:`tp_run` runs the block on every rank, with optimizers on the shards, and
:func:`single_run` runs the same steps in one process: an element-wise rule
(AdamW) steps each shard alone; a whole-matrix rule (Muon) on a shard is
another rule, and :func:`muon_tp_update` shows the two ways out (gather the
matrix, or accept the block-wise rule).

Imports: :mod:`optedu.optim` and this folder.
"""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from optedu.optim.adam import AdamW
from optedu.optim.muon import zeropower_via_newtonschulz
from .comm import count_collectives, totals


class _CopyToTensorParallel(torch.autograd.Function):
    """Megatron's ``f``: identity forward, all-reduce of the gradient backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)                      # ∂L/∂X = Σ_ranks ∂L_r/∂X
        return grad


class _ReduceFromTensorParallel(torch.autograd.Function):
    """Megatron's ``g``: all-reduce forward, identity backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        dist.all_reduce(x)                         # Y = Σ_ranks Y_r
        return x

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return grad


def copy_to_tensor_parallel(x: torch.Tensor) -> torch.Tensor:
    """Identity forward; all-reduce of the gradient backward (``f``)."""
    return cast(torch.Tensor, _CopyToTensorParallel.apply(x))


def reduce_from_tensor_parallel(x: torch.Tensor) -> torch.Tensor:
    """All-reduce forward; identity backward (``g``)."""
    return cast(torch.Tensor, _ReduceFromTensorParallel.apply(x))


def shard(t: torch.Tensor, dim: int, rank: int, world_size: int) -> torch.Tensor:
    """This rank's block of ``t`` along ``dim`` (equal blocks), a copy."""
    if t.shape[dim] % world_size:
        raise ValueError(f"Invalid world_size value: {world_size} (does not divide "
                         f"dimension {dim} of shape {tuple(t.shape)})")
    return t.chunk(world_size, dim)[rank].clone()


class ColumnParallelLinear(nn.Module):
    """``y_r = x A_rᵀ + b_r``: this rank's block of output features."""

    def __init__(self, full: nn.Linear, rank: int, world_size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(shard(full.weight.detach(), 0, rank, world_size))
        self.bias = nn.Parameter(shard(full.bias.detach(), 0, rank, world_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = copy_to_tensor_parallel(x)             # f: all-reduce ∂L/∂x backward
        return F.linear(x, self.weight, self.bias)


class RowParallelLinear(nn.Module):
    """``y = Σ_r x_r B_rᵀ + b``: partial sums over the ranks' input blocks."""

    def __init__(self, full: nn.Linear, rank: int, world_size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(shard(full.weight.detach(), 1, rank, world_size))
        self.bias = nn.Parameter(full.bias.detach().clone())   # whole, on every rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        partial = F.linear(x, self.weight)         # x_r B_rᵀ
        return reduce_from_tensor_parallel(partial) + self.bias  # g: all-reduce


def mlp(d_model: int, d_hidden: int, seed: int = 0,
        dtype: torch.dtype = torch.float64) -> nn.Sequential:
    """The block in one process: ``Linear(d, h) → GeLU → Linear(h, d)``."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d_model, d_hidden), nn.GELU(),
                         nn.Linear(d_hidden, d_model)).to(dtype)


def tp_mlp(full: nn.Sequential, rank: int, world_size: int) -> nn.Sequential:
    """The same block cut over ``world_size`` ranks: column- then row-parallel."""
    first, act, second = full
    return nn.Sequential(ColumnParallelLinear(cast(nn.Linear, first), rank, world_size),
                         act,
                         RowParallelLinear(cast(nn.Linear, second), rank, world_size))


def batch(d_model: int, n: int = 16, seed: int = 1,
          dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and regression targets, the same on every rank (TP's ranks see the
    same batch)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d_model, generator=gen, dtype=dtype)
    y = torch.randn(n, d_model, generator=gen, dtype=dtype)
    return x, y


def muon_tp_update(grad: torch.Tensor, dim: int, mode: str, rank: int,
                   world_size: int, ns_steps: int = 5,
                   dtype: torch.dtype = torch.float64) -> torch.Tensor:
    r"""Muon's orthogonalised update for this rank's block of a matrix cut
    along ``dim``.

    * ``"whole"``: all-gather the blocks, run Newton–Schulz on the matrix,
      keep this rank's block: Muon's update, at the price of an all-gather of
      the matrix and :math:`t` copies of the iteration;
    * ``"block"``: Newton–Schulz on the block alone, no communication: the
      polar factor of each block, another rule.

    ``dtype``: the iteration's precision (float64 here, so that the comparison
    shows the rule, not bfloat16's rounding).
    """
    if mode == "block":
        return zeropower_via_newtonschulz(grad, ns_steps=ns_steps, dtype=dtype)
    if mode != "whole":
        raise ValueError(f"Invalid mode value: {mode!r} (expected 'whole' or 'block')")
    pieces = [torch.empty_like(grad) for _ in range(world_size)]
    dist.all_gather(pieces, grad.contiguous())
    whole = torch.cat(pieces, dim)
    orthogonal = zeropower_via_newtonschulz(whole, ns_steps=ns_steps, dtype=dtype)
    return orthogonal.chunk(world_size, dim)[rank].to(grad.dtype)


def _loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((model(x) - y) ** 2).mean()


def _matrices(model: nn.Sequential) -> list[tuple[torch.Tensor, int]]:
    """The block's two weight matrices, with the dimension TP cuts each along."""
    return [(cast(nn.Linear, model[0]).weight, 0), (cast(nn.Linear, model[2]).weight, 1)]


def _step_muon(weights: list[tuple[torch.Tensor, int]], lr: float, mode: str,
               rank: int, world_size: int) -> list[torch.Tensor]:
    """A momentum-free Muon step (μ = 0) on each matrix, ``θ ← θ - η O``;
    returns the updates ``O``."""
    updates = []
    with torch.no_grad():
        for p, dim in weights:
            assert p.grad is not None
            if mode == "single":
                update = zeropower_via_newtonschulz(p.grad, dtype=torch.float64)
            else:
                update = muon_tp_update(p.grad, dim, mode, rank, world_size)
            p.add_(update.to(p.dtype), alpha=-lr)
            updates.append(update)
    return updates


def tp_run(rank: int, world_size: int, d_model: int = 16, d_hidden: int = 32,
           steps: int = 3, lr: float = 0.01, seed: int = 0) -> dict[str, Any]:
    """On each rank: the block's loss and gradient blocks, then ``steps`` steps
    of AdamW and of Muon (on the two matrices; ``"whole"`` and ``"block"``), with
    the bytes of the collectives each phase called."""
    x, y = batch(d_model)
    out: dict[str, Any] = {}
    model = tp_mlp(mlp(d_model, d_hidden, seed), rank, world_size)
    x_in = x.clone().requires_grad_()      # as if it came from earlier layers
    with count_collectives() as log:
        loss = _loss(model, x_in, y)
        out["forward_bytes"] = totals(log)
        loss.backward()
    out["loss"] = loss.detach()
    out["pass_bytes"] = totals(log)
    out["grads"] = [cast(torch.Tensor, p.grad).clone() for p in model.parameters()]
    out["input_grad"] = cast(torch.Tensor, x_in.grad).clone()
    # AdamW on the shards: element-wise, no communication in the step
    model = tp_mlp(mlp(d_model, d_hidden, seed), rank, world_size)
    opt = AdamW(model.parameters(), lr=lr, weight_decay=0.1)
    for _ in range(steps):
        opt.zero_grad()
        _loss(model, x, y).backward()
        with count_collectives() as log:
            opt.step()
        out["adamw_step_bytes"] = totals(log)
    out["adamw"] = [p.detach().clone() for p in model.parameters()]
    for mode in ("whole", "block"):
        model = tp_mlp(mlp(d_model, d_hidden, seed), rank, world_size)
        weights = _matrices(model)
        for step in range(steps):
            model.zero_grad()
            _loss(model, x, y).backward()
            with count_collectives() as log:
                updates = _step_muon(weights, lr, mode, rank, world_size)
            out[f"muon_{mode}_step_bytes"] = totals(log)
            if step == 0:
                out[f"muon_{mode}_update"] = updates
        out[f"muon_{mode}"] = [p.detach().clone() for p, _ in weights]
        out[f"muon_{mode}_loss"] = float(_loss(model, x, y).detach())
    return out


def single_run(d_model: int = 16, d_hidden: int = 32, steps: int = 3,
               lr: float = 0.01, seed: int = 0) -> dict[str, Any]:
    """What :func:`tp_run` computes, in one process on the whole matrices."""
    x, y = batch(d_model)
    out: dict[str, Any] = {}
    model = mlp(d_model, d_hidden, seed)
    x_in = x.clone().requires_grad_()
    loss = _loss(model, x_in, y)
    loss.backward()
    out["loss"] = loss.detach()
    out["grads"] = [cast(torch.Tensor, p.grad).clone() for p in model.parameters()]
    out["input_grad"] = cast(torch.Tensor, x_in.grad).clone()
    model = mlp(d_model, d_hidden, seed)
    opt = AdamW(model.parameters(), lr=lr, weight_decay=0.1)
    for _ in range(steps):
        opt.zero_grad()
        _loss(model, x, y).backward()
        opt.step()
    out["adamw"] = [p.detach().clone() for p in model.parameters()]
    model = mlp(d_model, d_hidden, seed)
    weights = _matrices(model)
    for step in range(steps):
        model.zero_grad()
        _loss(model, x, y).backward()
        updates = _step_muon(weights, lr, "single", 0, 1)
        if step == 0:
            out["muon_update"] = updates
    out["muon"] = [p.detach().clone() for p, _ in weights]
    out["muon_loss"] = float(_loss(model, x, y).detach())
    return out


# how each parameter of the block is cut: (dimension, or None for whole)
CUTS = (0, 0, 1, None)   # first weight rows, first bias, second weight columns, second bias


def assemble(ranks: list[list[torch.Tensor]]) -> list[torch.Tensor]:
    """The whole tensors from the ranks' blocks (a replicated one from rank 0)."""
    return [torch.cat([r[i] for r in ranks], dim) if dim is not None else ranks[0][i]
            for i, dim in enumerate(CUTS)]
