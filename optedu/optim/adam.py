r"""Adam and AdamW: bias-corrected first and second moments, with coupled
or decoupled weight decay.

The rule in its three forms, one after the other: :func:`adam` on one tensor
(the reference the book shows), :func:`adam_foreach` on lists of tensors
(bit for bit the same) and :func:`adam_fused`, compiled into one kernel per
tensor by :mod:`optedu.optim.fused` (other roundings, bounded in
``tests/optim/test_fused.py``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor

from ._validation import check_adam_arguments, check_beta_types, check_tensor_lr
from .foreach import Tensors, check_foreach
from .fused import (FusedOptimizer, check_fused, compiled, flat, learning_rate,
                    run_in_chunks)
from .optimizer import Group, State, as_real, step_and_buffers


def adam(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    max_exp_avg_sq: torch.Tensor | None,
    step: int,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled_weight_decay: bool,
    maximize: bool,
) -> None:
    r"""One Adam (or AdamW) step on one tensor, in place.

    ``step`` is the 1-based step number; ``max_exp_avg_sq`` is given for
    AMSGrad.

    .. math::

        g_t &\leftarrow \pm\nabla f(\theta_{t-1}) \\
        \theta_{t-1} &\leftarrow (1 - \eta\lambda)\,\theta_{t-1} \\
            &\quad\text{(decoupled)} \\
        \text{or}\quad g_t &\leftarrow g_t + \lambda\,\theta_{t-1} \\
            &\quad\text{(L2)} \\
        m_t &\leftarrow \beta_1 m_{t-1} + (1-\beta_1)\, g_t \\
        v_t &\leftarrow \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2 \\
        v^{\max}_t &\leftarrow \max(v^{\max}_{t-1}, v_t) \\
            &\quad\text{(AMSGrad; used in place of } v_t) \\
        \theta_t &\leftarrow \theta_{t-1} - \frac{\eta}{1-\beta_1^t}\,
            \frac{m_t}{\sqrt{v_t}/\sqrt{1-\beta_2^t} + \epsilon}

    AMSGrad keeps the maximum of the *uncorrected* :math:`v_t`, as Reddi et
    al.'s Algorithm 2 does, then applies both bias corrections, as torch does
    (the paper corrects neither moment).

    A complex tensor is stepped as its real and imaginary parts:
    :func:`~optedu.optim.optimizer.as_real` after the weight decay, as torch does.
    """
    g = -grad if maximize else grad
    if weight_decay != 0:
        if decoupled_weight_decay:
            param.mul_(1 - lr * weight_decay)           # θ ← (1 - ηλ) θ
        else:
            g = g.add(param, alpha=weight_decay)        # g_t ← g_t + λ θ_{t-1}
    # a complex tensor: its real and imaginary parts, from here on (torch's order)
    param, g, exp_avg, exp_avg_sq, max_exp_avg_sq = as_real(
        param, g, exp_avg, exp_avg_sq, max_exp_avg_sq)
    exp_avg.lerp_(g, 1 - beta1)                 # m_t = β1 m_{t-1} + (1-β1) g_t
    # v_t = β2 v_{t-1} + (1-β2) g_t²
    exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
    bias_correction1 = 1 - beta1**step                  # 1 - β1^t
    bias_correction2 = 1 - beta2**step                  # 1 - β2^t
    if max_exp_avg_sq is not None:                      # AMSGrad
        # v_max = max(v_max, v_t)
        torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        second_moment = max_exp_avg_sq
    else:
        second_moment = exp_avg_sq
    # √v̂_t + ε, with **0.5 as torch writes it (math.sqrt rounds differently,
    # e.g. at 1 - 2⁻⁵³)
    denom = (second_moment.sqrt() / bias_correction2**0.5).add_(eps)
    # θ_t = θ_{t-1} - η m̂_t / (√v̂_t + ε)
    param.addcdiv_(exp_avg, denom, value=-lr / bias_correction1)


def adam_foreach(
    params: Tensors,
    grads: Tensors,
    exp_avgs: Tensors,
    exp_avg_sqs: Tensors,
    max_exp_avg_sqs: Tensors | None,
    steps: Sequence[int],
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled_weight_decay: bool,
    maximize: bool,
) -> None:
    r"""One Adam (or AdamW) step on lists of tensors, in place:
    :func:`optedu.adam` on every tensor. ``steps`` holds each tensor's 1-based
    step number; ``max_exp_avg_sqs`` is given for AMSGrad.

    .. math::

        m_t &\leftarrow \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad
        v_t \leftarrow \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2 \\
        \theta_t &\leftarrow \theta_{t-1} - \frac{\eta}{1-\beta_1^t}\,
            \frac{m_t}{\sqrt{v_t}/\sqrt{1-\beta_2^t} + \epsilon}

    with the weight decay, AMSGrad and ``maximize`` of :func:`optedu.adam`.
    """
    g = torch._foreach_neg(grads) if maximize else grads
    if weight_decay != 0:
        if decoupled_weight_decay:
            # θ ← (1 - ηλ) θ
            torch._foreach_mul_(params, 1 - lr * weight_decay)
        else:
            # g_t ← g_t + λ θ_{t-1}
            g = torch._foreach_add(g, params, alpha=weight_decay)
    # m_t = β1 m_{t-1} + (1-β1) g_t
    torch._foreach_lerp_(exp_avgs, g, 1 - beta1)
    # v_t = β2 v_{t-1} + (1-β2) g_t²
    torch._foreach_mul_(exp_avg_sqs, beta2)
    torch._foreach_addcmul_(exp_avg_sqs, g, g, value=1 - beta2)
    bias_correction1 = [1 - beta1**t for t in steps]        # 1 - β1^t
    bias_correction2 = [1 - beta2**t for t in steps]        # 1 - β2^t
    if max_exp_avg_sqs is not None:                         # AMSGrad
        # v_max = max(v_max, v_t)
        torch._foreach_maximum_(max_exp_avg_sqs, exp_avg_sqs)
        second_moments = max_exp_avg_sqs
    else:
        second_moments = exp_avg_sqs
    # √v̂_t + ε
    denoms = torch._foreach_sqrt(second_moments)
    torch._foreach_div_(denoms, [bc**0.5 for bc in bias_correction2])
    torch._foreach_add_(denoms, eps)
    # θ_t = θ_{t-1} - η m̂_t / (√v̂_t + ε)
    torch._foreach_addcdiv_(params, exp_avgs, denoms,
                            [-lr / bc for bc in bias_correction1])



def adam_fused(param: Tensor, grad: Tensor, exp_avg: Tensor,
               exp_avg_sq: Tensor, max_exp_avg_sq: Tensor | None,
               step: Tensor, lr: Tensor, *, beta1: float, beta2: float,
               eps: float, weight_decay: float, decoupled_weight_decay: bool,
               maximize: bool) -> tuple[Tensor, Tensor]:
    r"""One Adam (or AdamW) step on one tensor, in place: :func:`optedu.adam`
    with the step counter and the learning rate as tensors. Returns the two
    scalars of the step, :math:`-\eta/(1-\beta_1^t)` and
    :math:`\sqrt{1-\beta_2^t}`, so that the compiler computes them once."""
    step += 1                                       # t ← t + 1, in the tensor
    g = -grad if maximize else grad
    if weight_decay != 0:
        if decoupled_weight_decay:
            param.mul_(1 - lr * weight_decay)       # θ ← (1 - ηλ) θ
        else:
            g = g.add(param, alpha=weight_decay)    # g_t ← g_t + λ θ_{t-1}
    exp_avg.lerp_(g, 1 - beta1)                 # m_t = β1 m_{t-1} + (1-β1) g_t
    # v_t = β2 v_{t-1} + (1-β2) g_t²
    exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
    t = step.double()
    bias_correction1 = 1 - beta1**t                     # 1 - β1^t
    bias_correction2_sqrt = (1 - beta2**t) ** 0.5       # √(1 - β2^t)
    if max_exp_avg_sq is not None:                      # AMSGrad
        # v_max = max(v_max, v_t)
        max_exp_avg_sq.copy_(torch.maximum(max_exp_avg_sq, exp_avg_sq))
        second_moment = max_exp_avg_sq
    else:
        second_moment = exp_avg_sq
    denom = (second_moment.sqrt() / bias_correction2_sqrt).add_(eps)
    step_size = -lr / bias_correction1                  # -η / (1 - β1^t)
    # θ_t = θ_{t-1} - η m̂_t / (√v̂_t + ε), rounded as addcdiv: (s·m)/d
    param.add_(step_size * exp_avg / denom)
    return step_size, bias_correction2_sqrt


class Adam(FusedOptimizer):
    r"""Adam (Kingma & Ba: arXiv 2014, ICLR 2015), a drop-in for
    ``torch.optim.Adam`` (torch 2.13).

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: learning rate :math:`\eta` (default ``1e-3``).
        betas: :math:`(\beta_1, \beta_2)`, decay rates of the two moments
            (default ``(0.9, 0.999)``).
        eps: :math:`\epsilon`, added after the square root (default
            ``1e-8``).
        weight_decay: :math:`\lambda` (default ``0``): an L2 term added to
            the gradient, or, with ``decoupled_weight_decay=True``, a shrink
            of the weights by :math:`1-\eta\lambda`.
        amsgrad: keep the running maximum of the uncorrected :math:`v_t` and
            use it in its place, bias-corrected as torch does (Reddi et al.,
            2018) (default ``False``).
        maximize: ascend instead of descend (default ``False``).
        decoupled_weight_decay: AdamW's decay (Loshchilov & Hutter, 2019)
            (default ``False``).
        foreach: ``True`` for the multi-tensor path
            (:func:`adam_foreach`, same results bit for bit);
            ``None`` (default) or ``False``: the one-tensor :func:`adam`.
        fused: ``True`` for the compiled path
            (:func:`adam_fused`, one pass over memory per
            tensor; rounds differently, see :mod:`optedu.optim.fused`).

    State per parameter: ``step``, ``exp_avg``, ``exp_avg_sq``, plus
    ``max_exp_avg_sq`` with AMSGrad.

    Differences from torch.optim.Adam: ``foreach=None`` means the one-tensor
    path on every device; ``fused=True`` compiles optedu's rule instead of
    calling torch's kernel; no ``capturable``/``differentiable`` and
    no tensor ``betas`` (torch's type checks on them are made, in its words,
    and two floats are asked for). Like
    torch, optedu updates :math:`m_t` as a lerp,
    :math:`m + (1-\beta_1)(g - m)`, which is the paper's average rearranged.
    """

    element_wise = True  # any piece of a tensor steps as the whole (._sharding)

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
    ) -> None:
        check_tensor_lr(lr, foreach)
        float_betas = check_adam_arguments(lr, eps, betas, weight_decay)
        check_beta_types(betas, foreach)
        betas = float_betas
        check_foreach(foreach)
        check_fused(fused, foreach)
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
            amsgrad=amsgrad, maximize=maximize, foreach=foreach, fused=fused,
            decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        names = ["exp_avg", "exp_avg_sq"]
        if group["amsgrad"]:
            names.append("max_exp_avg_sq")
        state = step_and_buffers(param, *names)
        if group.get("fused"):    # torch's fused step counts in float32
            state["step"] = state["step"].float()
        return state

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State,
               group: Group) -> None:
        state["step"] += 1
        beta1, beta2 = group["betas"]
        adam(param, grad, state["exp_avg"], state["exp_avg_sq"],
             state["max_exp_avg_sq"] if group["amsgrad"] else None,
             int(state["step"].item()),
             lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
             weight_decay=group["weight_decay"],
             decoupled_weight_decay=group["decoupled_weight_decay"],
             maximize=group["maximize"])

    def update_foreach(self, params: list[torch.Tensor], grads: list[torch.Tensor],
                       states: list[State], group: Group) -> None:
        steps = [state["step"] for state in states]
        torch._foreach_add_(steps, 1)
        beta1, beta2 = group["betas"]
        adam_foreach(
            params, grads, [state["exp_avg"] for state in states],
            [state["exp_avg_sq"] for state in states],
            [state["max_exp_avg_sq"] for state in states] if group["amsgrad"] else None,
            [int(step.item()) for step in steps],
            lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
            weight_decay=group["weight_decay"],
            decoupled_weight_decay=group["decoupled_weight_decay"],
            maximize=group["maximize"])

    def update_fused(self, params: list[torch.Tensor], grads: list[torch.Tensor],
                     states: list[State], group: Group) -> None:
        beta1, beta2 = group["betas"]
        kernel = compiled(
            adam_fused, beta1=beta1, beta2=beta2, eps=group["eps"],
            weight_decay=group["weight_decay"],
            decoupled_weight_decay=group["decoupled_weight_decay"],
            maximize=group["maximize"])
        rows = [(*flat(param, grad, state["exp_avg"], state["exp_avg_sq"],
                       state.get("max_exp_avg_sq")), state["step"])
                for param, grad, state in zip(params, grads, states)]
        run_in_chunks(kernel, rows, learning_rate(group))


class AdamW(Adam):
    r"""AdamW (Loshchilov & Hutter, 2019), a drop-in for
    ``torch.optim.AdamW`` (torch 2.13).

    Adam with ``decoupled_weight_decay=True`` and a default ``weight_decay``
    of ``1e-2``: before the Adam step the weights shrink by
    :math:`1-\eta\lambda`; the decay never enters :math:`m_t` or
    :math:`v_t`. Arguments and state as :class:`Adam`.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad,
                         foreach=foreach, maximize=maximize, fused=fused,
                         decoupled_weight_decay=True)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            # a checkpoint from torch's Adam stays AdamW
            group["decoupled_weight_decay"] = True
