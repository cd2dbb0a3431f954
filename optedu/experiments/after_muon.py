"""Evidence for the chapter "After Muon": Muon, Muon with the Polar Express coefficients and
NorMuon against AdamW tuned alike.

``make experiments-after-muon`` stores each run as one JSON line in
``experiments/after_muon.jsonl`` as soon as it finishes, keyed ``(optimizer, lr, seed)``,
resumable, with the machine, versions and commit in ``experiments/after_muon.meta.json``. One
worker process, one thread, torch's CPU kernels pinned (:mod:`optedu.instruments.reproducible`),
so that a stored run can be re-run exactly::

    python -m optedu.experiments after_muon

The workload is :data:`WORKLOAD` of the benchmark (:mod:`optedu.choosing.workloads`), under its schedule (a
linear warmup over 5 % of the steps, then a cosine to zero) and step budget. Every optimizer
runs over the same learning-rate grid :data:`RATES` and seeds :data:`SEEDS`, weight decay
:data:`WEIGHT_DECAY`: tuned alike, one knob each. The Muon family updates the hidden matrices
(:func:`optedu.training.muon_groups.muon_adamw_groups`) and AdamW the rest, at the same rate:

* ``adamw``: :class:`optedu.AdamW`, betas (0.9, 0.999);
* ``muon``: :class:`optedu.optim.muon.Muon` with ``adjust_lr_fn="match_rms_adamw"``
  (Moonlight's RMS matching, which makes one rate fit both optimizers), Keller Jordan's
  coefficients, 5 steps;
* ``muon_pe``: the same with :data:`optedu.optim.muon.POLAR_EXPRESS`, 5 steps;
* ``normuon``: :class:`optedu.optim.normuon.NorMuon`, ``update_scale="match_rms"`` (RMS
  0.2, the paper's Algorithm 1), its AdamW groups at betas (0.9, 0.999), eps 1e-8.

References: J. Liu et al., *Muon is scalable for LLM training*, 2025; Z. Li et al.,
*NorMuon*, 2025; N. Amsel et al., *The Polar Express*, 2025.
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
from optedu.optim.muon import NS_COEFFICIENTS, POLAR_EXPRESS, Muon
from optedu.optim.normuon import NorMuon
from optedu.training.muon_groups import muon_adamw_groups

from .grid import Grid, Job, Key

__all__ = ["GRID", "KEY", "WORKLOAD", "RATES", "SEEDS", "WEIGHT_DECAY", "OPTIMIZERS", "jobs",
           "contestant", "execute"]

WORKLOAD = "digits_mlp"
#: the learning-rate grid, the same for every optimizer: half-decade steps, refined (2e-3, 5e-3,
#: 7e-3) around every optimizer's best rate, so that the Muon family's sharp optimum, which
#: falls between 3e-3 and 1e-2, is not missed (on the half-decade grid alone Muon lost to AdamW
#: on every seed)
RATES = (1e-3, 2e-3, 3e-3, 5e-3, 7e-3, 1e-2, 3e-2)
SEEDS = (0, 1, 2)
WEIGHT_DECAY = 1e-2
OPTIMIZERS = ("adamw", "muon", "muon_pe", "normuon")

KEY = Key("optimizer", "lr", "seed")


def jobs(stored: Sequence[dict[str, Any]] = (), folder: pathlib.Path | None = None
         ) -> list[Job]:
    """Every optimizer at every rate and seed."""
    return [KEY(o, lr, s) for o in OPTIMIZERS for lr in RATES for s in SEEDS]


def _flat(groups: list[dict[str, Any]]) -> list[torch.Tensor]:
    return [p for g in groups for p in g["params"]]


def contestant(optimizer: str) -> Contestant:
    """The contestant of a job (not registered: the benchmark's list is unchanged)."""
    space = {"lr": (1e-4, 1e-1), "weight_decay": (1e-4, 1e-1)}
    defaults = {"lr": 3e-3, "weight_decay": WEIGHT_DECAY}
    if optimizer == "adamw":
        def build(model, hp, head):
            return [AdamW(model.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"])]
    elif optimizer in ("muon", "muon_pe"):
        coeffs = NS_COEFFICIENTS if optimizer == "muon" else POLAR_EXPRESS

        def build(model, hp, head):
            hidden, rest = muon_adamw_groups(model, head)
            return [Muon(hidden, lr=hp["lr"], weight_decay=hp["weight_decay"],
                         ns_coefficients=coeffs, adjust_lr_fn="match_rms_adamw"),
                    AdamW(rest, lr=hp["lr"], weight_decay=hp["weight_decay"])]
    elif optimizer == "normuon":
        def build(model, hp, head):
            hidden, rest = muon_adamw_groups(model, head)
            return [NorMuon([dict(params=_flat(hidden), use_muon=True),
                             dict(params=_flat(rest), use_muon=False, betas=(0.9, 0.999),
                                  eps=1e-8)],
                            lr=hp["lr"], weight_decay=hp["weight_decay"], adamw_lr=hp["lr"],
                            adamw_wd=hp["weight_decay"], update_scale="match_rms")]
    else:
        raise ValueError(f"Invalid optimizer: {optimizer!r}")
    return Contestant(optimizer, optimizer, space, defaults, build)


def execute(job: Job) -> dict[str, Any]:
    """Run ``job`` (on one thread, as :func:`~optedu.choosing.trial.run` does) and return
    its record (what is stored)."""
    hyper = {"lr": job.lr, "weight_decay": WEIGHT_DECAY}
    result = trial.run(workloads.get(WORKLOAD), contestant(job.optimizer), hyper, job.seed)
    return {"optimizer": job.optimizer, "lr": job.lr, "seed": job.seed,
            "workload": WORKLOAD, "steps": result.steps,
            "evals": [[s, store.rounded(v)] for s, v in result.evals],
            "train_loss": [[s, store.rounded(v)] for s, v in result.train_loss],
            "diverged": result.diverged, "state_bytes": result.state_bytes,
            "seconds": round(result.seconds, 3)}


GRID = Grid(name="after_muon", chapter="After Muon",
            about="AdamW, Muon, Muon with Polar Express and NorMuon over the same seven rates "
                  "(digits MLP, three seeds), 84 runs.",
            minutes=10, file="after_muon.jsonl", job=KEY, jobs=jobs, execute=execute,
            sample=4)
read = GRID.read
