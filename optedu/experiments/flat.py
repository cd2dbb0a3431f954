"""Evidence for the chapter "Flat minima and sharpness-aware minimisation": SGD with momentum
and Adam, each alone, with SAM and with ASAM, on a small problem that overfits.

``make experiments-flat`` stores each run as one JSON line in ``experiments/flat.jsonl`` as
soon as it finishes, keyed ``(base, variant, rho, lr, steps, seed)``, resumable, with the
machine, versions and commit in ``experiments/flat.meta.json``. One worker process, one
thread, torch's CPU kernels capped at AVX2 (:mod:`optedu.instruments.reproducible`), so that
a stored run can be re-run exactly::

    python -m optedu.experiments flat

The problem (:func:`digits`): a ReLU network (64-64-64-10) on :data:`N_TRAIN` digits of
scikit-learn's ``load_digits``, :data:`N_VAL` more to choose the learning rate, the rest
(1,285) as the test set; mini-batches of :data:`BATCH`, a constant learning rate,
:data:`STEPS` steps (200 epochs). Each base (:data:`BASES`: SGD with momentum 0.9, Adam at
torch's defaults; no weight decay) runs on the same grid of five rates, half a decade apart
(:data:`RATES`), seeds :data:`SEEDS`, as

* ``none``: the base alone, :data:`STEPS` steps, and again for twice as many steps (as many
  gradients as SAM uses);
* ``sam``: :class:`optedu.SAM` (Foret et al., 2021) with each radius of :data:`SAM_RHOS`;
* ``asam``: the same with ``adaptive=True`` (Kwon et al., 2021), radii :data:`ASAM_RHOS`.

At the end: the loss and accuracy on the whole training, validation and test sets, the
sharpness (the top eigenvalue of the training loss's Hessian, Lanczos) and the Hessian's
trace (Hutchinson), and the gradients evaluated.
"""

from __future__ import annotations

import math
import pathlib
import statistics
import time
from collections.abc import Sequence
from typing import Any

import torch

from optedu.choosing import workloads
from optedu.optim.adam import Adam
from optedu.optim.sam import SAM
from optedu.optim.sgd import SGD
from optedu.theory.curvature import hutchinson_trace, top_eigenvalue

from .grid import Grid, Job, Key

__all__ = ["GRID", "KEY", "BASES", "RATES", "SEEDS", "STEPS", "BATCH", "SAM_RHOS", "ASAM_RHOS",
           "N_TRAIN", "N_VAL", "Data", "digits", "network", "optimizer", "train", "measure",
           "execute", "jobs", "read", "tuned", "summary", "chosen", "plot_runs", "rescale"]

N_TRAIN, N_VAL = 256, 256
BATCH = 32
STEPS = 1600
BASES = ("sgd_momentum", "adam")
#: each base's grid of constant learning rates (five points, half a decade apart)
RATES = {"sgd_momentum": (0.003, 0.01, 0.03, 0.1, 0.3),
         "adam": (0.0001, 0.0003, 0.001, 0.003, 0.01)}
SAM_RHOS = (0.02, 0.05, 0.1, 0.2, 0.5)
ASAM_RHOS = (0.5, 1.0, 2.0, 4.0)
SEEDS = (0, 1, 2, 3, 4)
VARIANTS = ("none", "sam", "asam")
HIDDEN = 64


def _check(job: Job) -> None:
    """Refuse a bad run: the base optimizer, the variant (``"none"``, ``"sam"``,
    ``"asam"``), SAM's radius (0 for none), the learning rate, the number of steps."""
    if job.base not in BASES:
        raise ValueError(f"Invalid base: {job.base!r}")
    if job.variant not in VARIANTS:
        raise ValueError(f"Invalid variant: {job.variant!r}")
    if (job.variant == "none") != (job.rho == 0) or job.rho < 0:
        raise ValueError(f"Invalid rho: {job.rho!r} for variant {job.variant!r}")
    if not job.lr > 0:
        raise ValueError(f"Invalid lr: {job.lr!r}")
    if not isinstance(job.steps, int) or job.steps < 1:
        raise ValueError(f"Invalid steps: {job.steps!r}")


#: one run: the base optimizer, the variant, SAM's radius (0 for none), the learning rate,
#: the number of steps and the seed
KEY = Key("base", "variant", "rho", "lr", "steps", "seed", check=_check)


def gradients(job: Job) -> int:
    """Gradients evaluated (mini-batch gradients): two per step with SAM."""
    return job.steps * (1 if job.variant == "none" else 2)


def jobs(stored: Sequence[dict[str, Any]] = (), folder: pathlib.Path | None = None
         ) -> list[Job]:
    """Every run, in the order they run."""
    out = []
    for base in BASES:
        for lr in RATES[base]:
            for seed in SEEDS:
                out.append(KEY(base, "none", 0.0, lr, STEPS, seed))
                out.append(KEY(base, "none", 0.0, lr, 2 * STEPS, seed))
                out += [KEY(base, "sam", rho, lr, STEPS, seed) for rho in SAM_RHOS]
                out += [KEY(base, "asam", rho, lr, STEPS, seed) for rho in ASAM_RHOS]
    return out


Data = workloads.Splits  # train, validation and test tensors


def digits() -> Data:
    """The digits, shuffled once: :data:`N_TRAIN` images train, :data:`N_VAL` validate, the
    rest test (:func:`optedu.choosing.workloads.digit_splits`)."""
    return workloads.digit_splits(N_TRAIN, N_VAL)


def network(seed: int) -> torch.nn.Sequential:
    """The ReLU network 64-64-64-10, torch's default initialisation from ``seed``."""
    return workloads.relu_mlp(seed, HIDDEN)


def _base(name: str):
    return {"sgd_momentum": (SGD, {"momentum": 0.9}), "adam": (Adam, {})}[name]


def optimizer(job: Job, params) -> torch.optim.Optimizer:
    """The base optimizer at ``job.lr``, wrapped in :class:`optedu.SAM` for ``"sam"``
    (``adaptive=True`` for ``"asam"``)."""
    cls, kwargs = _base(job.base)
    if job.variant == "none":
        return cls(params, lr=job.lr, **kwargs)
    return SAM(params, cls, rho=job.rho, adaptive=job.variant == "asam", lr=job.lr, **kwargs)


def train(job: Job, data: Data | None = None) -> tuple[torch.nn.Module, bool]:
    """Train ``job``'s network; returns it and whether the loss became non-finite (the run
    stops there)."""
    data = digits() if data is None else data
    model = network(job.seed)
    opt = optimizer(job, model.parameters())
    loss_fn = torch.nn.functional.cross_entropy
    gen = torch.Generator().manual_seed(job.seed)
    order = torch.empty(0, dtype=torch.long)
    for _ in range(job.steps):
        if len(order) < BATCH:
            order = torch.randperm(N_TRAIN, generator=gen)
        idx, order = order[:BATCH], order[BATCH:]
        x, y = data.train_x[idx], data.train_y[idx]
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        if not math.isfinite(loss.item()):
            return model, True
        loss.backward()
        if job.variant == "none":
            opt.step()
        else:
            def closure():
                opt.zero_grad()
                perturbed = loss_fn(model(x), y)
                perturbed.backward()
                return perturbed
            opt.step(closure)
    return model, False


def _round(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(f"{x:.6g}")


def measure(model: torch.nn.Module, data: Data, *, trace_samples: int = 20
            ) -> dict[str, float | None]:
    """Loss and accuracy on each split, and the curvature of the full training loss: the
    sharpness (Lanczos, at most 100 products, tolerance 10⁻⁴) and Hutchinson's trace with its
    standard error."""
    out: dict[str, float | None] = {}
    with torch.no_grad():
        for split in ("train", "val", "test"):
            x, y = getattr(data, f"{split}_x"), getattr(data, f"{split}_y")
            logits = model(x)
            out[f"{split}_loss"] = _round(torch.nn.functional.cross_entropy(logits, y).item())
            out[f"{split}_acc"] = _round((logits.argmax(1) == y).float().mean().item())
    if out["train_loss"] is None:
        return {**out, "sharpness": None, "trace": None, "trace_se": None, "lanczos": 0}
    params = list(model.parameters())

    def closure():
        return torch.nn.functional.cross_entropy(model(data.train_x), data.train_y)
    top = top_eigenvalue(closure, params, max_iter=100, tol=1e-4)
    trace, se = hutchinson_trace(closure, params, samples=trace_samples)
    return {**out, "sharpness": _round(top.value), "trace": _round(trace),
            "trace_se": _round(se), "lanczos": top.iterations}


def execute(job: Job, data: Data | None = None) -> dict[str, Any]:
    """Train and measure ``job``; the record that is stored."""
    data = digits() if data is None else data
    start = time.monotonic()
    model, diverged = train(job, data)
    found = measure(model, data) if not diverged else {}
    return {**job.asdict(), "gradients": gradients(job), "diverged": diverged,
            **found, "seconds": round(time.monotonic() - start, 3)}


def _work(job: Job) -> dict[str, Any]:
    torch.set_num_threads(1)
    return execute(job, _DATA())


_cache: list[Data] = []


def _DATA() -> Data:
    if not _cache:
        _cache.append(digits())
    return _cache[0]


# --- reading the stored runs -------------------------------------------------------------

def _score(values: Sequence[float | None]) -> float:
    """Mean over seeds; infinity if a seed diverged."""
    if not values:
        raise ValueError("Invalid values: none")
    finite = [v for v in values if v is not None]
    return math.inf if len(finite) < len(values) else statistics.fmean(finite)


def tuned(records: Sequence[dict[str, Any]], base: str, variant: str, rho: float,
          steps: int = STEPS) -> float:
    """The learning rate of the grid with the lowest validation loss (mean over seeds) for
    ``(base, variant, rho, steps)``; the smaller rate on a tie."""
    by: dict[float, list[float | None]] = {}
    for r in records:
        if (r["base"], r["variant"], r["rho"], r["steps"]) == (base, variant, rho, steps):
            by.setdefault(r["lr"], []).append(None if r["diverged"] else r["val_loss"])
    if not by:
        raise ValueError(f"Invalid setting: no runs of {(base, variant, rho, steps)!r}")
    return min(by, key=lambda lr: (_score(by[lr]), lr))


def summary(records: Sequence[dict[str, Any]], base: str, variant: str, rho: float,
            steps: int = STEPS) -> dict[str, Any]:
    """The runs of ``(base, variant, rho, steps)`` at its tuned rate: ``{"lr": rate,
    field: [value per seed]}`` for the measured fields, seeds in order."""
    lr = tuned(records, base, variant, rho, steps)
    runs = sorted((r for r in records if (r["base"], r["variant"], r["rho"], r["steps"],
                                          r["lr"]) == (base, variant, rho, steps, lr)),
                  key=lambda r: r["seed"])
    fields = ("train_loss", "val_loss", "test_loss", "test_acc", "sharpness", "trace",
              "gradients")
    return {"lr": lr, "seeds": [r["seed"] for r in runs],
            **{f: [r.get(f) for r in runs] for f in fields}}


def chosen(records: Sequence[dict[str, Any]], base: str, variant: str,
           steps: int = STEPS) -> dict[str, Any]:
    """:func:`summary` of ``variant`` at the radius whose tuned rate has the lowest validation
    loss (mean over seeds), with ``"rho"`` added: the radius chosen as the rate is."""
    rhos = sorted({r["rho"] for r in records
                   if (r["base"], r["variant"], r["steps"]) == (base, variant, steps)})
    if not rhos:
        raise ValueError(f"Invalid setting: no runs of {(base, variant, steps)!r}")
    found = {rho: summary(records, base, variant, rho, steps) for rho in rhos}
    rho = min(rhos, key=lambda x: (_score(found[x]["val_loss"]), x))
    return {"rho": rho, **found[rho]}


_STYLE = {"none": ("o", "base"), "sam": ("^", "SAM"), "asam": ("s", "ASAM")}
_COLOURS = {"sgd_momentum": "C3", "adam": "C0"}


def plot_runs(records: Sequence[dict[str, Any]]):
    """Every run that did not diverge: test loss against the sharpness at the end (left) and
    the sharpness against the training loss (right), log scales; colour by base optimizer,
    marker by variant."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for base in BASES:
        for variant, (marker, name) in _STYLE.items():
            runs = [r for r in records if r["base"] == base and r["variant"] == variant
                    and not r["diverged"]]
            kw = dict(s=10, marker=marker, color=_COLOURS[base], alpha=0.5, lw=0,
                      label=f"{base}, {name}")
            axes[0].scatter([r["sharpness"] for r in runs], [r["test_loss"] for r in runs],
                            **kw)
            axes[1].scatter([r["train_loss"] for r in runs], [r["sharpness"] for r in runs],
                            **kw)
    axes[0].set(xscale="log", yscale="log", xlabel="sharpness at the end",
                ylabel="test loss")
    axes[1].set(xscale="log", yscale="log", xlabel="training loss at the end",
                ylabel="sharpness at the end")
    axes[0].legend(fontsize=7, markerscale=1.5)
    for ax in axes:
        ax.tick_params(which="both", labelsize=7)
    fig.tight_layout()
    return fig


def rescale(model: torch.nn.Sequential, layer: int, alpha: float) -> torch.nn.Sequential:
    """A copy of the ReLU network ``model`` with the ``layer``-th linear layer's weight and
    bias multiplied by ``alpha`` and the next linear layer's weight divided by it: the same
    function (ReLU is positively homogeneous, Dinh et al., 2017), other parameters."""
    import copy
    if not alpha > 0:
        raise ValueError(f"Invalid alpha: {alpha!r} (must be positive)")
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    if not 0 <= layer < len(linears) - 1:
        raise ValueError(f"Invalid layer: {layer!r} (0 to {len(linears) - 2})")
    out = copy.deepcopy(model)
    linears = [m for m in out if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        linears[layer].weight.mul_(alpha)
        linears[layer].bias.mul_(alpha)
        linears[layer + 1].weight.div_(alpha)
    return out


GRID = Grid(name="flat", chapter="Flat minima and sharpness-aware minimisation",
            about="SGD with momentum and Adam alone, with SAM and with ASAM, on a grid of rates "
                  "(five seeds) on a small digits problem; sharpness, Hessian trace and test loss "
                  "at the end, 550 runs.",
            minutes=25, file="flat.jsonl", job=KEY, jobs=jobs, execute=_work,
            sample=6)
read = GRID.read
