"""Evidence for the chapter "Variance reduction and caution: MARS and cautious updates":
MARS (its AdamW and Lion forms) and cautious AdamW against AdamW on the digits MLP, each
over a learning-rate grid of the same size, three seeds at every rate.

``make experiments-mars`` stores each run as one JSON line in ``experiments/mars.jsonl`` as
soon as it finishes, keyed ``(contestant, lr, seed)``, resumable, with the machine, versions
and commit in ``experiments/mars.meta.json``. One worker process, one thread, torch's CPU
kernels pinned (:mod:`optedu.instruments.reproducible`), so that a stored run can be re-run
exactly::

    python -m optedu.experiments mars

All run under the benchmark's warmup and cosine (:mod:`optedu.choosing.contestants`), with
:math:`\\beta_1 = 0.9` and decoupled weight decay 0.01 on every tensor. MARS is therefore not
at its authors' defaults: its :math:`\\beta_1` is 0.9 (theirs 0.95), and its 1-D tensors (the
biases) take its plain AdamW at the same rate (``lr_1d = lr``; theirs ``3e-3``) with
``betas_1d = (0.9, 0.99)`` (theirs ``(0.9, 0.95)``) and ``weight_decay_1d = 0.01`` (theirs
0.1). It keeps the rest of theirs (:math:`\\beta_2 = 0.99`, :math:`\\gamma = 0.025`,
:math:`\\epsilon = 10^{-8}` after the bias correction); the AdamW rules keep torch's
:math:`\\beta_2 = 0.999`. The Lion form's grid is the AdamW grid divided by 10 (a sign step
moves every coordinate by the rate).
"""

from __future__ import annotations


from optedu.choosing import contestants
from optedu.optim.cautious import CautiousAdamW
from optedu.optim.mars import MARS

from . import _race as race
from ._race import Race
from .grid import Grid

__all__ = ["GRID", "KEY", "WORKLOAD", "GRIDS", "SEEDS", "CONTESTANTS", "jobs", "execute",
           "read", "table", "best"]

WORKLOAD = "digits_mlp"
#: the learning rates tried: the same grid size for each rule
RATES = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2)
GRIDS = {"adamw": RATES, "mars": RATES, "cautious_adamw": RATES,
         "mars_lion": tuple(r / 10 for r in RATES)}
SEEDS = (0, 1, 2)
HYPER = {"weight_decay": 1e-2, "one_minus_beta1": 0.1}
_SPACE = {"lr": (1e-5, 1e-1), "weight_decay": (1e-3, 1.0), "one_minus_beta1": (0.02, 0.3)}


def _mars(mars_type: str):
    return lambda model, hp, head: [MARS(
        model.parameters(), lr=hp["lr"], lr_1d=hp["lr"], mars_type=mars_type,
        betas=(1 - hp["one_minus_beta1"], 0.99), betas_1d=(1 - hp["one_minus_beta1"], 0.99),
        weight_decay=hp["weight_decay"], weight_decay_1d=hp["weight_decay"])]


CONTESTANTS = {
    "mars": contestants.Contestant(
        "mars", "MARS, AdamW form (beta2 0.99, gamma 0.025; lr_1d = lr)", _SPACE,
        {"lr": 3e-3, **HYPER}, _mars("mars-adamw"), source="Yuan et al. 2025"),
    "mars_lion": contestants.Contestant(
        "mars_lion", "MARS, Lion form", _SPACE, {"lr": 3e-4, **HYPER}, _mars("mars-lion"),
        source="Yuan et al. 2025"),
    "cautious_adamw": contestants.Contestant(
        "cautious_adamw", "cautious AdamW (C-AdamW, torch's AdamW defaults)", _SPACE,
        {"lr": 1e-3, **HYPER},
        lambda model, hp, head: [CautiousAdamW(model.parameters(), lr=hp["lr"],
                                               betas=(1 - hp["one_minus_beta1"], 0.999),
                                               weight_decay=hp["weight_decay"])],
        source="Liang et al. 2024"),
}

RACE = Race(WORKLOAD, GRIDS, SEEDS, HYPER, CONTESTANTS)
KEY, jobs, execute, table, best = race.KEY, RACE.jobs, RACE.execute, RACE.table, RACE.best


GRID = Grid(name="mars", chapter="Variance reduction and caution",
            about="MARS (AdamW and Lion forms) and cautious AdamW against AdamW on the digits MLP, "
                  "five rates each, three seeds, 60 runs.",
            minutes=1, file="mars.jsonl", job=KEY, jobs=jobs, execute=execute,
            sample=4)
read = GRID.read
