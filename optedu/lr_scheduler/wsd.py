r"""Warmup-stable-decay as ``pytorch_optimizer.get_wsd_schedule`` (4.1.0) writes it.

:func:`get_wsd_schedule` takes the reference's arguments and defaults and returns a
:class:`~optedu.lr_scheduler.LambdaLR` whose rates equal the reference's value for value
(tests/lr_scheduler/test_wsd.py). Its multiplier, :func:`wsd_lambda`, keeps the reference's
conventions, which differ from optedu's closed form
:func:`optedu.lr_scheduler.schedules.warmup_stable_decay` in two ways:

* the warmup is :math:`s / w`, so the first step runs at rate 0 (the closed form starts at
  :math:`1/(w+1)`);
* only the cosine decay ends at ``min_lr_ratio``: the linear, 1-sqrt and 1-square decays run
  from 1 down towards 0 and the rate jumps up to ``min_lr_ratio`` once the decay is over
  (with the default ``min_lr_ratio=0`` there is no jump).

With no warmup and ``min_lr_ratio=0`` the two agree for every shape (a test checks it).
Unlike the reference, bad arguments raise ``ValueError`` naming the argument.
"""

from __future__ import annotations

import math
from functools import partial

import torch

from optedu.optim._validation import check_greater, check_integer, check_interval, invalid

from .lambda_lr import LambdaLR

__all__ = ["COOLDOWN_TYPES", "wsd_lambda", "get_wsd_schedule"]

COOLDOWN_TYPES = ("cosine", "1-sqrt", "linear", "1-square")


def wsd_lambda(current_step: int, *, num_warmup_steps: int, num_stable_steps: int,
               num_decay_steps: int, min_lr_ratio: float, num_cycles: float,
               cooldown_type: str) -> float:
    r"""The reference's multiplier at ``current_step`` (0-based).

    .. math::

        f(s) = \begin{cases}
            s / \max(1, w) & s < w \\
            1 & s < w + S \\
            r + (1 - r)\max\left(0, \tfrac12\left(1 + \cos 2\pi c\, p\right)\right)
                & s < w + S + D \text{ (cosine)} \\
            1 - p,\ 1 - \sqrt p,\ 1 - p^2 & s < w + S + D
                \text{ (linear, 1-sqrt, 1-square)} \\
            r & \text{after}
        \end{cases}

    with :math:`p = (s - w - S) / D` (the cosine divides by :math:`\max(1, D)`), :math:`r`
    = ``min_lr_ratio`` and :math:`c` = ``num_cycles`` (½: one half-cosine down).
    """
    warmup, stable, decay = num_warmup_steps, num_stable_steps, num_decay_steps
    if current_step < warmup:
        return float(current_step) / float(max(1, warmup))
    if current_step < warmup + stable:
        return 1.0
    if current_step < warmup + stable + decay:
        if cooldown_type == "cosine":
            progress = float(current_step - warmup - stable) / float(max(1, decay))
            value = max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0
                                                     * progress)))
            return (1.0 - min_lr_ratio) * value + min_lr_ratio
        progress = (current_step - warmup - stable) / decay
        if cooldown_type == "1-sqrt":
            return 1.0 - math.sqrt(progress)
        if cooldown_type == "1-square":
            return 1.0 - math.pow(progress, 2)
        return 1.0 - progress  # linear
    return min_lr_ratio


def get_wsd_schedule(optimizer: torch.optim.Optimizer, num_warmup_steps: int,
                     num_stable_steps: int, num_decay_steps: int, min_lr_ratio: float = 0.0,
                     num_cycles: float = 0.5, cooldown_type: str = "1-sqrt",
                     last_epoch: int = -1) -> LambdaLR:
    """A warmup-stable-decay scheduler with ``pytorch_optimizer.get_wsd_schedule``'s
    arguments, defaults and rates (a :class:`LambdaLR` over :func:`wsd_lambda`).

    Args:
        optimizer: the optimizer to drive (optedu's or torch's).
        num_warmup_steps, num_stable_steps, num_decay_steps: the three phases, in steps
            (integers ``>= 0``).
        min_lr_ratio: the multiplier after the decay, in ``[0, 1]``; the cosine decays to it.
        num_cycles: cosine cycles over the decay (``> 0``; 0.5 is one half-cosine down).
        cooldown_type: ``"cosine"``, ``"1-sqrt"`` (default), ``"linear"`` or ``"1-square"``.
        last_epoch: the last step's index when resuming (-1 to start).
    """
    check_integer("num_warmup_steps", num_warmup_steps, 0)
    check_integer("num_stable_steps", num_stable_steps, 0)
    check_integer("num_decay_steps", num_decay_steps, 0)
    check_interval("min_lr_ratio", min_lr_ratio, 0, 1)
    check_greater("num_cycles", num_cycles)
    if cooldown_type not in COOLDOWN_TYPES:
        raise invalid("cooldown_type", repr(cooldown_type), f"one of {', '.join(COOLDOWN_TYPES)}")
    multiplier = partial(wsd_lambda, num_warmup_steps=num_warmup_steps,
                         num_stable_steps=num_stable_steps, num_decay_steps=num_decay_steps,
                         min_lr_ratio=min_lr_ratio, num_cycles=num_cycles,
                         cooldown_type=cooldown_type)
    return LambdaLR(optimizer, multiplier, last_epoch)
