r"""MARS: a STORM-style variance-reduced gradient, then AdamW's, Lion's or
Muon's step (Yuan et al., "MARS: Unleashing the Power of Variance Reduction
for Training Large Models", ICML 2025), as its authors define it in
``MARS/optimizers/mars.py`` of github.com/AGI-Arena/MARS."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from ._validation import check_betas, check_greater, check_non_negative, invalid
from .muon import zeropower_via_newtonschulz
from .optimizer import Optimizer, evaluate

MARS_TYPES = ("mars-adamw", "mars-lion", "mars-shampoo")


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
    eps: float,
    weight_decay: float,
    mars_type: str,
    corrected: bool,
) -> None:
    r"""One MARS step on one tensor, in place (the paper's Algorithm 2,
    MARS-approx, in the authors' order of operations). ``corrected`` is
    False for the tensors that take the plain AdamW path (all but the 2-D
    ones unless ``optimize_1d``), called with their own rate, betas and
    :math:`\lambda`.

    .. math::

        c_t &= g_t + \gamma\tfrac{\beta_1}{1-\beta_1}\,(g_t - g_{t-1}), \\
        c_t &\leftarrow c_t / \max(1, \lVert c_t\rVert) \\
            &\quad (c_t = g_t \text{ on the AdamW path}) \\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, c_t \\
        &\text{AdamW:} \\
        v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, c_t^2, \\
        u_t &= \frac{m_t/(1-\beta_1^t)}{\sqrt{v_t/(1-\beta_2^t)} + \epsilon} \\
        &\text{Lion:} \\
        u_t &= \operatorname{sign}(m_t) \\
        &\text{Shampoo (2-D):} \\
        u_t &= \sqrt{\max(1, r/c)}\; \operatorname{NS}\!\big(m_t/(1-\beta_1)\big) \\
        \theta_t &= \theta_{t-1} - \eta\,(\lambda\,\theta_{t-1} + u_t)

    :math:`\epsilon` is added after the bias correction, as in Adam.
    :math:`g_{t-1}` is ``last_grad``: the previous step's gradient in
    MARS-approx, 0 at the first step. NS is
    :func:`~optedu.optim.muon.zeropower_via_newtonschulz` with
    :math:`\epsilon` as its floor; :math:`r \times c` is the matrix's shape.
    """
    if corrected:
        # c_t = g_t + γ β1/(1-β1) (g_t - g_{t-1}), clipped to norm 1
        c = (grad - last_grad).mul_(gamma * (beta1 / (1.0 - beta1))).add_(grad)
        norm = torch.norm(c)
        if norm > 1.0:
            c.div_(norm)
    else:
        c = grad                                           # the AdamW path: c_t = g_t
    exp_avg.mul_(beta1).add_(c, alpha=1.0 - beta1)         # m_t = β1 m + (1-β1) c_t
    if corrected and mars_type == "mars-lion":
        update = exp_avg.sign()                            # u_t = sign(m_t)
    elif corrected and mars_type == "mars-shampoo" and param.ndim == 2:
        scale = max(1.0, param.size(0) / param.size(1)) ** 0.5
        ortho = zeropower_via_newtonschulz(exp_avg.mul(1.0 / (1.0 - beta1)), eps=eps)
        update = ortho.to(param.dtype).mul_(scale)         # u_t = √max(1, r/c) NS(m/(1-β1))
    else:
        exp_avg_sq.mul_(beta2).addcmul_(c, c, value=1.0 - beta2)  # v = β2 v + (1-β2) c²
        second = exp_avg_sq
        if max_exp_avg_sq is not None:
            torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
            second = max_exp_avg_sq
        denom = second.sqrt().mul_(1.0 / math.sqrt(1.0 - beta2**step))  # √v̂
        denom.add_(eps).mul_(1.0 - beta1**step)            # (√v̂ + ε)(1-β1^t)
        update = exp_avg.div(denom)                        # u = m̂ / (√v̂ + ε)
    param.add_(param.mul(weight_decay).add_(update).mul_(-lr))  # θ - η(λθ + u_t)


class MARS(Optimizer):
    r"""MARS (Yuan et al., ICML 2025) with the arguments, defaults and state
    keys of the authors' ``MARS`` class (``MARS/optimizers/mars.py``).

    Exactly 2-D tensors take the corrected step; every other tensor (biases,
    norms, convolution kernels, scalars) takes plain AdamW with ``lr_1d``,
    ``betas_1d`` and ``weight_decay_1d``, unless ``optimize_1d``.

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: learning rate :math:`\eta` of the corrected tensors (default ``3e-3``).
        betas: :math:`(\beta_1, \beta_2)` (default ``(0.95, 0.99)``).
        eps: :math:`\epsilon`, added after the bias correction (default
            ``1e-8``; the floor of the Newton–Schulz norm in ``"mars-shampoo"``).
        weight_decay: :math:`\lambda` of the corrected tensors, decoupled
            (default ``0``).
        amsgrad: divide by the running maximum of :math:`v` (default ``False``).
        gamma: :math:`\gamma`, the strength of the correction (default
            ``0.025``; 0 gives AdamW or Lion on the clipped gradient).
        is_approx: MARS-approx, the previous step's gradient as
            :math:`g_{t-1}` (default ``True``). ``False``: the exact form; the
            caller stores the old point's gradient on the new batch with
            :meth:`update_previous_grad` and moves it into ``last_grad`` with
            :meth:`update_last_grad`.
        mars_type: ``"mars-adamw"`` (default), ``"mars-lion"`` or
            ``"mars-shampoo"``: the step taken on the corrected momentum
            (Shampoo's acts on 2-D tensors; other corrected ones take AdamW's).
        optimize_1d: correct every tensor (default ``False``).
        lr_1d: the other tensors' rate (default ``3e-3``); stored as
            ``lr_1d_factor = lr_1d / lr`` and applied as ``lr * lr_1d_factor``,
            so it follows a scheduled ``lr``.
        betas_1d: their betas (default ``(0.9, 0.95)``).
        weight_decay_1d: their :math:`\lambda` (default ``0.1``).

    State per parameter: ``step`` (a Python int), ``exp_avg``, ``exp_avg_sq``
    (allocated by every form, used by AdamW's), ``last_grad``, with
    ``amsgrad`` ``max_exp_avg_sq``, and in the exact form ``previous_grad``.

    Differences from the authors' class: every setting is a group key
    (``lr_1d`` as ``lr_1d_factor``; a group's ``lr_1d`` is refused, as theirs
    would ignore it), so a group may set its own ``gamma``,
    ``eps``, ``mars_type``, ... (theirs reads those from the constructor and
    only ``lr``, ``betas``, ``weight_decay`` and ``amsgrad`` from a group;
    with groups that set only these the two agree); ``last_grad`` is a copy
    of the gradient, not the gradient tensor itself, so a gradient written
    in place (``zero_grad(set_to_none=False)``) does not overwrite it, which
    in theirs cancels the correction; ``lr=0`` is refused (theirs divides by
    it); complex parameters are refused; the Newton–Schulz iteration is
    Muon's (the norm taken in bfloat16, a floor instead of an added
    :math:`\epsilon`), not the authors' compiled copy, so the Shampoo form
    agrees with theirs only to bfloat16 rounding.

    Where ``pytorch_optimizer.MARS`` 4.1.0 differs: it corrects every tensor
    of two or more dimensions (its ``"adamw"``), adds :math:`\epsilon` before
    the bias correction, :math:`(\sqrt{v_t + 10^{-15}} + \epsilon)/
    \sqrt{1-\beta_2^t}`, counts steps per group, not per parameter, has no
    exact form, and averages with ``lerp``. timm's ``Mars`` corrects every
    tensor of two or more dimensions too, takes :math:`c_1 = g_1`, and
    defaults to :math:`\beta = (0.9, 0.99)` for both paths.
    """

    supports_complex = False
    tensor_step = False      # the authors' state["step"] is a Python int
    # see ._sharding: a piece of a tensor would clip by the piece's norm
    refuses_shards = ("its correction is clipped by the norm of the whole tensor, and a "
                      "tensor's rank picks its rule")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 3e-3,
        betas: tuple[float, float] = (0.95, 0.99),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        gamma: float = 0.025,
        is_approx: bool = True,
        mars_type: str = "mars-adamw",
        optimize_1d: bool = False,
        lr_1d: float = 3e-3,
        betas_1d: tuple[float, float] = (0.9, 0.95),
        weight_decay_1d: float = 0.1,
    ) -> None:
        check_greater("lr", lr)
        check_non_negative("eps", eps)
        betas = check_betas(betas)
        for name, value in (("weight_decay", weight_decay), ("gamma", gamma),
                            ("lr_1d", lr_1d), ("weight_decay_1d", weight_decay_1d)):
            check_non_negative(name, value)
        if len(betas_1d) != 2 or not all(0.0 <= b < 1.0 for b in betas_1d):
            raise invalid("betas_1d", tuple(betas_1d), "two numbers in [0, 1)")
        if mars_type not in MARS_TYPES:
            raise invalid("mars_type", mars_type, "'mars-adamw', 'mars-lion' or 'mars-shampoo'")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, gamma=gamma, is_approx=is_approx,
                        mars_type=mars_type, optimize_1d=optimize_1d,
                        lr_1d_factor=lr_1d / lr, betas_1d=tuple(betas_1d),
                        weight_decay_1d=weight_decay_1d)
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """A group's ``lr_1d`` is refused: the rate is kept as ``lr_1d_factor``,
        which a group may set, so an ``lr_1d`` there would be ignored."""
        if "lr_1d" in param_group:
            raise invalid("lr_1d", param_group["lr_1d"],
                          "no lr_1d in a parameter group; set its lr_1d_factor, lr_1d / lr")
        super().add_param_group(param_group)

    @torch.no_grad()
    def step(self, closure=None):
        """One step; each parameter's ``step`` counts its own."""
        loss = evaluate(closure)
        for group, params in self.groups_with_gradients():
            for param in params:
                state = self.state[param]
                if "step" not in state:
                    state["step"] = 0
                    for name in ("exp_avg", "last_grad", "exp_avg_sq"):
                        state[name] = torch.zeros_like(param)
                    if group["amsgrad"]:
                        state["max_exp_avg_sq"] = torch.zeros_like(param)
                state["step"] += 1
                corrected = group["optimize_1d"] or param.ndim == 2
                if corrected:
                    lr, betas, decay = group["lr"], group["betas"], group["weight_decay"]
                else:
                    lr = group["lr"] * group["lr_1d_factor"]
                    betas, decay = group["betas_1d"], group["weight_decay_1d"]
                mars(param, param.grad, state["last_grad"], state["exp_avg"],
                     state["exp_avg_sq"], state.get("max_exp_avg_sq"), state["step"],
                     lr=lr, beta1=betas[0], beta2=betas[1], gamma=group["gamma"],
                     eps=group["eps"], weight_decay=decay, mars_type=group["mars_type"],
                     corrected=corrected)
                if group["is_approx"]:
                    state["last_grad"].copy_(param.grad)   # g_{t-1} for the next step
        return loss

    @torch.no_grad()
    def update_previous_grad(self) -> None:
        """The exact form: keep each gradient now in ``p.grad`` (the caller's
        old point on the new batch) as ``previous_grad``."""
        for group in self.param_groups:
            if group["is_approx"]:
                continue
            for param in group["params"]:
                if param.grad is not None:
                    state = self.state[param]
                    state.setdefault("previous_grad", torch.zeros_like(param))
                    state["previous_grad"].copy_(param.grad)

    @torch.no_grad()
    def update_last_grad(self) -> None:
        """The exact form: the next step's :math:`g_{t-1}` is ``previous_grad``."""
        for group in self.param_groups:
            if group["is_approx"]:
                continue
            for param in group["params"]:
                state = self.state[param]
                if "previous_grad" in state:
                    state.setdefault("last_grad", torch.zeros_like(param))
                    state["last_grad"].copy_(state["previous_grad"])
