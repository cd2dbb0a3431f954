r"""AdaGrad: per-coordinate learning rates from the sum of squared gradients.

The rule in its forms, one after the other: :func:`adagrad` on one tensor,
:func:`adagrad_sparse` on a sparse gradient, and :func:`adagrad_fused`,
compiled into one kernel per tensor by :mod:`optedu.optim.fused`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from ._validation import check_non_negative, check_tensor_lr
from .fused import (FusedOptimizer, check_fused, compiled, flat,
                    learning_rate, run_in_chunks)
from .optimizer import Group, State, as_real, new_step_counter


def adagrad(
    param: torch.Tensor,
    grad: torch.Tensor,
    state_sum: torch.Tensor,
    step: int,
    *,
    lr: float,
    lr_decay: float,
    weight_decay: float,
    eps: float,
    maximize: bool,
) -> None:
    r"""One AdaGrad step on one tensor, in place; ``step`` counts from 1.

    .. math::

        g_t &\leftarrow \pm\nabla f(\theta_{t-1}) + \lambda\,\theta_{t-1} \\
        \tilde\eta_t &\leftarrow \eta \,/\, \bigl(1 + (t-1)\,\delta\bigr) \\
        G_t &\leftarrow G_{t-1} + g_t^2 \\
        \theta_t &\leftarrow \theta_{t-1}
            - \tilde\eta_t\, g_t \,/\, \bigl(\sqrt{G_t} + \epsilon\bigr)

    with :math:`G_0` the ``initial_accumulator_value`` and :math:`\delta`
    the ``lr_decay``. Note :math:`\epsilon` sits *outside* the square root.

    A complex tensor is two real ones: give the ``torch.view_as_real`` views
    of ``param``, ``grad`` and ``state_sum`` (the class does, as torch does).
    """
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g.add(param, alpha=weight_decay)  # g_t = g_t + λ θ_{t-1}
    clr = lr / (1 + (step - 1) * lr_decay)  # η̃_t = η / (1 + (t-1) δ)
    g, state_sum, param = as_real(g, state_sum, param)  # complex: two reals
    state_sum.addcmul_(g, g, value=1)       # G_t = G_{t-1} + g_t²
    denom = state_sum.sqrt().add_(eps)      # √G_t + ε
    param.addcdiv_(g, denom, value=-clr)    # θ_t = θ_{t-1} - η̃_t g_t/(√G_t+ε)


def adagrad_sparse(
    param: torch.Tensor,
    grad: torch.Tensor,
    state_sum: torch.Tensor,
    step: int,
    *,
    lr: float,
    lr_decay: float,
    weight_decay: float,
    eps: float,
    maximize: bool,
) -> None:
    r"""One AdaGrad step for a sparse (COO) gradient, in place: only the rows
    the gradient holds change, in ``state_sum`` and in ``param``.

    With :math:`S` the rows present in :math:`g_t` (an embedding's looked-up
    rows):

    .. math::

        G_{t,i} &\leftarrow G_{t-1,i} + g_{t,i}^2 \quad (i \in S) \\
        \theta_{t,i} &\leftarrow \theta_{t-1,i}
            - \tilde\eta_t\, g_{t,i} \,/\, \bigl(\sqrt{G_{t,i}} + \epsilon\bigr)
            \quad (i \in S)

    and every other row keeps its :math:`G` and :math:`\theta`. The same
    rule as :func:`adagrad` on the dense gradient (zero off :math:`S`), up
    to rounding, for :math:`\epsilon > 0`: with :math:`\epsilon = 0` the
    dense rule divides 0 by 0 in a row never seen and writes NaN there,
    while a row outside :math:`S` is not even read here.
    Weight decay would touch every row, so it is refused (torch's error).
    Complex gradients are stepped as complex numbers, as torch does here.
    """
    g = -grad if maximize else grad
    if weight_decay != 0:  # torch's message, raised during step as torch does
        raise RuntimeError("weight_decay option is not compatible with sparse gradients")
    clr = lr / (1 + (step - 1) * lr_decay)  # η̃_t = η / (1 + (t-1) δ)
    g = g.coalesce()  # one value per row: the update is not linear in g
    rows, values = g._indices(), g._values()
    # G_t = G_{t-1} + g_t² on the rows present
    state_sum.add_(torch.sparse_coo_tensor(rows, values.pow(2), g.size()))
    denom = state_sum.sparse_mask(g)._values().sqrt_().add_(eps)  # √G_t + ε there
    # θ_t = θ_{t-1} - η̃_t g_t/(√G_t+ε) there
    param.add_(torch.sparse_coo_tensor(rows, values / denom, g.size()), alpha=-clr)


def adagrad_fused(param: Tensor, grad: Tensor, state_sum: Tensor,
                  step: Tensor, lr: Tensor, *, lr_decay: float,
                  weight_decay: float, eps: float, maximize: bool) -> Tensor:
    r"""One AdaGrad step on one tensor, in place: :func:`optedu.adagrad`
    with the step counter and the learning rate as tensors. Returns
    :math:`\tilde\eta_t`, so that the compiler computes it once."""
    step += 1
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g.add(param, alpha=weight_decay)  # g_t = g_t + λ θ_{t-1}
    clr = lr / (1 + (step.double() - 1) * lr_decay)  # η̃_t = η/(1+(t-1)δ)
    state_sum.addcmul_(g, g, value=1)       # G_t = G_{t-1} + g_t²
    denom = state_sum.sqrt().add_(eps)      # √G_t + ε
    param.add_(-clr * g / denom)            # θ_t = θ_{t-1} - η̃_t g_t/(√G_t+ε)
    return clr


class Adagrad(FusedOptimizer):
    r"""AdaGrad (Duchi, Hazan & Singer, 2011), a drop-in for torch 2.13's
    ``torch.optim.Adagrad``.

    Args:
        params: tensors to optimise, or dicts defining parameter groups.
        lr: learning rate :math:`\eta` (default ``1e-2``).
        lr_decay: :math:`\delta`, the rate is :math:`\eta/(1+(t-1)\delta)`
            (default ``0``).
        weight_decay: L2 penalty :math:`\lambda`, added to the gradient
            (default ``0``).
        initial_accumulator_value: :math:`G_0` (default ``0``).
        eps: :math:`\epsilon`, added after the square root (default ``1e-10``).
        maximize: ascend instead of descend (default ``False``).
        fused: ``True`` for the compiled path
            (:func:`adagrad_fused`, one pass over memory
            per tensor; rounds differently, see :mod:`optedu.optim.fused`).

    State per parameter: ``step``, ``sum``. Like torch, the state is created
    in the constructor for every parameter, so ``state_dict()`` lists it
    before the first step.

    Sparse gradients (``nn.Embedding(sparse=True)``) take
    :func:`adagrad_sparse`, as in torch; complex parameters are stepped as
    their real and imaginary parts, and :math:`G_0` is given to both.

    Differences from torch.optim.Adagrad: no ``foreach`` switch;
    ``fused=True`` compiles optedu's rule instead of calling torch's kernel.
    """

    element_wise = True  # any piece of a tensor steps as the whole (._sharding)

    supports_sparse = True  # adagrad_sparse

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
        fused: bool | None = None,
    ) -> None:
        check_tensor_lr(lr)
        check_non_negative("lr", lr)
        check_non_negative("lr_decay", lr_decay)
        check_non_negative("weight_decay", weight_decay)
        check_non_negative("initial_accumulator_value",
                           initial_accumulator_value)
        check_non_negative("eps", eps)
        check_fused(fused)
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps,
                        weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value,
                        maximize=maximize, fused=fused)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for param in group["params"]:
                self.state[param].update(self.init_state(param, group))

    def init_state(self, param: torch.Tensor, group: Group) -> State:
        value = group["initial_accumulator_value"]
        if param.is_complex():  # G_0 for the real and the imaginary part alike, as torch
            value = complex(value, value)
        return {
            # torch's fused step counts in float32
            "step": new_step_counter().float() if group.get("fused")
            else new_step_counter(),
            "sum": torch.full_like(param, value, memory_format=torch.preserve_format),
        }

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: State,
               group: Group) -> None:
        state["step"] += 1
        rule = adagrad_sparse if grad.is_sparse else adagrad
        rule(param, grad, state["sum"], int(state["step"].item()),
                lr=group["lr"], lr_decay=group["lr_decay"],
                weight_decay=group["weight_decay"], eps=group["eps"],
                maximize=group["maximize"])

    def update_fused(self, params: list[torch.Tensor], grads: list[torch.Tensor],
                     states: list[State], group: Group) -> None:
        kernel = compiled(
            adagrad_fused, lr_decay=group["lr_decay"],
            weight_decay=group["weight_decay"], eps=group["eps"],
            maximize=group["maximize"])
        rows = [(*flat(param, grad, state["sum"]), state["step"])
                for param, grad, state in zip(params, grads, states)]
        run_in_chunks(kernel, rows, learning_rate(group))
