r"""Training runs a chapter launches on 2 processes, and the same run on one.

One small problem serves every method: an MLP (float64 unless the job says
otherwise) fitted by mean
squared error to a fixed random batch, the batch cut into ``world_size``
equal contiguous slices, rank :math:`r` taking slice :math:`r`. Parameters
come in two groups (weights; biases with their own options), so the sharded
optimizers must keep groups apart. A :class:`Job` names a method and an
optimizer; :func:`train_single` runs it in this process on the whole batch,
:func:`train_jobs` runs a list of jobs on every rank of a
:func:`~optedu.distributed.launcher.launch`:

* ``"allreduce"``: the whole model on each rank, gradients averaged by
  :func:`~optedu.distributed.data_parallel.average_gradients`;
* ``"ddp"``: ``torch.nn.parallel.DistributedDataParallel``; ``"ddp_hook"``
  the same with torch's Python ``allreduce_hook`` (so its all-reduces can be
  counted);
* ``"zero"``: :class:`~optedu.distributed.zero.ZeroOptimizer`;
  ``"zero_reduce"`` the same with ``gradients="reduce"``;
* ``"torch_zero"``: ``torch.distributed.optim.ZeroRedundancyOptimizer``
  behind DDP;
* ``"fsdp"``: FSDP2, ``torch.distributed.fsdp.fully_shard`` on each linear
  layer and on the model; the optimizer steps the DTensor shards.

Each run returns a :class:`dict`: the final parameters (whole tensors),
the loss before every step (the mean over the whole batch), this rank's
optimizer-state bytes by key, the bytes of the parameters and of the
gradients this rank holds after the last step (its local pieces: a shard
under FSDP2), the collectives of the last step
(``(op, bytes)``, see :mod:`optedu.distributed.comm`) and the seconds the
training loop took, and for the ZeRO methods who owns each parameter.
The last section holds tiny functions that fail on
purpose, to show what :func:`launch` does then.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from optedu.precision.memory import state_bytes
from .comm import count_collectives, totals
from .data_parallel import average_gradients
from .launcher import launch
from .zero import ZeroOptimizer

METHODS = ("allreduce", "ddp", "ddp_hook", "zero", "zero_reduce",
           "torch_zero", "fsdp")


@dataclass(frozen=True)
class Job:
    """One training run: ``method`` (one of :data:`METHODS`, ignored by
    :func:`train_single`), the optimizer class and its arguments, the
    options of the second (bias) group, the MLP's layer widths, the batch
    size, the number of steps, the seed and the dtype (of the model, the
    batch and the optimizers' ``step`` counters)."""

    method: str
    optimizer: type[torch.optim.Optimizer]
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    bias_group: Mapping[str, Any] = field(default_factory=dict)
    widths: tuple[int, ...] = (8, 16, 16, 4)
    batch: int = 32
    steps: int = 5
    seed: int = 0
    dtype: torch.dtype = torch.float64

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"Invalid method value: {self.method!r} "
                             f"(expected one of {METHODS})")


def make_model(job: Job) -> nn.Sequential:
    """The MLP (``job.dtype``, tanh between linear layers), seeded: the
    same weights on every rank."""
    torch.manual_seed(job.seed)
    layers: list[nn.Module] = []
    for d_in, d_out in zip(job.widths[:-1], job.widths[1:]):
        layers += [nn.Linear(d_in, d_out, dtype=job.dtype), nn.Tanh()]
    return nn.Sequential(*layers[:-1])


def make_batch(job: Job) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole batch ``(x, y)``, seeded apart from the model."""
    gen = torch.Generator().manual_seed(job.seed + 1)
    x = torch.randn(job.batch, job.widths[0], generator=gen,
                    dtype=job.dtype)
    y = torch.randn(job.batch, job.widths[-1], generator=gen,
                    dtype=job.dtype)
    return x, y


def local_batch(job: Job, rank: int, world_size: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank ``rank``'s contiguous slice of the batch (equal slices)."""
    if job.batch % world_size:
        raise ValueError(f"Invalid batch value: {job.batch} (expected a "
                         f"multiple of world_size {world_size})")
    x, y = make_batch(job)
    return x.chunk(world_size)[rank], y.chunk(world_size)[rank]


def groups(model: nn.Module, job: Job) -> list[dict[str, Any]]:
    """Two parameter groups: the weights, then the biases with
    ``job.bias_group``'s options."""
    named = list(model.named_parameters())
    return [{"params": [p for n, p in named if not n.endswith("bias")]},
            {"params": [p for n, p in named if n.endswith("bias")],
             **job.bias_group}]


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """``dtype`` as torch's default dtype inside the block (optimizers create
    their ``step`` counters in it: 8 bytes each in float64, on every side
    alike)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def train_single(job: Job) -> dict[str, Any]:
    """The reference: the whole model and the whole batch in one process."""
    with default_dtype(job.dtype):
        return _train_single(job)


def _train_single(job: Job) -> dict[str, Any]:
    model = make_model(job)
    opt = job.optimizer(groups(model, job), **job.kwargs)
    x, y = make_batch(job)
    losses = []
    start = time.perf_counter()
    for _ in range(job.steps):
        opt.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return {"params": [p.detach().clone() for p in model.parameters()],
            "losses": losses, "state_bytes": state_bytes(opt),
            **local_bytes(model), "comm": [],
            "seconds": time.perf_counter() - start, "owners": None}


def local_bytes(model: nn.Module) -> dict[str, int]:
    """``param_bytes`` and ``grad_bytes``: what this process holds of the
    parameters and of their gradients (a DTensor's local shard only)."""
    def size(t: torch.Tensor | None) -> int:
        if t is None:
            return 0
        local = getattr(t, "_local_tensor", t)
        return local.numel() * local.element_size()
    params = list(model.parameters())
    return {"param_bytes": sum(size(p) for p in params),
            "grad_bytes": sum(size(p.grad) for p in params)}


def local_state_bytes(optimizer: torch.optim.Optimizer) -> dict[str, int]:
    """:func:`optedu.precision.memory.state_bytes` counting only this rank's piece of
    a DTensor (FSDP2's sharded state): ``DTensor.numel()`` is the global
    size."""
    total: dict[str, int] = {}
    for state in optimizer.state.values():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                local = getattr(value, "_local_tensor", value)
                total[key] = (total.get(key, 0)
                              + local.numel() * local.element_size())
    return dict(sorted(total.items()))


def _build(job: Job, rank: int, world_size: int
           ) -> tuple[nn.Module, torch.optim.Optimizer, Any]:
    """Model (wrapped as the method wants), optimizer, and the optimizer
    whose state is this rank's (for the byte count)."""
    mlp = make_model(job)
    model: nn.Module = mlp
    if job.method == "fsdp":
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard
        mesh = init_device_mesh("cpu", (world_size,))
        for layer in mlp:
            if isinstance(layer, nn.Linear):
                fully_shard(layer, mesh=mesh)
        fully_shard(model, mesh=mesh)
    param_groups = groups(model, job)
    if job.method in ("ddp", "ddp_hook", "torch_zero"):
        ddp = nn.parallel.DistributedDataParallel(model)
        if job.method == "ddp_hook":
            from torch.distributed.algorithms.ddp_comm_hooks import \
                default_hooks
            ddp.register_comm_hook(None, default_hooks.allreduce_hook)
        model = ddp
    if job.method in ("zero", "zero_reduce"):
        how = "reduce" if job.method == "zero_reduce" else "all_reduce"
        opt: Any = ZeroOptimizer(param_groups, job.optimizer, gradients=how,
                                 **job.kwargs)
        return model, opt, opt.optim
    if job.method == "torch_zero":
        from torch.distributed.optim import ZeroRedundancyOptimizer
        opt = ZeroRedundancyOptimizer(param_groups, job.optimizer,
                                      **job.kwargs)
        return model, opt, opt.optim
    opt = job.optimizer(param_groups, **job.kwargs)
    return model, opt, opt


def train_rank(rank: int, world_size: int, job: Job) -> dict[str, Any]:
    """One job on this rank: the rank's slice of the batch, the method's
    way of combining gradients; result as :func:`train_single`'s."""
    with default_dtype(job.dtype):
        return _train_rank(rank, world_size, job)


def _train_rank(rank: int, world_size: int, job: Job) -> dict[str, Any]:
    model, opt, local = _build(job, rank, world_size)
    x, y = local_batch(job, rank, world_size)
    losses, log = [], []
    start = time.perf_counter()
    for _ in range(job.steps):
        with count_collectives() as log:  # noqa: F811 (the last step's)
            opt.zero_grad()
            loss = F.mse_loss(model(x), y)
            loss.backward()
            if job.method == "allreduce":
                average_gradients(model.parameters())
            opt.step()
        mean = loss.detach().clone()
        dist.all_reduce(mean)                  # the whole batch's mean loss
        losses.append(mean.item() / world_size)
    seconds = time.perf_counter() - start
    held = local_bytes(model)
    params = [p.full_tensor() if hasattr(p, "full_tensor") else p
              for p in model.parameters()]
    counted = local_state_bytes if job.method == "fsdp" else state_bytes
    return {"params": [p.detach().clone() for p in params],
            "losses": losses, "state_bytes": counted(local), **held,
            "comm": log, "seconds": seconds, "owners": owners(opt)}


def owners(opt: torch.optim.Optimizer) -> list[list[int]] | None:
    """``owners[g][i]``, the rank that owns parameter ``i`` of group ``g``,
    for :class:`ZeroOptimizer` and for torch's ZeroRedundancyOptimizer
    (read from its partition); ``None`` for an optimizer that does not
    shard."""
    if isinstance(opt, ZeroOptimizer):
        return opt.owners
    from torch.distributed.optim import ZeroRedundancyOptimizer
    if not isinstance(opt, ZeroRedundancyOptimizer):
        return None
    rank_of = {p: rank for rank, rank_groups
               # a method torch's stub file leaves out
               in enumerate(opt._partition_parameters())  # type: ignore[attr-defined]
               for g in rank_groups for p in g["params"]}
    return [[rank_of[p] for p in g["params"]] for g in opt.param_groups]


def train_jobs(rank: int, world_size: int,
               jobs: Sequence[Job]) -> list[dict[str, Any]]:
    """Every job in turn on this rank (one launch, one process group)."""
    return [train_rank(rank, world_size, job) for job in jobs]


def compare(jobs: Sequence[Job], world_size: int = 2,
            timeout: float = 120.0) -> list[dict[str, Any]]:
    """Run ``jobs`` on ``world_size`` processes (one :func:`launch`) and
    each job in this process on the whole batch; one row per job.

    A row holds the job's ``method`` and ``optimizer`` (class name);
    ``relative_difference`` of rank 0's final parameters from the single
    process's (:func:`relative_difference`); ``ranks_identical`` (every
    rank ends with the same parameters, bit for bit); ``state_bytes`` (the
    total on each rank) beside ``single_state_bytes``; ``comm``, the bytes
    per collective of rank 0's last step; ``launch_seconds`` (the whole
    launch, the same for every row); and the raw results, ``ranks`` (one
    dict per rank, as :func:`train_rank` returns) and ``single``
    (:func:`train_single`'s).
    """
    start = time.perf_counter()
    per_rank = launch(train_jobs, world_size, (list(jobs),), timeout=timeout)
    seconds = time.perf_counter() - start
    rows = []
    for i, job in enumerate(jobs):
        ranks = [results[i] for results in per_rank]
        single = train_single(job)
        first = ranks[0]["params"]
        rows.append({
            "method": job.method, "optimizer": job.optimizer.__name__,
            "relative_difference": relative_difference(first,
                                                       single["params"]),
            "ranks_identical": all(
                all(torch.equal(p, q) for p, q in zip(first, r["params"]))
                for r in ranks[1:]),
            "state_bytes": [sum(r["state_bytes"].values()) for r in ranks],
            "single_state_bytes": sum(single["state_bytes"].values()),
            "comm": totals(ranks[0]["comm"]), "launch_seconds": seconds,
            "ranks": ranks, "single": single})
    return rows


def relative_difference(a: Sequence[torch.Tensor],
                        b: Sequence[torch.Tensor]) -> float:
    r"""``max |a - b| / max |b|`` over lists of tensors."""
    with torch.no_grad():
        num = max(float((u - v).abs().max())
                  for u, v in zip(a, b, strict=True))
        den = max(float(v.abs().max()) for v in b)
    return num / den


# --- functions that fail on purpose (what launch does then) ---------------

def all_reduce_rank(rank: int, world_size: int) -> float:
    """Sum of the ranks' numbers (0 + 1 + ...): a collective that works."""
    t = torch.tensor(float(rank))
    dist.all_reduce(t)
    return t.item()


def raise_on(rank: int, world_size: int, bad_rank: int) -> int:
    """``bad_rank`` raises ``ValueError``; the others wait in a collective."""
    if rank == bad_rank:
        raise ValueError(f"a bad value on rank {rank}")
    dist.barrier()
    return rank


def hang_on(rank: int, world_size: int, bad_rank: int,
            seconds: float) -> int:
    """``bad_rank`` sleeps ``seconds`` (a hang); the others return."""
    if rank == bad_rank:
        time.sleep(seconds)
    return rank


def exit_on(rank: int, world_size: int, bad_rank: int, code: int) -> int:
    """``bad_rank`` dies at once with exit code ``code`` (no exception)."""
    if rank == bad_rank:
        os._exit(code)
    dist.barrier()
    return rank
