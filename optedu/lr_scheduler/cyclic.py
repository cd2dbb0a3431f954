r"""Schedules that cycle the rate and, inversely, the momentum: CLR (Smith, 2017) and 1cycle (2019).

Both write the momentum of each group too: ``group["momentum"]`` for optimizers that have one
(SGD, RMSprop), or :math:`\beta_1`, the first entry of ``group["betas"]`` (Adam, AdamW). When the
rate is high the momentum is low, and the other way round.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import torch

from optedu.optim._validation import check_greater, check_non_negative, check_optimizer, invalid
from ._base import LRScheduler, per_group

__all__ = ["CyclicLR", "OneCycleLR"]


def _uses_betas(optimizer: torch.optim.Optimizer) -> bool:
    """Whether momentum is :math:`\\beta_1` (``betas``) rather than ``momentum``."""
    if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
        raise ValueError("optimizer must support momentum or beta1 with `cycle_momentum` option enabled")
    return "betas" in optimizer.defaults


def _set_momentum(group: dict[str, Any], momentum: float, use_beta1: bool) -> None:
    if use_beta1:
        group["betas"] = (momentum, *group["betas"][1:])
    else:
        group["momentum"] = momentum


def _init_momentum(optimizer: torch.optim.Optimizer, base_momentum: Any, max_momentum: Any,
                   last_epoch: int) -> tuple[bool, list[float], list[float]]:
    """Check the optimizer, spread the momentum bounds over groups, start at ``max_momentum``."""
    use_beta1 = _uses_betas(optimizer)
    base_momentums = per_group("base_momentum", optimizer, base_momentum)
    max_momentums = per_group("max_momentum", optimizer, max_momentum)
    if last_epoch == -1:
        for high, low, group in zip(max_momentums, base_momentums, optimizer.param_groups):
            _set_momentum(group, high, use_beta1)
            group["max_momentum"] = high
            group["base_momentum"] = low
    return use_beta1, base_momentums, max_momentums


class CyclicLR(LRScheduler):
    r"""Cyclical learning rates (Smith, 2017): triangles between ``base_lr`` and ``max_lr``.

    With cycle length :math:`L = s_{up} + s_{down}`, the step :math:`t` lies in cycle
    :math:`c = \lfloor 1 + t/L \rfloor` at position :math:`x = 1 + t/L - c \in [0, 1)`. The
    triangle's height is :math:`h = x / r` on the way up (:math:`x \le r = s_{up}/L`) and
    :math:`(x - 1)/(r - 1)` on the way down, and

    .. math:: \eta_t = \eta_{base} + (\eta_{max} - \eta_{base})\, h\, \sigma, \qquad
              \mu_t = \mu_{max} - (\mu_{max} - \mu_{base})\, h\, \sigma,

    where the amplitude scale :math:`\sigma` is 1 (``"triangular"``), :math:`2^{1-c}`
    (``"triangular2"``: halved every cycle), :math:`\gamma^t` (``"exp_range"``), or
    ``scale_fn`` of :math:`c` or :math:`t` (``scale_mode``).

    Args:
        optimizer: the optimizer to drive.
        base_lr, max_lr: the rate's bounds, one value or one per group.
        step_size_up: steps from bottom to top (a positive integer, default 2000).
        step_size_down: steps from top to bottom (default: ``step_size_up``).
        mode: ``"triangular"``, ``"triangular2"`` or ``"exp_range"``; ignored if ``scale_fn``.
        gamma: :math:`\gamma > 0` of ``"exp_range"`` (default 1).
        scale_fn: a custom :math:`\sigma` with values in :math:`[0, 1]`.
        scale_mode: ``"cycle"`` or ``"iterations"``: what ``scale_fn`` is a function of.
        cycle_momentum: also cycle momentum (or :math:`\beta_1`) (default ``True``).
        base_momentum, max_momentum: momentum's bounds (defaults 0.8, 0.9).
        last_epoch: ``-1`` to start; a step count to resume.

    Differences from torch: ``step_size_up < 1``, ``step_size_down < 0``, ``gamma <= 0`` and an
    unknown ``scale_mode`` raise ``ValueError``.
    """

    _functions = ("_scale_fn_custom",)

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        base_lr: float | list[float],
        max_lr: float | list[float],
        step_size_up: int = 2000,
        step_size_down: int | None = None,
        mode: Literal["triangular", "triangular2", "exp_range"] = "triangular",
        gamma: float = 1.0,
        scale_fn: Callable[[float], float] | None = None,
        scale_mode: Literal["cycle", "iterations"] = "cycle",
        cycle_momentum: bool = True,
        base_momentum: float | list[float] = 0.8,
        max_momentum: float | list[float] = 0.9,
        last_epoch: int = -1,
    ) -> None:
        self.optimizer = check_optimizer(optimizer)
        base_lrs = per_group("base_lr", optimizer, base_lr)
        if last_epoch == -1:
            for lr, group in zip(base_lrs, optimizer.param_groups):
                group["lr"] = lr
        self.max_lrs = per_group("max_lr", optimizer, max_lr)
        check_greater("step_size_up", step_size_up)
        if step_size_down is not None:
            check_non_negative("step_size_down", step_size_down)
        up = float(step_size_up)
        down = float(step_size_down) if step_size_down is not None else up
        self.total_size = up + down
        self.step_ratio = up / self.total_size
        if mode not in ("triangular", "triangular2", "exp_range") and scale_fn is None:
            raise ValueError("mode is invalid and scale_fn is None")
        if scale_mode not in ("cycle", "iterations"):
            raise invalid("scale_mode", repr(scale_mode), "'cycle' or 'iterations'")
        check_greater("gamma", gamma)
        self.mode = mode
        self.gamma = gamma
        self._scale_fn_custom = scale_fn
        # the built-in modes fix what their scale is a function of
        self.scale_mode = scale_mode if scale_fn is not None else (
            "iterations" if mode == "exp_range" else "cycle")
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.use_beta1, self.base_momentums, self.max_momentums = _init_momentum(
                optimizer, base_momentum, max_momentum, last_epoch)
        super().__init__(optimizer, last_epoch)
        self.base_lrs = base_lrs

    def scale_fn(self, x: float) -> float:
        """The amplitude scale :math:`\\sigma` at cycle or step ``x``."""
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 1 / (2.0 ** (x - 1))
        return self.gamma**x  # exp_range

    def get_lr(self) -> list[float]:
        cycle = math.floor(1 + self.last_epoch / self.total_size)
        x = 1.0 + self.last_epoch / self.total_size - cycle       # position in the cycle, [0, 1)
        if x <= self.step_ratio:
            height = x / self.step_ratio                           # going up
        else:
            height = (x - 1) / (self.step_ratio - 1)               # coming down
        scale = self.scale_fn(cycle if self.scale_mode == "cycle" else self.last_epoch)
        lrs = [base_lr + (max_lr - base_lr) * height * scale
               for base_lr, max_lr in zip(self.base_lrs, self.max_lrs)]
        if self.cycle_momentum:
            for group, low, high in zip(self.optimizer.param_groups, self.base_momentums,
                                        self.max_momentums):
                _set_momentum(group, high - (high - low) * height * scale, self.use_beta1)
        return lrs


class OneCycleLR(LRScheduler):
    r"""The 1cycle policy (Smith & Topin, 2019): one rise to ``max_lr``, one long fall far below.

    The rate starts at :math:`\eta_{max}/d` (``div_factor`` :math:`d`), anneals up to
    :math:`\eta_{max}` over the first ``pct_start`` of ``total_steps``, then down to
    :math:`\eta_{max}/(d\, d_f)` (``final_div_factor`` :math:`d_f`) at the last step.
    Momentum moves the opposite way, between ``max_momentum`` and ``base_momentum``.
    With ``three_phase=True`` the fall first mirrors the rise back to :math:`\eta_{max}/d` and a
    third phase anneals to the minimum (the paper's shape; two phases are fastai's default).

    Within a phase running from step :math:`a` to :math:`b` between values :math:`u` and
    :math:`v`, with :math:`p = (t - a)/(b - a)`:

    .. math:: \text{cos:}\ v + \tfrac12 (u - v)(1 + \cos \pi p) \qquad \text{linear:}\ u + (v-u)\,p

    Each phase ends one step before its nominal length (``pct_start * total_steps - 1``), as in
    torch. Stepping more than ``total_steps`` times raises ``ValueError``.

    Args:
        optimizer: the optimizer to drive.
        max_lr: peak rate, one value or one per group.
        total_steps: length of the cycle; or give ``epochs`` and ``steps_per_epoch``.
        pct_start: fraction of the cycle spent rising (a float in [0, 1], default 0.3).
        anneal_strategy: ``"cos"`` (default) or ``"linear"``.
        cycle_momentum: also cycle momentum (or :math:`\beta_1`) (default ``True``).
        base_momentum, max_momentum: momentum's bounds (defaults 0.85, 0.95).
        div_factor: :math:`d > 0` (default 25); final_div_factor: :math:`d_f > 0` (default 1e4).
        three_phase: the paper's three phases (default ``False``).
        last_epoch: ``-1`` to start; a step count to resume.

    Differences from torch: ``div_factor``/``final_div_factor <= 0`` raise ``ValueError``, and so
    does reaching a phase of zero length (torch divides by zero, e.g. for
    ``pct_start * total_steps == 1``).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        max_lr: float | list[float],
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: Literal["cos", "linear"] = "cos",
        cycle_momentum: bool = True,
        base_momentum: float | list[float] = 0.85,
        max_momentum: float | list[float] = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ) -> None:
        self.optimizer = check_optimizer(optimizer)
        self.total_steps = self._total_steps(total_steps, epochs, steps_per_epoch)
        if pct_start < 0 or pct_start > 1 or not isinstance(pct_start, float):
            raise ValueError(f"Expected float between 0 and 1 pct_start, but got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError("anneal_strategy must be one of 'cos' or 'linear', "
                             f"instead got {anneal_strategy}")
        check_greater("div_factor", div_factor)
        check_greater("final_div_factor", final_div_factor)
        rise_end = float(pct_start * self.total_steps) - 1
        last = self.total_steps - 1
        # each phase: (last step, rate from → to, momentum from → to), keys into the group
        if three_phase:
            phases = [(rise_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                      (float(2 * pct_start * self.total_steps) - 2,
                       "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                      (last, "initial_lr", "min_lr", "max_momentum", "max_momentum")]
        else:
            phases = [(rise_end, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                      (last, "max_lr", "min_lr", "base_momentum", "max_momentum")]
        keys = ("end_step", "start_lr", "end_lr", "start_momentum", "end_momentum")
        self._schedule_phases: list[dict[str, Any]] = [dict(zip(keys, phase)) for phase in phases]
        self._anneal_func_type = anneal_strategy
        if last_epoch == -1:
            for max_lr_i, group in zip(per_group("max_lr", optimizer, max_lr),
                                       optimizer.param_groups):
                group["initial_lr"] = max_lr_i / div_factor
                group["max_lr"] = max_lr_i
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.use_beta1, _, _ = _init_momentum(optimizer, base_momentum, max_momentum,
                                                  last_epoch)
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _total_steps(total_steps: int | None, epochs: int | None,
                     steps_per_epoch: int | None) -> int:
        if total_steps is not None:
            if total_steps <= 0 or not isinstance(total_steps, int):
                raise ValueError(f"Expected positive integer total_steps, but got {total_steps}")
            return total_steps
        if epochs is not None and steps_per_epoch is not None:
            if not isinstance(epochs, int) or epochs <= 0:
                raise ValueError(f"Expected positive integer epochs, but got {epochs}")
            if not isinstance(steps_per_epoch, int) or steps_per_epoch <= 0:
                raise ValueError(
                    f"Expected positive integer steps_per_epoch, but got {steps_per_epoch}")
            return epochs * steps_per_epoch
        raise ValueError("You must define either total_steps OR (epochs AND steps_per_epoch)")

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self._anneal_func_type == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self) -> list[float]:
        t = self.last_epoch
        if t > self.total_steps:
            raise ValueError(
                f"Tried to step {t} times. The specified number of total steps is {self.total_steps}")
        start_step = 0.0
        for i, phase in enumerate(self._schedule_phases):  # find the phase that holds step t
            if t <= phase["end_step"] or i == len(self._schedule_phases) - 1:
                break
            start_step = phase["end_step"]
        if phase["end_step"] == start_step:
            raise ValueError(f"OneCycleLR phase {i} has zero length at step {t}: choose pct_start "
                             f"and total_steps ({self.total_steps}) so that every phase is at "
                             "least one step long")
        pct = (t - start_step) / (phase["end_step"] - start_step)
        lrs = []
        for group in self.optimizer.param_groups:
            lrs.append(self._anneal(group[phase["start_lr"]], group[phase["end_lr"]], pct))
            if self.cycle_momentum:
                momentum = self._anneal(group[phase["start_momentum"]],
                                        group[phase["end_momentum"]], pct)
                _set_momentum(group, momentum, self.use_beta1)
        return lrs
