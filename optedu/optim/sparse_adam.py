r"""SparseAdam: a lazy Adam that moves only the rows a sparse gradient names."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

from ._validation import check_betas, check_tensor_lr, invalid
from .optimizer import Optimizer, zero_buffer, evaluate


def sparse_adam(
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
    maximize: bool,
) -> None:
    r"""One SparseAdam step on one dense tensor with a sparse (COO) gradient.

    With :math:`S` the rows (indices) the gradient holds, summed over
    repeats, and ``step`` counting this tensor's steps from 1:

    .. math::

        m_{t,S} &\leftarrow m_{t-1,S} + (1-\beta_1)(g_{t,S} - m_{t-1,S}) \\
        v_{t,S} &\leftarrow v_{t-1,S} + (1-\beta_2)(g_{t,S}^2 - v_{t-1,S}) \\
        \theta_{t,S} &\leftarrow \theta_{t-1,S} - \eta\,
            \frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\,
            \frac{m_{t,S}}{\sqrt{v_{t,S}} + \epsilon}

    Rows outside :math:`S` keep :math:`\theta`, :math:`m` and :math:`v`
    unchanged: their moments do not decay on the steps they miss, and the
    bias correction counts the tensor's steps, not the row's.
    """
    g = -grad if maximize else grad
    g = g.coalesce()  # sum repeated rows: the update is not linear in g
    rows, values = g.indices(), g.values()
    if values.numel() == 0:
        return  # no row was touched (the step still counts)

    def on_rows(row_values: torch.Tensor) -> torch.Tensor:
        """A sparse tensor holding ``row_values`` at the rows ``rows``."""
        return torch.sparse_coo_tensor(rows, row_values, g.size(),
                                       check_invariants=False)  # rows from g

    m_old = exp_avg.sparse_mask(g).values()              # m_{t-1,S}
    m_step = values.sub(m_old).mul_(1 - beta1)           # (1-β1)(g - m_{t-1})
    exp_avg.add_(on_rows(m_step))                        # m_{t,S}
    v_old = exp_avg_sq.sparse_mask(g).values()           # v_{t-1,S}
    v_step = values.pow(2).sub_(v_old).mul_(1 - beta2)   # (1-β2)(g² - v_{t-1})
    exp_avg_sq.add_(on_rows(v_step))                     # v_{t,S}
    numer = m_step.add_(m_old)                           # m_{t,S} again
    denom = v_step.add_(v_old).sqrt_().add_(eps)         # √v_{t,S} + ε
    bias_correction1 = 1 - beta1**step                   # 1 - β1^t
    bias_correction2 = 1 - beta2**step                   # 1 - β2^t
    # η √(1-β2^t) / (1-β1^t), with math.sqrt as torch takes it here
    step_size = lr * math.sqrt(bias_correction2) / bias_correction1
    param.add_(on_rows(-step_size * numer.div_(denom)))  # θ_{t,S}


class SparseAdam(Optimizer):
    r"""SparseAdam, a drop-in for ``torch.optim.SparseAdam`` (torch 2.13).

    For ``nn.Embedding(..., sparse=True)`` and other parameters whose
    gradients are sparse COO tensors: only the rows in this step's gradient
    move (Adam applied lazily, see :func:`sparse_adam`).

    Args:
        params: dense tensors to optimise, or dicts defining groups.
        lr: learning rate :math:`\eta`, > 0 (default ``1e-3``).
        betas: :math:`(\beta_1, \beta_2)` (default ``(0.9, 0.999)``).
        eps: :math:`\epsilon`, > 0, added after the root (default ``1e-8``).
        maximize: ascend instead of descend (default ``False``).

    State per parameter: ``step`` (a Python ``int``, as torch keeps it for
    this optimizer), ``exp_avg``, ``exp_avg_sq``. A dense gradient raises
    ``RuntimeError``, as in torch.

    Differences from torch.optim.SparseAdam: none in what it computes.
    """

    refuses_shards = (  # see ._sharding
        "it takes sparse gradients only (rows of an embedding), and a "
        "sharded parameter gets dense gradient pieces")

    tensor_step = False  # torch's SparseAdam counts steps in a Python int

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        maximize: bool = False,
    ) -> None:
        check_tensor_lr(lr)
        if not 0.0 < lr:  # torch refuses lr = 0 and eps = 0 here
            raise invalid("lr", lr)
        if not 0.0 < eps:
            raise invalid("eps", eps)
        betas = check_betas(betas)
        defaults = dict(lr=lr, betas=betas, eps=eps, maximize=maximize)
        super().__init__(params, defaults)
        where: dict[str, list[list[int]]] = {"sparse": [], "complex": []}
        for i, group in enumerate(self.param_groups):
            for j, param in enumerate(group["params"]):
                if param.is_sparse:
                    where["sparse"].append([i, j])
                if param.is_complex():
                    where["complex"].append([i, j])
        if where["sparse"]:  # torch's messages
            raise ValueError(f"Sparse params at indices {where['sparse']}: "
                             "SparseAdam requires dense parameter tensors")
        if where["complex"]:
            raise ValueError(f"Complex params at indices {where['complex']}: "
                             "SparseAdam does not support complex parameters")

    @torch.no_grad()
    def step(  # type: ignore[override]
        self, closure: Callable[[], float] | None = None
    ) -> float | None:
        """One step; ``closure`` re-runs the model and returns the loss.

        Like torch, a group's gradients are all checked, and their step
        counts advanced, before any of its parameters moves.
        """
        loss = evaluate(closure)
        self.refuse_pieces()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            todo = []
            for param in group["params"]:
                if param.grad is None:
                    continue
                if not param.grad.is_sparse:
                    raise RuntimeError("SparseAdam does not support dense "
                                       "gradients, please consider Adam "
                                       "instead")
                state = self.state[param]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = zero_buffer(param)
                    state["exp_avg_sq"] = zero_buffer(param)
                state["step"] += 1
                todo.append((param, state))
            for param, state in todo:
                sparse_adam(param, param.grad, state["exp_avg"],
                            state["exp_avg_sq"], state["step"],
                            lr=group["lr"], beta1=beta1, beta2=beta2,
                            eps=group["eps"], maximize=group["maximize"])
        return loss
