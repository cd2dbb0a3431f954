r"""RAdam's theory and the paper's form of the rule: comparison variants of
:func:`optedu.radam`.

Nothing here is what ``torch.optim.RAdam`` (and so ``optedu.RAdam``)
computes, except where a test shows they agree. The RAdam chapter runs these
beside optedu's rule:

- :func:`sma_length` and :func:`rectification`: :math:`\rho_t` and
  :math:`r_t` of Liu et al. (2020) as plain functions of the step.
- :func:`inverse_sqrt_variance`: the variance of :math:`1/\sqrt{\hat v}`
  when :math:`\hat v` is the mean of :math:`\rho` squared samples of
  :math:`N(0, \sigma^2)`, exactly and in the paper's first-order form.
- :func:`inverse_sqrt_moments`: the same variance for Adam's exponential
  average, by Monte Carlo.
- :func:`weighted_inverse_sqrt_variance`: the same variance for any weighted
  sum of squared Gaussian samples (Adam's weights included), by quadrature.
- :func:`radam_paper`: one step of the paper's Algorithm 2 (threshold
  :math:`\rho_t > 4`, no :math:`\epsilon`), a VARIANT.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def sma_length(step: float, beta2: float) -> float:
    r"""VARIANT helper: :math:`\rho_t = \rho_\infty - 2t\beta_2^t/(1-\beta_2^t)`,
    :math:`\rho_\infty = 2/(1-\beta_2) - 1`, the length of the simple
    moving average with the same mean age as Adam's :math:`\hat v_t`;
    ``step`` counts from 1 (``math.inf`` for ``step=math.inf``)."""
    rho_inf = 2 / (1 - beta2) - 1
    if math.isinf(step):
        return rho_inf
    return rho_inf - 2 * step * beta2**step / (1 - beta2**step)


def rectification(step: int, beta2: float) -> float:
    r"""VARIANT helper: Liu et al.'s :math:`r_t`, the ratio of the standard
    deviations of :math:`1/\sqrt{\hat v}` at :math:`\rho_\infty` and at
    :math:`\rho_t` in the first-order form of :func:`inverse_sqrt_variance`;
    ``nan`` where :math:`\rho_t \le 4` (the variance is not finite there)."""
    rho_inf, rho = sma_length(math.inf, beta2), sma_length(step, beta2)
    if rho <= 4:
        return math.nan
    return math.sqrt((rho - 4) * (rho - 2) * rho_inf
                     / ((rho_inf - 4) * (rho_inf - 2) * rho))


def inverse_sqrt_variance(rho: float, exact: bool = True) -> float:
    r"""VARIANT helper: :math:`\sigma^2\,\mathrm{Var}[1/\sqrt{\hat v}]` for
    :math:`\hat v = \frac1\rho\sum_{i=1}^{\rho} g_i^2`,
    :math:`g_i \sim N(0, \sigma^2)`, so that :math:`\rho\hat v/\sigma^2` is
    :math:`\chi^2_\rho` and :math:`1/\hat v` scaled-inverse-:math:`\chi^2`.

    ``exact=True``:
    :math:`\rho\,[1/(\rho-2) - \Gamma(\frac{\rho-1}2)^2 / (2\Gamma(\frac\rho2)^2)]`,
    finite for :math:`\rho > 2`. ``exact=False``: the paper's first-order
    (delta-method) form :math:`\rho / (2(\rho-2)(\rho-4))`, for
    :math:`\rho > 4`. ``inf`` outside those ranges.
    """
    if exact:
        if rho <= 2:
            return math.inf
        ratio = math.exp(2 * (math.lgamma((rho - 1) / 2)
                              - math.lgamma(rho / 2)))
        return rho * (1 / (rho - 2) - ratio / 2)
    if rho <= 4:
        return math.inf
    return rho / (2 * (rho - 2) * (rho - 4))


def inverse_sqrt_moments(beta2: float, steps: int, samples: int,
                         seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    r"""Monte Carlo: mean and variance over ``samples`` runs of
    :math:`1/\sqrt{\hat v_t}`, :math:`\hat v_t = v_t/(1-\beta_2^t)`, for
    :math:`t = 1 \dots` ``steps``, with gradients :math:`g_t \sim N(0, 1)`
    fed to :math:`v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2`."""
    rng = np.random.default_rng(seed)
    v = np.zeros(samples)
    mean, var = np.empty(steps), np.empty(steps)
    for t in range(1, steps + 1):
        g = rng.standard_normal(samples)
        v = beta2 * v + (1 - beta2) * g * g
        psi = np.sqrt((1 - beta2**t) / v)
        mean[t - 1], var[t - 1] = psi.mean(), psi.var()
    return mean, var


def weighted_inverse_sqrt_variance(weights, step: float = 0.1) -> float:
    r"""VARIANT helper: :math:`\sigma^2\,\mathrm{Var}[1/\sqrt{v}]` for
    :math:`v = \sum_i w_i g_i^2`, :math:`g_i \sim N(0, \sigma^2)` independent,
    computed at :math:`\sigma = 1` from the Laplace transform
    :math:`L(s) = \mathbb E[e^{-sv}] = \prod_i (1 + 2 s w_i)^{-1/2}`:
    :math:`\mathbb E[v^{-1}] = \int_0^\infty L(s)\,ds` and
    :math:`\mathbb E[v^{-1/2}] = \pi^{-1/2}\int_0^\infty s^{-1/2} L(s)\,ds`.

    The integrals are taken over :math:`u = \ln s` by the trapezoidal rule
    (``step`` in :math:`u`; the error is below :math:`10^{-9}` relative for
    weights that sum to 1). ``inf`` for fewer than three weights.
    """
    w = np.asarray(weights, dtype=float)
    if w.size <= 2:
        return math.inf
    u = np.arange(-80.0, 120.0 + step / 2, step)
    log_l = -0.5 * np.log1p(2 * np.outer(np.exp(u), w)).sum(axis=1)
    inv = step * np.exp(log_l + u).sum()                     # E[1/v]
    inv_sqrt = step * np.exp(log_l + u / 2).sum() / math.sqrt(math.pi)
    return inv - inv_sqrt**2


def radam_paper(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    step: int,
    *,
    lr: float,
    beta1: float,
    beta2: float,
) -> None:
    r"""VARIANT, not torch's rule: one step of Liu et al.'s Algorithm 2 on
    one tensor, in place; ``step`` counts from 1.

    The rectified step :math:`\eta\, r_t\, \hat m_t \sqrt{(1-\beta_2^t)/v_t}`
    is taken when :math:`\rho_t > 4` (torch: :math:`\rho_t > 5`) and has no
    :math:`\epsilon` (torch adds one to :math:`\sqrt{v_t}`); otherwise the
    step is :math:`\eta\,\hat m_t`, as in torch. No weight decay.
    """
    exp_avg.lerp_(grad, 1 - beta1)                 # m_t
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)   # v_t
    m_hat = exp_avg / (1 - beta1**step)            # m̂_t
    if sma_length(step, beta2) > 4:
        adaptive_lr = ((1 - beta2**step) / exp_avg_sq).sqrt()     # l_t
        param.sub_(lr * rectification(step, beta2) * m_hat * adaptive_lr)
    else:
        param.sub_(lr * m_hat)                     # θ_t = θ_{t-1} - η m̂_t
