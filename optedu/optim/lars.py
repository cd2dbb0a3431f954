r"""LARS: SGD with momentum whose step is rescaled, tensor by tensor, by the
trust ratio :math:`\|\theta\|/\|u\|`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from ._sharding import is_sharded, sum_of_squares
from ._validation import check_non_negative
from .optimizer import Group, Optimizer, State


def trust_ratio(param: torch.Tensor, update: torch.Tensor,
                trust_coefficient: float = 1.0, eps: float = 0.0) -> float:
    r""":math:`c\,\|\theta\|/(\|u\|+\epsilon)` over the whole tensor, or 1
    when either norm is 0 (a zero tensor still moves; a zero step is
    harmless). Shared by LARS and LAMB.

    On a sharded DTensor (FSDP2) the two norms are of the *whole* tensors:
    each rank sums the squares of its piece and one all-reduce of the two
    sums adds them (:func:`._sharding.sum_of_squares`); a norm of the piece
    alone would give each piece its own ratio, silently."""
    if is_sharded(param):
        sums = sum_of_squares(param, update)                   # ‖θ‖², ‖u‖²
        param_norm, update_norm = sums.sqrt().tolist()
    else:
        param_norm = torch.linalg.vector_norm(param).item()    # ‖θ‖
        update_norm = torch.linalg.vector_norm(update).item()  # ‖u‖
    if param_norm == 0 or update_norm == 0:
        return 1.0
    return trust_coefficient * param_norm / (update_norm + eps)


def lars(
    param: torch.Tensor,
    grad: torch.Tensor,
    momentum_buffer: torch.Tensor,
    *,
    lr: float,
    momentum: float,
    weight_decay: float,
    trust_coefficient: float,
    eps: float,
    nesterov: bool,
) -> None:
    r"""One LARS step on one tensor, in place (You et al., 2017, Algorithm 1,
    with the trust ratio as optax computes it).

    .. math::

        u_t &= g_t + \lambda\,\theta_{t-1} \\
        \rho_t &= c\,\frac{\|\theta_{t-1}\|}{\|u_t\| + \epsilon}
            \quad(\rho_t = 1 \text{ if a norm is } 0) \\
        b_t &\leftarrow \mu\, b_{t-1} + \eta\,\rho_t\, u_t \\
        \theta_t &\leftarrow \theta_{t-1} - b_t
            \quad\text{or, Nesterov,}\quad
            \theta_{t-1} - (\eta\,\rho_t\, u_t + \mu\, b_t)

    The learning rate sits *inside* the buffer, as in the paper and optax
    (torch.optim.SGD keeps it outside): a change of :math:`\eta` acts on the
    next steps only, not on the velocity already gathered.
    """
    u = grad.add(param, alpha=weight_decay) if weight_decay else grad
    rho = trust_ratio(param, u, trust_coefficient, eps)     # ρ_t = c‖θ‖/‖u‖
    local = u.mul(rho).mul_(lr)                             # η ρ_t u_t
    momentum_buffer.mul_(momentum).add_(local)      # b_t = μ b_{t-1} + ηρu
    if nesterov:
        param.sub_(local.add_(momentum_buffer, alpha=momentum))  # ηρu + μ b_t
    else:
        param.sub_(momentum_buffer)                         # θ_t = θ - b_t


class LARS(Optimizer):
    r"""LARS, layer-wise adaptive rate scaling (You, Gitman & Ginsburg,
    "Large Batch Training of Convolutional Networks", 2017), in
    torch.optim's style; the defaults are ``optax.lars``'s.

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: learning rate :math:`\eta` (no default).
        momentum: :math:`\mu` (default ``0.9``).
        weight_decay: :math:`\lambda`, added to the gradient before the trust
            ratio (default ``0``).
        trust_coefficient: :math:`c` (default ``0.001``).
        eps: :math:`\epsilon`, added to :math:`\|u\|` (default ``0``).
        nesterov: Nesterov momentum (default ``False``).

    State per parameter: ``momentum_buffer`` (:math:`b`, starts at 0).

    Mapping to ``optax.lars`` (0.2.8; the tests run it step for step):
    ``learning_rate``, ``weight_decay``, ``trust_coefficient``, ``eps``,
    ``momentum`` and ``nesterov`` map one to one; optax's buffer holds
    :math:`-b`. ``weight_decay_mask=False`` for a tensor is a parameter
    group with ``weight_decay=0``. ``trust_ratio_mask=False`` has no
    counterpart here: such a tensor takes optax's plain momentum step, which
    is ``optedu.SGD(lr, momentum, weight_decay=..., nesterov=...)`` up to
    rounding (tested), so put those tensors in an SGD.

    The paper's ratio is :math:`c\|\theta\|/(\|g\| + \lambda\|\theta\|)`;
    optax's and this one, :math:`c\|\theta\|/\|g + \lambda\theta\|`, is
    never smaller (triangle inequality; tested on a worked example).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        trust_coefficient: float = 0.001,
        eps: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        check_non_negative("lr", lr)
        check_non_negative("momentum", momentum)
        check_non_negative("weight_decay", weight_decay)
        check_non_negative("trust_coefficient", trust_coefficient)
        check_non_negative("eps", eps)
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay,
                        trust_coefficient=trust_coefficient, eps=eps,
                        nesterov=nesterov)
        super().__init__(params, defaults)

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        return {"momentum_buffer": torch.zeros_like(
            param, memory_format=torch.preserve_format)}

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State,
               group: Group) -> None:
        lars(param, grad, state["momentum_buffer"], lr=group["lr"],
             momentum=group["momentum"], weight_decay=group["weight_decay"],
             trust_coefficient=group["trust_coefficient"], eps=group["eps"],
             nesterov=group["nesterov"])
