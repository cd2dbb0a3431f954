r"""LaProp: normalise the gradient by the second moment first, then take the
momentum of the normalised gradients (Adam does it the other way round)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from ._validation import check_betas, check_non_negative
from .cautious import SHARD_REFUSAL, cautious_mask
from .optimizer import Optimizer, as_real, evaluate

#: pytorch_optimizer's floor under the second moment, inside the square root
SQUARE_FLOOR = 1e-15


def laprop(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    exp_mean_avg_beta2: torch.Tensor | None,
    max_exp_avg_sq: torch.Tensor | None,
    step: int,
    *,
    lr: float,
    step_size: float,
    beta1: float,
    beta2: float,
    eps: float,
    use_centered: bool,
    weight_decay: float,
    weight_decouple: bool,
    fixed_decay: bool,
    maximize: bool,
    cautious: bool = False,
) -> None:
    r"""One LaProp step on one tensor, in place (Ziyin, Wang and Ueda, 2020,
    as pytorch_optimizer writes it).

    ``step`` is the 1-based step; ``step_size`` is :math:`1/c_t`, the inverse of
    the learning-rate-weighted bias correction of the momentum (``1`` if
    ``lr`` is 0); ``exp_mean_avg_beta2`` is given when centred,
    ``max_exp_avg_sq`` for the AMSGrad-style bound.

    .. math::

        v_t &\leftarrow \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2
            \quad(\text{centred: } v_t - \bar g_t^2,\
            \bar g_t = \beta_2\bar g_{t-1} + (1-\beta_2) g_t) \\
        d_t &= \big(\sqrt{v_t + 10^{-15}} + \epsilon\big)\big/\sqrt{1-\beta_2^t} \\
        m_t &\leftarrow \beta_1 m_{t-1} + (1-\beta_1)\,\eta_t\, g_t / d_t \\
        \theta_t &\leftarrow \theta_{t-1} - m_t / c_t,\qquad
        c_t = \beta_1 c_{t-1} + (1-\beta_1)\eta_t \text{ divided by } \eta_t

    then the decoupled decay :math:`\theta_t \leftarrow (1-\eta\lambda)\theta_t`
    (after the step, as the reference does). The learning rate sits inside
    the momentum, so a scheduled rate changes only new contributions.
    ``cautious`` steps :math:`m_t \odot \phi(m_t, g_t)`
    (:func:`~optedu.optim.cautious.cautious_mask`) and keeps :math:`m_t`.
    """
    g = -grad if maximize else grad
    if weight_decay != 0 and not weight_decouple:
        g = g.add(param, alpha=weight_decay)               # L2: g_t + λ θ (see the class)
    param, g, exp_avg, exp_avg_sq, exp_mean_avg_beta2, max_exp_avg_sq = as_real(
        param, g, exp_avg, exp_avg_sq, exp_mean_avg_beta2, max_exp_avg_sq)
    exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)  # v = β2 v + (1-β2) g²
    second = exp_avg_sq
    if exp_mean_avg_beta2 is not None:
        exp_mean_avg_beta2.lerp_(g, 1.0 - beta2)           # ḡ = β2 ḡ + (1-β2) g
        if use_centered:
            second = exp_avg_sq - exp_mean_avg_beta2.pow(2)  # v - ḡ²
    if max_exp_avg_sq is not None:
        torch.maximum(max_exp_avg_sq, second, out=max_exp_avg_sq)
        second = max_exp_avg_sq
    denom = second.add(SQUARE_FLOOR).sqrt_().add_(eps)    # √(v + 1e-15) + ε
    denom.div_(math.sqrt(1.0 - math.pow(beta2, step)))     # / √(1-β2^t)
    exp_avg.mul_(beta1).addcdiv_(g, denom, value=(1.0 - beta1) * lr)  # m = β1 m + (1-β1) η g/d
    update = exp_avg * cautious_mask(exp_avg, g) if cautious else exp_avg  # m_t (∘ φ_t)
    param.add_(update, alpha=-step_size)                   # θ -= m / c_t
    if weight_decay != 0 and weight_decouple:
        param.mul_(1.0 - weight_decay * (1.0 if fixed_decay else lr))  # θ ← (1-ηλ) θ


class LaProp(Optimizer):
    r"""LaProp (Ziyin, Wang and Ueda, "LaProp: Separating Momentum and
    Adaptivity in Adam", arXiv 2002.04839, 2020), with the arguments,
    defaults, state and group keys of ``pytorch_optimizer.LaProp``.

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: learning rate :math:`\eta` (default ``4e-4``).
        betas: :math:`(\beta_1, \beta_2)` (default ``(0.9, 0.999)``).
        centered: divide by the centred second moment :math:`v - \bar g^2`
            (default ``False``).
        steps_before_using_centered: steps during which the centred rule
            still divides by :math:`v` (default ``10``; kept on the
            optimizer, as the reference keeps it).
        weight_decay: :math:`\lambda` (default ``0``).
        weight_decouple: decay the weights by :math:`1-\eta\lambda` after the
            step (default ``True``); ``False``: L2, :math:`\lambda\theta`
            added to the gradient.
        fixed_decay: decay by :math:`1-\lambda`, without :math:`\eta`.
        ams_bound: divide by the running maximum of :math:`v` (default ``False``).
        eps: :math:`\epsilon`, added to the root (default ``1e-15``).
        maximize: ascend instead of descend (default ``False``).
        cautious: step only where the momentum and the gradient agree in
            sign, rescaled (Liang et al. 2024; default ``False``).

    State per parameter: ``exp_avg``, ``exp_avg_sq``, with ``centered``
    ``exp_mean_avg_beta2``, with ``ams_bound`` ``max_exp_avg_sq`` (tensors
    like the parameter), and ``exp_avg_lr_1``, ``exp_avg_lr_2`` (Python floats:
    the momentum's and the second moment's bias corrections, weighted by the
    rates seen). The step count is the group's ``step`` (an int).

    Differences from ``pytorch_optimizer.LaProp`` 4.1.0 (bit-identical to its
    per-parameter path): ``foreach`` and a tensor ``lr`` are left out
    (``cautious``, hidden in its ``**kwargs``, is an argument here). Its
    multi-tensor path (its CPU default) rounds the step size :math:`1/c_t` to
    float32, so float64 parameters differ from this in the last bits. Its
    ``weight_decouple=False`` adds :math:`\lambda\theta` to ``p.grad``
    *after* the step: the parameters move exactly as with ``weight_decay=0``
    (tested); here it is L2 decay, as the name says, so that setting has no
    reference. With ``cautious=True`` the
    step reads the whole tensor: it refuses FSDP2 shards, and is not for
    ``FlatZeroOptimizer`` (which checks the class, element-wise without it).
    """

    element_wise = True  # any piece of a tensor steps as the whole (._sharding)

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 4e-4,
        betas: tuple[float, float] = (0.9, 0.999),
        centered: bool = False,
        steps_before_using_centered: int = 10,
        weight_decay: float = 0.0,
        weight_decouple: bool = True,
        fixed_decay: bool = False,
        ams_bound: bool = False,
        eps: float = 1e-15,
        *,
        maximize: bool = False,
        cautious: bool = False,
    ) -> None:
        check_non_negative("lr", lr)
        betas = check_betas(betas)
        check_non_negative("weight_decay", weight_decay)
        check_non_negative("eps", eps)
        self.steps_before_using_centered = steps_before_using_centered
        defaults = dict(lr=lr, betas=betas, centered=centered, weight_decay=weight_decay,
                        weight_decouple=weight_decouple, fixed_decay=fixed_decay,
                        ams_bound=ams_bound, eps=eps, maximize=maximize)
        if cautious:  # a group key only when set, as the reference's **kwargs make it
            defaults["cautious"] = True
            # the mask reads the whole tensor: no longer element-wise (._sharding)
            self.element_wise, self.refuses_shards = False, SHARD_REFUSAL
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        """One step; the group's ``step`` counts it."""
        loss = evaluate(closure)
        for group, params in self.groups_with_gradients():
            group["step"] = group.get("step", 0) + 1
            beta1, beta2 = group["betas"]
            lr = group["lr"]
            for param in params:
                state = self.state[param]
                if not state:
                    state.update(exp_avg=torch.zeros_like(param),
                                 exp_avg_sq=torch.zeros_like(param),
                                 exp_avg_lr_1=0.0, exp_avg_lr_2=0.0)
                    if group["centered"]:
                        state["exp_mean_avg_beta2"] = torch.zeros_like(param)
                    if group["ams_bound"]:
                        state["max_exp_avg_sq"] = torch.zeros_like(param)
                # c_t η_t = β1 c_{t-1} η_{t-1} + (1-β1) η_t: the rates the momentum holds
                state["exp_avg_lr_1"] = state["exp_avg_lr_1"] * beta1 + (1.0 - beta1) * lr
                state["exp_avg_lr_2"] = state["exp_avg_lr_2"] * beta2 + (1.0 - beta2)
                correction = state["exp_avg_lr_1"] / lr if lr != 0.0 else 1.0
                laprop(param, param.grad, state["exp_avg"], state["exp_avg_sq"],
                       state.get("exp_mean_avg_beta2"), state.get("max_exp_avg_sq"),
                       group["step"], lr=lr, step_size=1.0 / correction, beta1=beta1,
                       beta2=beta2, eps=group["eps"],
                       use_centered=group["step"] > self.steps_before_using_centered,
                       weight_decay=group["weight_decay"],
                       weight_decouple=group["weight_decouple"],
                       fixed_decay=group["fixed_decay"], maximize=group["maximize"],
                       cautious=group.get("cautious", False))
        return loss
