r"""The multi-tensor ("foreach") path: its switch and the base class whose
groups take it. Each rule's foreach form lives beside its one-tensor form
(:func:`optedu.optim.sgd.sgd_foreach`, :func:`optedu.optim.adam.adam_foreach`).

``optedu.sgd`` and ``optedu.adam`` update one tensor; a model has hundreds,
so a step makes a few Python calls per tensor, and with many small tensors
that per-call overhead, not the arithmetic, is the step's cost. torch's
``_foreach_*`` operations take *lists* of tensors: one call does one operation
on every tensor of the list (on CPU a C++ loop over the tensors; on CUDA a few
fused kernel launches). A rule's foreach form is a line-for-line translation
of its one-tensor form, each ``x.op_(y)`` becoming ``torch._foreach_op_(xs,
ys)``; the one-tensor functions stay the reference the book shows.

Every line performs the same elementwise operation, in the same order, as its
one-tensor original, so the results are the same bit for bit
(``tests/optim/test_foreach.py`` checks it in float64 and float32, against the
one-tensor rule and against torch's own foreach implementations).

Choose the path the torch way: ``optedu.SGD(..., foreach=True)``,
``optedu.Adam``, ``optedu.AdamW``. ``foreach=None`` (the default, as in torch)
means the one-tensor path in optedu, on every device: on CPU that is also what
torch picks, while on CUDA torch would pick foreach; optedu keeps the
reference path unless asked.

Differences from torch's ``_multi_tensor_sgd`` / ``_multi_tensor_adam``: no
grouping of the lists by device and dtype (a ``_foreach_*`` call takes mixed
lists; on CUDA it then loops instead of fusing), no ``capturable``; and SGD
with Nesterov leaves ``param.grad`` untouched, where torch's foreach SGD
overwrites it with the Nesterov direction :math:`g_t + \mu b_t` when neither
``maximize`` nor ``weight_decay`` made a copy first (tested). Complex
parameters are viewed as real at the start of the step, as torch's foreach
Adam does (its one-tensor Adam views them after the weight decay; foreach SGD
steps them as complex tensors).
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from ._validation import invalid
from .optimizer import Group, Optimizer, State, complex_as_real

Tensors = list[torch.Tensor]


def check_foreach(foreach: Any) -> None:
    """Raise ``ValueError`` unless ``foreach`` is None, True or False."""
    if foreach is not None and not isinstance(foreach, bool):
        raise invalid("foreach", foreach, "None, True or False")


class ForeachOptimizer(Optimizer):
    """An :class:`~optedu.optim.optimizer.Optimizer` whose parameter groups may take
    the multi-tensor path: a group with ``foreach=True`` is updated by
    ``update_foreach`` (lists of the group's parameters, gradients and
    states) instead of ``update`` once per parameter.

    Complex parameters enter the lists as their real views, as in torch's
    ``_multi_tensor_*`` functions. A group holding a sparse gradient takes the
    one-tensor path (torch's foreach SGD, too, falls back to a loop there).
    """

    def update_foreach(self, params: Tensors, grads: Tensors,
                       states: list[State], group: Group) -> None:
        """Apply one step of the rule to every tensor of ``params`` in place,
        updating ``states`` in place."""
        raise NotImplementedError

    def update_group(self, params: Tensors, grads: Tensors,
                     states: list[State], group: Group) -> None:
        if not group.get("foreach") or not params or any(g.is_sparse for g in grads):
            super().update_group(params, grads, states, group)
            return
        with contextlib.ExitStack() as stack:
            views = [stack.enter_context(complex_as_real(*args)) if self.complex_as_real
                     else args for args in zip(params, grads, states)]
            real_params, real_grads, real_states = (list(column) for column in zip(*views))
            self.update_foreach(real_params, real_grads, real_states, group)
