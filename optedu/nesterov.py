r"""Nesterov's look-ahead, as Sutskever et al. write it, and how it maps onto torch's form.

torch.optim.SGD(nesterov=True) (and :func:`optedu.sgd`) never evaluates a gradient anywhere but at
the parameter it holds. The classical form evaluates it at a look-ahead point. The two are the
same method seen through a change of variables: torch's parameter *is* the look-ahead point.

.. math::

    \text{look-ahead:}\quad v_t &= \mu\, v_{t-1} - \eta\, \nabla f(\theta_{t-1} + \mu\, v_{t-1}),
        \qquad \theta_t = \theta_{t-1} + v_t \\
    \text{torch:}\quad b_t &= \mu\, b_{t-1} + \nabla f(\phi_{t-1}),
        \qquad \phi_t = \phi_{t-1} - \eta\,(\nabla f(\phi_{t-1}) + \mu\, b_t) \\
    \text{map:}\quad \phi_t &= \theta_t + \mu\, v_t, \qquad b_t = -v_t / \eta

with :math:`v_0 = 0` (so :math:`\phi_0 = \theta_0`, and torch's :math:`b_1 = g_1` is
:math:`\mu b_0 + g_1` with :math:`b_0 = 0`), for a constant learning rate :math:`\eta`.

On a quadratic eigen-direction :math:`f(x) = \tfrac12 h x^2` both heavy-ball momentum and
Nesterov's method are linear maps of the pair :math:`(x_{t-1}, b_{t-1})`; their 2×2 matrices and
spectral radii decide stability and speed.

References: Nesterov (1983); Sutskever, Martens, Dahl & Hinton (2013).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

GradFn = Callable[[torch.Tensor], torch.Tensor]


def nag_lookahead(param: torch.Tensor, velocity: torch.Tensor, grad_fn: GradFn, *,
                  lr: float, momentum: float) -> None:
    r"""One step of Nesterov's method in the look-ahead (Sutskever) form, in place.

    .. math::

        v_t &\leftarrow \mu\, v_{t-1} - \eta\, \nabla f(\theta_{t-1} + \mu\, v_{t-1}) \\
        \theta_t &\leftarrow \theta_{t-1} + v_t

    ``grad_fn(x)`` returns :math:`\nabla f(x)`; ``velocity`` is :math:`v` (it carries
    :math:`\eta`) and starts at zero.
    """
    lookahead = param + momentum * velocity                     # θ_{t-1} + μ v_{t-1}
    velocity.mul_(momentum).add_(grad_fn(lookahead), alpha=-lr)  # v_t = μ v_{t-1} - η ∇f(look-ahead)
    param.add_(velocity)                                        # θ_t = θ_{t-1} + v_t


def lookahead_to_torch(param: torch.Tensor, velocity: torch.Tensor, *, lr: float,
                       momentum: float) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Map a look-ahead state :math:`(\theta, v)` to torch's :math:`(\phi, b)`.

    .. math:: \phi = \theta + \mu\, v, \qquad b = -v / \eta
    """
    return param + momentum * velocity, -velocity / lr         # φ = θ + μ v,  b = -v/η


def torch_to_lookahead(param: torch.Tensor, buffer: torch.Tensor, *, lr: float,
                       momentum: float) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Map torch's state :math:`(\phi, b)` (``momentum_buffer``) back to :math:`(\theta, v)`.

    .. math:: v = -\eta\, b, \qquad \theta = \phi - \mu\, v = \phi + \eta\mu\, b
    """
    velocity = -lr * buffer                                     # v = -η b
    return param - momentum * velocity, velocity                # θ = φ - μ v


def iteration_matrix(h, *, lr, momentum, nesterov: bool) -> np.ndarray:
    r"""The 2×2 matrix :math:`M` with :math:`(x_t, b_t) = M\,(x_{t-1}, b_{t-1})` on :math:`\tfrac12 h x^2`.

    For torch's SGD with momentum :math:`\mu` (no dampening), gradient :math:`g = h x` and
    :math:`a = \eta h`:

    .. math::

        \text{heavy ball:}\quad M = \begin{pmatrix} 1 - a & -\eta\mu \\ h & \mu \end{pmatrix},
        \qquad
        \text{Nesterov:}\quad M = \begin{pmatrix} 1 - a(1+\mu) & -\eta\mu^2 \\ h & \mu \end{pmatrix}

    (torch's first step, :math:`b_1 = g_1`, is this map applied to :math:`b_0 = 0`). ``h``, ``lr``
    and ``momentum`` may be arrays; they broadcast, and the result has shape ``(..., 2, 2)``.
    """
    h, lr, mu = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (h, lr, momentum)))
    a = lr * h
    matrix = np.empty(a.shape + (2, 2))
    if nesterov:
        matrix[..., 0, 0] = 1 - a * (1 + mu)                   # x_t = x - η(g + μ b_t)
        matrix[..., 0, 1] = -lr * mu**2
    else:
        matrix[..., 0, 0] = 1 - a                              # x_t = x - η b_t
        matrix[..., 0, 1] = -lr * mu
    matrix[..., 1, 0] = h                                      # b_t = μ b + h x
    matrix[..., 1, 1] = mu
    return matrix


def spectral_radius(h, *, lr, momentum, nesterov: bool):
    """Largest eigenvalue modulus of :func:`iteration_matrix`: below 1 means the run converges,
    and the error shrinks by about this factor per step. A float, or an array for array inputs."""
    matrix = iteration_matrix(h, lr=lr, momentum=momentum, nesterov=nesterov)
    rho = np.abs(np.linalg.eigvals(matrix)).max(axis=-1)
    return float(rho) if rho.ndim == 0 else rho


def max_stable_lr(h: float, *, momentum: float, nesterov: bool) -> float:
    r"""The learning rate at which the spectral radius reaches 1 on curvature ``h`` (0 ≤ μ < 1).

    Heavy ball is stable for :math:`\eta h < 2(1+\mu)`; Nesterov for
    :math:`\eta h < 2(1+\mu)/(1+2\mu)` (Jury's conditions on the characteristic polynomials
    :math:`\lambda^2 - (1+\mu-a)\lambda + \mu` and :math:`\lambda^2 - (1+\mu)(1-a)\lambda + \mu(1-a)`).
    """
    bound = 2 * (1 + momentum) / (1 + 2 * momentum) if nesterov else 2 * (1 + momentum)
    return bound / h
