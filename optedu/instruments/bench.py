r"""Measuring optimizer steps: bytes moved, memory traffic of ATen calls, interleaved timing.

The tools behind the chapter on fast steps (``tools/bench.py`` is the full benchmark; this
module holds what a notebook can run in seconds):

- :data:`TRAFFIC`: which parameter-sized tensors each rule reads and writes per step, counted
  from its equations, and :func:`bytes_per_element` (reads + writes);
- :func:`aten_traffic`: the ATen operations a function calls, each with the elements it reads
  and writes (a ``TorchDispatchMode`` sees every call), so the memory passes of torch's
  single-tensor, foreach and fused steps can be counted rather than guessed;
- :func:`interleaved_times`: time several step functions in rotated order, round after round,
  so a burst of load on a shared machine hits all of them alike;
- :func:`triad_bandwidth`: a STREAM-like in-place triad ``a += s b``;
- :func:`load_results` and :func:`find`: read ``bench/results_*.json`` of ``tools/bench.py``.

A timing is a property of one machine at one moment; nothing here asserts on one.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

# Parameter-sized tensors each rule reads and writes once per step, for an ideal one-pass kernel
# (temporaries stay in registers; scalars such as β^t cost nothing), after the first step, with
# the settings of tools/bench.py (SGD and LARS with momentum, the others at torch's defaults).
# θ parameters, g gradient; the state tensors are named as in each rule's equations.
TRAFFIC: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "SGD": (("θ", "g", "b"), ("θ", "b"), "momentum buffer b"),
    "Adam": (("θ", "g", "m", "v"), ("θ", "m", "v"), ""),
    "AdamW": (("θ", "g", "m", "v"), ("θ", "m", "v"), "decay scales θ: counted"),
    "Adagrad": (("θ", "g", "G"), ("θ", "G"), "G: sum of squares"),
    "RMSprop": (("θ", "g", "v"), ("θ", "v"), "uncentered, no momentum"),
    "Adadelta": (("θ", "g", "v", "u"), ("θ", "v", "u"), ""),
    "Adamax": (("θ", "g", "m", "u"), ("θ", "m", "u"), "u: infinity norm"),
    "NAdam": (("θ", "g", "m", "v"), ("θ", "m", "v"), "μ_t scalars"),
    "RAdam": (("θ", "g", "m", "v"), ("θ", "m", "v"), ""),
    "Rprop": (("θ", "g", "g_prev", "η"), ("θ", "g_prev", "η"), "η: step sizes"),
    "ASGD": (("θ", "g", "θ̄"), ("θ", "θ̄"), "θ̄: average"),
    "Adafactor": (("g", "θ", "g", "g", "θ"), ("θ",),
                  "g² means, ‖θ‖, ‖u‖: 3 passes"),
    "Lion": (("θ", "g", "m"), ("θ", "m"), ""),
    "LARS": (("θ", "g", "b", "θ", "g"), ("θ", "b"), "norms: 2nd pass"),
    "Lamb": (("θ", "g", "m", "v", "θ", "u"), ("m", "v", "u", "θ"),
             "trust ratio: 2nd pass"),
}


def bytes_per_element(name: str) -> int:
    """Elements moved per parameter per step by rule ``name`` (reads + writes of
    :data:`TRAFFIC`); times the element size (4 in fp32, 2 in bf16) it is bytes."""
    reads, writes, _ = TRAFFIC[name]
    return len(reads) + len(writes)


@dataclasses.dataclass(frozen=True)
class OpTraffic:
    """One ATen call: its name and the elements of distinct tensors it read and wrote."""
    name: str
    read: int
    written: int


def _distinct_numel(tensors: list[torch.Tensor]) -> int:
    seen, total = set(), 0
    for t in tensors:
        key = (t.data_ptr(), t.numel(), t.dtype)
        if key not in seen:
            seen.add(key)
            total += t.numel()
    return total


class _TrafficMode(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: list[OpTraffic] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        inputs, mutable = [], []
        schema = func._schema.arguments
        values = list(args) + [kwargs.get(a.name) for a in schema[len(args):]]
        for argument, value in zip(schema, values):
            tensors = [t for t in tree_leaves(value) if isinstance(t, torch.Tensor)]
            inputs += tensors
            if argument.alias_info is not None and argument.alias_info.is_write:
                mutable += tensors
        before = [t.clone() for t in mutable]
        out = func(*args, **kwargs)
        if mutable:  # a fused kernel may declare tensors mutable that it leaves alone
            written = [t for t, old in zip(mutable, before)
                       if not torch.equal(t, old)]
        else:
            written = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
        self.ops.append(OpTraffic(func.__name__, _distinct_numel(inputs),
                                  _distinct_numel(written)))
        return out


def aten_traffic(fn: Callable[[], object]) -> list[OpTraffic]:
    """Run ``fn()`` and return every ATen operation it called, in order, with the elements
    read (distinct input tensors, an in-place operation's own tensor included) and written
    (the tensors it may mutate whose values changed, or else its outputs). Each operation is one pass over the memory
    it touches: a one-pass rule on ``n`` parameters shows one operation of about
    ``bytes_per_element(rule) * n`` elements."""
    mode = _TrafficMode()
    with mode:
        fn()
    return mode.ops


def interleaved_times(steps: Mapping[str, Callable[[], object]], rounds: int,
                      calls: int = 1) -> dict[str, list[float]]:
    """Seconds per call of each function in ``steps``: ``rounds`` rounds, each timing
    ``calls`` calls of every function, in an order rotated from round to round."""
    labels = list(steps)
    times: dict[str, list[float]] = {label: [] for label in labels}
    for r in range(rounds):
        for label in labels[r % len(labels):] + labels[:r % len(labels)]:
            start = time.perf_counter()
            for _ in range(calls):
                steps[label]()
            times[label].append((time.perf_counter() - start) / calls)
    return times


def triad_bandwidth(n: int = 1 << 22, repeats: int = 5) -> float:
    """Bytes per second of the in-place triad ``a += s b`` on fp32 arrays of ``n`` elements,
    counted as STREAM counts a triad (three arrays: two read, one written), best of
    ``repeats``. Use arrays far larger than the caches (the default is 16 MiB each)."""
    a, b = torch.rand(n), torch.rand(n)
    a.add_(b, alpha=1e-3)  # touch every page once
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a.add_(b, alpha=1e-3)
        best = min(best, time.perf_counter() - start)
    return 3 * n * a.element_size() / best


def load_results(path: str | pathlib.Path) -> dict[str, Any]:
    """A results file of ``tools/bench.py``: ``{"machine": {...}, "results": [rows]}``."""
    return json.loads(pathlib.Path(path).read_text())


def find(results: Mapping[str, Any], optimizer: str, impl: str, shape: str = "large",
         dtype: str = "fp32", threads: int = 1) -> dict[str, Any]:
    """The one row of ``results`` for this optimizer, implementation and configuration."""
    rows = [r for r in results["results"]
            if (r["optimizer"], r["impl"], r["shape"], r["dtype"], r["threads"])
            == (optimizer, impl, shape, dtype, threads)]
    if len(rows) != 1:
        raise KeyError(f"{len(rows)} rows for {optimizer}, {impl}, {shape}, {dtype}, "
                       f"{threads} thread(s)")
    return rows[0]

