r"""Communication volume: what each collective moves, counted and predicted.

:func:`count_collectives` is a context manager that wraps torch.distributed's
collective functions for the time of a ``with`` block and records one
``(op, bytes)`` per call. The bytes counted are the size of the *whole*
tensor the collective acts on, :math:`\Psi` bytes for a tensor of
:math:`\Psi` bytes:

* ``all_reduce``, ``broadcast``, ``reduce``: the tensor passed;
* ``all_gather*``: the gathered output (every rank's piece together);
* ``reduce_scatter*``: the input that is reduced (every rank's piece);
* ``gather``, ``scatter``: the whole that one rank receives or sends (every
  rank's piece).

What a rank actually sends depends on the algorithm. For a ring over
:math:`n` ranks (Patarasuk & Yuan, 2009; the ZeRO paper's accounting),
:func:`ring_bytes_sent` turns a record into bytes sent per rank: an
all-reduce is a reduce-scatter then an all-gather,
:math:`2\Psi(n-1)/n`; an all-gather or a reduce-scatter
:math:`\Psi(n-1)/n`; broadcasting each rank's shard in turn moves what an
all-gather of them moves, so a broadcast counts :math:`\Psi(n-1)/n` too,
and a reduce (each shard's gradients summed onto its owner in turn) what a
reduce-scatter moves, :math:`\Psi(n-1)/n`.
gloo's own algorithms differ in detail (gloo picks ring or halving-doubling
by size); the formulas are the standard cost model, not a measurement of the
wire.

Only calls that go through the ``torch.distributed`` module's functions are
seen: ``DistributedDataParallel``'s C++ reducer talks to the process group
directly, so its all-reduces are counted only when its communication hook is
a Python one (``register_comm_hook`` with torch's ``allreduce_hook``, which
calls ``torch.distributed.all_reduce``). FSDP2 calls
``torch.distributed.all_gather_single`` and ``reduce_scatter_single``
(``torch/distributed/fsdp/_fully_shard/_fsdp_collectives.py``), both seen.
"""

from __future__ import annotations

import contextlib
import functools
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.distributed as dist

from optedu.optim._validation import check_integer

# collective -> how to find the tensor whose size is the volume
_VOLUME: dict[str, Callable[..., torch.Tensor | list[torch.Tensor]]] = {
    "all_reduce": lambda tensor, *a, **k: tensor,
    "broadcast": lambda tensor, *a, **k: tensor,
    "reduce": lambda tensor, *a, **k: tensor,
    "all_gather": lambda tensor_list, *a, **k: tensor_list,
    "all_gather_into_tensor": lambda output_tensor, *a, **k: output_tensor,
    "all_gather_single": lambda output_tensor, *a, **k: output_tensor,
    "reduce_scatter": lambda output, input_list, *a, **k: input_list,
    "reduce_scatter_tensor": lambda output, input, *a, **k: input,
    "reduce_scatter_single": lambda output, input, *a, **k: input,
    # one rank's whole: every rank's piece (the same size on every rank)
    "gather": lambda tensor, *a, group=None, **k:
        [tensor] * dist.get_world_size(group),
    "scatter": lambda tensor, *a, group=None, **k:
        [tensor] * dist.get_world_size(group),
}

_KIND = {"all_gather_into_tensor": "all_gather",
         "all_gather_single": "all_gather",
         "reduce_scatter_tensor": "reduce_scatter",
         "reduce_scatter_single": "reduce_scatter"}


def tensor_bytes(tensors: torch.Tensor | list[torch.Tensor]) -> int:
    """Bytes of a tensor, or of a list of tensors."""
    if isinstance(tensors, torch.Tensor):
        return tensors.numel() * tensors.element_size()
    return sum(t.numel() * t.element_size() for t in tensors)


@contextlib.contextmanager
def count_collectives() -> Iterator[list[tuple[str, int]]]:
    """Record ``(op, bytes)`` for every collective called in the block.

    ``op`` is ``all_reduce``, ``broadcast``, ``reduce``, ``all_gather``,
    ``reduce_scatter``, ``gather`` or ``scatter`` (the
    ``*_into_tensor``/``*_tensor``/``*_single`` forms are counted under
    their family's name). A collective that calls
    another one inside is counted once. Patches the functions of the
    ``torch.distributed`` module (and of ``distributed_c10d``) and restores
    them on exit.

    >>> with count_collectives() as log:   # doctest: +SKIP
    ...     dist.all_reduce(torch.zeros(10, dtype=torch.float64))
    >>> log                                 # doctest: +SKIP
    [('all_reduce', 80)]
    """
    log: list[tuple[str, int]] = []
    depth = [0]
    modules = (dist, dist.distributed_c10d)
    saved = [(m, name, getattr(m, name)) for m in modules for name in _VOLUME
             if hasattr(m, name)]

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def counted(*args: Any, **kwargs: Any) -> Any:
            if depth[0] == 0:
                log.append((_KIND.get(name, name),
                            tensor_bytes(_VOLUME[name](*args, **kwargs))))
            depth[0] += 1
            try:
                return fn(*args, **kwargs)
            finally:
                depth[0] -= 1
        return counted

    try:
        for module, name, fn in saved:
            setattr(module, name, wrap(name, fn))
        yield log
    finally:
        for module, name, fn in saved:
            setattr(module, name, fn)


def totals(log: list[tuple[str, int]]) -> dict[str, int]:
    """Bytes per op summed over a log of :func:`count_collectives`."""
    out: dict[str, int] = defaultdict(int)
    for op, size in log:
        out[op] += size
    return dict(sorted(out.items()))


def ring_bytes_sent(op: str, size: float, world_size: int) -> float:
    r"""Bytes one rank sends, on average over the ranks, for a collective of
    ``size`` bytes on a ring of ``world_size`` ranks: :math:`2\Psi(n-1)/n`
    for ``all_reduce``, :math:`\Psi(n-1)/n` for ``all_gather``,
    ``reduce_scatter``, ``broadcast`` and ``reduce`` (see the module
    docstring). For the last two the average is what matters: a single
    pipelined broadcast of :math:`\Psi` bytes makes every rank but the last
    send :math:`\Psi`; :math:`n` owners broadcasting :math:`n` equal shards
    in turn make every rank send :math:`\Psi(n-1)/n`. A ``gather`` of
    :math:`\Psi` bytes onto one rank (or a ``scatter`` from it) moves the
    :math:`n-1` other pieces once, :math:`\Psi(n-1)/n` in all:
    :math:`\Psi(n-1)/n^2` a rank on average.

    >>> ring_bytes_sent("all_reduce", 800, 2)
    800.0
    """
    check_integer("world_size", world_size, 1)
    share = size * (world_size - 1) / world_size
    factors = {"all_reduce": 2.0, "all_gather": 1.0, "reduce_scatter": 1.0,
               "broadcast": 1.0, "reduce": 1.0, "gather": 1 / world_size,
               "scatter": 1 / world_size}
    if op not in factors:
        raise ValueError(f"Invalid op value: {op!r} (expected one of "
                         f"{sorted(factors)})")
    return factors[op] * share


def zero_volume(stage: int, param_bytes: float,
                world_size: int) -> dict[str, float]:
    r"""Bytes each rank sends per step, by ZeRO stage, on a ring: the ZeRO
    paper's Section 7 accounting, :math:`\Psi` the bytes of the parameters
    (and of the gradients, same dtype), :math:`n` the ranks.

    * stage 0 (plain data parallelism): all-reduce the gradients,
      :math:`2\Psi(n-1)/n`;
    * stage 1, as torch builds it and :class:`ZeroOptimizer` by default
      (gradients all-reduced whole, then each shard broadcast):
      :math:`2\Psi(n-1)/n + \Psi(n-1)/n`; the paper's stage 1
      reduce-scatters instead (``ZeroOptimizer(gradients="reduce")``), the
      volume of stage 2;
    * stage 2: reduce-scatter the gradients, all-gather the parameters,
      :math:`2\Psi(n-1)/n`;
    * stage 3 (FSDP): all-gather the parameters for the forward pass and
      again for the backward pass, reduce-scatter the gradients,
      :math:`3\Psi(n-1)/n`.

    >>> zero_volume(3, 800, 2)
    {'all_gather': 800.0, 'reduce_scatter': 400.0}
    """
    check_integer("stage", stage, 0, 3)
    check_integer("world_size", world_size, 1)
    share = param_bytes * (world_size - 1) / world_size
    return {
        0: {"all_reduce": 2 * share},
        1: {"all_reduce": 2 * share, "broadcast": share},
        2: {"reduce_scatter": share, "all_gather": share},
        3: {"all_gather": 2 * share, "reduce_scatter": share},
    }[stage]
