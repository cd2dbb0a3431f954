r"""Evidence for the cost table of "Optimizer memory" and the cheat sheet: what each rule of the
catalogue keeps in memory and how long its step takes, against AdamW, on one set of shapes.

``make experiments-cost`` runs every class of :data:`optedu.optim.catalogue.CATALOGUE` on
:data:`SHAPES` (two small transformer blocks, a 4-D convolution kernel, an output matrix and
their vectors) and stores, one JSON line a ``(rule, impl)`` job in ``experiments/cost.jsonl``:

* the **bytes** of the state it allocates after :data:`STEPS` steps on the quadratic of
  :func:`optedu.precision.memory.stepped` (:func:`optedu.precision.memory.state_bytes`), and,
  for optedu's classes, the closed form :func:`~optedu.precision.memory.predicted_state_bytes`
  reads from the catalogue's layouts: deterministic, re-run bit for bit by the tests;
* the **time** of a step: blocks of :data:`BLOCK` steps on fixed gradients, each followed (or,
  every other repeat, preceded) by a block of optedu's AdamW on the same tensors; the ratio of
  each pair, its median and quartiles over :data:`REPEATS` pairs. Interleaving makes the ratio
  robust to the machine's load drifting; the times themselves are not reproducible.

``impl`` is ``"optedu"`` for every row, ``"torch-foreach"`` and ``"torch-forloop"`` where
torch.optim has the class with both paths (``foreach=True`` / ``False``; not Muon, SparseAdam,
L-BFGS), and ``"heavyball"`` where heavyball
3.2.1 has the rule (:data:`HEAVYBALL`: its own defaults, eager: see :data:`HEAVYBALL_COMPILE`).
The runner runs one thread with torch's CPU kernels capped at AVX2, so the times are one core's;
the machine, its CPU and torch's version go to ``experiments/cost.meta.json``.
"""

from __future__ import annotations

import gc
import importlib
import inspect
import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

import torch

from optedu.instruments import store
from optedu.optim.adam import AdamW
from optedu.optim.catalogue import CATALOGUE, Rule
from optedu.optim.sgd import SGD
from optedu.precision.memory import predicted_state_bytes, state_bytes, stepped

from .grid import Grid, Job, Key

__all__ = ["GRID", "KEY", "SHAPES", "MATRICES", "SETTINGS", "HEAVYBALL", "IMPLS", "jobs",
           "execute", "build", "read", "table", "SPREAD"]

KEY = Key("rule", "impl")

_D, _FFN = 64, 256
_BLOCK = [(3 * _D, _D), (_D, _D), (_FFN, _D), (_D, _FFN), (_D,), (_D,), (_FFN,), (_D,)]
#: a transformer-like mix: two blocks (attention's in and out projections, the MLP's two
#: matrices, two norms' and the biases' vectors), a 4-D convolution kernel, an output matrix
SHAPES: tuple[tuple[int, ...], ...] = (*_BLOCK, *_BLOCK, (16, 8, 3, 3), (256, _D), (256,))
#: the shapes of a rule that takes matrices only (Muon): the 2-D ones
MATRICES = tuple(s for s in SHAPES if len(s) == 2)
#: steps before the state is measured (L-BFGS's closure runs its iterations within each)
STEPS = 3
#: steps per timed block, and pairs of blocks (rule, AdamW) timed
BLOCK, REPEATS = 10, 11
#: the arguments of each rule: its catalogue's first memory setting, but where that is a small
#: test's (8-bit blocks of 8, a history of 3, rank 2) the defaults or a quarter of the width
SETTINGS: dict[str, dict[str, Any]] = {
    rule.name: dict(rule.memory_settings[0]) for rule in CATALOGUE}
SETTINGS.update({
    "Adam8bit": {}, "AdamW8bit": {},
    "LBFGS": dict(history_size=10, max_iter=1),
    "SAM": dict(base_optimizer=SGD, lr=0.1, momentum=0.9),
    "SGD": dict(lr=0.1, momentum=0.9),
    "GaLoreAdamW": dict(rank=_D // 4, update_proj_gap=200, scale=0.25, proj_type="std"),
    "APOLLO": dict(rank=_D // 4, proj="random", scale_type="channel", proj_type="std",
                   update_proj_gap=200, scale=1.0),
})
#: rules timed with their closure (loss and gradient of the quadratic), AdamW then too: L-BFGS
#: and SAM evaluate it inside ``step``, SophiaH needs the gradient's graph
CLOSURE = ("LBFGS", "SAM", "SophiaH")
#: heavyball 3.2.1's class for each rule it has (its own defaults); Shampoo is not here: its
#: KLShampoo is another rule
HEAVYBALL = {"SGD": "SGD", "AdamW": "AdamW", "NAdam": "NAdam", "RMSprop": "RMSprop",
             "AdEMAMix": "AdEMAMix", "LaProp": "LaProp", "ADOPT": "ADOPT", "Muon": "Muon",
             "SOAP": "SOAP", "Kron": "PSGDKron", "Scion": "Scion",
             "AdamWScheduleFree": "SFAdamW"}
#: whether heavyball's step is compiled: its default, torch.compile in ``max-autotune`` mode,
#: took about a minute for its AdamW alone on the project's 2-core CPU (one trial), so its
#: eager path is timed
HEAVYBALL_COMPILE = False
#: how far a re-run's median ratio may lie from the stored one (a factor either way): six
#: re-runs of Lion (optedu) and Adam (torch, foreach) on the project's 2-core machine at load
#: 2 to 3.4 lay within a factor 1.50 of the runs stored at load 5 to 15; 2 leaves a margin
SPREAD = 2.0


def _impls(rule: Rule) -> list[str]:
    out = ["optedu"]
    if rule.twin and "foreach" in inspect.signature(getattr(torch.optim, rule.name)).parameters:
        out += ["torch-foreach", "torch-forloop"]
    if rule.name in HEAVYBALL:
        out.append("heavyball")
    return out


IMPLS = {rule.name: _impls(rule) for rule in CATALOGUE}


def jobs(stored: Sequence[dict[str, Any]], folder: Any = None) -> list[Job]:
    """Every rule of the catalogue, each implementation it has."""
    return [KEY(rule.name, impl) for rule in CATALOGUE for impl in IMPLS[rule.name]]


def _class(name: str, impl: str) -> tuple[type[torch.optim.Optimizer], dict[str, Any]]:
    rule = next(r for r in CATALOGUE if r.name == name)
    if impl == "optedu":
        return getattr(importlib.import_module(rule.module), name), dict(SETTINGS[name])
    if impl.startswith("torch-"):
        return (getattr(torch.optim, name),
                {**SETTINGS[name], "foreach": impl == "torch-foreach"})
    if impl == "heavyball":
        import heavyball
        import heavyball.utils
        heavyball.utils.compile_mode = "max-autotune-no-cudagraphs" if HEAVYBALL_COMPILE else None
        return getattr(heavyball, HEAVYBALL[name]), {"compile_step": HEAVYBALL_COMPILE}
    raise ValueError(f"Invalid impl: {impl!r}")


def build(name: str, impl: str = "optedu") -> torch.optim.Optimizer:
    """The optimizer of the job ``(name, impl)`` over float32 tensors of :data:`SHAPES` (seed
    0), after :data:`STEPS` steps: its state in place, its gradients those of the last."""
    cls, kwargs = _class(name, impl)
    shapes = MATRICES if next(r for r in CATALOGUE if r.name == name).matrices_only \
        else SHAPES
    if name == "SparseAdam":
        shapes = ((1000, _D),)
    optimizer = stepped(cls, shapes, **kwargs)
    for _ in range(STEPS - 1):
        _closure(optimizer, name)()
        if name in ("LBFGS", "SAM"):
            optimizer.step(_closure(optimizer, name))  # type: ignore[arg-type]
        else:
            optimizer.step()
    return optimizer


def _params(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for g in optimizer.param_groups for p in g["params"]]


def _closure(optimizer: torch.optim.Optimizer, name: str) -> Callable[[], torch.Tensor]:
    """The quadratic of :func:`~optedu.precision.memory.stepped`: loss and gradients."""
    params = _params(optimizer)
    if name == "SparseAdam":
        table = params[0]

        def sparse() -> torch.Tensor:
            optimizer.zero_grad()
            loss = torch.nn.functional.embedding(torch.tensor([0, 1, 1, 3]), table).pow(2).sum()
            table.grad = torch.autograd.grad(loss, table)[0].to_sparse()
            return loss
        return sparse

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = cast(torch.Tensor, sum((p * p).sum() * (i + 1) for i, p in enumerate(params)))
        if name == "SophiaH":
            for p, g in zip(params, torch.autograd.grad(loss, params, create_graph=True)):
                p.grad = g
        else:
            loss.backward()
        return loss
    return closure


def _stepper(optimizer: torch.optim.Optimizer, name: str) -> Callable[[], None]:
    """One step as timed: on fixed gradients, or with the closure (:data:`CLOSURE`)."""
    if name in ("LBFGS", "SAM"):
        closure = _closure(optimizer, name)

        def inside() -> None:
            optimizer.step(closure)  # type: ignore[arg-type]   # torch's stub: a float
        return inside
    if name == "SophiaH":
        closure = _closure(optimizer, name)

        def both() -> None:
            closure()
            optimizer.step()
        return both
    params = _params(optimizer)
    _closure(optimizer, name)()                  # some rules consume the gradients they read
    grads = [p.grad.clone() if p.grad is not None else None for p in params]

    def step() -> None:
        for p, g in zip(params, grads):
            p.grad = g
        optimizer.step()
    return step


def _reference(name: str, shapes: Sequence[tuple[int, ...]]) -> Callable[[], None]:
    """optedu's AdamW on the same tensors, stepped as the rule is (with the closure or not)."""
    optimizer = stepped(AdamW, shapes)
    mode = "SophiaH" if name in CLOSURE else "AdamW"
    return _stepper(optimizer, mode)


def _block(step: Callable[[], None]) -> float:
    start = time.perf_counter()
    for _ in range(BLOCK):
        step()
    return (time.perf_counter() - start) / BLOCK


def _all_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Every tensor's bytes in ``optimizer.state``, nested containers walked (heavyball)."""
    seen: set[int] = set()

    def walk(value: Any) -> int:
        if isinstance(value, torch.Tensor):
            if value.is_sparse or id(value) in seen:
                return 0
            seen.add(id(value))
            return value.numel() * value.element_size()
        if isinstance(value, dict):
            return sum(walk(v) for v in value.values())
        if isinstance(value, (list, tuple)):
            return sum(walk(v) for v in value)
        return 0
    return walk(list(optimizer.state.values()))


def execute(job: Job) -> dict[str, Any]:
    """One rule in one implementation: its state's bytes, then its step timed against AdamW."""
    start = time.monotonic()
    load = os.getloadavg()[0]
    optimizer = build(job.rule, job.impl)
    params = _params(optimizer)
    n = sum(p.numel() for p in params)
    record: dict[str, Any] = {"rule": job.rule, "impl": job.impl, "elements": n,
                              "tensors": len(params)}
    if job.impl == "heavyball":
        record["state_bytes"] = {"all": _all_bytes(optimizer)}
    else:
        record["state_bytes"] = state_bytes(optimizer)
    if job.impl == "optedu":
        pairs = (len(next(iter(optimizer.state.values()))["old_dirs"])
                 if job.rule == "LBFGS" else None)
        record["closed_form"] = predicted_state_bytes(optimizer, lbfgs_pairs=pairs)
    record["bytes_per_param"] = sum(record["state_bytes"].values()) / n
    record["timed"] = "with its closure" if job.rule in CLOSURE else "fixed gradients"
    step = _stepper(optimizer, job.rule)
    reference = _reference(job.rule, [tuple(p.shape) for p in params]
                           if job.rule != "SparseAdam" else [(1000, _D)])
    torch.set_flush_denormal(True)     # subnormal state would time the CPU's slow path
    try:
        _block(step), _block(reference)                  # warm: allocations, first calls
        ratios, rule_s, adamw_s = [], [], []
        for i in range(REPEATS):
            gc.collect()
            if i % 2:
                a, r = _block(reference), _block(step)
            else:
                r, a = _block(step), _block(reference)
            ratios.append(r / a)
            rule_s.append(r)
            adamw_s.append(a)
    finally:
        torch.set_flush_denormal(False)
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    record.update(
        ratio=store.rounded(statistics.median(ratios)), ratio_q1=store.rounded(q1),
        ratio_q3=store.rounded(q3), step_ms=store.rounded(1e3 * statistics.median(rule_s)),
        adamw_ms=store.rounded(1e3 * statistics.median(adamw_s)),
        threads=torch.get_num_threads(), load=round(load, 2),
        seconds=round(time.monotonic() - start, 2))
    return record


#: the fields a re-run cannot reproduce (times and the load)
TIMING = ("ratio", "ratio_q1", "ratio_q3", "step_ms", "adamw_ms", "load", "seconds")


GRID = Grid(name="cost", chapter="Optimizer memory",
            about="Every catalogued rule's state bytes and step time against AdamW on one set "
                  "of transformer-like shapes, optedu's, torch.optim's (foreach and for-loop) "
                  "and heavyball's where they have it.",
            minutes=10, file="cost.jsonl", job=KEY, jobs=jobs, execute=execute,
            sample={"Adam": 1, "Lion": 1})
read = GRID.read


def table(folder: Any = None) -> list[dict[str, Any]]:
    """One row per rule, in the catalogue's order: optedu's bytes per parameter, its time per
    step against AdamW (median, quartiles), torch's (foreach, for-loop) and heavyball's where
    stored, each as ``{impl: ratio}``."""
    records = {(r["rule"], r["impl"]): r for r in read(folder)}
    rows = []
    for rule in CATALOGUE:
        own = records[rule.name, "optedu"]
        rows.append({
            "rule": rule.name, "bytes_per_param": own["bytes_per_param"],
            "ratio": own["ratio"], "ratio_q1": own["ratio_q1"], "ratio_q3": own["ratio_q3"],
            "timed": own["timed"],
            "others": {impl: records[rule.name, impl]["ratio"] for impl in IMPLS[rule.name]
                       if impl != "optedu" and (rule.name, impl) in records},
            "other_bytes": {impl: records[rule.name, impl]["bytes_per_param"]
                            for impl in IMPLS[rule.name]
                            if impl != "optedu" and (rule.name, impl) in records}})
    return rows


def elements() -> int:
    """The parameter elements of :data:`SHAPES`."""
    return sum(math.prod(s) for s in SHAPES)
