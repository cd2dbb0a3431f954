r"""Parameters cut into pieces (FSDP2's DTensors): detect them, refuse a rule,
or reduce a partial sum over the mesh.

API (stable; other modules import these names):

* ``is_sharded(p) -> bool``: ``p`` is a DTensor with a ``Shard`` or
  ``Partial`` placement (a plain tensor or a replicated DTensor: ``False``);
* ``shard_placement(p) -> str | None``: ``None`` for a plain tensor or a
  replicated DTensor, else a short description, ``"Shard(0) on a mesh of
  2"``;
* ``refuse_sharded(rule: str, p, why: str) -> None``: no-op unless ``p`` is
  sharded; then raises ``ValueError`` naming the rule, the parameter's
  global shape and placement, and why;
* ``local(t) -> Tensor``: a DTensor's local piece (``to_local()``), a plain
  tensor itself;
* ``global_sum(t, like=None) -> Tensor``: the sum over the mesh of a partial reduction:
  ``t`` a plain tensor computed from a local piece of ``like`` (a
  parameter), or a DTensor with a ``Partial`` placement; one
  ``torch.distributed.all_reduce`` (seen by ``count_collectives``) over the
  mesh of ``like`` (or of ``t``). A no-op (``t`` itself) when nothing is
  sharded;
* ``sharded_sums(sums, tensors) -> Tensor``: ``sums[i]`` computed from
  ``local(tensors[i])``; the entries of sharded tensors summed over the mesh
  (one all-reduce), those of plain or replicated tensors kept as they are
  (such a tensor is whole on every rank: adding it over the ranks would
  count it :math:`n` times);
* ``sum_of_squares(*tensors) -> Tensor``: :math:`\sum_i x_i^2` of each tensor
  over all its elements (the whole tensor even if sharded), stacked into one
  vector and reduced by a single all-reduce (:func:`sharded_sums`);
* ``norms(tensors) -> Tensor``: the vector of each tensor's 2-norm, whole
  (one all-reduce when any is sharded; ``torch.stack([t.norm() ...])``,
  bit for bit, when none is);
* ``sharded_dims(p) -> tuple[int, ...]``: the tensor dimensions ``p`` is
  cut along (``()`` for a plain tensor).
* ``gather_matrix(t, dtype=None) -> Tensor``: the whole matrix of a
  sharded DTensor on every rank (one all-gather); ``local_rows(whole, like)``:
  this rank's piece of ``whole``, cut as ``like`` is (no communication);
  under them ``shard_layout``, ``padded_piece`` and ``unpad`` (a matrix cut
  along one dimension of a 1-D mesh only). For a rule that needs the whole
  matrix (Muon's orthogonalisation, and ``optedu.distributed.muon``).

Rules declare how they meet a piece, as class attributes of
``optedu.optim.optimizer.Optimizer``: ``element_wise = True`` (any piece
steps as the whole: Adam, SGD, ...), or a non-empty ``refuses_shards``
reason (``Optimizer.step`` then calls :func:`refuse_sharded` on every
parameter with a gradient, before any state is made). A rule that reduces
its whole-tensor quantities over the mesh (LARS, LAMB, Adafactor, DoG, SAM)
declares neither. ``FlatZeroOptimizer`` (flat ZeRO-1 pieces, plain tensors)
takes only ``element_wise`` rules. A rule whose step sums over several
tensors sets ``couples_tensors = True`` (DoG, D-Adaptation, Prodigy, SAM,
L-BFGS): ``ZeroOptimizer``, which gives each rank some whole tensors,
refuses it.

Why a rule needs this. A rule that acts element by element (Adam, SGD) gives
the same numbers on a piece as on the whole tensor. A rule that reads the
whole tensor (a norm, a factorisation, an orthogonalisation, a comparison
across elements) gets, on a piece, the piece's answer; DTensor keeps a
reduction over a sharded dimension *partial* (awaiting a sum over ranks), and
``.item()`` on it reads the local value, silently. Each optedu rule either
reduces such sums here or calls :func:`refuse_sharded` before it touches its
state. The reduction is the one ``torch.nn.utils.clip_grad_norm_`` does for a
global norm (Rajbhandari et al., "ZeRO", 2020; Zhao et al., "PyTorch FSDP",
2023).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, TypeGuard, cast

import torch
import torch.distributed as dist

if TYPE_CHECKING:                       # for the annotations only: no import cost
    from torch.distributed.tensor import DTensor
    from torch.distributed.tensor.placement_types import Partial, Shard


def _dtensor_module() -> Any:
    """``torch.distributed.tensor`` if something imported it (FSDP2 does),
    else ``None``: no tensor can be a DTensor before, and importing it costs
    about a second, so a plain ``import optedu`` does not."""
    return sys.modules.get("torch.distributed.tensor")


def _is_dtensor(t: Any) -> TypeGuard[DTensor]:
    module = _dtensor_module()
    return module is not None and isinstance(t, module.DTensor)


def _is_replicate(placement: Any) -> bool:
    return placement.is_replicate()


def is_sharded(p: Any) -> bool:
    """``True`` for a DTensor with any placement other than ``Replicate``."""
    return _is_dtensor(p) and not all(_is_replicate(pl) for pl in p.placements)


def _name(placement: Any) -> str:
    if placement.is_shard():
        return f"Shard({placement.dim})"
    if placement.is_partial():
        return f"Partial({placement.reduce_op})"
    return "Replicate()"


def shard_placement(p: Any) -> str | None:
    """``None`` for a plain or replicated tensor, else e.g.
    ``"Shard(0) on a mesh of 2"``."""
    if not is_sharded(p):
        return None
    placements = ", ".join(_name(pl) for pl in p.placements)
    size = p.device_mesh.size()
    return f"{placements} on a mesh of {size}"


def sharded_dims(p: Any) -> tuple[int, ...]:
    """The dimensions ``p`` is cut along (``Shard(d)`` placements)."""
    if not _is_dtensor(p):
        return ()
    return tuple(sorted({cast("Shard", pl).dim for pl in p.placements
                         if pl.is_shard()}))


def refuse_sharded(rule: str, p: Any, why: str) -> None:
    """Raise ``ValueError`` if ``p`` is sharded: ``rule`` cannot step a
    piece of a tensor, because ``why``. A no-op otherwise."""
    where = shard_placement(p)
    if where is None:
        return
    shape = "×".join(str(n) for n in p.shape) or "scalar"
    raise ValueError(
        f"{rule} cannot step a sharded parameter (shape {shape}, placement "
        f"{where}): {why}. Use whole tensors per rank (ZeroOptimizer, DDP) "
        f"or an element-wise rule.")


def refuse_pieces(optimizer: Any) -> None:
    """:func:`refuse_sharded` for every parameter with a gradient of ``optimizer``, whose
    class says why in ``refuses_shards``: for the rules built on ``torch.optim.Optimizer``
    rather than optedu's base (whose ``step`` does this itself), before any state moves."""
    why = getattr(optimizer, "refuses_shards", "")
    if not why:
        return
    for group in optimizer.param_groups:
        for param in group["params"]:
            if param.grad is not None:
                refuse_sharded(type(optimizer).__name__, param, why)


def local(t: torch.Tensor) -> torch.Tensor:
    """A DTensor's local piece; a plain tensor itself."""
    return t.to_local() if _is_dtensor(t) else t


def _group(mesh: Any) -> Any:
    if mesh.ndim != 1:
        raise ValueError(f"Invalid mesh value: {mesh} (expected a "
                         f"1-D device mesh)")
    return mesh.get_group()


def global_sum(t: torch.Tensor, like: Any = None) -> torch.Tensor:
    """The sum over the mesh of a partial reduction, as a plain tensor.

    ``t`` is either a DTensor with a ``Partial("sum")`` placement (a
    reduction DTensor left partial), or a plain tensor computed from the
    local piece of ``like``; a sharded ``like`` (or a partial ``t``) gets one
    all-reduce over its mesh. Otherwise ``t`` comes back unchanged, so a
    single process does not round differently.
    """
    if _is_dtensor(t):
        mesh, placements = t.device_mesh, t.placements
        out = t.to_local().clone()
        if all(_is_replicate(pl) for pl in placements):
            return out
        if not all(pl.is_partial() and cast("Partial", pl).reduce_op == "sum"
                   for pl in placements):
            raise ValueError(f"Invalid t value: a DTensor placed "
                             f"{placements} (expected Partial('sum'))")
        dist.all_reduce(out, group=_group(mesh))
        return out
    if not is_sharded(like):
        return t
    out = t.clone()
    dist.all_reduce(out, group=_group(like.device_mesh))
    return out


def sharded_sums(sums: torch.Tensor, tensors: list[Any]) -> torch.Tensor:
    """``sums[i]``, computed from ``local(tensors[i])``, made whole: the
    entries of sharded tensors added over the mesh by one all-reduce, those
    of plain or replicated tensors (whole on every rank already) kept. With
    every tensor sharded, :func:`global_sum` of ``sums`` exactly; with none,
    ``sums`` itself."""
    if len(tensors) != len(sums):
        raise ValueError(f"Invalid tensors value: {len(tensors)} tensors "
                         f"for {len(sums)} sums")
    flags = [is_sharded(x) for x in tensors]
    first = next((x for x, f in zip(tensors, flags) if f), None)
    if first is None or all(flags):
        return global_sum(sums, first)
    mask = torch.tensor(flags, device=sums.device)
    zero = torch.zeros_like(sums)
    reduced = global_sum(torch.where(mask, sums, zero), first)
    return torch.where(mask, reduced, sums)


def sum_of_squares(*tensors: torch.Tensor) -> torch.Tensor:
    r"""One vector: :math:`\sum x^2` over all the elements of each tensor
    (each may be a sharded DTensor; then one all-reduce adds the pieces'
    sums, :func:`sharded_sums`). Plain tensors:
    ``torch.stack([vector_norm(x) ** 2 ...])``."""
    sums = torch.stack([local(x).square().sum() for x in tensors])
    return sharded_sums(sums, list(tensors))


def norms(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Each tensor's 2-norm over all its elements, stacked: one all-reduce
    of the pieces' sums of squares when any tensor is sharded, else
    ``torch.stack([t.norm() for t in tensors])`` (bit for bit)."""
    if not any(is_sharded(t) for t in tensors):
        return torch.stack([t.norm() for t in tensors])
    return sum_of_squares(*tensors).sqrt()


# Whole matrices gathered from their pieces, and cut again: for a rule that
# orthogonalises a matrix (Muon), which needs all of it.

def shard_layout(t: torch.Tensor, rule: str = "Muon") -> tuple[int, int, int, Any]:
    """Where a sharded matrix is cut: the dimension, the rows of a full
    piece (``torch.chunk``'s size, as DTensor's ``Shard``), this rank's
    index and the process group; refuses any other layout, naming ``rule``
    (the one rule that gathers whole matrices, Muon, by default)."""
    piece = cast("DTensor", t)                # callers pass a sharded tensor
    mesh, placements = piece.device_mesh, piece.placements
    if mesh.ndim != 1 or not placements[0].is_shard():
        refuse_sharded(rule, t, "it gathers a matrix cut along one "
                       "dimension of a 1-D mesh only")
    dim = cast("Shard", placements[0]).dim
    rows = -(-t.shape[dim] // mesh.size())                 # ⌈A/n⌉
    return dim, rows, mesh.get_local_rank(), mesh.get_group()


def padded_piece(t: torch.Tensor,
                 dtype: torch.dtype | None = None) -> torch.Tensor:
    """This rank's piece of a sharded matrix in ``dtype`` (default: its
    own), cut dimension first, padded with zero rows to a full piece (the
    collectives need equal sizes)."""
    dim, rows, _, _ = shard_layout(t)
    piece = local(t).to(dtype or t.dtype).movedim(dim, 0)
    out = piece.new_zeros((rows, *piece.shape[1:]))
    out[:piece.size(0)] = piece
    return out


def unpad(whole: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The padded pieces, stacked, back into the matrix shaped as ``like``
    (the padding of each piece is at its end, and only the last pieces of
    ``torch.chunk`` are short, so the real rows come first)."""
    dim = shard_layout(like)[0]
    return whole[:like.shape[dim]].movedim(0, dim)


def gather_matrix(t: torch.Tensor,
                  dtype: torch.dtype | None = None) -> torch.Tensor:
    """The whole matrix of a sharded DTensor in ``dtype`` (default: its
    own), on every rank: one ``all_gather_single`` over its mesh (seen
    by ``optedu.distributed.count_collectives``). A plain or replicated
    tensor comes back as it is."""
    if not is_sharded(t):
        return t
    _, _, _, group = shard_layout(t)
    piece = padded_piece(t, dtype)
    whole = piece.new_empty((dist.get_world_size(group) * piece.size(0),
                             *piece.shape[1:]))
    dist.all_gather_single(whole, piece, group=group)
    return unpad(whole, t)


def local_rows(whole: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """This rank's piece of ``whole``, cut as the sharded ``like`` is cut
    (``whole`` itself when ``like`` is not sharded). No communication."""
    if not is_sharded(like):
        return whole
    dim, rows, rank, _ = shard_layout(like)
    return whole.narrow(dim, min(rank * rows, like.shape[dim]),
                        local(like).shape[dim])
