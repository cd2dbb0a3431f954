"""Evidence for the chapter "Averaging and outer optimizers": averages of the weights against
the last iterate, BatchNorm after averaging, and DiLoCo against data-parallel AdamW.

``make experiments-averaging`` stores each run as one JSON line in
``experiments/averaging.jsonl``, keyed ``(kind, workload, variant, seed)``, resumable::

    python -m optedu.experiments averaging

Workloads :data:`WORKLOADS` of the benchmark (:mod:`optedu.choosing.workloads`), AdamW at the
full grid's tuned hyperparameters (:func:`optedu.experiments.wsd.tuned`), seeds :data:`SEEDS`.

* ``average``: one run of the workload's step budget :math:`T` under ``variant``, a
  ``"constant"`` rate (warmup over 5 % of :math:`T`, then the peak) or a ``"cosine"`` to zero
  (the benchmark's schedule). At every evaluation: the validation loss of the last iterate,
  of an EMA of the iterates (window :data:`EMA_SHARE` of :math:`T`, every step from the first),
  of SWA's mean (every step from :math:`T/2`) and of LAWA (the last :data:`LAWA_K`
  checkpoints, one every :data:`LAWA_SHARE` of :math:`T`).
* ``bn``: the CNN with BatchNorm (``digits_cnn_bn``), cosine schedule, SWA's mean over the
  second half evaluated with the statistics it was built with and after
  :func:`~optedu.training.swa_utils.update_bn`; the last iterate beside them.
* ``diloco``: two workers, each with its own stream of batches, :math:`T` steps of AdamW each
  (constant rate, the tuned peak): ``variant`` ``"dp"`` averages the gradients every step,
  ``"diloco-H"`` runs DiLoCo with :math:`H` inner steps per round and the paper's outer
  Nesterov SGD (rate 0.7, momentum 0.9), ``"avg-H"`` the same with the workers' weights
  simply averaged (outer SGD at rate 1, no momentum). Both spend :math:`2T` gradient evaluations; the
  validation loss is recorded every :data:`DILOCO_EVERY` steps (data parallel) or rounds.
  The runs are :func:`optedu.distributed.diloco.diloco_single`, equal bit for bit to the
  two-process run (``tests/distributed/test_diloco.py``).
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from optedu.choosing import contestants, workloads
from optedu.choosing.contestants import Training
from optedu.distributed import diloco
from optedu.instruments import store
from optedu.lr_scheduler.schedules import linear_warmup_cosine
from optedu.training import swa_utils
from optedu.training.lawa import LAWA

from .grid import Grid, Job, Key, timed
from .wsd import tuned, warmup

__all__ = ["GRID", "KEY", "WORKLOADS", "SEEDS", "SCHEDULES", "EMA_SHARE", "LAWA_K",
           "LAWA_SHARE", "HS", "OUTERS", "DILOCO_EVERY", "WorkloadTask", "jobs", "schedule",
           "average_run", "bn_run", "diloco_run", "execute", "read"]

WORKLOADS = ("digits_mlp", "char_transformer")
SEEDS = (0, 1, 2)
SCHEDULES = ("constant", "cosine")
#: the EMA's window (1/(1-β)) and LAWA's spacing, as shares of the budget T; LAWA's k
EMA_SHARE = 0.1
LAWA_K = 5
LAWA_SHARE = 0.05
#: DiLoCo's inner steps per round, and how often the data-parallel run is evaluated
HS = (10, 50)
#: the outer optimizers: DiLoCo's (Nesterov SGD, rate 0.7, momentum 0.9) and plain averaging
#: of the workers' weights (SGD at rate 1 without momentum: local SGD's step)
OUTERS = {"diloco": {"lr": 0.7, "momentum": 0.9, "nesterov": True},
          "avg": {"lr": 1.0, "momentum": 0.0, "nesterov": False}}
DILOCO_EVERY = 10
BN_WORKLOAD = "digits_cnn_bn"

KEY = Key("kind", "workload", "variant", "seed")


def jobs(stored: Sequence[dict[str, Any]] = (), folder: pathlib.Path | None = None
         ) -> list[Job]:
    """Every run: the averages, BatchNorm, then DiLoCo against data parallelism."""
    out = [KEY("average", w, s, seed) for w in WORKLOADS for s in SCHEDULES for seed in SEEDS]
    out += [KEY("bn", BN_WORKLOAD, "swa", seed) for seed in SEEDS]
    variants = ["dp"] + [f"{name}-{h}" for name in OUTERS for h in HS]
    out += [KEY("diloco", w, v, seed) for w in WORKLOADS for v in variants for seed in SEEDS]
    return out


def schedule(name: str, total: int):
    """``t -> multiplier``: the warmup of the benchmark (5 % of ``total``), then the peak
    (``"constant"``) or a cosine to zero at ``total`` (``"cosine"``)."""
    warm = warmup(total)
    if name == "constant":
        return lambda t: min(1.0, (t + 1) / (warm + 1))
    if name == "cosine":
        return lambda t: linear_warmup_cosine(t, warmup_steps=warm, total_steps=total)
    raise ValueError(f"Invalid schedule: {name!r} (expected one of {SCHEDULES})")


def _hyper(workload: str) -> dict[str, float]:
    return tuned("digits_cnn" if workload == BN_WORKLOAD else workload)


def _r(v: float) -> float | None:
    return store.rounded(v)


def _trained(w: workloads.Workload, model: nn.Module, opt: Training, seed: int,
             total: int) -> Iterator[int]:
    """Train ``model`` for ``total`` steps on ``w``'s batches of ``seed``, yielding each step's
    number (from 1) once it is taken, for the caller's averages and evaluations."""
    batches = w.batches(seed)
    for t in range(total):
        x, y = next(batches)
        loss = w.loss(model, x, y)
        opt.zero_grad()
        loss.backward()
        opt.step(t)
        yield t + 1


def average_run(workload: str, variant: str, seed: int) -> dict[str, Any]:
    """The last iterate, the EMA, SWA and LAWA along one run (see the module's docstring)."""
    w = workloads.get(workload)
    total = w.steps
    model = w.model(seed)
    opt = Training(contestants.get("adamw").build(model, _hyper(workload), w.head),
                   schedule(variant, total))
    window = round(EMA_SHARE * total)
    ema = swa_utils.AveragedModel(
        model, multi_avg_fn=swa_utils.get_ema_multi_avg_fn(1 - 1 / window))
    swa = swa_utils.AveragedModel(model)
    lawa = LAWA(model, k=LAWA_K, every=round(LAWA_SHARE * total))
    evals = []
    for step in _trained(w, model, opt, seed, total):
        ema.update_parameters(model)
        lawa.update_parameters(model)
        if step > total // 2:
            swa.update_parameters(model)
        if step % w.eval_every == 0 or step == total:
            evals.append([step, _r(w.evaluate(model)), _r(w.evaluate(ema.module)),
                          _r(w.evaluate(swa.module)) if step > total // 2 else None,
                          _r(w.evaluate(lawa.module))])
    return {"steps": total, "ema_window": window, "lawa_every": lawa.every,
            "columns": ["step", "last", "ema", "swa", "lawa"], "evals": evals}


def bn_run(seed: int) -> dict[str, Any]:
    """SWA on the BatchNorm CNN: its error and cross-entropy before and after ``update_bn``."""
    w = workloads.get(BN_WORKLOAD)
    total = w.steps
    model = w.model(seed)
    opt = Training(contestants.get("adamw").build(model, _hyper(BN_WORKLOAD), w.head),
                   schedule("cosine", total))
    swa = swa_utils.AveragedModel(model)
    for step in _trained(w, model, opt, seed, total):
        if step > total // 2:
            swa.update_parameters(model)
    data = w.data()

    def measure(m: nn.Module) -> dict[str, float | None]:
        m.eval()
        with torch.no_grad():
            ce = workloads.cross_entropy(m, data.val_x, data.val_y)
        return {"error": _r(w.evaluate(m)), "cross_entropy": _r(float(ce))}

    stale = measure(swa.module)
    loader = [(data.train_x[i:i + w.batch_size],) for i in range(0, len(data.train_x),
                                                                 w.batch_size)]
    swa_utils.update_bn(loader, swa.module)
    return {"last": measure(model), "swa_stale": stale, "swa_update_bn": measure(swa.module)}


@dataclass(frozen=True)
class WorkloadTask:
    """A benchmark workload as a :class:`optedu.distributed.diloco.Task`: AdamW at the tuned
    hyperparameters and a constant rate; worker ``m`` draws the batches of seed
    ``1000 * seed + m``."""

    workload: str
    seed: int

    def model(self) -> nn.Module:
        return workloads.get(self.workload).model(self.seed)

    def inner(self, model: nn.Module) -> torch.optim.Optimizer:
        w = workloads.get(self.workload)
        (opt,) = contestants.get("adamw").build(model, _hyper(self.workload), w.head)
        return opt

    def batches(self, worker: int) -> Iterator[tuple[Tensor, Tensor]]:
        return workloads.get(self.workload).batches(1000 * self.seed + worker)

    def loss(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        return workloads.get(self.workload).loss(model, x, y)

    def evaluate(self, model: nn.Module) -> float:
        return workloads.get(self.workload).evaluate(model)


def diloco_run(workload: str, variant: str, seed: int) -> dict[str, Any]:
    """Two workers for the workload's T steps each: data-parallel AdamW or DiLoCo-H."""
    task = WorkloadTask(workload, seed)
    total = workloads.get(workload).steps
    if variant == "dp":
        out = diloco.data_parallel_single(task, 2, total, DILOCO_EVERY)
        every = DILOCO_EVERY
    elif variant.partition("-")[0] in OUTERS and variant.partition("-")[2] in map(str, HS):
        name, _, h = variant.partition("-")
        every = int(h)
        out = diloco.diloco_single(task, 2, every, total // every, OUTERS[name])
    else:
        raise ValueError(f"Invalid variant: {variant!r}")
    evals = [[every * (i + 1), _r(v)] for i, v in enumerate(out["evals"])]
    return {"steps": total, "workers": 2, "evals": evals, "allreduces": out["allreduces"],
            "communications": len(evals) if variant != "dp" else total}


@timed
def execute(job: Job) -> dict[str, Any]:
    """Run ``job`` and return its record (what is stored)."""
    record: dict[str, Any] = job.asdict()
    if job.kind == "average":
        record.update(average_run(job.workload, job.variant, job.seed))
    elif job.kind == "bn":
        record.update(bn_run(job.seed))
    elif job.kind == "diloco":
        record.update(diloco_run(job.workload, job.variant, job.seed))
    else:
        raise ValueError(f"Invalid kind: {job.kind!r}")
    return record


GRID = Grid(name="averaging", chapter="Averaging and outer optimizers",
            about="EMA, SWA and LAWA against the last iterate (digits MLP, char transformer, "
                  "constant and cosine rates), SWA with BatchNorm, DiLoCo against data-parallel "
                  "AdamW on two workers; three seeds, 45 runs.",
            minutes=8, file="averaging.jsonl", job=KEY, jobs=jobs, execute=execute,
            sample={"average": 1, "bn": 1, "diloco": 1})
read = GRID.read
