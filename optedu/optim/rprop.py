r"""Rprop: a step size per coordinate, grown or shrunk by the sign of the
gradient alone."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import torch

from ._sharding import local
from ._validation import check_non_negative, check_tensor_lr, invalid
from .optimizer import Group, Optimizer, State, as_real, new_step_counter, zero_buffer


def rprop(
    param: torch.Tensor,
    grad: torch.Tensor,
    prev: torch.Tensor,
    step_size: torch.Tensor,
    *,
    etaminus: float,
    etaplus: float,
    step_size_min: float,
    step_size_max: float,
    maximize: bool,
) -> None:
    r"""One Rprop step on one tensor, in place.

    .. math::

        s_t &\leftarrow \operatorname{sign}(g_t\, g_{t-1}) \\
        \Delta_t &\leftarrow \operatorname{clip}\bigl(\Delta_{t-1} \cdot
            \{\eta_+, \eta_-, 1\}[s_t], \\
            &\qquad \Delta_{\min}, \Delta_{\max}\bigr) \\
        g_t &\leftarrow 0 \quad\text{where } s_t < 0 \\
        \theta_t &\leftarrow \theta_{t-1} - \Delta_t \operatorname{sign}(g_t)

    ``prev`` holds :math:`g_{t-1}` (zeroed where the sign flipped, so the
    next step neither grows nor shrinks there); ``step_size`` holds
    :math:`\Delta`. The gradient's size never enters, only its sign.

    A complex tensor is stepped as its real and imaginary parts
    (:func:`~optedu.optim.optimizer.as_real`), each with its own step size, as torch
    does.
    """
    g = -grad if maximize else grad
    g, prev, param, step_size = as_real(g, prev, param, step_size)  # complex: two reals
    factor = g.mul(prev).sign()                   # +1 same sign, -1 flipped, 0
    factor[factor.gt(0)] = etaplus
    factor[factor.lt(0)] = etaminus
    factor[factor.eq(0)] = 1
    # Δ_t = clip(Δ_{t-1} · factor, Δ_min, Δ_max)
    step_size.mul_(factor).clamp_(step_size_min, step_size_max)
    g = g.clone(memory_format=torch.preserve_format)
    g[factor.eq(etaminus)] = 0                    # after a flip: no move now
    param.addcmul_(g.sign(), step_size, value=-1)  # θ_t = θ_{t-1} - Δ_t sign(g)
    prev.copy_(g)


class Rprop(Optimizer):
    r"""Rprop (Riedmiller & Braun, 1993), a drop-in for ``torch.optim.Rprop``
    (torch 2.13).

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: the first step size of every coordinate (default ``1e-2``).
        etas: :math:`(\eta_-, \eta_+)`, the factors that shrink a step after
            a sign flip and grow it while the sign holds (default
            ``(0.5, 1.2)``; need :math:`0 < \eta_- < 1 < \eta_+`).
        step_sizes: :math:`(\Delta_{\min}, \Delta_{\max})`, the clamp of
            the step sizes (default ``(1e-6, 50)``).
        maximize: ascend instead of descend (default ``False``).

    State per parameter: ``step``, ``prev``, ``step_size`` (filled with the
    group's ``lr`` when the parameter is first seen: a later change of
    ``lr`` does not reach it, as in torch).

    Differences from torch.optim.Rprop: no ``foreach``/``capturable``/
    ``differentiable``; a
    ``step_sizes`` pair whose minimum is negative or above its maximum is
    refused (torch takes it, and its clamp then pins every step size). torch's
    rule is the variant Igel and Hüsken (2000) call iRprop⁻: after a sign
    flip it shrinks the step, makes no move and forgets the gradient; the
    1993 rule also took the previous step back.
    """

    element_wise = True  # any piece of a tensor steps as the whole (._sharding)

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        etas: tuple[float, float] = (0.5, 1.2),
        step_sizes: tuple[float, float] = (1e-6, 50),
        *,
        maximize: bool = False,
    ) -> None:
        check_tensor_lr(lr)
        check_non_negative("lr", lr)
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")  # torch's
        if not 0.0 <= step_sizes[0] <= step_sizes[1]:  # torch accepts any pair
            raise invalid("step_sizes", tuple(step_sizes), "0 <= min <= max")
        defaults = dict(lr=lr, etas=etas, step_sizes=step_sizes,
                        maximize=maximize)
        super().__init__(params, defaults)

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        lr = group["lr"]
        # a complex entry is two real ones, each starting at lr (torch's complex(lr, lr))
        first = complex(lr, lr) if param.is_complex() else lr
        return {"step": new_step_counter(), "prev": zero_buffer(param),
                "step_size": torch.full_like(cast(torch.Tensor, param.grad), first)}

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State,
               group: Group) -> None:
        state["step"] += 1
        etaminus, etaplus = group["etas"]
        step_size_min, step_size_max = group["step_sizes"]
        # element-wise: a sharded DTensor steps its local piece (DTensor
        # refuses the masked in-place writes on the DTensor itself)
        rprop(local(param), local(grad), local(state["prev"]), local(state["step_size"]),
              etaminus=etaminus, etaplus=etaplus,
              step_size_min=step_size_min, step_size_max=step_size_max,
              maximize=group["maximize"])
