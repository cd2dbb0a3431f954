r"""Data parallelism by hand: every rank holds the whole model, sees its own
slice of the batch, and averages its gradient with the others' before the
step.

With a loss that is a mean over :math:`B` examples split into :math:`n`
equal slices, the full-batch gradient is the mean of the slices' gradients,

.. math::

    \nabla \frac{1}{B}\sum_{i=1}^{B} \ell_i
    = \frac{1}{n}\sum_{r=1}^{n} \nabla \frac{n}{B}\sum_{i \in S_r} \ell_i
    = \frac{1}{n}\sum_{r=1}^{n} g_r ,

so one all-reduce (a sum over ranks, left on every rank) and a division by
:math:`n` turn :math:`n` small batches into the large one. This is what
``torch.nn.parallel.DistributedDataParallel`` does, in buckets and
overlapped with the backward pass
(``torch/csrc/distributed/c10d/reducer.cpp``); it divides each :math:`g_r`
by :math:`n` before the sum, which gives the same bits when :math:`n` is a
power of two (division by it is exact).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.distributed as dist


@torch.no_grad()
def average_gradients(params: Iterable[torch.Tensor],
                      group: dist.ProcessGroup | None = None) -> None:
    r"""Replace every ``p.grad`` by its mean over the ranks, in place:
    :math:`g \leftarrow \frac{1}{n}\sum_r g_r`.

    Parameters whose ``grad`` is ``None`` are skipped (on every rank alike:
    the ranks must agree on which parameters have gradients).
    """
    n = dist.get_world_size(group)
    for p in params:
        if p.grad is None:
            continue
        dist.all_reduce(p.grad, group=group)       # Σ_r g_r, on every rank
        p.grad.div_(n)                             # g = (1/n) Σ_r g_r
