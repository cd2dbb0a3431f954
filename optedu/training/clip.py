r"""Gradient clipping: by global norm and by value, with ``torch.nn.utils``'
semantics (torch 2.13).

Clipping by norm treats the gradients of all parameters as one long vector
:math:`g = (g_1, \dots, g_n)` (one block per tensor) and rescales it when it
is too long:

.. math::

    N &= \bigl\|(\|g_1\|_p, \dots, \|g_n\|_p)\bigr\|_p
        \qquad\text{(the norm of the per-tensor norms)} \\
    c &= \min\Bigl(\frac{\tau}{N + 10^{-6}},\; 1\Bigr) \\
    g_i &\leftarrow c\, g_i \qquad i = 1, \dots, n

with threshold :math:`\tau` (``max_norm``) and order :math:`p`
(``norm_type``). Every block is multiplied by the same :math:`c`, so the
direction of :math:`g` is kept. For :math:`p \ne 0` the norm of the norms is
the :math:`p`-norm of the concatenated vector; for :math:`p = 0` it is not
(it counts the tensors that have a non-zero entry).

Clipping by value clamps every entry to :math:`[-v, v]`, which changes the
direction.

Written from scratch: one plain loop over tensors, no ``torch._foreach_*`` and
no call into ``torch.nn.utils``. The ``foreach`` argument is accepted for
drop-in use and ignored.
"""

from __future__ import annotations

import types
import warnings
from collections.abc import Iterable

import torch

Tensors = torch.Tensor | Iterable[torch.Tensor]

EPS = 1e-6  # added to the total norm before dividing, as in torch


def _as_list(tensors: Tensors) -> list[torch.Tensor]:
    return [tensors] if isinstance(tensors, torch.Tensor) else list(tensors)


def _grads(parameters: list[torch.Tensor]) -> list[torch.Tensor]:
    return [p.grad for p in parameters if p.grad is not None]


@torch.no_grad()
def get_total_norm(
    tensors: Tensors,
    norm_type: float | str = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> torch.Tensor:
    r"""The :math:`p`-norm of the per-tensor :math:`p`-norms,
    :math:`N = \|(\|t_1\|_p, \dots, \|t_n\|_p)\|_p`.

    Args:
        tensors: a tensor or an iterable of tensors (the gradients
            themselves, not parameters).
        norm_type: the order :math:`p`; any float, or ``"inf"``. ``p = 0``
            counts non-zeros.
        error_if_nonfinite: raise ``RuntimeError`` if :math:`N` is NaN or
            :math:`\pm\infty`.
        foreach: ignored (torch picks a vectorised path with it; the result
            is the same).

    Returns ``tensor(0.)`` (default dtype) for no tensors. The per-tensor
    norms are stacked in torch's order — grouped by (device, dtype), in order
    of first appearance — so that the sum inside the outer norm rounds
    exactly as torch's does.
    """
    del foreach
    tensors = _as_list(tensors)
    p = float(norm_type)
    if not tensors:
        return torch.tensor(0.0)
    first_device = tensors[0].device
    groups: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
    for t in tensors:
        groups.setdefault((t.device, t.dtype), []).append(t)
    norms = [torch.linalg.vector_norm(t, p)                    # ‖t_i‖_p
             for group in groups.values() for t in group]
    stacked = torch.stack([n.to(first_device) for n in norms])
    total = torch.linalg.vector_norm(stacked, p)                # N
    if error_if_nonfinite and (total.isnan() or total.isinf()):
        raise RuntimeError(
            f"The total norm of order {p} for gradients from `parameters` "
            "is non-finite, so it cannot be clipped. To disable this error "
            "and scale the gradients by the non-finite norm anyway, set "
            "`error_if_nonfinite=False`"
        )
    return total


@torch.no_grad()
def clip_grads_with_norm_(
    parameters: Tensors,
    max_norm: float,
    total_norm: torch.Tensor,
    foreach: bool | None = None,
) -> None:
    r"""Scale every ``p.grad`` in place by
    :math:`c = \min(\tau / (N + 10^{-6}), 1)`, given :math:`N`.

    Args:
        parameters: a tensor or an iterable of tensors whose ``.grad`` is
            scaled (``None`` skipped).
        max_norm: the threshold :math:`\tau`.
        total_norm: :math:`N` as a tensor, e.g. from :func:`get_total_norm`.
        foreach: ignored.

    The multiplication happens even when :math:`c = 1` (torch avoids a
    branch that would force a device synchronisation). Like torch,
    ``max_norm`` is not validated: a negative value gives a negative
    :math:`c` and flips every gradient; NaN turns them into NaN.
    """
    del foreach
    grads = _grads(_as_list(parameters))
    if not grads:
        return
    coef = float(max_norm) / (total_norm + EPS)      # τ / (N + 1e-6)
    coef = torch.clamp(coef, max=1.0)                # c = min(τ/(N + 1e-6), 1)
    for g in grads:
        g.mul_(coef.to(g.device))                    # g_i ← c g_i


@torch.no_grad()
def clip_grad_norm_(
    parameters: Tensors,
    max_norm: float,
    norm_type: float | str = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> torch.Tensor:
    r"""Rescale the gradients so that their total :math:`p`-norm is at most
    ``max_norm``; in place.

    Equivalent to :func:`get_total_norm` on the gradients followed by
    :func:`clip_grads_with_norm_`.

    Args:
        parameters: a tensor or an iterable of tensors; those whose ``.grad``
            is ``None`` are skipped.
        max_norm: the threshold :math:`\tau` (not validated, as in torch; see
            :func:`clip_grads_with_norm_`).
        norm_type: the order :math:`p` (default ``2.0``); ``"inf"`` or
            ``float("inf")`` for the max.
        error_if_nonfinite: raise ``RuntimeError`` instead of scaling by a
            NaN/infinite norm.
        foreach: ignored.

    Returns:
        The total norm :math:`N` of the gradients **before** clipping, as a
        0-dim tensor.

    Differences from ``torch.nn.utils.clip_grad_norm_``: none in results; a
    single code path. An empty generator warns, as in torch.
    """
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    else:
        is_generator = isinstance(parameters, types.GeneratorType)
        parameters = list(parameters)  # a generator is used up by the norm
        if is_generator and not parameters:
            warnings.warn("`parameters` is an empty generator, no gradient "
                          "clipping will occur.",
                          stacklevel=3)  # past the no_grad wrapper
    total_norm = get_total_norm(_grads(parameters), norm_type,
                                error_if_nonfinite)
    clip_grads_with_norm_(parameters, max_norm, total_norm)
    return total_norm


@torch.no_grad()
def clip_grad_value_(parameters: Tensors, clip_value: float,
                     foreach: bool | None = None) -> None:
    r"""Clamp every entry of every ``p.grad`` to :math:`[-v, v]` in place
    (``v = clip_value``).

    Entries are clipped independently, so the direction of the gradient
    changes whenever some but not all entries are clipped. Not validated, as
    in torch: with :math:`v < 0` every entry becomes :math:`v` (the upper
    bound wins).
    """
    del foreach
    v = float(clip_value)
    for g in _grads(_as_list(parameters)):
        g.clamp_(min=-v, max=v)                      # g ← max(−v, min(g, v))
