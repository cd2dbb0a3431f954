r"""The tutorial's warmup-cosine multiplier, as written: a comparison variant.

The tutorial builds the usual transformer schedule as a ``LambdaLR`` whose
multiplier is :math:`t / w` during the warmup and an unclipped cosine after
it. This is a *variant*, not one of optedu's schedules:
:func:`optedu.lr_scheduler.schedules.linear_warmup_cosine` starts its ramp at
:math:`1/(w+1)` and holds its final value past ``total_steps``. The schedules
chapter runs the two side by side.
"""

from __future__ import annotations

import math


def warmup_cosine_from_zero(step: int, warmup_steps: int,
                            total_steps: int) -> float:
    r"""VARIANT, not optedu's schedule: the tutorial's multiplier, transcribed
    as written.

    .. math::

        f(t) = \begin{cases}
            t / w & t < w \\
            \tfrac12 \left(1 + \cos\left(\pi \dfrac{t - w}{T - w}\right)\right)
                & t \ge w
        \end{cases}

    with :math:`w` = ``warmup_steps`` and :math:`T` = ``total_steps``. Two
    differences from :func:`optedu.lr_scheduler.schedules.linear_warmup_cosine`:
    :math:`f(0) = 0`, so the first optimizer step runs at rate 0; and nothing
    stops the cosine at :math:`T`, so it rises again past it
    (:math:`f(T + k) = f(T - k)`). No argument checks, as in the source.
    """
    if step < warmup_steps:
        return step / warmup_steps                       # 0 at t = 0
    progress = ((step - warmup_steps)
                / (total_steps - warmup_steps))          # not clipped at 1
    return 0.5 * (1 + math.cos(math.pi * progress))
