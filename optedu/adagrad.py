r"""AdaGrad: per-coordinate learning rates from the sum of squared gradients."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from ._validation import check_non_negative
from .optimizer import Group, Optimizer, State, new_step_counter


def adagrad(
    param: torch.Tensor,
    grad: torch.Tensor,
    state_sum: torch.Tensor,
    step: int,
    *,
    lr: float,
    lr_decay: float,
    weight_decay: float,
    eps: float,
    maximize: bool,
) -> None:
    r"""One AdaGrad step on one tensor, in place; ``step`` counts from 1.

    .. math::

        g_t &\leftarrow \pm\nabla f(\theta_{t-1}) + \lambda\,\theta_{t-1} \\
        \tilde\eta_t &\leftarrow \eta \,/\, \bigl(1 + (t-1)\,\delta\bigr) \\
        G_t &\leftarrow G_{t-1} + g_t^2 \\
        \theta_t &\leftarrow \theta_{t-1}
            - \tilde\eta_t\, g_t \,/\, \bigl(\sqrt{G_t} + \epsilon\bigr)

    with :math:`G_0` the ``initial_accumulator_value`` and :math:`\delta`
    the ``lr_decay``. Note :math:`\epsilon` sits *outside* the square root.
    """
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g.add(param, alpha=weight_decay)  # g_t = g_t + λ θ_{t-1}
    clr = lr / (1 + (step - 1) * lr_decay)  # η̃_t = η / (1 + (t-1) δ)
    state_sum.addcmul_(g, g, value=1)       # G_t = G_{t-1} + g_t²
    denom = state_sum.sqrt().add_(eps)      # √G_t + ε
    param.addcdiv_(g, denom, value=-clr)    # θ_t = θ_{t-1} - η̃_t g_t/(√G_t+ε)


class Adagrad(Optimizer):
    r"""AdaGrad (Duchi, Hazan & Singer, 2011), a drop-in for torch 2.13's
    ``torch.optim.Adagrad``.

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: learning rate :math:`\eta` (default ``1e-2``).
        lr_decay: :math:`\delta`, the rate is :math:`\eta/(1+(t-1)\delta)`
            (default ``0``).
        weight_decay: L2 penalty :math:`\lambda`, added to the gradient
            (default ``0``).
        initial_accumulator_value: :math:`G_0` (default ``0``).
        eps: :math:`\epsilon`, added after the square root (default ``1e-10``).
        maximize: ascend instead of descend (default ``False``).

    State per parameter: ``step``, ``sum``. Like torch, the state is created
    in the constructor for every parameter, so ``state_dict()`` lists it
    before the first step.

    Differences from torch.optim.Adagrad: dense gradients only; no
    ``foreach``/``fused`` switches.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
    ) -> None:
        check_non_negative("lr", lr)
        check_non_negative("lr_decay", lr_decay)
        check_non_negative("weight_decay", weight_decay)
        check_non_negative("initial_accumulator_value",
                           initial_accumulator_value)
        check_non_negative("eps", eps)
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps,
                        weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value,
                        maximize=maximize)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for param in group["params"]:
                self.state[param].update(self.init_state(param, group))

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        return {
            "step": new_step_counter(),
            "sum": torch.full_like(param, group["initial_accumulator_value"],
                                   memory_format=torch.preserve_format),
        }

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State,
               group: Group) -> None:
        state["step"] += 1
        adagrad(param, grad, state["sum"], int(state["step"].item()),
                lr=group["lr"], lr_decay=group["lr_decay"],
                weight_decay=group["weight_decay"], eps=group["eps"],
                maximize=group["maximize"])
