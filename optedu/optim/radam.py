r"""RAdam: Adam with the variance of its adaptive learning rate rectified."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from ._validation import check_adam_arguments
from .optimizer import Group, Optimizer, State, as_real, step_and_buffers


def radam(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    step: int,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled_weight_decay: bool,
    maximize: bool,
) -> None:
    r"""One RAdam step on one tensor, in place; ``step`` counts from 1.

    .. math::

        g_t &\leftarrow \pm\nabla f(\theta_{t-1}) \\
            &\quad (+\,\lambda\theta_{t-1}, \text{ or} \\
            &\quad\ \theta_{t-1} \leftarrow (1-\eta\lambda)\theta_{t-1} \text{ decoupled}) \\
        m_t &\leftarrow \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \\
        \hat m_t &= m_t / (1-\beta_1^t) \\
        v_t &\leftarrow \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2 \\
        \rho_\infty &= \frac{2}{1-\beta_2} - 1, \\
        \rho_t &= \rho_\infty - \frac{2t\,\beta_2^t}{1-\beta_2^t} \\
        \theta_t &\leftarrow \theta_{t-1} - \eta\, \hat m_t\,
            r_t\, \frac{\sqrt{1-\beta_2^t}}{\sqrt{v_t} + \epsilon} \\
            &\quad\text{if } \rho_t > 5, \\
        r_t &= \sqrt{\frac{(\rho_t-4)(\rho_t-2)\,\rho_\infty}
            {(\rho_\infty-4)(\rho_\infty-2)\,\rho_t}} \\
        \theta_t &\leftarrow \theta_{t-1} - \eta\, \hat m_t \\
            &\quad\text{otherwise (momentum SGD)}

    :math:`\rho_t` approximates the length of the simple moving average
    that :math:`v_t` stands for; while it is short, the variance of the
    adaptive rate is intractable and the step uses momentum alone.

    A complex tensor is stepped as its real and imaginary parts:
    :func:`~optedu.optim.optimizer.as_real` before the weight decay, as torch does.
    """
    g = -grad if maximize else grad
    # a complex tensor: its real and imaginary parts, from here on (torch's order)
    param, g, exp_avg, exp_avg_sq = as_real(param, g, exp_avg, exp_avg_sq)
    if weight_decay != 0:
        if decoupled_weight_decay:
            param.mul_(1 - lr * weight_decay)      # θ ← (1 - ηλ) θ
        else:
            g = g.add(param, alpha=weight_decay)   # g_t = g_t + λ θ_{t-1}
    exp_avg.lerp_(g, 1 - beta1)                    # m_t = β1 m + (1-β1) g_t
    # v_t = β2 v_{t-1} + (1-β2) g_t²
    exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
    bias_correction1 = 1 - beta1**step             # 1 - β1^t
    bias_correction2 = 1 - beta2**step             # 1 - β2^t
    m_hat = exp_avg / bias_correction1             # m̂_t = m_t / (1 - β1^t)
    rho_inf = 2 / (1 - beta2) - 1                  # ρ∞ = 2/(1-β2) - 1
    # ρ_t = ρ∞ - 2t β2^t / (1 - β2^t)
    rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
    if rho_t > 5.0:
        # r_t, the variance rectification
        rect = ((rho_t - 4) * (rho_t - 2) * rho_inf
                / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
        # l_t = √(1-β2^t) / (√v_t + ε), the adaptive rate; √v_t + ε is a
        # temporary freed at once, so no more than torch's memory is live
        adaptive_lr = (bias_correction2**0.5) / exp_avg_sq.sqrt().add_(eps)
        # θ_t = θ_{t-1} - η m̂_t l_t r_t
        param.add_(m_hat * lr * adaptive_lr * rect, alpha=-1.0)
    else:
        param.add_(m_hat * lr, alpha=-1.0)         # θ_t = θ_{t-1} - η m̂_t

class RAdam(Optimizer):
    r"""RAdam (Liu et al., ICLR 2020), a drop-in for ``torch.optim.RAdam``.

    Matches torch 2.13.

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: learning rate :math:`\eta` (default ``1e-3``).
        betas: :math:`(\beta_1, \beta_2)` (default ``(0.9, 0.999)``).
        eps: :math:`\epsilon`, added after the square root (default ``1e-8``).
        weight_decay: :math:`\lambda` (default ``0``): an L2 term added to
            the gradient or, with ``decoupled_weight_decay=True``, a shrink of
            the weights by :math:`1-\eta\lambda` (RAdamW).
        decoupled_weight_decay: AdamW's decay (default ``False``).
        maximize: ascend instead of descend (default ``False``).

    State per parameter: ``step``, ``exp_avg``, ``exp_avg_sq``.

    Differences from torch.optim.RAdam: no ``foreach``/``capturable``/
    ``differentiable``. Like torch,
    the rectified step starts when :math:`\rho_t > 5` and adds
    :math:`\epsilon` to :math:`\sqrt{v_t}`; the paper's Algorithm 2 has
    neither (its threshold is :math:`\rho_t > 4`, its rate
    :math:`\sqrt{(1-\beta_2^t)/v_t}`).
    """

    element_wise = True  # any piece of a tensor steps as the whole (._sharding)

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        decoupled_weight_decay: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        betas = check_adam_arguments(lr, eps, betas, weight_decay)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay,
                        maximize=maximize)
        super().__init__(params, defaults)

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        return step_and_buffers(param, "exp_avg", "exp_avg_sq")

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State,
               group: Group) -> None:
        state["step"] += 1
        beta1, beta2 = group["betas"]
        radam(param, grad, state["exp_avg"], state["exp_avg_sq"],
              int(state["step"].item()),
              lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
              weight_decay=group["weight_decay"],
              decoupled_weight_decay=group["decoupled_weight_decay"],
              maximize=group["maximize"])
