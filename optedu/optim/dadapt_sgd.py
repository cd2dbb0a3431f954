r"""D-Adapted SGD: dual averaging whose step size is a running lower bound on the
distance :math:`D = \|x_0 - x_*\|` to a solution, so no learning rate is tuned."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

from ._validation import check_greater, check_non_negative, invalid
from .optimizer import Optimizer, evaluate

SECOND_LR = ("Setting different lr values in different parameter groups is only supported "
             "for values of 0")  # dadaptation's words (a RuntimeError, raised in step())


def dadapt_sgd_sums(grad: torch.Tensor, s: torch.Tensor, *, dlr: float) -> tuple[float, float]:
    r"""Accumulate one tensor's gradient into :math:`s`, in place, and return its
    shares of the two sums that estimate :math:`D`:
    :math:`\lambda_k\langle g_k, s_k\rangle` and :math:`\|s_{k+1}\|^2`.

    .. math::

        r \mathrel{+}= \lambda_k \langle g_k, s_k\rangle, \qquad
        s_{k+1} = s_k + \lambda_k g_k
    """
    numerator = dlr * torch.dot(grad.flatten(), s.flatten()).item()  # λ_k <g_k, s_k>
    s.add_(grad, alpha=dlr)                                           # s_{k+1} = s_k + λ_k g_k
    return numerator, (s * s).sum().item()                            # ‖s_{k+1}‖² share


def dadapt_sgd_move(param: torch.Tensor, z: torch.Tensor, s: torch.Tensor, x0: torch.Tensor,
                    *, momentum: float) -> None:
    r"""The dual-averaging point and the averaged iterate, in place.

    .. math::

        z_{k+1} = x_0 - s_{k+1}, \qquad x_{k+1} = \beta x_k + (1-\beta) z_{k+1}
    """
    ck = 1 - momentum                        # 1 - (1-β), not β: the reference's rounding
    z.copy_(x0 - s)                          # z_{k+1} = x_0 - s_{k+1}
    param.mul_(1 - ck).add_(z, alpha=ck)     # x_{k+1} = β x_k + (1-β) z_{k+1}


class DAdaptSGD(Optimizer):
    r"""SGD with D-Adaptation (Defazio & Mishchenko, "Learning-Rate-Free
    Learning by D-Adaptation", ICML 2023: Algorithm 1, dual averaging with
    D-adaptation, at the constant weight :math:`\gamma = 1/\|g_0\|`, with
    primal averaging as momentum), in torch.optim's style.

    With :math:`\eta` the ``lr`` multiplier, :math:`g_0` the first gradient
    and :math:`\beta` the momentum, each step is

    .. math::

        \lambda_k &= \eta\, d_k / \|g_0\| \\
        r_{k+1} &= r_k + \lambda_k \langle g_k, s_k\rangle, \qquad
        s_{k+1} = s_k + \lambda_k g_k \\
        \hat d_{k+1} &= 2 r_{k+1} / \|s_{k+1}\|, \qquad
        d_{k+1} = \max\bigl(d_k, \min(\hat d_{k+1}, \kappa\, d_k)\bigr) \\
        z_{k+1} &= x_0 - s_{k+1}, \qquad x_{k+1} = \beta x_k + (1-\beta) z_{k+1}

    (:math:`\kappa` = ``growth_rate``). Sums over every tensor of every group
    with ``lr > 0``; :math:`g_k` includes :math:`\lambda x_k` when
    ``weight_decay`` is set.

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: :math:`\eta`, a multiplier of the adapted step (default ``1.0``).
        momentum: :math:`\beta`, in :math:`[0, 1)` (default ``0``).
        weight_decay: L2 penalty added to the gradient (default ``0``).
        d0: the first estimate :math:`d_0` of :math:`D` (default ``1e-6``).
        growth_rate: :math:`\kappa`, the largest factor by which :math:`d`
            grows in one step (default ``inf``).

    State per parameter: ``z``, ``s`` and ``x0`` (each like the parameter).
    Group keys: ``d`` (:math:`d_k`, readable as ``param_groups[0]["d"]``),
    ``k``, ``numerator_weighted`` (:math:`r_k`), ``g0_norm`` (after the first
    step), ``growth_rate``, and the inert ``log_every=0``,
    ``fsdp_in_use=False`` (kept so a checkpoint loads into dadaptation).

    The guarantee: on a convex problem with ``momentum=0``, :math:`x_k = x_0 -
    s_k` and convexity give :math:`r_{k+1} \le \langle s_{k+1}, x_0 - x_*\rangle
    \le \|s_{k+1}\| D`, so :math:`d_k \le 2D` (tested). Algorithm 1's
    :math:`\hat d` at a constant :math:`\gamma` is :math:`r_{k+1}/\|s_{k+1}\|`,
    half of this one, and never exceeds :math:`D`; this one can (1.26 D on
    :math:`f(x) = \|x - x_*\|`, tested).

    Differences from ``dadaptation`` 3.2 (the reference the tests run): none
    in the update (bit-identical), quirks included: ``momentum``,
    ``weight_decay``, ``growth_rate``, ``d`` and ``k`` are read from the
    first group only (another group's ``weight_decay`` is ignored);
    :math:`\|g_0\|` leaves out the weight decay; the decay is added to
    ``p.grad`` in place; groups must share one ``lr`` or have ``lr=0`` (a
    ``RuntimeError`` in ``step()``, after the groups before it have
    accumulated). Left out: the arguments ``log_every`` (logging) and
    ``fsdp_in_use`` (sharded all-reduce). A step with every group at ``lr=0``
    returns here after the decay (the reference raises ``UnboundLocalError``);
    a first gradient of zero raises ``ZeroDivisionError`` in both. Bad
    arguments raise ``ValueError``; optedu also checks ``momentum``,
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
        momentum: float = 0.0,
        weight_decay: float = 0,
        d0: float = 1e-6,
        growth_rate: float = float("inf"),
    ) -> None:
        check_greater("d0", d0)
        check_greater("lr", lr)
        if not 0.0 <= momentum < 1.0:
            raise invalid("momentum", momentum, "a number in [0, 1)")
        check_non_negative("weight_decay", weight_decay)
        check_greater("growth_rate", growth_rate)
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, k=0,
                        log_every=0, numerator_weighted=0.0, d=d0,
                        growth_rate=growth_rate, fsdp_in_use=False)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(  # type: ignore[override]
        self, closure: Callable[[], float] | None = None
    ) -> float | None:
        loss = evaluate(closure)
        self.refuse_pieces()
        first = self.param_groups[0]
        lr = max(group["lr"] for group in self.param_groups)
        decay, momentum = first["weight_decay"], first["momentum"]
        k, d, numerator = first["k"], first["d"], first["numerator_weighted"]
        for group in self.param_groups:
            self.check_gradients([p for p in group["params"] if p.grad is not None])

        if k == 0:   # ‖g_0‖, without the weight decay
            g0_sq = 0.0
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None and group["lr"] > 0.0:
                        g0_sq += (p.grad * p.grad).sum().item()
            g0_norm = math.sqrt(g0_sq)
            self.param_groups[-1]["g0_norm"] = g0_norm   # the reference's loop variable's group
        else:
            g0_norm = first["g0_norm"]
        dlr = d * lr / g0_norm                                      # λ_k = η d_k / ‖g_0‖

        sk_sq = 0.0
        for group in self.param_groups:
            if group["lr"] not in [lr, 0.0]:
                raise RuntimeError(SECOND_LR)
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "z" not in state:
                    state.update(z=p.detach().clone(), s=torch.zeros_like(p),
                                 x0=p.detach().clone())
                if decay != 0:
                    p.grad.add_(p, alpha=decay)                     # g ← g + λ x (in p.grad)
                if group["lr"] > 0.0:
                    share, s_sq = dadapt_sgd_sums(p.grad, state["s"], dlr=dlr)
                    numerator += share
                    sk_sq += s_sq

        if lr > 0.0:
            d_hat = 2 * numerator / math.sqrt(sk_sq)               # d̂ = 2 r / ‖s‖
            d = max(d, min(d_hat, d * first["growth_rate"]))
        if sk_sq == 0:
            return loss

        for group in self.param_groups:
            group.update(numerator_weighted=numerator, d=d, g0_norm=g0_norm)
            for p in group["params"]:
                if p.grad is not None:
                    state = self.state[p]
                    dadapt_sgd_move(p, state["z"], state["s"], state["x0"], momentum=momentum)
            group["k"] = k + 1
        return loss
