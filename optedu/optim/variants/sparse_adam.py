r"""SparseAdam with each row's own step count: a comparison variant of
:func:`optedu.sparse_adam`.

VARIANT, not torch's rule. ``torch.optim.SparseAdam`` (and therefore
``optedu.SparseAdam``) corrects the moments of every row with the step
count of the whole tensor, although a row's moments only average the steps
in which the row was seen. This variant keeps one count per row,
``row_step``, and corrects each row with its own count :math:`n_i`:

.. math::

    \theta_{t,i} \leftarrow \theta_{t-1,i} - \eta\,
        \frac{\sqrt{1-\beta_2^{n_i}}}{1-\beta_1^{n_i}}\,
        \frac{m_{t,i}}{\sqrt{v_{t,i}} + \epsilon}

for the rows :math:`i` in the gradient; other rows are left alone, as in
SparseAdam. A row seen every step has :math:`n_i = t` and gets SparseAdam's
step; a rare row's first step with a constant gradient is :math:`\eta`
instead of up to :math:`\sqrt{10}\,\eta`. The SparseAdam chapter runs it
beside the real rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from optedu.optim._validation import check_betas, invalid


def sparse_adam_row_steps(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    row_step: torch.Tensor,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
) -> None:
    r"""VARIANT, not torch's rule: one lazy Adam step on the rows of a
    sparse (COO, one sparse dimension) gradient, each row bias-corrected
    with its own count in ``row_step`` (an int64 tensor of one count per
    row, advanced here)."""
    g = grad.coalesce()  # sum repeated rows, as SparseAdam does
    rows, values = g.indices()[0], g.values()
    if values.numel() == 0:
        return
    row_step[rows] += 1
    n = row_step[rows].to(values.dtype).reshape(-1, *[1] * (values.dim() - 1))
    m = exp_avg[rows]
    m += (1 - beta1) * (values - m)                     # m_{t,i}
    v = exp_avg_sq[rows]
    v += (1 - beta2) * (values.square() - v)            # v_{t,i}
    exp_avg[rows], exp_avg_sq[rows] = m, v
    # η √(1-β2^n) / (1-β1^n), n the row's own count
    step_size = lr * (1 - beta2**n).sqrt() / (1 - beta1**n)
    param[rows] -= step_size * m / (v.sqrt() + eps)     # θ_{t,i}


class RowStepSparseAdam(torch.optim.Optimizer):
    r"""VARIANT, for comparison only: SparseAdam with per-row bias
    correction (:func:`sparse_adam_row_steps`).

    Args as ``torch.optim.SparseAdam`` without ``maximize``: ``lr``
    (default ``1e-3``), ``betas`` (default ``(0.9, 0.999)``), ``eps``
    (default ``1e-8``). State per parameter: ``step`` (an int, the tensor's
    count, kept for comparison), ``row_step`` (int64, one per row),
    ``exp_avg``, ``exp_avg_sq``. Only sparse gradients are accepted.
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        if not 0.0 < lr:
            raise invalid("lr", lr)
        if not 0.0 < eps:
            raise invalid("eps", eps)
        betas = check_betas(betas)
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps))

    @torch.no_grad()
    def step(  # type: ignore[override]
        self, closure: Callable[[], float] | None = None
    ) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                if not param.grad.is_sparse:
                    raise RuntimeError("RowStepSparseAdam needs sparse "
                                       "gradients")
                state = self.state[param]
                if not state:
                    state["step"] = 0
                    state["row_step"] = torch.zeros(
                        param.shape[0], dtype=torch.int64)
                    state["exp_avg"] = torch.zeros_like(param)
                    state["exp_avg_sq"] = torch.zeros_like(param)
                state["step"] += 1
                sparse_adam_row_steps(
                    param, param.grad, state["exp_avg"], state["exp_avg_sq"],
                    state["row_step"], lr=group["lr"], beta1=beta1,
                    beta2=beta2, eps=group["eps"])
        return loss
