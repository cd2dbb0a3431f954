r"""RMSProp: AdaGrad's accumulator replaced by an exponential moving average."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from ._validation import check_non_negative, check_tensor_lr
from .optimizer import Group, Optimizer, State, as_real, new_step_counter


def rmsprop(
    param: torch.Tensor,
    grad: torch.Tensor,
    square_avg: torch.Tensor,
    grad_avg: torch.Tensor | None,
    momentum_buffer: torch.Tensor | None,
    *,
    lr: float,
    alpha: float,
    eps: float,
    weight_decay: float,
    momentum: float,
    maximize: bool,
) -> None:
    r"""One RMSProp step on one tensor, in place.

    ``grad_avg`` is given when ``centered``, ``momentum_buffer`` when
    ``momentum > 0``.

    .. math::

        g_t &\leftarrow \pm\nabla f(\theta_{t-1}) + \lambda\,\theta_{t-1} \\
        v_t &\leftarrow \alpha\, v_{t-1} + (1-\alpha)\, g_t^2 \\
        \bar g_t &\leftarrow \alpha\, \bar g_{t-1} + (1-\alpha)\, g_t
            \quad\text{(centered only)} \\
        s_t &\leftarrow \sqrt{v_t - \bar g_t^2} + \epsilon
            \quad\text{(or } \sqrt{v_t} + \epsilon \text{ uncentered)} \\
        b_t &\leftarrow \mu\, b_{t-1} + g_t / s_t, \qquad
            \theta_t \leftarrow \theta_{t-1} - \eta\, b_t
            \quad\text{(momentum)} \\
        \theta_t &\leftarrow \theta_{t-1} - \eta\, g_t / s_t
            \quad\text{(no momentum)}

    :math:`\epsilon` is added *outside* the square root, as torch does. The
    average :math:`\bar g_t` is updated as a lerp,
    :math:`\bar g + (1-\alpha)(g - \bar g)`: the same number as the equation
    in exact arithmetic, and the same floating-point operations as torch,
    which matters because :math:`v_t - \bar g_t^2` can cancel catastrophically.

    A complex tensor is stepped as its real and imaginary parts:
    :func:`~optedu.optim.optimizer.as_real` after the weight decay, as torch does.
    """
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g.add(param, alpha=weight_decay)      # g_t = g_t + λ θ_{t-1}
    # a complex tensor: its real and imaginary parts, from here on (torch's order)
    param, g, square_avg, grad_avg, momentum_buffer = as_real(
        param, g, square_avg, grad_avg, momentum_buffer)
    square_avg.mul_(alpha).addcmul_(g, g, value=1 - alpha)
    #                                             v_t = α v_{t-1} + (1-α) g_t²
    if grad_avg is not None:
        grad_avg.lerp_(g, 1 - alpha)              # ḡ_t = α ḡ_{t-1} + (1-α) g_t
        denom = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
        #                                         √(v_t - ḡ_t²)
    else:
        denom = square_avg.sqrt()                 # √v_t
    denom.add_(eps)                               # s_t = √(·) + ε
    if momentum_buffer is not None:
        momentum_buffer.mul_(momentum).addcdiv_(g, denom)
        #                                         b_t = μ b_{t-1} + g_t / s_t
        param.add_(momentum_buffer, alpha=-lr)    # θ_t = θ_{t-1} - η b_t
    else:
        param.addcdiv_(g, denom, value=-lr)       # θ_t = θ_{t-1} - η g_t / s_t


class RMSprop(Optimizer):
    r"""RMSProp (Hinton, 2012; Graves, 2013 for ``centered``), a drop-in for
    ``torch.optim.RMSprop``.

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: learning rate :math:`\eta` (default ``1e-2``).
        alpha: smoothing constant :math:`\alpha` of the squared-gradient
            average (default ``0.99``).
        eps: :math:`\epsilon`, added after the square root (default ``1e-8``).
        weight_decay: L2 penalty :math:`\lambda`, added to the gradient
            (default ``0``).
        momentum: momentum :math:`\mu` applied to the scaled step
            (default ``0``).
        centered: divide by an estimate of the gradient's standard deviation
            instead of its root mean square (default ``False``).
        maximize: ascend instead of descend (default ``False``).

    State per parameter: ``step``, ``square_avg``, plus ``momentum_buffer``
    when ``momentum > 0`` and ``grad_avg`` when ``centered``.

    Differences from torch.optim.RMSprop: no ``capturable``, ``foreach`` or
    ``differentiable`` switches.
    """

    element_wise = True  # any piece of a tensor steps as the whole (._sharding)

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        maximize: bool = False,
    ) -> None:
        check_tensor_lr(lr)
        check_non_negative("lr", lr)
        check_non_negative("eps", eps)
        check_non_negative("momentum", momentum)
        check_non_negative("weight_decay", weight_decay)
        check_non_negative("alpha", alpha)
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps,
                        centered=centered, weight_decay=weight_decay,
                        maximize=maximize)
        super().__init__(params, defaults)

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        keep = torch.preserve_format
        state: State = {
            "step": new_step_counter(),
            "square_avg": torch.zeros_like(param, memory_format=keep),
        }
        if group["momentum"] > 0:
            state["momentum_buffer"] = torch.zeros_like(param,
                                                        memory_format=keep)
        if group["centered"]:
            state["grad_avg"] = torch.zeros_like(param, memory_format=keep)
        return state

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State,
               group: Group) -> None:
        state["step"] += 1
        rmsprop(param, grad, state["square_avg"],
                state["grad_avg"] if group["centered"] else None,
                state["momentum_buffer"] if group["momentum"] > 0 else None,
                lr=group["lr"], alpha=group["alpha"], eps=group["eps"],
                weight_decay=group["weight_decay"],
                momentum=group["momentum"], maximize=group["maximize"])
