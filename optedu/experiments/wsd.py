"""Evidence for the chapter "Warmup–stable–decay": WSD against cosine at three budgets, one
stable run branched into decays, the decay's length swept, and the river-valley picture's
predictions measured along the way.

``make experiments-wsd`` stores each run as one JSON line in ``experiments/wsd.jsonl`` as
soon as it finishes, keyed ``(kind, workload, budget, seed)``, resumable, with the machine,
versions and commit in ``experiments/wsd.meta.json``. One worker process, one thread, torch's
CPU kernels capped at AVX2 (:mod:`optedu.instruments.reproducible`), so that a stored run can
be re-run exactly::

    python -m optedu.experiments wsd

Workloads :data:`WORKLOADS` of the benchmark (:mod:`optedu.choosing.workloads`), AdamW at the full grid's
tuned hyperparameters (:func:`tuned`: the best trial of seed 0, tuned under the benchmark's
warmup and cosine at the workload's own budget). The base budget :math:`B` is the workload's
step count; the budgets are :data:`BUDGETS` times it. Every schedule warms up linearly over
the same :func:`warmup` steps (5 % of :math:`B`), so that the stable phase does not depend on
the budget and one run can be branched.

* ``cosine``: a separate run per budget, warmup then a cosine to zero
  (:func:`optedu.lr_scheduler.schedules.linear_warmup_cosine`).
* ``peak``: on the language model, cosine and WSD (1-sqrt, a decay of :data:`FRACTION`) as
  separate runs at the budgets :data:`PEAK_BUDGETS`, the peak rate the tuned one times each of
  :data:`PEAK_FACTORS`: whether either schedule's result hangs on a peak tuned for the cosine
  at the base budget.
* ``wsd``: one run at the peak rate up to the last branch point (the *stable* run), branched at
  each :data:`BRANCHES` point into a decay to zero
  (:func:`optedu.lr_scheduler.schedules.warmup_stable_decay`): each budget with a decay of
  :data:`FRACTION` of it in each shape of :data:`SHAPES`, and the budget :data:`SWEEP_BUDGET`
  with decays of :data:`SWEEP` of it (1-sqrt). A branch is the separate WSD run of its budget,
  step for step (tested). Along the stable run, at each evaluation: the validation loss of the
  iterate, of an exponential moving average of the iterates (window :func:`ema_window`), and
  the gradient norm on a fixed sample of training data (:func:`probe`); along each decay the
  same but the average.

References: S. Hu et al., *MiniCPM*, 2024; A. Hägele et al., *Scaling laws and compute-optimal
training beyond fixed training durations*, NeurIPS 2024; K. Wen et al., *Understanding
warmup-stable-decay learning rates: a river valley loss landscape perspective*, ICLR 2025.
"""

from __future__ import annotations

import copy
import functools
import math
import pathlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import torch

from optedu.choosing import contestants, workloads
from optedu.choosing.contestants import Training
from optedu.instruments import store
from optedu.lr_scheduler.schedules import linear_warmup_cosine, warmup_stable_decay

from .grid import Grid, Job, Key, timed

__all__ = ["GRID", "KEY", "WORKLOADS", "CONTESTANT", "BUDGETS", "SHAPES", "FRACTION", "SWEEP",
           "SWEEP_BUDGET", "SEEDS", "PEAK_FACTORS", "PEAK_BUDGETS", "PROBE", "jobs", "tuned",
           "warmup", "ema_window", "branches", "cosine_schedule", "wsd_schedule", "probe",
           "gradient_norm", "advance", "separate_run", "cosine_run", "peak_runs", "wsd_run",
           "execute", "read", "finals", "peaks", "steps_spent"]

WORKLOADS = ("char_transformer", "digits_mlp")
CONTESTANT = "adamw"
#: the budgets, in multiples of the workload's step budget B
BUDGETS = (1, 2, 4)
#: the decay shapes compared at every budget, and the decay's share of the budget
SHAPES = ("1-sqrt", "linear")
FRACTION = 0.2
#: the decay lengths swept (shares of the budget), 1-sqrt, at budget SWEEP_BUDGET × B
SWEEP = (0.05, 0.1, 0.2, 0.4)
SWEEP_BUDGET = 2
SEEDS = (0, 1, 2)
#: the peak rate moved (factors of the tuned one), on the language model at PEAK_BUDGETS
PEAK_FACTORS = (0.5, 2.0)
PEAK_BUDGETS = (1, 4)
#: training examples (digits) or windows (text) on which the gradient norm is measured
PROBE = 64

KEY = Key("kind", "workload", "budget", "seed")


def jobs(stored: Sequence[dict[str, Any]] = (), folder: pathlib.Path | None = None
         ) -> list[Job]:
    """Every run: the branched WSD runs, the separate cosine runs, then the peak rate
    moved (the language model only)."""
    wsd = [KEY("wsd", w, None, s) for w in WORKLOADS for s in SEEDS]
    cos = [KEY("cosine", w, b, s) for w in WORKLOADS for b in BUDGETS for s in SEEDS]
    peak = [KEY("peak", WORKLOADS[0], b, s) for b in PEAK_BUDGETS for s in SEEDS]
    return wsd + cos + peak


@functools.cache
def tuned(workload: str) -> dict[str, float]:
    """AdamW's hyperparameters of the full grid's best trial on ``workload`` (seed 0)."""
    from optedu.choosing import results
    res = results.read("full")
    best = res.best(CONTESTANT, workload)
    return dict(res.by_key["external", workload, CONTESTANT, best, 0]["hyper"])


def warmup(base: int) -> int:
    """Warmup steps for every budget: 5 % of the base budget (the benchmark's share)."""
    if base < 1:
        raise ValueError(f"Invalid base: {base}")
    return max(1, round(contestants.WARMUP_FRACTION * base))


def ema_window(base: int) -> int:
    """The moving average's window: as many steps as the decay at the base budget."""
    if base < 1:
        raise ValueError(f"Invalid base: {base}")
    return max(1, round(FRACTION * base))


def branches(base: int) -> list[dict[str, Any]]:
    """The decays branched from the stable run: ``budget`` (multiple), ``steps`` (T),
    ``fraction``, ``shape`` and ``start`` (the branch point T − D), sorted by start."""
    if base < 1:
        raise ValueError(f"Invalid base: {base}")
    out = [(b, FRACTION, s) for b in BUDGETS for s in SHAPES]
    out += [(SWEEP_BUDGET, f, "1-sqrt") for f in SWEEP if (SWEEP_BUDGET, f, "1-sqrt") not in out]
    rows = []
    for b, f, shape in out:
        total = b * base
        decay = max(1, round(f * total))
        rows.append({"budget": b, "steps": total, "fraction": f, "shape": shape,
                     "start": total - decay})
    return sorted(rows, key=lambda r: (r["start"], r["shape"]))


def cosine_schedule(total: int, warm: int):
    """``t -> multiplier``: warmup over ``warm`` steps, a cosine to 0 at ``total``."""
    return lambda t: linear_warmup_cosine(t, warmup_steps=warm, total_steps=total)


def wsd_schedule(total: int, start: int, warm: int, shape: str):
    """``t -> multiplier``: warmup over ``warm`` steps, the peak until ``start``, a decay of
    ``shape`` to 0 at ``total``."""
    if not warm <= start < total:
        raise ValueError(f"Invalid start: {start} (warmup {warm}, total {total})")
    return lambda t: warmup_stable_decay(t, warmup_steps=warm, stable_steps=start - warm,
                                         decay_steps=total - start, decay=shape)


@functools.cache
def probe(workload: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed sample of :data:`PROBE` training examples (or text windows), drawn with
    seed 12345: where the gradient norm is measured."""
    w = workloads.get(workload)
    batches = w.batches(12345)
    xs, ys, n = [], [], 0
    while n < PROBE:
        x, y = next(batches)
        xs.append(x)
        ys.append(y)
        n += len(x)
    return torch.cat(xs)[:PROBE], torch.cat(ys)[:PROBE]


def gradient_norm(w: workloads.Workload, model: torch.nn.Module) -> float:
    """The norm of the training loss's gradient on :func:`probe`'s sample (the parameters'
    ``.grad`` are left as they were)."""
    x, y = probe(w.name)
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(w.loss(model, x, y), params)
    return float(torch.cat([g.flatten() for g in grads]).norm())


def advance(batches: Iterator[Any], n: int) -> Iterator[Any]:
    """``batches`` after drawing ``n`` of them (a branch continues the stable run's order)."""
    for _ in range(n):
        next(batches)
    return batches


def _r(v: float) -> float | None:
    return store.rounded(v)


def _step(w, model, opt, batches, t) -> float:
    x, y = next(batches)
    loss = w.loss(model, x, y)
    opt.zero_grad()
    loss.backward()
    opt.step(t)
    return float(loss.detach())


def separate_run(workload: str, total: int, schedule, seed: int, factor: float = 1.0,
                 hyper: dict[str, float] | None = None) -> dict[str, Any]:
    """One run of ``total`` steps under ``schedule`` (``t -> multiplier``), the peak rate
    the tuned one (or ``hyper``'s) times ``factor``: its validation and training-loss
    curves."""
    if not (factor > 0 and math.isfinite(factor)):
        raise ValueError(f"Invalid factor: {factor}")
    w = workloads.get(workload)
    hyper = dict(tuned(workload) if hyper is None else hyper)
    hyper["lr"] = hyper["lr"] * factor
    model = w.model(seed)
    opt = Training(contestants.get(CONTESTANT).build(model, hyper, w.head), schedule)
    batches = w.batches(seed)
    evals, losses, since = [], [], []
    for t in range(total):
        since.append(_step(w, model, opt, batches, t))
        if (t + 1) % w.eval_every == 0 or t + 1 == total:
            evals.append([t + 1, _r(w.evaluate(model))])
            losses.append([t + 1, _r(sum(since) / len(since))])
            since = []
    return {"steps": total, "evals": evals, "train_loss": losses}


def cosine_run(workload: str, budget: int, seed: int) -> dict[str, Any]:
    """A separate warmup-and-cosine run over ``budget`` × B steps."""
    w = workloads.get(workload)
    total, warm = budget * w.steps, warmup(w.steps)
    return {**separate_run(workload, total, cosine_schedule(total, warm), seed),
            "warmup": warm}


def peak_runs(workload: str, budget: int, seed: int) -> dict[str, Any]:
    """The peak rate moved: cosine and WSD (1-sqrt, a decay of :data:`FRACTION`) over
    ``budget`` × B steps at the tuned peak times each factor of :data:`PEAK_FACTORS`."""
    w = workloads.get(workload)
    total, warm = budget * w.steps, warmup(w.steps)
    start = total - max(1, round(FRACTION * total))
    runs = []
    for factor in PEAK_FACTORS:
        for name, schedule in (("cosine", cosine_schedule(total, warm)),
                               ("1-sqrt", wsd_schedule(total, start, warm, "1-sqrt"))):
            runs.append({"schedule": name, "factor": factor,
                         **separate_run(workload, total, schedule, seed, factor)})
    return {"warmup": warm, "runs": runs}


def wsd_run(workload: str, seed: int) -> dict[str, Any]:
    """The stable run and every decay of :func:`branches` branched from it."""
    w = workloads.get(workload)
    base, warm = w.steps, warmup(w.steps)
    plan = branches(base)
    points = sorted({b["start"] for b in plan})
    build = contestants.get(CONTESTANT).build
    hyper = tuned(workload)
    model = w.model(seed)
    opt = Training(build(model, hyper, w.head),                  # warmup, then the peak
                   wsd_schedule(points[-1] + 1, points[-1], warm, "linear"))
    average, scratch = w.model(seed), w.model(seed)
    beta = 1.0 - 1.0 / ema_window(base)
    batches = w.batches(seed)
    stable: dict[str, list[Any]] = {"evals": [], "ema": [], "gnorm": [], "train_loss": []}
    saved: dict[int, Any] = {}
    since: list[float] = []

    def measure(t: int, record: dict[str, list], ema: bool) -> None:
        record["evals"].append([t, _r(w.evaluate(model))])
        record["gnorm"].append([t, _r(gradient_norm(w, model))])
        if since:
            record["train_loss"].append([t, _r(sum(since) / len(since))])
            since.clear()
        if ema:
            record["ema"].append([t, _r(w.evaluate(average))])

    for t in range(points[-1] + 1):
        if t in points:
            saved[t] = (copy.deepcopy(model.state_dict()),
                        [copy.deepcopy(o.state_dict()) for o in opt.optimizers])
        if t == points[-1]:
            break
        since.append(_step(w, model, opt, batches, t))
        with torch.no_grad():
            if t + 1 == warm:
                average.load_state_dict(model.state_dict())
            elif t + 1 > warm:
                for a, p in zip(average.parameters(), model.parameters()):
                    a.mul_(beta).add_(p, alpha=1 - beta)     # EMA of the iterates
        if (t + 1) % w.eval_every == 0 or t + 1 in points:
            measure(t + 1, stable, ema=t + 1 >= warm)
    out = []
    for b in plan:
        weights, states = saved[b["start"]]
        scratch.load_state_dict(weights)
        model = scratch
        optimizers = build(model, hyper, w.head)
        for o, state in zip(optimizers, states):
            o.load_state_dict(state)
            for g in o.param_groups:
                g["lr"] = hyper["lr"]
        opt = Training(optimizers, wsd_schedule(b["steps"], b["start"], warm, b["shape"]))
        batches = advance(w.batches(seed), b["start"])
        decay: dict[str, list[Any]] = {"evals": [], "gnorm": [], "train_loss": []}
        since.clear()
        for t in range(b["start"], b["steps"]):
            since.append(_step(w, model, opt, batches, t))
            if (t + 1) % w.eval_every == 0 or t + 1 == b["steps"]:
                measure(t + 1, decay, ema=False)
        out.append({**b, **decay})
    return {"warmup": warm, "ema_window": ema_window(base), "stable": stable,
            "branches": out}


@timed
def execute(job: Job) -> dict[str, Any]:
    """Run ``job`` and return its record (what is stored)."""
    record = {"kind": job.kind, "workload": job.workload, "budget": job.budget,
              "seed": job.seed,
              "hyper": {k: float(f"{v:.6g}") for k, v in tuned(job.workload).items()}}
    if job.kind == "cosine":
        record.update(cosine_run(job.workload, job.budget, job.seed))
    elif job.kind == "wsd":
        record.update(wsd_run(job.workload, job.seed))
    elif job.kind == "peak":
        record.update(peak_runs(job.workload, job.budget, job.seed))
    else:
        raise ValueError(f"Invalid kind: {job.kind!r}")
    return record


# --- reading the stored runs ------------------------------------------------------------------

def finals(records: Iterable[dict[str, Any]]) -> dict[tuple, dict[int, float]]:
    """``{(workload, schedule, budget, fraction): {seed: final validation loss}}``, the
    schedule ``"cosine"`` or a WSD shape (fraction ``None`` for cosine)."""
    out: dict[tuple, dict[int, float]] = {}
    for r in records:
        if r["kind"] == "cosine":
            out.setdefault((r["workload"], "cosine", r["budget"], None), {})[r["seed"]] = \
                r["evals"][-1][1]
        elif r["kind"] == "wsd":
            for b in r["branches"]:
                k = (r["workload"], b["shape"], b["budget"], b["fraction"])
                out.setdefault(k, {})[r["seed"]] = b["evals"][-1][1]
    return out


def peaks(records: Iterable[dict[str, Any]]) -> dict[tuple, dict[int, float]]:
    """``{(budget, schedule, factor): {seed: final validation loss}}`` of the peak runs, with
    factor 1 taken from the cosine runs and the 1-sqrt branches of the main grid."""
    records = list(records)
    out: dict[tuple, dict[int, float]] = {}
    for r in records:
        if r["kind"] == "peak":
            for q in r["runs"]:
                out.setdefault((r["budget"], q["schedule"], q["factor"]), {})[r["seed"]] = \
                    q["evals"][-1][1]
    main = finals(records)
    for b in PEAK_BUDGETS:
        out[b, "cosine", 1.0] = main[WORKLOADS[0], "cosine", b, None]
        out[b, "1-sqrt", 1.0] = main[WORKLOADS[0], "1-sqrt", b, FRACTION]
    return out


def steps_spent(base: int) -> dict[str, int]:
    """Training steps for every budget of :data:`BUDGETS`: three cosine runs, three
    separate WSD runs, and one stable run branched three times (decays of :data:`FRACTION`)."""
    totals = [b * base for b in BUDGETS]
    decays = [max(1, round(FRACTION * t)) for t in totals]
    return {"cosine": sum(totals), "wsd_separate": sum(totals),
            "wsd_branched": max(t - d for t, d in zip(totals, decays)) + sum(decays)}


GRID = Grid(name="wsd", chapter="Warmup–stable–decay",
            about="WSD against cosine at three budgets (char transformer, digits MLP, AdamW, three "
                  "seeds), one stable run branched into decays, decay length swept, peak moved, 30 "
                  "runs.",
            minutes=7, file="wsd.jsonl", job=KEY, jobs=jobs, execute=execute,
            sample={"cosine": 3, "wsd": 1, "peak": 1})
read = GRID.read
