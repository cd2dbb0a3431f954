"""Validation targets by calibration, in the spirit of AlgoPerf's target-setting runs (Dahl et
al., 2023, section 4.3): tune well-known baselines on the workload, and take the value the best
of them reaches reliably.

For one workload, :func:`calibrate`

1. runs each baseline of :data:`BASELINES` at every learning rate of :func:`lr_grid` (its
   search space's ``lr`` range, log-spaced; its ``defaults`` for the other hyperparameters),
   seed 0, at the full step budget, and keeps the learning rate whose run reached the lowest
   validation value;
2. runs each baseline at that learning rate with the seeds :data:`SEEDS`;
3. takes the baseline whose median over the seeds of the best validation value within the
   first :data:`REACH` of the budget is lowest: that median, rounded up (towards easier) to
   :data:`DIGITS` significant digits, is the target.

AlgoPerf tunes four baselines (200 trials each), reruns the best setting 20 times and takes
the median of the reruns' best validation values as the target (mlcommons/algorithmic-efficiency,
issue 373 and pull request 541); submissions then get 4/3 of the time those runs took. Here the
median is over three reruns (seeds) of the best setting, the same rule with fewer reruns, and
taking it within three quarters of the budget gives the same 4/3 margin.

A target set so is reached by at least two of the three seeds of the baseline that set it (the
median and the better one), so :func:`calibrate` also reports what says whether a target is
trivial or out of reach: the step at which the setter's seeds reach it, how many seeds of each
other baseline reach it, and whether AdamW at its defaults (no tuning) does.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from . import contestants
from .trial import run, steps_to_target
from .workloads import Workload

__all__ = ["BASELINES", "SEEDS", "GRID", "DIGITS", "REACH", "RULE", "lr_grid", "round_up",
           "calibrate"]

#: the baselines that set the targets (AlgoPerf's are NAdamW and Nesterov, among others)
BASELINES = ("adamw", "nadamw", "nesterov")
#: the seeds of the final runs of each baseline at its best learning rate
SEEDS = (0, 1, 2)
#: learning rates per baseline in the sweep
GRID = 8
#: significant digits of a target (rounded up)
DIGITS = 4
#: share of the step budget within which the setter's best value is taken: the tuned
#: baseline reaches the target with a quarter of the budget to spare, so that other runs
#: have room to reach it and steps-to-target measure speed, not only success
REACH = 0.75
#: how every target was set; each workload's ``target_rule``
RULE = (f"median over seeds {', '.join(map(str, SEEDS))} of the best validation value within "
        f"the first {REACH:.0%} of the step budget, of the best of {', '.join(BASELINES)}, each "
        f"at its best of {GRID} log-spaced learning rates (seed 0), rounded up to {DIGITS} "
        f"significant digits (tools/calibrate_targets.py)")


def lr_grid(contestant: contestants.Contestant, n: int = GRID) -> list[float]:
    """``n`` learning rates log-spaced over ``contestant.space["lr"]``, both ends included."""
    low, high = contestant.space["lr"]
    inner = [low * (high / low) ** (k / (n - 1)) for k in range(1, n - 1)]
    return [low, *inner, high]  # the ends exactly as the space states them


def round_up(value: float, digits: int = DIGITS) -> float:
    """``value`` rounded up to ``digits`` significant digits (``0.123421 -> 0.1235``), never
    below ``value``."""
    if not math.isfinite(value) or value == 0:
        return value
    unit = 10.0 ** (math.floor(math.log10(abs(value))) - digits + 1)
    rounded = float(f"{math.ceil(value / unit) * unit:.{digits}g}")
    return rounded if rounded >= value else float(f"{rounded + unit:.{digits}g}")


def _best_within(result: Any, steps: float) -> float:
    """The lowest validation value ``result`` measured at or before ``steps``."""
    values = [v for s, v in result.evals if s <= steps and math.isfinite(v)]
    return min(values) if values else math.inf


def calibrate(workload: Workload, baselines: tuple[str, ...] = BASELINES,
              seeds: tuple[int, ...] = SEEDS, n_lr: int = GRID) -> dict[str, Any]:
    """Calibrate ``workload``'s target (see the module's docstring).

    Returns a dict: ``target`` (rounded up), ``median`` (unrounded), ``setter`` and
    ``setter_lr`` (the best baseline and its learning rate), and per baseline, under
    ``baselines``: ``sweep`` (``[(lr, best value at seed 0), ...]``), ``lr``, ``bests`` (one
    per seed), ``median``, ``reached`` (seeds at or below the target), ``steps`` (the step
    at which each seed reached it, ``None`` if not) and ``seconds`` (median wall time of its
    runs); ``defaults_reach`` (AdamW at its defaults, seed 0, reaches the target); ``runs``
    (how many runs the calibration took).
    """
    results: dict[str, dict[str, Any]] = {}
    for name in baselines:
        contestant = contestants.get(name)
        times: list[float] = []
        runs = {}
        for lr in lr_grid(contestant, n_lr):
            runs[lr] = run(workload, contestant, {**contestant.defaults, "lr": lr}, seeds[0],
                           target=math.inf)
            times.append(runs[lr].seconds)
        best_lr = min(runs, key=lambda lr: runs[lr].best)  # ties: the smaller rate
        finals = [runs[best_lr]]
        for seed in seeds[1:]:
            finals.append(run(workload, contestant, {**contestant.defaults, "lr": best_lr},
                              seed, target=math.inf))
            times.append(finals[-1].seconds)
        bests = [_best_within(r, REACH * workload.steps) for r in finals]
        results[name] = {"sweep": [(lr, r.best) for lr, r in runs.items()], "lr": best_lr,
                         "bests": bests, "median": statistics.median(bests), "runs": finals,
                         "seconds": statistics.median(times), "count": len(times)}
    setter = min(results, key=lambda name: results[name]["median"])
    median = results[setter]["median"]
    target = round_up(median)
    for entry in results.values():
        entry["steps"] = [steps_to_target(r.evals, target) for r in entry.pop("runs")]
        entry["reached"] = sum(step is not None for step in entry["steps"])
    adamw = contestants.get("adamw")
    defaults = run(workload, adamw, dict(adamw.defaults), seeds[0], target=target)
    return {"workload": workload.name, "target": target, "median": median, "setter": setter,
            "setter_lr": results[setter]["lr"], "baselines": results,
            "defaults_reach": defaults.reached is not None,
            "runs": 1 + sum(entry.pop("count") for entry in results.values())}
