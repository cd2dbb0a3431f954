r"""Muon on sharded matrices: each matrix orthogonalised once, by its owner.

Under FSDP2 every rank holds a block of rows of each weight matrix, and
Muon's Newton–Schulz iteration needs the whole matrix. ``optedu.Muon``
gathers every matrix on every rank (one all-gather per matrix) and runs the
iteration :math:`n` times over. :class:`OwnerMuon` gives each matrix an owner,
round-robin over the ranks in the order of the parameter groups, and

1. averages the momentum piece by piece (element-wise: no communication);
2. sends each matrix's pieces of :math:`\tilde B_t`, in the bfloat16 the
   iteration reads, to its owner only (``gather``);
3. lets each owner orthogonalise its whole matrices (the ranks work in
   parallel, each on about :math:`1/n` of them);
4. sends each owner's result back in pieces (``scatter``), and every rank
   steps its rows.

Per step, for matrices of :math:`\Psi` bytes in all (bfloat16) on :math:`n`
ranks, the pieces travel once each way: :math:`2\Psi(n-1)/n` bytes in all,
against :math:`n\cdot\Psi(n-1)/n` for the all-gather that leaves every matrix
on every rank; equal at :math:`n = 2`, :math:`2/n` of it beyond. Keller
Jordan's Muon for data parallelism shares the matrices out the same way
(``params[rank::world_size]``, results all-gathered); production versions
batch the pieces into one all-to-all each way, for the same bytes. Dion
(Ahn & Xu, 2025) goes further: a low-rank power iteration whose factors
are all that crosses the network.

:func:`train_rank` / :func:`compare` run the designs beside the
single-process Muon on the MLP of :mod:`optedu.distributed.runs`: Muon on
its weight matrices, AdamW on its biases.

Imports: :mod:`optedu.optim` and this folder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import torch
import torch.distributed as dist
import torch.nn.functional as F

if TYPE_CHECKING:                       # for the annotations only: no import cost
    from torch.distributed.tensor import DTensor

from optedu.optim.adam import AdamW
from optedu.optim._sharding import is_sharded, local, padded_piece, shard_layout, unpad
from optedu.optim.muon import Muon, adjusted_lr, zeropower_via_newtonschulz
from .comm import count_collectives, ring_bytes_sent, totals
from .launcher import launch
from .runs import (Job, default_dtype, local_batch, make_batch, make_model,
                   relative_difference)

DESIGNS = ("gathered", "owner", "torch", "adamw")


class OwnerMuon(Muon):
    r"""Muon whose Newton–Schulz iterations are shared out over the ranks:
    the owner of a matrix (round-robin, ``owners[i]`` for the ``i``-th
    matrix of the parameter groups) gathers it, orthogonalises it and
    scatters the result. Same arguments and state as :class:`Muon`, the
    same numbers as one process; on plain tensors it *is* :class:`Muon`.
    One difference: with bfloat16 parameters and ``nesterov=False`` the
    buffer keeps the momentum itself, not the normalised copy that torch's
    Muon leaves in it (only the owner sees the whole norm).

    ``peak_buffer_bytes``: the most bytes of whole matrices this rank held
    at once in a step (the gathered bfloat16 inputs of its matrices and
    their bfloat16 results), for the memory count.
    """

    def __init__(self, params: Any, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        flat = [p for group in self.param_groups for p in group["params"]]
        sharded = [p for p in flat if is_sharded(p)]
        n = sharded[0].device_mesh.size() if sharded else 1
        self.owners = [i % n for i in range(len(flat))]
        self._owner = {p: owner for p, owner in zip(flat, self.owners)}
        self.peak_buffer_bytes = 0

    def update_group(self, params: list[torch.Tensor],
                     grads: list[torch.Tensor], states: list[Any],
                     group: dict[str, Any]) -> None:
        if not any(is_sharded(p) for p in params):
            super().update_group(params, grads, states, group)
            return
        mu = group["momentum"]
        updates = []
        for grad, state in zip(grads, states):      # 1. element-wise
            if grad.ndim != 2:
                raise ValueError("Param gradient must be a 2D matrix")
            buffer = state["momentum_buffer"]
            buffer.lerp_(grad, 1 - mu)              # B_t = μB + (1-μ)G_t
            updates.append(grad.lerp(buffer, mu) if group["nesterov"]
                           else buffer)             # B̃_t
        wholes = {i: whole for i, (p, u) in enumerate(zip(params, updates))
                  if (whole := self._to_owner(u, self._owner[p]))
                  is not None}                      # 2. to the owners
        ortho = {i: zeropower_via_newtonschulz(     # 3. on the owners
            whole, group["ns_coefficients"], group["ns_steps"], group["eps"])
            for i, whole in wholes.items()}
        held = sum(2 * w.numel() + 2 * o.numel()
                   for w, o in zip(wholes.values(), ortho.values()))
        self.peak_buffer_bytes = max(self.peak_buffer_bytes, held)
        lr, decay = group["lr"], group["weight_decay"]
        for i, (param, update) in enumerate(zip(params, updates)):
            rows = self._from_owner(ortho.get(i), update,
                                    self._owner[param])    # 4. back
            step_size = adjusted_lr(lr, group["adjust_lr_fn"],
                                    param.shape)           # η', global shape
            param.mul_(1 - lr * decay)                     # θ ← (1 - ηλ) θ
            local(param).add_(rows, alpha=-step_size)      # θ - η' O_t

    @staticmethod
    def _to_owner(t: torch.Tensor, owner: int) -> torch.Tensor | None:
        """The whole of the sharded matrix ``t`` in bfloat16 on rank
        ``owner`` (one ``gather``); ``None`` on the other ranks."""
        _, _, rank, pg = shard_layout(t)
        piece = padded_piece(t, torch.bfloat16)
        bucket = ([torch.empty_like(piece) for _ in range(
            dist.get_world_size(pg))] if rank == owner else None)
        dist.gather(piece, bucket, group_dst=owner, group=pg)
        return unpad(torch.cat(bucket), t) if bucket is not None else None

    @staticmethod
    def _from_owner(whole: torch.Tensor | None, like: torch.Tensor,
                    owner: int) -> torch.Tensor:
        """This rank's rows of the owner's ``whole`` (one ``scatter``), cut
        as ``like`` is cut."""
        dim, rows, rank, pg = shard_layout(like)
        n = dist.get_world_size(pg)
        out = padded_piece(like, torch.bfloat16)
        pieces = None
        if rank == owner:
            padded = out.new_zeros((n * rows, *out.shape[1:]))
            moved = cast(torch.Tensor, whole).movedim(dim, 0)   # the owner has it
            padded[:moved.size(0)] = moved
            pieces = list(padded.chunk(n))
        dist.scatter(out, pieces, group_src=owner, group=pg)
        return out[:local(like).shape[dim]].movedim(0, dim)


# --- the runs ------------------------------------------------------------

@dataclass(frozen=True)
class MuonRun:
    """One run: ``design`` (``"gathered"``: optedu's Muon; ``"owner"``:
    :class:`OwnerMuon`; ``"torch"``: ``torch.optim.Muon``, which steps a
    DTensor with DTensor's own operations; ``"adamw"``: AdamW on every
    parameter, the element-wise baseline), the MLP's widths, steps, seed and dtype; Muon
    at ``lr`` on the weights, AdamW at ``adamw_lr`` on the biases."""

    design: str
    widths: tuple[int, ...] = (8, 32, 32, 32, 4)
    steps: int = 5
    seed: int = 0
    dtype: torch.dtype = torch.float32
    lr: float = 0.02
    adamw_lr: float = 0.01

    def __post_init__(self) -> None:
        if self.design not in DESIGNS:
            raise ValueError(f"Invalid design value: {self.design!r} "
                             f"(expected one of {DESIGNS})")

    def job(self) -> Job:
        """The :class:`~optedu.distributed.runs.Job` that fixes the model
        and the batch."""
        return Job("fsdp", Muon, widths=self.widths, steps=self.steps,
                   seed=self.seed, dtype=self.dtype)


def optimizers(model: torch.nn.Module, run: MuonRun,
               sharded: bool) -> list[torch.optim.Optimizer]:
    """Muon (the design's class; optedu's in one process, except
    ``"torch"``) on the 2-D weights, AdamW on the biases; or AdamW on
    everything for ``"adamw"``."""
    weights = [p for p in model.parameters() if p.ndim == 2]
    biases = [p for p in model.parameters() if p.ndim != 2]
    if run.design == "adamw":
        return [AdamW(weights + biases, lr=run.adamw_lr)]
    cls = {"gathered": Muon, "owner": OwnerMuon if sharded else Muon,
           "torch": torch.optim.Muon}[run.design]
    return [cls(weights, lr=run.lr), AdamW(biases, lr=run.adamw_lr)]


def _train(model: torch.nn.Module, opts: list[torch.optim.Optimizer],
           x: torch.Tensor, y: torch.Tensor, steps: int, split: int = 1
           ) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """Train; return the collectives of the last step's optimizer step and
    those of its forward and backward passes. ``split``: the gradient is
    the mean of the gradients of that many equal slices of the batch."""
    step_log: list[tuple[str, int]] = []
    pass_log: list[tuple[str, int]] = []
    for _ in range(steps):
        with count_collectives() as pass_log:  # noqa: F811 (the last step's)
            for opt in opts:
                opt.zero_grad()
            for xs, ys in zip(x.chunk(split), y.chunk(split)):
                (F.mse_loss(model(xs), ys) / split).backward()
        with count_collectives() as step_log:  # noqa: F811 (the last step's)
            for opt in opts:
                opt.step()
    return step_log, pass_log


def whole_buffer_bytes(shapes: list[tuple[int, ...]]) -> int:
    """The gathered design's buffers at their largest: one whole matrix at a
    time, its bfloat16 input and its bfloat16 result (2 + 2 bytes an
    element)."""
    return max(4 * a * b for a, b in shapes)


def weight_state_bytes(opts: list[torch.optim.Optimizer],
                       model: torch.nn.Module) -> int:
    """Optimizer-state bytes of the weight matrices that this rank holds
    (a DTensor's local piece only)."""
    return sum(local(t).numel() * local(t).element_size()
               for o in opts for p in model.parameters() if p.ndim == 2
               for t in o.state.get(p, {}).values()
               if isinstance(t, torch.Tensor))


def train_rank(rank: int, world_size: int, run: MuonRun) -> dict[str, Any]:
    """``run`` under FSDP2 on this rank: the final parameters (whole), the
    bytes per collective of the last optimizer step (``step_comm``) and of
    its forward and backward (``pass_comm``), this rank's state bytes and
    the bytes of whole matrices it held at once (``buffer_bytes``)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    with default_dtype(run.dtype):
        job = run.job()
        model = make_model(job)
        mesh = init_device_mesh("cpu", (world_size,))
        for layer in model:
            if isinstance(layer, torch.nn.Linear):
                fully_shard(layer, mesh=mesh)
        fully_shard(model, mesh=mesh)
        opts = optimizers(model, run, sharded=True)
        x, y = local_batch(job, rank, world_size)
        start = time.perf_counter()
        step_log, pass_log = _train(model, opts, x, y, run.steps)
        seconds = time.perf_counter() - start
        shapes = [tuple(p.shape) for p in model.parameters() if p.ndim == 2]
        buffers = (getattr(opts[0], "peak_buffer_bytes", 0)
                   if run.design == "owner"
                   else whole_buffer_bytes(shapes)
                   if run.design == "gathered" else 0)
        params = [cast("DTensor", p).full_tensor().detach().clone()
                  for p in model.parameters()]
    return {"params": params, "step_comm": totals(step_log),
            "pass_comm": totals(pass_log),
            "state_bytes": weight_state_bytes(opts, model),
            "buffer_bytes": buffers, "seconds": seconds,
            "owners": getattr(opts[0], "owners", None)}


def train_single(run: MuonRun, split: int = 1) -> dict[str, Any]:
    """The reference: the same optimizers on the whole model and batch in
    one process; with ``split`` = :math:`n` the gradient is averaged over
    :math:`n` slices of the batch, as :math:`n` ranks average theirs (a
    division by a power of two is exact, so for 2 or 4 ranks the same
    numbers as FSDP2's averaged gradient, whatever the order)."""
    with default_dtype(run.dtype):
        job = run.job()
        model = make_model(job)
        opts = optimizers(model, run, sharded=False)
        x, y = make_batch(job)
        _train(model, opts, x, y, run.steps, split)
        return {"params": [p.detach().clone() for p in model.parameters()],
                "state_bytes": weight_state_bytes(opts, model)}


def train_runs(rank: int, world_size: int,
               runs: list[MuonRun]) -> list[dict[str, Any]]:
    """Every run in turn on this rank (one launch)."""
    return [train_rank(rank, world_size, run) for run in runs]


def compare(runs: list[MuonRun], world_size: int = 2,
            timeout: float = 120.0) -> list[dict[str, Any]]:
    """Each run on ``world_size`` processes (one :func:`launch`) and in
    this process; one row per run: ``design``,
    ``relative_difference`` from one process (rank 0's parameters),
    ``split_difference`` from one process whose gradient averages the
    ranks' slices (:func:`train_single` with ``split``), ``floor``: the
    difference of those two single-process runs (the gradient's rounding
    alone, through the bfloat16 iteration),
    ``ranks_identical``, ``step_comm`` and ``pass_comm`` (rank 0, bytes
    per op), ``step_sent`` and ``pass_sent`` (bytes a rank sends on
    average, ring model), ``state_bytes`` and ``buffer_bytes`` per rank,
    ``identical_to`` (the designs whose parameters equal this one's bit for
    bit), and the raw ``ranks``."""
    per_rank = launch(train_runs, world_size, (list(runs),), timeout=timeout)
    rows = []
    for i, run in enumerate(runs):
        ranks = [results[i] for results in per_rank]
        single = train_single(run)
        split = train_single(run, world_size)["params"]
        first = ranks[0]["params"]

        def sent(log: dict[str, int]) -> float:
            return sum(ring_bytes_sent(op, b, world_size)
                       for op, b in log.items())

        rows.append({
            "design": run.design,
            "relative_difference": relative_difference(first,
                                                       single["params"]),
            "split_difference": relative_difference(first, split),
            "floor": relative_difference(split, single["params"]),
            "ranks_identical": all(
                all(torch.equal(p, q) for p, q in zip(first, r["params"]))
                for r in ranks[1:]),
            "step_comm": ranks[0]["step_comm"],
            "pass_comm": ranks[0]["pass_comm"],
            "step_sent": sent(ranks[0]["step_comm"]),
            "pass_sent": sent(ranks[0]["pass_comm"]),
            "state_bytes": [r["state_bytes"] for r in ranks],
            "single_state_bytes": single["state_bytes"],
            "buffer_bytes": [r["buffer_bytes"] for r in ranks],
            "owners": ranks[0]["owners"], "ranks": ranks})
    return rows


# --- DTensor's own operations, for comparison ---------------------------

def dtensor_newton_schulz(rank: int, world_size: int,
                          shapes: tuple[tuple[int, int], ...] = ((64, 16),),
                          seed: int = 0) -> list[dict[str, Any]]:
    """For each shape, the iteration run on a row-sharded DTensor with
    DTensor's own operations (what ``optedu.Muon`` did before it gathered):
    its relative difference from the whole matrix's in float64
    (``optedu.optim.variants.muon.newton_schulz``) and in bfloat16
    (:func:`zeropower_via_newtonschulz`), and the collectives DTensor
    issued (counted by torch's ``CommDebugMode``: they bypass
    :func:`count_collectives`)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor
    from torch.distributed.tensor.debug import CommDebugMode

    from optedu.optim.variants.muon import newton_schulz
    mesh = init_device_mesh("cpu", (world_size,))
    gen = torch.Generator().manual_seed(seed)
    results = []
    for shape in shapes:
        whole = torch.randn(shape, generator=gen, dtype=torch.float64)
        rows = distribute_tensor(whole, mesh, [Shard(0)])
        out: dict[str, Any] = {"shape": tuple(shape)}
        for name, fn in (("float64", lambda t: newton_schulz(
                t, dtype=torch.float64)),
                ("bfloat16", zeropower_via_newtonschulz)):
            with CommDebugMode() as mode:
                sharded = fn(rows)
            ref = fn(whole).double()
            got = cast("DTensor", sharded).full_tensor().double()
            out[name] = float((got - ref).abs().max() / ref.abs().max())
            out[f"{name}_collectives"] = {
                str(op).split(".")[-1]: n
                for op, n in mode.get_comm_counts().items()}
        results.append(out)
    return results
