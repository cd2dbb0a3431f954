"""Evidence for the chapter "Why warmup works": the largest peak rate that trains, as a
function of the warmup's length, and the sharpness and gradient norm along runs with and
without warmup.

``make experiments-warmup`` stores each run as one JSON line in ``experiments/warmup.jsonl``
as soon as it finishes, keyed ``(kind, optimizer, warmup, point, seed)``, resumable, with the
machine, versions and commit in ``experiments/warmup.meta.json``. One worker process, one
thread, torch's CPU kernels capped at AVX2 (:mod:`optedu.instruments.reproducible`), so that a
stored run can be re-run exactly::

    python -m optedu.experiments warmup

The problem is the chapter "The edge of stability"'s: the first :data:`N` digits of
scikit-learn (8×8 pixels scaled to [0, 1]), a tanh MLP 64–32–32–10, half the squared error
against one-hot labels, float32, full batch, :data:`STEPS` steps. The rate rises linearly over
the first ``warmup`` steps, ``peak · min(1, (t+1)/warmup)`` at step ``t`` (constant at the peak
for ``warmup = 0``), then stays at the peak (no decay: warmup is the only variable).

* ``scan``: each of :data:`OPTIMIZERS` (``gd``: ``optedu.SGD`` without momentum; ``adam`` and
  ``radam``: ``optedu.Adam`` and ``optedu.RAdam`` at their defaults) at each warmup of
  :data:`WARMUPS` and each peak rate of :data:`RATES`, seeds :data:`SEEDS`. A run *trains*
  (:func:`trains`) when its final loss is finite and below :data:`THRESHOLD` times its initial
  loss; a run whose loss passes :data:`BLOWUP` times the initial one, or is not finite, stops
  there as diverged. The record holds the sharpness at initialisation (the same for every run of
  a seed), the gradient norm of the first :data:`EARLY` steps and the loss every
  :data:`EVERY` steps.
* ``scan`` of the two remedies for Adam's first steps, :data:`REMEDIES`, without warmup only:
  ``adam2k`` (:class:`optedu.optim.variants.adam_start.Adam2k`, Liu et al.'s Adam-2k: the first
  :data:`FREEZE` steps, :math:`2/(1-\\beta_2)`, only accumulate Adam's second moment at the
  initial weights, then :data:`STEPS` steps train) and ``giadam``
  (:class:`optedu.optim.variants.adam_start.GIAdam`, Kalra & Barkeshli's GI-Adam,
  :math:`v_0 = g_0^2`), on the rates of :data:`RATES`, seeds :data:`SEEDS`.
* ``trace``: the runs of :data:`TRACES` (one peak rate, with and without warmup), seeds
  :data:`SEEDS`, with the loss, the gradient norm and the rate at every step and the sharpness
  every :data:`EVERY` steps (for Adam, the sharpness preconditioned by
  :math:`\\sqrt{\\hat v} + \\epsilon` from its state, as Cohen et al. 2022 do).

References: D. S. Kalra and M. Barkeshli, *Why warmup the learning rate? Underlying mechanisms and
improvements*, NeurIPS 2024; J. Gilmer et al., *A loss curvature perspective on training
instabilities of deep learning models*, ICLR 2022; L. Liu et al., *On the variance of the
adaptive learning rate and beyond*, ICLR 2020.
"""

from __future__ import annotations

import math
import pathlib
from collections.abc import Iterable, Sequence
from typing import Any, cast

import torch

from optedu.instruments import store
from optedu.optim.adam import Adam
from optedu.optim.radam import RAdam
from optedu.optim.sgd import SGD
from optedu.optim.variants.adam_start import Adam2k, GIAdam
from optedu.theory.curvature import sharpness

from .grid import Grid, Job, Key, timed

__all__ = ["GRID", "KEY", "N", "STEPS", "OPTIMIZERS", "REMEDIES", "FREEZE", "WARMUPS", "RATES", "SEEDS", "THRESHOLD",
           "BLOWUP", "EVERY", "EARLY", "TRACES", "jobs", "rate", "trains", "largest_trained",
           "data", "network", "loss_of", "make_optimizer", "preconditioner", "train",
           "execute", "read", "table"]

N, STEPS = 300, 300
OPTIMIZERS = ("gd", "adam", "radam")
#: Adam's start remedied instead of warmed up: scanned without warmup only
REMEDIES = ("adam2k", "giadam")
#: Adam-2k's steps that only accumulate v: 2/(1 - beta2) at Adam's default beta2 (2,000)
FREEZE = 2000
WARMUPS = (0, 30, 120)
#: the peak rates scanned: a factor √2 apart, wide enough that every scan (optimizer,
#: warmup, seed) trains at its smallest rate and fails at its largest, so that its largest
#: trainable rate is measured, not cut off by the grid (tested)
RATES = {"gd": tuple(0.4 * 2 ** (k / 2) for k in range(6)),
         "adam": tuple(0.02 * 2 ** (k / 2) for k in range(8)),
         "radam": tuple(0.04 * 2 ** (k / 2) for k in range(10)),
         "adam2k": tuple(0.02 * 2 ** (k / 2) for k in range(12)),
         "giadam": tuple(0.02 * 2 ** (k / 2) for k in range(12))}
SEEDS = (0, 1, 2)
#: a run trains when its final loss is below THRESHOLD times its initial loss
THRESHOLD = 0.25
#: a run stops as diverged when its loss passes BLOWUP times the initial loss
BLOWUP = 1e3
EVERY, EARLY = 10, 50
#: Lanczos iterations and tolerance of each sharpness (the EoS chapter's are 15 and 1e-3)
ITERS, TOL = 20, 1e-3
#: the traced runs: (optimizer, index into RATES, warmups)
TRACES = (("gd", 2, (0, 120)), ("adam", 4, (0, 120)))

KEY = Key("kind", "optimizer", "warmup", "point", "seed")


def jobs(stored: Sequence[dict[str, Any]] = (), folder: pathlib.Path | None = None
         ) -> list[Job]:
    """Every run of the experiment: the scan, then the traces, then the remedies' scan."""
    scan = [KEY("scan", o, w, i, s) for o in OPTIMIZERS for w in WARMUPS
            for i in range(len(RATES[o])) for s in SEEDS]
    remedies = [KEY("scan", o, 0, i, s) for o in REMEDIES for i in range(len(RATES[o]))
                for s in SEEDS]
    traces = [KEY("trace", o, w, i, s) for o, i, ws in TRACES for w in ws for s in SEEDS]
    return scan + traces + remedies


def rate(peak: float, warmup: int, t: int) -> float:
    """The rate of step ``t`` (from 0): linear warmup to ``peak`` over ``warmup`` steps."""
    if peak <= 0 or not math.isfinite(peak):
        raise ValueError(f"Invalid peak: {peak}")
    if warmup < 0 or t < 0:
        raise ValueError(f"Invalid warmup or step: {warmup}, {t}")
    return peak * min(1.0, (t + 1) / warmup) if warmup else peak


def trains(initial: float, final: float) -> bool:
    """Whether a run trained: a finite final loss below :data:`THRESHOLD` times the initial."""
    if not (math.isfinite(initial) and initial > 0):
        raise ValueError(f"Invalid initial loss: {initial}")
    return math.isfinite(final) and final < THRESHOLD * initial


def largest_trained(rates: Sequence[float], trained: Sequence[bool]) -> float:
    """The largest rate of an increasing scan below which every rate trained (0 if the
    smallest did not): a rate that trains above a failure does not count."""
    if len(rates) != len(trained) or not rates or list(rates) != sorted(rates):
        raise ValueError(f"Invalid scan: {len(rates)} rates, {len(trained)} outcomes")
    best = 0.0
    for lr, ok in zip(rates, trained):
        if not ok:
            break
        best = lr
    return best


# --- the problem and one run ------------------------------------------------------------------

def data(n: int = N) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` digits scaled to [0, 1] and their one-hot labels."""
    from sklearn.datasets import load_digits
    x, y = load_digits(return_X_y=True)
    return (torch.tensor(x[:n] / 16.0, dtype=torch.float32),
            torch.nn.functional.one_hot(torch.tensor(y[:n]), 10).float())


def network(seed: int) -> torch.nn.Module:
    """The EoS chapter's tanh MLP, initialised from ``seed``."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.Tanh(),
                               torch.nn.Linear(32, 32), torch.nn.Tanh(),
                               torch.nn.Linear(32, 10))


def loss_of(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Half the squared error, summed over the outputs, averaged over the examples."""
    return 0.5 * ((net(x) - y) ** 2).sum(1).mean()


def make_optimizer(name: str, params: list[torch.Tensor], lr: float) -> torch.optim.Optimizer:
    """``gd``, ``adam``, ``radam`` (optedu's), ``adam2k`` or ``giadam`` (the variants),
    defaults otherwise."""
    if name == "gd":
        return SGD(params, lr=lr)
    if name == "adam":
        return Adam(params, lr=lr)
    if name == "radam":
        return RAdam(params, lr=lr)
    if name == "adam2k":
        return Adam2k(params, lr=lr, freeze=FREEZE)
    if name == "giadam":
        return GIAdam(params, lr=lr)
    raise ValueError(f"Invalid optimizer: {name!r} (known: {OPTIMIZERS + REMEDIES})")


def preconditioner(opt: torch.optim.Optimizer, params: list[torch.Tensor], eps: float = 1e-8
                   ) -> list[torch.Tensor]:
    """Adam's :math:`P = \\sqrt{\\hat v} + \\epsilon` from its state, per parameter."""
    beta2 = opt.param_groups[0]["betas"][1]
    out = []
    for p in params:
        state = opt.state[p]
        step = int(state["step"])
        out.append((state["exp_avg_sq"] / (1 - beta2 ** step)).sqrt() + eps)
    return out


def _r(v: float) -> float | None:
    return store.rounded(v) if math.isfinite(v) else None


def train(name: str, peak: float, warmup: int, seed: int, *, trace: bool = False,
          steps: int = STEPS) -> dict[str, Any]:
    """One run; what :func:`execute` stores (without the key)."""
    x, y = data()
    net = network(seed)
    params: list[torch.Tensor] = list(net.parameters())
    closure = lambda: loss_of(net, x, y)  # noqa: E731
    s0 = sharpness(closure, params, max_iter=ITERS, tol=TOL)
    opt = make_optimizer(name, params, rate(peak, warmup, 0))
    if name == "adam2k":          # the held steps: v only, at the initial weights
        for _ in range(FREEZE):
            opt.zero_grad()
            closure().backward()
            opt.step()
    losses, norms, sharp = [], [], []
    initial, diverged = None, False
    for t in range(steps):
        lr = rate(peak, warmup, t)
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad()
        loss = closure()
        loss.backward()
        value = loss.item()
        initial = value if initial is None else initial
        if not math.isfinite(value) or value > BLOWUP * initial:
            diverged = True
            losses.append(value)
            break
        grads = [cast(torch.Tensor, p.grad) for p in params]    # backward filled them
        norms.append(torch.cat([g.flatten() for g in grads]).norm().item())
        losses.append(value)
        opt.step()
        if trace and t % EVERY == EVERY - 1:
            pre = preconditioner(opt, params) if name != "gd" else None
            sharp.append(sharpness(closure, params, max_iter=ITERS, tol=TOL,
                                   preconditioner=pre))
    final = math.inf if diverged else closure().item()
    assert initial is not None
    record: dict[str, Any] = {
        "lr": float(f"{peak:.6g}"), "initial": _r(initial), "final": _r(final),
        "diverged": diverged or not math.isfinite(final),
        "trains": trains(initial, final), "sharpness0": _r(s0),
        "steps_run": len(losses)}
    if trace:
        record.update(losses=[_r(v) for v in losses], grad_norms=[_r(v) for v in norms],
                      sharpness=[_r(v) for v in sharp])
    else:
        record.update(losses=[_r(v) for v in losses[::EVERY]],
                      grad_norms=[_r(v) for v in norms[:EARLY]],
                      max_grad_norm=_r(max(norms)) if norms else None)
    return record


@timed
def execute(job: Job) -> dict[str, Any]:
    """Run ``job`` and return its record (what is stored)."""
    record = {"kind": job.kind, "optimizer": job.optimizer, "warmup": job.warmup,
              "point": job.point, "seed": job.seed}
    record.update(train(job.optimizer, RATES[job.optimizer][job.point], job.warmup,
                        job.seed, trace=job.kind == "trace"))
    return record


# --- reading the stored runs ------------------------------------------------------------------

def table(records: Iterable[dict[str, Any]]) -> dict[tuple[str, int, int], float]:
    """``{(optimizer, warmup, seed): largest peak rate that trains}`` over the scan."""
    by: dict[tuple[str, int, int], dict[int, bool]] = {}
    for r in records:
        if r["kind"] == "scan":
            by.setdefault((r["optimizer"], r["warmup"], r["seed"]), {})[r["point"]] = r["trains"]
    out = {}
    for k, outcome in by.items():
        rates = RATES[k[0]]
        if set(outcome) != set(range(len(rates))):
            raise ValueError(f"Invalid records: the scan of {k} is incomplete")
        out[k] = largest_trained(rates, [outcome[i] for i in range(len(rates))])
    return out


GRID = Grid(name="warmup", chapter="Why warmup works",
            about="the largest peak rate that trains per warmup length (gradient descent, Adam, "
                  "RAdam on the digits MLP, three seeds), Adam-2k and GI-Adam without warmup, "
                  "and the sharpness along runs with and without warmup, 300 runs.",
            minutes=10, file="warmup.jsonl", job=KEY, jobs=jobs, execute=execute,
            sample={"scan": 6, "trace": 1})
read = GRID.read
