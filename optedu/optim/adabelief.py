r"""AdaBelief: Adam's divisor built from the gradient's prediction error
:math:`(g_t - m_t)^2` instead of :math:`g_t^2`: the belief in the observed gradient."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from ._validation import check_betas, check_non_negative
from .optimizer import Optimizer, as_real, evaluate


def rectified_step_size(step: int, lr: float, beta2: float, n_sma_threshold: int,
                        degenerated_to_sgd: bool) -> tuple[float, float]:
    r"""RAdam's rectified rate :math:`\eta r_t \sqrt{1-\beta_2^t}` (the root undoes
    the bias correction of :math:`s_t`) and the length :math:`\rho_t` of the second
    moment's simple moving average, as pytorch_optimizer computes them (its
    ``get_rectify_step_size``, the same operations in the same order).

    Below the threshold :math:`r_t` is 1 with ``degenerated_to_sgd`` (an
    un-adapted step) and :math:`-1` without it (the caller then takes no step).
    """
    n_sma_max = 2.0 / (1.0 - beta2) - 1.0                    # ρ_∞
    beta2_t = beta2 ** step
    n_sma = n_sma_max - 2 * step * beta2_t / (1.0 - beta2_t)  # ρ_t
    if n_sma >= n_sma_threshold:
        rt = math.sqrt((1.0 - beta2_t) * (n_sma - 4) / (n_sma_max - 4) * (n_sma - 2) / n_sma
                       * n_sma_max / (n_sma_max - 2))
    elif degenerated_to_sgd:
        rt = 1.0
    else:
        rt = -1.0
    return lr * rt, n_sma


def adabelief(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_var: torch.Tensor,
    max_exp_avg_var: torch.Tensor | None,
    step: int,
    *,
    lr: float,
    step_size: float,
    n_sma: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    weight_decouple: bool,
    fixed_decay: bool,
    rectify: bool,
    n_sma_threshold: int,
    maximize: bool,
) -> None:
    r"""One AdaBelief step on one tensor, in place (Zhuang et al., 2020, Algorithm 2,
    as pytorch_optimizer writes it).

    ``step`` is the 1-based step; ``step_size`` is :math:`\eta/(1-\beta_1^t)`,
    times RAdam's :math:`r_t` with ``rectify`` (:func:`rectified_step_size`,
    whose :math:`\rho_t` is ``n_sma``); ``max_exp_avg_var`` is given for the
    AMSGrad-style bound.

    .. math::

        m_t &\leftarrow \beta_1 m_{t-1} + (1-\beta_1)\, g_t \\
        s_t &\leftarrow \beta_2 s_{t-1} + (1-\beta_2)\,(g_t - m_t)^2 + \epsilon \\
        \theta_t &\leftarrow \theta_{t-1} - \frac{\eta}{1-\beta_1^t}\,
            \frac{m_t}{\sqrt{s_t}/\sqrt{1-\beta_2^t} + \epsilon}

    :math:`\epsilon` enters twice: into :math:`s_t` at every step, and after the root.
    With ``rectify`` the divisor is :math:`\sqrt{s_t}+\epsilon` (``step_size``
    carries :math:`\sqrt{1-\beta_2^t}`, the second correction) once :math:`\rho_t`
    reaches ``n_sma_threshold``; before that the step is :math:`\eta\, m_t/(1-\beta_1^t)`
    when ``step_size`` is positive (``degenerated_to_sgd``), none otherwise. Weight
    decay comes first: decoupled, :math:`\theta \leftarrow (1-\eta\lambda)\theta`
    (:math:`1-\lambda` with ``fixed_decay``), or L2, :math:`g_t + \lambda\theta`.
    """
    g = -grad if maximize else grad
    if weight_decay != 0.0:
        if weight_decouple:
            param.mul_(1.0 - weight_decay * (1.0 if fixed_decay else lr))  # θ ← (1-ηλ) θ
        elif weight_decay > 0.0:
            g = g.add(param, alpha=weight_decay)                          # g + λθ
    param, g, exp_avg, exp_avg_var, max_exp_avg_var = as_real(
        param, g, exp_avg, exp_avg_var, max_exp_avg_var)
    exp_avg.lerp_(g, 1.0 - beta1)                                  # m = β1 m + (1-β1) g
    residual = g - exp_avg                                         # g - m
    exp_avg_var.mul_(beta2).addcmul_(residual, residual, value=1.0 - beta2).add_(eps)  # s
    second = exp_avg_var
    if max_exp_avg_var is not None:
        torch.maximum(max_exp_avg_var, exp_avg_var, out=max_exp_avg_var)
        second = max_exp_avg_var
    denom = second.sqrt()                                          # √s
    if not rectify:
        bias_correction2_sq = math.sqrt(1.0 - math.pow(beta2, step))
        denom.div_(bias_correction2_sq).add_(eps)                  # √s / √(1-β2^t) + ε
        param.addcdiv_(exp_avg, denom, value=-step_size)
        return
    denom.add_(eps)                                                # √s + ε
    if n_sma >= n_sma_threshold:
        # θ -= η r_t √(1-β2^t) m̂ / (√s + ε)
        param.addcdiv_(exp_avg, denom, value=-step_size)
    elif step_size > 0:
        param.add_(exp_avg, alpha=-step_size)                      # θ -= η m̂ (SGD)


class AdaBelief(Optimizer):
    r"""AdaBelief (Zhuang et al., "AdaBelief Optimizer: Adapting Stepsizes by the
    Belief in Observed Gradients", NeurIPS 2020, arXiv 2010.07468), with the
    arguments, defaults, state and group keys of ``pytorch_optimizer.AdaBelief``.

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: learning rate :math:`\eta` (default ``1e-3``).
        betas: :math:`(\beta_1, \beta_2)` (default ``(0.9, 0.999)``).
        weight_decay: :math:`\lambda` (default ``0``).
        weight_decouple: decay the weights by :math:`1-\eta\lambda` before the
            step (default ``True``); ``False``: L2, :math:`\lambda\theta` added
            to the gradient.
        fixed_decay: decay by :math:`1-\lambda`, without :math:`\eta`.
        rectify: RAdam's rectification of the divisor (default ``False``).
        n_sma_threshold: the :math:`\rho_t` from which ``rectify`` adapts the
            step (default ``5``; kept on the optimizer, as the reference keeps it).
        degenerated_to_sgd: below the threshold, step :math:`\eta\hat m_t`
            (default ``True``); ``False``: no step (kept on the optimizer).
        ams_bound: divide by the running maximum of :math:`s` (default ``False``).
        eps: :math:`\epsilon`, added to :math:`s_t` and after the root
            (default ``1e-16``).
        maximize: ascend instead of descend (default ``False``; kept on the
            optimizer, as the reference keeps it).

    State per parameter: ``exp_avg`` (:math:`m`), ``exp_avg_var`` (:math:`s`),
    with ``ams_bound`` ``max_exp_avg_var``. The step count is the group's
    ``step`` (an int).

    Differences from ``pytorch_optimizer.AdaBelief`` 4.1.0 (bit-identical to its
    per-parameter path and to its multi-tensor one, tested): ``foreach``, a group
    key that only picks its implementation, is left out, and so are the switches
    hidden in its ``**kwargs`` (``adanorm``, ``adanorm_r``, ``adam_debias``). It
    negates ``p.grad`` in place with ``maximize`` and adds the L2 decay to it;
    optedu leaves the gradients alone.
    """

    element_wise = True  # any piece of a tensor steps as the whole (._sharding)

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        weight_decay: float = 0.0,
        weight_decouple: bool = True,
        fixed_decay: bool = False,
        rectify: bool = False,
        n_sma_threshold: int = 5,
        degenerated_to_sgd: bool = True,
        ams_bound: bool = False,
        eps: float = 1e-16,
        maximize: bool = False,
    ) -> None:
        check_non_negative("lr", lr)
        betas = check_betas(betas)
        check_non_negative("weight_decay", weight_decay)
        check_non_negative("eps", eps)
        self.n_sma_threshold = n_sma_threshold
        self.degenerated_to_sgd = degenerated_to_sgd
        self.maximize = maximize
        defaults = dict(lr=lr, betas=betas, weight_decay=weight_decay,
                        weight_decouple=weight_decouple, fixed_decay=fixed_decay,
                        rectify=rectify, ams_bound=ams_bound, eps=eps)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        """One step; the group's ``step`` counts it."""
        loss = evaluate(closure)
        for group, params in self.groups_with_gradients():
            group["step"] = group.get("step", 0) + 1
            beta1, beta2 = group["betas"]
            lr = group["lr"]
            step_size, n_sma = lr, 0.0
            if group["rectify"]:
                step_size, n_sma = rectified_step_size(
                    group["step"], lr, beta2, self.n_sma_threshold, self.degenerated_to_sgd)
            step_size = step_size / (1.0 - math.pow(beta1, group["step"]))  # / (1-β1^t)
            for param in params:
                state = self.state[param]
                if not state:
                    state.update(exp_avg=torch.zeros_like(param),
                                 exp_avg_var=torch.zeros_like(param))
                    if group["ams_bound"]:
                        state["max_exp_avg_var"] = torch.zeros_like(param)
                adabelief(param, param.grad, state["exp_avg"], state["exp_avg_var"],
                          state.get("max_exp_avg_var"), group["step"], lr=lr,
                          step_size=step_size, n_sma=n_sma, beta1=beta1, beta2=beta2,
                          eps=group["eps"], weight_decay=group["weight_decay"],
                          weight_decouple=group["weight_decouple"],
                          fixed_decay=group["fixed_decay"], rectify=group["rectify"],
                          n_sma_threshold=self.n_sma_threshold, maximize=self.maximize)
        return loss
