r"""MARS: a STORM-style variance-reduced gradient, then AdamW's or Lion's step
(Yuan et al., "MARS: Unleashing the Power of Variance Reduction for
Training Large Models", ICML 2025)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from ._validation import check_betas, check_greater, check_non_negative, invalid
from .cautious import cautious_mask
from .optimizer import Optimizer, as_real

#: pytorch_optimizer's floor under the second moment, inside the square root
SQUARE_FLOOR = 1e-15
MARS_TYPES = ("adamw", "lion")


def mars(
    param: torch.Tensor,
    grad: torch.Tensor,
    last_grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    max_exp_avg_sq: torch.Tensor | None,
    step: int,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    gamma: float,
    mars_type: str,
    corrected: bool,
    cautious: bool,
    eps: float,
    weight_decay: float,
    weight_decouple: bool,
    fixed_decay: bool,
    maximize: bool,
) -> None:
    r"""One MARS step on one tensor, in place (the paper's Algorithm 2,
    MARS-approx, as pytorch_optimizer writes it). ``corrected`` is False for
    the 1-D tensors that take plain AdamW (``optimize_1d=False``).

    .. math::

        c_t &= g_t + \gamma\tfrac{\beta_1}{1-\beta_1}\,(g_t - g_{t-1}),
            \qquad c_t \leftarrow c_t / \max(1, \lVert c_t\rVert) \\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, c_t \\
        \text{AdamW:}\ \ v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, c_t^2,\quad
            u_t = \frac{m_t}{1-\beta_1^t}\Big/
            \frac{\sqrt{v_t + 10^{-15}} + \epsilon}{\sqrt{1-\beta_2^t}} \\
        \text{Lion:}\ \ u_t &= \operatorname{sign}(m_t) \\
        \theta_t &= (1-\eta\lambda)\,\theta_{t-1} - \eta\, u_t

    :math:`g_{t-1}` is the previous step's gradient (0 at the first step):
    the paper's exact form evaluates the old point on the *new* batch, which
    costs a second backward pass. ``cautious`` masks :math:`m_t` with
    :func:`~optedu.optim.cautious.cautious_mask` before dividing (or before
    the sign, which then drops the mask's rescaling).
    """
    g = -grad if maximize else grad
    if weight_decay != 0 and not weight_decouple:
        g = g.add(param, alpha=weight_decay)               # L2: g_t + λ θ (see the class)
    param, g, last_grad, exp_avg, exp_avg_sq, max_exp_avg_sq = as_real(
        param, g, last_grad, exp_avg, exp_avg_sq, max_exp_avg_sq)
    if corrected:
        # c_t = g_t + γ β1/(1-β1) (g_t - g_{t-1}), clipped to norm 1
        c = (g - last_grad).mul_(gamma * (beta1 / (1.0 - beta1))).add_(g)
        norm = torch.norm(c)
        if norm > 1.0:
            c.div_(norm)
    else:
        c = g                                              # the 1-D tensors: AdamW on g_t
    exp_avg.lerp_(c, 1.0 - beta1)                          # m_t = β1 m + (1-β1) c_t
    update = exp_avg.clone()
    if cautious:
        update.mul_(cautious_mask(update, g))              # m_t ∘ φ_t
    if corrected and mars_type == "lion":
        update.sign_()                                     # u_t = sign(m_t)
    else:
        exp_avg_sq.mul_(beta2).addcmul_(c, c, value=1.0 - beta2)  # v = β2 v + (1-β2) c²
        second = exp_avg_sq
        if max_exp_avg_sq is not None:
            torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
            second = max_exp_avg_sq
        denom = second.add(SQUARE_FLOOR).sqrt_().add_(eps)  # √(v + 1e-15) + ε
        denom.div_(math.sqrt(1.0 - math.pow(beta2, step))).mul_(1.0 - math.pow(beta1, step))
        update.div_(denom)                                 # u = m̂ / (√v̂ + ε)
    if weight_decay != 0 and weight_decouple:
        param.mul_(1.0 - weight_decay * (1.0 if fixed_decay else lr))  # θ ← (1-ηλ) θ
    param.add_(update, alpha=-lr)                          # θ_t = θ - η u_t
    last_grad.copy_(g)                                     # g_{t-1} for the next step


class MARS(Optimizer):
    r"""MARS (Yuan et al., ICML 2025) with the arguments, defaults, state and
    group keys of ``pytorch_optimizer.MARS`` 4.1.0.

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: learning rate :math:`\eta` of the corrected tensors (default ``3e-3``).
        betas: :math:`(\beta_1, \beta_2)` (default ``(0.95, 0.99)``).
        gamma: :math:`\gamma`, the strength of the correction (default
            ``0.025``; 0 gives AdamW or Lion on the clipped gradient).
        mars_type: ``"adamw"`` (default) or ``"lion"``: the step taken on the
            corrected momentum.
        optimize_1d: correct the 1-D tensors too (default ``False``: they
            take plain AdamW with ``lr_1d``, ``betas_1d``, ``weight_decay_1d``).
        lr_1d: the 1-D tensors' rate (default ``3e-3``); stored as
            ``lr_1d_factor = lr_1d / lr`` and applied as ``lr * lr_1d_factor``,
            so it follows a scheduled ``lr``.
        betas_1d: their betas (default ``(0.9, 0.95)``).
        weight_decay: :math:`\lambda` of the corrected tensors (default ``0``).
        weight_decay_1d: of the 1-D ones (default ``0.1``).
        weight_decouple: decoupled decay :math:`1-\eta\lambda` (default
            ``True``); ``False``: L2, :math:`\lambda\theta` added to the gradient.
        fixed_decay: decay by :math:`1-\lambda`, without :math:`\eta`.
        ams_bound: divide by the running maximum of :math:`v` (default ``False``).
        cautious: mask the coordinates where the momentum and the gradient
            disagree in sign (Liang et al. 2024; default ``False``).
        eps: :math:`\epsilon`, added to the root (default ``1e-8``).
        maximize: ascend instead of descend (default ``False``).

    State per parameter: ``exp_avg``, ``exp_avg_sq``, ``last_grad`` (and
    ``max_exp_avg_sq`` with ``ams_bound``), tensors like the parameter; the
    Lion form allocates ``exp_avg_sq`` too and never uses it, as the
    reference does. The step count is the group's ``step`` (an int).

    Differences from ``pytorch_optimizer.MARS`` 4.1.0 (bit-identical to its
    per-parameter path, ``foreach=False``): ``foreach`` and a tensor ``lr``
    are left out; ``mars_type="shampoo"`` is refused (its step is Muon's
    Newton–Schulz orthogonalisation, which :class:`~optedu.optim.muon.Muon`
    teaches); ``lr=0`` is refused (the reference divides by it). Its
    multi-tensor path (its CPU default) writes the correction's scalar as
    ``gamma * beta1 / (1 - beta1)``, so it differs from this in the last
    bits. Its ``weight_decouple=False`` adds :math:`\lambda\theta` to
    ``p.grad`` *after* the step, so the decay reaches only ``last_grad``;
    here it is L2 decay, as the name says, so that setting has no reference.
    """

    # see ._sharding: a piece of a tensor would clip by the piece's norm
    refuses_shards = ("its correction is clipped by the norm of the whole tensor, and a "
                      "tensor's rank picks its rule")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 3e-3,
        betas: tuple[float, float] = (0.95, 0.99),
        gamma: float = 0.025,
        mars_type: str = "adamw",
        optimize_1d: bool = False,
        lr_1d: float = 3e-3,
        betas_1d: tuple[float, float] = (0.9, 0.95),
        weight_decay: float = 0.0,
        weight_decay_1d: float = 1e-1,
        weight_decouple: bool = True,
        fixed_decay: bool = False,
        ams_bound: bool = False,
        cautious: bool = False,
        eps: float = 1e-8,
        maximize: bool = False,
    ) -> None:
        check_greater("lr", lr)
        check_non_negative("lr", lr_1d)
        betas, betas_1d = check_betas(betas), check_betas(betas_1d)
        if mars_type == "shampoo":
            raise ValueError("Invalid mars_type value: 'shampoo' (left out: its step is "
                             "Muon's orthogonalisation; use optedu.optim.muon.Muon)")
        if mars_type not in MARS_TYPES:
            raise invalid("mars_type", mars_type, "'adamw' or 'lion'")
        for name, value in (("gamma", gamma), ("weight_decay", weight_decay),
                            ("weight_decay_1d", weight_decay_1d), ("eps", eps)):
            check_non_negative(name, value)
        defaults = dict(lr=lr, lr_1d=lr_1d, lr_1d_factor=lr_1d / lr, betas=betas,
                        betas_1d=betas_1d, mars_type=mars_type, gamma=gamma,
                        optimize_1d=optimize_1d, weight_decay=weight_decay,
                        weight_decay_1d=weight_decay_1d, weight_decouple=weight_decouple,
                        fixed_decay=fixed_decay, ams_bound=ams_bound, cautious=cautious,
                        eps=eps, maximize=maximize)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        """One step; the group's ``step`` counts it."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.refuse_pieces()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            self.check_gradients(params)
            group["step"] = group.get("step", 0) + 1
            for param in params:
                state = self.state[param]
                if not state:
                    for name in ("exp_avg", "exp_avg_sq", "last_grad"):
                        state[name] = torch.zeros_like(param)
                    if group["ams_bound"]:
                        state["max_exp_avg_sq"] = torch.zeros_like(param)
                # the reference tests the real view's rank: a complex vector is corrected
                corrected = group["optimize_1d"] or as_real(param)[0].ndim >= 2
                if corrected:
                    lr, betas, decay = group["lr"], group["betas"], group["weight_decay"]
                else:
                    lr = group["lr"] * group["lr_1d_factor"]
                    betas, decay = group["betas_1d"], group["weight_decay_1d"]
                mars(param, param.grad, state["last_grad"], state["exp_avg"],
                     state["exp_avg_sq"], state.get("max_exp_avg_sq"), group["step"],
                     lr=lr, beta1=betas[0], beta2=betas[1], gamma=group["gamma"],
                     mars_type=group["mars_type"], corrected=corrected,
                     cautious=group["cautious"], eps=group["eps"], weight_decay=decay,
                     weight_decouple=group["weight_decouple"],
                     fixed_decay=group["fixed_decay"], maximize=group["maximize"])
        return loss
