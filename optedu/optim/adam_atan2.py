r"""Adam-atan2: Adam without :math:`\epsilon`, the division replaced by an arctangent
(Everett et al., 2024), as lucidrains' ``adam-atan2-pytorch`` builds it.

Adam's :math:`\hat m / (\sqrt{\hat v} + \epsilon)` has one constant with units: a fixed
:math:`\epsilon` swamps gradients that shrink as a layer widens, and a returning gradient
after a silence meets a :math:`\hat v` near 0. :math:`a\,\operatorname{atan2}(\hat m,
b\sqrt{\hat v})` equals :math:`(a/b)\,\hat m/\sqrt{\hat v}` where that ratio is small,
and saturates at :math:`\pm a\pi/2` where it is large: bounded, and the same for every
scale of the gradient.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from ._validation import check_interval, check_non_negative, invalid
from .cautious import SHARD_REFUSAL
from .optimizer import Group, Optimizer, State


def adam_atan2(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    param_init: torch.Tensor | None,
    *,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    a: float,
    b: float,
    weight_decay: float,
    regen_reg_rate: float,
    cautious_wd: bool,
    cautious_factor: float,
) -> None:
    r"""One Adam-atan2 step on one tensor, in place (``step`` counts from 1).

    .. math::

        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2 \\
        u_t &= \operatorname{atan2}\!\big(m_t/(1-\beta_1^t),\;
               b\sqrt{v_t/(1-\beta_2^t)}\big) \\
        \theta &\leftarrow (1-\eta\lambda)\,\theta - \eta\, a\, u_t

    With ``regen_reg_rate`` :math:`\rho` the weights first move toward their first value,
    :math:`\theta \leftarrow \theta + \eta\rho(\theta_0 - \theta)` (Kumar et al.'s
    regenerative regularisation, from the second step); ``cautious_factor`` scales the
    components of :math:`u_t` whose sign disagrees with :math:`g_t` (renormalised by the
    mask's mean), and ``cautious_wd`` decays only where :math:`u_t` and :math:`\theta`
    agree in sign.
    """
    if regen_reg_rate > 0 and param_init is not None:
        param.lerp_(param_init, lr * regen_reg_rate)
    exp_avg.lerp_(grad, 1.0 - beta1)                            # m_t
    exp_avg_sq.lerp_(grad * grad, 1.0 - beta2)                  # v_t
    bias1, bias2 = 1.0 - beta1**step, 1.0 - beta2**step
    den = exp_avg_sq.mul(b * b / bias2).sqrt_()                 # b √v̂
    update = exp_avg.mul(1.0 / bias1).atan2_(den)               # atan2(m̂, b √v̂)
    if cautious_factor < 1.0:
        agree = (update * grad) > 0
        scale = torch.where(agree, torch.ones_like(grad), cautious_factor)
        update *= scale / scale.mean().clamp(min=1e-5)
    if weight_decay > 0:
        mask: torch.Tensor | float = (update * param > 0).float() if cautious_wd else 1.0
        param.mul_(1.0 - lr * weight_decay * mask)             # (1 - ηλ) θ
    param.add_(update, alpha=-lr * a)                           # θ - η a u_t


class AdamAtan2(Optimizer):
    r"""Adam-atan2 (Everett et al., "Scaling Exponents Across Parameterizations and
    Optimizers", ICML 2024) with the arguments, defaults and state of
    ``adam-atan2-pytorch``'s ``AdamAtan2`` (0.4.1, the reference the tests run).

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: learning rate :math:`\eta` (default ``1e-4``).
        betas: :math:`(\beta_1, \beta_2)` (default ``(0.9, 0.99)``).
        weight_decay: :math:`\lambda`, decoupled: :math:`(1 - \eta\lambda)\theta` (default
            ``0``).
        regen_reg_rate: :math:`\rho`, pull toward the initial weights instead of 0 (default
            ``0``; not together with ``weight_decay``).
        decoupled_wd: divide ``weight_decay`` and ``regen_reg_rate`` of every group by the
            constructor's ``lr`` once, so the decay per step no longer scales with the rate
            (default ``False``).
        cautious_wd: decay only where the update and the weight agree in sign (default
            ``False``).
        cautious_factor: weight of the update's components that disagree in sign with the
            gradient, the rest renormalised (default ``1``: no masking; ``0`` zeroes them).
        a, b: the scale of the update and of :math:`\sqrt{\hat v}` inside the arctangent
            (defaults ``1.27`` and ``1``, the paper's).

    State per parameter: ``steps`` (a Python int, as the reference), ``exp_avg``,
    ``exp_avg_sq``, and ``param_init`` with ``regen_reg_rate``.

    Differences from the reference: it asserts (``AssertionError``); optedu raises
    ``ValueError`` naming the argument. It accepts :math:`\beta = 1`; optedu takes betas in
    :math:`[0, 1)` (a :math:`\beta_1 = 1` divides by zero in the bias correction).
    """

    supports_complex = False  # atan2 and the sign masks are real
    element_wise = True       # a piece of a tensor steps as the whole (._sharding) ...

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
        regen_reg_rate: float = 0.0,
        decoupled_wd: bool = False,
        cautious_wd: bool = False,
        cautious_factor: float = 1.0,
        a: float = 1.27,
        b: float = 1.0,
    ) -> None:
        if not (isinstance(lr, (int, float)) and lr > 0):
            raise invalid("lr", lr, "> 0")
        if len(betas) != 2 or not all(0.0 <= beta < 1.0 for beta in betas):
            raise invalid("betas", tuple(betas), "two values in [0, 1)")
        check_non_negative("weight_decay", weight_decay)
        check_non_negative("regen_reg_rate", regen_reg_rate)
        if weight_decay > 0 and regen_reg_rate > 0:
            raise invalid("regen_reg_rate", regen_reg_rate,
                          "0 when weight_decay > 0: one pulls toward 0, the other toward "
                          "the initial weights")
        check_interval("cautious_factor", cautious_factor, 0.0, 1.0)
        self._init_lr = lr
        self.decoupled_wd = decoupled_wd
        defaults = dict(lr=lr, betas=betas, a=a, b=b, weight_decay=weight_decay,
                        cautious_wd=cautious_wd, regen_reg_rate=regen_reg_rate,
                        cautious_factor=cautious_factor)
        super().__init__(params, defaults)
        if decoupled_wd:                      # the reference's: once, by the first lr
            for group in self.param_groups:
                group["weight_decay"] /= lr
                group["regen_reg_rate"] /= lr
        if any(group["cautious_factor"] < 1 for group in self.param_groups):
            # ... but the cautious mask is renormalised by its mean over the whole tensor
            self.element_wise, self.refuses_shards = False, SHARD_REFUSAL

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        state: State = {"steps": 0,
                        "exp_avg": torch.zeros_like(param.grad),   # type: ignore[arg-type]
                        "exp_avg_sq": torch.zeros_like(param.grad)}  # type: ignore[arg-type]
        if group["regen_reg_rate"] > 0:
            state["param_init"] = param.clone()
        return state

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State,
               group: Group) -> None:
        state["steps"] += 1
        beta1, beta2 = group["betas"]
        adam_atan2(param, grad, state["exp_avg"], state["exp_avg_sq"],
                   state.get("param_init"), step=state["steps"], lr=group["lr"],
                   beta1=beta1, beta2=beta2, a=group["a"], b=group["b"],
                   weight_decay=group["weight_decay"],
                   regen_reg_rate=group["regen_reg_rate"],
                   cautious_wd=group["cautious_wd"],
                   cautious_factor=group["cautious_factor"])
