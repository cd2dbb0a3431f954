r"""Evidence for the chapter "How large a batch?": steps to a target loss against the batch
size, each batch at its best learning rate, and the gradient noise scale measured along
training, on two problems.

``make experiments-batch`` stores each run as one JSON line in ``experiments/batch.jsonl`` as
soon as it finishes, keyed ``(kind, workload, batch, k, seed)``, resumable, with the machine,
versions and commit in ``experiments/batch.meta.json``. One worker process, one thread,
torch's CPU kernels capped at AVX2 (:mod:`optedu.instruments.reproducible`), so that a stored
run can be re-run exactly::

    python -m optedu.experiments batch

Two workloads of the benchmark (:mod:`optedu.choosing.workloads`): the digits MLP and the digits logistic
regression, trained by plain SGD (no momentum, no weight decay, a constant rate: the setting
of McCandlish et al.'s model). Every batch is drawn uniformly *with replacement* from the
1,437 training images, so that the mini-batch gradient's noise has covariance
:math:`\Sigma/B` at every batch size, full-batch sizes included.

* ``steps``: for each batch of :data:`BATCHES` and each rate :math:`0.1 \cdot 2^k` of the
  batch's window :func:`window` (five rates around the best one, found by a pilot; a test
  checks that the best rate never sits on a window's edge unless the rate beyond it fails),
  seeds :data:`SEEDS`: the number of steps until the loss on the whole training set first
  falls to the workload's :data:`TARGETS` value (measured after every step up to 64, then
  every :math:`\lfloor t/64 \rfloor` steps: a resolution of 1.6 %), or ``None`` within
  :data:`CAP` steps.
* ``noise``: one run per seed at batch :data:`REF_BATCH` and rate :data:`REF_LR`, stopped
  at each loss of :data:`LEVELS` as the training loss first falls to it, where the noise
  scale is measured three ways: exactly from the per-example gradients of the whole training
  set (:func:`exact_noise`: :math:`|G|^2`, :math:`\operatorname{tr}\Sigma`,
  :math:`B_\text{simple}`), by McCandlish et al.'s two-batch estimator
  (:func:`optedu.training.noise_scale.noise_scale`, batches :data:`SMALL` and :data:`BIG`,
  :data:`DRAWS` pairs; ``None`` where its estimate of :math:`|G|^2` is not positive, with
  the mean squared norms at both batches stored), and with the Hessian (:math:`B_\text{noise}
  = \operatorname{tr}(H\Sigma)/G^\top H G`, :data:`HVP_SAMPLE` examples).

References: S. McCandlish, J. Kaplan, D. Amodei et al., *An empirical model of large-batch
training*, 2018; C. Shallue et al., *Measuring the effects of data parallelism on neural
network training*, JMLR 2019.
"""

from __future__ import annotations

import math
import pathlib
from collections.abc import Iterable, Sequence
from typing import Any

import torch

from optedu.choosing import workloads
from optedu.instruments import store
from optedu.optim.sgd import SGD
from optedu.training.noise_scale import gradient_sq_norms, noise_scale

from .grid import Grid, Job, Key, timed

__all__ = ["GRID", "KEY", "WORKLOADS", "BATCHES", "SEEDS", "TARGETS", "CENTRES", "CAP",
           "BASE_LR", "REF_BATCH", "REF_LR", "LEVELS", "SMALL", "BIG", "DRAWS", "HVP_SAMPLE",
           "jobs", "window", "rate", "checked", "train_loss", "steps_run", "flat_grads",
           "exact_noise", "noise_run", "execute", "read", "table", "best_rates", "fit",
           "fit_seeds", "lr_rule"]

WORKLOADS = ("digits_mlp", "digits_logreg")
#: batch sizes, doubling
BATCHES = (4, 8, 16, 32, 64, 128, 256, 512, 1024)
SEEDS = (0, 1, 2)
#: the training loss (cross-entropy over the whole training set) to reach
TARGETS = {"digits_mlp": 0.1, "digits_logreg": 0.08}
#: rates are BASE_LR * 2**k; the best k of a pilot (seed 0) per batch, the window's centre
BASE_LR = 0.1
CENTRES = {"digits_mlp": {4: 0, 8: 0, 16: 1, 32: 2, 64: 3, 128: 4, 256: 4, 512: 4, 1024: 4},
           "digits_logreg": {4: 1, 8: 2, 16: 3, 32: 4, 64: 5, 128: 6, 256: 7, 512: 7,
                             1024: 7}}
#: a run that has not reached the target after CAP steps stops (steps None)
CAP = 4000
#: the noise-scale runs: batch, rate, and the training losses where they measure
REF_BATCH = 64
REF_LR = {"digits_mlp": 0.4, "digits_logreg": 1.6}
LEVELS = {"digits_mlp": (1.0, 0.5, 0.3, 0.2, 0.1, 0.05),
          "digits_logreg": (0.5, 0.3, 0.2, 0.12, 0.08, 0.05)}
#: the two-batch estimator's batches and number of pairs; the Hessian's sample of examples
SMALL, BIG, DRAWS = 16, 512, 256
HVP_SAMPLE = 128

def window(workload: str, batch: int) -> tuple[int, ...]:
    """The exponents ``k`` swept at ``batch``: the pilot's best two either side."""
    if workload not in CENTRES:
        raise ValueError(f"Invalid workload: {workload!r}")
    if batch not in CENTRES[workload]:
        raise ValueError(f"Invalid batch: {batch!r}")
    c = CENTRES[workload][batch]
    return tuple(range(c - 2, c + 3))


def rate(k: int) -> float:
    """The learning rate :math:`0.1 \\cdot 2^k`."""
    return BASE_LR * 2.0 ** k


KEY = Key("kind", "workload", "batch", "k", "seed")


def jobs(stored: Sequence[dict[str, Any]] = (), folder: pathlib.Path | None = None
         ) -> list[Job]:
    """Every run: the noise-scale runs, then the steps-to-target sweep."""
    noise = [KEY("noise", w, REF_BATCH, None, s) for w in WORKLOADS for s in SEEDS]
    steps = [KEY("steps", w, b, k, s) for w in WORKLOADS for b in BATCHES
             for k in window(w, b) for s in SEEDS]
    return noise + steps


def checked(t: int) -> bool:
    """Whether the training loss is measured after step ``t`` (1-based): every step up to
    64, then every ``t // 64`` steps."""
    if t < 1:
        raise ValueError(f"Invalid t: {t}")
    return t <= 64 or t % (t // 64) == 0


@torch.no_grad()
def train_loss(w: workloads.Workload, model: torch.nn.Module) -> float:
    """The loss over the whole training set."""
    d = w.data()
    return float(w.loss(model, d.train_x, d.train_y))


def _sampler(w: workloads.Workload, batch: int, seed: int):
    """``() -> (x, y)``: ``batch`` training examples drawn uniformly with replacement."""
    d = w.data()
    gen = torch.Generator().manual_seed(seed)
    n = len(d.train_x)

    def draw():
        idx = torch.randint(n, (batch,), generator=gen)
        return d.train_x[idx], d.train_y[idx]
    return draw


def _r(v: float) -> float | None:
    return store.rounded(v)


def steps_run(workload: str, batch: int, lr: float, seed: int, target: float,
              cap: int = CAP) -> dict[str, Any]:
    """SGD at ``lr`` with batches of ``batch`` until the training loss reaches ``target``:
    ``steps`` (``None`` if not within ``cap`` steps), ``diverged`` (the loss exceeded ten
    times its initial value or was not finite), and the loss at the powers of two."""
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"Invalid lr: {lr}")
    w = workloads.get(workload)
    model = w.model(seed)
    opt = SGD(model.parameters(), lr=lr)
    draw = _sampler(w, batch, seed)
    start = train_loss(w, model)
    curve, steps, diverged = [[0, _r(start)]], None, False
    for t in range(1, cap + 1):
        x, y = draw()
        loss = w.loss(model, x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if not checked(t):
            continue
        value = train_loss(w, model)
        if t & (t - 1) == 0:
            curve.append([t, _r(value)])
        if not (math.isfinite(value) and value <= 10 * start):
            diverged = True
            break
        if value <= target:
            steps = t
            curve.append([t, _r(value)])
            break
    return {"lr": float(f"{lr:.6g}"), "steps": steps, "diverged": diverged,
            "curve": curve}


def flat_grads(w: workloads.Workload, model: torch.nn.Module, chunk: int = 256):
    """Per-example gradients over the whole training set, flattened: an iterator of
    ``(chunk, n_params)`` float32 blocks (``torch.func``)."""
    from torch.func import functional_call, grad, vmap
    params = {n: p.detach() for n, p in model.named_parameters()}
    d = w.data()

    def loss(p, x, y):
        return w.loss_fn(lambda inp: functional_call(model, p, (inp,)), x[None], y[None])

    per = vmap(grad(loss), in_dims=(None, 0, 0))
    for i in range(0, len(d.train_x), chunk):
        g = per(params, d.train_x[i:i + chunk], d.train_y[i:i + chunk])
        yield torch.cat([v.flatten(1) for v in g.values()], 1)


def _hvp(w: workloads.Workload, model: torch.nn.Module, vector: torch.Tensor) -> torch.Tensor:
    """The Hessian of the whole-training-set loss times ``vector`` (flat)."""
    d = w.data()
    params = [p for p in model.parameters()]
    g = torch.autograd.grad(w.loss(model, d.train_x, d.train_y), params, create_graph=True)
    flat = torch.cat([x.flatten() for x in g])
    hv = torch.autograd.grad(flat @ vector, params)
    return torch.cat([x.flatten() for x in hv])


def exact_noise(w: workloads.Workload, model: torch.nn.Module, seed: int) -> dict[str, float]:
    r"""The noise scale from every per-example gradient :math:`g_i` of the training set:
    :math:`G = \bar g`, :math:`\operatorname{tr}\Sigma = \overline{|g_i - G|^2}` (the
    covariance of one draw with replacement), :math:`B_\text{simple}
    = \operatorname{tr}\Sigma/|G|^2`, and :math:`B_\text{noise}
    = \operatorname{tr}(H\Sigma)/G^\top H G` with :math:`\operatorname{tr}(H\Sigma)`
    averaged over :data:`HVP_SAMPLE` examples drawn with ``seed`` (``b_noise_stderr``: the
    standard error of that sample mean, divided by :math:`G^\top H G`)."""
    total: torch.Tensor | None = None
    sq, n = 0.0, 0
    for block in flat_grads(w, model):
        b = block.double()
        total = b.sum(0) if total is None else total + b.sum(0)
        sq += float(b.pow(2).sum())
        n += len(b)
    assert total is not None                     # the training set is not empty
    mean = total / n
    g2 = float(mean.pow(2).sum())
    trace = sq / n - g2
    idx = torch.randint(n, (HVP_SAMPLE,), generator=torch.Generator().manual_seed(seed))
    blocks = torch.cat(list(flat_grads(w, model)))
    g32 = mean.float()
    ghg = float(g32 @ _hvp(w, model, g32))
    quad = [float(v @ _hvp(w, model, v)) for v in (blocks[i] - g32 for i in idx.tolist())]
    thg = math.fsum(quad) / len(quad)
    se = math.sqrt(math.fsum((q - thg) ** 2 for q in quad) / (len(quad) - 1) / len(quad))
    return {"grad_sq": g2, "trace_sigma": trace, "b_simple": trace / g2,
            "ghg": ghg, "trace_h_sigma": thg, "b_noise": thg / ghg,
            "b_noise_stderr": se / ghg}


def noise_run(workload: str, seed: int) -> dict[str, Any]:
    """SGD at batch :data:`REF_BATCH` and rate :data:`REF_LR`, measuring the noise scale at
    initialisation and as the training loss first falls to each of :data:`LEVELS`."""
    w = workloads.get(workload)
    model = w.model(seed)
    opt = SGD(model.parameters(), lr=REF_LR[workload])
    draw = _sampler(w, REF_BATCH, seed)
    d = w.data()
    params = list(model.parameters())
    gen = torch.Generator().manual_seed(1000 + seed)

    def loss_of(indices: torch.Tensor) -> torch.Tensor:
        return w.loss(model, d.train_x[indices], d.train_y[indices])

    def measure(t: int, value: float) -> dict[str, Any]:
        small = gradient_sq_norms(loss_of, params, len(d.train_x), SMALL, DRAWS, gen)
        big = gradient_sq_norms(loss_of, params, len(d.train_x), BIG, DRAWS, gen)
        try:
            est = noise_scale(small, big, SMALL, BIG)
            estimate = {"estimate": _r(est.b_simple), "estimate_stderr": _r(est.stderr)}
        except ValueError:      # the estimate of |G|^2 came out <= 0
            estimate = {"estimate": None, "estimate_stderr": None}
        exact = exact_noise(w, model, seed)
        return {"step": t, "loss": _r(value), **{k: _r(v) for k, v in exact.items()},
                **estimate, "small_sq": _r(sum(small) / len(small)),
                "big_sq": _r(sum(big) / len(big))}

    levels = list(LEVELS[workload])
    points = [measure(0, train_loss(w, model))]
    for t in range(1, CAP + 1):
        x, y = draw()
        loss = w.loss(model, x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if not checked(t):
            continue
        value = train_loss(w, model)
        if value <= levels[0]:
            points.append({"level": levels.pop(0), **measure(t, value)})
            while levels and value <= levels[0]:
                levels.pop(0)
            if not levels:
                break
    return {"lr": REF_LR[workload], "points": points}


@timed
def execute(job: Job) -> dict[str, Any]:
    """Run ``job`` and return its record (what is stored)."""
    record: dict[str, Any] = {"kind": job.kind, "workload": job.workload,
                              "batch": job.batch, "k": job.k, "seed": job.seed}
    if job.kind == "steps":
        if job.k not in window(job.workload, job.batch):
            raise ValueError(f"Invalid k: {job.k}")
        record.update(steps_run(job.workload, job.batch, rate(job.k), job.seed,
                                TARGETS[job.workload]))
    elif job.kind == "noise":
        record.update(noise_run(job.workload, job.seed))
    else:
        raise ValueError(f"Invalid kind: {job.kind!r}")
    return record


# --- reading the stored runs ------------------------------------------------------------------

def table(records: Iterable[dict[str, Any]], workload: str) -> dict[int, dict[int, list]]:
    """``{batch: {k: [steps per seed, in seed order; inf if not reached]}}``."""
    out: dict[int, dict[int, dict[int, float]]] = {}
    for r in records:
        if r["kind"] == "steps" and r["workload"] == workload:
            s = math.inf if r["steps"] is None else float(r["steps"])
            out.setdefault(r["batch"], {}).setdefault(r["k"], {})[r["seed"]] = s
    return {b: {k: [v[s] for s in sorted(v)] for k, v in sorted(row.items())}
            for b, row in sorted(out.items())}


def _median(values: Sequence[float]) -> float:
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def best_rates(by_batch: dict[int, dict[int, list]]) -> dict[int, tuple[int, list]]:
    """``{batch: (best k, [steps per seed at it])}``: the rate with the fewest steps (median
    over seeds; the larger rate on a tie)."""
    out = {}
    for b, row in by_batch.items():
        k = min(row, key=lambda k: (_median(row[k]), -k))
        if not math.isfinite(_median(row[k])):
            raise ValueError(f"Invalid batch: {b} (no rate reached the target)")
        out[b] = (k, row[k])
    return out


def fit(batches: Sequence[float], steps: Sequence[float]) -> tuple[float, float]:
    r"""``(S_min, B_crit)`` of McCandlish et al.'s :math:`S = S_\text{min}(1 +
    B_\text{crit}/B)`, by least squares on the relative errors (:math:`S` is linear in
    :math:`1/B`: weights :math:`1/S_i`)."""
    if len(batches) != len(steps) or len(batches) < 2:
        raise ValueError(f"Invalid points: {len(batches)} batches, {len(steps)} steps")
    if any(not (s > 0 and math.isfinite(s)) for s in steps):
        raise ValueError(f"Invalid steps: {list(steps)}")
    x = torch.tensor([[1 / s, 1 / (b * s)] for b, s in zip(batches, steps)],
                     dtype=torch.float64)
    a, c = torch.linalg.lstsq(x, torch.ones(len(steps), 1, dtype=torch.float64)
                              ).solution.flatten().tolist()
    return a, c / a


def fit_seeds(best: dict[int, tuple[int, list]]) -> list[tuple[float, float]]:
    """:func:`fit` per seed, on the steps at each batch's best rate."""
    batches = sorted(best)
    n = len(best[batches[0]][1])
    return [fit(batches, [best[b][1][i] for b in batches]) for i in range(n)]


def lr_rule(batch: float, eps_max: float, b_noise: float) -> float:
    r"""McCandlish et al.'s best rate for SGD, :math:`\epsilon_\text{max}/(1 +
    B_\text{noise}/B)`: linear in :math:`B` below :math:`B_\text{noise}`, flat above."""
    if batch <= 0:
        raise ValueError(f"Invalid batch: {batch}")
    return eps_max / (1 + b_noise / batch)


GRID = Grid(name="batch", chapter="How large a batch?",
            about="SGD steps to a target loss at batches 4 to 1024 (each at its best of five rates;"
                  " digits MLP and logistic regression, three seeds) and the gradient noise scale "
                  "along training, 276 runs.",
            minutes=4, file="batch.jsonl", job=KEY, jobs=jobs, execute=execute,
            sample={"steps": 6, "noise": 1})
read = GRID.read
