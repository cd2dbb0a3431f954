r"""AdaGrad as Keras and optax write it: a comparison variant of :func:`optedu.adagrad`."""

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
    r"""VARIANT, not torch's rule: one AdaGrad step with :math:`\epsilon` inside the root.

    .. math::

        G_t &\leftarrow G_{t-1} + g_t^2 \\
        \theta_t &\leftarrow \theta_{t-1} - \eta\, g_t \,/\, \sqrt{G_t + \epsilon}

    Used by Keras 3 ``Adagrad`` (``epsilon=1e-7``, ``initial_accumulator_value=0.1``), optax
    ``adagrad`` (``eps=1e-7``, ``initial_accumulator_value=0.1``) and the long lesson. torch,
    Duchi et al. (2011) and :func:`optedu.adagrad` divide by :math:`\sqrt{G_t} + \epsilon`.
    Since :math:`G_t + \epsilon = (G_0 + \epsilon) + \sum_{s \le t} g_s^2`, this variant with
    starting sum :math:`G_0` is ``optedu.adagrad`` with starting sum :math:`G_0 + \epsilon`
    and ``eps=0``. No options (weight decay, ``lr_decay``, ``maximize``).
    """
    state_sum.addcmul_(grad, grad, value=1)                  # G_t = G_{t-1} + g_t²
    denom = state_sum.add(eps).sqrt_()                       # √(G_t + ε)
    param.addcdiv_(grad, denom, value=-lr)                   # θ_t = θ_{t-1} - η g_t / √(G_t + ε)
