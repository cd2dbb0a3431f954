r"""AdaGrad as Keras and optax write it: a variant of optedu.adagrad."""

from __future__ import annotations

import torch


def adagrad_eps_inside(
    param: torch.Tensor,
    grad: torch.Tensor,
    state_sum: torch.Tensor,
    *,
    lr: float,
    eps: float,
) -> None:
    r"""VARIANT, not torch's rule: AdaGrad with :math:`\epsilon` in the root.

    .. math::

        G_t &\leftarrow G_{t-1} + g_t^2 \\
        \theta_t &\leftarrow \theta_{t-1} - \eta\, g_t / \sqrt{G_t + \epsilon}

    Used by Keras 3 ``Adagrad`` and optax ``adagrad`` (both ``epsilon=1e-7``,
    ``initial_accumulator_value=0.1``) and by the long lesson. torch, Duchi
    et al. (2011) and :func:`optedu.adagrad` divide by
    :math:`\sqrt{G_t} + \epsilon`. As :math:`G_t + \epsilon = (G_0 + \epsilon)
    + \sum_{s \le t} g_s^2`, this variant started at :math:`G_0` is
    ``optedu.adagrad`` started at :math:`G_0 + \epsilon` with ``eps=0``.
    No options (weight decay, ``lr_decay``, ``maximize``).
    """
    state_sum.addcmul_(grad, grad, value=1)   # G_t = G_{t-1} + g_t²
    denom = state_sum.add(eps).sqrt_()        # √(G_t + ε)
    param.addcdiv_(grad, denom, value=-lr)    # θ_t = θ_{t-1} - η g_t/√(G_t + ε)
