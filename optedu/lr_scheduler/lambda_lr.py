r"""Schedules given as a function of the step: ``LambdaLR`` (closed form) and ``MultiplicativeLR``."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._base import ChainableLR, LRScheduler

__all__ = ["LambdaLR", "MultiplicativeLR"]

Lambda = Callable[[int], float]


def _lambdas(optimizer: torch.optim.Optimizer, lr_lambda: Lambda | list[Lambda]) -> list[Lambda]:
    """One function per group: a list as given (right length), or one function repeated."""
    n = len(optimizer.param_groups)
    if isinstance(lr_lambda, (list, tuple)):
        if len(lr_lambda) != n:
            raise ValueError(f"Expected {n} lr_lambdas, but got {len(lr_lambda)}")
        lambdas = list(lr_lambda)
    else:
        lambdas = [lr_lambda] * n
    for fn in lambdas:
        if not callable(fn):
            raise TypeError(f"lr_lambda should be a function, but got {type(fn).__name__}")
    return lambdas


class LambdaLR(LRScheduler):
    r"""Rate = starting rate × a function of the step, for ``torch.optim.lr_scheduler.LambdaLR``.

    .. math:: \eta_t = \eta_0 \cdot \lambda(t)

    Args:
        optimizer: the optimizer to drive.
        lr_lambda: :math:`\lambda`, a function of the step count ``t`` (0, 1, 2, ...), or a list
            of them, one per parameter group. The closed-form schedules of
            :mod:`optedu.lr_scheduler.schedules` fit here through ``functools.partial``.
        last_epoch: ``-1`` to start; a step count to resume.

    Differences from torch: a non-callable ``lr_lambda`` raises ``TypeError`` here at once
    (torch's ``LambdaLR`` fails later, at the first call).
    """

    _functions = ("lr_lambdas",)

    def __init__(self, optimizer: torch.optim.Optimizer, lr_lambda: Lambda | list[Lambda],
                 last_epoch: int = -1) -> None:
        self.lr_lambdas = _lambdas(optimizer, lr_lambda)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base_lr * fn(self.last_epoch) for fn, base_lr in zip(self.lr_lambdas, self.base_lrs)]


class MultiplicativeLR(ChainableLR):
    r"""Each step multiplies the current rate by a function of the step (chainable).

    .. math:: \eta_t = \eta_{t-1} \cdot \lambda(t), \qquad \eta_0 \text{ unchanged}

    Args:
        optimizer: the optimizer to drive.
        lr_lambda: :math:`\lambda`, or one per parameter group.
        last_epoch: ``-1`` to start; a step count to resume.
    """

    _functions = ("lr_lambdas",)

    def __init__(self, optimizer: torch.optim.Optimizer, lr_lambda: Lambda | list[Lambda],
                 last_epoch: int = -1) -> None:
        self.lr_lambdas = _lambdas(optimizer, lr_lambda)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return self._current_lrs()
        return [group["lr"] * fn(self.last_epoch)
                for fn, group in zip(self.lr_lambdas, self.optimizer.param_groups)]
