r"""Adam with its second moment started otherwise: two remedies for Adam's first
steps, comparison variants of :func:`optedu.adam`.

Adam starts from :math:`v_0 = 0`, so :math:`\hat v_1 = g_1^2` and its first
step is :math:`\eta\,\operatorname{sign}(g_1)` in every coordinate whose
gradient is well above :math:`\epsilon`, full batch or not. Two remedies act
on exactly that estimate, without a warmup of the rate:

- :func:`adam_2k` (Liu et al. 2020, "Adam-2k"): for the first ``freeze``
  steps only :math:`v` is updated; the parameters and :math:`m` are held.
  Written as the authors' code writes it (``nmt/my_module/adam2.py`` in
  LiyuanLucasLiu/RAdam): the step count :math:`t` includes the held steps,
  so both bias corrections use it.
- :func:`gi_adam` (Kalra & Barkeshli 2024, "GI-Adam"): :math:`v_0 = g_1^2`,
  the square of the first gradient, instead of 0; the bias corrections are
  unchanged. Both are as the authors' code has them
  (``vision/phase-diagrams/utils/optim_utils.py``, ``adam_init``, in
  dayal-kalra/why-warmup: ``nu = grads**2``, then
  ``nu_hat = nu_next / (1 - b2**count)``). Their :math:`g_0` is the gradient
  of a batch drawn before training; here it is the first step's gradient.
  On the full batch the two are the same; with mini-batches they differ.

Neither is what ``torch.optim.Adam`` computes; the warmup chapter runs them
beside Adam with and without warmup.

References: L. Liu et al., *On the variance of the adaptive learning rate and
beyond*, ICLR 2020; D. S. Kalra and M. Barkeshli, *Why warmup the learning
rate? Underlying mechanisms and improvements*, NeurIPS 2024.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from optedu.optim._validation import check_betas, check_integer, check_non_negative
from optedu.optim.optimizer import Group, Optimizer, State


def adam_2k(param: torch.Tensor, grad: torch.Tensor, exp_avg: torch.Tensor,
            exp_avg_sq: torch.Tensor, step: int, *, lr: float, beta1: float,
            beta2: float, eps: float, freeze: int) -> None:
    r"""VARIANT, not torch's rule: one Adam-2k step on one tensor, in place.

    .. math::

        v_t &= \beta_2 v_{t-1} + (1-\beta_2) g_t^2 \quad\text{(every step)} \\
        t \le k:\quad & \theta_t = \theta_{t-1},\ m_t = m_{t-1} = 0 \\
        t > k:\quad & m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
            \theta_t = \theta_{t-1} - \eta\,\frac{m_t/(1-\beta_1^t)}
            {\sqrt{v_t/(1-\beta_2^t)} + \epsilon}

    with :math:`k` = ``freeze`` and ``step`` = :math:`t` counted from 1,
    held steps included (as in the authors' code). So at the first moving
    step :math:`1-\beta_1^t \approx 1` and :math:`m` starts uncorrected: the
    first move is :math:`(1-\beta_1)\eta\,g/\sqrt{\hat v}`. The authors add
    :math:`\epsilon` to :math:`\sqrt{v_t}` before the correction; here it is
    added as torch adds it, which changes only :math:`\epsilon`'s weight, by
    :math:`\sqrt{1-\beta_2^t}`. ``freeze = 0`` is Adam.
    """
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)   # v_t
    if step <= freeze:
        return                                                     # θ, m held
    exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)                # m_t
    m_hat = exp_avg / (1 - beta1**step)
    v_hat = exp_avg_sq / (1 - beta2**step)
    param.sub_(lr * m_hat / (v_hat.sqrt() + eps))


def gi_adam(param: torch.Tensor, grad: torch.Tensor, exp_avg: torch.Tensor,
            exp_avg_sq: torch.Tensor, step: int, *, lr: float, beta1: float,
            beta2: float, eps: float) -> None:
    r"""VARIANT, not torch's rule: one GI-Adam step on one tensor, in place.

    Adam with :math:`v_0 = g_1^2` (the paper's :math:`g_0`, the gradient at
    initialisation) and the usual corrections:

    .. math::

        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2 \\
        \theta_t &= \theta_{t-1} - \eta\,\frac{m_t/(1-\beta_1^t)}
            {\sqrt{v_t/(1-\beta_2^t)} + \epsilon}

    Since :math:`v` no longer starts at 0, dividing it by
    :math:`1-\beta_2^t` over-corrects: for a constant gradient the step is
    :math:`\eta\sqrt{1-\beta_2^t}\,\operatorname{sign}(g)`
    (:math:`\sqrt{1-\beta_2}` of Adam's at the first step). That is the
    constant-gradient factor; when the gradient changes, the ratio of
    GI-Adam's step to Adam's differs from it.
    """
    if step == 1:
        exp_avg_sq.copy_(grad * grad)                              # v_0 = g_1²
    exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)                # m_t
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)   # v_t
    m_hat = exp_avg / (1 - beta1**step)
    v_hat = exp_avg_sq / (1 - beta2**step)
    param.sub_(lr * m_hat / (v_hat.sqrt() + eps))


def _check(lr: float, eps: float, betas: tuple[float, float]) -> tuple[float, float]:
    check_non_negative("lr", lr)
    check_non_negative("eps", eps)
    return check_betas(betas)


class Adam2k(Optimizer):
    r"""VARIANT, for comparison only: Adam-2k, an optimizer that applies
    :func:`adam_2k`.

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: learning rate :math:`\eta` (default ``1e-3``).
        betas: :math:`(\beta_1, \beta_2)` (default ``(0.9, 0.999)``).
        eps: :math:`\epsilon` (default ``1e-8``).
        freeze: the steps that only update :math:`v` (default 2000, Liu et
            al.'s; it is also Ma & Yarats' :math:`2/(1-\beta_2)` at the
            default :math:`\beta_2`).

    The caller runs ``freeze`` steps more than it trains. State per
    parameter: ``step`` (a Python int), ``exp_avg``, ``exp_avg_sq``.
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 freeze: int = 2000) -> None:
        betas = _check(lr, eps, betas)
        check_integer("freeze", freeze, 0)
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, freeze=freeze))

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        return _adam_state(param)

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State,
               group: Group) -> None:
        _step(adam_2k, param, grad, state, group, freeze=group["freeze"])


class GIAdam(Optimizer):
    r"""VARIANT, for comparison only: GI-Adam, an optimizer that applies
    :func:`gi_adam`.

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: learning rate :math:`\eta` (default ``1e-3``).
        betas: :math:`(\beta_1, \beta_2)` (default ``(0.9, 0.999)``).
        eps: :math:`\epsilon` (default ``1e-8``).

    State per parameter: ``step`` (a Python int), ``exp_avg``, ``exp_avg_sq``.
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        betas = _check(lr, eps, betas)
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps))

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        return _adam_state(param)

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State,
               group: Group) -> None:
        _step(gi_adam, param, grad, state, group)


def _adam_state(param: torch.Tensor) -> State:
    """Adam's state: a Python step count and the two moments, zero."""
    return {"step": 0, "exp_avg": torch.zeros_like(param),
            "exp_avg_sq": torch.zeros_like(param)}


def _step(rule: Any, param: torch.Tensor, grad: torch.Tensor, state: State, group: Group,
          **extra: Any) -> None:
    """One step of ``rule`` (:func:`adam_2k` or :func:`gi_adam`) with the group's settings."""
    state["step"] += 1
    beta1, beta2 = group["betas"]
    rule(param, grad, state["exp_avg"], state["exp_avg_sq"], state["step"], lr=group["lr"],
         beta1=beta1, beta2=beta2, eps=group["eps"], **extra)
