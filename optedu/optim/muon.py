r"""Muon: momentum orthogonalised by a Newton–Schulz iteration, for
matrices.

On a sharded parameter (FSDP2's DTensor, each rank holding a block of
rows) the orthogonalisation needs the whole matrix: :func:`muon` gathers the
Nesterov momentum with one all-gather (:func:`~optedu.optim._sharding.gather_matrix`), runs the same
Newton–Schulz iteration on every rank, and keeps this rank's rows
(:func:`~optedu.optim._sharding.local_rows`). The momentum stays sharded (an element-wise average).
Per matrix of :math:`\Psi` bytes and :math:`n` ranks this costs one
all-gather, in the bfloat16 that the iteration reads (:math:`\Psi` bytes
of bfloat16 gathered, :math:`\Psi(n-1)/n` sent per rank on a ring), a whole
matrix (and its orthogonalised copy) in memory on every rank for the time
of its step, and the iteration computed :math:`n` times over.
``optedu.distributed.muon`` computes each matrix once, on one owner.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, cast

import torch

from ._sharding import gather_matrix, local, local_rows
from ._validation import check_bound, check_tensor_lr
from .fused import FusedOptimizer, check_fused, compiled, flat, learning_rate, run_in_chunks
from .optimizer import Group, State

# Keller Jordan's quintic, as torch 2.13 takes it
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)

# Polar Express (Amsel et al., 2025, Algorithm 1): the optimal quintic of
# each step for singular values in [1e-3, 1], degree 5, eight steps (the
# last repeats); every step but the last is p(x/1.01), the paper's safety
# factor for bfloat16 round-off. One departure: the paper's code also
# divides the input by 1.01·‖M‖_F; here, as torch, by ‖M‖_F (measured in
# book/after_muon.ipynb: 0.078 against its 0.113 after 5 bfloat16 steps)
_POLAR_EXPRESS_RAW = (
    (8.28721201814563, -23.595886519098837, 17.300387312530933),
    (4.107059111542203, -2.9478499167379106, 0.5448431082926601),
    (3.9486908534822946, -2.908902115962949, 0.5518191394370137),
    (3.3184196573706015, -2.488488024314874, 0.51004894012372),
    (2.300652019954817, -1.6689039845747493, 0.4188073119525673),
    (1.891301407787398, -1.2679958271945868, 0.37680408948524835),
    (1.8750014808534479, -1.2500016453999487, 0.3750001645474248),
    (1.875, -1.25, 0.375),
)
POLAR_EXPRESS = tuple((a / 1.01, b / 1.01**3, c / 1.01**5)
                      for a, b, c in _POLAR_EXPRESS_RAW[:-1]) \
    + (_POLAR_EXPRESS_RAW[-1],)


def coefficient_schedule(ns_coefficients, ns_steps: int) -> list:
    """The :math:`(a, b, c)` of each of ``ns_steps`` steps: one triple for
    every step (torch's), or one triple per step, the last one repeated
    (Polar Express, :data:`POLAR_EXPRESS`)."""
    per_step = len(ns_coefficients) > 0 and all(
        isinstance(t, (tuple, list)) for t in ns_coefficients)
    triples = list(ns_coefficients) if per_step else [ns_coefficients]
    if any(len(t) != 3 for t in triples):                  # torch's message
        raise ValueError("Coefficients must be a tuple of exactly 3 values")
    return [tuple(triples[min(i, len(triples) - 1)]) for i in range(ns_steps)]


def zeropower_via_newtonschulz(
    grad: torch.Tensor,
    ns_coefficients: Any = NS_COEFFICIENTS,
    ns_steps: int = 5,
    eps: float = 1e-7,
    dtype: torch.dtype = torch.bfloat16,
) -> torch.Tensor:
    r"""An approximate polar factor :math:`UV^\top` of a matrix
    :math:`G = USV^\top`, in bfloat16, as torch's Muon computes it (``dtype``: another
    precision, for figures and checks; torch's Muon has no such argument).

    .. math::

        X_0 &= G / \max(\lVert G\rVert_F, \epsilon) \\
            &\quad\text{(every singular value} \le 1) \\
        X_{k+1} &= a X_k + (b\, A_k + c\, A_k^2)\, X_k, \\
        A_k &= X_k X_k^\top

    Each step maps every singular value :math:`\sigma` to
    :math:`p(\sigma) = a\sigma + b\sigma^3 + c\sigma^5` and leaves
    :math:`U` and :math:`V` alone. The default coefficients make
    :math:`p'(0) = a` large, so small singular values grow fast; the price
    is that they end in a band around 1 rather than at 1. A tall matrix is
    transposed first, so :math:`A_k` is the smaller Gram matrix.
    ``ns_coefficients`` may also give one triple per step
    (:data:`POLAR_EXPRESS`; the last one repeats): see
    :func:`coefficient_schedule`.
    """
    if ns_steps >= 100:                                    # torch's messages
        raise ValueError("Number of steps must be less than 100 for "
                         "computational efficiency")
    if len(grad.shape) != 2:
        raise ValueError("Input tensor gradient must be a 2D matrix")
    schedule = coefficient_schedule(ns_coefficients, ns_steps)
    # X in bfloat16 (a bfloat16 input is divided in place, as torch's is);
    # another dtype, optedu's extension, copies
    x = grad.to(dtype, copy=dtype != torch.bfloat16)
    tall = grad.size(0) > grad.size(1)
    if tall:
        x = x.T                                            # wide: X Xᵀ small
    x.div_(x.norm().clamp(min=eps))                        # X_0 = G/‖G‖_F
    for a, b, c in schedule:                               # (a, b, c) of step k
        gram = x @ x.T                                     # A = X Xᵀ
        poly = torch.addmm(gram, gram, gram, beta=b, alpha=c)  # bA + cA²
        x = torch.addmm(x, poly, x, beta=a)                # aX + (bA + cA²)X
    return x.T if tall else x


def adjusted_lr(lr: float, adjust_lr_fn: str | None,
                shape: torch.Size) -> float:
    r"""The step size for an :math:`A\times B` matrix: Keller Jordan's
    :math:`\eta\sqrt{\max(1, A/B)}` (``None`` or ``"original"``) or
    Moonshot's :math:`0.2\,\eta\sqrt{\max(A, B)}` (``"match_rms_adamw"``),
    which gives the update about AdamW's RMS."""
    rows, cols = shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        ratio = math.sqrt(max(1, rows / cols))             # √max(1, A/B)
    elif adjust_lr_fn == "match_rms_adamw":
        ratio = 0.2 * math.sqrt(max(rows, cols))           # 0.2 √max(A, B)
    else:
        ratio = 1.0
    return lr * ratio


def muon(
    param: torch.Tensor,
    grad: torch.Tensor,
    momentum_buffer: torch.Tensor,
    *,
    lr: float,
    weight_decay: float,
    momentum: float,
    nesterov: bool,
    ns_coefficients: tuple[float, float, float],
    ns_steps: int,
    eps: float,
    adjust_lr_fn: str | None,
) -> None:
    r"""One Muon step on one matrix, in place.

    .. math::

        B_t &\leftarrow \mu B_{t-1} + (1-\mu)\, G_t \\
        \tilde B_t &\leftarrow (1-\mu)\, G_t + \mu B_t \\
            &\quad\text{(Nesterov; else } \tilde B_t = B_t) \\
        O_t &\leftarrow \mathrm{NS}^{(a,b,c)}_k(\tilde B_t) \approx UV^\top \\
        \theta_t &\leftarrow (1-\eta\lambda)\,\theta_{t-1}
            - \eta'\, O_t

    :math:`\eta'` is :math:`\eta` adjusted to the shape
    (:func:`adjusted_lr`); the decay uses the unadjusted :math:`\eta`.

    Complex tensors are not for this rule: :class:`Muon` refuses them, as
    torch's does.

    Sharded tensors (DTensors cut along one dimension, as FSDP2 cuts them)
    get the same numbers as the whole matrix in one process: the momentum
    is averaged piece by piece, :math:`\tilde B_t` gathered whole in
    bfloat16 (:func:`gather_matrix`; the iteration rounds to bfloat16
    first, element by element, so nothing changes), orthogonalised, and this rank keeps its rows of
    :math:`O_t`; :math:`\eta'` uses the global shape.
    """
    if grad.ndim != 2:
        raise ValueError("Param gradient must be a 2D matrix")   # torch's
    momentum_buffer.lerp_(grad, 1 - momentum)        # B_t = μB + (1-μ)G_t
    # B̃_t = G_t + μ(B_t - G_t) with Nesterov, else B_t
    update = grad.lerp(momentum_buffer, momentum) if nesterov else \
        momentum_buffer
    # B̃_t whole if sharded, in the bfloat16 the iteration reads
    whole = gather_matrix(update, torch.bfloat16)
    # O_t ≈ U Vᵀ of B̃_t (bfloat16)
    orthogonal = zeropower_via_newtonschulz(whole, ns_coefficients, ns_steps,
                                            eps)
    if whole is not update and update is momentum_buffer \
            and whole.dtype == torch.bfloat16:
        # bfloat16 without Nesterov: the buffer keeps its normalised
        # value, as in one process (see Muon's note)
        local(update).copy_(local_rows(whole, update))
    step_size = adjusted_lr(lr, adjust_lr_fn, param.shape)      # η'
    param.mul_(1 - lr * weight_decay)                # θ ← (1 - ηλ) θ
    local(param).add_(local_rows(orthogonal, param),
                      alpha=-step_size)              # θ_t = θ - η' O_t


def muon_momentum_fused(grad: torch.Tensor, momentum_buffer: torch.Tensor, *,
                        momentum: float, nesterov: bool) -> torch.Tensor | None:
    r"""The element-wise lines before Newton–Schulz, in one pass: the
    momentum, and with Nesterov the look-ahead, which it returns."""
    momentum_buffer.lerp_(grad, 1 - momentum)        # B_t = μB + (1-μ)G_t
    # B̃_t = G_t + μ(B_t - G_t) with Nesterov (else B_t, the buffer itself)
    return grad.lerp(momentum_buffer, momentum) if nesterov else None


def muon_apply_fused(param: torch.Tensor, orthogonal: torch.Tensor,
                     step_size: torch.Tensor, lr: torch.Tensor, *,
                     weight_decay: float) -> None:
    r"""The element-wise lines after Newton–Schulz, in one pass: the decay
    and the step :math:`\eta' O_t` (``step_size``)."""
    param.mul_(1 - lr * weight_decay)                # θ ← (1 - ηλ) θ
    param.sub_(step_size * orthogonal)               # θ_t = θ - η' O_t


class Muon(FusedOptimizer):
    r"""Muon (Jordan et al., 2024), a drop-in for ``torch.optim.Muon``
    (torch 2.13). For 2-D parameters only: give biases, embeddings and
    the rest to AdamW.

    Args:
        params: matrices to optimise, or dicts defining parameter groups.
        lr: learning rate :math:`\eta` (default ``1e-3``).
        weight_decay: :math:`\lambda`, a decoupled shrink by
            :math:`1-\eta\lambda` (default ``0.1``).
        momentum: :math:`\mu` (default ``0.95``).
        nesterov: orthogonalise the look-ahead
            :math:`(1-\mu)G_t + \mu B_t` instead of :math:`B_t`
            (default ``True``).
        ns_coefficients: :math:`(a, b, c)` of the Newton–Schulz quintic
            (default ``(3.4445, -4.775, 2.0315)``), or one triple per
            step, e.g. :data:`POLAR_EXPRESS` (an optedu extension).
        eps: floor of :math:`\lVert \tilde B_t\rVert_F` (default ``1e-7``).
        ns_steps: Newton–Schulz steps :math:`k`, fewer than 100
            (default ``5``).
        adjust_lr_fn: ``None`` or ``"original"`` (Keller Jordan's shape
            factor) or ``"match_rms_adamw"`` (Moonshot's); see
            :func:`adjusted_lr` (default ``None``).
        fused: ``True`` compiles the element-wise lines before and after
            the Newton–Schulz products (:func:`muon_momentum_fused`,
            :func:`muon_apply_fused`); an optedu switch, in the groups only
            when given (default ``None``).

    State per parameter: ``momentum_buffer`` (no ``step``).

    Differences from torch.optim.Muon: as torch, the
    momentum is an average (``lerp``), :math:`B_t = \mu B_{t-1} +
    (1-\mu)G_t`, not the sum :math:`\mu B_{t-1} + G_t` of Keller Jordan's
    first write-up and of torch's own docstring. Like torch, with bfloat16
    parameters and ``nesterov=False`` the normalisation
    :math:`B/\lVert B\rVert_F` happens in the buffer itself (``bfloat16()``
    of a bfloat16 tensor is that tensor): the state keeps the normalised
    momentum.
    """

    supports_complex = False  # torch's Muon refuses complex parameters at step

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        weight_decay: float = 0.1,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
        eps: float = 1e-7,
        ns_steps: int = 5,
        adjust_lr_fn: str | None = None,
        *,
        fused: bool | None = None,
    ) -> None:
        check_tensor_lr(lr)
        check_bound("Learning rate", lr, 0.0)
        check_bound("momentum", momentum, 0.0)
        check_bound("weight decay", weight_decay, 0.0)
        if adjust_lr_fn not in (None, "original", "match_rms_adamw"):
            raise ValueError(f"Adjust learning rate function {adjust_lr_fn} "
                             "is not supported")                 # torch's
        check_fused(fused)
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum,
                        nesterov=nesterov, ns_coefficients=ns_coefficients,
                        eps=eps, ns_steps=ns_steps, adjust_lr_fn=adjust_lr_fn)
        if fused is not None:     # an optedu switch: torch's Muon groups lack it
            defaults["fused"] = fused
        super().__init__(params, defaults)
        for group in self.param_groups:
            for param in group["params"]:
                if param.ndim != 2:                               # torch's
                    raise ValueError(
                        "Muon only supports 2D parameters whereas we found "
                        f"a parameter with size: {param.size()}")

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        return {"momentum_buffer": torch.zeros_like(
            cast(torch.Tensor, param.grad), memory_format=torch.preserve_format)}

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State,
               group: Group) -> None:
        muon(param, grad, state["momentum_buffer"], lr=group["lr"],
             weight_decay=group["weight_decay"], momentum=group["momentum"],
             nesterov=group["nesterov"],
             ns_coefficients=group["ns_coefficients"],
             ns_steps=group["ns_steps"], eps=group["eps"],
             adjust_lr_fn=group["adjust_lr_fn"])

    def update_fused(self, params: list[torch.Tensor], grads: list[torch.Tensor],
                     states: list[State], group: Group) -> None:
        """The element-wise lines compiled, in two passes over each matrix
        (:func:`muon_momentum_fused`, :func:`muon_apply_fused`); between
        them the Newton–Schulz products, as in :func:`muon` (eager: these
        are matrix multiplications, which fusing does not shorten)."""
        for grad in grads:
            if grad.ndim != 2:
                raise ValueError("Param gradient must be a 2D matrix")  # torch's
        buffers = [state["momentum_buffer"] for state in states]
        momentum = compiled(muon_momentum_fused, momentum=group["momentum"],
                            nesterov=group["nesterov"])
        updates: list[torch.Tensor] = []
        run_in_chunks(momentum, [flat(g, b) for g, b in zip(grads, buffers)],
                      returned=updates)
        if not group["nesterov"]:
            updates = buffers
        rows = []
        for param, update in zip(params, updates):
            orthogonal = zeropower_via_newtonschulz(        # O_t ≈ U Vᵀ
                update.reshape(param.shape), group["ns_coefficients"],
                group["ns_steps"], group["eps"])
            # η', from the shape, as the one-tensor rule computes it
            step_size = torch.tensor(
                adjusted_lr(float(group["lr"]), group["adjust_lr_fn"], param.shape),
                dtype=torch.float64)
            rows.append((*flat(param, orthogonal), step_size))
        apply = compiled(muon_apply_fused, weight_decay=group["weight_decay"])
        run_in_chunks(apply, rows, learning_rate(group))
