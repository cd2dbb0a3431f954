r"""Averaged SGD: SGD with a decaying rate, plus a running average of the
iterates (Polyak–Ruppert averaging) kept beside the parameters."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from ._validation import check_non_negative, check_tensor_lr
from .optimizer import (Group, Optimizer, State, as_real, new_step_counter, scalar_dtype,
                        zero_buffer)


def asgd(
    param: torch.Tensor,
    grad: torch.Tensor,
    ax: torch.Tensor,
    eta: torch.Tensor,
    mu: torch.Tensor,
    step: float,
    *,
    lr: float,
    lambd: float,
    alpha: float,
    t0: float,
    weight_decay: float,
    maximize: bool,
) -> None:
    r"""One ASGD step on one tensor, in place; ``step`` is 1-based.

    .. math::

        \theta_t &\leftarrow (1 - \lambda\eta_t)\,\theta_{t-1}
            - \eta_t\, g_t \\
        \bar\theta_t &\leftarrow \bar\theta_{t-1}
            + \mu_t\,(\theta_t - \bar\theta_{t-1}) \\
        \eta_{t+1} &= \frac{\eta}{(1 + \lambda\eta\, t)^{\alpha}}, \qquad
        \mu_{t+1} = \frac{1}{\max(1,\ t - t_0)}

    :math:`\bar\theta` is ``ax``: a copy of :math:`\theta` through step
    :math:`t_0 + 2`, then the mean of :math:`\theta_{t_0+2}, \dots, \theta_t`.
    ``eta`` and ``mu`` are the scalar tensors of the state, updated in place
    for the next step; ``g`` has ``weight_decay`` added as an L2 term, and
    ``lambd`` also shrinks the weights by :math:`1 - \lambda\eta_t`.

    A complex tensor is stepped as its real and imaginary parts:
    :func:`~optedu.optim.optimizer.as_real` before the weight decay, as torch does.
    """
    g = -grad if maximize else grad
    g, param, ax = as_real(g, param, ax)              # complex: two reals (torch's order)
    if weight_decay != 0:
        g = g.add(param, alpha=weight_decay)          # g_t = g_t + wd θ_{t-1}
    eta_value = eta.item()
    param.mul_(1 - lambd * eta_value)                 # θ ← (1 - λ η_t) θ
    param.add_(g, alpha=-eta_value)                   # θ_t = θ - η_t g_t
    if mu.item() != 1:
        ax.add_(param.sub(ax).mul_(mu))               # θ̄_t = θ̄ + μ_t (θ_t - θ̄)
    else:
        ax.copy_(param)                               # μ_t = 1: θ̄_t = θ_t
    # the next step's rate and averaging weight, stored as torch stores them
    eta.copy_(torch.as_tensor(lr / ((1 + lambd * lr * step) ** alpha)))
    mu.copy_(torch.as_tensor(1 / max(1, step - t0)))


class ASGD(Optimizer):
    r"""Averaged SGD (Polyak & Juditsky, 1992), a drop-in for
    ``torch.optim.ASGD`` (torch 2.13).

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: :math:`\eta`, the initial rate (default ``1e-2``).
        lambd: :math:`\lambda`, the decay term of the rate schedule and a
            shrink of the weights by :math:`1 - \lambda\eta_t` each step
            (default ``1e-4``).
        alpha: :math:`\alpha`, the power of the rate's decay (default
            ``0.75``).
        t0: :math:`t_0`, the step after which averaging starts (default
            ``1e6``).
        weight_decay: L2 penalty added to the gradient (default ``0``).
        maximize: ascend instead of descend (default ``False``).

    State per parameter: ``step``, ``eta`` (the rate of the next step),
    ``mu`` (the averaging weight of the next step), ``ax`` (the average).
    The parameters themselves are the last iterate; to evaluate the average,
    copy ``ax`` into them.

    Differences from torch.optim.ASGD: no ``foreach``/``capturable``/
    ``differentiable``.
    """

    element_wise = True  # any piece of a tensor steps as the whole (._sharding)

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lambd: float = 1e-4,
        alpha: float = 0.75,
        t0: float = 1e6,
        weight_decay: float = 0,
        maximize: bool = False,
    ) -> None:
        check_tensor_lr(lr)
        check_non_negative("lr", lr)
        check_non_negative("weight_decay", weight_decay)
        defaults = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0,
                        weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        return {"step": new_step_counter(),
                "eta": torch.as_tensor(group["lr"], dtype=scalar_dtype()).clone(),
                "mu": torch.ones((), dtype=scalar_dtype()),
                "ax": zero_buffer(param)}

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State,
               group: Group) -> None:
        state["step"] += 1
        asgd(param, grad, state["ax"], state["eta"], state["mu"],
             state["step"].item(),
             lr=group["lr"], lambd=group["lambd"], alpha=group["alpha"],
             t0=group["t0"], weight_decay=group["weight_decay"],
             maximize=group["maximize"])
