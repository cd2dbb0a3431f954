r"""Shampoo: one preconditioner matrix per dimension of a tensor, applied as
a Kronecker product (Gupta, Koren and Singer, 2018)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import torch

from ._validation import check_integer, check_non_negative, invalid
from .optimizer import Group, Optimizer, State


def inverse_root(matrix: torch.Tensor, power: float) -> torch.Tensor:
    r""":math:`H^{-1/p}` of a symmetric positive definite :math:`H` by its
    SVD :math:`H = U\,\mathrm{diag}(s)\,V^\top`:
    :math:`U\,\mathrm{diag}(s^{-1/p})\,V^\top`, computed in float32 (float64
    for a float64 matrix) and returned in the matrix's dtype.

    For a symmetric positive definite matrix the SVD is the
    eigendecomposition (:math:`U = V`); the SVD is what Gupta et al. used and
    what the reference calls, so the two agree bit for bit.
    """
    dtype = torch.float64 if matrix.dtype == torch.float64 else torch.float32
    u, s, vh = torch.linalg.svd(matrix.to(dtype), full_matrices=False)
    return ((u * s.pow(-1.0 / power).unsqueeze(-2)) @ vh).to(matrix.dtype)


def shampoo(
    param: torch.Tensor,
    grad: torch.Tensor,
    state: State,
    *,
    lr: float,
    momentum: float,
    weight_decay: float,
    weight_decouple: bool,
    fixed_decay: bool,
    refresh: bool,
    maximize: bool,
) -> None:
    r"""One Shampoo step on one tensor of order :math:`k`, in place (Gupta
    et al., 2018, Algorithm 2; for a matrix, Algorithm 1).

    .. math::

        g &\leftarrow -g \quad\text{if maximize} \\
        g &\leftarrow (1-\mu)\, g + \mu\, m_{t-1} \\
            &\quad\text{(if } \mu > 0\text{; } m_0 = g_1) \\
        g &\leftarrow g + \lambda\,\theta_{t-1} \\
            &\quad\text{or}\quad
            \theta_{t-1} \leftarrow (1-\eta\lambda)\,\theta_{t-1} \\
            &\quad (\text{decoupled; } 1-\lambda \text{ if fixed}) \\
        H^{(i)}_t &= H^{(i)}_{t-1} + g_{(i)}\, g_{(i)}^\top, \\
            &\quad H^{(i)}_0 = \epsilon I_{d_i},
            \quad i = 1..k \\
        P^{(i)} &= \bigl(H^{(i)}_t\bigr)^{-1/(2k)} \\
            &\quad\text{(every } T \text{ steps;} \\
            &\quad P^{(i)} = 0 \text{ before the first)} \\
        m_t &= g \times_1 P^{(1)} \times_2 P^{(2)} \cdots \times_k P^{(k)} \\
        \theta_t &= \theta_{t-1} - \eta\, m_t

    :math:`g_{(i)}` is the mode-:math:`i` unfolding (dimension :math:`i`
    first, the rest flattened) and :math:`\times_i` multiplies dimension
    :math:`i` by a matrix. For a matrix :math:`G` (:math:`k = 2`) this is
    :math:`L^{-1/4} G R^{-1/4}` with :math:`L = \epsilon I + \sum G G^\top`,
    :math:`R = \epsilon I + \sum G^\top G`; for a vector (:math:`k = 1`)
    it is full-matrix AdaGrad, :math:`(\epsilon I + \sum g g^\top)^{-1/2} g`.
    ``state`` holds ``pre_cond_i`` (:math:`H^{(i)}`), ``inv_pre_cond_i``
    (:math:`P^{(i)}`) and ``momentum_buffer`` (:math:`m_t`, the last
    *preconditioned* step, which the next step mixes into the raw gradient).
    """
    if maximize:
        grad = -grad
    if momentum > 0.0:
        grad = torch.lerp(grad, state["momentum_buffer"], momentum)  # (1-μ) g + μ m
    if weight_decay != 0.0:
        if weight_decouple:                       # θ ← (1 - ηλ) θ, or (1 - λ) θ
            param.mul_(1.0 - weight_decay * (1.0 if fixed_decay else lr))
        else:
            grad = grad.add(param, alpha=weight_decay)          # g + λ θ
    order = grad.dim()
    update = grad
    for i, d in enumerate(grad.shape):
        unfolded = grad.movedim(i, 0).reshape(d, -1)            # g_(i)
        state[f"pre_cond_{i}"].addmm_(unfolded, unfolded.t())   # H_i += g_(i) g_(i)ᵀ
        root = state[f"inv_pre_cond_{i}"]
        if refresh:
            root.copy_(inverse_root(state[f"pre_cond_{i}"], 2 * order))  # H_i^{-1/2k}
        # ×_i P_i: dimension i to the front, multiply, and leave it there;
        # the last product, from the right, puts every dimension back
        update = update.transpose(0, i).contiguous()
        shape = update.shape
        update = update.view(d, -1)
        if i == order - 1:
            update = (update.t() @ root).view(grad.shape)
        else:
            update = (root @ update).view(shape)
    # a 0-d tensor is never multiplied: keep a copy, not the caller's gradient
    state["momentum_buffer"] = update.clone() if update is grad else update
    param.add_(update, alpha=-lr)                               # θ - η m_t


class Shampoo(Optimizer):
    r"""Shampoo (Gupta, Koren and Singer, "Shampoo: Preconditioned Stochastic
    Tensor Optimization", ICML 2018), with the options of
    ``pytorch_optimizer.Shampoo``: a momentum that mixes the last step into
    the gradient, L2 or decoupled weight decay, and inverse roots refreshed
    every ``preconditioning_compute_steps`` steps.

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: learning rate :math:`\eta` (default ``1e-3``).
        momentum: :math:`\mu\in[0,1)`, the weight of the last step in the
            gradient (default ``0``).
        weight_decay: :math:`\lambda` (default ``0``).
        weight_decouple: shrink the weights by :math:`1-\eta\lambda` instead
            of adding :math:`\lambda\theta` to the gradient (default ``False``).
        fixed_decay: with ``weight_decouple``, shrink by :math:`1-\lambda`
            (default ``False``).
        preconditioning_compute_steps: :math:`T`, steps between two
            computations of the inverse roots (default ``1``); optimizer-wide.
        matrix_eps: :math:`\epsilon`, the statistics start at
            :math:`\epsilon I` (default ``1e-6``).
        maximize: ascend instead (default ``False``); optimizer-wide.

    State per parameter of shape :math:`(d_1, \dots, d_k)`: ``pre_cond_i``
    and ``inv_pre_cond_i``, each :math:`d_i\times d_i`, and
    ``momentum_buffer`` (the parameter's shape): :math:`\prod d_i +
    2\sum d_i^2` numbers. Group key ``step`` (an int, added at the first
    step), as the reference keeps it.

    Differences from ``pytorch_optimizer.Shampoo`` (4.1.0, the reference the
    tests run): none in the steps (bit-identical, float32 and float64). It
    overwrites ``p.grad`` (negated, mixed with the momentum, decayed);
    optedu leaves the gradient alone. Its momentum buffer of a 0-d tensor is
    ``p.grad`` itself; here a copy. It refuses sparse gradients and complex
    parameters with its own exceptions; here torch's ``RuntimeError``.
    ``preconditioning_compute_steps`` must be an integer here. A pickled or
    deep-copied reference loses ``maximize`` and
    ``preconditioning_compute_steps`` (its next step raises); this one keeps them.

    Departures of both from the paper: with :math:`T > 1` the roots are zero
    until step :math:`T`, so the first :math:`T-1` steps do not move the
    weights (the paper refreshes every step); the momentum is not in the
    paper, and it feeds the statistics; no grafting and no limit on the
    dimension (a 50,000-word embedding gets a 50,000 × 50,000 factor: Anil
    et al., 2020, graft and block).
    """

    supports_complex = False
    refuses_shards = (  # see ._sharding
        "its factors H_i = Σ g_(i) g_(i)ᵀ and their roots need the whole tensor")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        weight_decouple: bool = False,
        fixed_decay: bool = False,
        preconditioning_compute_steps: int = 1,
        matrix_eps: float = 1e-6,
        maximize: bool = False,
    ) -> None:
        check_non_negative("lr", lr)
        if not 0.0 <= momentum < 1.0:
            raise invalid("momentum", momentum, "a number in [0, 1)")
        check_non_negative("weight_decay", weight_decay)
        check_integer("preconditioning_compute_steps", preconditioning_compute_steps, 1)
        check_non_negative("matrix_eps", matrix_eps)
        self.preconditioning_compute_steps = preconditioning_compute_steps
        self.maximize = maximize
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay,
                        weight_decouple=weight_decouple, fixed_decay=fixed_decay,
                        matrix_eps=matrix_eps)
        super().__init__(params, defaults)

    def __getstate__(self) -> dict[str, Any]:
        # torch pickles and deep-copies only defaults, state and groups; keep
        # the two optimizer-wide options too (the reference loses them)
        return {**super().__getstate__(),
                "preconditioning_compute_steps": self.preconditioning_compute_steps,
                "maximize": self.maximize}

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        grad = cast(torch.Tensor, param.grad)          # a stepped parameter has one
        state: State = {}
        if group["momentum"] > 0.0:
            state["momentum_buffer"] = grad.clone()
        for i, d in enumerate(grad.shape):
            state[f"pre_cond_{i}"] = torch.eye(d, dtype=grad.dtype, device=grad.device).mul_(
                group["matrix_eps"])                                  # H_0 = εI
            state[f"inv_pre_cond_{i}"] = grad.new_zeros(d, d)
        return state

    def update_group(self, params: list[torch.Tensor], grads: list[torch.Tensor],
                     states: list[State], group: Group) -> None:
        group["step"] = group.get("step", 0) + 1
        refresh = group["step"] % self.preconditioning_compute_steps == 0
        for param, grad, state in zip(params, grads, states):
            shampoo(param, grad, state, lr=group["lr"], momentum=group["momentum"],
                    weight_decay=group["weight_decay"],
                    weight_decouple=group["weight_decouple"],
                    fixed_decay=group["fixed_decay"], refresh=refresh,
                    maximize=self.maximize)
