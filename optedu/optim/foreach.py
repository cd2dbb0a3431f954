r"""The multi-tensor ("foreach") path: SGD and Adam/AdamW over lists of tensors.

``optedu.sgd`` and ``optedu.adam`` update one tensor; a model has hundreds,
so a step makes a few Python calls per tensor, and with many small tensors
that per-call overhead, not the arithmetic, is the step's cost. torch's
``_foreach_*`` operations take *lists* of tensors: one call does one operation
on every tensor of the list (on CPU a C++ loop over the tensors; on CUDA a few
fused kernel launches). The functions here are line-for-line translations of
the one-tensor rules, each ``x.op_(y)`` becoming ``torch._foreach_op_(xs,
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
from collections.abc import Sequence
from typing import Any

import torch

from ._validation import invalid
from .optimizer import Group, Optimizer, State, complex_as_real

Tensors = list[torch.Tensor]


def check_foreach(foreach: Any) -> None:
    """Raise ``ValueError`` unless ``foreach`` is None, True or False."""
    if foreach is not None and not isinstance(foreach, bool):
        raise invalid("foreach", foreach, "None, True or False")


def sgd_foreach(
    params: Tensors,
    grads: Tensors,
    momentum_buffers: Sequence[torch.Tensor | None],
    *,
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    maximize: bool,
) -> list[torch.Tensor | None]:
    r"""One SGD step on lists of tensors, in place: :func:`optedu.sgd` on each.

    Returns the momentum buffers (``None`` entries without momentum). A
    ``None`` buffer, a parameter's first step, becomes a copy of its gradient,
    as in :func:`optedu.sgd`:

    .. math::

        g_t &\leftarrow \pm\nabla f(\theta_{t-1}) + \lambda\,\theta_{t-1} \\
        b_t &\leftarrow \mu\, b_{t-1} + (1-\tau)\, g_t \quad (b_1 = g_1) \\
        \theta_t &\leftarrow \theta_{t-1} - \eta\, (g_t + \mu\, b_t
            \text{ if Nesterov, else } b_t)
    """
    g = torch._foreach_neg(grads) if maximize else grads
    if weight_decay != 0:
        # g_t = g_t + λ θ_{t-1}
        g = torch._foreach_add(g, params, alpha=weight_decay)
    buffers = list(momentum_buffers)
    if momentum != 0:
        old = [i for i, b in enumerate(buffers) if b is not None]
        if old:
            b_old = [b for b in buffers if b is not None]
            # b_t = μ b_{t-1} + (1-τ) g_t
            torch._foreach_mul_(b_old, momentum)
            torch._foreach_add_(b_old, [g[i] for i in old],
                                alpha=1 - dampening)
        filled = [g_i.detach().clone() if b is None else b  # b_1 = g_1
                  for g_i, b in zip(g, buffers)]
        buffers = list(filled)
        if nesterov:
            # d_t = g_t + μ b_t
            g = torch._foreach_add(g, filled, alpha=momentum)
        else:
            g = filled                                       # d_t = b_t
    torch._foreach_add_(params, g, alpha=-lr)        # θ_t = θ_{t-1} - η d_t
    return buffers


def adam_foreach(
    params: Tensors,
    grads: Tensors,
    exp_avgs: Tensors,
    exp_avg_sqs: Tensors,
    max_exp_avg_sqs: Tensors | None,
    steps: Sequence[int],
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled_weight_decay: bool,
    maximize: bool,
) -> None:
    r"""One Adam (or AdamW) step on lists of tensors, in place:
    :func:`optedu.adam` on every tensor. ``steps`` holds each tensor's 1-based
    step number; ``max_exp_avg_sqs`` is given for AMSGrad.

    .. math::

        m_t &\leftarrow \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad
        v_t \leftarrow \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2 \\
        \theta_t &\leftarrow \theta_{t-1} - \frac{\eta}{1-\beta_1^t}\,
            \frac{m_t}{\sqrt{v_t}/\sqrt{1-\beta_2^t} + \epsilon}

    with the weight decay, AMSGrad and ``maximize`` of :func:`optedu.adam`.
    """
    g = torch._foreach_neg(grads) if maximize else grads
    if weight_decay != 0:
        if decoupled_weight_decay:
            # θ ← (1 - ηλ) θ
            torch._foreach_mul_(params, 1 - lr * weight_decay)
        else:
            # g_t ← g_t + λ θ_{t-1}
            g = torch._foreach_add(g, params, alpha=weight_decay)
    # m_t = β1 m_{t-1} + (1-β1) g_t
    torch._foreach_lerp_(exp_avgs, g, 1 - beta1)
    # v_t = β2 v_{t-1} + (1-β2) g_t²
    torch._foreach_mul_(exp_avg_sqs, beta2)
    torch._foreach_addcmul_(exp_avg_sqs, g, g, value=1 - beta2)
    bias_correction1 = [1 - beta1**t for t in steps]        # 1 - β1^t
    bias_correction2 = [1 - beta2**t for t in steps]        # 1 - β2^t
    if max_exp_avg_sqs is not None:                         # AMSGrad
        # v_max = max(v_max, v_t)
        torch._foreach_maximum_(max_exp_avg_sqs, exp_avg_sqs)
        second_moments = max_exp_avg_sqs
    else:
        second_moments = exp_avg_sqs
    # √v̂_t + ε
    denoms = torch._foreach_sqrt(second_moments)
    torch._foreach_div_(denoms, [bc**0.5 for bc in bias_correction2])
    torch._foreach_add_(denoms, eps)
    # θ_t = θ_{t-1} - η m̂_t / (√v̂_t + ε)
    torch._foreach_addcdiv_(params, exp_avgs, denoms,
                            [-lr / bc for bc in bias_correction1])


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
