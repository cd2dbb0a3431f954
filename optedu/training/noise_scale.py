r"""The gradient noise scale: how large a batch is still worth its cost.

McCandlish et al. (2018, "An Empirical Model of Large-Batch Training") model a mini-batch
gradient :math:`G_B` as the true gradient :math:`G` plus noise of covariance
:math:`\Sigma / B`, so that

.. math::

    \mathbb E\,|G_B|^2 = |G|^2 + \frac{\operatorname{tr}\Sigma}{B},
    \qquad
    B_\text{simple} = \frac{\operatorname{tr}\Sigma}{|G|^2}.

Below :math:`B_\text{simple}` the noise dominates and a batch twice as large halves the steps
needed (perfect scaling); above it, more data per step buys little. Measuring :math:`|G_B|^2`
at two batch sizes :math:`b < B` gives unbiased estimates of both terms (their appendix A.1):

.. math::

    |\mathcal G|^2 = \frac{B\,|G_B|^2 - b\,|G_b|^2}{B - b},
    \qquad
    \mathcal S = \frac{|G_b|^2 - |G_B|^2}{1/b - 1/B},

and :math:`B_\text{simple} \approx \bar{\mathcal S} / \overline{|\mathcal G|^2}`, the ratio of
their means over many measurements (the ratio of one pair is too noisy: its denominator can be
negative). :func:`noise_scale` does this arithmetic, with a standard error by the delta method;
:func:`gradient_sq_norms` measures the squared norms of a model's mini-batch gradients.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import torch

from optedu.optim._validation import check_integer, invalid

__all__ = ["NoiseScale", "noise_scale", "gradient_sq_norms"]


@dataclasses.dataclass(frozen=True)
class NoiseScale:
    r"""An estimate of the simple noise scale and its parts.

    ``b_simple`` is :math:`\bar{\mathcal S}/\overline{|\mathcal G|^2}`, ``stderr`` its standard
    error (delta method over the ``n`` pairs of measurements), ``trace_sigma`` and
    ``grad_sq`` the two means, with their standard errors."""

    b_simple: float
    stderr: float
    trace_sigma: float
    trace_sigma_stderr: float
    grad_sq: float
    grad_sq_stderr: float
    n: int


def _mean_and_var(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    mean = math.fsum(values) / n
    return mean, math.fsum((v - mean) ** 2 for v in values) / (n - 1)


def noise_scale(small_sq_norms: Sequence[float], big_sq_norms: Sequence[float],
                small_batch: int, big_batch: int) -> NoiseScale:
    r""":math:`B_\text{simple}` from ``n`` paired measurements of :math:`|G_b|^2`
    (``small_sq_norms``, batch ``small_batch``) and :math:`|G_B|^2` (``big_sq_norms``,
    batch ``big_batch``), as McCandlish et al. (2018, appendix A.1) estimate it.

    The standard error propagates the spread of the per-pair estimates
    :math:`\mathcal S_j` and :math:`|\mathcal G_j|^2` through the ratio (delta method, with
    their covariance): :math:`\operatorname{se}^2 \approx B^2\left(\frac{v_S}{\bar S^2} +
    \frac{v_G}{\bar G^2} - \frac{2 c_{SG}}{\bar S \bar G}\right)/n`.
    """
    check_integer("small_batch", small_batch, 1)
    check_integer("big_batch", big_batch, small_batch + 1)
    small, big = list(map(float, small_sq_norms)), list(map(float, big_sq_norms))
    if len(small) != len(big) or len(small) < 2:
        raise invalid("big_sq_norms", f"{len(big)} values",
                      f"as many as small_sq_norms ({len(small)}), at least 2")
    b, big_b = small_batch, big_batch
    grads = [(big_b * gb - b * gs) / (big_b - b) for gs, gb in zip(small, big)]
    traces = [(gs - gb) / (1 / b - 1 / big_b) for gs, gb in zip(small, big)]
    n = len(grads)
    g, var_g = _mean_and_var(grads)
    s, var_s = _mean_and_var(traces)
    if not g > 0:
        raise ValueError(f"The estimate of |G|^2 is {g:.3g} <= 0: the gradient is too small "
                         "against its noise for these batch sizes; measure more pairs or "
                         "use a larger big_batch")
    cov = math.fsum((x - g) * (y - s) for x, y in zip(grads, traces)) / (n - 1)
    ratio = s / g
    rel = var_s / s**2 + var_g / g**2 - 2 * cov / (s * g) if s != 0 else math.inf
    return NoiseScale(ratio, abs(ratio) * math.sqrt(max(rel, 0.0) / n), s,
                      math.sqrt(var_s / n), g, math.sqrt(var_g / n), n)


def gradient_sq_norms(loss_of: Callable[[torch.Tensor], torch.Tensor],
                      params: Sequence[torch.Tensor], n_examples: int, batch: int,
                      draws: int, generator: torch.Generator) -> list[float]:
    r""":math:`|G_b|^2` for ``draws`` mini-batches of ``batch`` examples drawn uniformly with
    replacement from ``n_examples``: ``loss_of(indices)`` returns the mean loss over those
    examples, whose gradient with respect to ``params`` is squared and summed (in float64).

    Drawing with replacement makes :math:`\mathbb E|G_b|^2 = |G|^2 + \operatorname{tr}\Sigma/b`
    exact, with :math:`G` and :math:`\Sigma` the mean and covariance of the per-example
    gradients over the data set.
    """
    check_integer("batch", batch, 1)
    check_integer("draws", draws, 1)
    check_integer("n_examples", n_examples, 1)
    norms = []
    for _ in range(draws):
        indices = torch.randint(n_examples, (batch,), generator=generator)
        grads = torch.autograd.grad(loss_of(indices), list(params))
        norms.append(math.fsum(float(g.double().pow(2).sum()) for g in grads))
    return norms
