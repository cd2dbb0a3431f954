"""Record the learning rate (and momentum) a scheduler gives each optimizer step."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Trace", "trace"]


@dataclass(frozen=True)
class Trace:
    """``lr[t, g]`` and ``momentum[t, g]``: the values parameter group ``g`` had during optimizer
    step ``t + 1``. ``momentum`` is ``group["momentum"]``, or :math:`\\beta_1` for groups with
    ``betas``, or NaN for groups with neither."""

    lr: np.ndarray
    momentum: np.ndarray


def _momentum(group: dict[str, Any]) -> float:
    if "betas" in group:
        return float(group["betas"][0])
    return float(group.get("momentum", math.nan))


def trace(scheduler: Any, steps: int, metrics: Sequence[float] | None = None) -> Trace:
    """Run ``steps`` rounds of ``optimizer.step()`` then ``scheduler.step()``, in that order.

    Before each round the groups' rates and momenta are recorded, so row ``t`` is what optimizer
    step ``t + 1`` used. Works for optedu and torch schedulers alike; ``ReduceLROnPlateau`` is
    given ``metrics[t]`` at round ``t``. The optimizer steps for real: with no gradients set
    that is a no-op (it only tells the scheduler the order is right).
    """
    optimizer = scheduler.optimizer
    lrs, momenta = [], []
    for t in range(steps):
        lrs.append([float(group["lr"]) for group in optimizer.param_groups])
        momenta.append([_momentum(group) for group in optimizer.param_groups])
        optimizer.step()
        if metrics is None:
            scheduler.step()
        else:
            scheduler.step(metrics[t])
    return Trace(lr=np.array(lrs, dtype=np.float64), momentum=np.array(momenta, dtype=np.float64))
