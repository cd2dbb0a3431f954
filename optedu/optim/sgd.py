r"""Stochastic gradient descent with momentum, dampening, Nesterov look-ahead
and weight decay."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from ._validation import check_nesterov, check_non_negative, check_tensor_lr
from .foreach import check_foreach, sgd_foreach
from .fused import (FusedOptimizer, check_fused, compiled, flat, learning_rate,
                    run_in_chunks, sgd_fused)
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
            (:func:`optedu.optim.foreach.sgd_foreach`, same results bit for bit);
            ``None`` (default) or ``False``: the one-tensor :func:`sgd`.
        fused: ``True`` for the compiled path
            (:func:`optedu.optim.fused.sgd_fused`, one pass over memory per
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
