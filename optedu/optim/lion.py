r"""Lion: the sign of an interpolated momentum, with decoupled weight
decay.

The rule in its two forms, one after the other: :func:`lion` on one tensor
and :func:`lion_fused`, compiled into one kernel per tensor by
:mod:`optedu.optim.fused`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from ._validation import check_betas, check_non_negative
from .fused import (FusedOptimizer, check_fused, compiled, flat, learning_rate,
                    run_in_chunks)
from .optimizer import Group, State


def lion(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    weight_decay: float,
) -> None:
    r"""One Lion step on one tensor, in place (Chen et al., 2023, Program 1).

    .. math::

        \theta_{t-1} &\leftarrow (1 - \eta\lambda)\,\theta_{t-1} \\
        c_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t \\
        \theta_t &\leftarrow \theta_{t-1} - \eta\,\operatorname{sign}(c_t) \\
        m_t &\leftarrow \beta_2 m_{t-1} + (1-\beta_2)\, g_t

    The step uses :math:`\beta_1`, the stored momentum :math:`\beta_2`:
    every coordinate moves by exactly :math:`\eta` (or 0 where
    :math:`c_t = 0`, since :math:`\operatorname{sign}(0) = 0`), plus the
    decay.
    """
    param.mul_(1 - lr * weight_decay)                   # θ ← (1 - ηλ) θ
    # c_t = β1 m_{t-1} + (1-β1) g_t
    c = exp_avg.clone().mul_(beta1).add_(grad, alpha=1 - beta1)
    param.add_(c.sign_(), alpha=-lr)                    # θ_t = θ - η sign(c_t)
    exp_avg.mul_(beta2).add_(grad, alpha=1 - beta2)  # m_t = β2 m + (1-β2) g_t


def lion_fused(param: Tensor, grad: Tensor, exp_avg: Tensor, lr: Tensor, *,
               beta1: float, beta2: float, weight_decay: float) -> None:
    r"""One Lion step on one tensor, in place: :func:`optedu.lion` with the
    learning rate a tensor. :math:`\eta\,\operatorname{sign}(c_t)` is exact,
    so the step rounds once, as the one-tensor rule's ``add_`` does."""
    param.mul_(1 - lr * weight_decay)                   # θ ← (1 - ηλ) θ
    # c_t = β1 m_{t-1} + (1-β1) g_t
    c = exp_avg.clone().mul_(beta1).add_(grad, alpha=1 - beta1)
    param.sub_(lr * c.sign())                           # θ_t = θ - η sign(c_t)
    exp_avg.mul_(beta2).add_(grad, alpha=1 - beta2)  # m_t = β2 m + (1-β2) g_t


class Lion(FusedOptimizer):
    r"""Lion, EvoLved Sign Momentum (Chen et al., "Symbolic Discovery of
    Optimization Algorithms", NeurIPS 2023), in torch.optim's style.

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: learning rate :math:`\eta` (default ``1e-4``).
        betas: :math:`(\beta_1, \beta_2)`: :math:`\beta_1` interpolates the
            step, :math:`\beta_2` decays the stored momentum (default
            ``(0.9, 0.99)``).
        weight_decay: :math:`\lambda`, decoupled: the weights shrink by
            :math:`1-\eta\lambda` each step (default ``0``).
        fused: ``True`` for the compiled path
            (:func:`lion_fused`, one pass over memory per
            tensor; an optedu switch, in the groups only when given).

    State per parameter: ``exp_avg`` (:math:`m`) only, half of Adam's.

    Differences from ``lion-pytorch`` (0.2.5, the reference the tests run):
    none in the update (bit-identical). Its ``decoupled_weight_decay=True``
    divides :math:`\lambda` by the ``lr`` given to its constructor, in every
    group (a group with its own rate included); here pass
    ``weight_decay=wd / lr`` with that ``lr`` instead. It asserts ``lr > 0`` and betas in
    :math:`[0, 1]`; optedu raises ``ValueError`` and takes betas in
    :math:`[0, 1)`, as torch.optim.Adam does.
    """

    element_wise = True  # any piece of a tensor steps as the whole (._sharding)

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
        *,
        fused: bool | None = None,
    ) -> None:
        check_non_negative("lr", lr)
        betas = check_betas(betas)
        check_non_negative("weight_decay", weight_decay)
        check_fused(fused)
        defaults = dict(lr=lr, betas=betas, weight_decay=weight_decay)
        if fused is not None:     # an optedu switch: lion-pytorch's groups lack it
            defaults["fused"] = fused
        super().__init__(params, defaults)

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        return {"exp_avg": torch.zeros_like(
            param, memory_format=torch.preserve_format)}

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State,
               group: Group) -> None:
        beta1, beta2 = group["betas"]
        lion(param, grad, state["exp_avg"], lr=group["lr"], beta1=beta1,
             beta2=beta2, weight_decay=group["weight_decay"])

    def update_fused(self, params: list[torch.Tensor], grads: list[torch.Tensor],
                     states: list[State], group: Group) -> None:
        beta1, beta2 = group["betas"]
        kernel = compiled(lion_fused, beta1=beta1, beta2=beta2,
                          weight_decay=group["weight_decay"])
        rows = [flat(param, grad, state["exp_avg"])
                for param, grad, state in zip(params, grads, states)]
        run_in_chunks(kernel, rows, learning_rate(group))
