r"""Nesterov's look-ahead, as Sutskever et al. write it, and its map onto torch.

torch.optim.SGD(nesterov=True) (and :func:`optedu.sgd`) never evaluates a
gradient anywhere but at the parameter it holds. The classical form evaluates
it at a look-ahead point. The two are the same method seen through a change of
variables: torch's parameter *is* the look-ahead point.

.. math::

    \text{look-ahead:}\quad
        v_t &= \mu\, v_{t-1} - \eta\, \nabla f(\theta_{t-1} + \mu\, v_{t-1}),
        \qquad \theta_t = \theta_{t-1} + v_t \\
    \text{torch:}\quad b_t &= \mu\, b_{t-1} + \nabla f(\phi_{t-1}),
        \qquad \phi_t = \phi_{t-1} - \eta\,(\nabla f(\phi_{t-1}) + \mu\, b_t) \\
    \text{map:}\quad \phi_t &= \theta_t + \mu\, v_t, \qquad b_t = -v_t / \eta

with :math:`v_0 = 0` (so :math:`\phi_0 = \theta_0`, and torch's
:math:`b_1 = g_1` is :math:`\mu b_0 + g_1` with :math:`b_0 = 0`), for a
constant learning rate :math:`\eta`.

On a quadratic eigen-direction :math:`f(x) = \tfrac12 h x^2` both heavy-ball
momentum and Nesterov's method are linear maps of the pair
:math:`(x_{t-1}, b_{t-1})`; their 2×2 matrices and spectral radii
(:mod:`optedu.theory.quadratic`) decide stability and speed.

References: Nesterov (1983); Sutskever, Martens, Dahl & Hinton (2013).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

GradFn = Callable[[torch.Tensor], torch.Tensor]


def nag_lookahead(param: torch.Tensor, velocity: torch.Tensor,
                  grad_fn: GradFn, *, lr: float, momentum: float) -> None:
    r"""One step of Nesterov's method in the look-ahead (Sutskever) form.

    .. math::

        v_t &\leftarrow \mu\, v_{t-1}
               - \eta\, \nabla f(\theta_{t-1} + \mu\, v_{t-1}) \\
        \theta_t &\leftarrow \theta_{t-1} + v_t

    ``grad_fn(x)`` returns :math:`\nabla f(x)`; ``velocity`` is :math:`v`
    (it carries :math:`\eta`) and starts at zero. Updates both in place.
    """
    grad = grad_fn(param + momentum * velocity)    # ∇f(θ_{t-1} + μ v_{t-1})
    velocity.mul_(momentum).add_(grad, alpha=-lr)  # v_t = μ v_{t-1} - η ∇f(·)
    param.add_(velocity)                           # θ_t = θ_{t-1} + v_t


def lookahead_to_torch(param: torch.Tensor, velocity: torch.Tensor, *,
                       lr: float, momentum: float
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Map a look-ahead state :math:`(\theta, v)` to torch's :math:`(\phi, b)`.

    .. math:: \phi = \theta + \mu\, v, \qquad b = -v / \eta
    """
    return param + momentum * velocity, -velocity / lr  # φ = θ + μ v, b = -v/η


def torch_to_lookahead(param: torch.Tensor, buffer: torch.Tensor, *,
                       lr: float, momentum: float
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Map torch's state :math:`(\phi, b)` back to :math:`(\theta, v)`.

    :math:`b` is ``momentum_buffer``.

    .. math:: v = -\eta\, b, \qquad \theta = \phi - \mu\, v = \phi + \eta\mu\, b
    """
    velocity = -lr * buffer                              # v = -η b
    return param - momentum * velocity, velocity         # θ = φ - μ v
