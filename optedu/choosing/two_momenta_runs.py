"""Evidence for the chapter "Two momenta: AdEMAMix, and ADOPT's fix of Adam's convergence":
ADOPT, LaProp and AdEMAMix (with and without its warmups) against AdamW on the digits MLP,
each over a learning-rate grid of the same size, three seeds at every rate.

``make experiments-two-momenta`` stores each run as one JSON line in
``experiments/two_momenta.jsonl`` as soon as it finishes, keyed ``(contestant, lr, seed)``,
resumable, with the machine, versions and commit in ``experiments/two_momenta.meta.json``.
One worker process, one thread, torch's CPU kernels pinned
(:mod:`optedu.instruments.reproducible`), so that a stored run can be re-run exactly::

    python -m optedu.choosing.two_momenta_runs

All run under the benchmark's warmup and cosine (:mod:`.contestants`), with
:math:`\\beta_1 = 0.9` and decoupled weight decay 0.01; every rule keeps its package's other
defaults (ADOPT :math:`\\beta_2 = 0.9999`, AdEMAMix :math:`\\beta_3 = 0.9999`,
:math:`\\alpha = 5`). ``ademamix`` warms :math:`\\alpha` and :math:`\\beta_3` up over the
whole budget (the paper's :math:`T_{\\alpha,\\beta_3}` = the run's length);
``ademamix_nowarmup`` does not.
"""

from __future__ import annotations

import pathlib
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from optedu.optim.ademamix import AdEMAMix
from optedu.optim.adopt import ADOPT
from optedu.optim.laprop import LaProp

from . import contestants, runner, trial, workloads

__all__ = ["PATH", "WORKLOAD", "GRIDS", "SEEDS", "CONTESTANTS", "Job", "jobs", "key_of",
           "execute", "run", "read", "table", "best", "main"]

PATH = runner.EXPERIMENTS / "two_momenta.jsonl"
WORKLOAD = "digits_mlp"
#: the learning rates tried, the same grid (and size) for each rule: steps of about
#: sqrt(3), so that no rule's best rate falls between two points a factor 3 apart
RATES = (3e-4, 5.5e-4, 1e-3, 1.7e-3, 3e-3, 5.5e-3, 1e-2, 1.7e-2, 3e-2)
GRIDS = {name: RATES for name in
         ("adamw", "adopt", "laprop", "ademamix", "ademamix_nowarmup")}
SEEDS = (0, 1, 2)
HYPER = {"weight_decay": 1e-2, "one_minus_beta1": 0.1}
_SPACE = {"lr": (1e-5, 1e-1), "weight_decay": (1e-3, 1.0), "one_minus_beta1": (0.02, 0.3)}
_STEPS = workloads.get(WORKLOAD).steps


def _ademamix(warmup: float | None):
    return lambda model, hp, head: [AdEMAMix(
        model.parameters(), lr=hp["lr"], betas=(1 - hp["one_minus_beta1"], 0.999, 0.9999),
        weight_decay=hp["weight_decay"], weight_decouple=True, t_alpha_beta3=warmup)]


CONTESTANTS = {
    "adopt": contestants.Contestant(
        "adopt", "ADOPT (torch-adopt's defaults, decoupled decay)", _SPACE,
        {"lr": 1e-3, **HYPER},
        lambda model, hp, head: [ADOPT(model.parameters(), lr=hp["lr"],
                                       betas=(1 - hp["one_minus_beta1"], 0.9999),
                                       weight_decay=hp["weight_decay"], decouple=True)],
        source="torch-adopt 0.1.0"),
    "laprop": contestants.Contestant(
        "laprop", "LaProp (pytorch_optimizer's defaults)", _SPACE, {"lr": 4e-4, **HYPER},
        lambda model, hp, head: [LaProp(model.parameters(), lr=hp["lr"],
                                        betas=(1 - hp["one_minus_beta1"], 0.999),
                                        weight_decay=hp["weight_decay"])],
        source="pytorch_optimizer 4.1.0"),
    "ademamix": contestants.Contestant(
        "ademamix", "AdEMAMix, alpha and beta3 warmed up over the run", _SPACE,
        {"lr": 1e-3, **HYPER}, _ademamix(_STEPS), source="pytorch_optimizer 4.1.0"),
    "ademamix_nowarmup": contestants.Contestant(
        "ademamix_nowarmup", "AdEMAMix without its warmups", _SPACE,
        {"lr": 1e-3, **HYPER}, _ademamix(None), source="pytorch_optimizer 4.1.0"),
}

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
    who = CONTESTANTS.get(job.contestant) or contestants.get(job.contestant)
    result = trial.run(workloads.get(WORKLOAD), who, {"lr": job.lr, **HYPER}, job.seed)
    record = {"contestant": job.contestant, "lr": job.lr, **result.to_json()}
    record["evals"] = [[s, runner._round(v)] for s, v in result.evals]
    record["train_loss"] = [[s, runner._round(v)] for s, v in result.train_loss]
    record["seconds"] = round(result.seconds, 3)
    return record


def run(out: pathlib.Path = PATH) -> dict[str, Any]:
    """Run what ``out`` lacks on one worker (kernels pinned first); returns the meta data."""
    return runner.run_missing(jobs(), key_of, execute, out, "two_momenta")


def read(path: pathlib.Path = PATH) -> list[dict[str, Any]]:
    """The stored runs (``make experiments-two-momenta`` writes them)."""
    return runner.read_stored(path, "experiments-two-momenta")


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
                            name="two_momenta")


if __name__ == "__main__":
    raise SystemExit(main())
