"""Evidence for the chapter "Finding the learning rate in practice": the range test on every
base workload, and 1cycle and ReduceLROnPlateau against warmup with cosine.

``make experiments-lr`` runs both and stores each run as one JSON line in
``experiments/lr.jsonl`` as soon as it finishes, keyed ``(kind, workload, contestant,
schedule, point, seed)``, resumable, with the machine, versions and commit in
``experiments/lr.meta.json``. One worker process, one thread, torch's CPU kernels capped at
AVX2 (:mod:`optedu.instruments.reproducible`), so that a stored run can be re-run exactly::

    python -m optedu.experiments lr

* ``range``: :func:`optedu.training.lr_range_test.lr_range_test` with fastai's settings
  (rates 10⁻⁷ to 10, 100 steps, smoothing 0.98, stop at 4 times the minimum) for each of
  :data:`RANGE_CONTESTANTS` at its defaults (every group's rate 1, so the ramp's multiplier
  is the rate), on every base workload, seeds :data:`RANGE_SEEDS`.
* ``schedule``: each of :data:`SCHEDULE_CONTESTANTS` under each of :data:`SCHEDULES` on every
  base workload, its other hyperparameters at their defaults; the peak rate on
  :data:`SWEEP` half-decades around the full grid's tuned rate, seed 0; the best point (the
  benchmark's rule, :func:`optedu.choosing.runner.best_trial`) again with seeds :data:`FINAL_SEEDS` (the grid's
  protocol: seed 0 chooses, seeds 1 and 2 are the honest sample).

The schedules (``Smith & Topin, 2019`` for 1cycle; torch's ReduceLROnPlateau):

* ``cosine``: the benchmark's linear warmup over 5 % of the steps, then a cosine to zero
  (:func:`optedu.choosing.contestants.schedule_for`), what :func:`optedu.choosing.trial.run` runs;
* ``onecycle``: :class:`optedu.lr_scheduler.OneCycleLR` at torch's defaults (30 % rising,
  cosine annealing, from peak/25 to peak/(25·10⁴)), momentum (or β₁) cycled 0.95 → 0.85 → 0.95;
* ``onecycle_fixed``: the same without cycling momentum (it stays at the default);
* ``plateau``: the same warmup, then the peak rate, cut by
  :class:`optedu.lr_scheduler.ReduceLROnPlateau` on the validation metric at each evaluation
  after the warmup, with :data:`PLATEAU`'s factor and patience (chosen for budgets of 15 to
  50 evaluations, 15 to 48 after the warmup: torch's factor 0.1 and patience 10 cut only
  after eleven flat evaluations, one to four cuts at most; a halving after three allows four
  to fifteen). The choice is reasoned, not measured: torch's defaults were not run.
"""

from __future__ import annotations

import functools
import math
import pathlib
import statistics
import time
from collections.abc import Iterable, Sequence
from typing import Any, TypedDict

import torch

from optedu.choosing import contestants, trial, workloads
from optedu.choosing.contestants import WARMUP_FRACTION, Hyper, Training
from optedu.choosing.runner import best_trial, reached
from optedu.choosing.trial import Run
from optedu.instruments import store
from optedu.instruments.reproducible import one_thread
from optedu.lr_scheduler import OneCycleLR, ReduceLROnPlateau
from optedu.training.lr_range_test import lr_range_test

from .grid import Grid, Job, Key

__all__ = ["RANGE_CONTESTANTS", "RANGE_SEEDS", "SCHEDULE_CONTESTANTS", "SCHEDULES", "SWEEP",
           "FINAL_SEEDS", "PLATEAU", "GRID", "KEY", "jobs", "range_jobs", "schedule_jobs",
           "centre", "run_schedule", "range_test", "execute", "read", "ranges",
           "sweep_optimum", "schedules", "plot_ratios", "plot_schedules"]

RANGE_CONTESTANTS = ("sgd_momentum", "nesterov", "adam", "adamw", "nadamw", "lion", "muon",
                     "lamb")
RANGE_SEEDS = (0, 1, 2)
#: fastai's lr_find settings
class RangeSettings(TypedDict):
    """The keyword arguments of :func:`lr_range_test` the study passes."""
    start_lr: float
    end_lr: float
    num_iter: int
    beta: float
    stop_factor: float


class PlateauSettings(TypedDict):
    """The keyword arguments of ``ReduceLROnPlateau`` the study passes."""
    factor: float
    patience: int


RANGE_SETTINGS = RangeSettings(start_lr=1e-7, end_lr=10.0, num_iter=100, beta=0.98,
                               stop_factor=4.0)
SCHEDULE_CONTESTANTS = ("adamw", "nesterov")
SCHEDULES = ("cosine", "onecycle", "onecycle_fixed", "plateau")
#: the sweep's points: the full grid's tuned rate times 10^(k/2)
SWEEP = (-2, -1, 0, 1, 2)
FINAL_SEEDS = (1, 2)
#: ReduceLROnPlateau's factor and patience (evaluations)
PLATEAU = PlateauSettings(factor=0.5, patience=2)

#: one run: ``"range"`` or ``"schedule"``, workload, contestant, schedule (``None`` for a range
#: test), the sweep's point (``None`` for a range test) and the seed; its input ``hyper`` is
#: the hyperparameters it runs with
KEY = Key("kind", "workload", "contestant", "schedule", "point", "seed")

def _base() -> list[str]:
    return [w.name for w in workloads.base_workloads()]


def range_jobs() -> list[Job]:
    """The range tests: every contestant of :data:`RANGE_CONTESTANTS` at its defaults with
    rate 1 (the ramp's multiplier is then the rate)."""
    return [KEY("range", w, c, None, None, seed,
                inputs={"hyper": {**contestants.get(c).defaults, "lr": 1.0}})
            for w in _base() for c in RANGE_CONTESTANTS for seed in RANGE_SEEDS]


def centre(contestant: str, workload: str) -> float:
    """The full grid's tuned rate: the learning rate of the best trial (seed 0)."""
    res = _full()
    best = res.best(contestant, workload)
    return res.by_key["external", workload, contestant, best, 0]["hyper"]["lr"]


@functools.cache
def _full() -> Any:
    from optedu.choosing import results
    return results.read("full")


def points(contestant: str, workload: str) -> list[float]:
    lr = centre(contestant, workload)
    return [lr * 10.0 ** (k / 2) for k in SWEEP]


def schedule_jobs(done: Iterable[dict[str, Any]] = ()) -> tuple[list[Job], list[Job]]:
    """``(sweep, finals)``: the sweep at seed 0, and the best point's runs at
    :data:`FINAL_SEEDS` where the whole sweep is in ``done`` (else none)."""
    records = {KEY.of(r): r for r in done}
    sweep, finals = [], []
    for w in _base():
        for c in SCHEDULE_CONTESTANTS:
            defaults = contestants.get(c).defaults
            rates = points(c, w)
            for s in SCHEDULES:
                for i, lr in enumerate(rates):
                    sweep.append(KEY("schedule", w, c, s, i, 0,
                                     inputs={"hyper": {**defaults, "lr": lr}}))
                stored = [records.get(("schedule", w, c, s, i, 0)) for i in range(len(rates))]
                done = [r for r in stored if r is not None]
                if len(done) == len(stored):
                    best = best_trial(done)
                    finals += [KEY("schedule", w, c, s, best, seed,
                                   inputs={"hyper": {**defaults, "lr": rates[best]}})
                               for seed in FINAL_SEEDS]
    return sweep, finals


class _Driven(Training):
    """The rates of a run that is not the benchmark's cosine: 1cycle, or the warmup and then
    ReduceLROnPlateau (:class:`optedu.choosing.contestants.Training` with no schedule function, its hooks
    moving the rates)."""

    def __init__(self, schedule: str, optimizers: list[torch.optim.Optimizer], steps: int):
        if schedule not in SCHEDULES or schedule == "cosine":
            raise ValueError(f"Invalid schedule: {schedule!r} (known: {SCHEDULES})")
        super().__init__(optimizers, None)
        self.kind = schedule
        self.warmup = max(1, round(WARMUP_FRACTION * steps))
        self.schedulers: list[Any] = []
        if schedule.startswith("onecycle"):
            self.schedulers = [OneCycleLR(o, max_lr=peaks, total_steps=steps,
                                          cycle_momentum=schedule == "onecycle")
                               for o, peaks in zip(optimizers, self.peaks)]
        else:
            self.schedulers = [ReduceLROnPlateau(o, **PLATEAU) for o in optimizers]
            self._warm(0)

    def _warm(self, t: int) -> None:
        factor = (t + 1) / (self.warmup + 1) if t < self.warmup else 1.0
        for o, peaks in zip(self.optimizers, self.peaks):
            for g, peak in zip(o.param_groups, peaks):
                g["lr"] = peak * factor

    def after_step(self, t: int) -> None:
        if self.kind.startswith("onecycle"):
            for s in self.schedulers:
                s.step()
        elif t + 1 <= self.warmup:
            self._warm(t + 1)           # the rate of the next step

    def after_eval(self, done: int, value: float) -> None:
        if self.kind == "plateau" and done >= self.warmup:
            for s in self.schedulers:
                s.step(value)


def run_schedule(workload: workloads.Workload, contestant: contestants.Contestant,
                 hyper: Hyper, seed: int, schedule: str) -> Run:
    """:func:`optedu.choosing.trial.run` with another schedule: the same loop, evaluations and record."""
    if schedule == "cosine":
        return trial.run(workload, contestant, hyper, seed)
    if schedule not in SCHEDULES:
        raise ValueError(f"Invalid schedule: {schedule!r} (known: {SCHEDULES})")
    return trial.run(workload, contestant, hyper, seed,
                     schedule=functools.partial(_Driven, schedule))


def range_test(workload: workloads.Workload, contestant: contestants.Contestant,
               hyper: Hyper, seed: int) -> dict[str, Any]:
    """The range test of ``contestant`` (built with ``hyper``) on ``workload``'s model and
    batches of ``seed``: the curve and fastai's three suggestions."""
    with one_thread():
        start = time.perf_counter()
        model = workload.model(seed)
        optimizers = contestant.build(model, dict(hyper), workload.head)
        batches = workload.batches(seed)

        def loss() -> torch.Tensor:
            x, y = next(batches)
            return workload.loss(model, x, y)

        result = lr_range_test(model, optimizers, loss, **RANGE_SETTINGS)
        rnd = store.rounded
        return {"lrs": [rnd(v) for v in result.lrs], "losses": [rnd(v) for v in result.losses],
                "smoothed": [rnd(v) for v in result.smoothed], "diverged": result.diverged,
                "suggestions": {k: rnd(v) for k, v in result.suggestions().items()},
                "seconds": round(time.perf_counter() - start, 3)}


def execute(job: Job) -> dict[str, Any]:
    """Run ``job`` and return its record (what is stored)."""
    w, c = workloads.get(job.workload), contestants.get(job.contestant)
    record = {"kind": job.kind, "workload": job.workload, "contestant": job.contestant,
              "schedule": job.schedule, "point": job.point, "seed": job.seed,
              "hyper": {k: float(f"{v:.6g}") for k, v in job.hyper.items()}}
    if job.kind == "range":
        record.update(range_test(w, c, job.hyper, job.seed))
        return record
    data = run_schedule(w, c, job.hyper, job.seed, job.schedule).to_json()
    record.update({"steps": data["steps"], "diverged": data["diverged"],
                   "evals": [[s, store.rounded(v)] for s, v in data["evals"]],
                   "train_loss": [[s, store.rounded(v)] for s, v in data["train_loss"]],
                   "state_bytes": data["state_bytes"], "seconds": round(data["seconds"], 3)})
    return record


def jobs(stored: Sequence[dict[str, Any]] = (), folder: pathlib.Path | None = None
         ) -> list[Job]:
    """The range tests and the schedules' sweep, then the best points' runs at
    :data:`FINAL_SEEDS` once their sweep is ``stored``."""
    sweep, finals = schedule_jobs(stored)
    return range_jobs() + sweep + finals


# --- reading the stored runs -----------------------------------------------------------------

def ranges(records: Iterable[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """``{(workload, contestant): [range-test record per seed]}``, seeds in order."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in sorted((r for r in records if r["kind"] == "range"), key=lambda r: r["seed"]):
        out.setdefault((r["workload"], r["contestant"]), []).append(r)
    return out


def sweep_optimum(sweep_records: list[dict[str, Any]], contestant: str, workload: str
                  ) -> float | None:
    """The best rate of the lr sweep (:mod:`.sweeps`: the other hyperparameters at their
    defaults): the lowest median final validation value over seeds 0, 1, 2; ``None`` where
    the sweep is not complete."""
    from optedu.choosing import sweeps
    curve = sweeps.values(sweep_records, "lr").get((workload, contestant), {})
    rates = [p["lr"] for p in sweeps.lr_points(contestants.get(contestant))]
    if set(curve) != set(range(len(rates))) or any(len(v) < 3 for v in curve.values()):
        return None
    medians = [statistics.median(curve[i].values()) for i in range(len(rates))]
    return sweeps.basin(rates, medians)["best_lr"]


def schedules(records: Iterable[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """``{(workload, contestant, schedule): ...}``: the chosen point's ``lr`` and whether it
    lies at an end of the sweep (``edge``), and over its three seeds the best and final
    validation values and the steps to the target (infinity if missed)."""
    records = [r for r in records if r["kind"] == "schedule"]
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in records:
        if r["seed"] != FINAL_SEEDS[0]:
            continue
        k = (r["workload"], r["contestant"], r["schedule"])
        runs = sorted((q for q in records if (q["workload"], q["contestant"], q["schedule"],
                                              q["point"]) == (*k, r["point"])
                       and (q["seed"] in FINAL_SEEDS or q["seed"] == 0)),
                      key=lambda q: q["seed"])
        values = [[v for _, v in q["evals"] if v is not None] for q in runs]
        out[k] = {"lr": r["hyper"]["lr"], "point": r["point"],
                  "edge": r["point"] in (0, len(SWEEP) - 1),
                  "seeds": [q["seed"] for q in runs],
                  "best": [min(v) if v and not q["diverged"] else math.inf
                           for v, q in zip(values, runs)],
                  "final": [math.inf if q["diverged"] or q["evals"][-1][1] is None
                            else q["evals"][-1][1] for q in runs],
                  "reached": [reached(q) for q in runs]}
    return out


def plot_ratios(ratios: dict[str, dict[tuple[str, str], list[float]]], names: list[str]):
    """One panel per suggestion rule: suggestion over optimum (log axis) per optimizer (rows),
    one dot per workload and seed, the band of a factor 3 shaded."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, len(ratios), figsize=(3.2 * len(ratios), 3.4), sharey=True)
    loads = sorted({w for by in ratios.values() for w, _ in by}, key=_base().index)
    colours = dict(zip(loads, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for ax, (rule, by) in zip(np.atleast_1d(axes), ratios.items()):
        ax.axvspan(1 / 3, 3, color="0.92", zorder=0)
        ax.axvline(1, color="0.5", lw=0.8)
        for row, c in enumerate(names):
            for j, w in enumerate(loads):
                values = [v for v in by.get((w, c), []) if math.isfinite(v)]
                ax.plot(values, [row + 0.12 * (j - 2)] * len(values), "o", ms=3,
                        color=colours[w], label=w if row == 0 else None)
        ax.set_xscale("log")
        ax.set_title(rule)
        ax.set_xlabel("suggestion / tuned rate")
    first = np.atleast_1d(axes)[0]
    first.set_yticks(range(len(names)), names)
    first.invert_yaxis()
    fig.legend(*first.get_legend_handles_labels(), loc="lower center", ncol=len(loads),
               fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def plot_schedules(table: dict[tuple[str, str, str], dict[str, Any]], loads: list[str],
                   names: list[str]):
    """One panel per workload: the best validation value of each schedule (median of three
    seeds, bars from the lowest to the highest), per optimizer."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(loads), figsize=(2.6 * len(loads), 3.2))
    markers = dict(zip(SCHEDULES, "osD^"))
    for ax, w in zip(axes, loads):
        for i, c in enumerate(names):
            for j, s in enumerate(SCHEDULES):
                row = table.get((w, c, s))
                if row is None:
                    continue
                v = sorted(row["best"])
                x = i + 0.18 * (j - 1.5)
                ax.errorbar(x, v[1], yerr=[[v[1] - v[0]], [v[-1] - v[1]]],
                            fmt=markers[s], ms=4, color=f"C{j}", capsize=2,
                            label=s if (w, i) == (loads[0], 0) else None)
        ax.set_xticks(range(len(names)), names)
        ax.set_xlim(-0.6, len(names) - 0.4)
        ax.set_title(f"{w} ({workloads.get(w).metric})", fontsize=9)
        ax.set_ylabel("best validation value" if w == loads[0] else "")
    fig.legend(loc="lower center", ncol=len(SCHEDULES), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


GRID = Grid(name="lr", chapter="Finding the learning rate in practice",
            about="the range test of eight optimizers on every base workload (three seeds), "
                  "and 1cycle and ReduceLROnPlateau against warmup with cosine (a small rate "
                  "sweep each, three seeds).",
            minutes=10, file="lr.jsonl", job=KEY, jobs=jobs, execute=execute, sample={"range": 3, "schedule": 6})
read = GRID.read
