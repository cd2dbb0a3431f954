"""Evidence for the chapter "Two momenta: AdEMAMix, and ADOPT's fix of Adam's convergence":
ADOPT, LaProp and AdEMAMix (with and without its warmups) against AdamW on the digits MLP,
each over a learning-rate grid of the same size, three seeds at every rate.

``make experiments-two-momenta`` stores each run as one JSON line in
``experiments/two_momenta.jsonl`` as soon as it finishes, keyed ``(contestant, lr, seed)``,
resumable, with the machine, versions and commit in ``experiments/two_momenta.meta.json``.
One worker process, one thread, torch's CPU kernels pinned
(:mod:`optedu.instruments.reproducible`), so that a stored run can be re-run exactly::

    python -m optedu.experiments two_momenta

All run under the benchmark's warmup and cosine (:mod:`optedu.choosing.contestants`), with
:math:`\\beta_1 = 0.9` and decoupled weight decay 0.01; every rule keeps its package's other
defaults (ADOPT :math:`\\beta_2 = 0.9999`, AdEMAMix :math:`\\beta_3 = 0.9999`,
:math:`\\alpha = 5`). ``ademamix`` warms :math:`\\alpha` and :math:`\\beta_3` up over the
whole budget (the paper's :math:`T_{\\alpha,\\beta_3}` = the run's length);
``ademamix_nowarmup`` does not.
"""

from __future__ import annotations


from optedu.choosing import contestants, workloads
from optedu.optim.ademamix import AdEMAMix
from optedu.optim.adopt import ADOPT
from optedu.optim.laprop import LaProp

from . import _race as race
from ._race import Race
from .grid import Grid

__all__ = ["GRID", "KEY", "WORKLOAD", "GRIDS", "SEEDS", "CONTESTANTS", "jobs", "execute",
           "read", "table", "best"]

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

RACE = Race(WORKLOAD, GRIDS, SEEDS, HYPER, CONTESTANTS)
KEY, jobs, execute, table, best = race.KEY, RACE.jobs, RACE.execute, RACE.table, RACE.best


GRID = Grid(name="two_momenta", chapter="Two momenta",
            about="ADOPT, LaProp and AdEMAMix (with and without its warmups) against AdamW on the "
                  "digits MLP, nine rates each, three seeds, 135 runs.",
            minutes=1, file="two_momenta.jsonl", job=KEY, jobs=jobs, execute=execute,
            sample=3)
read = GRID.read
