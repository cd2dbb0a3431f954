"""Reading a stored grid: times to target per ruleset, scores, the spread over seeds.

The chapters read ``experiments/results-<grid>.jsonl`` through these functions, so that what
they print is computed from the stored runs, never typed.
"""

from __future__ import annotations

import math
import pathlib
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from . import profiles, workloads
from .runner import EXPERIMENTS, best_trial, load, reached

__all__ = ["Results", "read"]

Record = dict[str, Any]


def _reached(record: Record | None) -> float:
    return math.inf if record is None else reached(record)


def _best_value(record: Record) -> float:
    values = [v for _, v in record["evals"] if v is not None]
    return min(values) if values else math.inf


@dataclass
class Results:
    """The runs of one grid (and any user's runs read beside them)."""

    records: list[Record]

    def __post_init__(self) -> None:
        self.by_key = {(r["ruleset"], r["workload"], r["contestant"], r["trial"], r["seed"]): r
                       for r in self.records}

    @property
    def contestants(self) -> list[str]:
        return sorted({r["contestant"] for r in self.records})

    @property
    def workloads(self) -> list[str]:
        """Workloads with runs, in the registry's order."""
        present = {r["workload"] for r in self.records}
        return [w for w in workloads.WORKLOADS if w in present]

    @property
    def base_workloads(self) -> list[str]:
        return [w for w in self.workloads if workloads.get(w).base is None]

    def trials(self, contestant: str, workload: str, seed: int = 0) -> list[Record]:
        """The external-tuning trials, in order (seed 0)."""
        out = []
        for i in range(len(self.records)):
            record = self.by_key.get(("external", workload, contestant, i, seed))
            if record is None:
                break
            out.append(record)
        return out

    def best(self, contestant: str, workload: str) -> int:
        """The best trial's index (:func:`.runner.best_trial`)."""
        return best_trial(self.trials(contestant, workload))

    def seeds(self, contestant: str, workload: str, ruleset: str = "external") -> list[Record]:
        """The runs of the best trial (external) or of the defaults (self), one per seed."""
        trial = self.best(contestant, workload) if ruleset == "external" else None
        return sorted((r for r in self.records if r["ruleset"] == ruleset
                       and r["workload"] == workload and r["contestant"] == contestant
                       and r["trial"] == trial), key=lambda r: r["seed"])

    def time(self, contestant: str, workload: str, ruleset: str, *, n: int = 5,
             studies: int = 3) -> float:
        """:math:`t_{s,w}` on one workload, before the held-out rule."""
        if ruleset == "external":
            times = [_reached(r) for r in self.trials(contestant, workload)]
            return profiles.external_time(times, n, studies)
        if ruleset == "self":
            return profiles.median_time(_reached(r) for r in self.seeds(contestant, workload,
                                                                         "self"))
        raise ValueError(f"Invalid ruleset: {ruleset!r}")

    def times(self, ruleset: str, *, n: int = 5, studies: int = 3,
              held_out: bool = True,
              contestants: Iterable[str] | None = None) -> dict[str, dict[str, float]]:
        """``{contestant: {base workload: t}}``; with ``held_out``, a contestant that misses a
        held-out variant's target gets infinity on its base workload."""
        out: dict[str, dict[str, float]] = defaultdict(dict)
        for s in contestants or self.contestants:
            for w in self.base_workloads:
                t = self.time(s, w, ruleset, n=n, studies=studies)
                if held_out:
                    for variant in workloads.held_out(w):
                        if variant.name in self.workloads and math.isinf(
                                self.time(s, variant.name, ruleset, n=n, studies=studies)):
                            t = math.inf
                out[s][w] = t
        return dict(out)

    def scores(self, ruleset: str, **kwargs: Any) -> dict[str, float]:
        """Each contestant's benchmark score (area under its performance profile)."""
        ratios = profiles.ratios(self.times(ruleset, **kwargs))
        return {s: profiles.score(r) for s, r in ratios.items()}

    def spread(self, contestant: str, workload: str, ruleset: str = "external"
               ) -> dict[str, Any]:
        """Steps to the target and best validation value over the seeds of the best trial
        (or the defaults): lists, median and range."""
        runs = self.seeds(contestant, workload, ruleset)
        reached = [_reached(r) for r in runs]
        best = [_best_value(r) for r in runs]
        return {"seeds": [r["seed"] for r in runs], "reached": reached, "best": best,
                "median_reached": profiles.median_time(reached) if runs else math.inf,
                "median_best": statistics.median(best) if runs else math.inf}


def read(grid: str = "full", directory: pathlib.Path = EXPERIMENTS,
         extra: Sequence[str] = ()) -> Results:
    """The stored runs of ``grid``, with the user's runs of contestants ``extra`` beside them
    (``results-<grid>-<name>.jsonl``)."""
    records = load(directory / f"results-{grid}.jsonl")
    for name in extra:
        records += load(directory / f"results-{grid}-{name}.jsonl")
    if not records:
        raise ValueError(f"Invalid grid: no runs stored in {directory}/results-{grid}.jsonl "
                         f"(make experiments{'-quick' if grid == 'quick' else ''})")
    return Results(records)
