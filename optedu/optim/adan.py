r"""Adan: Adam's denominator over a Nesterov-style estimate, built from the gradient
and its change since the last step."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch

from ._validation import check_beta_tuple, check_non_negative, invalid
from .optimizer import Optimizer, as_real, evaluate


def adan(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_diff: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    previous_grad: torch.Tensor,
    step: int,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    beta3: float,
    eps: float,
    weight_decay: float,
    weight_decouple: bool,
    use_gc: bool = False,
    exp_grad_adanorm: torch.Tensor | None = None,
    adanorm_r: float = 0.95,
) -> None:
    r"""One Adan step on one tensor, in place (Xie et al., 2022, Algorithm 1, with
    the bias corrections and the decay of pytorch_optimizer's ``Adan``).

    ``grad`` is :math:`g_t`, already signed and clipped by the class;
    ``previous_grad`` holds :math:`-g_{t-1}` (the reference's layout) and
    receives :math:`-g_t`; ``step`` is :math:`t`, from 1.

    .. math::

        \Delta_t &= g_t - g_{t-1} \\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t \\
        v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, \Delta_t \\
        n_t &= \beta_3 n_{t-1} \\
            &\quad + (1-\beta_3)\, (g_t + \beta_2 \Delta_t)^2 \\
        d_t &= \sqrt{n_t / (1-\beta_3^t)} + \epsilon \\
        \theta_t &= \Big(\theta_{t-1} - \eta\,\frac{m_t}{(1-\beta_1^t)\, d_t} \\
            &\qquad - \eta\beta_2\,\frac{v_t}{(1-\beta_2^t)\, d_t}\Big)\Big/(1+\eta\lambda)

    ``weight_decouple=True`` instead multiplies :math:`\theta_{t-1}` by
    :math:`1-\eta\lambda` before the step. ``use_gc`` subtracts from
    :math:`g_t` its mean over every dimension but the first (gradient
    centralisation); ``exp_grad_adanorm`` (AdaNorm) keeps a running mean of
    :math:`\|g_t\|` with rate ``adanorm_r`` and lifts the gradient that the
    momentum :math:`m` averages to that norm when it falls below it.
    """
    param, grad, exp_avg, exp_avg_diff, exp_avg_sq, previous_grad = as_real(
        param, grad, exp_avg, exp_avg_diff, exp_avg_sq, previous_grad)
    if use_gc and grad.dim() > 1:                      # g - mean over dims 1..
        grad = grad - grad.mean(dim=tuple(range(1, grad.dim())), keepdim=True)
    diff = previous_grad.add(grad)                     # Δ_t = g_t - g_{t-1}
    moment = grad
    if exp_grad_adanorm is not None:                   # AdaNorm: ‖g‖ at least its average
        norm = torch.linalg.norm(grad)
        exp_grad_adanorm.mul_(adanorm_r).add_(norm, alpha=1.0 - adanorm_r)
        if norm > 0 and exp_grad_adanorm > norm:
            moment = grad.mul(exp_grad_adanorm.reshape(())).div_(norm)
    exp_avg.lerp_(moment, 1.0 - beta1)                 # m_t = β1 m + (1-β1) g_t
    exp_avg_diff.lerp_(diff, 1.0 - beta2)              # v_t = β2 v + (1-β2) Δ_t
    nesterov = diff.mul_(beta2).add_(grad)             # g_t + β2 Δ_t
    exp_avg_sq.mul_(beta3).addcmul_(nesterov, nesterov, value=1.0 - beta3)  # n_t
    bias3 = math.sqrt(1.0 - math.pow(beta3, step))
    denom = exp_avg_sq.sqrt().div_(bias3).add_(eps)    # d_t = √(n_t/(1-β3^t)) + ε
    if weight_decay != 0.0 and weight_decouple:
        param.mul_(1.0 - lr * weight_decay)            # θ ← (1-ηλ) θ
    bias1, bias2 = 1.0 - math.pow(beta1, step), 1.0 - math.pow(beta2, step)
    param.addcdiv_(exp_avg, denom, value=-lr / bias1)  # θ -= η m̂_t / d_t
    param.addcdiv_(exp_avg_diff, denom, value=-lr * beta2 / bias2)  # θ -= ηβ2 v̂_t / d_t
    if weight_decay != 0.0 and not weight_decouple:
        param.div_(1.0 + lr * weight_decay)            # θ ← θ / (1+ηλ)
    previous_grad.copy_(grad).neg_()                   # keep -g_t


class Adan(Optimizer):
    r"""Adan (Xie et al., "Adan: Adaptive Nesterov Momentum Algorithm for Faster
    Optimizing Deep Models", arXiv 2208.06677, 2022), with the arguments,
    defaults, state and group keys of ``pytorch_optimizer.Adan``.

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: learning rate :math:`\eta` (default ``1e-3``).
        betas: :math:`(\beta_1, \beta_2, \beta_3)` for the gradient, its change and
            the squared Nesterov estimate (default ``(0.98, 0.92, 0.99)``; the
            paper writes :math:`1-\beta`: 0.02, 0.08, 0.01).
        weight_decay: :math:`\lambda` (default ``0``).
        weight_decouple: ``False`` (default): the paper's proximal decay, divide by
            :math:`1+\eta\lambda` after the step; ``True``: multiply by
            :math:`1-\eta\lambda` before it.
        max_grad_norm: clip all gradients together to this global norm first
            (default ``0``: no clip; read from the constructor's value, as the
            reference reads it, with its ``eps``).
        foreach: the reference's switch between its per-parameter and its
            multi-tensor path; they are bit-identical (tested), so optedu keeps
            the key and runs the one-tensor rule either way.
        eps: :math:`\epsilon`, added to the bias-corrected root (default ``1e-8``).
        maximize: ascend instead of descend (default ``False``).
        use_gc, adanorm, adanorm_r: the reference's hidden ``**kwargs``: gradient
            centralisation, and AdaNorm with rate ``adanorm_r`` (``None``: 0.95);
            group keys only when given, as there.

    State per parameter: ``exp_avg`` (:math:`m`), ``exp_avg_sq`` (:math:`n`),
    ``exp_avg_diff`` (:math:`v`), ``previous_grad`` (:math:`-g_{t-1}`, the
    negative), with ``adanorm`` ``exp_grad_adanorm`` (one element). The step
    count is the group's ``step`` (an int).

    Differences from ``pytorch_optimizer.Adan`` 4.1.0 (bit-identical to both its
    paths): it scales, negates and centralises ``p.grad`` in place and leaves
    :math:`-g_t` there; optedu leaves the gradients alone. Its ``maximize`` is
    kept on the optimizer; here it is a group key. It reproduces two of its
    first-step quirks, for parity: ``previous_grad`` starts as :math:`-g_1`
    taken before ``maximize`` and centralisation, so :math:`\Delta_1 = 0`
    only without them (with ``maximize`` it is :math:`-2g_1`).
    """

    element_wise = True  # any piece of a tensor steps as the whole (._sharding)

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: Sequence[float] = (0.98, 0.92, 0.99),
        weight_decay: float = 0.0,
        weight_decouple: bool = False,
        max_grad_norm: float = 0.0,
        foreach: bool | None = None,
        eps: float = 1e-8,
        maximize: bool = False,
        *,
        use_gc: bool = False,
        adanorm: bool = False,
        adanorm_r: float | None = None,
    ) -> None:
        check_non_negative("lr", lr)
        check_beta_tuple(betas, 3, last_may_be_one=True)
        check_non_negative("weight_decay", weight_decay)
        check_non_negative("max_grad_norm", max_grad_norm)
        check_non_negative("eps", eps)
        if adanorm_r is not None and not 0.0 <= adanorm_r <= 1.0:
            raise invalid("adanorm_r", adanorm_r, "a number in [0, 1]")
        defaults: dict[str, Any] = dict(
            lr=lr, betas=tuple(betas), weight_decay=weight_decay,
            weight_decouple=weight_decouple, max_grad_norm=max_grad_norm, foreach=foreach,
            eps=eps, maximize=maximize)
        # the reference's **kwargs: group keys only when given
        extras = dict(use_gc=use_gc, adanorm=adanorm, adanorm_r=adanorm_r)
        defaults.update({k: v for k, v in extras.items() if v not in (False, None)})
        if max_grad_norm or use_gc or adanorm:  # norms or means of whole tensors
            self.element_wise = False
            self.refuses_shards = ("max_grad_norm, use_gc and adanorm read norms or means "
                                   "of whole tensors")
        super().__init__(params, defaults)

    def _clip(self, grads: list[torch.Tensor]) -> torch.Tensor | float:
        r"""The global clip factor :math:`\min(1, c/(\|g\| + \epsilon))`, the norm
        summed in float32 as the reference sums it; 1.0 without ``max_grad_norm``."""
        if self.defaults["max_grad_norm"] == 0.0 or not grads:
            return 1.0
        one_kind = all(g.device == grads[0].device and g.dtype == grads[0].dtype
                       for g in grads)
        norms = torch._foreach_norm(grads) if one_kind else [g.norm() for g in grads]
        total = torch.stack(list(norms)).float().square_().sum()
        return torch.clamp(self.defaults["max_grad_norm"] / total.sqrt_().add_(
            self.defaults["eps"]), max=1.0)

    @torch.no_grad()
    def step(self, closure=None):
        """One step; the group's ``step`` counts it."""
        loss = evaluate(closure)
        self.refuse_pieces()
        every = [p.grad for group in self.param_groups for p in group["params"]
                 if p.grad is not None]
        clip = self._clip(every)
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            self.check_gradients(params)
            group["step"] = group.get("step", 0) + 1
            beta1, beta2, beta3 = group["betas"]
            for param in params:
                state = self.state[param]
                raw = param.grad
                if not state:
                    state.update(exp_avg=torch.zeros_like(param),
                                 exp_avg_sq=torch.zeros_like(param),
                                 exp_avg_diff=torch.zeros_like(param),
                                 previous_grad=raw.mul(-clip))  # -g_1, as the reference
                    if group.get("adanorm"):
                        state["exp_grad_adanorm"] = torch.zeros(
                            (1,), dtype=raw.dtype, device=raw.device)
                signed = -raw if group["maximize"] else raw
                grad = as_real(signed)[0].mul(clip)            # g_t, clipped
                r = group.get("adanorm_r")
                adan(param, grad, state["exp_avg"], state["exp_avg_diff"],
                     state["exp_avg_sq"], state["previous_grad"], group["step"],
                     lr=group["lr"], beta1=beta1, beta2=beta2, beta3=beta3,
                     eps=group["eps"], weight_decay=group["weight_decay"],
                     weight_decouple=group["weight_decouple"],
                     use_gc=group.get("use_gc", False),
                     exp_grad_adanorm=state.get("exp_grad_adanorm"),
                     adanorm_r=0.95 if r is None else r)
        return loss
