"""Reading a stored grid: times to target per ruleset, scores, the spread over seeds.

The chapters read ``experiments/results-<grid>.jsonl`` through these functions, so that what
they print is computed from the stored runs, never typed.
"""

from __future__ import annotations

import math
import pathlib
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from . import profiles, workloads
from optedu.instruments.store import folder, load

from .runner import best_trial, reached

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
        self._by_pair: dict[tuple[str, str, str], list[Record]] = defaultdict(list)
        for r in self.records:
            self._by_pair[r["ruleset"], r["workload"], r["contestant"]].append(r)
        self._best: dict[tuple[str, str], int] = {}

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
        """The external-tuning trials of ``seed``, in order; a gap in their indices (a grid
        stored in part) is an error, not a shorter list."""
        out = sorted((r for r in self._by_pair["external", workload, contestant]
                      if r["seed"] == seed), key=lambda r: r["trial"])
        if [r["trial"] for r in out] != list(range(len(out))):
            raise ValueError(f"Invalid grid: the trials of {contestant!r} on {workload!r} "
                             f"(seed {seed}) have gaps: "
                             f"{[r['trial'] for r in out][:8]}...")
        return out

    def best(self, contestant: str, workload: str) -> int:
        """The best trial's index (:func:`.runner.best_trial`)."""
        if (contestant, workload) not in self._best:
            self._best[contestant, workload] = best_trial(self.trials(contestant, workload))
        return self._best[contestant, workload]

    def seeds(self, contestant: str, workload: str, ruleset: str = "external") -> list[Record]:
        """The runs of the best trial (external) or of the defaults (self), one per seed."""
        trial = self.best(contestant, workload) if ruleset == "external" else None
        return sorted((r for r in self._by_pair[ruleset, workload, contestant]
                       if r["trial"] == trial), key=lambda r: r["seed"])

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
        return self.times_from(lambda s, w: self.time(s, w, ruleset, n=n, studies=studies),
                               held_out=held_out, contestants=contestants)

    def times_from(self, time: Callable[[str, str], float], *, held_out: bool = True,
                   contestants: Iterable[str] | None = None) -> dict[str, dict[str, float]]:
        """:meth:`times` with another way to measure :math:`t_{s,w}`: ``time(contestant,
        workload)`` (one study, one seed, the median over seeds ...)."""
        out: dict[str, dict[str, float]] = defaultdict(dict)
        for s in contestants or self.contestants:
            for w in self.base_workloads:
                t = time(s, w)
                if held_out:
                    for variant in workloads.held_out(w):
                        if variant.name in self.workloads and math.isinf(time(s, variant.name)):
                            t = math.inf
                out[s][w] = t
        return dict(out)

    def scores(self, ruleset: str, **kwargs: Any) -> dict[str, float]:
        """Each contestant's benchmark score (area under its performance profile)."""
        ratios = profiles.ratios(self.times(ruleset, **kwargs))
        return {s: profiles.score(r) for s, r in ratios.items()}

    def scores_from(self, time: Callable[[str, str], float], **kwargs: Any
                    ) -> dict[str, float]:
        """:meth:`scores` from the times of :meth:`times_from`."""
        ratios = profiles.ratios(self.times_from(time, **kwargs))
        return {s: profiles.score(r) for s, r in ratios.items()}

    def seed_time(self, contestant: str, workload: str, seed: int,
                  ruleset: str = "external") -> float:
        """Steps to the target of one seed of the best trial (or of the defaults)."""
        for r in self.seeds(contestant, workload, ruleset):
            if r["seed"] == seed:
                return _reached(r)
        raise ValueError(f"Invalid seed: {seed} (no run of {contestant!r} on {workload!r})")

    def study_time(self, contestant: str, workload: str, study: int, n: int = 5) -> float:
        """Steps to the target of study ``study`` (trials ``study·n`` to ``study·n + n − 1``
        of seed 0): its fastest trial's."""
        trials = self.trials(contestant, workload)
        if not 0 <= study < len(trials) // n:
            raise ValueError(f"Invalid study: {study} ({len(trials) // n} studies of {n})")
        return min(_reached(r) for r in trials[study * n:(study + 1) * n])

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


def read(grid: str = "full", directory: pathlib.Path | None = None,
         extra: Sequence[str] = ()) -> Results:
    """The stored runs of ``grid``, with the user's runs of contestants ``extra`` beside them
    (``results-<grid>-<name>.jsonl``), in ``directory`` (default: the data folder,
    :func:`optedu.instruments.store.folder`)."""
    directory = folder(directory)
    records = load(directory / f"results-{grid}.jsonl")
    for name in extra:
        records += load(directory / f"results-{grid}-{name}.jsonl")
    if not records:
        raise ValueError(f"Invalid grid: no runs stored in {directory}/results-{grid}.jsonl "
                         f"(make experiments{'-quick' if grid == 'quick' else ''})")
    return Results(records)
