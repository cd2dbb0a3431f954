r"""Adamax as Kingma & Ba derive it: variants of :func:`optedu.adamax`.

Every form here is a *variant*, not what ``torch.optim.Adamax`` (and
therefore ``optedu.Adamax``) computes. The Adamax and NAdam chapter runs them
beside optedu's rules so that each difference is executed, not asserted.

- :func:`adam_p_norm` with finite ``p``: Kingma & Ba's generalisation of
  Adam's second moment to the :math:`L^p` norm (their section 7.1). With
  ``p = 2`` it is Adam with decay rate :math:`\beta_2^2`.
- :func:`adam_p_norm` with ``p = math.inf``: its limit, Kingma & Ba's
  Algorithm 2 (AdaMax) when ``eps = 0``, and Keras' ``Adamax`` when
  ``eps > 0`` (:math:`\epsilon` added to :math:`u_t` *after* the maximum,
  where torch adds it to :math:`|g_t|` inside the maximum).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from optedu.optim._validation import check_betas, check_non_negative, invalid
from optedu.optim.optimizer import Group, Optimizer, State, new_step_counter


def adam_p_norm(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_norm: torch.Tensor,
    step: int,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    p: float,
    eps: float,
) -> None:
    r"""VARIANT, not torch's rule: one step of Adam with an :math:`L^p`
    second moment on one tensor, in place; ``step`` counts from 1.

    Kingma & Ba (section 7.1) replace :math:`g^2` by :math:`|g|^p` and the
    decay rate by :math:`\beta_2^p`:
    :math:`v_t = \beta_2^p v_{t-1} + (1-\beta_2^p)|g_t|^p`. The state kept
    here is its :math:`p`-th root :math:`u_t = v_t^{1/p}` (``exp_norm``),
    which stays finite for any :math:`p`:

    .. math::

        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t \\
        u_t &= \bigl((\beta_2 u_{t-1})^p
            + (1-\beta_2^p)\,|g_t|^p\bigr)^{1/p} \\
        \theta_t &= \theta_{t-1} - \frac{\eta}{1-\beta_1^t}\,
            \frac{m_t}{u_t/(1-\beta_2^{pt})^{1/p} + \epsilon}

    For ``p = math.inf`` the recursion is its limit
    :math:`u_t = \max(\beta_2 u_{t-1}, |g_t|)` and the correction is 1
    (Algorithm 2 when ``eps = 0``; Keras' Adamax when ``eps > 0``).
    No weight decay or ``maximize``: only the convention differs from
    :func:`optedu.adamax`.
    """
    exp_avg.lerp_(grad, 1 - beta1)              # m_t = β1 m + (1-β1) g_t
    decayed = exp_norm.mul(beta2)               # β2 u_{t-1}
    if math.isinf(p):
        torch.maximum(decayed, grad.abs(), out=exp_norm)  # max(β2 u, |g|)
        correction = 1.0
    else:
        fresh = grad.abs() * (1 - beta2**p) ** (1 / p)  # (1-β2^p)^{1/p} |g|
        big = torch.maximum(decayed, fresh)     # scale out the larger term
        safe = torch.where(big > 0, big, torch.ones_like(big))
        # u_t = big · ((β2 u / big)^p + (fresh / big)^p)^{1/p}
        ratio = (decayed / safe).pow(p) + (fresh / safe).pow(p)
        exp_norm.copy_(big * ratio.pow(1 / p))
        correction = (1 - beta2 ** (p * step)) ** (1 / p)  # (1-β2^{pt})^{1/p}
    denom = exp_norm.div(correction).add_(eps)  # û_t + ε
    param.addcdiv_(exp_avg, denom, value=-lr / (1 - beta1**step))


class AdamPNorm(Optimizer):
    r"""VARIANT (for comparison only): Adam with the :math:`L^p` second
    moment of :func:`adam_p_norm`; ``p=math.inf`` is the paper's Adamax.

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: learning rate :math:`\eta` (default ``2e-3``).
        betas: :math:`(\beta_1, \beta_2)` (default ``(0.9, 0.999)``).
        p: the norm's order, ``p >= 1`` or ``math.inf`` (default ``inf``).
        eps: added to the corrected :math:`u_t` (default ``0``, the paper).

    State per parameter: ``step``, ``exp_avg``, ``exp_norm``.
    """

    def __init__(self, params: Iterable[Any], lr: float = 2e-3,
                 betas: tuple[float, float] = (0.9, 0.999),
                 p: float = math.inf, eps: float = 0.0) -> None:
        check_non_negative("lr", lr)
        check_non_negative("eps", eps)
        betas = check_betas(betas)
        if not p >= 1:
            raise invalid("p", p)
        super().__init__(params, dict(lr=lr, betas=betas, p=p, eps=eps))

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        return {"step": new_step_counter(),
                "exp_avg": torch.zeros_like(param),
                "exp_norm": torch.zeros_like(param)}

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State,
               group: Group) -> None:
        state["step"] += 1
        beta1, beta2 = group["betas"]
        adam_p_norm(param, grad, state["exp_avg"], state["exp_norm"],
                    int(state["step"].item()), lr=group["lr"], beta1=beta1,
                    beta2=beta2, p=group["p"], eps=group["eps"])
