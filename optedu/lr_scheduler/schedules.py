r"""Closed-form learning-rate schedules: pure functions of the step that return
a multiplier.

Each function maps the 0-based index ``step`` of an optimizer step to a factor
in :math:`[0, 1]` by which the peak learning rate is multiplied. Keyword-only
hyperparameters make them ``functools.partial``-friendly, so one line turns a
schedule into a ``LambdaLR``:

>>> from functools import partial
>>> import torch
>>> w = torch.zeros(1, requires_grad=True)
>>> opt = torch.optim.AdamW([w], lr=1e-3)
>>> sched = torch.optim.lr_scheduler.LambdaLR(
...     opt, partial(linear_warmup_cosine, warmup_steps=4, total_steps=20))
>>> opt.param_groups[0]["lr"]  # the first step uses 1/5 of the peak, not 0
0.0002

Conventions shared by every schedule:

* ``step`` counts scheduler steps from 0, which is ``LambdaLR``'s
  ``last_epoch``: the optimizer step number ``step + 1`` runs with
  ``peak * f(step)``.
* Warmup is the line through :math:`(-1, 0)` and :math:`(w, 1)`:
  :math:`f(s) = (s + 1) / (w + 1)` for :math:`s < w`. The first step gets
  :math:`1/(w+1)` of the peak -- never 0, which would waste the step -- and step
  :math:`w` is the first at the peak.
* After the schedule ends the multiplier stays at its final value (it does not
  rise again, as a cosine evaluated past its period would).

Bad hyperparameters raise ``ValueError`` naming the argument and its value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from optedu.optim._validation import check_integer, check_interval, check_non_negative, invalid

__all__ = [
    "linear_warmup_cosine",
    "linear_warmup_linear_decay",
    "inverse_sqrt",
    "warmup_stable_decay",
    "plot_schedules",
]


def _warmup(step: float, warmup_steps: int) -> float:
    """The linear ramp :math:`(s+1)/(w+1)` shared by every schedule (1 at
    ``step == w``)."""
    return (step + 1) / (warmup_steps + 1)


def linear_warmup_cosine(step: float, *, warmup_steps: int, total_steps: int,
                         min_ratio: float = 0.0) -> float:
    r"""Linear warmup, then half a cosine from 1 down to ``min_ratio`` at
    ``total_steps``.

    .. math::

        &f(s) = \\
        &\begin{cases}
            \dfrac{s+1}{w+1} & s < w \\[4pt]
            r + \tfrac12 (1 - r) & \\
            \quad \left(1 + \cos\left(\pi \dfrac{s - w}{T - w}\right)\right)
                & w \le s \le T \\[4pt]
            r & s > T
        \end{cases}

    with :math:`w` = ``warmup_steps``, :math:`T` = ``total_steps``, :math:`r` =
    ``min_ratio``. The cosine part is SGDR's annealing (Loshchilov & Hutter,
    2017) without restarts; with a warmup in front it is the usual transformer
    schedule.

    Args:
        step: scheduler step, 0-based.
        warmup_steps: steps before the peak (0 for none).
        total_steps: the step at which the multiplier reaches ``min_ratio``;
            ``> warmup_steps``.
        min_ratio: final multiplier, in ``[0, 1]`` (default 0).
    """
    check_non_negative("step", step)
    check_integer("warmup_steps", warmup_steps, 0)
    check_integer("total_steps", total_steps, warmup_steps + 1)
    check_interval("min_ratio", min_ratio, 0, 1)
    if step < warmup_steps:
        return _warmup(step, warmup_steps)
    progress = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
    return (min_ratio                                 # r + ½(1 − r)(1 + cos πp)
            + 0.5 * (1.0 - min_ratio) * (1.0 + math.cos(math.pi * progress)))


def linear_warmup_linear_decay(step: float, *, warmup_steps: int,
                               total_steps: int) -> float:
    r"""Linear warmup, then a straight line from 1 down to 0 at ``total_steps``
    (BERT's recipe).

    .. math::

        f(s) = \begin{cases}
            \dfrac{s+1}{w+1} & s < w \\[4pt]
            \max\left(0,\ \dfrac{T - s}{T - w}\right) & s \ge w
        \end{cases}

    Devlin et al. (2019) pre-train BERT with 10,000 warmup steps out of
    1,000,000 and this linear decay to zero.

    Args:
        step: scheduler step, 0-based.
        warmup_steps: steps before the peak (0 for none).
        total_steps: the step at which the multiplier reaches 0;
            ``> warmup_steps``.
    """
    check_non_negative("step", step)
    check_integer("warmup_steps", warmup_steps, 0)
    check_integer("total_steps", total_steps, warmup_steps + 1)
    if step < warmup_steps:
        return _warmup(step, warmup_steps)
    return max(0.0, (total_steps - step) / (total_steps - warmup_steps))


def inverse_sqrt(step: float, *, warmup_steps: int) -> float:
    r"""Linear warmup, then decay as :math:`1/\sqrt{\text{step}}` (the
    Transformer's schedule).

    .. math::

        f(s) = \min\left(\frac{s+1}{w+1},\ \sqrt{\frac{w+1}{s+1}}\right)

    Vaswani et al. (2017) write :math:`d^{-1/2}\min(n^{-1/2},\ n\,W^{-3/2})`
    with the step counted from 1; divided by its peak :math:`(d W)^{-1/2}` that
    is this function with :math:`n = s + 1` and :math:`W = w + 1`. The peak (1)
    is at ``step == warmup_steps`` as in the other schedules here; the paper
    used :math:`W = 4000`. There is no end: the decay goes on as long as
    training does.

    Args:
        step: scheduler step, 0-based.
        warmup_steps: steps before the peak (0 for none).
    """
    check_non_negative("step", step)
    check_integer("warmup_steps", warmup_steps, 0)
    n, big_w = step + 1, warmup_steps + 1
    return min(n / big_w, math.sqrt(big_w / n))


WSD_DECAYS = ("linear", "cosine", "1-sqrt", "1-square")


def decay_shape(progress: float, decay: str) -> float:
    r"""How far a WSD decay has come down, in :math:`[0, 1]`, at ``progress`` :math:`p` in
    :math:`[0, 1]`: :math:`p` (linear), :math:`\tfrac12(1 - \cos \pi p)` (cosine),
    :math:`\sqrt p` (1-sqrt, Hägele et al. 2024) or :math:`p^2` (1-square)."""
    if decay not in WSD_DECAYS:
        raise invalid("decay", repr(decay), f"one of {', '.join(WSD_DECAYS)}")
    if decay == "linear":
        return progress
    if decay == "cosine":
        return 0.5 * (1.0 - math.cos(math.pi * progress))
    if decay == "1-sqrt":
        return math.sqrt(progress)
    return progress * progress


def warmup_stable_decay(step: float, *, warmup_steps: int, stable_steps: int,
                        decay_steps: int, min_ratio: float = 0.0,
                        decay: str = "linear") -> float:
    r"""Warmup, a long constant stretch at the peak, then a short decay (WSD).

    .. math::

        &f(s) = \\
        &\begin{cases}
            \dfrac{s+1}{w+1} & s < w \\[4pt]
            1 & w \le s < w + S \\[4pt]
            1 - (1 - r)\,\delta\!\biggl(\min\biggl(1, & \\
            \qquad \dfrac{s - w - S}{D}\biggr)\biggr) & s \ge w + S
        \end{cases}

    with :math:`S` = ``stable_steps``, :math:`D` = ``decay_steps``, :math:`r` =
    ``min_ratio`` and :math:`\delta` the decay's shape (:func:`decay_shape`: linear, cosine,
    1-sqrt or 1-square), which runs from 0 to 1. Hu et al. (2024, MiniCPM) introduce the
    shape: because the stable phase does not depend on the training length, one run at the
    peak can be branched into short decays at any point. They leave the decay function free
    (their runs use an exponential); Hägele et al. (2024) find 1-sqrt the best of these.
    Every shape ends exactly at ``min_ratio`` and stays there.

    Args:
        step: scheduler step, 0-based.
        warmup_steps: steps before the peak (0 for none).
        stable_steps: steps held at the peak after warmup (``>= 0``).
        decay_steps: steps from the peak down to ``min_ratio`` (``>= 1``).
        min_ratio: final multiplier, in ``[0, 1]`` (default 0).
        decay: the decay's shape, one of ``WSD_DECAYS`` (default ``"linear"``).
    """
    check_non_negative("step", step)
    check_integer("warmup_steps", warmup_steps, 0)
    check_integer("stable_steps", stable_steps, 0)
    check_integer("decay_steps", decay_steps, 1)
    check_interval("min_ratio", min_ratio, 0, 1)
    if decay not in WSD_DECAYS:
        raise invalid("decay", repr(decay), f"one of {', '.join(WSD_DECAYS)}")
    if step < warmup_steps:
        return _warmup(step, warmup_steps)
    decay_start = warmup_steps + stable_steps
    if step < decay_start:
        return 1.0
    progress = min(1.0, (step - decay_start) / decay_steps)
    return 1.0 - (1.0 - min_ratio) * decay_shape(progress, decay)


def plot_schedules(schedules: Mapping[str, Sequence[float]],
                   ax: Any = None) -> Any:
    """Plot learning rates (or multipliers) against the step, one line per
    label.

    Args:
        schedules: ``{label: values}``, the value at step ``i`` being
            ``values[i]``.
        ax: a matplotlib ``Axes`` to draw into; a new figure is made when
            ``None``.

    Returns:
        The ``Axes``.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    for label, values in schedules.items():
        ax.plot(range(len(values)), list(values), label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    if len(schedules) > 1:
        ax.legend()
    return ax
