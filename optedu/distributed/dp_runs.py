r"""Data-parallel runs for the chapter on accumulation: DDP with
``no_sync`` and micro-batches, and DDP around a BatchNorm layer.

Both use :mod:`~optedu.distributed.runs`' problem (its MLP, float64, and
its fixed batch cut into equal slices per rank). :func:`dp_extras` runs on
every rank of one :func:`~optedu.distributed.launcher.launch`;
:func:`single_extras` is the same training in one process on the whole
batch, the reference.

* Accumulation: each rank cuts its slice into ``k`` micro-batches and runs the
  forward pass and ``backward()`` on each (loss divided by ``k``), inside
  ``DistributedDataParallel.no_sync()`` for all but the last one, or not (the
  forward pass decides whether the next ``backward()`` all-reduces).
  The all-reduces of every ``backward()`` are recorded (DDP's own C++
  reducer is invisible to :func:`~optedu.distributed.comm.count_collectives`,
  so torch's Python ``allreduce_hook`` is registered: same arithmetic).
* BatchNorm: the MLP with ``BatchNorm1d`` after its first layer; under DDP
  each rank normalises with its own slice's statistics. Whether torch's
  ``SyncBatchNorm`` runs here (CPU, gloo) is recorded too.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .comm import count_collectives, totals
from .runs import Job, make_batch, make_model

JOB = Job("ddp", torch.optim.SGD, {"lr": 0.1})


def float64_default(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``fn`` with float64 as torch's default dtype, then restore it."""
    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        previous = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_default_dtype(previous)
    return wrapped


def bn_model(job: Job) -> nn.Sequential:
    """:func:`~optedu.distributed.runs.make_model`'s MLP with a
    ``BatchNorm1d`` (float64) after the first linear layer."""
    model = make_model(job)
    first = cast(nn.Linear, model[0])
    layers = [first, nn.BatchNorm1d(first.out_features, dtype=torch.float64),
              *list(model)[1:]]
    return nn.Sequential(*layers)


def _train(model: nn.Module, micro: list[tuple[torch.Tensor, torch.Tensor]],
           steps: int, lr: float, no_sync: bool = False
           ) -> tuple[list[torch.Tensor], list[list[dict[str, int]]]]:
    """SGD for ``steps`` steps, accumulating over ``micro``; the final
    parameters and, per step, the collectives of each ``backward()``."""
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    log = []
    for _ in range(steps):
        opt.zero_grad()
        per_backward = []
        for j, (x, y) in enumerate(micro):
            quiet = no_sync and j < len(micro) - 1
            with count_collectives() as calls:
                if quiet:
                    with cast(DistributedDataParallel, model).no_sync():
                        (F.mse_loss(model(x), y) / len(micro)).backward()
                else:
                    (F.mse_loss(model(x), y) / len(micro)).backward()
            per_backward.append(totals(calls))
        opt.step()
        log.append(per_backward)
    params = [p.detach().clone() for p in model.parameters()]
    return params, log


def _ddp(model: nn.Module) -> nn.parallel.DistributedDataParallel:
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
    ddp = nn.parallel.DistributedDataParallel(model)
    ddp.register_comm_hook(None, default_hooks.allreduce_hook)
    return ddp


@float64_default
def dp_extras(rank: int, world_size: int, k: int = 2, steps: int = 3,
              job: Job = JOB) -> dict[str, Any]:
    """On each rank: DDP accumulation over ``k`` micro-batches with and
    without ``no_sync`` (plain MLP), and DDP with BatchNorm (one
    micro-batch); final parameters and collectives per ``backward()``."""
    x, y = make_batch(job)
    x, y = x.chunk(world_size)[rank], y.chunk(world_size)[rank]
    micro = list(zip(x.chunk(k), y.chunk(k)))
    lr = job.kwargs["lr"]
    out: dict[str, Any] = {}
    for name, no_sync in (("sync", False), ("no_sync", True)):
        params, log = _train(_ddp(make_model(job)), micro, steps, lr,
                             no_sync)
        out[name] = {"params": params, "comm": log}
    params, log = _train(_ddp(bn_model(job)), [(x, y)], steps, lr)
    out["batchnorm"] = {"params": params, "comm": log}
    sync_bn = nn.SyncBatchNorm.convert_sync_batchnorm(bn_model(job))
    try:                          # torch's fix for BatchNorm, on this CPU
        _train(_ddp(sync_bn), [(x, y)], 1, lr)
        out["sync_batchnorm"] = "ran"
    except ValueError as error:
        out["sync_batchnorm"] = f"ValueError: {error}"
    return out


@float64_default
def single_extras(steps: int = 3, job: Job = JOB) -> dict[str, Any]:
    """The references in this process, on the whole batch in one piece:
    the plain MLP and the BatchNorm MLP (final parameters)."""
    x, y = make_batch(job)
    lr = job.kwargs["lr"]
    plain, _ = _train(make_model(job), [(x, y)], steps, lr)
    bn, _ = _train(bn_model(job), [(x, y)], steps, lr)
    return {"plain": plain, "batchnorm": bn}
