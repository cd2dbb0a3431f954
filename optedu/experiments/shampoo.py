"""Evidence for the chapter "Shampoo: Kronecker-factored preconditioning": Shampoo as
pytorch_optimizer 4.1.0 writes it (no grafting), Shampoo's direction with AdamW's step length
(Adam grafting, Anil et al., 2020), and AdamW, each over the same grid of learning rates.

``make experiments-shampoo`` stores each run as one JSON line in ``experiments/shampoo.jsonl``
as soon as it finishes, keyed ``(optimizer, lr, seed)``, resumable, with the machine, versions
and commit in ``experiments/shampoo.meta.json``. One worker process, one thread, torch's CPU
kernels capped at AVX2 (:mod:`optedu.instruments.reproducible`), so that a stored run can be
re-run exactly::

    python -m optedu.experiments shampoo

The workload is the benchmark's :data:`WORKLOAD` (:mod:`optedu.choosing.workloads`: an autoencoder
64-32-8-32-64 on the digits, 500 steps of 64 examples), under the benchmark's schedule (a 5 %
linear warmup, then a cosine to zero). Each optimizer gets :data:`RATES` (a grid of the same
size, shifted to bracket each one's best) and no weight decay, at every seed of
:data:`SEEDS`. The grafted rule is :func:`grafted_step`.
"""

from __future__ import annotations

import math
import pathlib
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

import torch

from optedu.choosing import trial, workloads
from optedu.choosing.contestants import Build, Contestant, Training, schedule_for
from optedu.instruments import store
from optedu.optim.adam import AdamW
from optedu.optim.shampoo import Shampoo

from .grid import Grid, Job, Key

__all__ = ["GRID", "KEY", "WORKLOAD", "OPTIMIZERS", "RATES", "SEEDS", "jobs", "grafted_step",
           "GraftedTraining", "contestant", "execute", "read", "finals", "tuned"]

WORKLOAD = "digits_autoencoder"
OPTIMIZERS = ("adamw", "shampoo", "shampoo_graft")
#: five log-spaced peak rates each; Shampoo's step is of order one per direction, Adam's of
#: order lr per coordinate, so Shampoo's grid sits higher (AdamW and the grafted rule, whose
#: step length is Adam's, share one)
RATES = {"adamw": (3e-3, 1e-2, 3e-2, 1e-1, 3e-1),
         "shampoo": (0.1, 0.3, 1.0, 3.0, 10.0),
         "shampoo_graft": (3e-3, 1e-2, 3e-2, 1e-1, 3e-1)}
SEEDS = (0, 1, 2)


KEY = Key("optimizer", "lr", "seed")


def jobs(stored: Sequence[dict[str, Any]] = (), folder: pathlib.Path | None = None
         ) -> list[Job]:
    return [KEY(o, lr, s) for o in OPTIMIZERS for lr in RATES[o] for s in SEEDS]


@torch.no_grad()
def grafted_step(adam: torch.optim.Optimizer, shampoo: torch.optim.Optimizer) -> None:
    r"""One step with Shampoo's direction and Adam's length, tensor by tensor (Agarwal et al.,
    2020, "grafting"; Anil et al., 2020, §4):
    :math:`\Delta = \|\Delta_{\text{Adam}}\|_F\,\Delta_{\text{Shampoo}}/\|\Delta_{\text{Shampoo}}\|_F`.

    Both optimizers hold the same parameters and read the same gradients; each takes its step
    from the same weights, which are put back before the grafted step is applied (a tensor
    whose Shampoo step is zero does not move)."""
    params = [p for g in adam.param_groups for p in g["params"] if p.grad is not None]
    start = [p.clone() for p in params]
    adam.step()
    lengths = [torch.linalg.vector_norm(p - s) for p, s in zip(params, start)]  # ‖Δ_Adam‖
    for p, s in zip(params, start):
        p.copy_(s)
    shampoo.step()
    for p, s, length in zip(params, start, lengths):
        step = p - s                                                           # Δ_Shampoo
        norm = torch.linalg.vector_norm(step)
        p.copy_(s + step * (length / norm) if norm > 0 else s)


class GraftedTraining(Training):
    """The benchmark's schedule drives Adam's rate (the step length); Shampoo's rate, which
    the grafting divides out, stays 1."""

    def step(self, t: int) -> None:
        adam, shampoo = self.optimizers
        if self.schedule is not None:
            for g, peak in zip(adam.param_groups, self.peaks[0]):
                g["lr"] = peak * self.schedule(t)
        grafted_step(adam, shampoo)


def contestant(name: str) -> Contestant:
    """``adamw``, ``shampoo`` or ``shampoo_graft`` as the benchmark's trial runs it: only
    ``lr`` is tuned, weight decay 0, every other argument at its default."""
    builds: dict[str, Build] = {
        "adamw": lambda model, hp, head: [AdamW(model.parameters(), lr=hp["lr"],
                                                weight_decay=0.0)],
        "shampoo": lambda model, hp, head: [Shampoo(model.parameters(), lr=hp["lr"])],
        "shampoo_graft": lambda model, hp, head: [
            AdamW(model.parameters(), lr=hp["lr"], weight_decay=0.0),
            Shampoo(model.parameters(), lr=1.0)],
    }
    if name not in builds:
        raise ValueError(f"Invalid optimizer: {name!r} (one of {', '.join(OPTIMIZERS)})")
    return Contestant(name, name, {"lr": (1e-4, 100.0)}, {"lr": 1e-3}, builds[name])


def execute(job: Job) -> dict[str, Any]:
    """Run ``job`` (one thread, as :func:`optedu.choosing.trial.run` does) and return its record."""
    w = workloads.get(WORKLOAD)
    schedule = None
    if job.optimizer == "shampoo_graft":
        def schedule(opts, steps):
            return GraftedTraining(opts, schedule_for(steps))
    r = trial.run(w, contestant(job.optimizer), {"lr": job.lr}, job.seed, schedule=schedule)
    return {"optimizer": job.optimizer, "lr": job.lr, "seed": job.seed,
            "workload": WORKLOAD, "steps": r.steps, "diverged": r.diverged,
            "evals": [[s, store.rounded(v)] for s, v in r.evals],
            "train_loss": [[s, store.rounded(v)] for s, v in r.train_loss],
            "state_bytes": r.state_bytes, "seconds": round(r.seconds, 3)}


def finals(records: Iterable[dict[str, Any]]) -> dict[tuple[str, float], dict[int, float]]:
    """``{(optimizer, lr): {seed: final validation MSE}}`` (``inf`` for a diverged run)."""
    out: dict[tuple[str, float], dict[int, float]] = {}
    for r in records:
        value = r["evals"][-1][1]
        out.setdefault((r["optimizer"], r["lr"]), {})[r["seed"]] = (
            math.inf if r["diverged"] or value is None else value)
    return out


def tuned(records: Sequence[dict[str, Any]], optimizer: str) -> float:
    """The rate of :data:`RATES` whose median final validation MSE over the seeds is
    lowest."""
    table = finals(records)
    return min(RATES[optimizer],
               key=lambda lr: statistics.median(table[optimizer, lr].values()))


GRID = Grid(name="shampoo", chapter="Shampoo",
            about="Shampoo, Shampoo grafted onto AdamW's step length, and AdamW, five rates each, "
                  "three seeds, on the autoencoder, 45 runs.",
            minutes=3, file="shampoo.jsonl", job=KEY, jobs=jobs, execute=execute,
            sample=3)
read = GRID.read
