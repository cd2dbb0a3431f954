"""Evidence for the chapter "PSGD: fitting a preconditioner": PSGD-Kron against AdamW on the
digits MLP, each over a learning-rate grid of the same size, three seeds at every rate.

``make experiments-kron`` stores each run as one JSON line in ``experiments/kron.jsonl`` as
soon as it finishes, keyed ``(contestant, lr, seed)``, resumable, with the machine, versions
and commit in ``experiments/kron.meta.json``. One worker process, one thread, torch's CPU
kernels pinned (:mod:`optedu.instruments.reproducible`), so that a stored run can be re-run
exactly::

    python -m optedu.choosing.kron_runs

Both run under the benchmark's warmup and cosine (:mod:`.contestants`), with
:math:`\\beta_1 = 0.9` and weight decay 0.01 (decoupled in both: the step shrinks the
weights by :math:`\\eta\\lambda`); each grid starts at its package's default rate (AdamW
``1e-3``, kron-torch ``3e-4``) and rises by half-decades. Kron keeps kron-torch's other
defaults (update probability 1 for the 500 steps of this budget).
"""

from __future__ import annotations

import pathlib
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from optedu.optim.kron import Kron

from . import contestants, runner, trial, workloads

__all__ = ["PATH", "WORKLOAD", "GRIDS", "SEEDS", "KRON", "Job", "jobs", "key_of", "execute",
           "run", "read", "table", "best", "main"]

PATH = runner.EXPERIMENTS / "kron.jsonl"
WORKLOAD = "digits_mlp"
#: the learning rates tried, the same number for each, from each package's default upward
GRIDS = {"adamw": (1e-3, 3e-3, 1e-2, 3e-2), "kron": (3e-4, 1e-3, 3e-3, 1e-2)}
SEEDS = (0, 1, 2)
HYPER = {"weight_decay": 1e-2, "one_minus_beta1": 0.1}

KRON = contestants.Contestant(
    "kron", "PSGD-Kron (kron-torch's defaults)",
    {"lr": (1e-5, 1e-1), "weight_decay": (1e-3, 1.0), "one_minus_beta1": (0.02, 0.3)},
    {"lr": 3e-4, **HYPER},
    lambda model, hp, head: [Kron(model.parameters(), lr=hp["lr"],
                                  b1=1 - hp["one_minus_beta1"],
                                  weight_decay=hp["weight_decay"])],
    source="kron-torch 0.3.3")

Key = tuple[str, float, int]


def key_of(r: dict[str, Any]) -> Key:
    return (r["contestant"], r["lr"], r["seed"])


@dataclass(frozen=True)
class Job:
    contestant: str
    lr: float
    seed: int

    @property
    def key(self) -> Key:
        return (self.contestant, self.lr, self.seed)


def jobs() -> list[Job]:
    """Every (contestant, rate, seed), AdamW first."""
    return [Job(c, lr, s) for c, grid in GRIDS.items() for lr in grid for s in SEEDS]


def execute(job: Job) -> dict[str, Any]:
    """Train the digits MLP for ``job`` and return its record (what is stored)."""
    if job.contestant not in GRIDS:
        raise ValueError(f"Invalid contestant: {job.contestant!r}")
    who = KRON if job.contestant == "kron" else contestants.get(job.contestant)
    result = trial.run(workloads.get(WORKLOAD), who, {"lr": job.lr, **HYPER}, job.seed)
    record = {"contestant": job.contestant, "lr": job.lr, **result.to_json()}
    record["evals"] = [[s, runner._round(v)] for s, v in result.evals]
    record["train_loss"] = [[s, runner._round(v)] for s, v in result.train_loss]
    record["seconds"] = round(result.seconds, 3)
    return record


def run(out: pathlib.Path = PATH) -> dict[str, Any]:
    """Run what ``out`` lacks on one worker (kernels pinned first); returns the meta data."""
    return runner.run_missing(jobs(), key_of, execute, out, "kron")


def read(path: pathlib.Path = PATH) -> list[dict[str, Any]]:
    """The stored runs (``make experiments-kron`` writes them)."""
    return runner.read_stored(path, "experiments-kron")


def table(records: Iterable[dict[str, Any]]) -> dict[tuple[str, float], list[float]]:
    """``{(contestant, lr): [final validation cross-entropy per seed]}`` (seed order)."""
    out: dict[tuple[str, float], dict[int, float]] = {}
    for r in records:
        out.setdefault((r["contestant"], r["lr"]), {})[r["seed"]] = r["evals"][-1][1]
    return {k: [v[s] for s in sorted(v)] for k, v in out.items()}


def best(records: Iterable[dict[str, Any]], contestant: str) -> float:
    """The rate of ``contestant`` with the lowest mean final loss over the seeds."""
    rows = {lr: v for (c, lr), v in table(records).items() if c == contestant}
    return min(rows, key=lambda lr: statistics.fmean(rows[lr]))


def main(argv: Iterable[str] | None = None) -> int:
    return runner.grid_main(argv, description=__doc__.splitlines()[0], run=run, out=PATH,
                            name="kron")


if __name__ == "__main__":
    raise SystemExit(main())
