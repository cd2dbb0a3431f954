r"""Rprop as its papers write it: comparison variants of :func:`optedu.rprop`.

``torch.optim.Rprop`` (and so ``optedu.Rprop``) is the rule Igel and Hüsken
(2000) call iRprop⁻: after a sign flip it shrinks the step size, makes no
move, and forgets the gradient. The forms here are *variants*, named as Igel
and Hüsken name them; the Rprop chapter runs them beside optedu's rule.

- ``"rprop+"``: Riedmiller and Braun's 1993 rule, with *weight backtracking*:
  after a sign flip the previous move is taken back.
- ``"rprop-"``: no backtracking and no forgetting: after a flip the step is
  shrunk and taken at once, and the gradient is remembered.
- ``"irprop+"``: Igel and Hüsken's improvement: backtrack only where the sign
  flipped *and* the loss went up since the previous step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from optedu.optim._validation import invalid
from optedu.optim.optimizer import Group, Optimizer, State, zero_buffer

FORMS = ("rprop+", "rprop-", "irprop+")


def rprop_variant(
    param: torch.Tensor,
    grad: torch.Tensor,
    prev: torch.Tensor,
    step_size: torch.Tensor,
    prev_update: torch.Tensor,
    *,
    etaminus: float,
    etaplus: float,
    step_size_min: float,
    step_size_max: float,
    form: str,
    loss_increased: bool = False,
) -> None:
    r"""VARIANT, not torch's rule: one Rprop step on one tensor, in place, in
    the form ``form`` (one of :data:`FORMS`).

    With :math:`s_t = \operatorname{sign}(g_t\, g_{t-1})` and the step size
    :math:`\Delta_t = \operatorname{clip}(\Delta_{t-1}\{\eta_+, \eta_-, 1\}
    [s_t], \Delta_{\min}, \Delta_{\max})` (as torch), the move
    :math:`u_t = \theta_t - \theta_{t-1}` is

    .. math::

        &u_t = \\
        &\begin{cases}
            -u_{t-1} & s_t < 0 \\
            & \quad\text{and backtracking} \\
            0 & s_t < 0\text{,} \\
            & \quad\text{no backtracking} \\
            & \quad\text{(not rprop-)} \\
            -\Delta_t \operatorname{sign}(g_t) & \text{otherwise}
        \end{cases}

    "rprop+" always backtracks, "irprop+" only if ``loss_increased``,
    "rprop-" never, and moves by :math:`-\Delta_t \operatorname{sign}(g_t)`
    even after a flip. Where the sign flipped, "rprop+" and "irprop+" store
    :math:`g_t = 0` in ``prev`` (so the next step neither grows nor shrinks
    there); "rprop-" stores :math:`g_t`. ``prev_update`` holds :math:`u`.

    References: Riedmiller & Braun (1993), Igel & Hüsken (2000).
    """
    if form not in FORMS:
        raise invalid("form", form, f"one of {FORMS}")
    s = grad.mul(prev).sign()                     # +1 same sign, -1 flip, 0
    factor = s.clone()
    factor[s.gt(0)] = etaplus
    factor[s.lt(0)] = etaminus
    factor[s.eq(0)] = 1
    step_size.mul_(factor).clamp_(step_size_min, step_size_max)
    flip = s.lt(0)
    move = -grad.sign() * step_size               # u_t = -Δ_t sign(g_t)
    if form == "rprop-":
        prev.copy_(grad)
    else:
        back = form == "rprop+" or loss_increased
        undo = -prev_update if back else torch.zeros_like(move)
        move = torch.where(flip, undo, move)      # after a flip: undo or wait
        prev.copy_(torch.where(flip, 0.0, grad))  # and forget g_t
    param.add_(move)
    prev_update.copy_(move)


class RpropVariant(Optimizer):
    r"""VARIANT: an optimizer applying :func:`rprop_variant`.

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: the first step size :math:`\Delta_0` (default ``1e-2``, torch's).
        etas: :math:`(\eta_-, \eta_+)` (default ``(0.5, 1.2)``).
        step_sizes: :math:`(\Delta_{\min}, \Delta_{\max})` (default
            ``(1e-6, 50)``).
        form: one of :data:`FORMS`.

    "irprop+" needs the loss: ``step(closure)`` is then required, and the
    loss the closure returns is compared with the previous call's.
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-2,
                 etas: tuple[float, float] = (0.5, 1.2),
                 step_sizes: tuple[float, float] = (1e-6, 50), *,
                 form: str = "rprop+") -> None:
        if form not in FORMS:
            raise invalid("form", form, f"one of {FORMS}")
        super().__init__(params, dict(lr=lr, etas=etas,
                                      step_sizes=step_sizes, form=form))
        self._prev_loss: float | None = None
        self._loss_increased = False

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        return {"prev": zero_buffer(param), "prev_update": zero_buffer(param),
                "step_size": torch.full_like(param, group["lr"])}

    @torch.no_grad()
    def step(  # type: ignore[override]
        self, closure: Callable[[], float] | None = None
    ) -> float | None:
        loss, value = None, None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
            value = float(torch.as_tensor(loss).detach())
        elif any(g["form"] == "irprop+" for g in self.param_groups):
            raise ValueError("irprop+ needs step(closure): it compares losses")
        self._loss_increased = (value is not None and self._prev_loss is not None
                                and value > self._prev_loss)
        self._prev_loss = value
        super().step()
        return loss

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State,
               group: Group) -> None:
        etaminus, etaplus = group["etas"]
        step_size_min, step_size_max = group["step_sizes"]
        rprop_variant(param, grad, state["prev"], state["step_size"],
                      state["prev_update"], etaminus=etaminus, etaplus=etaplus,
                      step_size_min=step_size_min,
                      step_size_max=step_size_max, form=group["form"],
                      loss_increased=self._loss_increased)
