r"""Adam as papers and other libraries write it: comparison variants of
:func:`optedu.adam`.

Every form here is a *variant*: none is what ``torch.optim.Adam`` (and
therefore ``optedu.Adam``) computes, except where a test shows they agree.
The Adam chapter runs them beside optedu's rule so that each difference is
executed rather than asserted.

- ``"algorithm 1"``: Kingma & Ba's Algorithm 1, forming :math:`\hat m_t` and
  :math:`\hat v_t` and dividing by :math:`\sqrt{\hat v_t} + \epsilon` (torch's
  rule, the operations in another order).
- ``"epsilon hat"``: their end-of-section-2 form (TensorFlow, Keras): both
  corrections folded into the learning rate, :math:`\hat\epsilon` added to
  the *uncorrected* root.
- ``"no bias correction"``: :math:`m_t / (\sqrt{v_t} + \epsilon)`.
- ``"amsgrad paper"``: Reddi et al.'s Algorithm 2, the maximum of the raw
  :math:`v_t` and no bias correction at all.
- ``"max of corrected"``: AMSGrad as later write-ups give it, the maximum of
  the corrected :math:`\hat v_t`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from optedu.optim._validation import invalid
from optedu.optim.optimizer import Group, Optimizer, State

FORMS = ("algorithm 1", "epsilon hat", "no bias correction", "amsgrad paper",
         "max of corrected")


def adam_variant(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    max_exp_avg_sq: torch.Tensor,
    step: int,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    form: str,
) -> None:
    r"""VARIANT, not torch's rule: one Adam step on one tensor, in place, in
    the convention ``form`` (one of :data:`FORMS`).

    With :math:`m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t`,
    :math:`v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2`,
    :math:`\hat m_t = m_t/(1-\beta_1^t)`, :math:`\hat v_t = v_t/(1-\beta_2^t)`,
    the step :math:`\theta_t = \theta_{t-1} - \Delta_t` is

    .. math::

        &\text{algorithm 1:} \\
        &\quad \Delta_t = \eta\,\hat m_t / (\sqrt{\hat v_t} + \epsilon) \\
        &\text{epsilon hat:} \\
        &\quad \Delta_t = \eta\,
            \frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\,
            m_t / (\sqrt{v_t} + \epsilon) \\
        &\text{no bias correction:} \\
        &\quad \Delta_t = \eta\, m_t / (\sqrt{v_t} + \epsilon) \\
        &\text{amsgrad paper:} \\
        &\quad v^{\max}_t = \max(v^{\max}_{t-1}, v_t), \\
        &\quad \Delta_t = \eta\, m_t / (\sqrt{v^{\max}_t} + \epsilon) \\
        &\text{max of corrected:} \\
        &\quad \hat v^{\max}_t = \max(\hat v^{\max}_{t-1}, \hat v_t), \\
        &\quad \Delta_t = \eta\,\hat m_t / (\sqrt{\hat v^{\max}_t} + \epsilon)

    ``step`` is the 1-based step number; ``max_exp_avg_sq`` is used only by
    the two AMSGrad forms (it holds :math:`v^{\max}` or
    :math:`\hat v^{\max}`). Reddi et al.'s analysis uses a decaying
    :math:`\eta_t` (and allows a decaying :math:`\beta_{1t}`) and no
    :math:`\epsilon`; here ``lr`` and ``betas`` are constant (the caller may
    change ``lr`` between steps) and ``eps`` is added as torch adds it. No
    weight decay or ``maximize``: only the convention differs from
    ``optedu.adam``.
    """
    exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)        # m_t
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)   # v_t
    m, v = exp_avg, exp_avg_sq
    m_hat, v_hat = m / (1 - beta1**step), v / (1 - beta2**step)
    if form == "algorithm 1":
        param.sub_(lr * m_hat / (v_hat.sqrt() + eps))
    elif form == "epsilon hat":
        lr_t = lr * math.sqrt(1 - beta2**step) / (1 - beta1**step)
        param.sub_(lr_t * m / (v.sqrt() + eps))
    elif form == "no bias correction":
        param.sub_(lr * m / (v.sqrt() + eps))
    elif form == "amsgrad paper":
        torch.maximum(max_exp_avg_sq, v, out=max_exp_avg_sq)
        param.sub_(lr * m / (max_exp_avg_sq.sqrt() + eps))
    elif form == "max of corrected":
        torch.maximum(max_exp_avg_sq, v_hat, out=max_exp_avg_sq)
        param.sub_(lr * m_hat / (max_exp_avg_sq.sqrt() + eps))
    else:
        raise invalid("form", repr(form), f"one of {FORMS}")


class AdamVariant(Optimizer):
    r"""VARIANT, for comparison only: Adam with one convention changed, an
    optimizer that applies :func:`adam_variant`.

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: learning rate :math:`\eta` (default ``1e-3``).
        betas: :math:`(\beta_1, \beta_2)` (default ``(0.9, 0.999)``).
        eps: :math:`\epsilon` (default ``1e-8``).
        form: the convention, one of :data:`FORMS` (default
            ``"algorithm 1"``).

    State per parameter: ``step`` (a Python int), ``exp_avg``,
    ``exp_avg_sq`` and ``max_exp_avg_sq``.
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, form: str = "algorithm 1") -> None:
        if form not in FORMS:
            raise invalid("form", repr(form), f"one of {FORMS}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, form=form))

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        return {"step": 0, "exp_avg": torch.zeros_like(param),
                "exp_avg_sq": torch.zeros_like(param),
                "max_exp_avg_sq": torch.zeros_like(param)}

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State,
               group: Group) -> None:
        state["step"] += 1
        beta1, beta2 = group["betas"]
        adam_variant(param, grad, state["exp_avg"], state["exp_avg_sq"],
                     state["max_exp_avg_sq"], state["step"], lr=group["lr"],
                     beta1=beta1, beta2=beta2, eps=group["eps"],
                     form=group["form"])
