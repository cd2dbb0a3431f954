r"""Theory on a quadratic: best constant tunings, iteration matrices, spectral
radii, stability, SGD's noise floor, and a runner of optedu.SGD on a diagonal
quadratic.

On one eigen-direction of :math:`f(x) = \tfrac12 h x^2` every rule of the
first chapters is a linear map of its state. Gradient descent multiplies
:math:`x` by :math:`1 - \eta h`; heavy-ball momentum and Nesterov's method act
on the pair :math:`(x_{t-1}, b_{t-1})` through a 2×2 matrix whose spectral
radius is the error's shrink factor per step. The functions here compute those
quantities in torch's parametrisation (``dampening=0``), so they can be checked
against a run of :class:`optedu.SGD` or ``torch.optim.SGD``.

References: Polyak (1964); Nesterov (1983); Sutskever, Martens, Dahl & Hinton
(2013).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from optedu.optim._validation import check_curvatures


def gd_optimal(smallest: float, largest: float) -> tuple[float, float]:
    r"""Best constant step for plain gradient descent on curvatures in
    ``[smallest, largest]``.

    :math:`\eta = 2/(m + L)` gives the contraction
    :math:`(\kappa - 1)/(\kappa + 1)` per step. Returns :math:`(\eta, \rho)`.
    """
    check_curvatures(smallest, largest)
    kappa = largest / smallest
    return 2 / (smallest + largest), (kappa - 1) / (kappa + 1)


def polyak_optimal(smallest: float,
                   largest: float) -> tuple[float, float, float]:
    r"""Polyak's best heavy-ball tuning for a quadratic with curvatures in
    ``[smallest, largest]``.

    Returns :math:`(\eta^*, \mu^*, \rho^*)` in torch's parametrisation
    (``dampening=0``):

    .. math::

        \eta^* = \frac{4}{(\sqrt L + \sqrt m)^2}, \qquad
        \mu^* = \Big(\frac{\sqrt\kappa - 1}{\sqrt\kappa + 1}\Big)^2, \qquad
        \rho^* = \sqrt{\mu^*} = \frac{\sqrt\kappa - 1}{\sqrt\kappa + 1},

    with :math:`m` = ``smallest``, :math:`L` = ``largest``,
    :math:`\kappa = L/m`; :math:`\rho^*` is the spectral radius of the
    iteration, the error's shrink factor per step.
    """
    check_curvatures(smallest, largest)
    root_kappa = math.sqrt(largest / smallest)
    rate = (root_kappa - 1) / (root_kappa + 1)
    lr = 4 / (math.sqrt(largest) + math.sqrt(smallest)) ** 2
    return lr, rate**2, rate


def iteration_matrix(h, *, lr, momentum, nesterov: bool) -> np.ndarray:
    r"""The 2×2 matrix :math:`M` with :math:`(x_t, b_t) = M\,(x_{t-1}, b_{t-1})`
    on :math:`\tfrac12 h x^2`.

    For torch's SGD with momentum :math:`\mu` (no dampening), gradient
    :math:`g = h x` and :math:`a = \eta h`:

    .. math::

        \text{heavy ball:}\quad M = \begin{pmatrix} 1 - a & -\eta\mu \\
            h & \mu \end{pmatrix},
        \qquad
        \text{Nesterov:}\quad M = \begin{pmatrix} 1 - a(1+\mu) & -\eta\mu^2
            \\ h & \mu \end{pmatrix}

    (torch's first step, :math:`b_1 = g_1`, is this map applied to
    :math:`b_0 = 0`). ``h``, ``lr`` and ``momentum`` may be arrays; they
    broadcast, and the result has shape ``(..., 2, 2)``.
    """
    h, lr, mu = np.broadcast_arrays(
        *(np.asarray(v, dtype=float) for v in (h, lr, momentum)))
    a = lr * h
    matrix = np.empty(a.shape + (2, 2))
    if nesterov:
        matrix[..., 0, 0] = 1 - a * (1 + mu)        # x_t = x - η(g + μ b_t)
        matrix[..., 0, 1] = -lr * mu**2
    else:
        matrix[..., 0, 0] = 1 - a                   # x_t = x - η b_t
        matrix[..., 0, 1] = -lr * mu
    matrix[..., 1, 0] = h                           # b_t = μ b + h x
    matrix[..., 1, 1] = mu
    return matrix


def spectral_radius(h, *, lr, momentum, nesterov: bool):
    """Largest eigenvalue modulus of :func:`iteration_matrix`: below 1 means
    the run converges, and the error shrinks by about this factor per step.
    A float, or an array for array inputs."""
    matrix = iteration_matrix(h, lr=lr, momentum=momentum, nesterov=nesterov)
    rho = np.abs(np.linalg.eigvals(matrix)).max(axis=-1)
    return float(rho) if rho.ndim == 0 else rho


def max_stable_lr(h: float, *, momentum: float, nesterov: bool) -> float:
    r"""The learning rate at which the spectral radius reaches 1 on curvature
    ``h`` (0 ≤ μ < 1).

    Heavy ball is stable for :math:`\eta h < 2(1+\mu)`; Nesterov for
    :math:`\eta h < 2(1+\mu)/(1+2\mu)` (Jury's conditions on the
    characteristic polynomials :math:`\lambda^2 - (1+\mu-a)\lambda + \mu` and
    :math:`\lambda^2 - (1+\mu)(1-a)\lambda + \mu(1-a)`). With :math:`\mu = 0`
    both give gradient descent's :math:`\eta h < 2`.
    """
    bound = (2 * (1 + momentum) / (1 + 2 * momentum) if nesterov
             else 2 * (1 + momentum))
    return bound / h


def sgd_path(curvatures, steps: int, *, lr: float, momentum: float = 0.0,
             nesterov: bool = False, start=None, sigma: float = 0.0,
             seed: int = 0) -> np.ndarray:
    r"""Run :class:`optedu.SGD` on
    :math:`f(\theta) = \tfrac12\sum_i h_i\theta_i^2`.

    ``curvatures`` are the :math:`h_i`, on the last axis of :math:`\theta`;
    ``start`` (default: all ones) may carry leading axes, e.g. many
    independent runs at once. With ``sigma`` = :math:`\sigma > 0` each
    gradient is :math:`h\theta + \sigma\xi` with standard normal :math:`\xi`
    drawn from a generator seeded with ``seed`` (:func:`stationary_variance`
    gives the spread it settles to). Returns the iterates in float64,
    shape ``(steps + 1, *start.shape)``, row 0 being the start.
    """
    from optedu.optim.sgd import SGD

    h = torch.as_tensor(curvatures, dtype=torch.float64)
    theta = (torch.ones(h.shape, dtype=torch.float64) if start is None
             else torch.as_tensor(start, dtype=torch.float64).clone())
    theta.requires_grad_(True)
    optimizer = SGD([theta], lr=lr, momentum=momentum, nesterov=nesterov)
    generator = torch.Generator().manual_seed(seed)
    path = np.empty((steps + 1, *theta.shape))
    path[0] = theta.detach().numpy()
    for t in range(1, steps + 1):
        grad = h * theta.detach()
        if sigma:
            grad = grad + sigma * torch.randn(theta.shape, generator=generator,
                                               dtype=torch.float64)
        theta.grad = grad
        optimizer.step()
        path[t] = theta.detach().numpy()
    return path


def nesterov_textbook(smallest: float,
                      largest: float) -> tuple[float, float, float]:
    r"""The textbook constant tuning of Nesterov's method for curvatures in
    ``[smallest, largest]``.

    .. math::

        \eta = \frac1L, \qquad \mu = \frac{\sqrt\kappa - 1}{\sqrt\kappa + 1},
        \qquad \rho = 1 - \frac{1}{\sqrt\kappa}

    (Nesterov, *Introductory Lectures on Convex Optimization*, 2004, scheme
    2.2.19). On the flattest direction, :math:`a = \eta m = 1/\kappa`, the
    characteristic polynomial has the double root :math:`\rho`; every steeper
    direction contracts faster. Returns :math:`(\eta, \mu, \rho)`.
    """
    check_curvatures(smallest, largest)
    root_kappa = math.sqrt(largest / smallest)
    return 1 / largest, (root_kappa - 1) / (root_kappa + 1), 1 - 1 / root_kappa


def nesterov_optimal(smallest: float,
                     largest: float) -> tuple[float, float, float]:
    r"""The best constant tuning of Nesterov's method on a quadratic
    (Lessard, Recht & Packard, 2016).

    .. math::

        \eta = \frac{4}{3L + m}, \qquad
        \mu = \frac{\sqrt{3\kappa + 1} - 2}{\sqrt{3\kappa + 1} + 2}, \qquad
        \rho = 1 - \frac{2}{\sqrt{3\kappa + 1}} .

    Returns :math:`(\eta, \mu, \rho)`, with :math:`\rho` the worst spectral
    radius over ``[smallest, largest]``.
    """
    check_curvatures(smallest, largest)
    root = math.sqrt(3 * largest / smallest + 1)
    return 4 / (3 * largest + smallest), (root - 2) / (root + 2), 1 - 2 / root


def stationary_variance(h, *, lr, momentum, nesterov: bool, sigma=1.0):
    r"""Stationary :math:`E[x^2]` on :math:`\tfrac12 h x^2` when each gradient
    carries noise.

    The gradient is :math:`h x + \xi` with independent :math:`\xi` of variance
    :math:`\sigma^2`; :math:`a = \eta h`. Solving the Lyapunov equation
    :math:`\Sigma = M \Sigma M^\top + \sigma^2 B B^\top` of
    :func:`iteration_matrix` (noise enters as :math:`B = (-\eta, 1)` for heavy
    ball, :math:`(-\eta(1+\mu), 1)` for Nesterov) gives

    .. math::

        \text{heavy ball:}\quad E[x^2] &= \frac{\eta\sigma^2}{h}\,
            \frac{1 + \mu}{(1 - \mu)\,(2(1+\mu) - a)} \\
        \text{Nesterov:}\quad E[x^2] &= \frac{\eta\sigma^2}{h}\,
            \frac{1 + \mu + a\mu(1 + 2\mu)}
                 {(1 - \mu + a\mu)\,(2(1+\mu) - a(1+2\mu))}

    (infinite outside the stable range). With :math:`\mu = 0` both are
    gradient descent's :math:`\eta\sigma^2/(h(2 - a))`. Arrays broadcast.
    """
    h, lr, mu, sigma = np.broadcast_arrays(
        *(np.asarray(v, dtype=float) for v in (h, lr, momentum, sigma)))
    a = lr * h
    if nesterov:
        num = 1 + mu + a * mu * (1 + 2 * mu)
        den = (1 - mu + a * mu) * (2 * (1 + mu) - a * (1 + 2 * mu))
    else:
        num = 1 + mu
        den = (1 - mu) * (2 * (1 + mu) - a)
    stable = spectral_radius(h, lr=lr, momentum=mu, nesterov=nesterov) < 1
    with np.errstate(divide="ignore", invalid="ignore"):
        var = np.where(stable, lr * sigma**2 / h * num / den, np.inf)
    return float(var) if var.ndim == 0 else var
