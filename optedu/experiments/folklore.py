"""Two pieces of folklore the benchmark grid cannot test, run as a small stored experiment.

``make experiments-folklore`` runs both studies, one worker, into
``experiments/folklore.jsonl`` (one JSON line per run as soon as it finishes, resumable) and
``experiments/folklore.meta.json``::

    python -m optedu.experiments folklore

* ``warmup``: every base workload, AdamW and Nesterov momentum at their tuned
  hyperparameters (the best trial of the stored full grid), the peak learning rate multiplied
  by :data:`WARMUP_FACTORS`, each with the benchmark's schedule (a linear warmup over 5 % of
  the steps, then a cosine to zero) and with the same cosine from step 0 (no warmup), seeds
  0, 1, 2. Does warmup widen the range of stable rates (Goyal et al., 2017; Liu et al., 2020;
  Ma & Yarats, 2021)?
* ``batch``: SGD with momentum and Adam at their tuned hyperparameters on ``digits_mlp``
  (batches :data:`MLP_BATCHES`, seeds 0, 1, 2) and ``char_transformer`` (:data:`TEXT_BATCHES`,
  seeds 0, 1), each batch with the peak rate multiplied by ``2**k``. Every batch size sees
  the same number of examples (equal epochs, as the linear scaling rule of Goyal et al. is
  stated): a batch ``B`` times larger takes ``B`` times fewer steps. Does the best rate grow
  in proportion to the batch, as its square root, or not at all?

A run at factor 1 with warmup, at the base batch, is the stored grid's best trial itself:
:func:`train` reproduces :func:`optedu.choosing.trial.run` exactly there (a test checks it).
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from optedu.choosing import contestants, search, trial, workloads
from optedu.choosing.contestants import WARMUP_FRACTION, Training
from optedu.choosing.runner import GRIDS, best_trial
from optedu.choosing.trial import Run
from optedu.instruments import store
from optedu.instruments.store import load
from optedu.lr_scheduler.schedules import linear_warmup_cosine

from .grid import Grid, Job, Key

__all__ = ["GRID", "KEY", "jobs", "train", "execute", "tuned", "read", "final",
           "curves", "usable", "best_factor", "exponent", "matched", "plot_warmup",
           "plot_lr_curves", "plot_best_rates", "plot_generalisation", "WARMUP_FACTORS",
           "MLP_BATCHES", "TEXT_BATCHES", "BATCH_POWERS"]

#: peak learning rate of the warmup study, as multiples of the tuned one
WARMUP_FACTORS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
WARMUP_CONTESTANTS = ("adamw", "nesterov")
BATCH_CONTESTANTS = ("sgd_momentum", "adam")
#: batch sizes of the batch study (the workloads' own: 64 and 16)
MLP_BATCHES = (16, 32, 64, 128, 256, 512)
TEXT_BATCHES = (4, 16, 64)
#: the batch study's peak rates: the tuned rate times 2**k
BATCH_POWERS = {"digits_mlp": tuple(range(-5, 6)), "char_transformer": tuple(range(-3, 4))}
BATCH_SEEDS = {"digits_mlp": (0, 1, 2), "char_transformer": (0, 1)}


#: one run: ``study``, workload, contestant, whether the schedule warms up, the batch size,
#: the peak rate's multiplier (``factor`` times the tuned rate) and the seed; its input
#: ``hyper`` is the tuned hyperparameters (:func:`tuned`)
KEY = Key("study", "workload", "contestant", "warmup", "batch", "factor", "seed")


def tuned(contestant: str, workload: str, records: Sequence[dict[str, Any]]) -> dict[str, float]:
    """The hyperparameters of ``contestant``'s best trial on ``workload`` in the stored full
    grid (``records``), as drawn (unrounded)."""
    c = contestants.get(contestant)
    found = {r["trial"]: r for r in records if r["ruleset"] == "external"
             and r["workload"] == workload and r["contestant"] == contestant
             and r["seed"] == 0}
    trials = [found.get(i) for i in range(GRIDS["full"].trials)]
    done = [r for r in trials if r is not None]
    if len(done) < len(trials):
        raise ValueError(f"Invalid records: the full grid lacks trials of {contestant!r} on "
                         f"{workload!r} (make experiments)")
    return dict(search.trials(c.space, GRIDS["full"].trials)[best_trial(done)])


def jobs(stored: Sequence[dict[str, Any]] = (), folder: pathlib.Path | None = None
         ) -> list[Job]:
    """Every run of both studies, in the order they run, each with its contestant's tuned
    hyperparameters on its workload (read from the full grid, ``results-full.jsonl`` in the
    data folder ``folder``)."""
    grid = load(store.folder(folder) / "results-full.jsonl")
    if not grid:
        raise ValueError("Invalid grid: experiments/results-full.jsonl holds no runs")
    hypers: dict[tuple[str, str], dict[str, float]] = {}

    def job(*values) -> Job:
        c, w = values[2], values[1]
        if (c, w) not in hypers:
            hypers[c, w] = tuned(c, w, grid)
        return KEY(*values, inputs={"hyper": hypers[c, w]})

    out = []
    for w in workloads.base_workloads():
        for c in WARMUP_CONTESTANTS:
            for factor in WARMUP_FACTORS:
                for warmup in (True, False):
                    for seed in (0, 1, 2):
                        out.append(job("warmup", w.name, c, warmup, w.batch_size, factor,
                                       seed))
    for name, batches in (("digits_mlp", MLP_BATCHES), ("char_transformer", TEXT_BATCHES)):
        for c in BATCH_CONTESTANTS:
            for batch in batches:
                for k in BATCH_POWERS[name]:
                    for seed in BATCH_SEEDS[name]:
                        out.append(job("batch", name, c, True, batch, 2.0 ** k, seed))
    return out


def _text_windows(batch: int):
    """:func:`optedu.choosing.workloads.text_windows` with ``batch`` windows per batch (the same stream of
    offsets: at the base batch, the same batches)."""
    def windows(seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        data = workloads.help_text()
        xs = data.train_x.unfold(0, workloads.CONTEXT, 1)
        ys = data.train_y.unfold(0, workloads.CONTEXT, 1)
        gen = torch.Generator().manual_seed(seed)
        while True:
            starts = torch.randint(len(xs), (batch,), generator=gen)
            yield xs[starts], ys[starts]
    return windows


def resized(workload: workloads.Workload, batch: int) -> workloads.Workload:
    """``workload`` with ``batch`` examples per step and the same number of examples in all
    (steps and evaluation interval scaled by ``batch_size / batch``)."""
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(f"Invalid batch: {batch!r}")
    if batch == workload.batch_size:
        return workload
    scale = workload.batch_size / batch
    changes: dict[str, Any] = {"batch_size": batch,
                               "steps": max(1, round(workload.steps * scale)),
                               "eval_every": max(1, round(workload.eval_every * scale))}
    if workload.make_batches is not None:
        if workload.make_batches is not workloads.text_windows:
            raise ValueError(f"Invalid workload for another batch size: {workload.name!r}")
        changes["make_batches"] = _text_windows(batch)
    return dataclasses.replace(workload, **changes)


def train(workload: workloads.Workload, contestant: contestants.Contestant,
          hyper: dict[str, float], seed: int, *, warmup: bool = True) -> Run:
    """:func:`optedu.choosing.trial.run` with the schedule's warmup on (the benchmark's: linear over
    ``WARMUP_FRACTION`` of the steps, then a cosine to zero) or off (the same cosine from the
    first step)."""
    if not contestant.scheduled:
        raise ValueError(f"Invalid contestant: {contestant.name!r} has no schedule")

    def schedule(optimizers: list[torch.optim.Optimizer], steps: int) -> Training:
        w = max(1, round(WARMUP_FRACTION * steps)) if warmup else 0
        return Training(optimizers, lambda t: linear_warmup_cosine(t, warmup_steps=w,
                                                                   total_steps=steps))

    return trial.run(workload, contestant, hyper, seed, schedule=schedule)


def execute(job: Job) -> dict[str, Any]:
    """Run ``job`` from its tuned ``job.hyper`` (the rate multiplied by ``job.factor``); the
    record that is stored."""
    w = resized(workloads.get(job.workload), job.batch)
    peak = {**job.hyper, "lr": job.hyper["lr"] * job.factor}
    result = train(w, contestants.get(job.contestant), peak, job.seed, warmup=job.warmup)
    return {**job.asdict(), "lr": float(f"{peak['lr']:.6g}"), "steps": w.steps,
            "evals": [[s, store.rounded(v)] for s, v in result.evals],
            "train_loss": [[s, store.rounded(v)] for s, v in result.train_loss],
            "diverged": result.diverged, "seconds": round(result.seconds, 3)}


# --- reading the stored runs -------------------------------------------------------------

def final(record: dict[str, Any]) -> float:
    """The last validation value of a stored run (of the benchmark or of this experiment);
    infinity if it diverged."""
    value = record["evals"][-1][1] if record["evals"] else None
    return math.inf if value is None or record.get("diverged") else float(value)


def curves(records: Sequence[dict[str, Any]], study: str
           ) -> dict[tuple, dict[float, list[float]]]:
    """``{(workload, contestant, warmup, batch): {factor: [final value per seed]}}`` of one
    study, seeds in order."""
    out: dict[tuple, dict[float, list[float]]] = {}
    for r in sorted((r for r in records if r["study"] == study), key=lambda r: r["seed"]):
        key = (r["workload"], r["contestant"], r["warmup"], r["batch"])
        out.setdefault(key, {}).setdefault(r["factor"], []).append(final(r))
    return {k: dict(sorted(v.items())) for k, v in out.items()}


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        raise ValueError("Invalid values: none")
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2


def usable(by_factor: dict[float, list[float]], bar: float) -> list[float]:
    """The factors whose median over seeds is at or below ``bar`` (finite)."""
    return [f for f, values in by_factor.items()
            if math.isfinite(_median(values)) and _median(values) <= bar]


def best_factor(by_factor: dict[float, list[float]]) -> float:
    """The factor with the lowest median over seeds (the smaller factor on a tie)."""
    return min(by_factor, key=lambda f: (_median(by_factor[f]), f))


def exponent(batches: Sequence[float], rates: Sequence[float]) -> float:
    """The least-squares slope of log(rate) against log(batch): 1 if the best rate grows in
    proportion to the batch, 1/2 as its square root, 0 if it does not move."""
    if len(batches) != len(rates) or len(batches) < 2:
        raise ValueError(f"Invalid points: {len(batches)} batches, {len(rates)} rates")
    x = [math.log(b) for b in batches]
    y = [math.log(r) for r in rates]
    mx, my = sum(x) / len(x), sum(y) / len(y)
    return sum((a - mx) * (b - my) for a, b in zip(x, y)) / sum((a - mx) ** 2 for a in x)


def matched(ours: Sequence[tuple[float, float]], theirs: Sequence[tuple[float, float]],
            window: float = 0.2) -> list[float]:
    """Validation at matched training loss: for each ``(train, val)`` point of ``ours``, its
    ``val`` minus the median ``val`` of the points of ``theirs`` whose training loss is
    within a factor ``exp(window)`` of its own (points with no such neighbour are left
    out)."""
    if window <= 0:
        raise ValueError(f"Invalid window: {window}")
    out = []
    for train_loss, val in ours:
        near = [v for t, v in theirs if abs(math.log(t / train_loss)) <= window]
        if near:
            out.append(val - _median(near))
    return out


# --- figures ------------------------------------------------------------------------------

_COLORS = {"adamw": "C0", "adam": "C0", "nesterov": "C3", "sgd_momentum": "C3"}
_MARKERS = {"adamw": "^", "adam": "o", "nesterov": "v", "sgd_momentum": "s"}


def _band(ax, xs: Sequence[float], by: Sequence[list[float]], color: str, style: str,
          label: str | None, ceiling: float, alpha: float = 0.15) -> None:
    """Median (line) and range (band) over seeds; values above ``ceiling`` (diverged runs
    among them) are drawn at it, and a median above it as a cross."""
    med = [min(_median(v), ceiling) for v in by]
    lo = [min(min(v), ceiling) for v in by]
    hi = [min(max(v), ceiling) for v in by]
    ax.plot(xs, med, style, marker="o", ms=3, color=color, label=label)
    ax.fill_between(xs, lo, hi, color=color, alpha=alpha, lw=0)
    for x, v in zip(xs, by):
        if _median(v) > ceiling:
            ax.plot([x], [ceiling], "x", color="k", ms=5)


def _ceiling(groups: Sequence[Sequence[list[float]]]) -> float:
    """1.5 times the largest finite median: the top of a panel."""
    finite = [_median(v) for by in groups for v in by if math.isfinite(_median(v))]
    return 1.5 * max(finite, default=1.0)


def _style(ax, log_y: bool = True) -> None:
    """Log scale on y with plain labels at 1, 2 and 5 times the powers of ten."""
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter
    if log_y:
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.tick_params(which="both", labelsize=7)


def plot_warmup(table: dict[tuple, dict[float, list[float]]], names: Sequence[str],
                contestants_: Sequence[str] = WARMUP_CONTESTANTS):
    """Final validation value against the peak rate (a multiple of the tuned one), with the
    warmup (solid) and without (dashed), median and range over seeds: one panel per workload
    (columns) and optimizer (rows)."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(len(contestants_), len(names), figsize=(11, 4.4),
                             squeeze=False)
    for i, c in enumerate(contestants_):
        for j, w in enumerate(names):
            ax = axes[i][j]
            keys = {warm: next(k for k in table if k[:3] == (w, c, warm))
                    for warm in (True, False)}
            top = _ceiling([list(table[k].values()) for k in keys.values()])
            for warm, style in ((True, "-"), (False, "--")):
                by = table[keys[warm]]
                _band(ax, list(by), list(by.values()), _COLORS[c], style,
                      "warmup" if warm else "no warmup", top, 0.15 if warm else 0.07)
            ax.set_xscale("log", base=2)
            _style(ax)
            # each panel named and its rate axis labelled: a narrow page reflows the panels
            ax.set_title(f"{w}\n{c}", fontsize=8)
            ax.set_xlabel("peak rate / tuned rate", fontsize=8)
    axes[0][0].set_ylabel("final validation value", fontsize=8)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_lr_curves(table: dict[tuple, dict[float, list[float]]],
                   panels: Sequence[tuple[str, str, int]], rates: dict[tuple, float]):
    """Final validation value against the peak learning rate, median and range over seeds,
    one panel per ``(workload, contestant, batch)``; ``rates`` holds each ``(contestant,
    workload)``'s tuned rate (the factor 1)."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 2.8), squeeze=False)
    for ax, (w, c, batch) in zip(axes[0], panels):
        by = table[(w, c, True, batch)]
        _band(ax, [f * rates[(c, w)] for f in by], list(by.values()), _COLORS[c], "-",
              None, _ceiling([list(by.values())]))
        ax.set_xscale("log")
        _style(ax)
        ax.set_title(f"{w}, {c}, batch {batch}", fontsize=8)
        ax.set_xlabel("peak learning rate", fontsize=8)
    axes[0][0].set_ylabel("final validation value", fontsize=8)
    fig.tight_layout()
    return fig


def plot_best_rates(best: dict[tuple[str, str], dict[int, float]]):
    """The best peak rate against the batch size, per ``(workload, contestant)``, relative to
    the rate at the workload's own batch, with the linear and the square-root rule drawn
    through that point (Adam's points shifted a little to the right, to stay visible)."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(8, 3), sharey=True)
    for ax, w in zip(axes, sorted({w for w, _ in best}, reverse=True)):
        base = workloads.get(w).batch_size
        bs = sorted({b for (ww, _), row in best.items() if ww == w for b in row})
        ax.plot(bs, [b / base for b in bs], ":", color="k", label="linear rule")
        ax.plot(bs, [(b / base) ** 0.5 for b in bs], "-.", color="grey",
                label="square-root rule")
        for (ww, c), row in sorted(best.items()):
            if ww != w:
                continue
            shift = 1.06 if c.startswith("adam") else 1.0
            ax.plot([b * shift for b in row], [row[b] / row[base] for b in row],
                    "--" if c.startswith("adam") else "-", color=_COLORS[c],
                    marker=_MARKERS[c], mfc="none" if c.startswith("adam") else _COLORS[c],
                    label=c)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.set_xlabel("batch size (equal epochs)", fontsize=8)
        ax.set_title(w, fontsize=9)
        ax.tick_params(which="both", labelsize=7)
    axes[0].set_ylabel("best rate / best rate at the base batch", fontsize=8)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_generalisation(points: dict[tuple[str, str], list[tuple[float, float]]],
                        names: Sequence[str]):
    """Final validation value against the final training loss (mean of the last
    mini-batches), one point per trial, one panel per workload; ``points`` maps
    ``(workload, contestant)`` to ``(train, val)`` pairs."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(names), figsize=(3.4 * len(names), 2.9), squeeze=False)
    for ax, w in zip(axes[0], names):
        values = []
        for (ww, c), pts in sorted(points.items()):
            if ww != w or not pts:
                continue
            values += [p for p in pts]
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=12, color=_COLORS[c],
                       marker=_MARKERS[c], alpha=0.6, label=c, lw=0)
        xs, ys = [p[0] for p in values], [p[1] for p in values]
        if max(xs) > 10 * min(xs):
            ax.set_xscale("log")
        # an error rate can be 0; a narrow range reads better on a linear axis
        _style(ax, log_y=workloads.get(w).metric != "error" and max(ys) > 10 * min(ys))
        ax.set_title(f"{w} ({workloads.get(w).metric})", fontsize=8)
        ax.set_xlabel("final training loss", fontsize=8)
    axes[0][0].set_ylabel("final validation value", fontsize=8)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig


GRID = Grid(name="folklore", chapter="The folklore, tested",
            about="warmup against none at several rates on every base workload, and the best "
                  "rate per batch size (equal epochs), 840 runs.",
            minutes=15, file="folklore.jsonl", job=KEY, jobs=jobs, execute=execute, sample=8)
read = GRID.read
