"""A race of contestants on one benchmark workload: each contestant over its own grid of
learning rates, every rate at every seed, the other hyperparameters fixed. The grids of mars,
two_momenta and kron are such races; this writes their jobs, their one run, and the two
summaries their chapters read once."""

from __future__ import annotations

import pathlib
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from optedu.choosing import contestants, trial, workloads
from optedu.instruments import store

from .grid import Job, Key

#: a race's job: which contestant, at which rate, from which seed
KEY = Key("contestant", "lr", "seed")


class Race:
    """``grids``: contestant -> its rates (in the order they are run); ``own``: contestants
    not in the benchmark's list, by name; ``hyper``: the hyperparameters every run shares."""

    def __init__(self, workload: str, grids: Mapping[str, Sequence[float]],
                 seeds: Sequence[int], hyper: Mapping[str, Any],
                 own: Mapping[str, contestants.Contestant]) -> None:
        self.workload, self.grids, self.seeds = workload, grids, seeds
        self.hyper, self.own = dict(hyper), own

    def jobs(self, stored: Sequence[dict[str, Any]] = (),
             folder: pathlib.Path | None = None) -> list[Job]:
        """Every (contestant, rate, seed), in the order of ``grids``."""
        return [KEY(c, lr, s) for c, grid in self.grids.items() for lr in grid
                for s in self.seeds]

    def execute(self, job: Job) -> dict[str, Any]:
        """Train the workload for ``job`` and return its record (what is stored)."""
        if job.contestant not in self.grids:
            raise ValueError(f"Invalid contestant: {job.contestant!r}")
        who = self.own.get(job.contestant) or contestants.get(job.contestant)
        result = trial.run(workloads.get(self.workload), who, {"lr": job.lr, **self.hyper},
                           job.seed)
        record = {"contestant": job.contestant, "lr": job.lr, **result.to_json()}
        record["evals"] = [[s, store.rounded(v)] for s, v in result.evals]
        record["train_loss"] = [[s, store.rounded(v)] for s, v in result.train_loss]
        record["seconds"] = round(result.seconds, 3)
        return record

    @staticmethod
    def table(records: Iterable[dict[str, Any]]) -> dict[tuple[str, float], list[float]]:
        """``{(contestant, lr): [final validation value per seed]}`` (seed order)."""
        out: dict[tuple[str, float], dict[int, float]] = {}
        for r in records:
            out.setdefault((r["contestant"], r["lr"]), {})[r["seed"]] = r["evals"][-1][1]
        return {k: [v[s] for s in sorted(v)] for k, v in out.items()}

    def best(self, records: Iterable[dict[str, Any]], contestant: str) -> float:
        """The rate of ``contestant`` with the lowest mean final value over the seeds."""
        rows = {lr: v for (c, lr), v in self.table(records).items() if c == contestant}
        return min(rows, key=lambda lr: statistics.fmean(rows[lr]))
