r"""Cut the learning rate when a monitored metric stops improving (``ReduceLROnPlateau``)."""

from __future__ import annotations

import math
from typing import Literal, SupportsFloat

import torch

from optedu.optim._validation import check_non_negative, check_optimizer
from ._base import LRScheduler

__all__ = ["ReduceLROnPlateau"]


class ReduceLROnPlateau(LRScheduler):
    r"""Multiply the rate by ``factor`` after ``patience`` steps without improvement.

    ``step(metric)`` is called once per evaluation. A value *improves* on the best so far
    :math:`b` if it beats it by more than the threshold :math:`\tau`:

    ===========  ========================  ========================
    mode         ``threshold_mode="rel"``  ``threshold_mode="abs"``
    ===========  ========================  ========================
    ``"min"``    :math:`a < b(1 - \tau)`   :math:`a < b - \tau`
    ``"max"``    :math:`a > b(1 + \tau)`   :math:`a > b + \tau`
    ===========  ========================  ========================

    Each non-improving step adds one to ``num_bad_epochs``; once it exceeds ``patience`` every
    group's rate becomes :math:`\max(\eta \cdot \text{factor}, \eta_{\min})` -- unless that
    changes it by ``eps`` or less -- and the count restarts. After a cut, ``cooldown`` steps
    pass during which bad steps are not counted.

    Args:
        optimizer: the optimizer to drive.
        mode: ``"min"`` (default; e.g. a loss) or ``"max"`` (e.g. an accuracy).
        factor: multiplier of a cut, in ``[0, 1)`` (default 0.1).
        patience: bad steps tolerated before a cut (default 10).
        threshold: :math:`\tau \ge 0` (default 1e-4).
        threshold_mode: ``"rel"`` (default) or ``"abs"``.
        cooldown: steps without counting after a cut (default 0).
        min_lr: :math:`\eta_{\min}`, one value or one per group (default 0).
        eps: smallest change of rate worth making (default 1e-8).

    Unlike the other schedulers, nothing happens at construction (``last_epoch`` starts at 0).

    Differences from torch: ``factor < 0``, negative ``patience``, ``cooldown``, ``threshold`` or
    ``eps`` raise ``ValueError``; there is no deprecated ``epoch`` argument to ``step``.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        mode: Literal["min", "max"] = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: Literal["rel", "abs"] = "rel",
        cooldown: int = 0,
        min_lr: list[float] | float = 0,
        eps: float = 1e-8,
    ) -> None:
        if factor >= 1.0:
            raise ValueError("Factor should be < 1.0.")
        check_non_negative("factor", factor)
        self.factor = factor
        self.optimizer = check_optimizer(optimizer)
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != len(optimizer.param_groups):
                raise ValueError(f"expected {len(optimizer.param_groups)} min_lrs, got {len(min_lr)}")
            self.default_min_lr = None
            self.min_lrs = list(min_lr)
        else:
            self.default_min_lr = min_lr
            self.min_lrs = [min_lr] * len(optimizer.param_groups)
        for name, value in (("patience", patience), ("cooldown", cooldown),
                            ("threshold", threshold), ("eps", eps)):
            check_non_negative(name, value)
        if mode not in ("min", "max"):
            raise ValueError(f"mode {mode} is unknown!")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold mode {threshold_mode} is unknown!")
        self.patience = patience
        self.cooldown = cooldown
        self.eps = eps
        self.last_epoch = 0
        self._last_lr = self._current_lrs()
        self.mode_worse = math.inf if mode == "min" else -math.inf  # anything improves on it
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode
        self._reset()

    def _reset(self) -> None:
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def is_better(self, a: float, best: float) -> bool:
        """Whether ``a`` improves on ``best`` by more than the threshold."""
        if self.mode == "min":
            return a < best * (1.0 - self.threshold) if self.threshold_mode == "rel" \
                else a < best - self.threshold
        return a > best * (self.threshold + 1.0) if self.threshold_mode == "rel" \
            else a > best + self.threshold

    def step(self, metrics: SupportsFloat) -> None:  # type: ignore[override]
        """Record one evaluation of the monitored metric; cut the rate if it has stalled."""
        current = float(metrics)
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad steps in cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = self._current_lrs()

    def _reduce_lr(self) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):  # a group was added since construction
            if self.default_min_lr is None:
                raise RuntimeError(f"The number of param groups in the `optimizer` ({len(groups)}) "
                                   f"differs from when `ReduceLROnPlateau` was initialized "
                                   f"({len(self.min_lrs)}); set `min_lrs` to match.")
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, min_lr)
            if old_lr - new_lr > self.eps:
                group["lr"] = new_lr
