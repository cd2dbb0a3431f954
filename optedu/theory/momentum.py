r"""Heavy-ball momentum as other papers and frameworks write it.

torch (and :func:`optedu.sgd`) keeps a buffer :math:`b` that *sums* gradients,
:math:`b_t = \mu b_{t-1} + (1-\tau) g_t` with :math:`b_1 = g_1`, and steps
:math:`-\eta b_t`. Two other conventions are common:

.. math::

    \text{EMA (dampened):}\quad v_t &= \beta v_{t-1} + (1-\beta)\, g_t,
        \quad v_0 = 0, \qquad \theta_t = \theta_{t-1} - \eta\, v_t \\
    \text{Sutskever:}\quad v_t &= \mu v_{t-1} - \eta_t\, g_t,
        \quad v_0 = 0, \qquad \theta_t = \theta_{t-1} + v_t

With a constant learning rate, the EMA form with rate :math:`\eta` is torch
with ``momentum=β, dampening=0`` and rate :math:`\eta(1-\beta)` (because
:math:`v_t = (1-\beta) b_t`), and the Sutskever form is torch with the same
:math:`\eta` (because :math:`v_t = -\eta b_t`). They part when the learning
rate changes (the Sutskever velocity keeps the old rate) and, for torch's
``dampening=β``, at the first step (torch's buffer starts undampened).

Polyak's optimal tuning and the stability analysis live in
:mod:`optedu.theory.quadratic`.

References: Polyak (1964); Sutskever, Martens, Dahl & Hinton (2013).
"""

from __future__ import annotations

import torch


def ema_momentum(param: torch.Tensor, grad: torch.Tensor,
                 velocity: torch.Tensor, *, lr: float, beta: float) -> None:
    r"""One step of momentum written as an exponential moving average,
    in place.

    .. math::

        v_t &\leftarrow \beta\, v_{t-1} + (1-\beta)\, g_t \\
        \theta_t &\leftarrow \theta_{t-1} - \eta\, v_t

    ``velocity`` starts at zero. Not torch's convention: see the module
    docstring.
    """
    velocity.lerp_(grad, 1 - beta)              # v_t = β v_{t-1} + (1-β) g_t
    param.add_(velocity, alpha=-lr)             # θ_t = θ_{t-1} - η v_t


def sutskever_momentum(param: torch.Tensor, grad: torch.Tensor,
                       velocity: torch.Tensor, *, lr: float,
                       momentum: float) -> None:
    r"""One step of momentum in Sutskever et al.'s form, in place.

    .. math::

        v_t &\leftarrow \mu\, v_{t-1} - \eta_t\, g_t \\
        \theta_t &\leftarrow \theta_{t-1} + v_t

    ``velocity`` starts at zero and carries the learning rates it was built
    with.
    """
    velocity.mul_(momentum).add_(grad, alpha=-lr)   # v_t = μ v_{t-1} - η_t g_t
    param.add_(velocity)                            # θ_t = θ_{t-1} + v_t


def ema_lr_to_torch(lr: float, beta: float) -> float:
    r"""The torch learning rate that reproduces the EMA form:
    :math:`\eta_{\text{torch}} = \eta (1-\beta)`."""
    return lr * (1 - beta)
