r"""RMSProp as other libraries write it: two variants of optedu.rmsprop.

Both are *variants*: not what ``torch.optim.RMSprop`` (and so
``optedu.RMSprop``) computes. The RMSProp chapter runs them beside optedu's
rule, so that the difference is executed rather than asserted.

- :func:`rmsprop_eps_inside` puts :math:`\epsilon` inside the square root
  (Keras, optax's default, Graves 2013, the long lesson and the deep-learning
  interview page).
- :func:`rmsprop_keras_momentum` puts the learning rate inside the momentum
  buffer (Keras, Graves 2013); torch multiplies the buffer by the current
  learning rate.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from optedu.optim.optimizer import Group, Optimizer, State


def rmsprop_eps_inside(
    param: torch.Tensor,
    grad: torch.Tensor,
    square_avg: torch.Tensor,
    *,
    lr: float,
    alpha: float,
    eps: float,
) -> None:
    r"""VARIANT, not torch's rule: RMSProp with :math:`\epsilon` in the root.

    .. math::

        v_t &\leftarrow \alpha\, v_{t-1} + (1-\alpha)\, g_t^2 \\
        \theta_t &\leftarrow \theta_{t-1} - \eta\, g_t / \sqrt{v_t + \epsilon}

    Used by Keras 3 ``RMSprop`` (``epsilon=1e-7``), optax ``rmsprop`` by
    default (``eps_in_sqrt=True``), Graves (2013), the long lesson and the
    deep-learning interview page. torch and :func:`optedu.rmsprop` divide by
    :math:`\sqrt{v_t} + \epsilon`; with :math:`\epsilon = 0` the two forms are
    the same rule. No options (weight decay, momentum, centring): only the
    place of :math:`\epsilon` differs from plain ``optedu.rmsprop``.
    """
    square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
    #                                          v_t = α v_{t-1} + (1-α) g_t²
    denom = square_avg.add(eps).sqrt_()        # √(v_t + ε)
    param.addcdiv_(grad, denom, value=-lr)    # θ_t = θ_{t-1} - η g_t/√(v_t + ε)


def rmsprop_keras_momentum(
    param: torch.Tensor,
    grad: torch.Tensor,
    square_avg: torch.Tensor,
    momentum_buffer: torch.Tensor,
    *,
    lr: float,
    alpha: float,
    eps: float,
    momentum: float,
) -> None:
    r"""VARIANT, not torch's rule: the learning rate inside the momentum buffer.

    .. math::

        v_t &\leftarrow \alpha\, v_{t-1} + (1-\alpha)\, g_t^2 \\
        b_t &\leftarrow \mu b_{t-1} + \eta_t g_t / (\sqrt{v_t} + \epsilon) \\
        \theta_t &\leftarrow \theta_{t-1} - b_t

    This is how Keras 3 ``RMSprop(momentum=...)`` and Graves (2013) write
    the buffer. torch (and :func:`optedu.rmsprop`) store
    :math:`b'_t = \mu b'_{t-1} + g_t/s_t` and move by :math:`\eta_t b'_t`.
    With a constant :math:`\eta` the two are the same rule
    (:math:`b_t = \eta\, b'_t`). When a schedule changes :math:`\eta`, Keras's
    buffer still carries the old rates, :math:`b_t = \sum_s \mu^{t-s} \eta_s
    g_s/s_s`, while torch's step is :math:`\eta_t \sum_s \mu^{t-s} g_s/s_s`.

    :math:`\epsilon` stays *outside* the root here, as in torch, so that only
    the buffer differs; Keras also puts it inside (:func:`rmsprop_eps_inside`).
    """
    square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
    #                                          v_t = α v_{t-1} + (1-α) g_t²
    denom = square_avg.sqrt().add_(eps)        # s_t = √v_t + ε
    momentum_buffer.mul_(momentum).addcdiv_(grad, denom, value=lr)
    #                                          b_t = μ b_{t-1} + η g_t / s_t
    param.sub_(momentum_buffer)                # θ_t = θ_{t-1} - b_t


class RMSpropEpsInside(Optimizer):
    r"""VARIANT: an optimizer applying :func:`rmsprop_eps_inside`.

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: learning rate :math:`\eta` (default ``1e-2``, torch's).
        alpha: smoothing constant :math:`\alpha` (default ``0.99``, torch's).
        eps: :math:`\epsilon`, added *inside* the root (default ``1e-8``).
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-2,
                 alpha: float = 0.99, eps: float = 1e-8) -> None:
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps))

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        return {"square_avg": torch.zeros_like(param)}

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State,
               group: Group) -> None:
        rmsprop_eps_inside(param, grad, state["square_avg"], lr=group["lr"],
                           alpha=group["alpha"], eps=group["eps"])


class RMSpropKerasMomentum(Optimizer):
    r"""VARIANT: an optimizer applying :func:`rmsprop_keras_momentum`.

    The learning rate is read from the group at every step, so a scheduler
    (or a write to ``param_groups``) changes it as it would torch's.

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: learning rate :math:`\eta` (default ``1e-2``).
        alpha: smoothing constant :math:`\alpha` (default ``0.99``).
        eps: :math:`\epsilon`, added outside the root (default ``1e-8``).
        momentum: :math:`\mu` (default ``0.9``).
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-2,
                 alpha: float = 0.99, eps: float = 1e-8,
                 momentum: float = 0.9) -> None:
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps,
                                      momentum=momentum))

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        return {"square_avg": torch.zeros_like(param),
                "momentum_buffer": torch.zeros_like(param)}

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State,
               group: Group) -> None:
        rmsprop_keras_momentum(param, grad, state["square_avg"],
                               state["momentum_buffer"], lr=group["lr"],
                               alpha=group["alpha"], eps=group["eps"],
                               momentum=group["momentum"])
