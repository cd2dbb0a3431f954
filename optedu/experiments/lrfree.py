"""Evidence for the chapter "Learning-rate-free optimizers": D-Adaptation, Prodigy and DoG
against AdamW and schedule-free AdamW tuned over a grid of rates, on a small network.

``make experiments-lrfree`` stores each run as one JSON line in ``experiments/lrfree.jsonl``
as soon as it finishes, keyed ``(optimizer, schedule, lr, d0, seed)``, resumable, with the
machine, versions and commit in ``experiments/lrfree.meta.json``. One worker process, one
thread, torch's CPU kernels capped at AVX2 (:mod:`optedu.instruments.reproducible`), so that
a stored run can be re-run exactly::

    python -m optedu.experiments lrfree

The problem (:func:`digits`): a ReLU network (64-64-64-10) on :data:`N_TRAIN` digits of
scikit-learn's ``load_digits``, :data:`N_VAL` more to choose the learning rate, the rest
(517) as the test set; mini-batches of :data:`BATCH`, :data:`STEPS` steps, no weight decay
anywhere. The runs (:func:`jobs`), seeds :data:`SEEDS`:

* ``adamw`` at each rate of :data:`RATES`, constant and with a cosine decay to zero;
* ``sf_adamw`` (schedule-free AdamW, Defazio et al., 2024) at the same rates, with its own
  linear warmup of :data:`WARMUP` steps;
* ``prodigy`` (Mishchenko & Defazio, 2024) at ``lr=1`` with each schedule of
  :data:`SCHEDULES`, and ``prodigy_sg`` (``safeguard_warmup=True``, as its authors advise
  with warmup) with the two warmup schedules;
* ``prodigy_bc`` and ``dadapt_adam_bc``: ``use_bias_correction=True`` (off by default),
  constant;
* ``dadapt_adam`` (Defazio & Mishchenko, 2023) and ``dadapt_sgd`` with momentum 0.9, each
  with every schedule of :data:`SCHEDULES` (its authors advise the schedule one would use
  anyway, warmup included); ``dog`` and ``ldog`` (Ivgi et al., 2023), whose polynomial-decay average
  (gamma 8) is evaluated beside the last iterate;
* the initial estimate swept over :data:`D0S` (six orders of magnitude) for ``prodigy``,
  ``dadapt_adam`` (their ``d0``) and ``dog`` (its ``reps_rel``), constant schedule.

The rules are optedu's (:class:`optedu.DAdaptSGD`, :class:`optedu.DAdaptAdam`,
:class:`optedu.Prodigy`, :class:`optedu.DoG`, :class:`optedu.LDoG`), bit-identical to the
authors' packages (dadaptation, prodigyopt, dog-optimizer); the average is dog-optimizer's
``PolynomialDecayAverager`` (Shamir & Zhang, 2013).

After each of the first :data:`EARLY` steps and then every :data:`EVERY` steps a run records
the mean training loss since the last record, the
validation loss, and the optimizer's distance estimate ``d`` with the step size it gives
(``lr_eff``: ``d * lr`` times the schedule for the Adam-type rules, the rate of the
Adam-type rule it equals; DoG's ``eta``). At the end: loss and accuracy on the three splits.
"""

from __future__ import annotations

import math
import pathlib
import statistics
import time
from collections.abc import Sequence
from typing import Any

import torch
from dog import PolynomialDecayAverager

from optedu.choosing import workloads
from optedu.optim.adam import AdamW
from optedu.optim.dadapt_adam import DAdaptAdam
from optedu.optim.dadapt_sgd import DAdaptSGD
from optedu.optim.dog import DoG, LDoG
from optedu.optim.prodigy import Prodigy
from optedu.optim.schedule_free import AdamWScheduleFree

from .grid import Grid, Job, Key

__all__ = ["GRID", "KEY", "OPTIMIZERS", "SCHEDULES", "RATES", "D0S", "SEEDS", "STEPS", "BATCH",
           "WARMUP", "EVERY", "EARLY", "N_TRAIN", "N_VAL", "Data", "digits", "network",
           "multiplier", "optimizer", "estimate", "train", "execute", "jobs", "read", "select",
           "tuned"]

N_TRAIN, N_VAL = 1024, 256
BATCH = 64
STEPS = 1000
WARMUP = 50
EVERY = 20
EARLY = 10
HIDDEN = 64
SEEDS = (0, 1, 2, 3, 4)
#: AdamW's and schedule-free AdamW's grid: six rates, half a decade apart
RATES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)
#: the initial distance estimates swept: six orders of magnitude (the default 1e-6 included)
D0S = (1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2)
D0 = 1e-6
OPTIMIZERS = ("adamw", "sf_adamw", "prodigy", "prodigy_sg", "prodigy_bc", "dadapt_adam",
              "dadapt_adam_bc", "dadapt_sgd", "dog", "ldog")
SCHEDULES = ("constant", "cosine", "warmup_constant", "warmup_cosine")
_SWEPT = ("prodigy", "dadapt_adam", "dog")
_TUNED = ("adamw", "sf_adamw")


def _check(job: Job) -> None:
    """Refuse a bad run: the optimizer, the schedule on its ``lr``, the ``lr`` (1 for the
    rules that estimate the step), the initial estimate ``d0`` (DoG's ``reps_rel``; 0 for the
    tuned rules)."""
    if job.optimizer not in OPTIMIZERS:
        raise ValueError(f"Invalid optimizer: {job.optimizer!r}")
    if job.schedule not in SCHEDULES:
        raise ValueError(f"Invalid schedule: {job.schedule!r}")
    if not job.lr > 0:
        raise ValueError(f"Invalid lr: {job.lr!r}")
    if (job.optimizer in _TUNED) != (job.d0 == 0) or job.d0 < 0:
        raise ValueError(f"Invalid d0: {job.d0!r} for {job.optimizer!r}")


#: one run: the optimizer, the schedule, the ``lr``, the initial estimate ``d0``, the seed
KEY = Key("optimizer", "schedule", "lr", "d0", "seed", check=_check)


def jobs(stored: Sequence[dict[str, Any]] = (), folder: pathlib.Path | None = None
         ) -> list[Job]:
    """Every run, in the order they run."""
    out = []
    for seed in SEEDS:
        for lr in RATES:
            out += [KEY("adamw", s, lr, 0.0, seed) for s in ("constant", "cosine")]
            out.append(KEY("sf_adamw", "warmup_constant", lr, 0.0, seed))
        out += [KEY("prodigy", s, 1.0, D0, seed) for s in SCHEDULES]
        out += [KEY("prodigy_sg", s, 1.0, D0, seed) for s in SCHEDULES if "warmup" in s]
        out += [KEY(name, s, 1.0, D0, seed) for name in ("dadapt_adam", "dadapt_sgd")
                for s in SCHEDULES]
        out += [KEY(name, "constant", 1.0, D0, seed)
                for name in ("prodigy_bc", "dadapt_adam_bc", "ldog")]
        for name in _SWEPT:
            out += [KEY(name, "constant", 1.0, d0, seed) for d0 in D0S
                    if not (name != "dog" and d0 == D0)]
    return out


Data = workloads.Splits  # train, validation and test tensors


def digits() -> Data:
    """The digits, shuffled once: :data:`N_TRAIN` images train, :data:`N_VAL` validate, the
    rest test (:func:`optedu.choosing.workloads.digit_splits`)."""
    return workloads.digit_splits(N_TRAIN, N_VAL)


def network(seed: int) -> torch.nn.Sequential:
    """The ReLU network 64-64-64-10, torch's default initialisation from ``seed``."""
    return workloads.relu_mlp(seed, HIDDEN)


def multiplier(schedule: str, t: int, steps: int = STEPS, warmup: int = WARMUP) -> float:
    """The factor on ``lr`` at step ``t`` (from 0): a linear warmup over ``warmup`` steps
    for the ``warmup_*`` schedules, then constant or a cosine decay to zero at ``steps``."""
    if schedule not in SCHEDULES:
        raise ValueError(f"Invalid schedule: {schedule!r}")
    if not 0 <= t < steps:
        raise ValueError(f"Invalid t: {t!r} (0 to {steps - 1})")
    w = warmup if schedule.startswith("warmup") else 0
    if t < w:
        return (t + 1) / w
    if schedule.endswith("cosine"):
        return 0.5 * (1 + math.cos(math.pi * (t - w) / (steps - w)))
    return 1.0


def optimizer(job: Job, params) -> torch.optim.Optimizer:
    """``job``'s optimizer at its authors' defaults except ``lr`` and ``d0``; schedule-free
    AdamW warms up by itself (its schedule is applied through ``warmup_steps``)."""
    params = list(params)
    name = job.optimizer
    if name == "adamw":
        return AdamW(params, lr=job.lr, weight_decay=0.0)
    if name == "sf_adamw":
        return AdamWScheduleFree(params, lr=job.lr, warmup_steps=WARMUP)
    if name.startswith("prodigy"):
        return Prodigy(params, lr=job.lr, d0=job.d0, safeguard_warmup=name == "prodigy_sg",
                       use_bias_correction=name == "prodigy_bc")
    if name.startswith("dadapt_adam"):
        return DAdaptAdam(params, lr=job.lr, d0=job.d0,
                          use_bias_correction=name == "dadapt_adam_bc")
    if name == "dadapt_sgd":
        return DAdaptSGD(params, lr=job.lr, d0=job.d0, momentum=0.9)
    return {"dog": DoG, "ldog": LDoG}[name](params, lr=job.lr, reps_rel=job.d0)


def estimate(opt: torch.optim.Optimizer) -> tuple[float, float]:
    """The optimizer's distance estimate ``d`` and the step size it gives: ``d * lr`` for
    D-Adaptation's and Prodigy's Adam (the Adam rate it equals), ``d * lr / |g_0|`` for
    D-Adaptation's SGD, DoG's ``eta = lr * rbar / sqrt(G)`` (for LDoG: the norm of the
    layers' ``rbar`` and the largest ``eta``); ``(nan, lr)`` for the others."""
    group = opt.param_groups[0]
    if "rbar" in group:
        rbar = group["rbar"]
        return float(rbar.norm()), float(max(float(e) for e in group["eta"]))
    if "d" in group:
        d, lr = float(group["d"]), float(group["lr"])
        if "g0_norm" in group:
            return d, d * lr / float(group["g0_norm"])
        return d, d * lr
    return math.nan, float(group["lr"])


def _evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    with torch.no_grad():
        logits = model(x)
        return (torch.nn.functional.cross_entropy(logits, y).item(),
                (logits.argmax(1) == y).float().mean().item())


def _round(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(f"{x:.6g}")


def train(job: Job, data: Data | None = None, steps: int = STEPS) -> dict[str, Any]:
    """Train ``job``'s network for ``steps`` steps (the schedule spans :data:`STEPS`);
    returns the curves, the final measurements and whether the loss became non-finite (the
    run stops there)."""
    data = digits() if data is None else data
    model = network(job.seed)
    opt = optimizer(job, model.parameters())
    base = [g["lr"] for g in opt.param_groups]
    averager = PolynomialDecayAverager(model, gamma=8.0) if "dog" in job.optimizer else None
    # schedule-free (sf_adamw) evaluates at its averaged point, trains at its own
    sf = opt if isinstance(opt, AdamWScheduleFree) else None
    if sf is not None:
        sf.train()
    gen = torch.Generator().manual_seed(job.seed)
    order = torch.empty(0, dtype=torch.long)
    curve: dict[str, list] = {"step": [], "train_loss": [], "val_loss": [], "d": [],
                              "lr_eff": []}
    window: list[float] = []
    diverged = False
    for t in range(steps):
        if job.optimizer != "sf_adamw":
            for group, lr in zip(opt.param_groups, base):
                group["lr"] = lr * multiplier(job.schedule, t)
        if len(order) < BATCH:
            order = torch.randperm(N_TRAIN, generator=gen)
        idx, order = order[:BATCH], order[BATCH:]
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(data.train_x[idx]), data.train_y[idx])
        if not math.isfinite(loss.item()):
            diverged = True
            break
        loss.backward()
        opt.step()
        if averager is not None:
            averager.step()
        window.append(loss.item())
        if t + 1 <= EARLY or (t + 1) % EVERY == 0:
            if sf is not None:
                sf.eval()
            d, lr_eff = estimate(opt)
            curve["step"].append(t + 1)
            curve["train_loss"].append(_round(statistics.fmean(window)))
            curve["val_loss"].append(_round(_evaluate(model, data.val_x, data.val_y)[0]))
            curve["d"].append(_round(d))
            curve["lr_eff"].append(_round(lr_eff))
            if sf is not None:
                sf.train()
            window = []
    out: dict[str, Any] = {"diverged": diverged, "curve": curve}
    if sf is not None:
        sf.eval()
    models = {"": model} if averager is None else {"": model, "avg_": averager.averaged_model}
    for prefix, m in models.items():
        for split in ("train", "val", "test"):
            value, acc = _evaluate(m, getattr(data, f"{split}_x"), getattr(data, f"{split}_y"))
            out[f"{prefix}{split}_loss"] = _round(value)
            out[f"{prefix}{split}_acc"] = _round(acc) if math.isfinite(value) else None
    if job.optimizer == "ldog":
        out["d_layers"] = [_round(float(r)) for r in opt.param_groups[0]["rbar"]]
    return out


def execute(job: Job, data: Data | None = None) -> dict[str, Any]:
    """Train ``job``; the record that is stored."""
    start = time.monotonic()
    found = train(job, data)
    return {**job.asdict(), **found, "seconds": round(time.monotonic() - start, 3)}


_cache: list[Data] = []


def _work(job: Job) -> dict[str, Any]:
    torch.set_num_threads(1)
    if not _cache:
        _cache.append(digits())
    return execute(job, _cache[0])


# --- reading the stored runs -------------------------------------------------------------

def select(records: Sequence[dict[str, Any]], optimizer: str, schedule: str = "constant",
           lr: float | None = None, d0: float | None = None) -> list[dict[str, Any]]:
    """The runs of one setting, seeds in order; ``lr`` and ``d0`` default to 1 and
    :data:`D0` for the rules that estimate the step."""
    tuned_rule = optimizer in _TUNED
    lr = (None if tuned_rule else 1.0) if lr is None else lr
    d0 = (0.0 if tuned_rule else D0) if d0 is None else d0
    if lr is None:
        raise ValueError(f"Invalid lr: None for {optimizer!r} (it has a grid)")
    runs = sorted((r for r in records if (r["optimizer"], r["schedule"], r["lr"], r["d0"])
                   == (optimizer, schedule, lr, d0)), key=lambda r: r["seed"])
    if not runs:
        raise ValueError(f"Invalid setting: no runs of {(optimizer, schedule, lr, d0)!r}")
    return runs


def _score(values: Sequence[float | None]) -> float:
    """Mean over seeds; infinity if a seed diverged."""
    if not values:
        raise ValueError("Invalid values: none")
    finite = [v for v in values if v is not None]
    return math.inf if len(finite) < len(values) else statistics.fmean(finite)


def tuned(records: Sequence[dict[str, Any]], optimizer: str, schedule: str) -> float:
    """The rate of the grid with the lowest final validation loss (mean over seeds) for
    ``(optimizer, schedule)``; the smaller rate on a tie."""
    by: dict[float, list[float | None]] = {}
    for r in records:
        if (r["optimizer"], r["schedule"]) == (optimizer, schedule):
            by.setdefault(r["lr"], []).append(None if r["diverged"] else r["val_loss"])
    if not by:
        raise ValueError(f"Invalid setting: no runs of {(optimizer, schedule)!r}")
    return min(by, key=lambda lr: (_score(by[lr]), lr))


GRID = Grid(name="lrfree", chapter="Learning-rate-free optimizers",
            about="D-Adaptation, Prodigy, DoG and LDoG against AdamW and schedule-free AdamW tuned "
                  "over six rates (five seeds) on a small digits network; schedules, bias "
                  "correction and the initial estimate d0 over six orders of magnitude, 270 runs.",
            minutes=6, file="lrfree.jsonl", job=KEY, jobs=jobs, execute=_work,
            sample=7)
read = GRID.read
