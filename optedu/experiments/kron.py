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


from optedu.choosing import contestants
from optedu.optim.kron import Kron

from . import _race as race
from ._race import Race
from .grid import Grid

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

RACE = Race(WORKLOAD, GRIDS, SEEDS, HYPER, {"kron": KRON})
KEY, jobs, execute, table, best = race.KEY, RACE.jobs, RACE.execute, RACE.table, RACE.best


GRID = Grid(name="kron", chapter="PSGD: fitting a preconditioner",
            about="PSGD-Kron against AdamW on the digits MLP, four rates each, three seeds, 24 "
                  "runs.",
            minutes=1, file="kron.jsonl", job=KEY, jobs=jobs, execute=execute,
            sample=4)
read = GRID.read
