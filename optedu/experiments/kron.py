"""Evidence for the chapter "PSGD: fitting a preconditioner": PSGD-Kron against AdamW on the
digits MLP, each over a learning-rate grid of the same size, three seeds at every rate.

``make experiments-kron`` stores each run as one JSON line in ``experiments/kron.jsonl`` as
soon as it finishes, keyed ``(contestant, lr, seed)``, resumable, with the machine, versions
and commit in ``experiments/kron.meta.json``. One worker process, one thread, torch's CPU
kernels pinned (:mod:`optedu.instruments.reproducible`), so that a stored run can be re-run
exactly::

    python -m optedu.experiments kron

Both run under the benchmark's warmup and cosine (:mod:`optedu.choosing.contestants`), with
:math:`\\beta_1 = 0.9` and weight decay 0.01 (decoupled in both: the step shrinks the
weights by :math:`\\eta\\lambda`); each grid starts at its package's default rate (AdamW
``1e-3``, kron-torch ``3e-4``) and rises by half-decades. Kron keeps kron-torch's other
defaults (update probability 1 for the 500 steps of this budget).
"""

from __future__ import annotations

import pathlib
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

from optedu.choosing import contestants, trial, workloads
from optedu.instruments import store
from optedu.optim.kron import Kron

from .grid import Grid, Job, Key

__all__ = ["GRID", "KEY", "WORKLOAD", "GRIDS", "SEEDS", "KRON", "jobs", "execute", "read",
           "table", "best"]

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

KEY = Key("contestant", "lr", "seed")


def jobs(stored: Sequence[dict[str, Any]] = (), folder: pathlib.Path | None = None
         ) -> list[Job]:
    """Every (contestant, rate, seed), AdamW first."""
    return [KEY(c, lr, s) for c, grid in GRIDS.items() for lr in grid for s in SEEDS]


def execute(job: Job) -> dict[str, Any]:
    """Train the digits MLP for ``job`` and return its record (what is stored)."""
    if job.contestant not in GRIDS:
        raise ValueError(f"Invalid contestant: {job.contestant!r}")
    who = KRON if job.contestant == "kron" else contestants.get(job.contestant)
    result = trial.run(workloads.get(WORKLOAD), who, {"lr": job.lr, **HYPER}, job.seed)
    record = {"contestant": job.contestant, "lr": job.lr, **result.to_json()}
    record["evals"] = [[s, store.rounded(v)] for s, v in result.evals]
    record["train_loss"] = [[s, store.rounded(v)] for s, v in result.train_loss]
    record["seconds"] = round(result.seconds, 3)
    return record


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


GRID = Grid(name="kron", chapter="PSGD: fitting a preconditioner",
            about="PSGD-Kron against AdamW on the digits MLP, four rates each, three seeds, 24 "
                  "runs.",
            minutes=1, file="kron.jsonl", job=KEY, jobs=jobs, execute=execute,
            sample=4)
read = GRID.read
