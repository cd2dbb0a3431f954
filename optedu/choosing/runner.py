"""The benchmark grid: every contestant on every workload under both rulesets, resumable.

``make experiments`` runs the full grid, ``make experiments-quick`` the quick one::

    python -m optedu.choosing.runner [--quick] [--jobs 2] [--plugin my_optimizer.py]

A grid has three kinds of run, each stored as one JSON line in
``experiments/results-<grid>.jsonl`` as soon as it finishes, keyed by
``(ruleset, workload, contestant, trial, seed)``:

* ``external``: trial ``i`` of the contestant's quasi-random search (:func:`.search.trials`),
  seed 0, on every workload (held-out variants included);
* ``external`` with seeds 1 and 2: the best trial per contestant and workload (the fastest to
  the target; if none reaches it, the lowest validation value), run again, so that the
  spread over seeds is measured; chosen after all trials have run;
* ``self``: the contestant's defaults, seeds 0, 1, 2.

An interrupted grid resumes where it stopped: runs already stored are not run again. The
machine, versions, commit and duration go to ``experiments/results-<grid>.meta.json``. Workers
are separate processes, each on one thread, with torch's CPU kernels capped at AVX2
(:mod:`optedu.instruments.reproducible`), so a stored run can be re-run and compared exactly.

A user's optimizer: a Python file that calls :func:`.contestants.register` (see
:mod:`.contestants`), passed as ``--plugin FILE --only NAME``; its runs go to
``results-<grid>-NAME.jsonl`` beside the stored ones, which are read, not re-run.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import multiprocessing
import os
import pathlib
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from optedu.instruments.reproducible import pin_cpu_kernels
from optedu.instruments.store import (append, folder, load, progress, repair, rounded,
                                      write_meta)

__all__ = ["Grid", "GRIDS", "Key", "jobs_for", "run_grid", "best_trial", "main"]

@dataclass(frozen=True)
class Grid:
    """What a grid runs: ``trials`` external-tuning trials per contestant and workload, the
    best trial again with ``final_seeds``, and the defaults with ``self_seeds``."""

    name: str
    trials: int
    final_seeds: tuple[int, ...]
    self_seeds: tuple[int, ...]
    held_out: bool = True
    contestants: tuple[str, ...] | None = None  # None: every registered contestant
    workloads: tuple[str, ...] | None = None    # None: every workload (held_out decides)


GRIDS = {
    "full": Grid("full", trials=20, final_seeds=(1, 2), self_seeds=(0, 1, 2)),
    "quick": Grid("quick", trials=5, final_seeds=(), self_seeds=(0,), held_out=False),
}

#: (ruleset, workload, contestant, trial, seed); trial is None for the self-tuning ruleset
Key = tuple[str, str, str, "int | None", int]


def key_of(record: dict[str, Any]) -> Key:
    return (record["ruleset"], record["workload"], record["contestant"], record["trial"],
            record["seed"])


@dataclass(frozen=True)
class Job:
    ruleset: str
    workload: str
    contestant: str
    trial: int | None
    seed: int
    hyper: dict[str, float] = field(hash=False, compare=False)
    plugins: tuple[str, ...] = ()

    @property
    def key(self) -> Key:
        return (self.ruleset, self.workload, self.contestant, self.trial, self.seed)


def _names(grid: Grid) -> tuple[list[str], list[str]]:
    from . import contestants, workloads
    names = list(grid.contestants or contestants.CONTESTANTS)
    loads = list(grid.workloads or (w.name for w in workloads.WORKLOADS.values()
                                    if grid.held_out or w.base is None))
    for name in names:
        contestants.get(name)
    for name in loads:
        workloads.get(name)
    return names, loads


def jobs_for(grid: Grid, done: Sequence[dict[str, Any]] = (),
             plugins: Sequence[str] = ()) -> tuple[list[Job], list[Job]]:
    """``(first, second)``: the runs that need no other result (trials, self-tuning), and the
    reruns of each best trial with ``final_seeds``, which need the trials' results (empty
    until every trial of that contestant and workload is in ``done``)."""
    from . import contestants, search
    names, loads = _names(grid)
    first: list[Job] = []
    second: list[Job] = []
    records = {key_of(r): r for r in done}
    for name in names:
        c = contestants.get(name)
        hypers = search.trials(c.space, grid.trials)
        for w in loads:
            for i, hyper in enumerate(hypers):
                first.append(Job("external", w, name, i, 0, hyper, tuple(plugins)))
            for seed in grid.self_seeds:
                first.append(Job("self", w, name, None, seed, dict(c.defaults),
                                 tuple(plugins)))
            trial_records = [records.get(("external", w, name, i, 0))
                             for i in range(grid.trials)]
            done = [r for r in trial_records if r is not None]
            if grid.final_seeds and len(done) == len(trial_records):
                best = best_trial(done)
                for seed in grid.final_seeds:
                    second.append(Job("external", w, name, best, seed, hypers[best],
                                      tuple(plugins)))
    return first, second


def reached(record: dict[str, Any]) -> float:
    """Steps a stored run took to reach its workload's target (read from its validation
    curve, so that a target set after the run applies), or infinity."""
    from .trial import steps_to_target
    from .workloads import get
    curve = [(s, math.inf if v is None else v) for s, v in record["evals"]]
    step = steps_to_target(curve, get(record["workload"]).target)
    return math.inf if step is None else float(step)


def best_trial(records: Sequence[dict[str, Any]]) -> int:
    """Index of the best trial: the fewest steps to the target, ties and misses decided by
    the lowest validation value reached (a diverged run is worst)."""
    def rank(i: int) -> tuple[float, float, int]:
        r = records[i]
        values = [v for _, v in r["evals"] if v is not None and math.isfinite(v)]
        return (reached(r), min(values) if values else math.inf, i)
    return min(range(len(records)), key=rank)


# --- running ----------------------------------------------------------------------------------

def _init_worker(plugins: Sequence[str]) -> None:
    import torch
    torch.set_num_threads(1)
    for path in plugins:
        load_plugin(path)


_PLUGINS: set[str] = set()


def load_plugin(path: str) -> None:
    """Import the Python file at ``path`` (it registers contestants), once per process."""
    path = str(pathlib.Path(path).resolve())
    if path in _PLUGINS:
        return
    _PLUGINS.add(path)
    spec = importlib.util.spec_from_file_location(f"optedu_plugin_{abs(hash(path))}", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"Invalid plugin: {path!r}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)


def execute(job: Job) -> dict[str, Any]:
    """Run ``job`` and return its record (what is stored)."""
    from . import contestants, trial, workloads
    run = trial.run(workloads.get(job.workload), contestants.get(job.contestant),
                    job.hyper, job.seed)
    record = {"ruleset": job.ruleset, "workload": job.workload, "contestant": job.contestant,
              "trial": job.trial, "seed": job.seed,
              "hyper": {k: float(f"{v:.6g}") for k, v in job.hyper.items()}}
    data = run.to_json()
    data["evals"] = [[s, rounded(v)] for s, v in data["evals"]]
    data["train_loss"] = [[s, rounded(v)] for s, v in data["train_loss"]]
    data["seconds"] = round(data["seconds"], 3)
    # the curve is stored, not the step it crossed the target: targets are calibrated
    # separately and read from the workloads when results are scored (``reached``)
    for k in ("workload", "contestant", "seed", "hyper", "reached"):
        data.pop(k)
    record.update(data)
    return record


def _execute_all(jobs: Sequence[Any], out: pathlib.Path, workers: int,
                 plugins: Sequence[str], counter: list[int], total: int,
                 start: float) -> None:
    """Run ``jobs`` with :func:`execute` on ``workers`` processes, appending each record to
    ``out`` as it arrives, with a progress bar."""
    if not jobs:
        return
    with out.open("a") as sink:
        def store(record: dict[str, Any]) -> None:
            append(sink, record)
            counter[0] += 1
            progress(counter[0], total, start)
        if workers == 1:
            _init_worker(plugins)
            for job in jobs:
                store(execute(job))
            return
        context = multiprocessing.get_context("spawn")
        with context.Pool(workers, _init_worker, (tuple(plugins),)) as pool:
            for record in pool.imap_unordered(execute, jobs, chunksize=1):
                store(record)


def run_grid(grid: Grid, out: pathlib.Path, *, workers: int = 2,
             plugins: Sequence[str] = ()) -> dict[str, Any]:
    """Run what ``out`` lacks of ``grid``; returns the meta data written beside it."""
    pin_cpu_kernels()  # before the workers start: they inherit it
    for path in plugins:
        load_plugin(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    repair(out)
    start, wall = time.monotonic(), time.time()
    stored = {key_of(r) for r in load(out)}
    first, _ = jobs_for(grid, load(out), plugins)
    todo = [j for j in first if j.key not in stored]
    # the total for the bar: the reruns' trials are chosen later, their number known now
    names, loads = _names(grid)
    reruns = len(names) * len(loads) * len(grid.final_seeds)
    total = len(todo) + reruns - sum(1 for k in stored if k[0] == "external" and k[4] != 0)
    counter = [0]
    _execute_all(todo, out, workers, plugins, counter, max(total, 1), start)
    _, second = jobs_for(grid, load(out), plugins)
    stored = {key_of(r) for r in load(out)}
    todo2 = [j for j in second if j.key not in stored]
    _execute_all(todo2, out, workers, plugins, counter, max(counter[0] + len(todo2), 1),
                 start)
    return write_meta(out, grid.name, counter[0], time.monotonic() - start, wall, workers)


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the quick grid (minutes)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="worker processes (default: one per core)")
    parser.add_argument("--out", type=pathlib.Path, default=None,
                        help="the data folder (default: optedu.instruments.store.folder)")
    parser.add_argument("--plugin", action="append", default=[],
                        help="a Python file that registers contestants")
    parser.add_argument("--only", default=None,
                        help="comma-separated contestants to run (their runs go to a file "
                             "of their own)")
    args = parser.parse_args(None if argv is None else list(argv))
    if args.jobs < 1:
        parser.error(f"Invalid --jobs: {args.jobs}")
    grid = GRIDS["quick" if args.quick else "full"]
    args.out = folder(args.out)
    path = args.out / f"results-{grid.name}.jsonl"
    if args.only:
        names = tuple(args.only.split(","))
        grid = Grid(grid.name, grid.trials, grid.final_seeds, grid.self_seeds,
                    grid.held_out, contestants=names)
        path = args.out / f"results-{grid.name}-{'-'.join(names)}.jsonl"
    start = time.monotonic()
    meta = run_grid(grid, path, workers=args.jobs,
                    plugins=[str(pathlib.Path(p).resolve()) for p in args.plugin])
    print(f"{grid.name} grid: {meta['runs']} runs stored in {path}, {meta['ran_now']} run "
          f"now in {(time.monotonic() - start) / 60:.1f} min on {args.jobs} workers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
