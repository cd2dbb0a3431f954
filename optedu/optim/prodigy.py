r"""Prodigy: Adam whose step size :math:`d_t` estimates the distance to the solution."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

from ._validation import (check_betas, check_greater, check_integer, check_interval,
                          check_non_negative, invalid)
from .optimizer import Group, Optimizer, State, evaluate


def prodigy_statistics(param: torch.Tensor, grad: torch.Tensor, state: State, *, d: float,
                       d0: float, dlr: float, beta1: float, beta2: float, beta3: float,
                       safeguard_warmup: bool, slice_p: int) -> tuple[float, float]:
    r"""The first half of a Prodigy step on one tensor: the moments and the distance
    statistics, in place. Returns this tensor's term of :math:`r_{t+1}` and
    :math:`\|s_{t+1}\|_1` (the rule sums both over every tensor before it moves any).

    .. math::

        m_{t+1} &= \beta_1 m_t + (1-\beta_1)\, d_t g_t \\
        v_{t+1} &= \beta_2 v_t + (1-\beta_2)\, d_t^2 g_t^2 \\
        \Delta r &= \tfrac{d_t}{d_0}\, \gamma_t d_t\, \langle g_t, x_0 - x_t \rangle \\
        s_{t+1} &= \beta_3 s_t + \tfrac{d_t}{d_0}\, \gamma_t d_t\, g_t

    with :math:`\gamma_t d_t` read as ``dlr`` (:math:`d_t` alone with
    ``safeguard_warmup`` in :math:`s`), and :math:`g, x, x_0, s` restricted to every
    ``slice_p``-th entry of the flattened tensor in :math:`\Delta r` and :math:`s`.
    """
    sliced_grad = grad.flatten()[::slice_p]
    # Δr = (d/d0) γ d <g, x0 - x>   (d/d0 keeps r and s away from float underflow)
    delta = (d / d0) * dlr * torch.dot(
        sliced_grad, state["p0"] - param.flatten()[::slice_p]).item()
    if beta1 > 0:
        state["exp_avg"].mul_(beta1).add_(grad, alpha=d * (1 - beta1))  # m = β1 m + (1-β1) d g
    # v = β2 v + (1-β2) d² g²
    state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=d * d * (1 - beta2))
    weight = d if safeguard_warmup else dlr
    # s = β3 s + (d/d0) γd g
    s = state["s"].mul_(beta3).add_(sliced_grad, alpha=(d / d0) * weight)
    return delta, s.abs().sum().item()


def next_d(d: float, d_max: float, d0: float, numerator: float, denominator: float, *,
           d_coef: float, growth_rate: float) -> tuple[float, float, float]:
    r"""The new distance estimate from the summed statistics: returns
    :math:`(d_{t+1}, \max_{i \le t+1} \hat d_i, \hat d_{t+1})`.

    .. math::

        \hat d_{t+1} = c\, \frac{r_{t+1}}{\|s_{t+1}\|_1}, \qquad
        d_{t+1} = \min\bigl(\max(d_0, \hat d_1, \dots, \hat d_{t+1}),\ \rho\, d_t\bigr)

    (:math:`c` is ``d_coef``, :math:`\rho` ``growth_rate``), except that while
    :math:`d_t = d_0` it jumps to :math:`\max(d_0, \hat d_{t+1})`, which :math:`\rho` does not
    limit, as in prodigyopt. (:math:`\hat d_1 = 0`: at the first step :math:`x_t = x_0`.)
    """
    d_hat = d_coef * numerator / denominator
    if d == d0:
        d = max(d, d_hat)
    d_max = max(d_max, d_hat)
    return min(d_max, d * growth_rate), d_max, d_hat


def prodigy_move(param: torch.Tensor, grad: torch.Tensor, state: State, *, d: float,
                 dlr: float, beta1: float, eps: float, weight_decay: float,
                 decouple: bool) -> None:
    r"""The second half of a Prodigy step on one tensor, in place: Adam's step with the new
    :math:`d_{t+1}` in the denominator and the old :math:`\gamma_t d_t` (``dlr``) as its rate.

    .. math::

        x_{t+1} = x_t - \gamma_t d_t \Bigl(\lambda x_t
            + \frac{m_{t+1}}{\sqrt{v_{t+1}} + d_{t+1}\epsilon}\Bigr)

    (:math:`\lambda x_t` only with ``decouple``; :math:`m_{t+1}` is
    :math:`d_{t+1} g_t` when :math:`\beta_1 = 0`).
    """
    state["step"] += 1
    denom = state["exp_avg_sq"].sqrt().add_(d * eps)                  # √v + d ε
    if weight_decay != 0 and decouple:
        param.add_(param, alpha=-weight_decay * dlr)                  # x ← x - γd λ x
    if beta1 > 0:
        param.addcdiv_(state["exp_avg"], denom, value=-dlr)           # x ← x - γd m/(√v + dε)
    else:
        param.addcdiv_(grad, denom, value=-dlr * d)                   # x ← x - γd dg/(√v+dε)


class Prodigy(Optimizer):
    r"""Prodigy (Mishchenko & Defazio, "Prodigy: An Expeditiously Adaptive Parameter-Free
    Learner", ICML 2024; its Adam version, Section 5), in torch.optim's style.

    Adam whose learning rate :math:`\gamma_t d_t` carries an estimate :math:`d_t` of the
    distance :math:`D = \|x_0 - x_*\|_\infty` to the solution. Two sums, weighted alike and
    decayed by :math:`\beta_3`, give it: :math:`r = \sum_i \lambda_i \langle g_i, x_0 - x_i
    \rangle` and :math:`s = \sum_i \lambda_i g_i`, :math:`\lambda_i = \gamma_i d_i^2 / d_0`.
    On a convex problem :math:`\langle g_i, x_i - x_* \rangle \ge 0`, so
    :math:`r \le \langle s, x_0 - x_* \rangle \le \|s\|_1 D`: the estimate
    :math:`\hat d = r / \|s\|_1` never exceeds :math:`D` (with ``d_coef`` 1, ``slice_p`` 1).
    :math:`d_t` never decreases. One step (:func:`prodigy_statistics` on every tensor,
    :func:`next_d`, :func:`prodigy_move` on every tensor)::

        m, v, s, r    updated with d_t                       (statistics)
        d_{t+1}       = min(max(d_0, d̂_1..d̂_{t+1}), growth_rate d_t)
        x_{t+1}       = x_t - γ_t d_t m / (√v + d_{t+1} ε)

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: :math:`\gamma`, a multiplier on the estimated step; leave it at 1 (a schedule
            may scale it). Groups may differ only by setting theirs to 0 (default ``1.0``).
        betas: Adam's :math:`(\beta_1, \beta_2)`; :math:`\beta_1 = 0` keeps no ``exp_avg``
            (default ``(0.9, 0.999)``).
        beta3: decay of :math:`r` and :math:`s`; ``None`` for :math:`\sqrt{\beta_2}`.
        eps: :math:`\epsilon`, scaled by :math:`d` in the denominator (default ``1e-8``).
        weight_decay: :math:`\lambda` (default ``0``).
        decouple: AdamW's decoupled decay (default ``True``); else L2 added to the gradient.
        use_bias_correction: Adam's bias correction :math:`\sqrt{1-\beta_2^{k+1}} /
            (1-\beta_1^{k+1})` in :math:`\gamma d` (default ``False``).
        safeguard_warmup: leave :math:`\gamma` out of :math:`s`'s weights, so a warm-up
            schedule does not inflate :math:`\hat d` (default ``False``).
        d0: the first estimate :math:`d_0` (default ``1e-6``).
        d_coef: :math:`c`, multiplies :math:`\hat d` (default ``1.0``).
        growth_rate: :math:`\rho`, the largest factor :math:`d` grows by per step
            (default ``inf``).
        slice_p: compute :math:`r` and :math:`s` on every ``slice_p``-th entry only
            (an approximation for ``slice_p > 1``; default ``1``).

    State per parameter: ``step`` (an int), ``s`` and ``p0`` (:math:`x_0`; both flattened,
    every ``slice_p``-th entry; ``p0`` a zero scalar for a parameter that starts at zero),
    ``exp_avg`` (only if :math:`\beta_1 > 0`), ``exp_avg_sq``. Keys in every group: ``d``
    (:math:`d_t`, the estimate to read), ``d0``, ``d_max``, ``d_numerator`` (:math:`r`),
    ``k`` (steps taken), and after the first step ``d_denom`` (:math:`\|s\|_1`) and
    ``d_hat`` -- as prodigyopt stores them, so checkpoints move both ways.

    Differences from ``prodigyopt`` (1.1.2, the reference the tests run): none in the
    numbers (bit-identical). Left out: the ``fsdp_in_use`` argument (a framework flag: it
    all-reduces the sums over a sharded model); the group keeps ``fsdp_in_use=False`` so that
    a checkpoint loads into prodigyopt. prodigyopt's coupled decay (``decouple=False``)
    writes :math:`g + \lambda x` into ``p.grad``; optedu leaves ``p.grad`` as it was. A
    second lr raises prodigyopt's ``RuntimeError`` at ``step()`` as it does, but before
    anything moves (prodigyopt has by then updated the groups before the offending one).
    Complex parameters are refused (prodigyopt's :math:`\langle g, x_0 - x\rangle` is not
    conjugated). Extra checks: ``weight_decay >= 0``, ``d_coef > 0``, ``growth_rate >= 1``,
    ``beta3`` in :math:`[0, 1]`, ``slice_p`` an integer >= 1; no print on decoupled decay.
    As in prodigyopt, ``betas``, ``beta3``, ``decouple``, ``use_bias_correction``,
    ``d_coef``, ``growth_rate``, ``d``, ``k`` come from the first group, and the
    :math:`d = d_0` test in :func:`next_d` reads the last group's ``d0``.
    """

    couples_tensors = True  # sums over every parameter (see ._sharding)

    refuses_shards = (  # see ._sharding
        "its step size d is built from sums over every parameter (the "
        "inner product of the gradient with the distance from the "
        "start, and the norm of the step sum), which a piece reads "
        "only in part")

    supports_complex = False
    tensor_step = False  # prodigyopt's state["step"] is a Python int

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1.0,
        betas: tuple[float, float] = (0.9, 0.999),
        beta3: float | None = None,
        eps: float = 1e-8,
        weight_decay: float = 0,
        decouple: bool = True,
        use_bias_correction: bool = False,
        safeguard_warmup: bool = False,
        d0: float = 1e-6,
        d_coef: float = 1.0,
        growth_rate: float = float("inf"),
        slice_p: int = 1,
    ) -> None:
        if not 0.0 < d0:  # prodigyopt's checks, in its order
            raise invalid("d0", d0)
        if not 0.0 < lr:
            raise invalid("lr", lr)
        if not 0.0 < eps:
            raise invalid("eps", eps)
        check_betas(betas)
        check_non_negative("weight_decay", weight_decay)
        if beta3 is not None:
            check_interval("beta3", beta3, 0.0, 1.0)
        check_greater("d_coef", d_coef)
        if not growth_rate >= 1.0:
            raise invalid("growth_rate", growth_rate, "a number >= 1")
        check_integer("slice_p", slice_p, 1)
        defaults = dict(lr=lr, betas=betas, beta3=beta3, eps=eps, weight_decay=weight_decay,
                        d=d0, d0=d0, d_max=d0, d_numerator=0.0, d_coef=d_coef, k=0,
                        growth_rate=growth_rate, use_bias_correction=use_bias_correction,
                        decouple=decouple, safeguard_warmup=safeguard_warmup,
                        fsdp_in_use=False, slice_p=slice_p)
        super().__init__(params, defaults)

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        sliced = param.flatten()[::group["slice_p"]]
        state: State = {"step": 0, "s": torch.zeros_like(sliced)}
        # x_0, or a zero scalar for a parameter that is zero everywhere (it saves memory)
        state["p0"] = (sliced.detach().clone() if param.any()
                       else torch.tensor(0, device=param.device, dtype=param.dtype))
        if group["betas"][0] > 0:
            state["exp_avg"] = torch.zeros_like(param)
        state["exp_avg_sq"] = torch.zeros_like(param)
        return state

    @torch.no_grad()
    def step(  # type: ignore[override]
        self, closure: Callable[[], float] | None = None
    ) -> float | None:
        """One Prodigy step over every group (the statistics are global sums)."""
        loss = evaluate(closure)
        self.refuse_pieces()
        first = self.param_groups[0]
        beta1, beta2 = first["betas"]
        beta3 = math.sqrt(beta2) if first["beta3"] is None else first["beta3"]
        k, d, d_max = first["k"], first["d"], first["d_max"]
        lr = max(group["lr"] for group in self.param_groups)
        for group in self.param_groups:
            if group["lr"] not in [lr, 0.0]:
                raise RuntimeError("Setting different lr values in different parameter "
                                   "groups is only supported for values of 0")
        bias_correction = (((1 - beta2 ** (k + 1)) ** 0.5) / (1 - beta1 ** (k + 1))
                           if first["use_bias_correction"] else 1)
        dlr = d * lr * bias_correction                                   # γ_t d_t
        decouple = first["decouple"]
        numerator, denominator = 0.0, 0.0
        visited = []
        for group in self.param_groups:
            params = [param for param in group["params"] if param.grad is not None]
            self.check_gradients(params)
            grads, states = [], []
            for param in params:
                grad = param.grad
                if group["weight_decay"] != 0 and not decouple:
                    grad = grad.add(param, alpha=group["weight_decay"])  # g + λx (L2)
                if not self.state[param]:
                    self.state[param] = self.init_state(param, group)
                state = self.state[param]
                if group["lr"] > 0.0:
                    delta, norm = prodigy_statistics(
                        param, grad, state, d=d, d0=group["d0"], dlr=dlr, beta1=beta1,
                        beta2=beta2, beta3=beta3, safeguard_warmup=group["safeguard_warmup"],
                        slice_p=group["slice_p"])
                    numerator += delta
                    denominator += norm
                grads.append(grad)
                states.append(state)
            visited.append((group, params, grads, states))
        if denominator == 0:  # no gradient yet (or all zero): nothing moves
            return loss
        numerator = first["d_numerator"] * beta3 + numerator           # r = β3 r + Σ Δr
        d, d_max, d_hat = next_d(d, d_max, self.param_groups[-1]["d0"], numerator,
                                 denominator, d_coef=first["d_coef"],
                                 growth_rate=first["growth_rate"])
        for group, params, grads, states in visited:
            group.update(d_numerator=numerator, d_denom=denominator, d=d, d_max=d_max,
                         d_hat=d_hat)
            for param, grad, state in zip(params, grads, states):
                prodigy_move(param, grad, state, d=d, dlr=dlr, beta1=beta1, eps=group["eps"],
                             weight_decay=group["weight_decay"], decouple=decouple)
            group["k"] += 1
        return loss
