"""Evidence for the chapter "SOAP: Adam in Shampoo's eigenbasis": SOAP against AdamW tuned
alike, the refresh period swept, and the paper's refresh against an exact one.

``make experiments-soap`` stores each run as one JSON line in ``experiments/soap.jsonl`` as
soon as it finishes, keyed ``(optimizer, lr, k, seed)``, resumable, with the machine,
versions and commit in ``experiments/soap.meta.json``. One worker process, one thread,
torch's CPU kernels pinned (:mod:`optedu.instruments.reproducible`), so that a stored run can
be re-run exactly::

    python -m optedu.experiments soap

The workload is :data:`WORKLOAD` of the benchmark (:mod:`optedu.choosing.workloads`), under the benchmark's
schedule (a linear warmup over 5 % of the steps, then a cosine to zero) and step budget.

* ``soap`` and ``adamw`` over the same learning-rate grid :data:`RATES`, seeds :data:`SEEDS`,
  each at its own defaults otherwise (SOAP: betas (0.95, 0.95), k = 10; AdamW: betas
  (0.9, 0.999)), weight decay :data:`WEIGHT_DECAY` for both: tuned alike, one knob each.
* ``soap`` at each rate of :data:`PERIOD_RATES` with the refresh period k over
  :data:`PERIODS` (a k above the step budget never refreshes: Adam in the basis of the first
  gradient).
* ``soap_eigh`` (:class:`optedu.optim.variants.soap.SOAPEigh`, an exact eigendecomposition at
  every refresh) at the same rates and periods 1, 10 and 100: the paper's power-iteration
  refresh against the exact basis.

Reference: N. Vyas et al., *SOAP: Improving and Stabilizing Shampoo using Adam*, ICLR 2025.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from typing import Any

import torch

from optedu.choosing import trial, workloads
from optedu.choosing.contestants import Contestant
from optedu.instruments import store
from optedu.optim.adam import AdamW
from optedu.optim.soap import SOAP
from optedu.optim.variants.soap import SOAPEigh

from .grid import Grid, Job, Key

__all__ = ["GRID", "KEY", "WORKLOAD", "RATES", "PERIODS", "PERIOD_RATES", "EIGH_PERIODS",
           "DEFAULT_K", "SEEDS", "WEIGHT_DECAY", "jobs", "contestant", "execute"]

WORKLOAD = "digits_mlp"
#: the learning-rate grid, the same for both optimizers
RATES = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2)
#: refresh periods swept at each of PERIOD_RATES (1000 > the 200-step budget: never refreshed)
PERIODS = (1, 3, 10, 30, 100, 1000)
PERIOD_RATES = (3e-3, 1e-2)
#: the periods at which the exact refresh runs too
EIGH_PERIODS = (1, 10, 100)
DEFAULT_K = 10
SEEDS = (0, 1, 2)
WEIGHT_DECAY = 1e-2

KEY = Key("optimizer", "lr", "k", "seed")


def jobs(stored: Sequence[dict[str, Any]] = (), folder: pathlib.Path | None = None
         ) -> list[Job]:
    """The grid against AdamW, then the periods swept, then the exact refresh (each run
    once: the grid's SOAP runs at PERIOD_RATES are the sweeps' k = 10)."""
    out = [KEY(o, lr, DEFAULT_K if o == "soap" else None, s)
           for o in ("soap", "adamw") for lr in RATES for s in SEEDS]
    out += [KEY("soap", lr, k, s) for lr in PERIOD_RATES for k in PERIODS for s in SEEDS]
    out += [KEY("soap_eigh", lr, k, s) for lr in PERIOD_RATES for k in EIGH_PERIODS
            for s in SEEDS]
    seen, unique = set(), []
    for j in out:
        if j.key not in seen:
            seen.add(j.key)
            unique.append(j)
    return unique


def contestant(optimizer: str, k: int | None = None) -> Contestant:
    """The contestant of a job: SOAP (or its exact-refresh variant) with period ``k``, or
    AdamW; learning rate and weight decay from the hyperparameters (the benchmark's
    warmup-and-cosine schedule). Not registered: the benchmark's list is unchanged."""
    space = {"lr": (1e-4, 1e-1), "weight_decay": (1e-4, 1e-1)}
    defaults = {"lr": 3e-3, "weight_decay": WEIGHT_DECAY}     # SOAP's default rate
    if optimizer == "adamw":
        return Contestant("adamw", "AdamW", space, {**defaults, "lr": 1e-3},
                          lambda model, hp, head: [AdamW(model.parameters(), lr=hp["lr"],
                                                         weight_decay=hp["weight_decay"])])
    if optimizer not in ("soap", "soap_eigh"):
        raise ValueError(f"Invalid optimizer: {optimizer!r}")
    cls = SOAP if optimizer == "soap" else SOAPEigh
    if k is None:
        raise ValueError(f"Invalid k: None (expected {optimizer}'s refresh period)")
    return Contestant(optimizer, f"{cls.__name__}, k = {k}", space, defaults,
                      lambda model, hp, head: [cls(model.parameters(), lr=hp["lr"],
                                                   weight_decay=hp["weight_decay"],
                                                   precondition_frequency=k)])


def execute(job: Job) -> dict[str, Any]:
    """Run ``job`` (on one thread, as :func:`~optedu.choosing.trial.run` does) and return
    its record (what is stored)."""
    hyper = {"lr": job.lr, "weight_decay": WEIGHT_DECAY}
    result = trial.run(workloads.get(WORKLOAD), contestant(job.optimizer, job.k),
                       hyper, job.seed)
    return {"optimizer": job.optimizer, "lr": job.lr, "k": job.k, "seed": job.seed,
            "workload": WORKLOAD, "steps": result.steps,
            "evals": [[s, store.rounded(v)] for s, v in result.evals],
            "train_loss": [[s, store.rounded(v)] for s, v in result.train_loss],
            "diverged": result.diverged, "state_bytes": result.state_bytes,
            "seconds": round(result.seconds, 3)}


GRID = Grid(name="soap", chapter="SOAP",
            about="SOAP against AdamW over the same five rates, the refresh period swept at two "
                  "rates, the exact eigh refresh against the paper's power step (digits MLP, three "
                  "seeds), 78 runs.",
            minutes=2, file="soap.jsonl", job=KEY, jobs=jobs, execute=execute,
            sample=3)
read = GRID.read
