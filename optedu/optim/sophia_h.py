r"""SophiaH: momentum divided by a diagonal Hessian estimate, then clipped
coordinate by coordinate.

Liu et al., 2023, *Sophia: A Scalable Stochastic Second-order Optimizer for
Language Model Pre-training* (Algorithm 1 with Hutchinson's estimator). Every
``update_period`` steps the rule draws a random vector :math:`u` per tensor
and estimates the Hessian's diagonal as :math:`u \odot (Hu)`: one
Hessian-vector product, differentiating the gradient again, so the gradient
must carry its graph (``loss.backward(create_graph=True)``).

The interface is ``pytorch_optimizer.SophiaH`` 4.1.0's: its arguments,
defaults, state keys (``momentum``, ``hessian_moment``, ``hessian``), a step
count in each group, and its draws from torch's global generator in the same
order, so that under the same seed both take the same vectors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

import torch

from ._validation import check_betas, check_integer, check_non_negative, invalid
from .optimizer import Group, Optimizer, State, evaluate


def hutchinson_(estimates: Sequence[torch.Tensor], params: Sequence[torch.Tensor],
                grads: Sequence[torch.Tensor], *, num_samples: int,
                distribution: str) -> None:
    r"""Hutchinson's estimate of the Hessian's diagonal, into ``estimates``
    (zeroed first), in place:

    .. math::

        \hat h = \frac1S \sum_{s=1}^S u_s \odot (H u_s), \qquad
        \mathbb E[u u^\top] = I \;\Rightarrow\; \mathbb E[\hat h] = \operatorname{diag} H

    :math:`u_s` is Gaussian or Rademacher (:math:`\pm 1`), one per tensor,
    drawn from torch's global generator tensor by tensor; :math:`Hu` is the
    derivative of :math:`g^\top u` (the gradients ``grads`` must carry their
    graph).
    """
    if any(not grad.requires_grad for grad in grads):
        raise RuntimeError("SophiaH differentiates the gradient again: call "
                           "loss.backward(create_graph=True) before step()")
    for estimate in estimates:
        estimate.zero_()
    for s in range(num_samples):
        if distribution == "rademacher":
            us = [torch.randint_like(p, 0, 2) * 2.0 - 1.0 for p in params]  # u ∈ {±1}
        else:
            us = [torch.randn_like(p) for p in params]                      # u ~ N(0, I)
        hus = torch.autograd.grad(grads, params, grad_outputs=us,           # H u
                                  retain_graph=s < num_samples - 1)
        for estimate, hu, u in zip(estimates, hus, us):
            estimate.addcmul_(hu, u, value=1.0 / num_samples)  # ĥ += u ⊙ Hu / S


def sophia_h(
    param: torch.Tensor,
    grad: torch.Tensor,
    momentum: torch.Tensor,
    hessian_moment: torch.Tensor,
    hessian: torch.Tensor | None,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    weight_decay: float,
    weight_decouple: bool,
    fixed_decay: bool,
    p: float,
    eps: float,
) -> None:
    r"""One SophiaH step on one tensor, in place (``hessian``: a fresh
    estimate :math:`\hat h_t`, or ``None`` between refreshes).

    .. math::

        \theta &\leftarrow (1-\eta\lambda)\,\theta \\
            &\quad\text{(decoupled;} \\
            &\quad\text{coupled: } g_t \leftarrow g_t + \lambda\theta) \\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t \\
        h_t &= \beta_2 h_{t-1} + (1-\beta_2)\, \hat h_t \\
            &\quad\text{(on a refresh; else } h_t = h_{t-1}) \\
        \theta_t &= \theta - \eta\,
            \operatorname{clip}\bigl(m_t / \max(h_t, \epsilon),\, -\rho,\, \rho\bigr)

    :math:`\rho` is ``p``; ``fixed_decay`` drops :math:`\eta` from the decay.
    """
    if weight_decay != 0.0:
        if weight_decouple:                       # θ ← (1 - ηλ)θ, or (1 - λ)θ
            param.mul_(1.0 - weight_decay * (1.0 if fixed_decay else lr))
        elif weight_decay > 0.0:
            grad = grad.add(param, alpha=weight_decay)          # g + λθ
    momentum.lerp_(grad, 1.0 - beta1)                 # m_t = β1 m + (1-β1) g_t
    if hessian is not None:
        hessian_moment.lerp_(hessian, 1.0 - beta2)    # h_t = β2 h + (1-β2) ĥ_t
    ratio = momentum / hessian_moment.clamp(min=eps)  # m_t / max(h_t, ε)
    param.add_(ratio.clamp_(-p, p), alpha=-lr)        # θ - η clip(·, ±ρ)


class SophiaH(Optimizer):
    r"""SophiaH (Liu et al., 2023), pytorch_optimizer 4.1.0's arguments,
    names and defaults.

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: :math:`\eta` (default ``6e-2``).
        betas: :math:`(\beta_1, \beta_2)`, the decays of the gradient's and
            the Hessian estimate's averages (default ``(0.96, 0.99)``).
        weight_decay: :math:`\lambda` (default ``0``).
        weight_decouple: decay the weights (default) or add
            :math:`\lambda\theta` to the gradient.
        fixed_decay: a decoupled decay by :math:`\lambda`, not
            :math:`\eta\lambda` (default ``False``).
        p: :math:`\rho`, the bound of every coordinate of the preconditioned
            step (default ``1e-2``).
        update_period: steps between Hessian estimates :math:`k`; the first
            step estimates (default ``10``).
        num_samples: random vectors per estimate :math:`S` (default ``1``).
        hessian_distribution: ``"gaussian"`` (default) or ``"rademacher"``.
        eps: :math:`\epsilon`, the floor of :math:`h_t` (default ``1e-12``).
        maximize: ascend (default ``False``).
        foreach: kept for the reference's signature and groups; optedu has
            one path, bit-identical to both of the reference's (tested).

    ``step(closure=None, hessian=None)``: ``hessian``, one tensor per
    parameter of every group in order, replaces the estimate for this step
    (the caller's tensors are kept in the state, as the reference keeps
    them). Without it, the gradients must carry their graph
    (``loss.backward(create_graph=True)``).

    State per parameter: ``momentum`` (:math:`m`), ``hessian_moment``
    (:math:`h`), ``hessian`` (the last estimate :math:`\hat h`). Group key
    ``step`` (a count, in the group; the first group's decides the refresh).

    Differences from pytorch_optimizer 4.1.0: ``p.grad`` is left alone (the
    reference negates it in place with ``maximize`` and adds the coupled
    decay to it); a gradient without its graph raises a ``RuntimeError``
    that says to call ``backward(create_graph=True)`` (the reference's
    comes from autograd).
    """

    supports_complex = False
    couples_tensors = True   # the estimate's draws run over every tensor in turn
    # FSDP2 shards (._sharding): refused before any state moves
    refuses_shards = ("it differentiates the whole gradient again "
                      "(Hutchinson's Hessian-vector product)")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 6e-2,
        betas: tuple[float, float] = (0.96, 0.99),
        weight_decay: float = 0.0,
        weight_decouple: bool = True,
        fixed_decay: bool = False,
        p: float = 1e-2,
        update_period: int = 10,
        num_samples: int = 1,
        hessian_distribution: str = "gaussian",
        eps: float = 1e-12,
        maximize: bool = False,
        foreach: bool | None = None,
    ) -> None:
        check_non_negative("lr", lr)
        betas = check_betas(betas)
        check_non_negative("weight_decay", weight_decay)
        check_non_negative("p", p)
        check_integer("update_period", update_period, 1)
        check_integer("num_samples", num_samples, 1)
        if hessian_distribution not in ("gaussian", "rademacher"):
            raise invalid("hessian_distribution", hessian_distribution,
                          "'gaussian' or 'rademacher'")
        check_non_negative("eps", eps)
        self.update_period = update_period
        self.num_samples = num_samples
        self.distribution = hessian_distribution
        self.maximize = maximize
        self.foreach = foreach
        defaults = dict(lr=lr, foreach=foreach, betas=betas, weight_decay=weight_decay,
                        weight_decouple=weight_decouple, fixed_decay=fixed_decay, p=p,
                        eps=eps)
        super().__init__(params, defaults)

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        """The averages; ``hessian`` joins at the first estimate."""
        return {"momentum": torch.zeros_like(param),
                "hessian_moment": torch.zeros_like(param)}

    @torch.no_grad()
    def step(  # type: ignore[override]
        self, closure: Callable[[], float] | None = None,
        hessian: Sequence[torch.Tensor] | None = None,
    ) -> float | None:
        """One step; a refresh first estimates :math:`\\hat h` over every
        group's tensors (:func:`hutchinson_`), or takes ``hessian``."""
        loss = evaluate(closure)
        self.refuse_pieces()
        stepped = []
        for group in self.param_groups:
            group.setdefault("step", 0)
            params = [param for param in group["params"] if param.grad is not None]
            self.check_gradients(params)
            for param in params:
                if "momentum" not in self.state[param]:
                    self.state[param].update(self.init_state(param, group))
            stepped.append(params)
        refresh = hessian is not None or self.param_groups[0]["step"] % self.update_period == 0
        if hessian is not None:
            given = [param for group in self.param_groups for param in group["params"]]
            if len(hessian) != len(given):
                raise invalid("hessian", f"{len(hessian)} tensors",
                              f"one per parameter, {len(given)}")
            for param, estimate in zip(given, hessian):
                if param.shape != estimate.shape:
                    raise invalid("hessian", f"a tensor of shape {tuple(estimate.shape)}",
                                  f"the parameter's shape {tuple(param.shape)}")
                self.state[param]["hessian"] = estimate
        elif refresh:
            params = [param for ps in stepped for param in ps]
            estimates = [self.state[param].setdefault("hessian", torch.zeros_like(param))
                         for param in params]
            hutchinson_(estimates, params, [cast(torch.Tensor, param.grad) for param in params],
                        num_samples=self.num_samples, distribution=self.distribution)
        for group, params in zip(self.param_groups, stepped):
            group["step"] += 1
            beta1, beta2 = group["betas"]
            for param in params:
                state, grad = self.state[param], cast(torch.Tensor, param.grad)
                sophia_h(param, -grad if self.maximize else grad, state["momentum"],
                         state["hessian_moment"], state["hessian"] if refresh else None,
                         lr=group["lr"], beta1=beta1, beta2=beta2,
                         weight_decay=group["weight_decay"],
                         weight_decouple=group["weight_decouple"],
                         fixed_decay=group["fixed_decay"], p=group["p"], eps=group["eps"])
        return loss
