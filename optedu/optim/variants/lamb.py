r"""Variants of LAMB and LARS, for the large-batch chapter's conventions table.

Not the rules optedu trains with (those are :func:`optedu.optim.lamb.lamb` and
:func:`optedu.optim.lars.lars`, checked against optax): each switch below changes
one convention, so a chapter can measure what every convention is worth.
With all switches at their defaults each function is optedu's rule; with the
switches of ``PYTORCH_OPTIMIZER_LAMB`` / ``PYTORCH_OPTIMIZER_LARS`` it is
``pytorch_optimizer`` 4.1.0's ``Lamb`` / ``LARS`` with their other options at
their defaults (``tests/optim/variants/test_variants_lamb.py`` runs both).
"""

from __future__ import annotations

import torch

from optedu.optim.lars import trust_ratio

# pytorch_optimizer 4.1.0's conventions, as switches of the variants below.
PYTORCH_OPTIMIZER_LAMB = dict(bias_correction="step", norm_clip=10.0,
                              eps_in_ratio=True, decay_outside=True)
PYTORCH_OPTIMIZER_LARS = dict(paper_ratio=True, lr_in_buffer=False,
                              skip_vectors=True)


def lamb_variant(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    step: int,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    bias_correction: str = "inside",
    norm_clip: float | None = None,
    eps_in_ratio: bool = False,
    decay_outside: bool = False,
) -> None:
    r"""A variant of one LAMB step on one tensor, in place.

    Switches (defaults: optedu's :func:`~optedu.optim.lamb.lamb`):

    - ``bias_correction``: ``"inside"`` corrects :math:`m` and :math:`v`
      before the ratio; ``"none"`` uses :math:`m_t/(\sqrt{v_t}+\epsilon)`
      (what pytorch-lamb and pytorch_optimizer call the paper's version 3);
      ``"step"`` does that and then divides the
      step, *after* the trust ratio, by :math:`1-\beta_1^t`
      (pytorch_optimizer's default, ``adam_debias=False``);
    - ``norm_clip=c``: the ratio's numerator is :math:`\min(\|\theta\|, c)`,
      the paper's scaling function :math:`\phi` with an upper bound only;
    - ``eps_in_ratio=True``: the ratio is :math:`\|\theta\|/(\|u\|+\epsilon)`;
    - ``decay_outside=True``: decoupled decay
      :math:`\theta \leftarrow (1-\eta\lambda)\theta` *before* the step and
      outside the trust ratio (AdamW's decay), instead of
      :math:`\lambda\theta` added to :math:`u` inside it.
    """
    if decay_outside and weight_decay:
        param.mul_(1 - lr * weight_decay)            # θ ← (1 - ηλ) θ
    exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)  # m_t = β1 m + (1-β1) g
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    if bias_correction not in ("inside", "none", "step"):
        raise ValueError(f"Invalid bias_correction: {bias_correction}")
    if bias_correction == "inside":
        m_hat = exp_avg / (1 - beta1**step)           # m̂_t = m_t/(1-β1^t)
        v_hat = exp_avg_sq / (1 - beta2**step)        # v̂_t = v_t/(1-β2^t)
    else:
        m_hat, v_hat = exp_avg.clone(), exp_avg_sq
    u = m_hat.div_(v_hat.sqrt().add_(eps))            # r_t = m̂/(√v̂ + ε)
    if weight_decay and not decay_outside:
        u.add_(param, alpha=weight_decay)             # u_t = r_t + λ θ
    param_norm = torch.linalg.vector_norm(param).item()
    if norm_clip is not None:
        param_norm = min(param_norm, norm_clip)       # φ(‖θ‖)
    update_norm = torch.linalg.vector_norm(u).item()
    if param_norm == 0 or update_norm == 0:
        rho = 1.0
    else:
        rho = param_norm / (update_norm + (eps if eps_in_ratio else 0.0))
    if bias_correction == "step":
        lr = lr / (1 - beta1**step)                   # η/(1-β1^t)
    param.add_(u.mul_(rho), alpha=-lr)                # θ_t = θ - η ρ_t u_t


def lars_variant(
    param: torch.Tensor,
    grad: torch.Tensor,
    momentum_buffer: torch.Tensor,
    *,
    lr: float,
    momentum: float,
    weight_decay: float,
    trust_coefficient: float,
    eps: float = 0.0,
    nesterov: bool = False,
    paper_ratio: bool = False,
    lr_in_buffer: bool = True,
    skip_vectors: bool = False,
) -> None:
    r"""A variant of one LARS step on one tensor, in place.

    Switches (defaults: optedu's :func:`~optedu.optim.lars.lars`):

    - ``paper_ratio=True``: :math:`c\|\theta\|/(\|g\|+\lambda\|\theta\|)`
      (You et al., 2017) instead of :math:`c\|\theta\|/(\|g+\lambda\theta\|
      +\epsilon)`; 1 if :math:`\|\theta\|` or the divisor is 0;
    - ``lr_in_buffer=False``: the buffer gathers :math:`\rho u` and the step
      is :math:`\eta` times it (torch.optim.SGD's placement);
    - ``skip_vectors=True``: tensors with at most one dimension (biases,
      norm gains) take a plain momentum step, no ratio and no decay.
    """
    if skip_vectors and param.ndim <= 1:
        u, rho = grad, 1.0
    else:
        u = grad.add(param, alpha=weight_decay) if weight_decay else grad
        if paper_ratio:
            param_norm = torch.linalg.vector_norm(param).item()
            divisor = (torch.linalg.vector_norm(grad).item()
                       + weight_decay * param_norm)  # ‖g‖ + λ‖θ‖
            rho = (trust_coefficient * param_norm / divisor
                   if param_norm > 0 and divisor > 0 else 1.0)
        else:
            rho = trust_ratio(param, u, trust_coefficient, eps)
    local = u.mul(rho)                           # ρu
    if lr_in_buffer:
        local.mul_(lr)                           # ηρu
    momentum_buffer.mul_(momentum).add_(local)   # b_t = μ b_{t-1} + local
    step = local.add_(momentum_buffer, alpha=momentum) if nesterov \
        else momentum_buffer.clone()
    param.sub_(step if lr_in_buffer else step.mul_(lr))
