r"""Cautious updates (Liang et al., "Cautious Optimizers: Improving Training
with One Line of Code", arXiv 2411.16085, 2024): zero the coordinates where
the update and the gradient disagree in sign, and rescale the rest.

AdamW and Lion keep torch's and lion-pytorch's signatures, which have no
``cautious`` argument, so the cautious forms are subclasses:
:class:`CautiousAdamW` and :class:`CautiousLion`. LaProp takes
``cautious=True``, as pytorch_optimizer's does (its MARS takes it too; the
authors' MARS, which optedu follows, does not)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from .adam import AdamW
from .lion import Lion
from .optimizer import Group, State, as_real

#: why a cautious rule cannot step a piece of a tensor (see ._sharding)
SHARD_REFUSAL = "the cautious mask is rescaled by a count over the whole tensor"


def cautious_mask(update: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    r"""The rescaled mask :math:`\phi = \mathbb 1[u \odot g > 0]\cdot n/(k+1)`,
    :math:`n` the tensor's size, :math:`k` the agreeing coordinates, as
    ``pytorch_optimizer``'s ``apply_cautious`` computes it (the ``+1`` keeps
    an all-zero mask finite). The paper's one-line listing (arXiv v4) divides
    by the mask's mean plus :math:`\epsilon`, timm by the mean held at
    :math:`10^{-3}` or more: the second conventions ledger compares them.

    Every :math:`\phi_i \ge 0` and :math:`\phi_i > 0` only where
    :math:`u_i g_i > 0`, so the step :math:`-\eta\,u\odot\phi` has
    :math:`\langle g, -\eta\, u\odot\phi\rangle \le 0`: to first order it
    never increases the loss whose gradient is :math:`g`.
    """
    mask = (update * grad > 0).to(grad.dtype)              # 1[u_i g_i > 0]
    return mask.mul_(mask.numel() / (mask.sum() + 1))      # · n / (k + 1)


def cautious_adamw(param: torch.Tensor, grad: torch.Tensor, exp_avg: torch.Tensor,
                   exp_avg_sq: torch.Tensor, max_exp_avg_sq: torch.Tensor | None,
                   step: int, *, lr: float, beta1: float, beta2: float, eps: float,
                   weight_decay: float, maximize: bool,
                   mask: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
                   ) -> None:
    r"""One cautious AdamW step on one tensor, in place (the paper's C-AdamW):
    :func:`~optedu.optim.adam.adam`'s decoupled step with the numerator
    :math:`m_t \odot \phi(m_t, g_t)` in place of :math:`m_t`. ``mask`` is
    :math:`\phi` (``None``: :func:`cautious_mask`; the conventions ledger passes
    timm's rescale, :func:`optedu.practice.conventions.cautious_mask_mean`).
    """
    g = -grad if maximize else grad
    param.mul_(1 - lr * weight_decay)                  # θ ← (1 - ηλ) θ
    param, g, exp_avg, exp_avg_sq, max_exp_avg_sq = as_real(
        param, g, exp_avg, exp_avg_sq, max_exp_avg_sq)
    exp_avg.lerp_(g, 1 - beta1)                        # m_t = β1 m + (1-β1) g_t
    exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)  # v_t = β2 v + (1-β2) g²
    second_moment = exp_avg_sq
    if max_exp_avg_sq is not None:                     # AMSGrad
        torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        second_moment = max_exp_avg_sq
    denom = (second_moment.sqrt() / (1 - beta2**step) ** 0.5).add_(eps)  # √v̂ + ε
    phi = cautious_mask if mask is None else mask
    update = exp_avg * phi(exp_avg, g)                 # m_t ∘ φ_t
    param.addcdiv_(update, denom, value=-lr / (1 - beta1**step))  # θ -= η m̂∘φ/(√v̂+ε)


def cautious_lion(param: torch.Tensor, grad: torch.Tensor, exp_avg: torch.Tensor, *,
                  lr: float, beta1: float, beta2: float, weight_decay: float) -> None:
    r"""One cautious Lion step on one tensor, in place: :func:`~optedu.optim.lion.lion`
    with the step :math:`\operatorname{sign}(c_t) \odot \phi(\operatorname{sign}(c_t), g_t)`
    (the mask after the sign, as pytorch_optimizer's Lion applies it, so the
    rescaling survives).
    """
    param.mul_(1 - lr * weight_decay)                  # θ ← (1 - ηλ) θ
    c = exp_avg.clone().mul_(beta1).add_(grad, alpha=1 - beta1)  # c_t = β1 m + (1-β1) g
    u = c.sign_()
    param.add_(u.mul_(cautious_mask(u, grad)), alpha=-lr)  # θ -= η sign(c)∘φ
    exp_avg.mul_(beta2).add_(grad, alpha=1 - beta2)    # m_t = β2 m + (1-β2) g_t


class CautiousAdamW(AdamW):
    r"""Cautious AdamW (Liang et al. 2024, C-AdamW): :class:`~optedu.optim.adam.AdamW`
    with the arguments, defaults and state of ``torch.optim.AdamW``, stepping
    :func:`cautious_adamw`.

    A subclass, not a ``cautious`` argument, because optedu's AdamW keeps
    torch's signature exactly (its checkpoints and its parity tests). One
    tensor at a time: ``foreach=True`` is refused.

    Differences from pytorch_optimizer 4.1.0, which has no cautious AdamW
    class: its cautious AdamW is ``AdEMAMix(alpha=0, cautious=True)`` (or
    its MARS's 1-D path), which divides :math:`m_t` by :math:`1-\beta_1^t`
    before the denominator rather than folding it into the rate (torch's
    order, kept here): they agree to a few ulps, a bound the tests measure.
    """

    element_wise = False
    refuses_shards = SHARD_REFUSAL

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False, foreach: bool | None = None,
                 fused: bool | None = None) -> None:
        for name, value in (("foreach", foreach), ("fused", fused)):
            if value:
                raise ValueError(f"Invalid {name} value: True (CautiousAdamW steps one "
                                 "tensor at a time)")
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad,
                         maximize=maximize, foreach=False)

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State,
               group: Group) -> None:
        state["step"] += 1
        beta1, beta2 = group["betas"]
        cautious_adamw(param, grad, state["exp_avg"], state["exp_avg_sq"],
                       state["max_exp_avg_sq"] if group["amsgrad"] else None,
                       int(state["step"].item()), lr=group["lr"], beta1=beta1,
                       beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"],
                       maximize=group["maximize"])

    def update_foreach(self, params, grads, states, group) -> None:
        for param, grad, state in zip(params, grads, states):
            self.update(param, grad, state, group)


class CautiousLion(Lion):
    r"""Cautious Lion: :class:`~optedu.optim.lion.Lion` (lion-pytorch's
    arguments and state) stepping :func:`cautious_lion`.

    Differences from ``pytorch_optimizer.Lion(cautious=True)`` 4.1.0: it
    forms :math:`c_t` and :math:`m_t` with ``lerp`` where lion-pytorch (and
    optedu) multiply and add, so ``exp_avg`` differs in the last bits; the
    parameters agree bit for bit unless a coordinate of :math:`c_t` lands on
    0 in one and not the other (tested).
    """

    element_wise = False
    refuses_shards = SHARD_REFUSAL

    def __init__(self, params: Iterable[Any], lr: float = 1e-4,
                 betas: tuple[float, float] = (0.9, 0.99), weight_decay: float = 0.0, *,
                 fused: bool | None = None) -> None:
        if fused:
            raise ValueError("Invalid fused value: True (CautiousLion steps one tensor "
                             "at a time)")
        super().__init__(params, lr, betas, weight_decay)

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State,
               group: Group) -> None:
        beta1, beta2 = group["betas"]
        cautious_lion(param, grad, state["exp_avg"], lr=group["lr"], beta1=beta1,
                      beta2=beta2, weight_decay=group["weight_decay"])
