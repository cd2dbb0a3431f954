r"""LAMB: Adam's step with decoupled weight decay, rescaled tensor by tensor
by the trust ratio :math:`\|\theta\|/\|u\|`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from ._validation import check_adam_arguments
from .lars import trust_ratio
from .optimizer import Group, Optimizer, State, step_and_buffers


def lamb(
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
) -> None:
    r"""One LAMB step on one tensor, in place (You et al., 2020,
    Algorithm 2 with :math:`\phi` the identity, as optax computes it).

    ``step`` is the 1-based step number.

    .. math::

        m_t &\leftarrow \beta_1 m_{t-1} + (1-\beta_1)\, g_t \\
        v_t &\leftarrow \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2 \\
        u_t &= \frac{m_t/(1-\beta_1^t)}{\sqrt{v_t/(1-\beta_2^t)} + \epsilon}
            + \lambda\,\theta_{t-1} \\
        \theta_t &\leftarrow \theta_{t-1}
            - \eta\,\frac{\|\theta_{t-1}\|}{\|u_t\|}\, u_t
            \quad(\text{ratio } 1 \text{ if a norm is } 0)

    Every tensor therefore moves by :math:`\eta\|\theta\|` per step (when
    neither norm is 0), whatever the scale of its gradient.
    """
    exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)  # m_t = β1 m + (1-β1) g
    # v_t = β2 v_{t-1} + (1-β2) g_t²
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    m_hat = exp_avg / (1 - beta1**step)                 # m̂_t = m_t/(1-β1^t)
    v_hat = exp_avg_sq / (1 - beta2**step)              # v̂_t = v_t/(1-β2^t)
    u = m_hat.div_(v_hat.sqrt_().add_(eps))             # r_t = m̂/(√v̂ + ε)
    if weight_decay:
        u.add_(param, alpha=weight_decay)               # u_t = r_t + λ θ
    rho = trust_ratio(param, u)                         # ρ_t = ‖θ‖/‖u_t‖
    param.add_(u.mul_(rho), alpha=-lr)                  # θ_t = θ - η ρ_t u_t


class Lamb(Optimizer):
    r"""LAMB, layer-wise adaptive moments (You et al., "Large Batch
    Optimization for Deep Learning: Training BERT in 76 minutes", ICLR
    2020), in torch.optim's style; the defaults are ``optax.lamb``'s.

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: learning rate :math:`\eta` (no default).
        betas: :math:`(\beta_1, \beta_2)` (default ``(0.9, 0.999)``).
        eps: :math:`\epsilon`, added after the square root of the
            bias-corrected :math:`\hat v_t` (default ``1e-6``).
        weight_decay: :math:`\lambda`, added to Adam's ratio before the trust
            ratio (decoupled from the moments) (default ``0``).

    State per parameter: ``step``, ``exp_avg``, ``exp_avg_sq`` (Adam's keys).

    Mapping to ``optax.lamb`` (0.2.8; the tests run it step for step):
    ``learning_rate``, ``b1``/``b2`` (``betas``), ``eps`` and
    ``weight_decay`` map one to one; ``eps_root`` is 0 here (optax's
    default); ``mask=False`` for a tensor is a parameter group with
    ``weight_decay=0``. optax counts steps per optimizer, optedu per tensor,
    as torch does: the same count while every tensor gets a gradient.
    Unlike torch.optim.Adam, :math:`\epsilon` is added to
    :math:`\sqrt{v_t/(1-\beta_2^t)}`, not to
    :math:`\sqrt{v_t}/\sqrt{1-\beta_2^t}` (the same number up to rounding).
    There is no clipping of the trust ratio.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
    ) -> None:
        betas = check_adam_arguments(lr, eps, betas, weight_decay)
        defaults = dict(lr=lr, betas=betas, eps=eps,
                        weight_decay=weight_decay)
        super().__init__(params, defaults)

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        return step_and_buffers(param, "exp_avg", "exp_avg_sq")

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State,
               group: Group) -> None:
        state["step"] += 1
        beta1, beta2 = group["betas"]
        lamb(param, grad, state["exp_avg"], state["exp_avg_sq"],
             int(state["step"].item()), lr=group["lr"], beta1=beta1,
             beta2=beta2, eps=group["eps"],
             weight_decay=group["weight_decay"])
