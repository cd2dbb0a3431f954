r"""The long lesson's gradient-norm monitor rules, as written: comparison
variants.

The long lesson's ``GradientNormMonitor`` keeps every total norm
:math:`N_1, \dots, N_t` and flags

.. math::

    \text{explosion:}\quad N_t > \rho\,\bar N_W, \qquad
    \text{vanishing:}\quad t > W \text{ and } \bar N_W < 10^{-6},

where :math:`\bar N_W` is the mean of the last :math:`W` norms *including*
:math:`N_t`, with :math:`\rho = 10` and :math:`W = 100` by default. Because
the spike is part of the mean it is compared with, the explosion rule masks
itself: over a flat history of ones a spike :math:`s` is flagged only if
:math:`s (W - \rho) > \rho (W - 1)`, never when :math:`W \le \rho`.
:class:`optedu.training.monitor.GradNormMonitor` judges :math:`N_t` against the median
of the *previous* steps instead. These functions are variants for comparison;
nothing in optedu uses them.
"""

from __future__ import annotations

from collections.abc import Sequence


def _window_mean(norms: Sequence[float], t: int, window: int) -> float:
    """Mean of the last ``window`` norms up to and including index ``t``
    (0-based)."""
    recent = norms[max(0, t + 1 - window):t + 1]
    return sum(recent) / len(recent)


def explosions_including_latest(norms: Sequence[float], window: int = 100,
                                factor: float = 10.0) -> list[int]:
    r"""VARIANT (the long lesson's ``is_exploding``): 1-based steps with
    :math:`N_t > \rho\,\bar N_W`.

    :math:`\bar N_W` is the mean of the last ``window`` norms, :math:`N_t`
    included; the window is shorter during the first ``window - 1`` steps, as
    in the source. Evaluated after every step, as a training loop that checks
    the property after each ``record`` would.
    """
    norms = [float(n) for n in norms]
    return [t + 1 for t in range(len(norms))
            if norms[t] > factor * _window_mean(norms, t, window)]


def vanishings_by_window_mean(norms: Sequence[float], window: int = 100,
                              floor: float = 1e-6) -> list[int]:
    r"""VARIANT (the long lesson's ``is_vanishing``): steps with
    :math:`t > W` and :math:`\bar N_W < \epsilon`."""
    norms = [float(n) for n in norms]
    return [t + 1 for t in range(len(norms))
            if t + 1 > window and _window_mean(norms, t, window) < floor]


def smallest_flagged_spike(window: int, factor: float = 10.0) -> float:
    r"""The spike :math:`s` above which a flat history of ones gets flagged:
    :math:`\rho(W-1)/(W-\rho)`.

    Infinite when ``window <= factor``: no spike is ever flagged. Derived from
    :math:`s > \rho\,(W - 1 + s)/W` with the full window.
    """
    if window <= factor:
        return float("inf")
    return factor * (window - 1) / (window - factor)
