r"""Adadelta: step sizes in the units of the parameters, from two running
averages of squares."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from ._validation import check_non_negative, check_tensor_lr, invalid
from .optimizer import Group, Optimizer, State, as_real, step_and_buffers


def adadelta(
    param: torch.Tensor,
    grad: torch.Tensor,
    square_avg: torch.Tensor,
    acc_delta: torch.Tensor,
    *,
    lr: float,
    rho: float,
    eps: float,
    weight_decay: float,
    maximize: bool,
) -> None:
    r"""One Adadelta step on one tensor, in place.

    .. math::

        g_t &\leftarrow \pm\nabla f(\theta_{t-1}) + \lambda\,\theta_{t-1} \\
        v_t &\leftarrow \rho\, v_{t-1} + (1-\rho)\, g_t^2 \\
        \Delta_t &\leftarrow \frac{\sqrt{u_{t-1} + \epsilon}}
            {\sqrt{v_t + \epsilon}}\, g_t \\
        u_t &\leftarrow \rho\, u_{t-1} + (1-\rho)\, \Delta_t^2 \\
        \theta_t &\leftarrow \theta_{t-1} - \eta\, \Delta_t

    :math:`v` is ``square_avg`` (squared gradients), :math:`u` is
    ``acc_delta`` (squared updates). :math:`\epsilon` sits *inside* both
    roots, as in Zeiler's paper; :math:`\eta = 1` is the paper's rule.

    A complex tensor is stepped as its real and imaginary parts:
    :func:`~optedu.optim.optimizer.as_real` on the gradient and the state after the
    weight decay; :math:`\Delta_t` is added back to the complex parameter, as
    torch does.
    """
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g.add(param, alpha=weight_decay)             # g_t = g_t + λ θ_{t-1}
    g, square_avg, acc_delta = as_real(g, square_avg, acc_delta)  # complex: two reals
    square_avg.mul_(rho).addcmul_(g, g, value=1 - rho)  # v_t = ρ v + (1-ρ) g_t²
    std = square_avg.add(eps).sqrt_()                   # √(v_t + ε)
    delta = acc_delta.add(eps).sqrt_()                  # √(u_{t-1} + ε)
    delta.div_(std).mul_(g)                             # Δ_t = √(u+ε)/√(v+ε)·g
    # u_t = ρ u_{t-1} + (1-ρ) Δ_t²
    acc_delta.mul_(rho).addcmul_(delta, delta, value=1 - rho)
    if param.is_complex():  # torch adds Δ_t back to the complex parameter
        delta = torch.view_as_complex(delta)
    param.add_(delta, alpha=-lr)                        # θ_t = θ_{t-1} - η Δ_t


class Adadelta(Optimizer):
    r"""Adadelta (Zeiler, arXiv 2012), a drop-in for ``torch.optim.Adadelta``.

    Matches torch 2.13.

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: :math:`\eta`, a multiplier on the update (default ``1.0``, the
            paper's rule, which has no learning rate).
        rho: :math:`\rho`, decay rate of both averages (default ``0.9``).
        eps: :math:`\epsilon`, inside both square roots (default ``1e-6``).
        weight_decay: L2 penalty :math:`\lambda`, added to the gradient
            (default ``0``).
        maximize: ascend instead of descend (default ``False``).

    State per parameter: ``step``, ``square_avg``, ``acc_delta``.

    Differences from torch.optim.Adadelta: no ``foreach``/``capturable``/
    ``differentiable``. The paper
    suggests :math:`\rho = 0.95`; torch's default is ``0.9``.
    """

    element_wise = True  # any piece of a tensor steps as the whole (._sharding)

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        *,
        maximize: bool = False,
    ) -> None:
        check_tensor_lr(lr)
        check_non_negative("lr", lr)
        if not 0.0 <= rho <= 1.0:  # torch accepts ρ = 1 (nothing moves)
            raise invalid("rho", rho)
        check_non_negative("eps", eps)
        check_non_negative("weight_decay", weight_decay)
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay,
                        maximize=maximize)
        super().__init__(params, defaults)

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        return step_and_buffers(param, "square_avg", "acc_delta")

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State,
               group: Group) -> None:
        state["step"] += 1
        adadelta(param, grad, state["square_avg"], state["acc_delta"],
                 lr=group["lr"], rho=group["rho"], eps=group["eps"],
                 weight_decay=group["weight_decay"],
                 maximize=group["maximize"])
