r"""AlgoPerf's scoring: time to target per workload, performance profiles, the area under them.

For contestant :math:`s` and workload :math:`w`, :math:`t_{s,w}` is the number of steps its
tuned runs need to reach the workload's validation target (:math:`\infty` if they never do).
The performance profile (Dolan and Moré, 2002) of :math:`s` is the share of workloads it
solves within a factor :math:`\tau` of the fastest contestant on that workload:

.. math::

    r_{s,w} = \frac{t_{s,w}}{\min_{s'} t_{s',w}}, \qquad
    \rho_s(\tau) = \frac{1}{|W|}\,\bigl|\{w : r_{s,w} \le \tau\}\bigr|,

and the benchmark score is the area under :math:`\rho_s` from 1 to :math:`r_{\max} = 4`,
divided by :math:`r_{\max} - 1`: 1 for a contestant that is fastest everywhere, 0 for one
that never comes within a factor 4 of the fastest.

How :math:`t_{s,w}` comes from runs depends on the ruleset:

* *external tuning*, studies of ``n`` trials: a study's time is its fastest trial's;
  :math:`t_{s,w}` is the median over studies (AlgoPerf since its rules v0.6, 2025: 3 studies
  of 5 trials; its first competition: 5 studies of 5; here also one study of 20);
* *self-tuning*: one setting, its defaults; :math:`t_{s,w}` is the median over seeds.

A held-out variant guards each base workload: a contestant that does not reach the variant's
target has :math:`t_{s,w} = \infty` on the base workload too (the rule of AlgoPerf's first
competition; its rules v0.6 dropped the held-out workloads).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence

__all__ = ["median_time", "external_time", "profile", "score", "ratios", "R_MAX"]

R_MAX = 4.0
INF = math.inf


def median_time(times: Iterable[float | int | None]) -> float:
    """The median of ``times``, a miss (``None``) counting as infinite: more than half
    misses give infinity, as in AlgoPerf (an even count averages the middle two)."""
    values = [INF if t is None else float(t) for t in times]
    if not values:
        raise ValueError("median_time needs at least one time")
    return float(statistics.median(values))


def external_time(trial_times: Sequence[float | int | None], n: int,
                  studies: int = 1) -> float:
    """:math:`t_{s,w}` under external tuning: ``studies`` studies of ``n`` consecutive trials
    each (the first ``n * studies`` of ``trial_times``), each study scored by its fastest
    trial, and the median over the studies (AlgoPerf since v0.6: ``n = 5``, ``studies = 3``;
    its first competition: ``studies = 5``)."""
    if n < 1 or studies < 1 or len(trial_times) < n * studies:
        raise ValueError(f"Invalid studies: {studies} of {n} trials for {len(trial_times)} "
                         f"trials")
    return median_time(min((INF if t is None else float(t)) for t in
                           trial_times[i * n:(i + 1) * n]) for i in range(studies))


def ratios(times: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """:math:`r_{s,w}` from ``times[s][w]``; a workload that no contestant solves gives every
    contestant :math:`\\infty` there."""
    workloads = sorted({w for row in times.values() for w in row})
    best = {w: min(times[s].get(w, INF) for s in times) for w in workloads}
    return {s: {w: (times[s].get(w, INF) / best[w] if math.isfinite(best[w]) else INF)
                for w in workloads}
            for s in times}


def profile(ratios_of_s: Mapping[str, float], taus: Iterable[float]) -> list[float]:
    """:math:`\\rho_s(\\tau)` at each ``tau``: the share of workloads with ratio at most tau."""
    values = list(ratios_of_s.values())
    if not values:
        raise ValueError("profile needs at least one workload")
    return [sum(r <= tau for r in values) / len(values) for tau in taus]


def score(ratios_of_s: Mapping[str, float], r_max: float = R_MAX) -> float:
    """The area under the profile from 1 to ``r_max``, divided by ``r_max - 1``, computed
    exactly: a workload with ratio ``r`` adds ``(r_max - r) / (r_max - 1)`` shares of it
    (``0`` beyond ``r_max``)."""
    if r_max <= 1:
        raise ValueError(f"Invalid r_max: {r_max}")
    values = list(ratios_of_s.values())
    if not values:
        raise ValueError("score needs at least one workload")
    return sum(max(0.0, r_max - max(r, 1.0)) for r in values) / ((r_max - 1) * len(values))
