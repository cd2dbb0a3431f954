"""Benchmark optedu's optimizer steps against torch.optim's single-tensor, foreach and fused ones.

    .venv/bin/python tools/bench.py --quick      # a few minutes: fp32, one thread, 5 rounds
    .venv/bin/python tools/bench.py              # the full grid (run it on an idle machine)
    .venv/bin/python tools/bench.py --quick --optimizers Adam SGD --shapes large

An optimizer step is memory-bound: it streams a few tensors of the parameters' size through the
processor and does a handful of flops per element. So every timing here sits beside a
**roofline**: the bytes each rule must move per parameter (table :data:`BYTES` below, counted
from the update rule) times the number of parameters, divided by the bandwidth that a
STREAM-like triad reaches in torch on the same threads, is the fastest possible step. Each
implementation's *fraction of the roofline* is that limit over its measured time (1 = as fast as
memory allows).

Implementations (where they exist): ``optedu`` (one-tensor rule, a Python loop over tensors),
``optedu-foreach`` (``foreach=True``: the rule's foreach form, on lists), ``optedu-compiled``
(``torch.compile`` of optedu's step, with ``--compile``), ``torch-compiled`` (``torch.compile`` of
torch's foreach step, torch's own compiled optimizer, with ``--compile``: the same compiler as
``optedu-fused``, so the two show what the compiler's loop costs against torch's hand-written
fused kernel), ``torch`` (``foreach=False``),
``torch-foreach`` (``foreach=True``), ``torch-fused`` (``fused=True``), ``optedu-fused``
(``fused=True``: the rule's fused form, each tensor's step compiled into one kernel; held
against ``torch-fused``, or against torch's single-tensor step where torch has no fused one).
A compiled path's first step compiles it: ``compile_s`` is that step's time less a timed step's,
and ``break_even_steps`` the steps after which the compiled path has won it back against optedu's
fastest uncompiled path.

Timing: every implementation owns its own copy of the same parameters and gradients. A *round*
times ``--steps`` steps of each implementation, in an order rotated from round to round
(interleaved, so a burst of load on this shared machine hits all of them alike). The reported
time is the median over rounds of the time per step; the ratio to ``torch`` is computed *within*
each round and reported as its median with its interquartile range and its minimum and maximum.
The process's CPU time is recorded beside the wall time (``cpu_time_s``, ``cpu_ratio_to_torch``):
with one thread it leaves out the time other processes hold the core, though not their share of
the memory bandwidth, so on a loaded machine its ratio is the steadier of the two.

Writes ``bench/results_<tag>.json`` (everything, with the CPU model, threads, torch version and
load averages), ``bench/results_<tag>.csv`` (one row per measurement) and
``bench/figure_<tag>.png``. ``<tag>`` is ``quick`` or ``full`` unless ``--tag`` says otherwise.
"""

from __future__ import annotations

import argparse
import collections
import csv
import dataclasses
import datetime
import gc
import json
import os
import pathlib
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

# the Inductor cache the user chose, if any, read before torch: importing torch._dynamo (as
# torch.compile and some libraries do) writes the default into this variable
USER_INDUCTOR_CACHE = os.environ.get("TORCHINDUCTOR_CACHE_DIR")

import torch  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import optedu  # noqa: E402
from optedu.instruments.bench import TRAFFIC, bytes_per_element  # noqa: E402

# ------------------------------------------------------------------------------------------------
# Bytes moved per parameter per step, in units of one element (× 4 bytes in fp32, × 2 in bf16):
# an ideal one-pass ("fused") kernel reads each tensor the rule reads once and writes each
# tensor it changes once; temporaries and scalars cost nothing. The counts, with their
# derivation from each rule's equations, are optedu.instruments.bench.TRAFFIC (the chapter "Making the step
# fast" prints that table); three rules are counted from another's:
#   SparseAdam:     Adam's traffic, on the gradient's nonzero rows only (the benchmark's
#                   gradients are sparse with their density, reported beside it)
#   Muon:           SGD-momentum's traffic (read θ, g, b; write θ, b), but its step is
#                   Newton–Schulz matrix products: compute-bound, the memory roofline is a
#                   loose lower bound
#   LBFGS:          not counted (a line search and a history of vector pairs, not one pass)
BYTES: dict[str, int | None] = {
    **{name: bytes_per_element(name) for name in TRAFFIC},
    "SparseAdam": bytes_per_element("Adam"), "Muon": bytes_per_element("SGD"), "LBFGS": None,
}

# STREAM's triad a = b + s c moves three arrays: two read, one written. The probe runs it in
# place, a = a + s b (read a and b, write a), as every optimizer step writes its tensors in place:
# an out-of-place a = b + s c also reads a's lines before writing them (write-allocate), traffic
# STREAM does not count, and would understate the bandwidth an in-place update can reach.
TRIAD_ARRAYS = 3

SHAPES: dict[str, tuple[int, tuple[int, ...]]] = {
    "large": (10, (1000, 1000)),  # few large tensors: the 10 x 10^6
    "small": (1000, (32, 32)),    # many small ones: ~10^6 elements in 1000 tensors
    # large's 10^7 elements as one tensor (40 MB in fp32, more than a typical L3 cache): no path
    # can keep a tensor in cache from one line of the rule to the next (--shapes one; not in
    # the default grid)
    "one": (1, (10_000, 1000)),
}
DEFAULT_SHAPES = ["large", "small"]
# Muon's step is matrix products (Newton-Schulz): 10 x 1000 x 1000 would take seconds a step
MUON_SHAPES: dict[str, tuple[int, tuple[int, ...]]] = {
    "large": (10, (64, 64)),   # torch and optedu multiply in bf16, slow on this CPU
    "small": (100, (16, 16)),
}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


@dataclasses.dataclass(frozen=True)
class Case:
    """One optimizer: its optedu class, its torch twin (or ``None``), settings, torch's paths."""
    name: str
    ours: type[torch.optim.Optimizer]
    theirs: type[torch.optim.Optimizer] | None
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    torch_paths: tuple[str, ...] = ("torch", "torch-foreach")
    sparse: bool = False      # SparseAdam: sparse gradients
    closure: bool = False     # LBFGS: step(closure)
    shapes: dict[str, tuple[int, tuple[int, ...]]] = dataclasses.field(
        default_factory=lambda: SHAPES)


SINGLE = ("torch",)
FUSED = ("torch", "torch-foreach", "torch-fused")
CASES = [
    Case("SGD", optedu.SGD, torch.optim.SGD, dict(lr=1e-3, momentum=0.9), FUSED),
    Case("Adam", optedu.Adam, torch.optim.Adam, {}, FUSED),
    Case("AdamW", optedu.AdamW, torch.optim.AdamW, {}, FUSED),
    Case("Adagrad", optedu.Adagrad, torch.optim.Adagrad, {}, FUSED),
    Case("RMSprop", optedu.RMSprop, torch.optim.RMSprop),
    Case("Adadelta", optedu.Adadelta, torch.optim.Adadelta),
    Case("Adamax", optedu.Adamax, torch.optim.Adamax),
    Case("NAdam", optedu.NAdam, torch.optim.NAdam),
    Case("RAdam", optedu.RAdam, torch.optim.RAdam),
    Case("Rprop", optedu.Rprop, torch.optim.Rprop),
    Case("ASGD", optedu.ASGD, torch.optim.ASGD),
    Case("Adafactor", optedu.Adafactor, torch.optim.Adafactor),
    Case("Muon", optedu.Muon, torch.optim.Muon, {}, SINGLE, shapes=MUON_SHAPES),
    Case("SparseAdam", optedu.SparseAdam, torch.optim.SparseAdam, {}, SINGLE, sparse=True,
         shapes={"large": SHAPES["large"], "small": (100, (32, 32))}),  # ~1 ms per sparse grad
    Case("LBFGS", optedu.LBFGS, torch.optim.LBFGS, dict(max_iter=1), SINGLE, closure=True),
    # optedu's own rules, against themselves (no torch twin): time and roofline only
    Case("Lion", optedu.Lion, None, {}, ()),
    Case("LARS", optedu.LARS, None, dict(lr=1e-3, momentum=0.9), ()),
    Case("Lamb", optedu.Lamb, None, dict(lr=1e-3), ()),
]
# rows of the SparseAdam gradient that are nonzero
SPARSE_DENSITY = 0.1


def optedu_fused_cases() -> set[str]:
    """The optimizers whose optedu class takes ``fused`` (a rule with a fused form)."""
    import inspect
    return {case.name for case in CASES
            if "fused" in inspect.signature(case.ours.__init__).parameters}


def optedu_foreach_cases() -> set[str]:
    """The optimizers whose optedu class takes ``foreach`` (a rule with a foreach form)."""
    try:
        import optedu.optim.foreach  # noqa: F401
    except ImportError:
        return set()
    return {"SGD", "Adam", "AdamW"}


# ------------------------------------------------------------------------------------------------
# machine


def cpu_model() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_caches(root: pathlib.Path = pathlib.Path("/sys/devices/system/cpu/cpu0/cache")
               ) -> dict[str, int]:
    """Bytes of each cache level of CPU 0 as Linux reports them under ``root``
    ({"L1d": ..., "L3": ...}); empty where it does not say."""
    caches = {}
    for index in sorted(root.glob("index*")):
        try:
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        units = {"K": 2**10, "M": 2**20, "G": 2**30}
        value = int(size[:-1]) * units[size[-1]] if size[-1] in units else int(size)
        suffix = {"Data": "d", "Instruction": "i"}.get(kind, "")
        caches[f"L{level}{suffix}"] = value
    return caches


def machine() -> dict[str, Any]:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, check=False).stdout.strip()
    except OSError:
        commit = ""
    return {
        "cpu": cpu_model(), "cpu_count": os.cpu_count(), "caches": cpu_caches(),
        "platform": platform.platform(),
        "python": platform.python_version(), "torch": torch.__version__,
        "torch_threads_default": torch.get_num_threads(), "git_commit": commit,
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "load_average_start": list(os.getloadavg()),
        # glibc malloc's tunables, when set: they decide whether large temporaries are mapped
        # afresh (and page-fault) at every step
        "malloc_env": {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")},
    }


def minor_faults() -> int:
    """Minor page faults of this process so far: a step whose temporaries come from memory
    newly mapped by the allocator pays one per 4 KiB page, on top of its traffic."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def triad_bandwidth(threads: int, n: int = 1 << 24, repeats: int = 15) -> dict[str, float]:
    """Bytes per second of the in-place triad a = a + s b (fp32, ``n`` elements per array,
    64 MiB each: far beyond the caches).

    Counted as STREAM counts: 3 n elements moved (two reads, one write); like STREAM, the
    best of the repeats is the bandwidth (the median is kept too). The out-of-place STREAM
    triad a = b + s c is measured and stored beside it."""
    torch.set_num_threads(threads)
    b = torch.rand(n)
    c = torch.rand(n)
    a = torch.rand(n)

    def best_and_median(kernel: Callable[[], object]) -> tuple[float, float]:
        kernel()  # touch every page once
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            kernel()
            times.append(time.perf_counter() - start)
        moved = TRIAD_ARRAYS * n * a.element_size()
        return moved / min(times), moved / statistics.median(times)

    best, median = best_and_median(lambda: a.add_(b, alpha=1e-3))
    stream_best, stream_median = best_and_median(lambda: torch.add(b, c, alpha=3.0, out=a))
    return {"best": best, "median": median, "stream_triad_best": stream_best,
            "stream_triad_median": stream_median, "array_mib": n * a.element_size() / 2**20}


# ------------------------------------------------------------------------------------------------
# implementations


def make_params(case: Case, shape_name: str, dtype: torch.dtype,
                seed: int = 0) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The parameters and gradients every implementation copies."""
    count, shape = case.shapes[shape_name]
    gen = torch.Generator().manual_seed(seed)
    params = [torch.randn(shape, generator=gen).to(dtype) for _ in range(count)]
    grads = []
    for _ in range(count):
        dense = torch.randn(shape, generator=gen).to(dtype)
        if case.sparse:
            rows = max(1, int(SPARSE_DENSITY * shape[0]))
            index = torch.randperm(shape[0], generator=gen)[:rows].sort().values
            dense = torch.sparse_coo_tensor(index[None], dense[index], shape).coalesce()
        grads.append(dense)
    return params, grads


class Impl:
    """One implementation, owning its copy of the parameters: ``step()`` runs one step."""

    def __init__(self, label: str, case: Case, params: list[torch.Tensor],
                 grads: list[torch.Tensor]) -> None:
        self.label = label
        self.params = [p.clone().requires_grad_(True) for p in params]
        for p, g in zip(self.params, grads):
            p.grad = g.clone()
        kwargs = dict(case.kwargs)
        if label == "torch":
            cls = case.theirs
            if case.torch_paths != SINGLE:
                kwargs["foreach"] = False
        elif label == "torch-foreach":
            cls, kwargs["foreach"] = case.theirs, True
        elif label == "torch-fused":
            cls, kwargs["fused"] = case.theirs, True
        elif label == "torch-compiled":
            cls, kwargs["foreach"] = case.theirs, True
        elif label == "optedu-foreach":
            cls, kwargs["foreach"] = case.ours, True
        elif label == "optedu-fused":
            cls, kwargs["fused"] = case.ours, True
        else:
            cls = case.ours
        self.optimizer = cls(self.params, **kwargs)
        self.closure = (lambda: torch.ones(())) if case.closure else None
        step = self.optimizer.step
        if label in ("optedu-compiled", "torch-compiled"):
            step = torch.compile(step, fullgraph=False)
        self._step = step

    def step(self) -> None:
        if self.closure is None:
            self._step()
        else:
            self._step(self.closure)


def impl_labels(case: Case, compiled: bool) -> list[str]:
    labels = list(case.torch_paths) + ["optedu"]
    if case.name in optedu_foreach_cases():
        labels.append("optedu-foreach")
    if case.name in optedu_fused_cases():
        labels.append("optedu-fused")
    if compiled and not case.sparse and not case.closure:
        labels.append("optedu-compiled")
        if "torch-fused" in case.torch_paths:
            labels.append("torch-compiled")
    return labels


# the torch implementation each optedu one is held against (besides torch's single-tensor)
TWINS = {"optedu": "torch", "optedu-foreach": "torch-foreach", "optedu-compiled": "torch-fused",
         "optedu-fused": "torch-fused", "torch-compiled": "torch-fused"}


def quartiles(values: Sequence[float]) -> dict[str, float]:
    """Median, first and third quartiles, minimum and maximum."""
    ordered = sorted(values)
    if len(ordered) == 1:
        q1 = q3 = ordered[0]
    else:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    return {"median": statistics.median(ordered), "q1": q1, "q3": q3,
            "min": ordered[0], "max": ordered[-1]}


def measure(case: Case, shape_name: str, dtype_name: str, threads: int, rounds: int,
            steps: int, warmup: int, labels: Sequence[str],
            bandwidth: float) -> list[dict[str, Any]]:
    """Interleaved rounds of every implementation of ``case`` on one configuration."""
    torch.set_num_threads(threads)
    dtype = DTYPES[dtype_name]
    params, grads = make_params(case, shape_name, dtype)
    impls, errors, first_step = [], {}, {}
    for label in labels:
        try:
            impl = Impl(label, case, params, grads)
            for k in range(warmup):  # state created, RAdam past its 5-step warm-up
                start = time.perf_counter()
                impl.step()
                if k == 0:       # a compiled path compiles here
                    first_step[label] = time.perf_counter() - start
            impls.append(impl)
        except (RuntimeError, TypeError, ValueError, NotImplementedError) as error:
            errors[label] = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
    del params
    if not impls:
        return [{"optimizer": case.name, "impl": label, "shape": shape_name, "dtype": dtype_name,
                 "threads": threads, "error": errors[label]} for label in labels]
    load_before = os.getloadavg()[0]
    times: dict[str, list[float]] = {impl.label: [] for impl in impls}
    cpu_times: dict[str, list[float]] = {impl.label: [] for impl in impls}
    faults: dict[str, list[float]] = {impl.label: [] for impl in impls}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(rounds):
            order = impls[r % len(impls):] + impls[:r % len(impls)]  # rotate the order
            for impl in order:
                start_faults = minor_faults()
                start, start_cpu = time.perf_counter(), time.process_time()
                for _ in range(steps):
                    impl.step()
                cpu_times[impl.label].append((time.process_time() - start_cpu) / steps)
                faults[impl.label].append((minor_faults() - start_faults) / steps)
                times[impl.label].append((time.perf_counter() - start) / steps)
    finally:
        if gc_was_enabled:
            gc.enable()
    load_after = os.getloadavg()[0]
    count, shape = case.shapes[shape_name]
    numel = count * torch.Size(shape).numel()
    per_element = BYTES.get(case.name)
    density = SPARSE_DENSITY if case.sparse else 1.0
    bytes_per_step = (None if per_element is None else
                      per_element * numel * density * torch.empty((), dtype=dtype).element_size())
    roofline = None if bytes_per_step is None else bytes_per_step / bandwidth
    reference = times.get("torch")
    rows = []
    for label in labels:
        row: dict[str, Any] = {
            "optimizer": case.name, "impl": label, "shape": shape_name,
            "tensors": count, "tensor_shape": list(shape), "numel": numel, "dtype": dtype_name,
            "threads": threads, "rounds": rounds, "steps_per_round": steps,
            "bytes_per_element": per_element, "bytes_per_step": bytes_per_step,
            "roofline_s": roofline, "load_before": load_before, "load_after": load_after,
        }
        if label in errors:
            row["error"] = errors[label]
            rows.append(row)
            continue
        t = times[label]
        row["time_s"] = quartiles(t)
        row["roofline_fraction"] = (None if roofline is None else
                                    quartiles([roofline / x for x in t]))
        row["cpu_time_s"] = quartiles(cpu_times[label])
        row["minor_faults_per_step"] = quartiles(faults[label])
        if label in ("optedu-fused", "optedu-compiled", "torch-compiled"):
            step = statistics.median(t)
            # a graph compiled by an earlier shape costs nothing here
            row["compile_s"] = max(0.0, first_step[label] - step)
            family = label.split("-")[0]           # optedu's against optedu's
            uncompiled = [statistics.median(times[x]) for x in (family, f"{family}-foreach")
                          if x in times]
            gain = min(uncompiled) - step if uncompiled else 0.0
            row["break_even_steps"] = (row["compile_s"] / gain
                                       if gain > 0 and row["compile_s"] > 0 else None)
        twin = TWINS.get(label)
        if twin not in times and label == "optedu-fused":
            twin = "torch"          # torch has no fused step for this rule
        if twin in times:  # optedu-foreach against torch-foreach, per round
            row["twin"] = twin
            row["ratio_to_twin"] = quartiles([x / y for x, y in zip(t, times[twin])])
            row["cpu_ratio_to_twin"] = quartiles(
                [x / y for x, y in zip(cpu_times[label], cpu_times[twin])])
        if reference is not None:
            row["ratio_to_torch"] = quartiles([x / y for x, y in zip(t, reference)])
            row["cpu_ratio_to_torch"] = quartiles(
                [x / y for x, y in zip(cpu_times[label], cpu_times["torch"])])
        rows.append(row)
    return rows


def top_level_ops(impl: Impl) -> collections.Counter[str]:
    """The ATen operations one step of ``impl`` calls from Python (not those inside other ATen
    operations), with their counts, from ``torch.profiler``."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        impl.step()
    return collections.Counter(
        e.name for e in prof.events()
        if e.name.startswith("aten::")
        and (e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::")))


def same_ops(case: Case) -> dict[str, Any]:
    """Whether optedu's step and torch's single-tensor step call the same ATen operations
    (after the warm-up, on two small tensors). When they do, the kernels that stream the
    memory are the same, and on large tensors the two can differ only by noise and by
    Python's per-tensor overhead, which the many-small-tensors shape measures."""
    params, grads = make_params(case, "small", torch.float32)
    counts = {}
    for label in ("torch", "optedu"):
        impl = Impl(label, case, params[:2], grads[:2])
        for _ in range(6):
            impl.step()
        counts[label] = top_level_ops(impl)
    differ = {op: [counts["torch"][op], counts["optedu"][op]]
              for op in sorted(set(counts["torch"]) | set(counts["optedu"]))
              if counts["torch"][op] != counts["optedu"][op]}
    return {"same": not differ, "differ_torch_optedu": differ}


# ------------------------------------------------------------------------------------------------
# output


CSV_FIELDS = ["optimizer", "impl", "shape", "tensors", "numel", "dtype", "threads", "rounds",
              "steps_per_round", "time_median_s", "time_q1_s", "time_q3_s",
              "ratio_median", "ratio_q1", "ratio_q3", "ratio_min", "ratio_max",
              "cpu_ratio_median", "cpu_ratio_q1", "cpu_ratio_q3", "twin",
              "twin_ratio_median", "twin_ratio_q1", "twin_ratio_q3", "twin_ratio_min",
              "twin_ratio_max",
              "bytes_per_element", "roofline_s", "roofline_fraction_median",
              "minor_faults_median", "compile_s", "break_even_steps", "load_before",
              "load_after", "error"]


def csv_row(row: dict[str, Any]) -> dict[str, Any]:
    out = {key: row.get(key) for key in CSV_FIELDS}
    if "time_s" in row:
        out.update(time_median_s=row["time_s"]["median"], time_q1_s=row["time_s"]["q1"],
                   time_q3_s=row["time_s"]["q3"])
    if "minor_faults_per_step" in row:
        out.update(minor_faults_median=row["minor_faults_per_step"]["median"])
    if "ratio_to_torch" in row:
        ratio = row["ratio_to_torch"]
        out.update(ratio_median=ratio["median"], ratio_q1=ratio["q1"], ratio_q3=ratio["q3"],
                   ratio_min=ratio["min"], ratio_max=ratio["max"])
    if "cpu_ratio_to_torch" in row:
        ratio = row["cpu_ratio_to_torch"]
        out.update(cpu_ratio_median=ratio["median"], cpu_ratio_q1=ratio["q1"],
                   cpu_ratio_q3=ratio["q3"])
    if "ratio_to_twin" in row:
        ratio = row["ratio_to_twin"]
        out.update(twin_ratio_median=ratio["median"], twin_ratio_q1=ratio["q1"],
                   twin_ratio_q3=ratio["q3"], twin_ratio_min=ratio["min"],
                   twin_ratio_max=ratio["max"])
    if row.get("roofline_fraction"):
        out["roofline_fraction_median"] = row["roofline_fraction"]["median"]
    return out


IMPL_ORDER = ["torch", "torch-foreach", "torch-fused", "torch-compiled", "optedu",
              "optedu-foreach", "optedu-fused", "optedu-compiled"]
COLOURS = {"torch": "#4c72b0", "torch-foreach": "#55a868", "torch-fused": "#c44e52",
           "torch-compiled": "#8c8c8c",
           "optedu": "#dd8452", "optedu-foreach": "#8172b3", "optedu-fused": "#da8bc3",
           "optedu-compiled": "#937860"}


def figure(rows: list[dict[str, Any]], path: pathlib.Path, meta: dict[str, Any]) -> None:
    """One panel per (dtype, shape, threads): each implementation's fraction of the roofline
    (median, bars from the first to the third quartile over rounds)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configs = sorted({(r["dtype"], r["shape"], r["threads"]) for r in rows})
    names = [c.name for c in CASES if any(r["optimizer"] == c.name and r.get("roofline_fraction")
                                          for r in rows)]
    fig, axes = plt.subplots(len(configs), 1, figsize=(12, 3.2 * len(configs)), squeeze=False)
    for ax, (dtype, shape, threads) in zip(axes[:, 0], configs):
        width = 0.8 / len(IMPL_ORDER)
        for k, label in enumerate(IMPL_ORDER):
            xs, ys, lo, hi = [], [], [], []
            for i, name in enumerate(names):
                for r in rows:
                    if ((r["optimizer"], r["impl"], r["dtype"], r["shape"], r["threads"])
                            == (name, label, dtype, shape, threads) and r.get("roofline_fraction")):
                        f = r["roofline_fraction"]
                        xs.append(i + (k - len(IMPL_ORDER) / 2 + 0.5) * width)
                        ys.append(f["median"])
                        lo.append(f["median"] - f["q1"])
                        hi.append(f["q3"] - f["median"])
            if xs:
                ax.bar(xs, ys, width, yerr=[lo, hi], label=label, color=COLOURS[label],
                       capsize=1.5, error_kw={"lw": 0.8})
        count, tshape = SHAPES[shape]
        ax.set_title(f"{dtype}, {count} tensors of {'x'.join(map(str, tshape))}, "
                     f"{threads} thread{'s' if threads > 1 else ''}", fontsize=10)
        ax.set_xticks(range(len(names)), names, fontsize=8)
        ax.set_ylabel("fraction of roofline")
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_ylim(0, max(1.05, ax.get_ylim()[1]))
    axes[0, 0].legend(ncol=len(IMPL_ORDER), fontsize=8, loc="upper right")
    fig.suptitle(f"Optimizer step: fraction of the memory roofline (higher is faster)\n"
                 f"{meta['cpu']}, torch {meta['torch']}, {meta['date_utc']}, "
                 f"load average {meta['load_average_start'][0]:.1f}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'optimizer':<11}{'impl':<16}{'shape':<6}{'dt':<5}{'thr':>3} {'ms/step':>8} "
          f"{'ratio (IQR) [min-max]':>30} {'cpu ratio (IQR)':>18} {'roofline':>8} {'load':>5}")
    for r in rows:
        head = (f"{r['optimizer']:<11}{r['impl']:<16}{r['shape']:<6}{r['dtype']:<5}"
                f"{r['threads']:>3}")
        if "error" in r:
            print(f"{head}  {r['error'][:70]}")
            continue
        ratio = r.get("ratio_to_torch")
        ratio_text = ("" if ratio is None else
                      f"{ratio['median']:.3f} ({ratio['q1']:.2f}-{ratio['q3']:.2f}) "
                      f"[{ratio['min']:.2f}-{ratio['max']:.2f}]")
        cpu = r.get("cpu_ratio_to_torch")
        cpu_text = "" if cpu is None else f"{cpu['median']:.3f} ({cpu['q1']:.2f}-{cpu['q3']:.2f})"
        frac = r.get("roofline_fraction")
        frac_text = "" if frac is None else f"{frac['median']:.3f}"
        twin = r.get("ratio_to_twin")
        twin_text = ("" if twin is None or r["twin"] == "torch" else
                     f"  vs {r['twin']}: {twin['median']:.3f} ({twin['q1']:.2f}-{twin['q3']:.2f})"
                     f" [{twin['min']:.2f}-{twin['max']:.2f}]")
        print(f"{head} {1e3 * r['time_s']['median']:8.2f} {ratio_text:>30} {cpu_text:>18} "
              f"{frac_text:>8} {r['load_before']:5.2f}{twin_text}", flush=True)


# ------------------------------------------------------------------------------------------------


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="fp32, one thread, 5 rounds: a few minutes")
    parser.add_argument("--optimizers", nargs="+", default=[c.name for c in CASES],
                        choices=[c.name for c in CASES], metavar="NAME")
    parser.add_argument("--impls", nargs="+", default=None, choices=IMPL_ORDER,
                        help="only these implementations (default: all that exist)")
    parser.add_argument("--shapes", nargs="+", default=DEFAULT_SHAPES, choices=list(SHAPES))
    parser.add_argument("--dtypes", nargs="+", default=None, choices=list(DTYPES))
    parser.add_argument("--threads", nargs="+", default=None,
                        help="thread counts, 'all' for every core (default: 1 all)")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None, help="steps timed per round")
    parser.add_argument("--warmup", type=int, default=6, help="steps before timing")
    parser.add_argument("--compile", action="store_true",
                        help="also time torch.compile of optedu's step")
    parser.add_argument("--tag", default=None, help="results file suffix (quick / full)")
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "bench")
    parser.add_argument("--no-figure", action="store_true")
    parser.add_argument("--replot", type=pathlib.Path, default=None, metavar="JSON",
                        help="only redraw the figure of a stored results file")
    args = parser.parse_args(argv)
    args.dtypes = args.dtypes or (["fp32"] if args.quick else list(DTYPES))
    args.threads = args.threads or (["1"] if args.quick else ["1", "all"])
    args.threads = sorted({os.cpu_count() or 1 if t == "all" else int(t) for t in args.threads})
    args.rounds = args.rounds or (5 if args.quick else 15)
    args.steps = args.steps or (2 if args.quick else 3)
    args.tag = args.tag or ("quick" if args.quick else "full")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    if args.replot is not None:
        stored = json.loads(args.replot.read_text())
        path = args.replot.with_name(args.replot.stem.replace("results_", "figure_") + ".png")
        figure(stored["results"], path, stored["machine"])
        print(f"wrote {path}")
        return 0
    meta = machine()
    # compiled paths compile from nothing: a fresh Inductor cache, not an earlier run's kernels
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = (USER_INDUCTOR_CACHE
                                             or tempfile.mkdtemp(prefix="bench-inductor-"))
    meta["inductor_cache"] = "the user's" if USER_INDUCTOR_CACHE else "fresh"
    meta["tree_dirty"] = bool(subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
        capture_output=True, text=True).stdout.strip())
    meta["arguments"] = {k: (str(v) if isinstance(v, pathlib.Path) else v)
                         for k, v in vars(args).items()}
    meta["bandwidth"] = {}
    for threads in args.threads:
        bw = triad_bandwidth(threads)
        meta["bandwidth"][str(threads)] = bw
        print(f"in-place triad, {threads} thread(s): best {bw['best'] / 1e9:.1f} GB/s, "
              f"median {bw['median'] / 1e9:.1f} GB/s (STREAM triad best "
              f"{bw['stream_triad_best'] / 1e9:.1f} GB/s)", flush=True)
    print(f"{meta['cpu']}, torch {meta['torch']}, load {meta['load_average_start']}")
    rows: list[dict[str, Any]] = []
    selected = [c for c in CASES if c.name in args.optimizers]
    if any(c.name in optedu_fused_cases() for c in selected) or args.compile:
        # the compiler's one-time start-up (imports, worker pool), paid by whichever rule
        # compiles first: measured apart so that every compile_s is the rule's own
        start = time.perf_counter()
        torch.compile(lambda x: x * 2 + 1, fullgraph=True)(torch.ones(8))
        meta["compiler_startup_s"] = time.perf_counter() - start
        print(f"compiler start-up: {meta['compiler_startup_s']:.1f} s")
    meta["same_aten_ops_as_torch"] = {}
    torch.set_num_threads(1)
    for case in selected:
        if case.theirs is not None:
            check = same_ops(case)
            meta["same_aten_ops_as_torch"][case.name] = check
            print(f"{case.name}: optedu calls the same ATen ops as torch's single-tensor step: "
                  f"{check['same']}" + ("" if check["same"] else
                                        f" (torch, optedu: {check['differ_torch_optedu']})"))
    for dtype_name in args.dtypes:
        for threads in args.threads:
            bandwidth = meta["bandwidth"][str(threads)]["best"]
            for shape_name in args.shapes:
                for case in (c for c in selected if shape_name in c.shapes):
                    labels = impl_labels(case, args.compile)
                    if args.impls:
                        labels = [x for x in labels if x in args.impls]
                    new = measure(case, shape_name, dtype_name, threads, args.rounds,
                                  args.steps, args.warmup, labels, bandwidth)
                    print_table(new)
                    rows.extend(new)
                    gc.collect()
    meta["load_average_end"] = list(os.getloadavg())
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"results_{args.tag}"
    stem.with_suffix(".json").write_text(json.dumps({"machine": meta, "results": rows},
                                                    indent=1) + "\n")
    with stem.with_suffix(".csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(csv_row(r) for r in rows)
    if not args.no_figure:
        figure(rows, args.out / f"figure_{args.tag}.png", meta)
    print(f"wrote {stem}.json, {stem}.csv" +
          ("" if args.no_figure else f", {args.out / f'figure_{args.tag}.png'}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
