r"""Adamax: Adam with the second moment replaced by a decaying maximum."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from ._validation import check_adam_arguments
from .optimizer import Group, Optimizer, State, as_real, step_and_buffers


def adamax(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_inf: torch.Tensor,
    step: int,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    maximize: bool,
) -> None:
    r"""One Adamax step on one tensor, in place; ``step`` counts from 1.

    .. math::

        g_t &\leftarrow \pm\nabla f(\theta_{t-1}) + \lambda\,\theta_{t-1} \\
        m_t &\leftarrow \beta_1 m_{t-1} + (1-\beta_1)\, g_t \\
        u_t &\leftarrow \max\bigl(\beta_2 u_{t-1},\; |g_t| + \epsilon\bigr) \\
        \theta_t &\leftarrow \theta_{t-1}
            - \frac{\eta}{1-\beta_1^t}\, \frac{m_t}{u_t}

    :math:`u_t` (``exp_inf``) is the limit :math:`p\to\infty` of Adam's
    :math:`\bigl(\beta_2^p v + (1-\beta_2^p)|g|^p\bigr)^{1/p}`, which needs
    no bias correction. Kingma & Ba's Algorithm 2 has no :math:`\epsilon`;
    torch adds it to :math:`|g_t|` inside the maximum, so :math:`u_t \ge
    \epsilon` and an all-zero gradient never divides by zero.

    A complex tensor is stepped as its real and imaginary parts:
    :func:`~optedu.optim.optimizer.as_real` after the weight decay, as torch does
    (so :math:`|g|` is taken per part, not as a modulus).
    """
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g.add(param, alpha=weight_decay)  # g_t = g_t + λ θ_{t-1}
    param, g, exp_avg, exp_inf = as_real(param, g, exp_avg, exp_inf)  # complex: two reals
    exp_avg.lerp_(g, 1 - beta1)               # m_t = β1 m_{t-1} + (1-β1) g_t
    # u_t = max(β2 u_{t-1}, |g_t| + ε)
    torch.maximum(exp_inf.mul_(beta2), g.abs().add_(eps), out=exp_inf)
    bias_correction = 1 - beta1**step         # 1 - β1^t
    clr = lr / bias_correction                # η / (1 - β1^t)
    param.addcdiv_(exp_avg, exp_inf, value=-clr)  # θ_t = θ_{t-1} - η̂ m_t/u_t


class Adamax(Optimizer):
    r"""Adamax (Kingma & Ba: arXiv 2014, ICLR 2015, section 7.1), a drop-in
    for ``torch.optim.Adamax``. Matches torch 2.13.

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: learning rate :math:`\eta` (default ``2e-3``, the paper's).
        betas: :math:`(\beta_1, \beta_2)`, decay rates of the first moment
            and of the maximum (default ``(0.9, 0.999)``).
        eps: :math:`\epsilon`, added to :math:`|g_t|` inside the maximum
            (default ``1e-8``).
        weight_decay: L2 penalty :math:`\lambda`, added to the gradient
            (default ``0``).
        maximize: ascend instead of descend (default ``False``).

    State per parameter: ``step``, ``exp_avg``, ``exp_inf``.

    Differences from torch.optim.Adamax: no ``foreach``/``capturable``/
    ``differentiable``.
    """

    element_wise = True  # any piece of a tensor steps as the whole (._sharding)

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        *,
        maximize: bool = False,
    ) -> None:
        betas = check_adam_arguments(lr, eps, betas, weight_decay)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        maximize=maximize)
        super().__init__(params, defaults)

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        return step_and_buffers(param, "exp_avg", "exp_inf")

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State,
               group: Group) -> None:
        state["step"] += 1
        beta1, beta2 = group["betas"]
        adamax(param, grad, state["exp_avg"], state["exp_inf"],
               int(state["step"].item()),
               lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
               weight_decay=group["weight_decay"], maximize=group["maximize"])
