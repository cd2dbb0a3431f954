r"""CAME: Adafactor with momentum, whose step is divided by a factored measure of how far the
update strays from that momentum (Luo et al., ACL 2023), as the authors' ``came-pytorch``
builds it.

Adafactor's factored second moment makes its update noisy; momentum smooths it. CAME keeps
the momentum :math:`m_t` of the clipped update :math:`\hat U_t` and, beside it, an average
of the *instability* :math:`(\hat U_t - m_t)^2`, factored as Adafactor factors
:math:`G_t^2` (:func:`optedu.optim.adafactor.factored_rsqrt`). Where the update keeps
agreeing with its momentum, the instability is small and the step long; where it does not,
the step shrinks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch

from ._validation import check_beta_tuple, check_greater, check_non_negative, invalid
from .adafactor import factored_rsqrt
from .optimizer import Group, Optimizer, State


def rms(tensor: torch.Tensor) -> torch.Tensor:
    r""":math:`\mathrm{RMS}(x) = \lVert x\rVert_2/\sqrt{n}`, a 0-d tensor (the authors' ``_rms``)."""
    return tensor.norm(2) / (tensor.numel() ** 0.5)


def came(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor | None,
    exp_avg_sq_row: torch.Tensor | None,
    exp_avg_sq_col: torch.Tensor | None,
    exp_avg_res_row: torch.Tensor | None,
    exp_avg_res_col: torch.Tensor | None,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    beta3: float,
    eps1: float,
    eps2: float,
    clip_threshold: float,
    weight_decay: float,
) -> None:
    r"""One CAME step on one tensor, in place.

    A tensor of two or more dimensions (factored over its last two; :math:`r, c` and
    :math:`P, Q` reduce the last and the second-to-last dimension by a mean):

    .. math::

        r_t &= \beta_2 r_{t-1}
            + (1-\beta_2)\,\mathrm{mean}_{\text{cols}}(G_t^2+\epsilon_1) \\
        c_t &= \beta_2 c_{t-1}
            + (1-\beta_2)\,\mathrm{mean}_{\text{rows}}(G_t^2+\epsilon_1) \\
        u_t &= G_t / \sqrt{r_t c_t / \mathrm{mean}(r_t)} \\
        \hat U_t &= u_t / \max(1, \mathrm{RMS}(u_t)/d) \\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1)\,\hat U_t \\
        I_t &= (\hat U_t - m_t)^2 + \epsilon_2 \\
        P_t &= \beta_3 P_{t-1} + (1-\beta_3)\,\mathrm{mean}_{\text{cols}}(I_t) \\
        Q_t &= \beta_3 Q_{t-1} + (1-\beta_3)\,\mathrm{mean}_{\text{rows}}(I_t) \\
        \theta_t &= (1-\eta\lambda)\,\theta_{t-1}
            - \eta\, m_t / \sqrt{P_t Q_t / \mathrm{mean}(P_t)}

    A vector keeps the full :math:`v_t = \beta_2 v_{t-1} + (1-\beta_2)(g_t^2+\epsilon_1)`,
    :math:`u_t = g_t/\sqrt{v_t}`, and steps by the momentum alone,
    :math:`\theta_t = (1-\eta\lambda)\theta_{t-1} - \eta\, m_t`: the authors' code keeps
    no instability for it. Neither average is bias-corrected, in the authors' code.
    """
    update = grad**2 + eps1                          # G² + ε1
    if grad.dim() > 1:
        r, c = exp_avg_sq_row, exp_avg_sq_col
        assert r is not None and c is not None
        r.mul_(beta2).add_(update.mean(dim=-1), alpha=1 - beta2)    # r_t
        c.mul_(beta2).add_(update.mean(dim=-2), alpha=1 - beta2)    # c_t
        update = factored_rsqrt(r, c).mul_(grad)     # u_t = G/√V̂_t
    else:
        assert exp_avg_sq is not None
        exp_avg_sq.mul_(beta2).add_(update, alpha=1 - beta2)        # v_t
        update = exp_avg_sq.rsqrt().mul_(grad)       # u_t = g/√v_t
    # Û_t = u_t / max(1, RMS(u_t)/d)
    update.div_((rms(update) / clip_threshold).clamp_(min=1.0))
    exp_avg.mul_(beta1).add_(update, alpha=1 - beta1)  # m_t
    if grad.dim() > 1:
        p, q = exp_avg_res_row, exp_avg_res_col
        assert p is not None and q is not None
        res = (update - exp_avg) ** 2 + eps2         # I_t = (Û_t - m_t)² + ε2
        p.mul_(beta3).add_(res.mean(dim=-1), alpha=1 - beta3)       # P_t
        q.mul_(beta3).add_(res.mean(dim=-2), alpha=1 - beta3)       # Q_t
        update = factored_rsqrt(p, q).mul_(exp_avg)  # m_t/√Ŝ_t
    else:
        update = exp_avg.clone()                     # a vector: m_t alone
    if weight_decay != 0:
        param.add_(param, alpha=-weight_decay * lr)  # θ ← (1 - ηλ) θ
    update.mul_(lr)
    param.add_(-update)                              # θ_t = θ - η m_t/√Ŝ_t


class CAME(Optimizer):
    r"""CAME (Luo et al., "CAME: Confidence-guided Adaptive Memory Efficient Optimization",
    ACL 2023) with the arguments, defaults and state of the authors' ``came-pytorch``
    (0.1.3, ``came_pytorch.CAME``, the reference the tests run).

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: learning rate :math:`\eta` (required: the authors' default ``None`` is refused).
        eps: :math:`(\epsilon_1, \epsilon_2)`, added to :math:`G_t^2` and to the
            instability (default ``(1e-30, 1e-16)``).
        clip_threshold: :math:`d`, the cap on the RMS of the update (default ``1.0``).
        betas: :math:`(\beta_1, \beta_2, \beta_3)`: the momentum, the second moment and
            the instability (default ``(0.9, 0.999, 0.9999)``).
        weight_decay: :math:`\lambda`, decoupled: the weights shrink by
            :math:`1-\eta\lambda` each step (default ``0``).

    State per parameter: ``step`` (a Python int), ``exp_avg`` and ``RMS`` (the weights'
    RMS before the step, a 0-d tensor the rule stores and never reads); for two or more
    dimensions ``exp_avg_sq_row``, ``exp_avg_sq_col``, ``exp_avg_res_row`` and
    ``exp_avg_res_col`` (the last, then the second-to-last dimension reduced); for a
    vector ``exp_avg_sq``. float16 and bfloat16 gradients are stepped in float32, as the
    authors' code does.

    Differences from ``came_pytorch.CAME``: it asserts ``lr > 0`` and betas in
    :math:`[0, 1]`; optedu raises ``ValueError`` naming the argument, takes betas in
    :math:`[0, 1)` (a :math:`\beta_2` or :math:`\beta_3` of 1 keeps its average at zero
    and divides by it), epsilons :math:`\ge 0` and a clipping threshold :math:`> 0`.
    Complex parameters are refused (the authors' code squares them as if real).
    A parameter sharded by FSDP2 is refused: the clip and the factors read whole tensors.
    """

    supports_complex = False
    tensor_step = False  # the authors' state["step"] is a Python int
    refuses_shards = ("its update clipping reads the RMS of the whole tensor, and its "
                      "factors the means of whole rows and columns")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | None = None,
        eps: tuple[float, float] = (1e-30, 1e-16),
        clip_threshold: float = 1.0,
        betas: tuple[float, float, float] = (0.9, 0.999, 0.9999),
        weight_decay: float = 0.0,
    ) -> None:
        check_greater("lr", lr)
        if (not isinstance(eps, Sequence) or len(eps) != 2
                or not all(e is not None and e == e and e >= 0 for e in eps)):
            raise invalid("eps", eps, "two numbers >= 0")
        check_greater("clip_threshold", clip_threshold)
        check_beta_tuple(betas, 3)
        check_non_negative("weight_decay", weight_decay)
        defaults = dict(lr=lr, eps=eps, clip_threshold=clip_threshold, betas=betas,
                        weight_decay=weight_decay)
        super().__init__(params, defaults)

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        grad = param.grad
        assert grad is not None
        if grad.dtype in (torch.float16, torch.bfloat16):
            grad = grad.float()                   # the authors' state follows the gradient
        shape = grad.shape
        state: State = {"step": 0, "exp_avg": torch.zeros_like(grad)}
        if grad.dim() > 1:
            for kind in ("sq", "res"):
                state[f"exp_avg_{kind}_row"] = grad.new_zeros(shape[:-1])
                state[f"exp_avg_{kind}_col"] = grad.new_zeros(shape[:-2] + shape[-1:])
        else:
            state["exp_avg_sq"] = torch.zeros_like(grad)
        state["RMS"] = 0
        return state

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State,
               group: Group) -> None:
        if grad.dtype in (torch.float16, torch.bfloat16):
            grad = grad.float()
        state["step"] += 1
        state["RMS"] = rms(param)
        beta1, beta2, beta3 = group["betas"]
        eps1, eps2 = group["eps"]
        came(param, grad, state["exp_avg"], state.get("exp_avg_sq"),
             state.get("exp_avg_sq_row"), state.get("exp_avg_sq_col"),
             state.get("exp_avg_res_row"), state.get("exp_avg_res_col"),
             lr=group["lr"], beta1=beta1, beta2=beta2, beta3=beta3, eps1=eps1, eps2=eps2,
             clip_threshold=group["clip_threshold"], weight_decay=group["weight_decay"])
