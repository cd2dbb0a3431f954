r"""Stochastic gradient descent with momentum, dampening, Nesterov look-ahead
and weight decay.

The rule in its three forms, one after the other: :func:`sgd` on one tensor
(the reference the book shows), :func:`sgd_foreach` on lists of tensors
(bit for bit the same) and :func:`sgd_fused`, compiled into one kernel per
tensor by :mod:`optedu.optim.fused`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor

from ._validation import check_nesterov, check_non_negative, check_tensor_lr
from .foreach import Tensors, check_foreach
from .fused import (FusedOptimizer, check_fused, compiled, flat, learning_rate,
                    run_in_chunks)
from .optimizer import Group, State


def sgd(
    param: torch.Tensor,
    grad: torch.Tensor,
    momentum_buffer: torch.Tensor | None,
    *,
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    maximize: bool,
) -> torch.Tensor | None:
    r"""One SGD step on one tensor, in place.

    Returns the momentum buffer (``None`` without momentum).

    .. math::

        g_t &\leftarrow \pm\nabla f(\theta_{t-1}) + \lambda\,\theta_{t-1} \\
        b_t &\leftarrow \begin{cases} g_t & t = 1 \\
            \mu\, b_{t-1} + (1-\tau)\, g_t & t > 1 \end{cases} \\
        d_t &\leftarrow \begin{cases} g_t + \mu\, b_t & \text{Nesterov} \\
            b_t & \text{otherwise} \end{cases} \\
        \theta_t &\leftarrow \theta_{t-1} - \eta\, d_t

    with learning rate :math:`\eta`, momentum :math:`\mu`, dampening
    :math:`\tau` and weight decay :math:`\lambda`. The buffer starts as a copy
    of the first gradient, undampened.

    A complex tensor is stepped as it is (complex arithmetic with real
    scalars), as torch's SGD does; a sparse gradient is used as it is (its
    momentum buffer is sparse too), as in torch.
    """
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g.add(param, alpha=weight_decay)        # g_t = g_t + λ θ_{t-1}
    if momentum != 0:
        if momentum_buffer is None:
            momentum_buffer = g.detach().clone()    # b_1 = g_1
        else:
            # b_t = μ b_{t-1} + (1-τ) g_t
            momentum_buffer.mul_(momentum).add_(g, alpha=1 - dampening)
        if nesterov:
            g = g.add(momentum_buffer, alpha=momentum)  # d_t = g_t + μ b_t
        else:
            g = momentum_buffer                     # d_t = b_t
    param.add_(g, alpha=-lr)                        # θ_t = θ_{t-1} - η d_t
    return momentum_buffer


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



def sgd_fused(param: Tensor, grad: Tensor, momentum_buffer: Tensor | None,
              lr: Tensor, *, momentum: float, dampening: float,
              weight_decay: float, nesterov: bool, maximize: bool,
              first_step: bool) -> None:
    r"""One SGD step on one tensor, in place: :func:`optedu.sgd` with the
    learning rate a tensor. ``first_step`` copies the gradient into the
    (given, empty) buffer, :math:`b_1 = g_1`, as torch's ``_fused_sgd_``
    does."""
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g.add(param, alpha=weight_decay)        # g_t = g_t + λ θ_{t-1}
    if momentum_buffer is not None:
        if first_step:
            momentum_buffer.copy_(g)                # b_1 = g_1
        else:
            # b_t = μ b_{t-1} + (1-τ) g_t
            momentum_buffer.mul_(momentum).add_(g, alpha=1 - dampening)
        if nesterov:
            g = g.add(momentum_buffer, alpha=momentum)  # d_t = g_t + μ b_t
        else:
            g = momentum_buffer                     # d_t = b_t
    param.sub_(lr * g)                              # θ_t = θ_{t-1} - η d_t


class SGD(FusedOptimizer):
    r"""Stochastic gradient descent, a drop-in for ``torch.optim.SGD``
    (torch 2.13).

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: learning rate :math:`\eta` (default ``1e-3``).
        momentum: momentum factor :math:`\mu` (default ``0``).
        dampening: dampening :math:`\tau` of the momentum (default ``0``).
        weight_decay: L2 penalty :math:`\lambda`, added to the gradient
            (default ``0``).
        nesterov: use Nesterov's look-ahead (default ``False``).
        maximize: ascend instead of descend (default ``False``).
        foreach: ``True`` for the multi-tensor path
            (:func:`sgd_foreach`, same results bit for bit);
            ``None`` (default) or ``False``: the one-tensor :func:`sgd`.
        fused: ``True`` for the compiled path
            (:func:`sgd_fused`, one pass over memory per
            tensor; rounds differently, see :mod:`optedu.optim.fused`).

    State per parameter: ``momentum_buffer`` (only when ``momentum != 0``).

    Differences from torch.optim.SGD: ``foreach=None`` means the one-tensor
    path on every device; ``fused=True`` compiles optedu's rule instead of
    calling torch's kernel; no ``differentiable`` switch; a NaN
    ``lr`` is rejected (torch's check ``lr < 0`` lets it
    through). The arithmetic is torch's, step for step.

    References: Robbins & Monro (1951); Polyak (1964); Sutskever et al. (2013).
    """

    element_wise = True  # any piece of a tensor steps as the whole (._sharding)

    supports_sparse = True  # torch's rule, unchanged: a sparse gradient adds into param
    # torch's SGD steps a complex tensor as it is, not as its real view: complex arithmetic
    # with real scalars, which can round differently (in the last bit) from the real view's
    complex_as_real = False

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        check_tensor_lr(lr)
        check_non_negative("lr", lr)
        check_non_negative("momentum", momentum)
        check_non_negative("weight_decay", weight_decay)
        check_nesterov(nesterov, momentum, dampening)
        check_foreach(foreach)
        check_fused(fused, foreach)
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov,
                        maximize=maximize, foreach=foreach, fused=fused)
        super().__init__(params, defaults)

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        return {}  # the first step creates the momentum buffer, as in torch

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State,
               group: Group) -> None:
        buffer = sgd(param, grad, state.get("momentum_buffer"),
                     lr=group["lr"], momentum=group["momentum"],
                     dampening=group["dampening"],
                     weight_decay=group["weight_decay"],
                     nesterov=group["nesterov"], maximize=group["maximize"])
        if group["momentum"] != 0:
            state["momentum_buffer"] = buffer

    def update_foreach(self, params: list[torch.Tensor], grads: list[torch.Tensor],
                       states: list[State], group: Group) -> None:
        buffers = sgd_foreach(
            params, grads, [state.get("momentum_buffer") for state in states],
            lr=group["lr"], momentum=group["momentum"], dampening=group["dampening"],
            weight_decay=group["weight_decay"], nesterov=group["nesterov"],
            maximize=group["maximize"])
        if group["momentum"] != 0:
            for state, buffer in zip(states, buffers):
                state["momentum_buffer"] = buffer

    def update_fused(self, params: list[torch.Tensor], grads: list[torch.Tensor],
                     states: list[State], group: Group) -> None:
        momentum = group["momentum"]
        rows: dict[bool, list] = {False: [], True: []}    # by first_step
        for param, grad, state in zip(params, grads, states):
            buffer = state.get("momentum_buffer")
            first_step = momentum != 0 and buffer is None
            if first_step:      # filled by the kernel: b_1 = g_1
                buffer = state["momentum_buffer"] = torch.empty_like(
                    grad, memory_format=torch.preserve_format)
            rows[first_step].append(flat(param, grad, buffer))
        for first_step, some in rows.items():
            if some:
                kernel = compiled(
                    sgd_fused, momentum=momentum, dampening=group["dampening"],
                    weight_decay=group["weight_decay"],
                    nesterov=group["nesterov"], maximize=group["maximize"],
                    first_step=first_step)
                run_in_chunks(kernel, some, learning_rate(group))
