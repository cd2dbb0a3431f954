r"""SOAP: Adam run in the eigenbasis of Shampoo's Kronecker factors."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from itertools import chain
from typing import Any, cast

import torch

from ._validation import check_betas, check_integer, check_interval, check_non_negative, invalid
from .optimizer import Group, Optimizer, State, evaluate

Basis = Any      # a factor or a basis: a square tensor, or [] for a dimension left alone


def merge_small_dims(shape: Iterable[int], max_dim: int) -> list[int]:
    """Neighbouring dimensions multiplied together while the product stays within ``max_dim``
    (pytorch_optimizer's rule; see :class:`SOAP` for the one case where optedu differs).

    >>> merge_small_dims([2, 3, 64, 5], 100)
    [6, 64, 5]
    """
    merged, product = [], 1
    for dim in shape:
        product *= dim
        if product > max_dim:
            merged.append(product // dim)
            product = dim
    return merged + [product]


def as_preconditioned(tensor: torch.Tensor, merge_dims: bool, max_dim: int,
                      data_format: str) -> torch.Tensor:
    """The tensor in the shape SOAP preconditions: itself, or (``merge_dims``) its small
    dimensions merged, a 4-D ``channels_last`` tensor first permuted to channels first."""
    if not merge_dims:
        return tensor
    if data_format == "channels_last" and tensor.dim() == 4:
        tensor = tensor.permute(0, 3, 1, 2)
    return tensor.reshape(merge_small_dims(tensor.size(), max_dim))


def rotate(tensor: torch.Tensor, bases: list[Basis], *, merge_dims: bool, max_dim: int,
           data_format: str, back: bool = False) -> torch.Tensor:
    r""":math:`Q_L^\top X Q_R` for a matrix (``back``: :math:`Q_L X Q_R^\top`), and for any
    tensor each dimension multiplied by its basis in turn (an empty basis: left alone).

    Each ``tensordot`` contracts dimension 0 and appends the result as the last dimension, so
    after a pass over every dimension they are back in order."""
    shape = tensor.shape
    channels_last = data_format == "channels_last" and tensor.dim() == 4
    tensor = as_preconditioned(tensor, merge_dims, max_dim, data_format)
    for q in bases:
        if isinstance(q, torch.Tensor):
            tensor = torch.tensordot(tensor, q, dims=[[0], [1 if back else 0]])
        else:
            tensor = tensor.permute([*range(1, tensor.dim()), 0])
    if not merge_dims:
        return tensor
    if channels_last:
        return tensor.reshape(shape[0], shape[3], shape[1], shape[2]).permute(0, 2, 3, 1)
    return tensor.reshape(shape)


def new_factors(grad: torch.Tensor, *, merge_dims: bool, max_dim: int, precondition_1d: bool,
                data_format: str) -> list[Basis]:
    """Zero factors, one :math:`d\\times d` matrix per preconditioned dimension of size
    :math:`d \\le` ``max_dim``, ``[]`` for the others; a vector only with ``precondition_1d``."""
    if grad.dim() == 1:
        d = grad.shape[0]
        return [grad.new_zeros(d, d) if precondition_1d and d <= max_dim else []]
    sizes = as_preconditioned(grad, merge_dims, max_dim, data_format).shape
    return [grad.new_zeros(d, d) if d <= max_dim else [] for d in sizes]


def accumulate(grad: torch.Tensor, factors: list[Basis], shampoo_beta: float, *,
               merge_dims: bool, max_dim: int, data_format: str) -> None:
    r"""Shampoo's statistics, in place: :math:`L \leftarrow \beta_s L + (1-\beta_s) G G^\top`,
    :math:`R \leftarrow \beta_s R + (1-\beta_s) G^\top G` (for a tensor: :math:`G` contracted
    with itself over every dimension but one)."""
    if grad.dim() == 1:
        if isinstance(factors[0], torch.Tensor):
            factors[0].lerp_((grad.unsqueeze(1) @ grad.unsqueeze(0)).to(factors[0].dtype),
                             weight=1.0 - shampoo_beta)
        return
    g = as_preconditioned(grad, merge_dims, max_dim, data_format)
    for i, factor in enumerate(factors):
        if isinstance(factor, torch.Tensor):
            others = [*chain(range(i), range(i + 1, g.dim()))]
            outer = torch.tensordot(g, g, dims=[others, others])      # G G^T, G^T G, ...
            factor.lerp_(outer.to(factor.dtype), weight=1.0 - shampoo_beta)


def eigenbases(factors: list[Basis]) -> list[Basis]:
    r"""Each factor's eigenvectors, by eigenvalue from largest to smallest:
    :math:`L = Q_L \Lambda_L Q_L^\top`. ``eigh`` sees :math:`L + 10^{-30} I` (a zero factor
    still has a basis, the identity's), and reruns in float64 if it fails."""
    bases: list[Basis] = []
    for m in factors:
        if not isinstance(m, torch.Tensor):
            bases.append([])
            continue
        try:
            _, q = torch.linalg.eigh(m + 1e-30 * torch.eye(m.shape[0], dtype=m.dtype, device=m.device))
        except RuntimeError:  # torch.linalg.LinAlgError: no convergence
            m64 = m.to(torch.float64)
            _, q = torch.linalg.eigh(m64 + 1e-30 * torch.eye(m.shape[0], dtype=torch.float64, device=m.device))
            q = q.to(m.dtype)
        bases.append(torch.flip(q, dims=[1]))                          # largest first
    return bases


def power_qr(factors: list[Basis], bases: list[Basis], exp_avg_sq: torch.Tensor, *,
             merge_dims: bool, max_dim: int,
             data_format: str) -> tuple[list[Basis], torch.Tensor]:
    r"""The refresh of the paper (Vyas et al., 2024, Algorithm 4): one step of power iteration
    from the old basis, then QR: :math:`Q \leftarrow \mathrm{QR}(L Q)`.

    The columns are first sorted by the estimated eigenvalues
    :math:`\hat\lambda_i = q_i^\top L q_i`, largest first, and ``exp_avg_sq``'s coordinates
    move with them (Adam's second moment stays with its direction). The QR runs in float32,
    even for float64 factors, as the reference does. Returns the new bases and the permuted
    second moment."""
    shape = exp_avg_sq.shape
    channels_last = data_format == "channels_last" and len(shape) == 4
    v = as_preconditioned(exp_avg_sq, merge_dims, max_dim, data_format)
    new: list[Basis] = []
    for i, (m, q) in enumerate(zip(factors, bases)):
        if not isinstance(m, torch.Tensor):
            new.append([])
            continue
        lq = m @ q                                                     # L Q
        order = torch.argsort((q * lq).sum(dim=0), descending=True)    # λ̂_i = q_iᵀ L q_i
        v = v.index_select(i, order)
        q_new, _ = torch.linalg.qr(lq.index_select(1, order).to(torch.float32))
        new.append(q_new.to(lq.dtype))                                 # Q = QR(L Q)
    if merge_dims:
        v = (v.reshape(shape[0], shape[3], shape[1], shape[2]).permute(0, 2, 3, 1)
             if channels_last else v.reshape(shape))
    return new, v


def soap(
    param: torch.Tensor,
    grad: torch.Tensor,
    state: State,
    *,
    lr: float,
    step_size: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    normalize_gradient: bool,
    merge_dims: bool,
    max_dim: int,
    data_format: str,
) -> None:
    r"""One SOAP step on one tensor, in place (Vyas et al., 2024, Algorithm 3): Adam in the
    rotated basis, the first moment kept in the original one.

    .. math::

        G' &= Q_L^\top G\, Q_R \\
        M &\leftarrow \beta_1 M + (1-\beta_1)\, G \\
        V &\leftarrow \beta_2 V + (1-\beta_2)\, G' \odot G' \\
        N &= Q_L \Big(\frac{Q_L^\top M Q_R}{\sqrt{V}+\epsilon}\Big) Q_R^\top \\
            &\quad(\text{optionally} \\
            &\quad\ N \leftarrow N / (\mathrm{RMS}(N)+\epsilon)) \\
        W &\leftarrow W - \alpha_t N, \\
        W &\leftarrow (1-\eta\lambda) W

    ``step_size`` is :math:`\alpha_t = \eta\sqrt{1-\beta_2^t}/(1-\beta_1^t)` (or :math:`\eta`
    without bias correction). The factors and bases are updated after the step
    (:func:`accumulate`, :func:`power_qr`), by :class:`SOAP`.
    """
    where: dict[str, Any] = dict(merge_dims=merge_dims, max_dim=max_dim, data_format=data_format)
    bases, exp_avg, exp_avg_sq = state["Q"], state["exp_avg"], state["exp_avg_sq"]
    g_rot = rotate(grad, bases, **where)                               # G' = Q_Lᵀ G Q_R
    exp_avg.lerp_(grad, weight=1.0 - beta1)                            # M = β1 M + (1-β1) G
    exp_avg_sq.lerp_(g_rot.square(), weight=1.0 - beta2)               # V = β2 V + (1-β2) G'²
    denom = exp_avg_sq.sqrt().add_(eps)                                # √V + ε
    m_rot = rotate(exp_avg, bases, **where)                            # M' = Q_Lᵀ M Q_R
    n = rotate(m_rot / denom, bases, back=True, **where)               # N = Q_L (M'/·) Q_Rᵀ
    if normalize_gradient:
        n.div_(torch.mean(n.square()).sqrt_().add_(eps))               # N / (RMS(N) + ε)
    param.add_(n, alpha=-step_size)                                    # W = W - α_t N
    if weight_decay != 0.0:
        param.mul_(1.0 - weight_decay * lr)                            # W = (1 - ηλ) W


class SOAP(Optimizer):
    r"""SOAP, ShampoO with Adam in the Preconditioner's eigenbasis (Vyas et al., "SOAP:
    Improving and Stabilizing Shampoo using Adam", 2024), a drop-in for
    ``pytorch_optimizer.SOAP`` (4.1.0).

    Per parameter it keeps Shampoo's factors :math:`L, R` (``GG``), their eigenbases
    :math:`Q_L, Q_R` (``Q``) and Adam's moments; Adam runs on the gradient rotated into the
    eigenbasis (:func:`soap`). The first step only gathers :math:`L, R` and takes their
    eigenbases by ``eigh``; every ``precondition_frequency`` steps after, the bases are
    refreshed by one power-iteration step and QR (:func:`power_qr`).

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: :math:`\eta` (default ``3e-3``).
        betas: Adam's :math:`(\beta_1, \beta_2)` (default ``(0.95, 0.95)``).
        shampoo_beta: :math:`\beta_s`, the decay of :math:`L, R` (default ``None``:
            :math:`\beta_2`).
        weight_decay: :math:`\lambda`, decoupled, after the step (default ``1e-2``).
        precondition_frequency: :math:`k`, steps between refreshes of the bases (default 10).
        max_precondition_dim: a dimension larger than this gets no factor (identity basis)
            (default ``10000``).
        merge_dims: merge neighbouring small dimensions first (default ``False``).
        precondition_1d: give vectors a factor too (default ``False``: plain Adam on them).
        correct_bias: Adam's bias correction (default ``True``).
        normalize_gradient: divide the step by its RMS (default ``False``).
        data_format: ``'channels_first'`` or ``'channels_last'``, how a 4-D tensor is laid out
            for ``merge_dims`` (default ``'channels_first'``).
        eps: :math:`\epsilon`, outside the square root (default ``1e-8``).
        maximize: ascend instead of descend (default ``False``).

    State per parameter: ``exp_avg``, ``exp_avg_sq`` (shaped like the parameter), ``GG`` and
    ``Q`` (lists: a :math:`d\times d` matrix per preconditioned dimension, ``[]`` otherwise),
    ``precondition_frequency`` and ``shampoo_beta`` (the group's values when the state was
    made). The group holds ``step``, an ``int``, as the reference's does.

    Differences from ``pytorch_optimizer.SOAP`` (4.1.0, the reference the tests run): none in
    the steps (bit-identical, float32 and float64) wherever the reference runs. With
    ``merge_dims=True`` it raises ``shape '[1]' is invalid`` on every tensor whose dimensions
    all merge into one (any tensor of 2 to ``max_precondition_dim`` elements: a bias, a small
    matrix): its ``merge_small_dims`` returns ``[1]`` there; optedu keeps the one merged
    dimension, as the paper's code does. ``data_format`` is checked. ``maximize`` negates a copy of the
    gradient (the reference negates ``p.grad`` in place). Sparse gradients and complex
    parameters are refused with a ``RuntimeError``, as optedu's other rules do.

    Departures from the paper, as the reference writes it: the decay is
    :math:`W \leftarrow (1-\eta\lambda)W` (the paper's code: :math:`W - \eta\lambda W`, one
    rounding apart); a parameter first seen after step 1 is stepped at once (its first-step
    skip is per group), with its factors fed its first gradient twice.
    """

    supports_complex = False
    tensor_step = False     # the group's ``step`` is an int, as the reference's
    refuses_shards = "its factors G Gᵀ and Gᵀ G need the whole tensor"

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 3e-3,
        betas: tuple[float, float] = (0.95, 0.95),
        shampoo_beta: float | None = None,
        weight_decay: float = 1e-2,
        precondition_frequency: int = 10,
        max_precondition_dim: int = 10000,
        merge_dims: bool = False,
        precondition_1d: bool = False,
        correct_bias: bool = True,
        normalize_gradient: bool = False,
        data_format: str = "channels_first",
        eps: float = 1e-8,
        maximize: bool = False,
    ) -> None:
        check_non_negative("lr", lr)
        betas = check_betas(betas)
        if shampoo_beta is not None:
            check_interval("shampoo_beta", shampoo_beta, 0.0, 1.0)
        check_non_negative("weight_decay", weight_decay)
        check_integer("precondition_frequency", precondition_frequency, 1)
        check_integer("max_precondition_dim", max_precondition_dim, 1)
        check_non_negative("eps", eps)
        if data_format not in ("channels_first", "channels_last"):
            raise invalid("data_format", repr(data_format),
                          "'channels_first' or 'channels_last'")
        self.data_format = data_format
        self.maximize = maximize
        defaults = dict(lr=lr, betas=betas, shampoo_beta=shampoo_beta,
                        weight_decay=weight_decay,
                        precondition_frequency=precondition_frequency,
                        max_precondition_dim=max_precondition_dim, merge_dims=merge_dims,
                        precondition_1d=precondition_1d, correct_bias=correct_bias,
                        normalize_gradient=normalize_gradient, eps=eps)
        super().__init__(params, defaults)

    refresh = staticmethod(power_qr)   # a subclass may compare another refresh

    def __getstate__(self) -> dict[str, Any]:
        # torch pickles and deep-copies only defaults, state and groups; keep the two
        # optimizer-wide options too (the reference loses them, and its next step fails)
        return {**super().__getstate__(), "data_format": self.data_format,
                "maximize": self.maximize}

    def _update_preconditioner(self, grad: torch.Tensor, state: State, step: int,
                               group: Group) -> None:
        """Feed the factors; take the bases by ``eigh`` the first time, refresh them when
        ``step`` is a positive multiple of the frequency."""
        where = dict(merge_dims=group["merge_dims"], max_dim=group["max_precondition_dim"],
                     data_format=self.data_format)
        accumulate(grad, state["GG"], state["shampoo_beta"], **where)
        if state["Q"] is None:
            state["Q"] = eigenbases(state["GG"])
        if step > 0 and step % state["precondition_frequency"] == 0:
            state["Q"], state["exp_avg_sq"] = self.refresh(
                state["GG"], state["Q"], state["exp_avg_sq"], **where)

    @torch.no_grad()
    def step(  # type: ignore[override]
        self, closure: Callable[[], float] | None = None
    ) -> float | None:
        """One SOAP step; ``closure`` re-runs the model and returns the loss."""
        loss = evaluate(closure)
        for group, params in self.groups_with_gradients():
            group.setdefault("step", 0)
            beta1, beta2 = group["betas"]
            for p in params:
                state, raw = self.state[p], cast(torch.Tensor, p.grad)
                if not state:                  # first sight: factors, then the bases
                    state["exp_avg"] = torch.zeros_like(raw)
                    state["exp_avg_sq"] = torch.zeros_like(raw)
                    state["GG"] = new_factors(
                        raw, merge_dims=group["merge_dims"],
                        max_dim=group["max_precondition_dim"],
                        precondition_1d=group["precondition_1d"],
                        data_format=self.data_format)
                    state["Q"] = None
                    state["precondition_frequency"] = group["precondition_frequency"]
                    shampoo_beta = group["shampoo_beta"]
                    state["shampoo_beta"] = beta2 if shampoo_beta is None else shampoo_beta
                    self._update_preconditioner(raw, state, group["step"], group)
            group["step"] += 1
            if group["step"] == 1:             # the first step only builds the bases
                continue
            t = group["step"] - 1
            step_size = group["lr"]
            if group["correct_bias"]:          # α_t = η √(1-β2^t) / (1-β1^t)
                step_size *= math.sqrt(1.0 - math.pow(beta2, t)) / (1.0 - math.pow(beta1, t))
            for p in params:
                raw = cast(torch.Tensor, p.grad)
                grad = -raw if self.maximize else raw
                state = self.state[p]
                soap(p, grad, state, lr=group["lr"], step_size=step_size, beta1=beta1,
                     beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"],
                     normalize_gradient=group["normalize_gradient"],
                     merge_dims=group["merge_dims"], max_dim=group["max_precondition_dim"],
                     data_format=self.data_format)
                self._update_preconditioner(grad, state, t, group)
        return loss
