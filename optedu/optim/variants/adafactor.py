r"""Adafactor as Shazeer & Stern's paper writes it: a comparison variant of
:func:`optedu.adafactor`.

VARIANT: not what ``torch.optim.Adafactor`` (and so ``optedu.Adafactor``)
computes. The Adafactor chapter runs it beside optedu's rule so that the
two conventions that differ are executed, not asserted:

- :math:`\epsilon_1` (paper: :math:`10^{-30}`) is *added* to every
  :math:`G_t^2` before the row and column sums; torch instead floors
  :math:`1^\top R_t` and :math:`\sqrt{\hat V_t}` at the dtype's machine
  epsilon;
- the relative step is capped by a constant ``rho_max`` (paper:
  :math:`10^{-2}`); torch caps it by ``lr``.

Sums as in the paper (torch uses means: the ratio is the same).
:math:`1/\sqrt{\hat V_t}` is formed factor by factor, as Hugging Face's
``transformers.Adafactor`` does, so that :math:`\epsilon_1 = 10^{-30}`
does not underflow in float32 where a zero row meets a zero column. No
first moment, no weight decay, no ``maximize``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from optedu.optim.optimizer import Group, Optimizer, State


def adafactor_paper(
    param: torch.Tensor,
    grad: torch.Tensor,
    row_var: torch.Tensor | None,
    col_var: torch.Tensor | None,
    variance: torch.Tensor | None,
    step: int,
    *,
    rho_max: float = 1e-2,
    beta2_decay: float = -0.8,
    eps1: float = 1e-30,
    eps2: float = 1e-3,
    d: float = 1.0,
) -> None:
    r"""VARIANT, not torch's rule: one step of the paper's Algorithm 4
    (a tensor of two or more dimensions, factored over its last two) or
    Algorithm 5 (a vector), in place; ``step`` counts from 1.

    .. math::

        R_t &= \hat\beta_{2t} R_{t-1} + (1-\hat\beta_{2t})
            (G_t^2 + \epsilon_1 1_n 1_m^\top)\, 1_m \\
        C_t &= \hat\beta_{2t} C_{t-1} + (1-\hat\beta_{2t})\,
            1_n^\top (G_t^2 + \epsilon_1 1_n 1_m^\top) \\
        \hat V_t &= R_t C_t / (1_n^\top R_t), \qquad
        U_t = G_t / \sqrt{\hat V_t}

    with :math:`\hat\beta_{2t} = 1 - t^{c}`,
    :math:`\rho_t = \min(\rho_{\max}, 1/\sqrt t)` and the step
    :math:`\max(\epsilon_2, \mathrm{RMS}(\theta))\,\rho_t\,
    U_t / \max(1, \mathrm{RMS}(U_t)/d)`.
    """
    one_minus_beta2 = step**beta2_decay                  # 1 - β̂2t = t^c
    rho = min(rho_max, step**-0.5)                       # ρ_t
    rms = param.norm(2).item() / param.numel() ** 0.5
    alpha = max(eps2, rms) * rho                         # α_t
    g2 = grad * grad + eps1                              # G² + ε1
    if grad.dim() > 1:
        assert row_var is not None and col_var is not None   # a matrix's factors
        row_var.lerp_(g2.sum(dim=-1, keepdim=True), one_minus_beta2)  # R_t
        col_var.lerp_(g2.sum(dim=-2, keepdim=True), one_minus_beta2)  # C_t
        # 1/√V̂_t = 1/√(R_t/1ᵀR_t) · 1/√C_t, factor by factor: the product
        # R_i C_j of two tiny factors would underflow in float32
        r_factor = (row_var / row_var.sum(dim=-2, keepdim=True)).rsqrt()
        update = grad * r_factor * col_var.rsqrt()       # U_t
    else:
        assert variance is not None                          # a vector's V
        variance.lerp_(g2, one_minus_beta2)              # V_t
        update = grad * variance.rsqrt()                 # U_t
    rms_u = update.norm(2).item() / update.numel() ** 0.5
    param.sub_(update, alpha=alpha / max(1.0, rms_u / d))


class AdafactorPaper(Optimizer):
    r"""VARIANT, for comparison only: an optimizer that applies
    :func:`adafactor_paper`, the paper's Adafactor without first moment.

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        rho_max: the cap of the relative step (default ``1e-2``).
        beta2_decay: :math:`c` in :math:`1-\hat\beta_{2t} = t^c`
            (default ``-0.8``).
        eps1: added to :math:`G_t^2` (default ``1e-30``).
        eps2: floor of :math:`\mathrm{RMS}(\theta)` (default ``1e-3``).
        d: update clipping threshold (default ``1.0``).

    State per parameter: ``step`` (a Python int) and ``row_var`` and
    ``col_var`` (row and column *sums*), or ``variance`` for a vector.
    """

    def __init__(self, params: Iterable[Any], rho_max: float = 1e-2,
                 beta2_decay: float = -0.8, eps1: float = 1e-30,
                 eps2: float = 1e-3, d: float = 1.0) -> None:
        super().__init__(params, dict(rho_max=rho_max,
                                      beta2_decay=beta2_decay, eps1=eps1,
                                      eps2=eps2, d=d))

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        if param.dim() > 1:
            return {"step": 0,
                    "row_var": param.new_zeros((*param.shape[:-1], 1)),
                    "col_var": param.new_zeros(
                        (*param.shape[:-2], 1, param.shape[-1]))}
        return {"step": 0, "variance": torch.zeros_like(param)}

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State,
               group: Group) -> None:
        state["step"] += 1
        adafactor_paper(param, grad, state.get("row_var"),
                        state.get("col_var"), state.get("variance"),
                        state["step"], rho_max=group["rho_max"],
                        beta2_decay=group["beta2_decay"], eps1=group["eps1"],
                        eps2=group["eps2"], d=group["d"])
