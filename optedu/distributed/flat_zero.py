r"""ZeRO-1 as the paper and DeepSpeed build it: one flat buffer per group.

:class:`~optedu.distributed.zero.ZeroOptimizer` (and torch's
``ZeroRedundancyOptimizer``) hand each rank *whole tensors*. The ZeRO paper
(Rajbhandari et al., SC 2020) splits the optimizer state into :math:`N`
equal partitions, and DeepSpeed's ``stage_1_and_2.py`` builds them so: it
concatenates the parameters of each group into one flat vector, pads it to a
multiple of the :math:`N` ranks, and cuts it into :math:`N` equal pieces,
through tensors. Rank :math:`r` keeps piece :math:`r` of every group and the
optimizer state of that piece only. One step, on every rank:

1. :math:`g^{(r)} \leftarrow` piece :math:`r` of
   :math:`\frac{1}{N}\sum_s g_s` (a reduce-scatter of the flat gradient);
2. optionally, clip by the global norm
   :math:`\|g\| = \bigl(\sum_r \|g^{(r)}\|^2\bigr)^{1/2}`, one all-reduce of
   a scalar (:func:`clip_grad_norm_sharded_`);
3. the inner optimizer steps the flat piece :math:`\theta^{(r)}`;
4. an all-gather of the pieces rebuilds every parameter on every rank.

The split is even to within the padding, whatever the tensors' sizes. The
price: the inner optimizer sees one flat vector per group, so a rule that
reads a quantity of a whole tensor (LARS's and LAMB's trust ratio, Muon's
orthogonalisation, Adafactor's row and column means) would read it from the
wrong set of numbers: a piece of one tensor, or pieces of several together.
:class:`FlatZeroOptimizer` therefore takes only rules that act element by
element (:func:`check_element_wise`: an optedu class with
``element_wise = True``, or one of torch's element-wise classes,
:data:`TORCH_ELEMENT_WISE`) and refuses the others when it is built. Those
run whole tensors per rank (:class:`~optedu.distributed.zero.ZeroOptimizer`)
or, under FSDP2, reduce over the mesh (:mod:`optedu.optim._sharding`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

import torch
import torch.distributed as dist

from .zero import _copy_options

if TYPE_CHECKING:
    from optedu.optim.optimizer import Optimizer

EPS = 1e-6  # added to the norm before dividing, as torch's clip_grad_norm_

# torch.optim's rules that act element by element (their state and update of
# each element read that element only, and per-step numbers)
TORCH_ELEMENT_WISE = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW,
                      torch.optim.Adagrad, torch.optim.RMSprop,
                      torch.optim.Adadelta, torch.optim.Adamax,
                      torch.optim.NAdam, torch.optim.RAdam, torch.optim.ASGD,
                      torch.optim.Rprop)


def check_element_wise(optimizer_class: type[torch.optim.Optimizer],
                       **defaults: Any) -> None:
    """Raise ``ValueError`` unless ``optimizer_class`` acts element by
    element (``element_wise = True`` on an optedu class, or a class in
    :data:`TORCH_ELEMENT_WISE`): the rules a flat piece cannot break. An
    option can take that away (LaProp's ``cautious=True`` counts over the
    whole tensor): an optedu rule is built once with ``defaults`` on a
    scalar to read its instance's ``element_wise``."""
    name = getattr(optimizer_class, "__name__", repr(optimizer_class))
    if optimizer_class in TORCH_ELEMENT_WISE:
        return
    if getattr(optimizer_class, "element_wise", False):
        probe = cast("Optimizer", optimizer_class(          # an optedu rule
            [torch.zeros(1, requires_grad=True)], **defaults))
        if probe.element_wise:
            return
        options = ", ".join(f"{k}={v!r}" for k, v in defaults.items())
        raise ValueError(
            f"FlatZeroOptimizer cannot run {name} with {options}: its pieces are cut from "
            f"one flat vector per group, and these options make {name} read whole tensors "
            f"({probe.refuses_shards}). Use ZeroOptimizer (whole tensors per rank).")
    raise ValueError(
        f"FlatZeroOptimizer cannot run {name}: its pieces are cut from one "
        f"flat vector per group, through and across tensors, and {name} "
        f"does not act element by element (it reads whole tensors or sums "
        f"over parameters: a norm, a factorisation, a quantisation block). "
        f"Use ZeroOptimizer (whole tensors per rank) or an element-wise rule.")


def flat_partition(numels: Sequence[int], world_size: int
                   ) -> list[list[tuple[int, int, int]]]:
    """Who holds what of one group cut as DeepSpeed cuts it.

    The tensors (``numels[i]`` elements each, in order) are concatenated,
    padded to a multiple of ``world_size`` and cut into equal pieces.
    Returns, for every rank, the ``(tensor index, start, stop)`` ranges of
    the flattened tensors that fall in its piece.

    >>> flat_partition([6, 2], 2)
    [[(0, 0, 4)], [(0, 4, 6), (1, 0, 2)]]
    """
    if world_size < 1:
        raise ValueError(f"Invalid world_size value: {world_size} "
                         "(expected an integer >= 1)")
    piece = math.ceil(sum(numels) / world_size)
    ranges: list[list[tuple[int, int, int]]] = [[] for _ in range(world_size)]
    offset = 0
    for i, n in enumerate(numels):
        start = offset
        while start < offset + n:               # cut at piece boundaries
            rank = start // piece
            stop = min(offset + n, (rank + 1) * piece)
            ranges[rank].append((i, start - offset, stop - offset))
            start = stop
        offset += n
    return ranges


@torch.no_grad()
def clip_grad_norm_sharded_(grads: Iterable[torch.Tensor | None], max_norm: float,
                            process_group: dist.ProcessGroup | None = None
                            ) -> torch.Tensor:
    r"""Clip gradients that are split over the ranks by their *global* norm.

    Each rank passes its pieces. :math:`\|g\|^2` is the sum over ranks of
    the local sums of squares: one all-reduce of one number. Every piece is
    then scaled by :math:`\min(\tau / (\|g\| + 10^{-6}), 1)`, the factor
    ``torch.nn.utils.clip_grad_norm_`` would apply to the whole gradient.
    Returns :math:`\|g\|`. ``None`` entries (no gradient) are skipped, as
    ``clip_grad_norm_`` skips a parameter without one.
    """
    present = [g for g in grads if g is not None]
    local = sum((g.double().square().sum() for g in present),
                torch.zeros((), dtype=torch.float64))
    dist.all_reduce(local, group=process_group)        # Σ_r ‖g^(r)‖²
    total = local.sqrt()
    coef = torch.clamp(max_norm / (total + EPS), max=1.0)
    for g in present:
        g.mul_(coef.to(g.dtype))
    return total


class FlatZeroOptimizer(torch.optim.Optimizer):
    r"""ZeRO-1 on flat buffers (the paper's and DeepSpeed's design).

    Args:
        params: tensors, or dicts defining parameter groups, the same on
            every rank (the whole model); one dtype per group.
        optimizer_class: the inner optimizer, built on this rank's flat
            pieces (one 1-D tensor per group) with ``**defaults``; an
            element-wise rule (:func:`check_element_wise`, else
            ``ValueError``).
        max_norm: if given, clip the gradient by its global norm
            (:func:`clip_grad_norm_sharded_`) before the update;
            :attr:`last_norm` holds the norm.
        process_group: the group to shard over (default: the whole world).

    ``self.pieces[g]`` is this rank's piece of group ``g`` (its padding
    included), ``self.optim.state`` the state of those pieces only. A
    parameter whose ``grad`` is ``None`` is stepped with a zero gradient
    (torch skips it; DeepSpeed leaves parameters that do not require a
    gradient out of its flat groups): pass only trainable parameters.

    Differences from DeepSpeed's ``DeepSpeedZeroOptimizer``: no mixed
    precision (the pieces have the parameters' dtype, DeepSpeed keeps fp32
    master pieces); padding to a multiple of :math:`N` (DeepSpeed pads to a
    multiple of :math:`N` times ``nccl_start_alignment_factor`` so that every
    piece starts 4-byte aligned); one ``reduce_scatter`` per group (DeepSpeed
    reduces each bucket's slices onto their owners during the backward
    pass); no overlap with the backward pass, no checkpoints.
    """

    def __init__(self, params: Iterable[Any],
                 optimizer_class: type[torch.optim.Optimizer], *,
                 max_norm: float | None = None,
                 process_group: dist.ProcessGroup | None = None,
                 **defaults: Any) -> None:
        check_element_wise(optimizer_class, **defaults)
        super().__init__(params, defaults)
        self.process_group = process_group
        self.rank = dist.get_rank(process_group)
        self.world_size = dist.get_world_size(process_group)
        self.max_norm = max_norm
        self.last_norm: torch.Tensor | None = None
        with torch.no_grad():
            self.pieces = [self._flat(g["params"], lambda p: p).chunk(
                self.world_size)[self.rank].clone()
                for g in self.param_groups]
        self.optim = optimizer_class(
            [{**g, "params": [piece]}
             for g, piece in zip(self.param_groups, self.pieces)], **defaults)
        for mine, local in zip(self.param_groups, self.optim.param_groups):
            _copy_options(local, mine)

    def _flat(self, params: Sequence[torch.Tensor],
              pick: Callable[[torch.Tensor], torch.Tensor | None]
              ) -> torch.Tensor:
        """The group's tensors (or their gradients) in one padded vector."""
        total = sum(p.numel() for p in params)
        size = math.ceil(total / self.world_size) * self.world_size
        flat = params[0].new_zeros(size)
        offset = 0
        for p in params:
            t = pick(p)
            if t is not None:
                flat[offset:offset + p.numel()] = t.reshape(-1)
            offset += p.numel()
        return flat

    @torch.no_grad()
    def step(  # type: ignore[override]
        self, closure: Callable[[], float] | None = None
    ) -> float | None:
        """Reduce-scatter the gradients, clip, step the pieces, all-gather."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group, piece in zip(self.param_groups, self.pieces):
            flat = self._flat(group["params"], lambda p: p.grad)
            piece.grad = torch.empty_like(piece)
            dist.reduce_scatter_single(piece.grad, flat,
                                       group=self.process_group)
            piece.grad.div_(self.world_size)            # g^(r) of the mean
        if self.max_norm is not None:
            self.last_norm = clip_grad_norm_sharded_(
                [p.grad for p in self.pieces], self.max_norm,
                self.process_group)
        for mine, local in zip(self.param_groups, self.optim.param_groups):
            _copy_options(mine, local)
        self.optim.step()                               # θ^(r) ← update
        for group, piece in zip(self.param_groups, self.pieces):
            flat = piece.new_empty(piece.numel() * self.world_size)
            dist.all_gather_single(flat, piece, group=self.process_group)
            offset = 0
            for p in group["params"]:
                p.copy_(flat[offset:offset + p.numel()].view_as(p))
                offset += p.numel()
        return loss
