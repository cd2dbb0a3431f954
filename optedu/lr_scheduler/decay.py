r"""Chainable decays: step, multi-step, constant, linear, exponential and
polynomial factors.

Each class states its schedule twice: :meth:`get_lr` moves the *current* rate by
one step's factor (how torch computes it, so numbers agree and schedulers
chain), and :meth:`closed_form_lr` writes the rate at ``last_epoch`` directly
from ``base_lrs``.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable

import torch

from optedu.optim._validation import check_greater, check_integer, check_non_negative, invalid
from ._base import ChainableLR

__all__ = ["StepLR", "MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR",
           "PolynomialLR"]


class StepLR(ChainableLR):
    r"""Multiply the rate by ``gamma`` every ``step_size`` steps.

    .. math:: \eta_t = \eta_0\, \gamma^{\lfloor t / s \rfloor}

    Args:
        optimizer: the optimizer to drive.
        step_size: :math:`s`, steps between decays (a positive integer).
        gamma: :math:`\gamma > 0` (default 0.1).
        last_epoch: ``-1`` to start; a step count to resume.

    Differences from torch: ``step_size < 1`` and ``gamma <= 0`` raise
    ``ValueError``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, step_size: int,
                 gamma: float = 0.1, last_epoch: int = -1) -> None:
        check_integer("step_size", step_size, 1)
        check_greater("gamma", gamma)
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return self._scaled(self.gamma)

    def closed_form_lr(self) -> list[float]:
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size)
                for base_lr in self.base_lrs]


class MultiStepLR(ChainableLR):
    r"""Multiply the rate by ``gamma`` at each milestone.

    .. math:: \eta_t = \eta_0\, \gamma^{\#\{m \in \text{milestones} : m \le t\}}

    A milestone listed twice decays twice, as in torch.

    Args:
        optimizer: the optimizer to drive.
        milestones: step counts at which to decay.
        gamma: :math:`\gamma > 0` (default 0.1).
        last_epoch: ``-1`` to start; a step count to resume.

    Differences from torch: ``gamma <= 0`` and non-integer milestones raise
    ``ValueError``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer,
                 milestones: Iterable[int], gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        milestones = list(milestones)
        if not all(isinstance(m, int) and not isinstance(m, bool)
                   for m in milestones):
            raise invalid("milestones", milestones, "a list of integers")
        check_greater("gamma", gamma)
        # milestone -> how many times it is listed
        self.milestones = Counter(milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch not in self.milestones:
            return self._current_lrs()
        return self._scaled(self.gamma ** self.milestones[self.last_epoch])

    def closed_form_lr(self) -> list[float]:
        passed = bisect_right(sorted(self.milestones.elements()),
                              self.last_epoch)
        return [base_lr * self.gamma ** passed for base_lr in self.base_lrs]


class ConstantLR(ChainableLR):
    r"""Multiply the rate by ``factor`` for the first ``total_iters`` steps,
    then restore it.

    .. math:: \eta_t = \eta_0 \cdot
              \begin{cases} f & t < T \\ 1 & t \ge T \end{cases}

    Args:
        optimizer: the optimizer to drive.
        factor: :math:`f \in [0, 1]` (default 1/3).
        total_iters: :math:`T`, a positive integer (default 5).
        last_epoch: ``-1`` to start; a step count to resume.

    Differences from torch: ``total_iters < 1`` raises ``ValueError`` (torch
    then keeps the factor forever, against its own closed form). ``factor = 0``
    is accepted, as in torch, but cannot be undone at ``total_iters`` (torch
    divides by it).
    """

    def __init__(self, optimizer: torch.optim.Optimizer,
                 factor: float = 1.0 / 3, total_iters: int = 5,
                 last_epoch: int = -1) -> None:
        if factor > 1.0 or factor < 0:
            raise ValueError("Constant multiplicative factor expected to be "
                             "between 0 and 1.")
        check_integer("total_iters", total_iters, 1)
        self.factor = factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0:
            return self._scaled(self.factor)
        if self.last_epoch != self.total_iters:
            return self._current_lrs()
        return self._scaled(1.0 / self.factor)

    def closed_form_lr(self) -> list[float]:
        done = self.last_epoch >= self.total_iters
        return [base_lr * (self.factor + done * (1 - self.factor))
                for base_lr in self.base_lrs]


class LinearLR(ChainableLR):
    r"""Move the multiplier linearly from ``start_factor`` to ``end_factor``
    over ``total_iters``.

    .. math:: \eta_t = \eta_0 \left(f_s + (f_e - f_s)\frac{\min(t, T)}{T}\right)

    Step by step this is the ratio of consecutive multipliers,

    .. math:: \frac{f_s + (f_e - f_s)\,t/T}{f_s + (f_e - f_s)(t-1)/T}
              = 1 + \frac{f_e - f_s}{T f_s + (t - 1)(f_e - f_s)},

    which is what :meth:`get_lr` applies (torch's recursion).

    Args:
        optimizer: the optimizer to drive.
        start_factor: :math:`f_s \in (0, 1]` (default 1/3).
        end_factor: :math:`f_e \in [0, 1]` (default 1).
        total_iters: :math:`T`, a positive integer (default 5).
        last_epoch: ``-1`` to start; a step count to resume.

    Differences from torch: ``total_iters < 1`` raises ``ValueError``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer,
                 start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1) -> None:
        if start_factor > 1.0 or start_factor <= 0:
            raise ValueError("Starting multiplicative factor expected to be "
                             "greater than 0 and less or equal to 1.")
        if end_factor > 1.0 or end_factor < 0:
            raise ValueError("Ending multiplicative factor expected to be "
                             "between 0 and 1.")
        check_integer("total_iters", total_iters, 1)
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0:
            return self._scaled(self.start_factor)
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._current_lrs()
        delta = self.end_factor - self.start_factor
        return self._scaled(1.0 + delta / (self.total_iters * self.start_factor
                                           + (self.last_epoch - 1) * delta))

    def closed_form_lr(self) -> list[float]:
        delta = self.end_factor - self.start_factor
        done = min(self.total_iters, self.last_epoch)
        return [base_lr * (self.start_factor + delta * done / self.total_iters)
                for base_lr in self.base_lrs]


class ExponentialLR(ChainableLR):
    r"""Multiply the rate by ``gamma`` every step:
    :math:`\eta_t = \eta_0\,\gamma^t`.

    Args:
        optimizer: the optimizer to drive.
        gamma: :math:`\gamma > 0` (``> 1`` grows the rate, as in a learning-rate
            range test).
        last_epoch: ``-1`` to start; a step count to resume.

    Differences from torch: ``gamma <= 0`` raises ``ValueError``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, gamma: float,
                 last_epoch: int = -1) -> None:
        check_greater("gamma", gamma)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial:  # resuming must not move the rate a step ahead
            return self._current_lrs()
        return self._scaled(self.gamma)

    def closed_form_lr(self) -> list[float]:
        return [base_lr * self.gamma ** self.last_epoch
                for base_lr in self.base_lrs]


class PolynomialLR(ChainableLR):
    r"""Decay to zero as a power of the remaining fraction of ``total_iters``.

    .. math:: \eta_t = \eta_0 \left(1 - \frac{\min(t, T)}{T}\right)^p

    Args:
        optimizer: the optimizer to drive.
        total_iters: :math:`T`, a positive integer (default 5).
        power: :math:`p \ge 0` (default 1, a straight line).
        last_epoch: ``-1`` to start; a step count to resume.

    Differences from torch: ``total_iters < 1`` and ``power < 0`` raise
    ``ValueError``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, total_iters: int = 5,
                 power: float = 1.0, last_epoch: int = -1) -> None:
        check_integer("total_iters", total_iters, 1)
        check_non_negative("power", power)
        self.total_iters = total_iters
        self.power = power
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._current_lrs()
        t, big_t = self.last_epoch, self.total_iters
        return self._scaled(
            ((1.0 - t / big_t) / (1.0 - (t - 1) / big_t)) ** self.power)

    def closed_form_lr(self) -> list[float]:
        remaining = (1.0 - min(self.total_iters, self.last_epoch)
                     / self.total_iters)
        return [base_lr * remaining ** self.power for base_lr in self.base_lrs]
