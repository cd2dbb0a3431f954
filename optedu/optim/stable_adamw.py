r"""StableAdamW: AdamW whose step shrinks when the gradient outruns its second moment
(Wortsman et al., 2023), as ``torch-optimi`` builds it.

A tensor's update is large when its gradient is large against :math:`\sqrt{v}`, the scale
Adam divides by. After a quiet spell :math:`v` has shrunk, and a sudden large gradient makes
every coordinate's step much longer than the rate promises: the start of many loss spikes.
Wortsman et al. measure it per tensor by the RMS of :math:`g^2 / v` and divide that
tensor's rate by it when it exceeds one (AdaFactor's update clipping, moved into AdamW).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from ._sharding import global_sum, is_sharded, local
from ._validation import check_betas, check_non_negative, invalid
from .optimizer import Group, Optimizer, State


def debias(beta: float, step: int) -> float:
    r"""The bias correction folded into the decay rate, as optimi writes it:

    .. math:: \hat\beta_t = \beta\,\frac{1 - \beta^{t-1}}{1 - \beta^t}
                          = \frac{\beta^t - \beta}{\beta^t - 1},

    so that :math:`m_t = \hat\beta_t m_{t-1} + (1-\hat\beta_t) g_t` is already the
    bias-corrected average (:math:`\hat\beta_1 = 0`: the first step takes :math:`g_1`).
    """
    return (beta**step - beta) / (beta**step - 1)


def stable_adamw(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    eps_sq: torch.Tensor,
    kahan_comp: torch.Tensor | None,
    *,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    weight_decay: float,
    eps: float,
    max_lr: float | None,
) -> None:
    r"""One StableAdamW step on one tensor, in place (step ``step`` counts from 1).

    .. math::

        m_t &= \hat\beta_{1,t}\, m_{t-1} + (1-\hat\beta_{1,t})\, g_t, \qquad
        v_t = \hat\beta_{2,t}\, v_{t-1} + (1-\hat\beta_{2,t})\, g_t^2 \\
        r_t &= \sqrt{\operatorname{mean}\big(g_t^2 / \max(v_t, \epsilon^2)\big)}, \qquad
        \eta_t = \eta / \max(1, r_t) \\
        \theta &\leftarrow (1 - \eta_t\lambda)\,\theta - \eta_t\, m_t / (\sqrt{v_t} + \epsilon)

    with :math:`\hat\beta` the debiased rates (:func:`debias`). With ``max_lr`` (optimi's
    ``decouple_lr``) the decay is :math:`1 - (\eta_t/\eta_{\max})\lambda` instead.
    ``kahan_comp`` (low-precision weights) carries the rounding error of the weights' sum
    from one step to the next.
    """
    whole = param
    # on a piece of a tensor (FSDP2's DTensor) the rule runs on this rank's piece,
    # and the RMS sums over the mesh; a plain tensor is its own piece
    param, grad, exp_avg, exp_avg_sq = map(local, (param, grad, exp_avg, exp_avg_sq))
    exp_avg.lerp_(grad, weight=1 - debias(beta1, step))        # m_t
    b2 = debias(beta2, step)
    exp_avg_sq.mul_(b2).addcmul_(grad, grad, value=1 - b2)    # v_t
    # r_t: the RMS of g²/v over the tensor; the rate shrinks when it passes 1
    ratio = grad.pow(2).div_(exp_avg_sq.maximum(eps_sq))
    if is_sharded(whole):
        rms = (global_sum(ratio.sum(), whole) / whole.numel()).sqrt()
    else:
        rms = ratio.mean().sqrt()
    lr = lr / max(1, rms.item())                                # η_t
    if weight_decay != 0:
        ratio_lr = lr if max_lr is None else lr / max_lr
        param.mul_(1 - ratio_lr * weight_decay)                 # (1 - η_t λ) θ
    if kahan_comp is None:
        param.addcdiv_(exp_avg, exp_avg_sq.sqrt().add_(eps), value=-lr)
        return
    # Kahan summation: add the step to the carried error, then keep what rounding lost
    kahan_comp = local(kahan_comp)
    kahan_comp.addcdiv_(exp_avg, exp_avg_sq.sqrt().add_(eps), value=-lr)
    before = param.clone()
    param.add_(kahan_comp)
    kahan_comp.add_(before.sub_(param))


class StableAdamW(Optimizer):
    r"""StableAdamW (Wortsman et al., "Stable and low-precision training for large-scale
    vision-language models", NeurIPS 2023) with the arguments, defaults and state of
    ``torch-optimi``'s ``StableAdamW`` (0.3.3, the reference the tests run).

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: learning rate :math:`\eta` (required, as in optimi).
        betas: :math:`(\beta_1, \beta_2)` (default ``(0.9, 0.99)``), debiased each step.
        weight_decay: :math:`\lambda` (default ``1e-2``), decoupled and scaled by the
            stabilised rate :math:`\eta_t`.
        eps: :math:`\epsilon` (default ``1e-6``), added to :math:`\sqrt{v}`; its square
            floors :math:`v` in the RMS.
        decouple_lr: decay by :math:`(\eta_t/\eta_{\max})\lambda`, independent of the rate's
            size (default ``False``).
        max_lr: :math:`\eta_{\max}` for ``decouple_lr`` (default: the constructor's ``lr``).
        kahan_sum: Kahan-summed updates for float16 and bfloat16 weights (default ``None``:
            on for them, off for others).
        foreach, triton, gradient_release: optimi's other kernels and its per-parameter
            step in the backward pass; optedu has one path, so only their defaults (or
            ``False``) are taken, and other values are refused.

    State per parameter: ``exp_avg``, ``exp_avg_sq``, ``eps_sq`` (:math:`\epsilon^2` as a
    0-d tensor of the parameter's dtype) and ``kahan_comp`` (a buffer, or ``None``); the
    step counts per group, in ``group["step"]``, as optimi keeps it.
    """

    supports_complex = False  # optimi's kernels are real (maximum, mean)

    def __init__(
        self,
        params: Iterable[Any],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 1e-2,
        eps: float = 1e-6,
        decouple_lr: bool = False,
        max_lr: float | None = None,
        kahan_sum: bool | None = None,
        foreach: bool | None = None,
        triton: bool | None = None,
        gradient_release: bool = False,
    ) -> None:
        check_non_negative("lr", lr)
        beta1, beta2 = check_betas(betas)
        check_non_negative("eps", eps)
        check_non_negative("weight_decay", weight_decay)
        if decouple_lr and max_lr is None:
            max_lr = lr                       # optimi: the constructor's rate
        if max_lr is not None:
            check_non_negative("max_lr", max_lr)
        for name, value in (("foreach", foreach), ("triton", triton),
                            ("gradient_release", gradient_release)):
            if value:
                raise invalid(name, value, "None or False: optedu's StableAdamW has one "
                              "path, optimi's per-tensor loop")
        defaults = dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
                        decouple_lr=decouple_lr, max_lr=max_lr, kahan_sum=kahan_sum,
                        foreach=foreach, triton=triton, gradient_release=gradient_release,
                        setup=False)
        super().__init__(params, defaults)

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        low = param.dtype in (torch.float16, torch.bfloat16)
        kahan = None
        if low and group["kahan_sum"] is not False:
            kahan = torch.zeros_like(param, memory_format=torch.preserve_format)
            group["kahan_sum"] = True
        return {"exp_avg": torch.zeros_like(param, memory_format=torch.preserve_format),
                "exp_avg_sq": torch.zeros_like(param, memory_format=torch.preserve_format),
                "eps_sq": torch.tensor(group["eps"] ** 2, dtype=param.dtype,
                                       device=param.device),
                "kahan_comp": kahan}

    def update_group(self, params: list[torch.Tensor], grads: list[torch.Tensor],
                     states: list[State], group: Group) -> None:
        if not group["setup"]:               # optimi's first sight of the group
            group["setup"] = True
            group["step"] = torch.tensor(0, dtype=torch.int32)
            if group["triton"] is None and group["foreach"] is None:
                group["triton"] = False       # optimi's choice without Triton
        group["step"].add_(1)
        step = int(group["step"].item())
        for param, grad, state in zip(params, grads, states):
            stable_adamw(param, grad, state["exp_avg"], state["exp_avg_sq"],
                         state["eps_sq"], state["kahan_comp"], step=step, lr=group["lr"],
                         beta1=group["beta1"], beta2=group["beta2"],
                         weight_decay=group["weight_decay"], eps=group["eps"],
                         max_lr=group["max_lr"] if group["decouple_lr"] else None)
