"""Evidence for the chapter "Learning rates that transfer across width": Adam's best learning
rate against the width of an MLP, in the standard parametrisation and under µP.

``make experiments-mup`` stores each run as one JSON line in ``experiments/mup.jsonl`` as
soon as it finishes, keyed ``(param, steps, width, log10_lr, seed)``, resumable, with the machine,
versions and commit in ``experiments/mup.meta.json``. One worker process, one thread, torch's
CPU kernels capped at AVX2 (:mod:`optedu.instruments.reproducible`), so that a stored run can
be re-run exactly::

    python -m optedu.experiments mup

The model is the benchmark's digits MLP (:func:`optedu.choosing.workloads.mlp`: 64 → n → n → 10, ReLU) with
its hidden width n in :data:`WIDTHS`, trained by Adam for each budget of :data:`BUDGETS`
steps (batches of 64, the ``digits_mlp`` workload's data and order) at each peak rate of
:data:`LOG10_LRS`, with a linear warmup over 5 % of the steps and a cosine to zero, at the
seeds :data:`SEEDS`. The short budget (about two epochs) stops while the training loss is
still well above zero; the long one (about nine) lets the wider models fit the training set
almost exactly. Two parametrisations (:data:`PARAMS`):

* ``"sp"``: PyTorch's defaults, one learning rate for every tensor;
* ``"mup"``: µP with base width :data:`BASE` (:mod:`optedu.training.mup`): the readout a
  :class:`~optedu.training.mup.MuReadout`, the hidden weight's rate divided by
  :math:`m = n / n_0`. At the base width the two are the same run, bit for bit.

What a run stores: the training loss on the whole training split at the end (what the grid
ranks rates by, as Yang et al. do) and every quarter of the budget, and the validation
loss at the end. A run whose loss turns non-finite stops and stores ``None``.

Reference: G. Yang et al., *Tensor Programs V: Tuning Large Neural Networks via Zero-Shot
Hyperparameter Transfer*, NeurIPS 2021.
"""

from __future__ import annotations

import functools
import math
import pathlib
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from optedu.choosing import contestants, workloads
from optedu.instruments import store
from optedu.optim.adam import Adam
from optedu.training import mup

from .grid import Grid, Job, Key, timed

__all__ = ["GRID", "KEY", "PARAMS", "WIDTHS", "BASE", "LOG10_LRS", "SEEDS", "BUDGETS",
           "WORKLOAD", "jobs", "make_model", "sizes", "optimizer", "train", "execute", "read",
           "final_losses", "optimum", "best_rates"]

PARAMS = ("sp", "mup")
WIDTHS = (64, 128, 256, 512, 1024, 2048)
#: the base width of µP, where it coincides with the standard parametrisation
BASE = 64
#: the peak learning rates, half a decade apart
LOG10_LRS = (-3.5, -3.0, -2.5, -2.0, -1.5, -1.0, -0.5)
SEEDS = (0, 1, 2)
#: the step budgets: short (the training loss still well above 0) and long
BUDGETS = (50, 200)
WORKLOAD = "digits_mlp"

KEY = Key("param", "steps", "width", "log10_lr", "seed")


def jobs(stored: Sequence[dict[str, Any]] = (), folder: pathlib.Path | None = None
         ) -> list[Job]:
    """Every run, the short budget first, the narrow widths first."""
    return [KEY(p, b, w, lr, s) for b in BUDGETS for w in WIDTHS for p in PARAMS
            for lr in LOG10_LRS for s in SEEDS]


def _check(param: str, width: int) -> None:
    if param not in PARAMS + ("mup-sp-readout",):
        raise ValueError(f"Invalid param: {param!r}")
    if not isinstance(width, int) or width < 1:
        raise ValueError(f"Invalid width: {width}")


def sizes(width: int) -> dict[str, tuple[int, ...]]:
    """The MLP's parameter shapes at ``width`` (what :func:`~optedu.training.mup.shapes_of`
    compares)."""
    return {"fc1.weight": (width, 64), "fc1.bias": (width,),
            "fc2.weight": (width, width), "fc2.bias": (width,),
            "head.weight": (10, width), "head.bias": (10,)}


def make_model(param: str, width: int, seed: int) -> tuple[nn.Module, dict | None]:
    """The MLP at ``width`` with the initial weights of ``seed``, and its µP shapes
    (``None`` for ``"sp"``). ``"mup-sp-readout"`` is µP with the readout left a plain
    ``nn.Linear``: the classic bug that the coordinate check catches."""
    _check(param, width)
    if param == "sp":
        return workloads.mlp(seed, width=width), None
    torch.manual_seed(seed)                     # the layers drawn in workloads.mlp's order
    fc1, fc2 = nn.Linear(64, width), nn.Linear(width, width)
    head = mup.MuReadout(width, 10) if param == "mup" else nn.Linear(width, 10)
    model = nn.Sequential(OrderedDict([("fc1", fc1), ("act1", nn.ReLU()), ("fc2", fc2),
                                       ("act2", nn.ReLU()), ("head", head)]))
    shapes = mup.set_base_shapes(model, sizes(BASE), sizes(2 * BASE),
                                 check_readout=param == "mup")
    return model, shapes


def optimizer(model: nn.Module, shapes: dict | None, lr: float) -> torch.optim.Optimizer:
    """Adam at peak rate ``lr``: one group (standard parametrisation) or µP's groups."""
    if shapes is None:
        return Adam(model.parameters(), lr=lr)
    return Adam(mup.mup_param_groups(model, shapes, "adam", lr=lr), lr=lr)


@functools.cache
def _train_split() -> tuple[torch.Tensor, torch.Tensor]:
    data = workloads.get(WORKLOAD).data()
    return data.train_x, data.train_y


@torch.no_grad()
def _loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float(nn.functional.cross_entropy(model(x), y))


def train(param: str, width: int, lr: float, seed: int, steps: int) -> dict[str, Any]:
    """One run of ``steps`` steps: ``{"train": [[step, loss on the training split], ...]``
    (at 0, every quarter of the budget and the end), ``"val"``: the final validation loss,
    ``"diverged"``: bool}."""
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"Invalid lr: {lr}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"Invalid steps: {steps}")
    eval_every = max(1, steps // 4)
    w = workloads.get(WORKLOAD)
    model, shapes = make_model(param, width, seed)
    opt = optimizer(model, shapes, lr)
    peaks = [g["lr"] for g in opt.param_groups]
    schedule = contestants.schedule_for(steps)
    batches = w.batches(seed)
    x_all, y_all = _train_split()
    curve = [[0, store.rounded(_loss(model, x_all, y_all))]]
    for t in range(steps):
        x, y = next(batches)
        loss = w.loss(model, x, y)
        if not math.isfinite(float(loss.detach())):
            return {"train": curve + [[t, None]], "val": None, "diverged": True}
        opt.zero_grad()
        loss.backward()
        for g, peak in zip(opt.param_groups, peaks):
            g["lr"] = peak * schedule(t)
        opt.step()
        if (t + 1) % eval_every == 0 or t + 1 == steps:
            curve.append([t + 1, store.rounded(_loss(model, x_all, y_all))])
    val = store.rounded(w.evaluate(model))
    return {"train": curve, "val": val, "diverged": curve[-1][1] is None or val is None}


@timed
def execute(job: Job) -> dict[str, Any]:
    """Run ``job`` and return its record (what is stored)."""
    record = {"param": job.param, "steps": job.steps, "width": job.width,
              "log10_lr": job.log10_lr, "seed": job.seed,
              "lr": float(f"{10 ** job.log10_lr:.6g}")}
    record.update(train(job.param, job.width, 10 ** job.log10_lr, job.seed, job.steps))
    return record


# --- reading the stored runs ------------------------------------------------------------------

def final_losses(records: Iterable[dict[str, Any]]
                 ) -> dict[tuple[str, int, int, int], np.ndarray]:
    """``{(param, steps, width, seed): final training losses over LOG10_LRS}``, ``inf`` where
    a run diverged."""
    out: dict[tuple[str, int, int, int], np.ndarray] = {}
    for r in records:
        row = out.setdefault((r["param"], r["steps"], r["width"], r["seed"]),
                             np.full(len(LOG10_LRS), np.nan))
        v = r["train"][-1][1]
        row[LOG10_LRS.index(r["log10_lr"])] = np.inf if v is None else v
    return out


def optimum(log10_lrs: Iterable[float], losses: Iterable[float]) -> float:
    r"""The best :math:`\log_{10}` learning rate of one curve: the grid's best point refined
    by the parabola through it and its two neighbours (in :math:`\log` loss), kept within
    half a grid step of it; the grid's point itself at an edge of the grid."""
    x, y = np.asarray(list(log10_lrs), float), np.asarray(list(losses), float)
    if len(x) != len(y) or len(x) < 3 or np.isnan(y).any():
        raise ValueError(f"Invalid losses: {list(y)}")
    i = int(np.argmin(y))
    if i in (0, len(x) - 1) or not np.isfinite(y[i - 1:i + 2]).all():
        return float(x[i])
    a, b, c = np.log(y[i - 1:i + 2])
    h = x[i + 1] - x[i]
    curvature = a - 2 * b + c
    shift = 0.0 if curvature <= 0 else 0.5 * h * (a - c) / curvature
    return float(x[i] + np.clip(shift, -h / 2, h / 2))


def best_rates(records: Iterable[dict[str, Any]]) -> dict[tuple[str, int, int], list[float]]:
    """``{(param, steps, width): [the best log10 rate of each seed, in SEEDS' order]}``."""
    out: dict[tuple[str, int, int], list[float]] = {}
    for (param, steps, width, seed), row in sorted(final_losses(records).items()):
        out.setdefault((param, steps, width), []).append(optimum(LOG10_LRS, row))
    return out


GRID = Grid(name="mup", chapter="Learning rates that transfer across width",
            about="Adam's best rate against the width of the digits MLP (64 to 2048), standard "
                  "parametrisation and µP, 7 rates, 3 seeds, 2 budgets, 504 runs.",
            minutes=18, file="mup.jsonl", job=KEY, jobs=jobs, execute=execute,
            sample=6)
read = GRID.read
