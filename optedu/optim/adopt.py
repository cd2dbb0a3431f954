r"""ADOPT: Adam that normalises the gradient by the *previous* second moment,
then takes the momentum, so that it converges for any :math:`\beta_2`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from ._validation import check_betas, check_non_negative
from .optimizer import Group, Optimizer, State, as_real, step_and_buffers


def adopt(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    step: float,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    clip: float | None,
    weight_decay: float,
    decouple: bool,
    maximize: bool,
) -> None:
    r"""One ADOPT step on one tensor, in place (Taniguchi et al., 2024: ADOPT
    with its clipping of the normalised gradient).

    ``step`` counts the steps taken before this one (0 on the first call);
    ``clip`` is :math:`c_t` (``None``: no clipping, the paper's first form).

    .. math::

        g_t &\leftarrow \pm\nabla f(\theta_{t-1}) \\
            &\quad (+\,\lambda\theta_{t-1} \text{ unless decoupled}) \\
        t = 0:\quad v_0 &\leftarrow g_0^2 \\
            &\quad\text{(no move; } m_0 = 0) \\
        t \ge 1:\quad \theta_{t-1} &\leftarrow (1 - \eta\lambda)\,\theta_{t-1} \\
            &\quad\text{(decoupled)} \\
        m_t &\leftarrow \beta_1 m_{t-1} + (1-\beta_1)\, \\
            &\quad \operatorname{clip}\!\Big(\frac{g_t}{\max(\sqrt{v_{t-1}},\,
            \epsilon)},\, c_t\Big) \\
        \theta_t &\leftarrow \theta_{t-1} - \eta\, m_t \\
        v_t &\leftarrow \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2

    The second moment that divides :math:`g_t` holds only earlier gradients,
    so the step is not correlated with its own scale (the cause of Adam's
    non-convergence, Reddi et al. 2018), and the momentum averages
    normalised gradients, not raw ones. A complex tensor is stepped as its
    real and imaginary parts, after the coupled decay, as torch-adopt does.
    """
    g = -grad if maximize else grad
    if weight_decay != 0 and not decouple:
        g = g.add(param, alpha=weight_decay)               # g_t + λ θ
    param, g, exp_avg, exp_avg_sq = as_real(param, g, exp_avg, exp_avg_sq)
    if step == 0:
        exp_avg_sq.addcmul_(g, g)                          # v_0 = g_0²
        return
    if weight_decay != 0 and decouple:
        param.add_(param, alpha=-lr * weight_decay)        # θ ← θ - ηλ θ
    denom = exp_avg_sq.sqrt().clamp_(min=eps)              # max(√v_{t-1}, ε)
    normed = g.div(denom)                                  # g_t / max(√v, ε)
    if clip is not None:
        normed.clamp_(-clip, clip)                         # clip to [-c_t, c_t]
    exp_avg.lerp_(normed, 1 - beta1)                       # m_t = β1 m + (1-β1) ĝ
    param.add_(exp_avg, alpha=-lr)                         # θ_t = θ - η m_t
    exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)  # v_t = β2 v + (1-β2) g²


def quarter_power(step: float) -> float:
    r"""The paper's clipping schedule :math:`c_t = t^{1/4}` (torch-adopt's
    default ``clip_lambda``)."""
    return step**0.25


class ADOPT(Optimizer):
    r"""ADOPT (Taniguchi et al., "ADOPT: Modified Adam Can Converge with Any
    :math:`\beta_2` with the Optimal Rate", NeurIPS 2024), with the
    arguments, defaults and state of its authors' package ``torch-adopt``.

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: learning rate :math:`\eta` (default ``1e-3``).
        betas: :math:`(\beta_1, \beta_2)` (default ``(0.9, 0.9999)``).
        eps: :math:`\epsilon`, a floor under :math:`\sqrt{v}` (default
            ``1e-6``).
        clip_lambda: :math:`c(t)`, called with the number of steps taken so
            far (a float, 1.0 on the second step); ``None`` turns clipping
            off (default :math:`t^{1/4}`).
        weight_decay: :math:`\lambda` (default ``0``).
        decouple: decay the weights directly (AdamW's way) instead of adding
            :math:`\lambda\theta` to the gradient (default ``False``).
        maximize: ascend instead of descend (default ``False``).

    State per parameter: ``step`` (a scalar tensor), ``exp_avg``
    (:math:`m`), ``exp_avg_sq`` (:math:`v`): Adam's keys and size.
    ``clip_lambda`` is kept on the optimizer, not in the groups, as
    torch-adopt keeps it (a checkpoint does not carry it).

    The first step of each tensor only records :math:`v_0 = g_0^2`: the
    parameter does not move (and is not decayed).

    Differences from ``torch-adopt`` 0.1.0 (the reference; bit-identical
    to its one-tensor path, which it takes on CPU): the flags ``foreach``,
    ``capturable``, ``differentiable`` and ``fused`` are left out; ``lr`` is
    a float.

    Differences from ``pytorch_optimizer.ADOPT`` 4.1.0 (tested too): it
    counts steps per group (``group["step"]``, 1 on the first step) and
    calls ``clip_lambda`` with that count, one more than here:
    ``clip_lambda=lambda s: (s + 1) ** 0.25`` here is its default, bit for
    bit. A tensor whose first gradient comes after the group's first step is
    divided at once by :math:`\max(\sqrt{0}, \epsilon)` there, and moves;
    here, as in torch-adopt, its first step records :math:`v_0`. Its
    ``weight_decouple=True`` multiplies by :math:`1-\eta\lambda` (here
    :math:`\theta - \eta\lambda\theta`: a last-bit difference) and decays on
    the first step too (here not); ``fixed_decay`` (decay without
    :math:`\eta`) has no counterpart. Its ``maximize`` negates ``p.grad`` in
    place, and its L2 decay adds to ``p.grad`` in place; here the gradient is
    left alone.
    """

    element_wise = True  # any piece of a tensor steps as the whole (._sharding)

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.9999),
        eps: float = 1e-6,
        clip_lambda: Callable[[float], float] | None = quarter_power,
        weight_decay: float = 0.0,
        decouple: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        check_non_negative("lr", lr)
        check_non_negative("eps", eps)
        betas = check_betas(betas)
        check_non_negative("weight_decay", weight_decay)
        self.clip_lambda = clip_lambda
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        decouple=decouple, maximize=maximize)
        super().__init__(params, defaults)

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        return step_and_buffers(param, "exp_avg", "exp_avg_sq")

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State,
               group: Group) -> None:
        step = state["step"].item()                  # steps before this one
        clip = (self.clip_lambda(step)
                if self.clip_lambda is not None and step > 0 else None)
        beta1, beta2 = group["betas"]
        adopt(param, grad, state["exp_avg"], state["exp_avg_sq"], step,
              lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
              clip=clip, weight_decay=group["weight_decay"],
              decouple=group["decouple"], maximize=group["maximize"])
        state["step"] += 1
