r"""NAdam: Adam whose first moment takes Nesterov's look-ahead."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from ._validation import check_adam_arguments, check_non_negative
from .optimizer import (Group, Optimizer, State, as_real, new_step_counter, zero_buffer,
                        scalar_dtype)


def nadam(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    mu_product: torch.Tensor,
    step: int,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    momentum_decay: float,
    decoupled_weight_decay: bool,
    maximize: bool,
) -> None:
    r"""One NAdam step on one tensor, in place; ``step`` counts from 1.

    ``mu_product`` is the scalar tensor :math:`\prod_{i\le t-1}\mu_i`, which
    this step multiplies by :math:`\mu_t` in place.

    .. math::

        g_t &\leftarrow \pm\nabla f(\theta_{t-1}) \\
            &\quad (+\,\lambda\theta_{t-1}, \text{ or} \\
            &\quad\ \theta_{t-1} \leftarrow (1-\eta\lambda)\theta_{t-1} \text{ decoupled}) \\
        \mu_t &\leftarrow \beta_1\bigl(1 - \tfrac12\, 0.96^{\,t\psi}\bigr), \\
        \mu_{t+1} &\leftarrow \beta_1\bigl(1 - \tfrac12\, 0.96^{\,(t+1)\psi}\bigr) \\
        m_t &\leftarrow \beta_1 m_{t-1} + (1-\beta_1)\, g_t \\
        v_t &\leftarrow \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2 \\
        \theta_t &\leftarrow \theta_{t-1} \\
            &\quad - \eta\, \frac{\begin{gathered}
            \textstyle (1-\mu_t)/(1-\prod_{i\le t}\mu_i)\; g_t \\
            \textstyle + \mu_{t+1}/(1-\prod_{i\le t+1}\mu_i)\; m_t\end{gathered}}
            {\sqrt{v_t/(1-\beta_2^t)} + \epsilon}

    :math:`\psi` is ``momentum_decay`` (Dozat's 0.004, i.e.
    :math:`0.96^{t/250}`). The numerator is Nesterov's look-ahead: the
    current gradient plus the momentum the *next* step will apply.

    A complex tensor is stepped as its real and imaginary parts:
    :func:`~optedu.optim.optimizer.as_real` before the weight decay, as torch does.
    """
    g = -grad if maximize else grad
    # a complex tensor: its real and imaginary parts, from here on (torch's order)
    param, g, exp_avg, exp_avg_sq = as_real(param, g, exp_avg, exp_avg_sq)
    bias_correction2 = 1 - beta2**step                # 1 - β2^t
    if weight_decay != 0:
        if decoupled_weight_decay:
            param.mul_(1 - lr * weight_decay)         # θ ← (1 - ηλ) θ
        else:
            g = g.add(param, alpha=weight_decay)      # g_t = g_t + λ θ_{t-1}
    # μ_t = β1 (1 - ½ 0.96^(tψ)), and μ_{t+1}: the momentum schedule
    mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
    mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
    mu_product *= mu                                  # Π_{i≤t} μ_i
    exp_avg.lerp_(g, 1 - beta1)                       # m_t = β1 m + (1-β1) g_t
    # v_t = β2 v_{t-1} + (1-β2) g_t²
    exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
    denom = exp_avg_sq.div(bias_correction2).sqrt()   # √v̂_t
    mu_product_next = mu_product.item() * mu_next     # Π_{i≤t+1} μ_i
    denom.add_(eps)                                   # √v̂_t + ε
    # θ -= η (1-μ_t)/(1-Π_{i≤t} μ_i) g_t / (√v̂_t + ε)
    param.addcdiv_(g, denom,
                   value=(-lr * (1.0 - mu) / (1.0 - mu_product.item())))
    # θ -= η μ_{t+1}/(1-Π_{i≤t+1} μ_i) m_t / (√v̂_t + ε)
    param.addcdiv_(exp_avg, denom,
                   value=(-lr * mu_next) / (1.0 - mu_product_next))


class NAdam(Optimizer):
    r"""NAdam (Dozat, ICLR workshop 2016), a drop-in for ``torch.optim.NAdam``.

    Matches torch 2.13.

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: learning rate :math:`\eta` (default ``2e-3``).
        betas: :math:`(\beta_1, \beta_2)` (default ``(0.9, 0.999)``).
        eps: :math:`\epsilon`, added after the square root (default ``1e-8``).
        weight_decay: :math:`\lambda` (default ``0``): an L2 term added to
            the gradient or, with ``decoupled_weight_decay=True``, a shrink of
            the weights by :math:`1-\eta\lambda` (NAdamW).
        momentum_decay: :math:`\psi` in the momentum schedule
            :math:`\mu_t` (default ``4e-3``).
        decoupled_weight_decay: AdamW's decay (default ``False``).
        maximize: ascend instead of descend (default ``False``).

    State per parameter: ``step``, ``mu_product`` (scalar tensors),
    ``exp_avg``, ``exp_avg_sq``.

    Differences from torch.optim.NAdam: no ``foreach``/``capturable``/
    ``differentiable``. As torch,
    :math:`m_t` averages with the constant :math:`\beta_1`; the schedule
    :math:`\mu_t` enters only the look-ahead weights.
    """

    element_wise = True  # any piece of a tensor steps as the whole (._sharding)

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        betas = check_adam_arguments(lr, eps, betas, weight_decay)
        check_non_negative("momentum_decay", momentum_decay)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay,
                        maximize=maximize)
        super().__init__(params, defaults)

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        return {"step": new_step_counter(),
                "mu_product": torch.tensor(1.0, dtype=scalar_dtype()),
                "exp_avg": zero_buffer(param), "exp_avg_sq": zero_buffer(param)}

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State,
               group: Group) -> None:
        state["step"] += 1
        beta1, beta2 = group["betas"]
        nadam(param, grad, state["exp_avg"], state["exp_avg_sq"],
              state["mu_product"], int(state["step"].item()),
              lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
              weight_decay=group["weight_decay"],
              momentum_decay=group["momentum_decay"],
              decoupled_weight_decay=group["decoupled_weight_decay"],
              maximize=group["maximize"])
