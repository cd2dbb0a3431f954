"""Evidence for the chapter "What changes with scale": six optimizers, each tuned at every
rung of the language-model ladder, and the speed-up over AdamW at each size.

The workload is :mod:`optedu.choosing.lm`: a decoder-only transformer trained byte by byte
on the standard library's source, at the sizes of :data:`~optedu.choosing.lm.LADDER`
(55,536 to 1,860,640 non-embedding parameters, 33.5 times). The protocol follows Wen et al.
(2025) at small scale:

* **Budget**: :data:`TOKENS_PER_PARAMETER` training tokens per non-embedding parameter, in
  :data:`STEPS` steps at every size (the batch grows with the model). Eight tokens per
  parameter is 2.5 times below Chinchilla's twenty, set by the corpus: the top rung then
  reads its 4.0 MB of training text 3.7 times, under the four epochs that Muennighoff et
  al. (2023) found worth about as much as fresh text.
* **Schedule**: a linear warmup over 5 % of the steps, then a cosine to zero; schedule-free
  AdamW runs at a constant rate after its own warmup of the same length.
* **Tuning, per size and optimizer**, seed 0: the peak rate on half-decades
  ``centre · 10^(k/2)`` (:data:`CENTRE`), first ``k ∈ {-1, 0, 1}``, extended by one
  half-decade while the best is at an edge (at most :data:`REACH` each way), then refined
  at the best ``k ± 1/2``; then the decay at that rate: ``0``, the default
  (:data:`DECAY`) and three times it, extended upward (10, 30 times) while the largest is
  best. The best setting runs again with seeds 1 and 2.
* **Speed-up**: AdamW's best setting also runs with half, twice and four times the
  tokens (:data:`BUDGETS` steps, same batch; three seeds), so that the tokens AdamW needs to reach
  another optimizer's loss can be read off its curve of final loss against tokens (Wen et
  al.'s measure): :func:`speedups`. The longer runs keep the rate and decay tuned at the
  standard budget, where Wen et al. tune each budget: where AdamW's best rate falls with
  more tokens, its longer runs are a little worse than tuned ones and the speed-ups a little
  larger than theirs would be (and, at half the tokens, smaller). The longer runs also read
  the corpus more often: twice the tokens is 7.4 epochs at XL, four times 14.7 (6.3 at L),
  past the four epochs that are worth fresh text, which would raise the speed-ups at L and
  XL further.
* **What is not tuned**: β₁ and β₂ (the Adam family (0.9, 0.95), Lion its authors' (0.9,
  0.99), SOAP (0.95, 0.95)), Muon's momentum (0.95), every ε. Lion's β₂ matters here: at S,
  seed 0, rate 3·10⁻³, the default decay, (0.9, 0.95) ended at 2.17 where (0.9, 0.99) ended
  at 2.39 (one run each, measured when the protocol was reviewed), so Lion's speed-ups are
  those of an untuned β₂. The rate and the decay are chosen on seed 0 alone: a choice decided by less than the
  seeds' spread is a choice among equals.

Each run is one JSON line keyed ``(size, optimizer, rate, decay, steps, seed)`` (``rate``
the half-decade index ``k``, ``decay`` the multiple of the default decay), stored as soon as
it ends: ``make experiments-ladder`` on a CPU (one thread, kernels capped at AVX2, re-run bit
for bit by the tests), or ``python -m optedu.experiments.ladder --device cuda --label NAME``
on an accelerator, stored in ``ladder_NAME.jsonl`` with the device named in each record
(TF32 matrix products there; not re-run by the tests).

References: K. Wen et al., *Fantastic pretraining optimizers and where to find them*, 2025;
J. Hoffmann et al., *Training compute-optimal large language models*, 2022 (twenty tokens
per parameter); N. Muennighoff et al., *Scaling data-constrained language models*, 2023.
"""

from __future__ import annotations

import argparse
import functools
import math
import pathlib
import re
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any, cast

import torch
from torch import nn

from optedu.choosing import lm
from optedu.choosing.contestants import Training, schedule_for, WARMUP_FRACTION
from optedu.instruments import store
from optedu.optim.adam import AdamW
from optedu.optim.adam_mini import AdamMini
from optedu.optim.lion import Lion
from optedu.optim.muon import Muon
from optedu.optim.schedule_free import AdamWScheduleFree
from optedu.optim.soap import SOAP
from optedu.training.muon_groups import muon_adamw_groups

from .grid import Grid, Job, Key

__all__ = ["OPTIMIZERS", "TOKENS_PER_PARAMETER", "STEPS", "CENTRE", "DECAY", "COARSE",
           "REACH", "DECAYS", "SEEDS", "BUDGETS", "BETAS", "KEY", "SIZES", "CPU_SIZES", "batch",
           "parameters", "rate", "build", "plan", "execute", "grid_for", "GRID", "best",
           "speedups", "main"]

OPTIMIZERS = ("adamw", "muon", "soap", "lion", "sf_adamw", "adam_mini")
TOKENS_PER_PARAMETER = 8
STEPS = 512
#: the centre of each optimizer's rate grid (its rate at ``k = 0``)
CENTRE = {"adamw": 3e-3, "muon": 3e-3, "soap": 3e-3, "lion": 3e-4, "sf_adamw": 3e-3,
          "adam_mini": 3e-3}
#: the default decoupled weight decay (Lion's ten times AdamW's: its rate is ten times lower)
DECAY = {"adamw": 0.1, "muon": 0.1, "soap": 0.1, "lion": 1.0, "sf_adamw": 0.1,
         "adam_mini": 0.1}
COARSE = (-1, 0, 1)
REACH = 4
#: the multiples of the default decay that may be tried, in order
DECAYS = (0, 1, 3, 10, 30)
SEEDS = (0, 1, 2)
#: AdamW's other budgets, in steps of the same batch: half, twice and four times the tokens
BUDGETS = (STEPS // 2, STEPS * 2, STEPS * 4)
#: (β₁, β₂) of the Adam family, as language models are trained (Lion: (0.9, 0.99))
BETAS = (0.9, 0.95)

KEY = Key("size", "optimizer", "rate", "decay", "steps", "seed")
SIZES = {s.name: s for s in lm.LADDER}
#: the rungs the CPU grid (``make experiments-ladder``) plans so far. S took 729 s on one
#: core for its 73 runs (a standard AdamW run 7.1 s; AdamW's longer budgets and Muon's and
#: SOAP's dearer steps make the rung worth about 100 standard runs). Scaled by the step times
#: of each rung (0.49, 1.0 and 2.0 s per 4,096 tokens on one core against S's 16 µs a token),
#: M, L and XL would take about 9, 44 and 206 CPU-hours: the CPU ladder grows a rung at a
#: time, and an accelerator runs every rung (:func:`main`; on an H200 shared by 14 processes
#: a run at XL took 34 to 155 s). The H200's stored runs (96, L and XL only) were made from
#: this module as committed in 5e3f4cf, before the plan's double decay was fixed (which
#: changed no key), on torch 2.11 and Python 3.12, so their meta data name no commit.
CPU_SIZES = ("S",)


@functools.cache
def parameters(size: str) -> int:
    """Non-embedding parameters of the rung ``size``."""
    return lm.non_embedding_parameters(SIZES[size].model(0))


def batch(size: str) -> int:
    """Windows per step: :data:`TOKENS_PER_PARAMETER` tokens per parameter in :data:`STEPS`
    steps of :data:`~optedu.choosing.lm.CONTEXT` bytes."""
    return max(1, round(TOKENS_PER_PARAMETER * parameters(size) / (STEPS * lm.CONTEXT)))


def rate(optimizer: str, k: float) -> float:
    """The peak rate at half-decade ``k``: ``CENTRE[optimizer] · 10^(k/2)``."""
    return CENTRE[optimizer] * 10.0 ** (k / 2)


def _decayed(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Matrices (embedding and head included) decay; gains do not."""
    params = list(model.parameters())
    return [{"params": [p for p in params if p.ndim == 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.ndim != 2], "weight_decay": 0.0}]


def build(optimizer: str, model: lm.GPT, lr: float, weight_decay: float,
          steps: int) -> Training:
    """The optimizers of one run and their schedule.

    * ``adamw``, ``lion``, ``soap``: one optimizer over the model (matrices decay, gains
      not); SOAP preconditions every matrix (refreshed every 10 steps, its default) and
      treats the gains as Adam does;
    * ``muon``: Muon (momentum 0.95, Nesterov, Moonlight's ``match_rms_adamw`` scaling, so
      one rate serves both) for the blocks' matrices; AdamW for the embedding, the head and
      the gains (:func:`optedu.training.muon_groups.muon_adamw_groups`);
    * ``sf_adamw``: schedule-free AdamW with its own warmup (5 % of the steps), no schedule;
    * ``adam_mini``: Adam-mini with the model's width and heads; its name rules are told
      this model's names (queries and keys ``attention.q`` and ``attention.k`` per head,
      values, outputs, MLP, embedding and head per row, gains one number each).
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"Invalid optimizer: {optimizer!r} (known: {OPTIMIZERS})")
    if optimizer == "sf_adamw":
        warmup = max(1, round(WARMUP_FRACTION * steps))
        return Training([AdamWScheduleFree(_decayed(model, weight_decay), lr=lr,
                                           betas=BETAS, warmup_steps=warmup)], None)
    if optimizer == "adamw":
        opts: list[torch.optim.Optimizer] = [AdamW(_decayed(model, weight_decay), lr=lr,
                                                   betas=BETAS)]
    elif optimizer == "lion":
        opts = [Lion(_decayed(model, weight_decay), lr=lr, betas=(0.9, 0.99))]
    elif optimizer == "soap":
        opts = [SOAP(_decayed(model, weight_decay), lr=lr, betas=(0.95, 0.95))]
    elif optimizer == "muon":
        hidden, rest = muon_adamw_groups(model, "head", adamw_weight_decay=weight_decay)
        opts = [Muon(hidden, lr=lr, weight_decay=weight_decay, momentum=0.95,
                     adjust_lr_fn="match_rms_adamw"),
                AdamW(rest, lr=lr, betas=BETAS)]
    else:
        width = model.embed.weight.shape[1]
        heads = cast(lm.Block, model.blocks[0]).attention.heads
        mini = AdamMini(model.named_parameters(), lr=lr, betas=BETAS,
                        weight_decay=weight_decay, dim=width, n_heads=heads)
        mini.wqk_names |= {"attention.q.", "attention.k."}
        mini.wv_names |= {"attention.v."}
        mini.attn_proj_names |= {"attention.o."}
        mini.output_names |= {"head."}
        opts = [mini]
    return Training(opts, schedule_for(steps))


def _final(record: dict[str, Any] | None) -> float:
    if record is None or record["final"] is None:
        return math.inf
    return record["final"]


def _job(size: str, optimizer: str, k: float, decay: int, steps: int, seed: int,
         device: str) -> Job:
    return KEY(size, optimizer, k, decay, steps, seed, inputs={"device": device})


def plan(stored: Sequence[dict[str, Any]], sizes: Iterable[str] = tuple(SIZES),
         device: str = "cpu") -> list[Job]:
    """Every job the protocol asks for, given the records stored so far (see the module's
    docstring); phases whose inputs are not all stored yet are not planned."""
    records = {KEY.of(r): r for r in stored}
    jobs: list[Job] = []
    for size in sizes:
        for opt in OPTIMIZERS:
            def job(k: float, d: int = 1, steps: int = STEPS, seed: int = 0) -> Job:
                return _job(size, opt, k, d, steps, seed, device)

            def get(k: float, d: int = 1, steps: int = STEPS, seed: int = 0):
                return records.get((size, opt, k, d, steps, seed))

            # 1. rates on half-decades, extended while the best is at an edge
            ks = list(COARSE)
            while True:
                jobs += [job(k) for k in ks if job(k) not in jobs]
                if any(get(k) is None for k in ks):
                    break
                top = min(ks, key=lambda k: _final(get(k)))
                if top == min(ks) and top > -REACH:
                    ks.insert(0, top - 1)
                elif top == max(ks) and top < REACH:
                    ks.append(top + 1)
                else:
                    break
            if any(get(k) is None for k in ks):
                continue
            # 2. refined at the best ± a quarter-decade
            top = min(ks, key=lambda k: _final(get(k)))
            fine = sorted(set(ks) | {top - 0.5, top + 0.5})
            jobs += [job(k) for k in fine if k not in ks]
            if any(get(k) is None for k in fine):
                continue
            k_best = min(fine, key=lambda k: _final(get(k)))
            # 3. the decay at the best rate: 0, 1 and 3 times the default, extended upward
            ds = [0, 1, 3]
            while True:
                jobs += [job(k_best, d) for d in ds if d != 1 and job(k_best, d) not in jobs]
                if any(get(k_best, d) is None for d in ds):
                    break
                d_top = min(ds, key=lambda d: _final(get(k_best, d)))
                nxt = DECAYS.index(ds[-1]) + 1
                if d_top == ds[-1] and nxt < len(DECAYS):
                    ds.append(DECAYS[nxt])
                else:
                    break
            if any(get(k_best, d) is None for d in ds):
                continue
            d_best = min(ds, key=lambda d: _final(get(k_best, d)))
            # 4. the best setting with the other seeds, and AdamW at its other budgets
            jobs += [job(k_best, d_best, STEPS, s) for s in SEEDS[1:]]
            if opt == "adamw":
                jobs += [job(k_best, d_best, b, s) for b in BUDGETS for s in SEEDS]
    return jobs


def execute(job: Job) -> dict[str, Any]:
    """Run ``job``; its record: the key, the rate and decay it ran with, the batch, tokens
    and parameters, the curves, the final validation loss, the device and the seconds."""
    device = job.inputs.get("device", "cpu")
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
    start = time.monotonic()
    size = SIZES[job.size]
    model = size.model(job.seed).to(device)
    lr = rate(job.optimizer, job.rate)
    decay = DECAY[job.optimizer] * job.decay
    training = build(job.optimizer, model, lr, decay, job.steps)
    b = batch(job.size)
    corpus = lm.stdlib_source(job.inputs.get("corpus"))
    out = lm.train(model, training, job.steps, b, job.seed, corpus, device=device)
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu"
    return {**job.asdict(), "lr": lr, "weight_decay": decay, "batch": b,
            "tokens": job.steps * b * lm.CONTEXT, "parameters": parameters(job.size),
            "final": store.rounded(out["final"]), "diverged": out["diverged"],
            "steps_done": out["steps_done"],
            "evals": [(t, store.rounded(v)) for t, v in out["evals"]],
            "train_loss": [(t, store.rounded(v)) for t, v in out["train_loss"]],
            "device": name, "seconds": round(time.monotonic() - start, 2)}


def _jobs(device: str, corpus: str | None, stored: Sequence[dict[str, Any]],
          folder: pathlib.Path | None) -> list[Job]:
    jobs = plan(stored, CPU_SIZES if device == "cpu" else tuple(SIZES), device=device)
    if corpus is not None:
        jobs = [KEY(*j.key, inputs={**j.inputs, "corpus": corpus}) for j in jobs]
    return jobs


def grid_for(device: str = "cpu", label: str | None = None,
             corpus: str | None = None) -> Grid:
    """The ladder's grid on ``device``: on a CPU the rungs :data:`CPU_SIZES`, stored in
    ``ladder.jsonl``; elsewhere every rung, stored in ``ladder_LABEL.jsonl``; ``corpus``:
    the folder holding Python 3.11.7's standard library (default this interpreter's)."""
    if device != "cpu" and not label:
        raise ValueError(f"Invalid label: {label!r} (a run on {device} needs a name for "
                         "its file, such as the device's model)")
    file = "ladder.jsonl" if device == "cpu" else f"ladder_{label}.jsonl"
    return Grid(
        name="ladder", chapter="What changes with scale (to be written)",
        about="six optimizers tuned per size on the language-model ladder (on a CPU so "
              f"far the rungs {', '.join(CPU_SIZES)}; M, L and XL would take about 9, 44 and "
              "206 CPU-hours), three seeds at each best, AdamW at half, twice and four "
              "times the tokens.",
        minutes=12 if device == "cpu" else 60, file=file, job=KEY,
        jobs=functools.partial(_jobs, device, corpus), execute=execute,
        sample={"S": 2})


GRID = grid_for()


def best(records: Sequence[dict[str, Any]], size: str, optimizer: str
         ) -> tuple[float, int] | None:
    """The ``(rate, decay)`` the protocol chose for ``optimizer`` at ``size`` (the setting
    that ran with every seed), or ``None`` if not yet."""
    seeds: dict[tuple[float, int], set[int]] = {}
    for r in records:
        if (r["size"], r["optimizer"], r["steps"]) == (size, optimizer, STEPS):
            seeds.setdefault((r["rate"], r["decay"]), set()).add(r["seed"])
    done = [s for s, have in seeds.items() if have >= set(SEEDS)]
    if len(done) > 1:
        raise ValueError(f"Invalid records: {optimizer} at {size} ran every seed at "
                         f"{len(done)} settings ({done}); the protocol chooses one")
    return done[0] if done else None


def speedups(records: Sequence[dict[str, Any]], size: str, optimizer: str
             ) -> list[float] | None:
    """Per seed, the tokens AdamW needs to reach ``optimizer``'s final loss at the standard
    budget divided by that budget: AdamW's final loss against tokens (its best setting at
    half, one, two and four times the budget, the same seed) interpolated linearly in log
    tokens. Bounds, not values: ``inf`` for beyond four times the budget, ``0`` for below
    half; ``nan`` where AdamW's curve is not falling; ``None`` until all runs are stored."""
    mine, theirs = best(records, size, optimizer), best(records, size, "adamw")
    if mine is None or theirs is None:
        return None
    by_key = {KEY.of(r): r for r in records}
    out = []
    for seed in SEEDS:
        target = _final(by_key[(size, optimizer, *mine, STEPS, seed)])
        curve = []
        for steps in sorted((*BUDGETS, STEPS)):
            r = by_key.get((size, "adamw", *theirs, steps, seed))
            if r is None:
                return None
            curve.append((math.log(steps), _final(r)))
        if any(y1 > y0 for (_, y0), (_, y1) in zip(curve, curve[1:])):
            out.append(math.nan)               # more tokens did not lower AdamW's loss
            continue
        if target <= curve[-1][1]:
            out.append(math.inf)
            continue
        if target > curve[0][1]:
            out.append(0.0)
            continue
        for (x0, y0), (x1, y1) in zip(curve, curve[1:]):
            if y1 <= target <= y0:
                x = x0 if y0 == y1 else x0 + (y0 - target) / (y0 - y1) * (x1 - x0)
                out.append(math.exp(x) / STEPS)
                break
        else:
            out.append(math.nan)   # AdamW's curve is not monotone around the target
    return out


def main(argv: Iterable[str] | None = None) -> int:
    """Run the ladder on a device: ``python -m optedu.experiments.ladder --device cuda
    --label h200 --workers 12``."""
    from .runner import run_parallel
    parser = argparse.ArgumentParser(description=(main.__doc__ or "").splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--label", default=None, help="names the file: ladder_LABEL.jsonl "
                        "(auto: the device's model, such as h200)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--deadline", type=float, default=None,
                        help="seconds after which no job is started")
    parser.add_argument("--corpus", default=None,
                        help="folder of Python 3.11.7's standard library")
    parser.add_argument("--folder", type=pathlib.Path, default=None)
    args = parser.parse_args(None if argv is None else list(argv))
    label = args.label
    if label == "auto" and args.device.startswith("cuda"):
        name = torch.cuda.get_device_name(args.device)
        model = re.search(r"\b[A-Z]+\d{2,4}\b", name)
        label = (model.group(0) if model else name.split()[-1]).lower()
    grid = grid_for(args.device, label, args.corpus)
    # on a CPU the small rungs first (each is done before the next starts); on a device the
    # longest runs first (no long run is left at the end)
    sign = 1 if args.device == "cpu" else -1
    meta = run_parallel(grid, args.workers, args.folder, args.deadline,
                        priority=lambda j: sign * parameters(j.size) * j.steps)
    print(f"ladder on {args.device}: {meta['runs']} runs stored in "
          f"{grid.path(args.folder)}, {meta['ran_now']} now in {meta['seconds_now']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
