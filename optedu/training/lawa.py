r"""Latest weight averaging (LAWA): the mean of the last :math:`k` checkpoints of a run.

Every ``every`` calls of :meth:`LAWA.update_parameters` the model's weights join a queue of
at most :math:`k` checkpoints, the oldest leaving when it is full. The averaged weights are
the plain mean of the queue,

.. math::

    \bar w_t = \frac{1}{k} \sum_{j=0}^{k-1} w_{t - j s},

where :math:`s` is ``every`` (the spacing, an epoch in Kaddour's runs) and :math:`t` the last
checkpoint. Unlike SWA, which averages every point since its start :math:`t_0`, LAWA's window
slides with the run: a checkpoint older than :math:`k s` steps no longer counts. Unlike an
EMA, each of the :math:`k` points weighs the same, and the rest weigh nothing.

The average is taken in float64 in the order the checkpoints were taken (oldest first) and
rounded once to the parameter's dtype; buffers (BatchNorm's statistics) are the newest
checkpoint's, to recompute with :func:`~optedu.training.swa_utils.update_bn` if the model has
them.

References: J. Kaddour, *Stop wasting my time! Saving days of ImageNet and BERT training with
latest weight averaging*, 2022; S. Sanyal, A. Neerkaje, J. Kaddour, A. Kumar and S. Sanghavi,
*Early weight averaging meets high learning rates for LLM pre-training*, 2023.
"""

from __future__ import annotations

import copy
from collections import deque

import torch
from torch import Tensor, nn

from optedu.optim._validation import check_integer

__all__ = ["LAWA", "latest_average"]


@torch.no_grad()
def latest_average(checkpoints: list[list[Tensor]]) -> list[Tensor]:
    r"""The mean of ``checkpoints`` (each a list of tensors, oldest first), tensor by tensor:
    :math:`\frac{1}{k}\sum_j w_j`, summed in float64 and rounded once to each tensor's dtype."""
    if not checkpoints:
        raise ValueError("Invalid checkpoints value: [] (expected at least one checkpoint)")
    out = []
    for tensors in zip(*checkpoints):
        total = torch.zeros_like(tensors[0], dtype=torch.float64)
        for w in tensors:                               # oldest first
            total.add_(w.to(torch.float64))             # Σ_j w_j
        out.append(total.div_(len(tensors)).to(tensors[0].dtype))   # (1/k) Σ_j w_j
    return out


class LAWA:
    r"""The mean of the latest ``k`` checkpoints of ``model``, one taken every ``every`` calls
    of :meth:`update_parameters`.

    Args:
        model: the model whose weights are averaged (a copy of it holds the average).
        k: checkpoints in the window, an integer >= 1 (default 5).
        every: calls between checkpoints, an integer >= 1 (default 1).

    :attr:`module` is the averaged model; :meth:`update_parameters` takes a checkpoint when
    due and refreshes it. ``n_checkpoints`` counts the checkpoints in the window.
    """

    def __init__(self, model: nn.Module, k: int = 5, every: int = 1) -> None:
        check_integer("k", k, 1)
        check_integer("every", every, 1)
        self.k, self.every = k, every
        self.module = copy.deepcopy(model)
        self.calls = 0
        self.window: deque[list[Tensor]] = deque(maxlen=k)

    @property
    def n_checkpoints(self) -> int:
        return len(self.window)

    @torch.no_grad()
    def update_parameters(self, model: nn.Module) -> bool:
        """Count a call; on every ``every``-th, add ``model``'s weights to the window (the
        oldest leaves once it holds ``k``) and put the window's mean in :attr:`module`.
        Returns whether a checkpoint was taken."""
        self.calls += 1
        if self.calls % self.every:
            return False
        self.window.append([p.detach().clone() for p in model.parameters()])
        for avg, w in zip(self.module.parameters(), latest_average(list(self.window))):
            avg.copy_(w)
        for buf, new in zip(self.module.buffers(), model.buffers()):
            buf.copy_(new)                                  # the newest checkpoint's buffers
        return True
