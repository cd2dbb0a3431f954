r"""AdEMAMix: Adam whose numerator mixes the usual fast momentum with a slow
one that remembers gradients for thousands of steps."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch

from ._validation import check_beta_tuple, check_greater, check_non_negative, invalid
from .optimizer import Optimizer, evaluate


def alpha_schedule(step: int, alpha: float, warmup: float | None) -> float:
    r""":math:`\alpha_t = \min(t\alpha/T_{\alpha}, \alpha)`, the paper's linear
    warmup of the mixing weight (:math:`\alpha` itself without warmup).

    >>> alpha_schedule(50, 5.0, 100), alpha_schedule(500, 5.0, 100)
    (2.5, 5.0)
    """
    return alpha if warmup is None else min(step * alpha / warmup, alpha)


def beta3_schedule(step: int, beta1: float, beta3: float,
                   warmup: float | None) -> float:
    r""":math:`\beta_{3,t}`, the paper's warmup of the slow decay from
    :math:`\beta_1` to :math:`\beta_3`, linear in the half-life
    :math:`\propto 1/\ln\beta` (:math:`\beta_3` itself without warmup):

    .. math::

        \beta_{3,t} = \min\Big(\exp\frac{\ln\beta_1\,\ln\beta_3}
            {(1 - t/T)\ln\beta_3 + (t/T)\ln\beta_1},\; \beta_3\Big)

    >>> beta3_schedule(0, 0.9, 0.9999, 100), beta3_schedule(100, 0.9, 0.9999, 100)
    (0.9, 0.9999)
    """
    if warmup is None:
        return beta3
    log1, log3 = math.log(beta1), math.log(beta3)
    s = step / warmup
    return min(math.exp(log1 * log3 / ((1.0 - s) * log3 + s * log1)), beta3)


def ademamix(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    exp_avg_slow: torch.Tensor,
    step: int,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    beta3: float,
    alpha: float,
    eps: float,
    weight_decay: float,
    weight_decouple: bool,
    fixed_decay: bool,
    maximize: bool,
) -> None:
    r"""One AdEMAMix step on one tensor, in place (Pagliardini et al., 2024,
    Algorithm 1, lines 9–13).

    ``step`` is the 1-based step number; ``beta3`` and ``alpha`` are this
    step's values (after any warmup).

    .. math::

        \theta_{t-1} &\leftarrow (1 - \eta\lambda)\,\theta_{t-1}
            \quad\text{(decoupled; } 1-\lambda \text{ if fixed)}
            \quad\text{or}\quad g_t \leftarrow g_t + \lambda\theta_{t-1} \\
        m_{1,t} &\leftarrow \beta_1 m_{1,t-1} + (1-\beta_1)\, g_t \\
        v_t &\leftarrow \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2 \\
        m_{2,t} &\leftarrow \beta_{3,t} m_{2,t-1} + (1-\beta_{3,t})\, g_t \\
        \theta_t &\leftarrow \theta_{t-1} - \eta\,
            \frac{m_{1,t}/(1-\beta_1^t) + \alpha_t\, m_{2,t}}
                 {\sqrt{v_t}/\sqrt{1-\beta_2^t} + \epsilon}

    The slow momentum :math:`m_2` is not bias-corrected: it starts near
    zero and fills over about :math:`1/(1-\beta_3)` steps.
    """
    g = -grad if maximize else grad
    if weight_decay != 0:
        if weight_decouple:                                # θ ← (1 - ηλ) θ
            param.mul_(1.0 - weight_decay * (1.0 if fixed_decay else lr))
        else:
            g = g.add(param, alpha=weight_decay)           # g_t + λ θ
    exp_avg.lerp_(g, 1.0 - beta1)                          # m1 = β1 m1 + (1-β1) g
    exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)  # v = β2 v + (1-β2) g²
    exp_avg_slow.lerp_(g, 1.0 - beta3)                     # m2 = β3 m2 + (1-β3) g
    bias_correction1 = 1.0 - math.pow(beta1, step)
    bias_correction2_sqrt = math.sqrt(1.0 - math.pow(beta2, step))
    denom = exp_avg_sq.sqrt().div_(bias_correction2_sqrt).add_(eps)  # √v̂ + ε
    update = exp_avg.div(bias_correction1)                 # m̂1 = m1/(1-β1^t)
    update.add_(exp_avg_slow, alpha=alpha)                 # m̂1 + α m2
    if param.dtype in (torch.float16, torch.bfloat16):
        param.add_(update.div_(denom), alpha=-lr)          # as the reference rounds
    else:
        param.addcdiv_(update, denom, value=-lr)           # θ -= η (m̂1 + α m2)/(√v̂+ε)


class AdEMAMix(Optimizer):
    r"""AdEMAMix (Pagliardini, Ablin and Grangier, "The AdEMAMix Optimizer:
    Better, Faster, Older", ICLR 2025; arXiv 2409.03137, 2024), with the
    arguments, defaults, state and group keys of ``pytorch_optimizer.AdEMAMix``.

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: learning rate :math:`\eta` (default ``1e-3``).
        betas: :math:`(\beta_1, \beta_2, \beta_3)`: fast momentum, second
            moment, slow momentum (default ``(0.9, 0.999, 0.9999)``).
        weight_decay: :math:`\lambda` (default ``0``).
        weight_decouple: decay the weights by :math:`1-\eta\lambda` instead
            of adding :math:`\lambda\theta` to the gradient (default
            ``False``; the paper decouples).
        fixed_decay: with ``weight_decouple``, decay by :math:`1-\lambda`,
            without :math:`\eta` (default ``False``).
        alpha: weight :math:`\alpha` of the slow momentum (default ``5``).
        t_alpha_beta3: warmup length :math:`T_{\alpha,\beta_3}` of both
            :func:`alpha_schedule` and :func:`beta3_schedule` (default
            ``None``: no warmup; the paper sets it to the run's length).
        eps: :math:`\epsilon`, added to :math:`\sqrt{\hat v}` (default ``1e-8``).
        maximize: ascend instead of descend (default ``False``).

    State per parameter: ``exp_avg`` (:math:`m_1`), ``exp_avg_sq``
    (:math:`v`), ``exp_avg_slow`` (:math:`m_2`): one buffer more than Adam.
    The step count is the group's ``step`` (an int, 1 on the first step), as
    in pytorch_optimizer, so checkpoints move between the two. Every group
    counts every ``step()``, with or without gradients.

    Differences from ``pytorch_optimizer.AdEMAMix`` 4.1.0 (bit-identical on
    both its paths): the ``foreach`` flag and the hidden ``cautious`` and
    ``stable_adamw`` keyword options are left out; ``lr`` is a float;
    ``t_alpha_beta3`` must be positive (``0`` passes its check, then divides
    by zero); ``maximize`` and the L2 decay leave ``p.grad`` alone (it
    changes ``p.grad`` in place).

    Differences from ``optax.contrib.ademamix`` 0.2.8 (tested to a bound):
    its default ``alpha`` is 5 (``scale_by_ademamix``'s is 6); its weight
    decay is always decoupled, added to the update
    (:math:`\theta - \eta(u + \lambda\theta)`; here ``weight_decouple=True``);
    it corrects :math:`\sqrt{v/(1-\beta_2^t)}` inside the root and forms the
    EMAs as :math:`(1-\beta)g + \beta m` (last-bit differences); its
    ``b3`` and ``alpha`` schedules are called with the count of *earlier*
    steps (0 on the first), so the paper's schedulers, which start at
    :math:`t = 1`, must be given to optax as ``lambda c: f(c + 1)``; its
    ``eps_root`` (default 0) and ``mu_dtype`` have no counterpart here.
    """

    element_wise = True  # any piece of a tensor steps as the whole (._sharding)
    supports_complex = False

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: Sequence[float] = (0.9, 0.999, 0.9999),
        weight_decay: float = 0.0,
        weight_decouple: bool = False,
        fixed_decay: bool = False,
        alpha: float = 5.0,
        t_alpha_beta3: float | None = None,
        eps: float = 1e-8,
        *,
        maximize: bool = False,
    ) -> None:
        check_non_negative("lr", lr)
        check_beta_tuple(betas, 3, last_may_be_one=True)
        check_non_negative("alpha", alpha)
        if t_alpha_beta3 is not None:
            check_greater("t_alpha_beta3", t_alpha_beta3)
            if betas[0] == 0:   # the β3 warmup starts at β1 and takes its log
                raise invalid("betas", tuple(betas), "beta1 > 0 with t_alpha_beta3")
        check_non_negative("weight_decay", weight_decay)
        check_non_negative("eps", eps)
        defaults = dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay,
                        weight_decouple=weight_decouple, fixed_decay=fixed_decay,
                        alpha=alpha, t_alpha_beta3=t_alpha_beta3, eps=eps,
                        maximize=maximize)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        """One step; the group's ``step`` counts it and sets the warmups."""
        loss = evaluate(closure)
        for group, params in self.groups_with_gradients():
            group["step"] = group.get("step", 0) + 1
            t, warmup = group["step"], group["t_alpha_beta3"]
            beta1, beta2, beta3 = group["betas"]
            for param in params:
                state = self.state[param]
                if not state:
                    for key in ("exp_avg", "exp_avg_sq", "exp_avg_slow"):
                        state[key] = torch.zeros_like(param)
                ademamix(param, param.grad, state["exp_avg"], state["exp_avg_sq"],
                         state["exp_avg_slow"], t, lr=group["lr"], beta1=beta1,
                         beta2=beta2, beta3=beta3_schedule(t, beta1, beta3, warmup),
                         alpha=alpha_schedule(t, group["alpha"], warmup),
                         eps=group["eps"], weight_decay=group["weight_decay"],
                         weight_decouple=group["weight_decouple"],
                         fixed_decay=group["fixed_decay"], maximize=group["maximize"])
        return loss
