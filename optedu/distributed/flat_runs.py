r"""The two designs of ZeRO-1 side by side: whole tensors against flat pieces.

A run trains a :class:`~optedu.distributed.runs.Job`'s MLP on the ranks of
one :func:`~optedu.distributed.launcher.launch` with either design:

* ``"tensors"``: :class:`~optedu.distributed.zero.ZeroOptimizer`, whole
  tensors to ranks (torch's ``ZeroRedundancyOptimizer``);
* ``"flat"``: :class:`~optedu.distributed.flat_zero.FlatZeroOptimizer`, each
  group's flat buffer in equal pieces (the ZeRO paper, DeepSpeed), optionally
  clipped by the global gradient norm;
* ``"fsdp"``: FSDP2 (``fully_shard`` on each linear layer and the model),
  optionally clipped by ``torch.nn.utils.clip_grad_norm_`` on its DTensor
  gradients.

:func:`compare_designs` runs a list of ``(design, job, max_norm)`` specs and
the single-process reference of each (clipped by
``optedu.clip_grad_norm_`` when ``max_norm`` is given).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import torch
import torch.nn.functional as F

if TYPE_CHECKING:                       # for the annotations only: no import cost
    from torch.distributed.tensor import DTensor

from optedu.training.clip import clip_grad_norm_
from optedu.precision.memory import state_bytes
from .comm import count_collectives, totals
from .flat_zero import FlatZeroOptimizer
from .launcher import launch
from .runs import (Job, default_dtype, groups, local_batch, local_state_bytes, make_batch,
                   make_model, relative_difference)
from .zero import ZeroOptimizer

Spec = tuple[str, Job, "float | None"]


def train_design(rank: int, world_size: int, design: str, job: Job,
                 max_norm: float | None = None) -> dict[str, Any]:
    """One spec on this rank: final parameters, this rank's state bytes,
    the collectives of the last step, the global norms (flat design with
    clipping)."""
    if design not in ("tensors", "flat", "fsdp"):
        raise ValueError(f"Invalid design value: {design!r} "
                         "(expected 'tensors', 'flat' or 'fsdp')")
    if design == "tensors" and max_norm is not None:
        raise ValueError("max_norm needs design='flat' or 'fsdp'")
    with default_dtype(job.dtype):
        model = make_model(job)
        x, y = local_batch(job, rank, world_size)
        if design == "fsdp":
            _fully_shard(model, world_size)
            opt: Any = job.optimizer(groups(model, job), **job.kwargs)
        elif design == "tensors":
            opt = ZeroOptimizer(groups(model, job), job.optimizer,
                                **job.kwargs)
        else:
            opt = FlatZeroOptimizer(groups(model, job), job.optimizer,
                                    max_norm=max_norm, **job.kwargs)
        norms = []
        for _ in range(job.steps):
            with count_collectives() as log:
                opt.zero_grad()
                F.mse_loss(model(x), y).backward()
                if design == "fsdp" and max_norm is not None:
                    total = torch.nn.utils.clip_grad_norm_(
                        model.parameters(), max_norm)   # a DTensor
                    norms.append(float(cast("DTensor", total).full_tensor()))
                opt.step()
            if getattr(opt, "last_norm", None) is not None:
                norms.append(float(opt.last_norm))
        params = [p.full_tensor() if hasattr(p, "full_tensor") else p
                  for p in model.parameters()]
        held = (local_state_bytes(opt) if design == "fsdp"
                else state_bytes(opt.optim))
        return {"params": [p.detach().clone() for p in params],
                "state_bytes": held, "comm": totals(log), "norms": norms}


def _fully_shard(model: torch.nn.Sequential, world_size: int) -> None:
    """FSDP2 on each linear layer and on the model, as the runs of
    :mod:`~optedu.distributed.runs` apply it."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    mesh = init_device_mesh("cpu", (world_size,))
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)


def train_designs(rank: int, world_size: int,
                  specs: Sequence[Spec]) -> list[dict[str, Any]]:
    """Every spec in turn on this rank."""
    return [train_design(rank, world_size, *spec) for spec in specs]


def train_single_clipped(job: Job, max_norm: float | None
                         ) -> dict[str, Any]:
    """The reference: whole model, whole batch, one process, clipped by
    ``optedu.clip_grad_norm_`` when ``max_norm`` is given."""
    with default_dtype(job.dtype):
        model = make_model(job)
        opt = job.optimizer(groups(model, job), **job.kwargs)
        x, y = make_batch(job)
        norms = []
        for _ in range(job.steps):
            opt.zero_grad()
            F.mse_loss(model(x), y).backward()
            if max_norm is not None:
                norms.append(float(clip_grad_norm_(model.parameters(),
                                                   max_norm)))
            opt.step()
        return {"params": [p.detach().clone() for p in model.parameters()],
                "state_bytes": state_bytes(opt), "norms": norms}


def compare_designs(specs: Sequence[Spec], world_size: int = 2,
                    timeout: float = 120.0) -> list[dict[str, Any]]:
    """Run ``specs`` on ``world_size`` processes (one launch) and each in
    this process; one row per spec: ``relative_difference`` of rank 0's
    parameters from the single process's, ``state_bytes`` (total per
    rank), ``norm_difference`` (largest gap between the sharded and the
    whole global norms, clipped runs), and the raw ``ranks`` and
    ``single``."""
    per_rank = launch(train_designs, world_size, (list(specs),),
                      timeout=timeout)
    rows = []
    for i, (design, job, max_norm) in enumerate(specs):
        ranks = [results[i] for results in per_rank]
        single = train_single_clipped(job, max_norm)
        gap = max((abs(a - b) for r in ranks
                   for a, b in zip(r["norms"], single["norms"],
                                   strict=True)), default=0.0)
        rows.append({
            "design": design, "optimizer": job.optimizer.__name__,
            "max_norm": max_norm,
            "relative_difference": relative_difference(ranks[0]["params"],
                                                       single["params"]),
            "state_bytes": [sum(r["state_bytes"].values()) for r in ranks],
            "single_state_bytes": sum(single["state_bytes"].values()),
            "norm_difference": gap, "ranks": ranks, "single": single})
    return rows
