"""Evidence for the chapter "Training in less memory": AdamW, GaLore, APOLLO, APOLLO-Mini and
Adam-mini tuned alike on the benchmark's ``digits_mlp`` (the same learning-rate grid, the same
warmup and cosine, the same 200 steps), the best rate of seed 0 re-run at seeds 1 and 2.

``make experiments-low-memory`` stores each run as one JSON line in
``experiments/low_memory.jsonl`` as soon as it finishes, keyed ``(contestant, lr, seed)``,
resumable, with the machine, versions and commit in ``experiments/low_memory.meta.json``; one
worker, one thread, torch's CPU kernels pinned (:mod:`optedu.experiments.runner`)::

    python -m optedu.experiments low_memory

The low-rank rules project the two hidden matrices (``fc1`` 128×64, ``fc2`` 128×128) at rank
:data:`RANK`; the head and the biases are plain AdamW in the same optimizer (the papers'
practice: the output layer keeps full state). Adam-mini is told the model's names (``fc``: an
MLP, one second moment per output neuron; ``head``: the output layer, per class).

References: J. Zhao et al., *GaLore*, ICML 2024; H. Zhu et al., *APOLLO*, MLSys 2025;
Y. Zhang et al., *Adam-mini*, ICLR 2025.
"""

from __future__ import annotations

import math
import pathlib
import time
from collections.abc import Iterable
from typing import Any

import torch

from optedu.choosing import contestants, workloads
from optedu.lr_scheduler.schedules import linear_warmup_cosine
from optedu.optim.adam_mini import AdamMini
from optedu.optim.apollo import APOLLO
from optedu.optim.galore import GaLoreAdamW

from .grid import Grid, Job, Key, timed

__all__ = ["GRID", "KEY", "WORKLOAD", "CONTESTANTS", "LRS", "SEEDS", "RANK", "jobs", "build",
           "execute", "read", "best_lr"]

WORKLOAD = "digits_mlp"
CONTESTANTS = ("adamw", "galore", "apollo", "apollo_mini", "adam_mini")
#: one grid for every contestant (five log-spaced rates, a factor √10 apart)
LRS = (1e-3, 3.16e-3, 1e-2, 3.16e-2, 1e-1)
SEEDS = (0, 1, 2)
RANK = 32
WEIGHT_DECAY = 0.0
EVAL_EVERY = 50

def best_lr(records: Iterable[dict[str, Any]], contestant: str) -> float | None:
    """The rate of ``contestant``'s lowest final validation loss at seed 0 (``None`` until
    the whole seed-0 grid of it is stored); a diverged run counts as infinite."""
    finals = {r["lr"]: r["final"] for r in records
              if r["contestant"] == contestant and r["seed"] == 0}
    if set(finals) != set(LRS):
        return None
    return min(LRS, key=lambda lr: finals[lr])


KEY = Key("contestant", "lr", "seed")


def jobs(stored: Iterable[dict[str, Any]] = (), folder: pathlib.Path | None = None
         ) -> list[Job]:
    """The seed-0 grid, then seeds 1 and 2 at each contestant's best rate (once known from
    the ``stored`` records)."""
    records = list(stored)
    out = [KEY(c, lr, 0) for c in CONTESTANTS for lr in LRS]
    for c in CONTESTANTS:
        lr = best_lr(records, c)
        if lr is not None:
            out += [KEY(c, lr, s) for s in SEEDS[1:]]
    return out


def build(contestant: str, model: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
    """The optimizer ``contestant`` for the MLP ``model`` (named ``fc1``, ``fc2``, ``head``)."""
    if contestant not in CONTESTANTS:
        raise ValueError(f"Invalid contestant: {contestant!r}")
    named = dict(model.named_parameters())
    hidden = [named["fc1.weight"], named["fc2.weight"]]
    rest = [p for n, p in named.items() if n not in ("fc1.weight", "fc2.weight")]
    if contestant == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=WEIGHT_DECAY)
    if contestant == "galore":
        low = {"rank": RANK, "update_proj_gap": 50, "scale": 0.25, "proj_type": "std"}
        return GaLoreAdamW([{"params": hidden, **low}, {"params": rest}], lr=lr,
                           weight_decay=WEIGHT_DECAY)
    if contestant in ("apollo", "apollo_mini"):
        mini = contestant == "apollo_mini"
        low = {"rank": 1 if mini else RANK, "proj": "random",
               "scale_type": "tensor" if mini else "channel", "update_proj_gap": 50,
               "scale": 128.0 if mini else 1.0, "proj_type": "std"}
        return APOLLO([{"params": hidden, **low}, {"params": rest}], lr=lr,
                      weight_decay=WEIGHT_DECAY)
    opt = AdamMini(model.named_parameters(), lr=lr, weight_decay=WEIGHT_DECAY,
                   dim=128, n_heads=1)
    opt.mlp_names.add("fc")              # one second moment per output neuron
    opt.output_names.add("head")         # and per class of the output layer
    return opt


@timed
def execute(job: Job) -> dict[str, Any]:
    """Train the workload's model from ``job.seed`` and return its record."""
    work = workloads.WORKLOADS[WORKLOAD]
    model = work.model(job.seed)
    opt = build(job.contestant, model, job.lr)
    steps = work.steps
    warm = max(1, round(contestants.WARMUP_FRACTION * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: linear_warmup_cosine(s, warmup_steps=warm, total_steps=steps))
    batches = work.batches(job.seed)
    evals, final = [], math.inf
    for t in range(steps):
        x, y = next(batches)
        loss = work.loss(model, x, y)
        if not torch.isfinite(loss):
            evals.append((t, math.inf))
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if (t + 1) % EVAL_EVERY == 0:
            value = work.evaluate(model)
            evals.append((t + 1, value if math.isfinite(value) else math.inf))
    else:
        final = evals[-1][1]
    return {"contestant": job.contestant, "lr": job.lr, "seed": job.seed,
            "workload": WORKLOAD, "final": final, "evals": evals}


GRID = Grid(name="low_memory", chapter="Training in less memory",
            about="AdamW, GaLore, APOLLO, APOLLO-Mini and Adam-mini on the digits MLP, five rates "
                  "each at seed 0, then seeds 1 and 2 at each one's best rate, 35 runs.",
            minutes=1, file="low_memory.jsonl", job=KEY, jobs=jobs, execute=execute,
            sample=4)
read = GRID.read
