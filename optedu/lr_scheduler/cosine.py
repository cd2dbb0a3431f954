r"""Cosine annealing (Loshchilov & Hutter, 2017): once (``CosineAnnealingLR``)
or with restarts."""

from __future__ import annotations

import math

import torch

from optedu.optim._validation import check_greater, check_non_negative
from ._base import ChainableLR, LRScheduler

__all__ = ["CosineAnnealingLR", "CosineAnnealingWarmRestarts"]


class CosineAnnealingLR(ChainableLR):
    r"""Half a cosine from the starting rate down to ``eta_min`` over ``T_max``
    steps.

    The schedule, in closed form (:meth:`closed_form_lr`):

    .. math:: \eta_t = \eta_{\min} + \tfrac12(\eta_0 - \eta_{\min})
              \left(1 + \cos\frac{\pi t}{T}\right)

    torch computes it recursively, and so does :meth:`get_lr`, to give the same
    numbers: the distance to :math:`\eta_{\min}` is multiplied by the ratio of
    consecutive cosine terms,

    .. math:: \eta_t = \eta_{\min} + (\eta_{t-1} - \eta_{\min})
              \frac{1 + \cos(\pi t / T)}{1 + \cos(\pi (t-1) / T)},

    except on the step out of a trough (:math:`t - 1 = T, 3T, \dots`), where
    that ratio is 0/0 and the closed form's increment
    :math:`(\eta_0-\eta_{\min})(1-\cos(\pi/T))/2` is added instead. The
    recursion agrees with the closed form up to rounding while nobody else
    touches ``group["lr"]``; after a change by hand it carries the change
    forward (proportionally, above :math:`\eta_{\min}`). Past ``T_max`` the
    cosine is not clipped: the rate rises again with period :math:`2T`.

    Args:
        optimizer: the optimizer to drive.
        T_max: :math:`T > 0`, steps from the start to the minimum.
        eta_min: :math:`\eta_{\min} \ge 0` (default 0).
        last_epoch: ``-1`` to start; a step count to resume.

    Differences from torch: ``T_max <= 0`` and ``eta_min < 0`` raise
    ``ValueError`` (torch divides by zero at the first step for ``T_max = 0``).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, T_max: int,
                 eta_min: float = 0.0, last_epoch: int = -1) -> None:
        check_greater("T_max", T_max)
        check_non_negative("eta_min", eta_min)
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return self._current_lrs()
        t, big_t, eta_min = self.last_epoch, self.T_max, self.eta_min
        groups = self.optimizer.param_groups
        if (t - 1 - big_t) % (2 * big_t) == 0:
            # leaving a trough: the ratio below would be 0/0
            return [group["lr"]
                    + (base_lr - eta_min) * (1 - math.cos(math.pi / big_t)) / 2
                    for base_lr, group in zip(self.base_lrs, groups)]
        ratio = ((1 + math.cos(math.pi * t / big_t))
                 / (1 + math.cos(math.pi * (t - 1) / big_t)))
        return [ratio * (group["lr"] - eta_min) + eta_min for group in groups]

    def closed_form_lr(self) -> list[float]:
        cosine = 1 + math.cos(math.pi * self.last_epoch / self.T_max)
        return [self.eta_min + (base_lr - self.eta_min) * cosine / 2
                for base_lr in self.base_lrs]


class CosineAnnealingWarmRestarts(LRScheduler):
    r"""Cosine annealing restarted every :math:`T_i` steps, the period growing
    by ``T_mult`` (SGDR).

    .. math:: \eta_t = \eta_{\min} + \tfrac12(\eta_0 - \eta_{\min})
              \left(1 + \cos\frac{\pi T_{cur}}{T_i}\right)

    :math:`T_{cur}` counts steps since the last restart; at a restart it returns
    to 0 (the rate jumps back to :math:`\eta_0`) and
    :math:`T_{i+1} = T_{\text{mult}} T_i`. Closed form: no recursion, so nothing
    drifts.

    ``step(epoch)`` may be given a (fractional) epoch, e.g.
    ``epoch + i / iters_per_epoch`` after batch ``i``, as in torch.

    Args:
        optimizer: the optimizer to drive.
        T_0: steps until the first restart (a positive integer).
        T_mult: factor by which the period grows after a restart (an integer >=
            1, default 1).
        eta_min: :math:`\eta_{\min}` (default 0).
        last_epoch: ``-1`` to start; a step count to resume.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, T_0: int,
                 T_mult: int = 1, eta_min: float = 0.0,
                 last_epoch: int = -1) -> None:
        if T_0 <= 0 or not isinstance(T_0, int):
            raise ValueError(f"Expected positive integer T_0, but got {T_0}")
        if T_mult < 1 or not isinstance(T_mult, int):
            raise ValueError(f"Expected integer T_mult >= 1, but got {T_mult}")
        if not isinstance(eta_min, (float, int)):
            raise ValueError(f"Expected float or int eta_min, but got "
                             f"{eta_min} of type {type(eta_min)}")
        self.T_0 = T_0
        self.T_i = T_0
        self.T_mult = T_mult
        self.eta_min = eta_min
        self.T_cur: float = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        cosine = 1 + math.cos(math.pi * self.T_cur / self.T_i)
        return [self.eta_min + (base_lr - self.eta_min) * cosine / 2
                for base_lr in self.base_lrs]

    def step(self, epoch: float | None = None) -> None:
        """Advance one step, or jump to ``epoch`` (which may be fractional)."""
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:  # restart
                self.T_cur = self.T_cur % self.T_i
                self.T_i = self.T_i * self.T_mult
        else:
            self._seek(epoch)
        self.last_epoch = math.floor(epoch)
        self._write(self.get_lr())

    def _seek(self, epoch: float) -> None:
        """Set ``T_cur`` and ``T_i`` for an arbitrary epoch, by summing the
        geometric periods."""
        if epoch < 0:
            raise ValueError(f"Expected non-negative epoch, but got {epoch}")
        if epoch < self.T_0:
            self.T_i, self.T_cur = self.T_0, epoch
        elif self.T_mult == 1:
            self.T_cur = epoch % self.T_0
        else:
            # restarts so far: largest n with
            # T_0 (T_mult^n - 1) / (T_mult - 1) <= epoch
            n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1,
                             self.T_mult))
            self.T_cur = (epoch
                          - self.T_0 * (self.T_mult**n - 1) / (self.T_mult - 1))
            self.T_i = self.T_0 * self.T_mult**n
