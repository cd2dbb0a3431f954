"""One runner for every chapter's grid: run what the stored file lacks, resumable.

``make experiments-NAME`` (``make experiments-list`` lists them) is::

    python -m optedu.experiments NAME [--folder DIR]

Runs go one after another in this process, on one thread, torch's CPU kernels capped at AVX2
(:mod:`optedu.instruments.reproducible`) before anything is computed, each appended to the
grid's file as one JSON line as soon as it ends; an interrupted grid resumes where it stopped.
A grid whose plan grows with its results (re-runs at the best rate) is run until its plan is
complete. The machine, versions, commit and each invocation go to ``NAME.meta.json`` beside
the file (:func:`optedu.instruments.store.write_meta`). :func:`rerun` runs stored jobs again
with the same settings, so that a test can compare them bit for bit.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import textwrap
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from optedu.instruments import store
from optedu.instruments.reproducible import pin_cpu_kernels

from .grid import Grid, Job, get, names

__all__ = ["run", "run_parallel", "rerun", "missing", "listing", "main"]


def _settings() -> None:
    pin_cpu_kernels()
    import torch
    torch.set_num_threads(1)


def missing(grid: Grid, stored: Sequence[dict[str, Any]],
            folder: pathlib.Path | None = None) -> list[Job]:
    """The jobs of ``grid``'s plan that no record in ``stored`` holds."""
    keys = {grid.key_of(r) for r in stored}
    return [j for j in grid.jobs(stored, folder) if j.key not in keys]


def run(grid: Grid, folder: pathlib.Path | str | None = None) -> dict[str, Any]:
    """Run what ``grid``'s stored file in ``folder`` lacks; returns the meta data written
    beside it."""
    _settings()
    out = grid.path(folder)
    out.parent.mkdir(parents=True, exist_ok=True)
    store.repair(out)
    start, wall = time.monotonic(), time.time()
    ran = 0
    while todo := missing(grid, store.load(out), out.parent):
        with out.open("a") as sink:
            for i, job in enumerate(todo, 1):
                record = grid.execute(job)
                if grid.key_of(record) != job.key:
                    raise ValueError(f"Invalid record: key {grid.key_of(record)} for the job "
                                     f"{job.key} of {grid.name}")
                store.append(sink, record)
                store.progress(i, len(todo), start)
        ran += len(todo)
    return store.write_meta(out, grid.name, ran, time.monotonic() - start, wall, 1)


def run_parallel(grid: Grid, workers: int, folder: pathlib.Path | str | None = None,
                 deadline: float | None = None,
                 priority: Callable[[Job], float] | None = None) -> dict[str, Any]:
    """:func:`run` on ``workers`` processes: the plan is read again as each run ends (so a
    grid whose plan grows with its results keeps them busy), runs start in ``priority``
    order (lowest first; default the plan's), and none starts after ``deadline`` seconds.
    A run that raises is reported and the others go on; the first error is raised at the
    end. Each worker runs on one thread with torch's CPU kernels capped at AVX2."""
    import concurrent.futures as cf
    import multiprocessing
    import traceback

    _settings()
    out = grid.path(folder)
    out.parent.mkdir(parents=True, exist_ok=True)
    store.repair(out)
    start, wall = time.monotonic(), time.time()
    ran = 0
    failed: list[Job] = []
    running: dict[cf.Future, Job] = {}
    context = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(workers, mp_context=context, initializer=_settings) as pool, \
            out.open("a") as sink:
        while True:
            late = deadline is not None and time.monotonic() - start > deadline
            busy = {j.key for j in running.values()} | {j.key for j in failed}
            todo = [] if late else [j for j in missing(grid, store.load(out), out.parent)
                                    if j.key not in busy]
            if priority is not None:
                todo.sort(key=priority)
            for job in todo[:max(0, workers - len(running))]:
                running[pool.submit(grid.execute, job)] = job
            if not running:
                break
            done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
            for future in done:
                job = running.pop(future)
                try:
                    record = future.result()
                except Exception as error:  # noqa: BLE001 - reported, raised at the end
                    failed.append(job)
                    print(f"{grid.name}: {job.key} failed: {error!r}\n"
                          + "".join(traceback.format_exception(error)), file=sys.stderr)
                    continue
                store.append(sink, record)
                ran += 1
                print(f"{grid.name}: {ran} runs in {time.monotonic() - start:.0f} s "
                      f"({job.key})", file=sys.stderr, flush=True)
    meta = store.write_meta(out, grid.name, ran, time.monotonic() - start, wall, workers)
    if failed:
        raise RuntimeError(f"{len(failed)} runs of {grid.name} failed, the first "
                           f"{failed[0].key} (see the errors above)")
    return meta


def rerun(grid: Grid, keys: Iterable[Sequence[Any]],
          folder: pathlib.Path | str | None = None) -> list[dict[str, Any]]:
    """Run again, with the runner's settings, the jobs of ``grid`` whose keys are ``keys``
    (as stored: a job's inputs are those its plan gives it now); returns their records."""
    _settings()
    path = grid.path(folder)
    plan = {j.key: j for j in grid.jobs(store.load(path), path.parent)}
    out = []
    for key in keys:
        key = tuple(key)
        if key not in plan:
            raise ValueError(f"Invalid key: {key} is not in the plan of {grid.name}")
        out.append(grid.execute(plan[key]))
    return out


def listing() -> str:
    """One paragraph per grid: its target, chapter, what it runs, its cost and its file."""
    paragraphs = []
    for name in names():
        grid = get(name)
        paragraphs.append(textwrap.fill(
            f"make {grid.target}: the chapter \"{grid.chapter}\": {grid.about} About "
            f"{grid.minutes:g} min on one worker; experiments/{grid.file}, resumable.", 96,
            subsequent_indent="  "))
    return "\n\n".join(paragraphs)


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", help=f"the grid: one of {', '.join(names())}")
    parser.add_argument("--folder", type=pathlib.Path, default=None,
                        help="the data folder (default: optedu.instruments.store.folder)")
    parser.add_argument("--list", action="store_true", help="list the grids and stop")
    args = parser.parse_args(None if argv is None else list(argv))
    if args.list or args.name is None:
        print(listing())
        return 0
    grid = get(args.name)
    start = time.monotonic()
    meta = run(grid, args.folder)
    print(f"{grid.name} experiments: {meta['runs']} runs stored in {grid.path(args.folder)}, "
          f"{meta['ran_now']} run now in {(time.monotonic() - start) / 60:.1f} min on 1 worker")
    return 0


if __name__ == "__main__":
    sys.exit(main())
