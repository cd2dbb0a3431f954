r"""Adafactor: a second moment stored as row and column factors."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import torch

from ._sharding import global_sum, is_sharded, local, refuse_sharded, sharded_dims
from ._validation import check_bound, check_tensor_lr
from .optimizer import Group, Optimizer, State, new_step_counter


def adafactor(
    param: torch.Tensor,
    grad: torch.Tensor,
    row_var: torch.Tensor | None,
    col_var: torch.Tensor | None,
    variance: torch.Tensor | None,
    step: float,
    *,
    lr: float,
    beta2_decay: float,
    eps1: float | None,
    eps2: float,
    d: float,
    weight_decay: float,
    maximize: bool,
) -> None:
    r"""One Adafactor step on one tensor, in place; ``step`` counts from 1.

    A tensor of two or more dimensions keeps the factors ``row_var``
    :math:`R` (last dimension reduced) and ``col_var`` :math:`C`
    (second-to-last reduced); a vector keeps the full ``variance``
    :math:`V`. Means replace the paper's sums (the ratio is the same).

    .. math::

        G_t &\leftarrow \pm\nabla f(\theta_{t-1}), \qquad
            1-\hat\beta_{2,t} = t^{c}, \qquad
            \rho_t = \min(\eta, 1/\sqrt t) \\
        \alpha_t &\leftarrow \max(\epsilon_2,
            \mathrm{RMS}(\theta_{t-1}))\,\rho_t, \qquad
            \theta_{t-1} \leftarrow (1-\eta\lambda)\,\theta_{t-1} \\
        R_t &\leftarrow \hat\beta_{2,t} R_{t-1}
            + (1-\hat\beta_{2,t})\,\mathrm{mean}_{\text{cols}}(G_t^2), \quad
        C_t \leftarrow \hat\beta_{2,t} C_{t-1}
            + (1-\hat\beta_{2,t})\,\mathrm{mean}_{\text{rows}}(G_t^2) \\
        \hat V_t &\leftarrow R_t C_t / \max(\mathrm{mean}(R_t), \epsilon_1)
            \quad\text{(or } V_t \leftarrow \hat\beta_{2,t} V_{t-1}
            + (1-\hat\beta_{2,t}) G_t^2 \text{ for a vector)} \\
        U_t &\leftarrow G_t / \max(\sqrt{\hat V_t}, \epsilon_1), \qquad
        \theta_t \leftarrow \theta_{t-1}
            - \alpha_t\, U_t / \max(1, \mathrm{RMS}(U_t)/d)

    :math:`c` is ``beta2_decay``; ``eps1=None`` means the machine epsilon
    of the parameter's dtype.

    Complex tensors are not for this rule: :class:`Adafactor` refuses them,
    as torch's does.
    """
    g = -grad if maximize else grad
    if eps1 is None:
        eps1 = torch.finfo(param.dtype).eps              # ε1: machine epsilon
    one_minus_beta2 = step**beta2_decay                  # 1 - β̂2_t = t^c
    rho = min(lr, 1 / (step**0.5))                       # ρ_t = min(η, 1/√t)
    # α_t = max(ε2, RMS(θ_{t-1})) ρ_t
    alpha = max(eps2, param.norm(2).item() / (param.numel() ** 0.5)) * rho
    if weight_decay != 0:
        param.mul_(1 - lr * weight_decay)                # θ ← (1 - ηλ) θ
    if g.dim() > 1:
        assert row_var is not None and col_var is not None   # a matrix's factors
        # mean of G² over the last dimension, as a norm: no G² tensor
        row_mean = torch.norm(g, dim=-1, keepdim=True).square_().div_(
            g.size(-1))
        row_var.lerp_(row_mean, one_minus_beta2)         # R_t
        # mean of G² over the second-to-last dimension
        col_mean = torch.norm(g, dim=-2, keepdim=True).square_().div_(
            g.size(-2))
        col_var.lerp_(col_mean, one_minus_beta2)         # C_t
        v_hat = row_var @ col_var                        # R_t C_t
        # V̂_t = R_t C_t / max(mean(R_t), ε1)
        v_hat.div_(row_var.mean(dim=-2, keepdim=True).clamp_(min=eps1))
    else:
        assert variance is not None                      # a vector's V
        variance.lerp_(g * g, one_minus_beta2)           # V_t
        v_hat = variance.clone()                         # V̂_t = V_t
    # 1 / max(√V̂_t, ε1), as 1/√max(V̂_t, ε1²)
    update = v_hat.clamp_(min=eps1 * eps1).rsqrt_()
    update.mul_(g)                                       # U_t
    # max(1, RMS(U_t)/d): update clipping
    denom = max(1.0, update.norm(2).item() / ((update.numel() ** 0.5) * d))
    param.add_(update, alpha=-alpha / denom)             # θ_t = θ - α_t Û_t


def factored_rsqrt(row: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
    r""":math:`1/\sqrt{\hat V}` of Adafactor's factored estimate
    :math:`\hat V = R C / \mathrm{mean}(R)` (:func:`adafactor`), factor by
    factor: :math:`(R/\mathrm{mean}(R))^{-1/2}\,C^{-1/2}`, the outer product
    of a column and a row.

    ``row`` (:math:`R`) and ``col`` (:math:`C`) are the averages with the
    reduced dimension dropped, shapes ``(..., n)`` and ``(..., m)``; the
    result is ``(..., n, m)``. This is the order of the paper's authors'
    code and of CAME's (:func:`optedu.came`, which takes it twice); no
    product :math:`R_i C_j` of two tiny factors is formed, so nothing
    underflows first. :func:`adafactor` forms :math:`R C` first and floors
    it, as torch does: the same estimate, rounded differently.
    """
    r_factor = (row / row.mean(dim=-1, keepdim=True)).rsqrt_().unsqueeze(-1)
    c_factor = col.unsqueeze(-2).rsqrt()
    return torch.mul(r_factor, c_factor)                 # 1/√V̂ = 1/√(R C / mean R)


def adafactor_sharded(
    param: torch.Tensor,
    grad: torch.Tensor,
    row_var: torch.Tensor | None,
    col_var: torch.Tensor | None,
    variance: torch.Tensor | None,
    step: float,
    *,
    lr: float,
    beta2_decay: float,
    eps1: float | None,
    eps2: float,
    d: float,
    weight_decay: float,
    maximize: bool,
) -> None:
    r""":func:`adafactor` on a parameter cut into row blocks (a DTensor
    sharded along a dimension other than the last, FSDP2's ``Shard(0)``):
    the same rule, each whole-tensor quantity summed over the mesh.

    The state holds this rank's piece (plain tensors): ``row_var`` for its
    rows, ``col_var`` whole (every rank the same), ``variance`` for its
    elements. Per matrix, two all-reduces: :math:`\|\theta\|^2`, the
    column sums of :math:`G^2` (when the rows are split) and
    :math:`\sum R_t` together; then :math:`\|U_t\|^2`. A vector needs one,
    of :math:`\|\theta\|^2` and :math:`\|U_t\|^2`.
    """
    p, g = local(param), local(grad)
    g = -g if maximize else g
    if eps1 is None:
        eps1 = torch.finfo(p.dtype).eps
    one_minus_beta2 = step**beta2_decay
    rho = min(lr, 1 / (step**0.5))
    theta_sq = p.square().sum().reshape(1)
    if g.dim() > 1:
        assert row_var is not None and col_var is not None   # a matrix's factors
        split = g.dim() - 2 in sharded_dims(param)    # rows across ranks
        rows, cols = param.shape[-2], param.shape[-1]
        row_var.lerp_(g.square().sum(dim=-1, keepdim=True).div_(cols),
                      one_minus_beta2)                 # R_t (rows are local)
        col_sum = g.square().sum(dim=-2, keepdim=True)  # Σ_rows G², partial
        r_sum = row_var.sum(dim=-2, keepdim=True)       # Σ R_t, partial
        parts = [theta_sq] + ([col_sum.flatten(), r_sum.flatten()]
                              if split else [])
        packed = global_sum(torch.cat(parts), param)     # one all-reduce
        theta_sq = packed[:1]
        if split:
            n = col_sum.numel()
            col_sum = packed[1:1 + n].view_as(col_sum)
            r_sum = packed[1 + n:].view_as(r_sum)
        col_var.lerp_(col_sum.div(rows), one_minus_beta2)  # C_t
        v_hat = (row_var @ col_var).div_(
            r_sum.div(rows).clamp_(min=eps1))          # R C / max(mean R, ε1)
    else:
        assert variance is not None                      # a vector's V
        variance.lerp_(g * g, one_minus_beta2)           # V_t
        v_hat = variance.clone()
    update = v_hat.clamp_(min=eps1 * eps1).rsqrt_().mul_(g)  # U_t
    if g.dim() > 1:
        u_sq = global_sum(update.square().sum(), param)  # ‖U_t‖²
    else:
        both = global_sum(torch.cat([theta_sq, update.square().sum()
                                     .reshape(1)]), param)
        theta_sq, u_sq = both[:1], both[1]
    n_all = param.numel()                                # the whole tensor's
    alpha = max(eps2, float(theta_sq.sqrt()) / n_all**0.5) * rho
    if weight_decay != 0:
        p.mul_(1 - lr * weight_decay)
    denom = max(1.0, float(u_sq.sqrt()) / (n_all**0.5 * d))
    p.add_(update, alpha=-alpha / denom)


class Adafactor(Optimizer):
    r"""Adafactor (Shazeer & Stern, ICML 2018), a drop-in for
    ``torch.optim.Adafactor`` (torch 2.13).

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: :math:`\eta`, the cap of the relative step size
            :math:`\rho_t` and the scale of the weight decay (default
            ``1e-2``, the paper's constant cap).
        beta2_decay: :math:`c` in :math:`1-\hat\beta_{2,t} = t^c`
            (default ``-0.8``).
        eps: :math:`(\epsilon_1, \epsilon_2)`: the floor of
            :math:`\sqrt{\hat V_t}` (``None``: the dtype's machine epsilon)
            and of :math:`\mathrm{RMS}(\theta)` (default ``(None, 1e-3)``).
        d: update clipping threshold on :math:`\mathrm{RMS}(U_t)`
            (default ``1.0``).
        weight_decay: :math:`\lambda`, a decoupled shrink by
            :math:`1-\eta\lambda` (default ``0``).
        maximize: ascend instead of descend (default ``False``).

    State per parameter: ``step`` and, for two or more dimensions,
    ``row_var`` and ``col_var`` (the last two dimensions factored, the
    others kept); for a vector, ``variance``.

    A parameter sharded by FSDP2 (a DTensor cut along any dimension but the
    last) steps by :func:`adafactor_sharded`: the column means, the mean of
    :math:`R` and both RMS values are sums over the mesh, so the step is the
    whole tensor's; its state is this rank's piece, as plain tensors. A
    placement that cuts the last dimension is refused.

    Differences from torch.optim.Adafactor: no ``foreach``. With
    ``eps=(None, ...)`` torch takes the machine epsilon of the group's
    *first* parameter for the whole group; optedu takes each parameter's own (the same unless a group mixes dtypes).

    Differences from the paper, as torch writes the rule: no first moment;
    :math:`\rho_t` capped by ``lr`` (the paper: 0.01); weight decay, which
    the paper has not; :math:`\epsilon_1` floors :math:`\hat V_t` and its
    denominator instead of being added to :math:`G_t^2` (the paper: 1e-30);
    tensors of three or more dimensions factored over their last two.
    """

    supports_complex = False  # torch's Adafactor refuses complex parameters at step

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        beta2_decay: float = -0.8,
        eps: tuple[float | None, float] = (None, 1e-3),
        d: float = 1.0,
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
    ) -> None:
        check_tensor_lr(lr)
        check_bound("Learning rate", lr, 0.0)
        check_bound("beta2_decay", beta2_decay, 0.0, above=False)
        if eps[0] is not None:
            check_bound("epsilon1", eps[0], 0.0)
        check_bound("epsilon2", eps[1], 0.0)
        check_bound("Clipping threshold d", d, 1.0)
        check_bound("weight_decay", weight_decay, 0.0)
        defaults = dict(lr=lr, beta2_decay=beta2_decay, eps=eps, d=d,
                        weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        state: State = {"step": new_step_counter()}
        grad = local(cast(torch.Tensor, param.grad))  # a sharded parameter: its piece
        if grad.dim() > 1 and grad.dim() - 1 in sharded_dims(param):
            refuse_sharded("Adafactor", param, "its row statistics need "
                           "whole rows, and this placement cuts the last "
                           "dimension")
        if grad.dim() > 1:
            # the last dimension reduced to 1, then the second-to-last
            state["row_var"] = grad.new_zeros((*grad.shape[:-1], 1))
            state["col_var"] = grad.new_zeros(
                (*grad.shape[:-2], 1, grad.shape[-1]))
        else:
            state["variance"] = torch.zeros_like(
                grad, memory_format=torch.preserve_format)
        return state

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State,
               group: Group) -> None:
        state["step"] += 1
        eps1, eps2 = group["eps"]
        rule = adafactor_sharded if is_sharded(param) else adafactor
        rule(param, grad, state.get("row_var"), state.get("col_var"),
             state.get("variance"), state["step"].item(),
             lr=group["lr"], beta2_decay=group["beta2_decay"],
             eps1=eps1, eps2=eps2, d=group["d"],
             weight_decay=group["weight_decay"],
             maximize=group["maximize"])
