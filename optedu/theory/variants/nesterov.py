r"""Nesterov's method as two other sources write it: comparison variants.

Neither is what torch computes. The Nesterov chapter runs each beside
:func:`optedu.theory.nesterov.nag_lookahead` or ``torch.optim.SGD(nesterov=True)``
(and so beside ``optedu.SGD``), so each equivalence, and each difference, is
executed rather than asserted.

- :func:`lesson_nag`: the long lesson's NAG, a velocity without :math:`\eta`
  that points uphill. With :math:`v = -v^{\mathrm S}/\eta` it is Sutskever's
  look-ahead form (:func:`optedu.theory.nesterov.nag_lookahead`) at a constant rate,
  and reports the same :math:`\theta_t`, not torch's look-ahead point.
- :func:`keras_nesterov`: Keras 3's ``SGD(nesterov=True)`` (Bengio et al.,
  2013), the look-ahead point as the parameter and :math:`\eta` inside the
  velocity. With a constant rate it is torch's rule with :math:`v = -\eta b`;
  after a change of rate the old rate lingers in the velocity.
"""

from __future__ import annotations

import torch

from optedu.theory.nesterov import GradFn


def lesson_nag(param: torch.Tensor, velocity: torch.Tensor, grad_fn: GradFn,
               *, lr: float, beta: float) -> None:
    r"""VARIANT, not torch's rule: the long lesson's NAG, as written.

    .. math::

        v_t &\leftarrow \beta\, v_{t-1}
               + \nabla L(\theta - \eta\beta\, v_{t-1}) \\
        \theta &\leftarrow \theta - \eta\, v_t

    ``velocity`` starts at zero; both tensors are updated in place.
    """
    grad = grad_fn(param - lr * beta * velocity)  # ∇L at θ - ηβ v_{t-1}
    velocity.mul_(beta).add_(grad)                # v_t = β v_{t-1} + ∇L(·)
    param.sub_(lr * velocity)                     # θ ← θ - η v_t


def keras_nesterov(param: torch.Tensor, velocity: torch.Tensor,
                   grad: torch.Tensor, *, lr: float, momentum: float) -> None:
    r"""VARIANT, not torch's rule: Keras 3's Nesterov step, :math:`\eta` in v.

    .. math::

        v_t &\leftarrow \mu\, v_{t-1} - \eta\, g_t \\
        \phi_t &\leftarrow \phi_{t-1} + \mu\, v_t - \eta\, g_t

    ``grad`` is :math:`g_t`, the gradient at ``param`` (:math:`\phi_{t-1}`);
    ``velocity`` starts at zero; both tensors are updated in place.
    """
    velocity.mul_(momentum).sub_(lr * grad)      # v_t = μ v_{t-1} - η g_t
    param.add_(momentum * velocity - lr * grad)  # φ_t = φ + μ v_t - η g_t
