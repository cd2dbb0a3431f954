r"""D-Adapted Adam: Adam whose step size :math:`d_k` is a running estimate of the
distance to a solution, so no learning rate is tuned."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from ._validation import check_betas, check_greater, check_non_negative
from .optimizer import Optimizer, evaluate

SECOND_LR = ("Setting different lr values in different parameter groups is only supported "
             "for values of 0. To scale the learning rate differently for each layer, set the "
             "'layer_scale' value instead.")  # dadaptation's words (a RuntimeError, in step())


def dadapt_adam_sums(grad: torch.Tensor, s: torch.Tensor, exp_avg: torch.Tensor,
                     exp_avg_sq: torch.Tensor, *, dlr: float, r: float, beta1: float,
                     beta2: float, sqrt_beta2: float, eps: float) -> tuple[float, float]:
    r"""Adam's moments and the sum :math:`s`, in place, for one tensor; returns its
    shares of the two sums that estimate :math:`D`.

    .. math::

        a &\mathrel{+}= \rho\,\lambda_k \langle g_k, s_k / (\sqrt{v_k} + \epsilon)\rangle \\
        m_{k+1} &= \beta_1 m_k + \rho\,\lambda_k (1-\beta_1)\, g_k, \qquad
        v_{k+1} = \beta_2 v_k + (1-\beta_2)\, g_k^2 \\
        s_{k+1} &= \sqrt{\beta_2}\, s_k + \lambda_k (1-\sqrt{\beta_2})\, g_k, \qquad
        \ell \mathrel{+}= \rho\, \|s_{k+1}\|_1

    (:math:`\rho` = the group's ``layer_scale``).
    """
    denom = exp_avg_sq.sqrt().add_(eps)                                  # √v_k + ε
    numerator = r * dlr * torch.dot(grad.flatten(), s.div(denom).flatten()).item()
    exp_avg.mul_(beta1).add_(grad, alpha=r * dlr * (1 - beta1))          # m_{k+1}, with λ_k in it
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)         # v_{k+1}
    s.mul_(sqrt_beta2).add_(grad, alpha=dlr * (1 - sqrt_beta2))          # s_{k+1}
    return numerator, r * s.abs().sum().item()


def dadapt_adam_move(param: torch.Tensor, exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor, *,
                     eps: float, decay: float, dlr: float, decouple: bool) -> None:
    r"""The Adam step, in place: :math:`x_{k+1} = x_k - \lambda_k\lambda_{wd} x_k
    - m_{k+1} / (\sqrt{v_{k+1}} + \epsilon)` (the decay term only with ``decouple``)."""
    denom = exp_avg_sq.sqrt().add_(eps)                                  # √v_{k+1} + ε
    if decay != 0 and decouple:
        param.add_(param, alpha=-decay * dlr)                            # x ← x - λ_k λ_wd x
    param.addcdiv_(exp_avg, denom, value=-1)                             # x ← x - m / (√v + ε)


class DAdaptAdam(Optimizer):
    r"""Adam with D-Adaptation (Defazio & Mishchenko, "Learning-Rate-Free
    Learning by D-Adaptation", ICML 2023, its Adam variant: Adam's moments,
    with the weighted sum :math:`s` and numerator decayed at rate
    :math:`\sqrt{\beta_2}` and an :math:`\ell_1` norm in :math:`\hat d`),
    in torch.optim's style.

    With :math:`\eta` the ``lr`` multiplier and :math:`c_k = \sqrt{1-\beta_2^{k+1}}
    / (1-\beta_1^{k+1})` when ``use_bias_correction`` (else 1), each step is

    .. math::

        \lambda_k &= \eta\, d_k\, c_k \\
        m, v, s &\text{ as in } \texttt{dadapt\_adam\_sums}, \qquad
        r_{k+1} = \sqrt{\beta_2}\, r_k + (1-\sqrt{\beta_2})\, a_k \\
        \hat d_{k+1} &= \frac{r_{k+1}}{(1-\sqrt{\beta_2})\,\|s_{k+1}\|_1}, \qquad
        d_{k+1} = \max\bigl(d_k, \min(\hat d_{k+1}, \kappa\, d_k)\bigr) \\
        x_{k+1} &= x_k - m_{k+1} / (\sqrt{v_{k+1}} + \epsilon)

    where :math:`a_k` and :math:`\|s\|_1` sum over every tensor of every group
    with ``lr > 0`` and :math:`\kappa` = ``growth_rate``.

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: :math:`\eta`, a multiplier of the adapted step (default ``1.0``).
        betas: :math:`(\beta_1, \beta_2)` (default ``(0.9, 0.999)``).
        eps: :math:`\epsilon`, added to :math:`\sqrt v` (default ``1e-8``).
        weight_decay: L2 penalty added to the gradient, or with ``decouple``
            AdamW's decay :math:`x \leftarrow x - \lambda_k\lambda_{wd}x`
            (default ``0``).
        decouple: AdamW-style decay (default ``False``).
        use_bias_correction: Adam's bias correction :math:`c_k` folded into
            :math:`\lambda_k` (default ``False``).
        d0: the first estimate :math:`d_0` (default ``1e-6``).
        growth_rate: :math:`\kappa`, the largest factor by which :math:`d`
            grows in one step (default ``inf``).

    A group may set ``layer_scale`` (default ``1.0``), :math:`\rho` above, to
    scale its step relative to the others.

    State per parameter: ``step`` (a Python int, as the reference's), ``s``,
    ``exp_avg`` (:math:`m`, which includes :math:`\lambda_k`) and
    ``exp_avg_sq`` (:math:`v`), each like the parameter. Group keys: ``d``
    (:math:`d_k`, readable as ``param_groups[0]["d"]``), ``k``,
    ``numerator_weighted`` (:math:`r_k`), ``layer_scale``, ``growth_rate``,
    ``use_bias_correction``, ``decouple``, and the inert ``log_every=0``,
    ``fsdp_in_use=False`` (kept so a checkpoint loads into dadaptation).

    Differences from ``dadaptation`` 3.2 (the reference the tests run): none
    in the update (bit-identical), quirks included: ``betas``,
    ``use_bias_correction``, ``decouple``, ``growth_rate``, ``d`` and the
    bias correction's ``k`` are read from the first group only (another
    group's ``betas`` are ignored; its ``weight_decay``, ``eps`` and
    ``layer_scale`` count); :math:`s` carries no :math:`\rho`; the coupled
    decay is added to ``p.grad`` in place; the decoupled decay also shrinks
    the parameters of a group with ``lr=0``; groups must share one ``lr`` or
    have ``lr=0`` (a ``RuntimeError`` in ``step()``, after the groups before
    it have accumulated). Left out: the arguments ``log_every`` (logging) and
    ``fsdp_in_use`` (sharded all-reduce), and the constructor's print with
    ``decouple=True``. Bad arguments raise ``ValueError``; optedu also checks
    ``weight_decay`` and ``growth_rate``. Complex and sparse gradients are
    refused.
    """

    couples_tensors = True  # sums over every parameter (see ._sharding)

    refuses_shards = (  # see ._sharding
        "its step size d is built from sums over every parameter (the "
        "inner product of the gradient with the step sum and the norm "
        "of that sum), which a piece reads only in part")

    supports_complex = False
    tensor_step = False

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1.0,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        decouple: bool = False,
        use_bias_correction: bool = False,
        d0: float = 1e-6,
        growth_rate: float = float("inf"),
    ) -> None:
        check_greater("d0", d0)
        check_greater("lr", lr)
        check_greater("eps", eps)
        betas = check_betas(betas)
        check_non_negative("weight_decay", weight_decay)
        check_greater("growth_rate", growth_rate)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, d=d0, k=0,
                        layer_scale=1.0, numerator_weighted=0.0, log_every=0,
                        growth_rate=growth_rate, use_bias_correction=use_bias_correction,
                        decouple=decouple, fsdp_in_use=False)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(  # type: ignore[override]
        self, closure: Callable[[], float] | None = None
    ) -> float | None:
        loss = evaluate(closure)
        self.refuse_pieces()
        first = self.param_groups[0]
        beta1, beta2 = first["betas"]
        k, d, decouple = first["k"], first["d"], first["decouple"]
        lr = max(group["lr"] for group in self.param_groups)
        for group in self.param_groups:
            self.check_gradients([p for p in group["params"] if p.grad is not None])

        bias_correction = 1
        if first["use_bias_correction"]:
            bias_correction = ((1 - beta2 ** (k + 1)) ** 0.5) / (1 - beta1 ** (k + 1))
        dlr = d * lr * bias_correction                                   # λ_k = η d_k c_k
        sqrt_beta2 = beta2 ** (0.5)

        numerator_acum, sk_l1 = 0.0, 0.0
        for group in self.param_groups:
            if group["lr"] not in [lr, 0.0]:
                raise RuntimeError(SECOND_LR)
            decay = group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if decay != 0 and not decouple:
                    p.grad.add_(p, alpha=decay)              # g ← g + λ x (in p.grad)
                state = self.state[p]
                if "step" not in state:
                    state.update(step=0, s=torch.zeros_like(p), exp_avg=torch.zeros_like(p),
                                 exp_avg_sq=torch.zeros_like(p))
                if group["lr"] > 0.0:
                    share, l1 = dadapt_adam_sums(
                        p.grad, state["s"], state["exp_avg"], state["exp_avg_sq"], dlr=dlr,
                        r=group["layer_scale"], beta1=beta1, beta2=beta2,
                        sqrt_beta2=sqrt_beta2, eps=group["eps"])
                    numerator_acum += share
                    sk_l1 += l1

        numerator = sqrt_beta2 * first["numerator_weighted"] + (1 - sqrt_beta2) * numerator_acum
        if sk_l1 == 0:
            return loss
        if lr > 0.0:
            d_hat = numerator / ((1 - sqrt_beta2) * sk_l1)   # d̂ = r / ((1-√β2)‖s‖₁)
            d = max(d, min(d_hat, d * first["growth_rate"]))

        for group in self.param_groups:
            group.update(numerator_weighted=numerator, d=d)
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                state["step"] += 1
                dadapt_adam_move(p, state["exp_avg"], state["exp_avg_sq"], eps=group["eps"],
                                 decay=group["weight_decay"], dlr=dlr, decouple=decouple)
            group["k"] += 1
        return loss
