"""Sweeps: one or two hyperparameters on a fixed grid, the others at the contestant's defaults.

The benchmark's trials (:mod:`.search`) move every hyperparameter at once, so they say which
setting is best but not how the result changes with one of them. A sweep holds the others
still. ``make experiments-sweeps`` runs every sweep below and stores each run as one JSON
line in ``experiments/sweeps.jsonl`` (keyed ``("sweep-<name>", workload, contestant, point,
seed)``, the runner's record format), resumable, with the machine, versions and commit in
``experiments/sweeps.meta.json``::

    python -m optedu.choosing.sweeps [--jobs 2] [--only lr,lr_wd]

* ``lr``: the peak learning rate on half-decades (… 10⁻³, 3.16 × 10⁻³, 10⁻² …) from a tenth
  of the bottom of the contestant's search range to ten times its top, on every base
  workload, seeds 0, 1, 2: a sensitivity curve per optimizer and workload.
* ``lr_wd``, ``lr_wd_independent``: the learning rate against the weight decay on the MLP,
  seeds 0, 1, 2 (Loshchilov and Hutter's comparison of Adam and AdamW over the rate and the
  decay, small): Adam with coupled L2 decay and
  AdamW with torch's decay ``weight_decay`` (the step multiplies the weights by
  ``1 − lr·weight_decay``); then AdamW with the paper's decay, which does not scale with the
  learning rate (torch's ``weight_decay`` set to λ/lr, so that the step shrinks by λ).
"""

from __future__ import annotations

import argparse
import math
import os
import pathlib
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from optedu.instruments import store

from . import contestants, runner, workloads
from .contestants import Contestant, Hyper

__all__ = ["Sweep", "SWEEPS", "half_decades", "lr_points", "jobs", "run", "read", "final",
           "values", "basin", "main"]

#: the stored file, in the data folder (:func:`optedu.instruments.store.folder`)
FILE = "sweeps.jsonl"

#: exponents k of the grid points 10^(k/2), 10⁻⁷ to 10³
_HALF_DECADES = range(-14, 7)


def half_decades(low: float, high: float) -> list[float]:
    """The points ``10^(k/2)`` in ``[low, high]`` (a relative slack of 10⁻⁹ at both ends)."""
    if not 0 < low <= high:
        raise ValueError(f"Invalid range: ({low}, {high})")
    points = [10.0 ** (k / 2) for k in _HALF_DECADES]
    return [p for p in points if low * (1 - 1e-9) <= p <= high * (1 + 1e-9)]


def lr_points(c: Contestant) -> list[Hyper]:
    """The ``lr`` sweep of ``c``: its defaults, the rate on half-decades from a tenth of its
    search range's bottom to ten times its top."""
    low, high = c.space["lr"]
    return [{**c.defaults, "lr": lr} for lr in half_decades(low / 10, high * 10)]


LR_WD_RATES = half_decades(1e-4, 1e-1)
#: the decay of each parameterisation, 11 half-decades each
LR_WD_DECAYS = {"adam": half_decades(1e-5, 1.0),            # coupled L2: g + λθ
                "adamw": half_decades(1e-3, 100.0),         # torch: θ(1 − lr·λ)
                "adamw_independent": half_decades(1e-6, 0.1)}  # paper: θ(1 − λ)


def _grid(c: Contestant, decays: list[float], *, independent: bool = False) -> list[Hyper]:
    # the decay varies fastest: point i is (rate i // len(decays), decay i % len(decays))
    return [{**c.defaults, "lr": lr, "weight_decay": wd / lr if independent else wd}
            for lr in LR_WD_RATES for wd in decays]


@dataclass(frozen=True)
class Sweep:
    """A grid of hyperparameter points per contestant, run on ``workloads`` with ``seeds``."""

    name: str
    contestants: tuple[str, ...]
    workloads: tuple[str, ...]
    seeds: tuple[int, ...]
    points: Callable[[Contestant], list[Hyper]]

    @property
    def ruleset(self) -> str:
        return f"sweep-{self.name}"


_BASE = tuple(w.name for w in workloads.WORKLOADS.values() if w.base is None)
SWEEPS = {s.name: s for s in [
    Sweep("lr", ("sgd_momentum", "nesterov", "adam", "adamw", "nadamw", "lion", "muon", "lamb",
                 "adafactor", "schedule_free_adamw"), _BASE, (0, 1, 2), lr_points),
    Sweep("lr_wd", ("adam", "adamw"), ("digits_mlp",), (0, 1, 2),
          lambda c: _grid(c, LR_WD_DECAYS[c.name])),
    Sweep("lr_wd_independent", ("adamw",), ("digits_mlp",), (0, 1, 2),
          lambda c: _grid(c, LR_WD_DECAYS["adamw_independent"], independent=True)),
]}


def jobs(sweep: Sweep) -> list[runner.Job]:
    """Every run of ``sweep``: contestant, workload, point, seed (trial = the point's index)."""
    out = []
    for name in sweep.contestants:
        points = sweep.points(contestants.get(name))
        for w in sweep.workloads:
            workloads.get(w)
            for i, hyper in enumerate(points):
                for seed in sweep.seeds:
                    out.append(runner.Job(sweep.ruleset, w, name, i, seed, hyper))
    return out


def run(names: Iterable[str], out: pathlib.Path | None = None, *, workers: int = 2
        ) -> dict[str, Any]:
    """Run what ``out`` (default :data:`FILE` in the data folder) lacks of the sweeps
    ``names``; returns the meta data written."""
    from optedu.instruments.reproducible import pin_cpu_kernels
    pin_cpu_kernels()
    out = store.folder() / FILE if out is None else out
    out.parent.mkdir(parents=True, exist_ok=True)
    store.repair(out)
    start, wall = time.monotonic(), time.time()
    stored = {runner.key_of(r) for r in store.load(out)}
    todo = [j for name in names for j in jobs(get(name)) if j.key not in stored]
    counter = [0]
    runner._execute_all(todo, out, workers, (), counter, max(len(todo), 1), start)
    return store.write_meta(out, "sweeps", counter[0], time.monotonic() - start, wall,
                            workers)


def get(name: str) -> Sweep:
    try:
        return SWEEPS[name]
    except KeyError:
        raise ValueError(f"Invalid sweep: {name!r} (known: {sorted(SWEEPS)})") from None


def read(out: pathlib.Path | None = None) -> list[dict[str, Any]]:
    """The stored sweep runs (default: :data:`FILE` in the data folder)."""
    out = store.folder() / FILE if out is None else out
    records = store.load(out)
    if not records:
        raise ValueError(f"Invalid sweeps: no runs stored in {out} (make experiments-sweeps)")
    return records


def final(record: dict[str, Any]) -> float:
    """The validation value at the end of a stored run (infinity if it diverged)."""
    value = record["evals"][-1][1] if record["evals"] else None
    return math.inf if record["diverged"] or value is None else float(value)


def values(records: Iterable[dict[str, Any]], name: str
           ) -> dict[tuple[str, str], dict[int, dict[int, float]]]:
    """``{(workload, contestant): {point: {seed: final value}}}`` of sweep ``name``."""
    ruleset = get(name).ruleset
    out: dict[tuple[str, str], dict[int, dict[int, float]]] = {}
    for r in records:
        if r["ruleset"] == ruleset:
            out.setdefault((r["workload"], r["contestant"]), {}) \
               .setdefault(r["trial"], {})[r["seed"]] = final(r)
    return out


def basin(rates: list[float], medians: list[float], slack: float = 0.25) -> dict[str, Any]:
    """The learning rates around the best one whose (median) value stays within
    ``1 + slack`` times the best: ``best_lr``, ``best``, ``low`` and ``high`` (the ends of
    that unbroken run of grid points), ``width`` (its span in decades, 0 for the best point
    alone) and ``above``: the value one grid point above the end, over the best (infinity
    for a run that diverged; ``None`` if the grid ends there)."""
    if len(rates) != len(medians) or not rates:
        raise ValueError(f"Invalid curve: {len(rates)} rates, {len(medians)} values")
    if slack < 0:
        raise ValueError(f"Invalid slack: {slack}")
    i = min(range(len(rates)), key=lambda k: (medians[k], k))
    best = medians[i]
    if not math.isfinite(best):
        return {"best_lr": None, "best": best, "low": None, "high": None, "width": 0.0,
                "above": None}
    lo = hi = i
    while lo > 0 and medians[lo - 1] <= (1 + slack) * best:
        lo -= 1
    while hi < len(rates) - 1 and medians[hi + 1] <= (1 + slack) * best:
        hi += 1
    above = medians[hi + 1] / best if hi + 1 < len(rates) else None
    return {"best_lr": rates[i], "best": best, "low": rates[lo], "high": rates[hi],
            "width": math.log10(rates[hi] / rates[lo]), "above": above}


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="worker processes (default: one per core)")
    parser.add_argument("--only", default=",".join(SWEEPS),
                        help=f"comma-separated sweeps (default: all of {', '.join(SWEEPS)})")
    parser.add_argument("--out", type=pathlib.Path, default=None,
                        help=f"the stored file (default: {FILE} in the data folder)")
    args = parser.parse_args(None if argv is None else list(argv))
    if args.jobs < 1:
        parser.error(f"Invalid --jobs: {args.jobs}")
    names = args.only.split(",")
    for name in names:
        get(name)
    out = store.folder() / FILE if args.out is None else args.out
    start = time.monotonic()
    meta = run(names, out, workers=args.jobs)
    print(f"sweeps {', '.join(names)}: {meta['runs']} runs stored in {out}, "
          f"{meta['ran_now']} run now in {(time.monotonic() - start) / 60:.1f} min on "
          f"{args.jobs} workers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
