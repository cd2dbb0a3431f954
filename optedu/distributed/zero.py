r"""ZeRO stage 1 (Rajbhandari et al., SC 2020): shard the optimizer state.

Data parallelism keeps :math:`n` copies of everything. ZeRO-1 keeps one copy
of the optimizer *state*, split over the ranks: rank :math:`r` owns a shard
:math:`P_r` of the parameters, runs the optimizer on :math:`P_r` only (so
only :math:`P_r`'s ``exp_avg``, ``exp_avg_sq``, ... live there), and sends
the updated :math:`P_r` to the others. One step, on every rank:

1. :math:`g \leftarrow \frac{1}{n}\sum_r g_r` (all-reduce, as data
   parallelism does; or, with ``gradients="reduce"``, summed onto each
   parameter's owner only, which is all the owner needs: the paper's
   reduce-scatter);
2. the inner optimizer steps :math:`\theta_{P_r}` with :math:`g_{P_r}`;
3. every owner broadcasts its updated :math:`\theta_{P_r}`, so all ranks
   hold the whole new model.

The update is the single-process update: the shards do not interact (each
rule acts parameter by parameter; a rule that sums over several tensors, DoG
or SAM, say, is refused: :func:`check_per_tensor`). The same design as
``torch.distributed.optim.ZeroRedundancyOptimizer`` (torch 2.13), whose
constructor :class:`ZeroOptimizer` mirrors and whose partition rule
:func:`partition_sizes` reproduces.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
import torch.distributed as dist

from .data_parallel import average_gradients


def partition_sizes(group_sizes: Sequence[Sequence[int]],
                    world_size: int) -> list[list[int]]:
    """The owner rank of every parameter, by ZeroRedundancyOptimizer's rule.

    ``group_sizes[g][i]`` is the number of elements of parameter ``i`` of
    group ``g``. Group by group, the parameters go largest first (a stable
    sort: ties keep their order) to the rank with the fewest elements so far
    (the lowest rank on a tie); the counts carry over from group to group.
    Returns ``owners[g][i]``.

    >>> partition_sizes([[128, 256, 64], [16, 16, 4]], 2)
    [[1, 0, 1], [1, 1, 1]]
    """
    if world_size < 1:
        raise ValueError(f"Invalid world_size value: {world_size} "
                         "(expected an integer >= 1)")
    load = [0] * world_size
    owners = []
    for sizes in group_sizes:
        owner = [0] * len(sizes)
        for i in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
            rank = load.index(min(load))         # least loaded, lowest first
            owner[i] = rank
            load[rank] += sizes[i]
        owners.append(owner)
    return owners


def check_per_tensor(optimizer_class: type[torch.optim.Optimizer]) -> None:
    """Raise ``ValueError`` if ``optimizer_class``'s step reads sums over
    several tensors (``couples_tensors = True`` on an optedu class: DoG,
    D-Adaptation, Prodigy, SAM, L-BFGS; or torch's LBFGS): each rank holds
    only the whole tensors it owns and would read those sums in part. Rules
    that read one whole tensor at a time (LARS, LAMB, Adafactor, Muon) are
    exact here."""
    if not (getattr(optimizer_class, "couples_tensors", False)
            or optimizer_class is torch.optim.LBFGS):
        return
    name = optimizer_class.__name__
    raise ValueError(
        f"ZeroOptimizer cannot run {name}: its step reads sums over several "
        f"tensors (a group's or every parameter's), and each rank holds only "
        f"the whole tensors it owns. Use data parallelism, or a rule that "
        f"works tensor by tensor.")


class ZeroOptimizer(torch.optim.Optimizer):
    r"""ZeRO-1: wrap any optimizer class so that each rank keeps the state
    of its own shard of the parameters only.

    Args:
        params: tensors, or dicts defining parameter groups, the same on
            every rank (the whole model).
        optimizer_class: a ``torch.optim`` or optedu optimizer class; it is
            built on this rank's shard with ``**defaults``. A rule whose step
            sums over several tensors is refused (:func:`check_per_tensor`).
        gradients: how :meth:`step` averages the gradients over the ranks:
            ``"all_reduce"`` (default: every rank gets every mean, as data
            parallelism does), ``"reduce"`` (each parameter's mean reaches
            its owner only, half the traffic; the other ranks' ``grad`` of
            it is then not the mean) or ``"none"`` (they arrive averaged
            already: a model in ``DistributedDataParallel``).
        process_group: the group to shard over (default: the whole world).
        **defaults: the inner optimizer's arguments (``lr=...``).

    ``self.optim`` is the inner optimizer: its ``state`` holds this rank's
    shard of the state, and only that. ``self.owners[g][i]`` is the rank
    that owns parameter ``i`` of group ``g`` (:func:`partition_sizes`).
    ``param_groups`` lists every parameter; options changed there (by a
    learning-rate scheduler, say) reach the inner optimizer at the next
    step, as in torch's ZeroRedundancyOptimizer.

    Differences from ``torch.distributed.optim.ZeroRedundancyOptimizer``:
    the gradients are averaged here unless told otherwise (torch leaves that
    to DDP, which all-reduces them); one broadcast per parameter (torch's
    default too, without ``parameters_as_bucket_view``); no
    ``consolidate_state_dict``, no overlap with DDP, no ``add_param_group``
    after construction.
    """

    def __init__(self, params: Iterable[Any],
                 optimizer_class: type[torch.optim.Optimizer], *,
                 gradients: str = "all_reduce",
                 process_group: dist.ProcessGroup | None = None,
                 **defaults: Any) -> None:
        if not (isinstance(optimizer_class, type)
                and issubclass(optimizer_class, torch.optim.Optimizer)):
            raise TypeError("optimizer_class must be a torch.optim.Optimizer "
                            f"subclass, got {optimizer_class!r}")
        check_per_tensor(optimizer_class)
        if gradients not in ("all_reduce", "reduce", "none"):
            raise ValueError(f"Invalid gradients value: {gradients!r} "
                             "(expected 'all_reduce', 'reduce' or 'none')")
        super().__init__(params, defaults)
        self.process_group = process_group
        self.rank = dist.get_rank(process_group)
        self.world_size = dist.get_world_size(process_group)
        self.gradients = gradients
        self.owners = partition_sizes(
            [[p.numel() for p in g["params"]] for g in self.param_groups],
            self.world_size)
        self.optim = optimizer_class(self._shard_groups(), **defaults)
        for mine, local in zip(self.param_groups, self.optim.param_groups):
            _copy_options(local, mine)  # the inner class's defaults, shown

    def _shard_groups(self) -> list[dict[str, Any]]:
        """This rank's groups: every group, with only the owned parameters."""
        return [{**g, "params": [p for p, o in zip(g["params"], owner)
                                 if o == self.rank]}
                for g, owner in zip(self.param_groups, self.owners)]

    def shard(self, rank: int) -> list[torch.Tensor]:
        """The parameters ``rank`` owns, in group order."""
        return [p for g, owner in zip(self.param_groups, self.owners)
                for p, o in zip(g["params"], owner) if o == rank]

    @torch.no_grad()
    def step(  # type: ignore[override]
        self, closure: Callable[[], float] | None = None
    ) -> float | None:
        """Average the gradients, step this rank's shard, broadcast every
        shard from its owner."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        params = [p for g in self.param_groups for p in g["params"]]
        if self.gradients == "all_reduce":
            average_gradients(params, self.process_group)   # g = mean_r g_r
        elif self.gradients == "reduce":
            self.reduce_to_owners()
        for mine, local in zip(self.param_groups, self.optim.param_groups):
            _copy_options(mine, local)     # a scheduler's lr reaches the shard
        self.optim.step()                  # θ_{P_r} ← update(θ, g) on P_r
        self.broadcast_shards()
        return loss

    @torch.no_grad()
    def reduce_to_owners(self) -> None:
        r"""Sum every rank's gradient of a parameter onto its owner, then
        divide by :math:`n` there: :math:`g_{P_r} = \frac{1}{n}\sum_s
        g_{P_r, s}` on rank :math:`r` only."""
        for rank in range(self.world_size):
            dst = self._global(rank)
            for p in self.shard(rank):
                if p.grad is None:
                    continue
                dist.reduce(p.grad, dst=dst, group=self.process_group)
                if rank == self.rank:
                    p.grad.div_(self.world_size)

    def _global(self, rank: int) -> int:
        """The global rank of ``rank`` of the process group."""
        if self.process_group is None:
            return rank
        return dist.get_global_rank(self.process_group, rank)

    @torch.no_grad()
    def broadcast_shards(self) -> None:
        """Every rank sends the parameters it owns to all the others."""
        for rank in range(self.world_size):
            for p in self.shard(rank):
                dist.broadcast(p, src=self._global(rank),
                               group=self.process_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients of every parameter (not only the shard's)."""
        super().zero_grad(set_to_none)


def _copy_options(source: dict[str, Any], target: dict[str, Any]) -> None:
    """Copy a group's options (everything but ``params``) into another."""
    for key, value in source.items():
        if key != "params":
            target[key] = value


def zero_memory(stage: int, n_params: float, world_size: int, *,
                param_bytes: float = 2, grad_bytes: float = 2,
                state_bytes: float = 12) -> dict[str, float]:
    r"""Bytes each rank holds for the parameters, the gradients and the
    optimizer state, by ZeRO stage (Rajbhandari et al. 2020, Section 5):
    :math:`\Psi` = ``n_params`` parameters, :math:`N` = ``world_size`` ranks,
    per parameter ``param_bytes`` (:math:`P`), ``grad_bytes`` (:math:`G`)
    and ``state_bytes`` (:math:`K`; the defaults are the paper's mixed
    precision Adam: bf16/fp16 weights and gradients, fp32 master weights and
    moments, :math:`K = 12`).

    * stage 0 (data parallelism): :math:`(P + G + K)\Psi`;
    * stage 1 (state sharded): :math:`(P + G + K/N)\Psi`;
    * stage 2 (gradients too): :math:`(P + (G + K)/N)\Psi`;
    * stage 3 (parameters too): :math:`(P + G + K)\Psi/N`.

    An even split: a real partition of whole tensors is only as even as the
    tensors' sizes allow (:func:`partition_sizes`).

    >>> zero_memory(3, 1000, 4)
    {'parameters': 500.0, 'gradients': 500.0, 'optimizer state': 3000.0}
    """
    from optedu.optim._validation import check_integer
    check_integer("stage", stage, 0, 3)
    check_integer("world_size", world_size, 1)
    n = world_size
    return {"parameters": param_bytes * n_params / (n if stage == 3 else 1),
            "gradients": grad_bytes * n_params / (n if stage >= 2 else 1),
            "optimizer state": state_bytes * n_params / (n if stage else 1)}
