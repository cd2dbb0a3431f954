r"""Every optedu optimizer under FSDP2 on two processes, against one process.

:func:`classify` builds each optimizer class of optedu's rules
(:func:`optimizer_classes`: read from the folders, so a new class is never
forgotten; and the foreach implementations, :data:`VARIANTS`) on the MLP of
:mod:`optedu.distributed.runs` sharded by FSDP2 (``fully_shard`` on each
linear layer and on the model, ``Shard(0)`` on a mesh of the ranks), takes a
few steps in one :func:`launch` (all optimizers in the same processes),
takes the same steps in this process on the whole model, and labels each
rule:

* ``"element-wise"``: the step communicates nothing, and the parameters
  equal the single process's to rounding;
* ``"fixed"``: the rule reads whole tensors, and reduces what it reads over
  the mesh (its step communicates: through ``torch.distributed``, counted
  in bytes, or through DTensor's own reductions, counted as calls); the
  parameters equal the single process's to rounding;
* ``"refused"``: the rule raised ``ValueError`` from
  :func:`optedu.optim._sharding.refuse_sharded` (rule, shape, placement);
* ``"silent"``: no error, and the parameters differ. Must never happen;
* ``"crashed"``: another exception (DTensor's own errors). Must never
  happen either: a rule refuses in its own words.

"Equal to rounding" is a relative difference of the displacements from the
initial weights (:func:`step_difference`) of at most :data:`TOLERANCE` in
float64.

Run ``python -m optedu.distributed.sharded_rules`` to print the table and
store it in ``experiments/sharded_rules.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import json
import os
import pathlib
import pkgutil
import platform
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:                       # for the annotations only: no import cost
    from torch.distributed.tensor import DTensor

from optedu.optim.catalogue import CATALOGUE

from .comm import count_collectives
from .launcher import launch
from .runs import default_dtype, relative_difference

TOLERANCE = 1e-12
WIDTHS = (8, 16, 16, 4)
BATCH = 32
STEPS = 3
SEED = 0

# arguments per class, the catalogue's small run (optedu.optim.catalogue.Rule.small_run):
# non-default options where a rule has them (so more of its code runs), a learning rate at which
# three steps move the weights; the 8-bit rules quantise every tensor (min_8bit_size=0), not
# only large ones
KWARGS: dict[str, dict[str, Any]] = {rule.name: dict(rule.small_run) for rule in CATALOGUE}

# keys of the weights' group for the rules that project it (GaLore, APOLLO)
LOW_RANK: dict[str, dict[str, Any]] = {rule.name: dict(rule.weights_group)
                                       for rule in CATALOGUE if rule.weights_group}

# classes that only serve as the base of rules
BASES = frozenset({"Optimizer", "ForeachOptimizer", "FusedOptimizer"})

# a second implementation of a rule, a row of its own: "<class> <variant>"
VARIANTS: dict[str, dict[str, Any]] = {
    "SGD foreach": dict(KWARGS["SGD"], foreach=True),
    "Adam foreach": dict(KWARGS["Adam"], foreach=True),
    "AdamW foreach": dict(KWARGS["AdamW"], foreach=True),
}

# rules that take matrices only (their MLP has no biases)
MATRICES_ONLY = frozenset(rule.name for rule in CATALOGUE if rule.matrices_only)


def rule_names() -> list[str]:
    """The rows :func:`classify` runs by default: every class of
    :func:`optimizer_classes`, then the :data:`VARIANTS`."""
    return list(optimizer_classes()) + list(VARIANTS)


def class_of(name: str) -> type[torch.optim.Optimizer]:
    """The optimizer class of a row (``"Adam foreach"``: ``Adam``)."""
    return optimizer_classes()[name.split()[0]]


def optimizer_classes() -> dict[str, type[torch.optim.Optimizer]]:
    """Every public ``torch.optim.Optimizer`` subclass defined in a module of
    :mod:`optedu.optim` or :mod:`optedu.precision` (read from the folders,
    so a new rule is never forgotten), by name, less the bases
    (:data:`BASES`): the list :func:`classify` runs."""
    import optedu.optim
    import optedu.precision
    found = {}
    for package in (optedu.optim, optedu.precision):
        for info in pkgutil.iter_modules(package.__path__):
            if info.ispkg:                  # optim.variants: other conventions
                continue
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            for name, obj in inspect.getmembers(module, inspect.isclass):
                if (obj.__module__ == module.__name__
                        and issubclass(obj, torch.optim.Optimizer)
                        and not name.startswith("_") and name not in BASES):
                    found[name] = obj
    return dict(sorted(found.items()))


def arguments(name: str) -> dict[str, Any]:
    """The constructor arguments :func:`classify` gives class ``name``."""
    if name not in KWARGS and name not in VARIANTS:
        raise ValueError(f"Invalid name value: {name!r} (no small_run: add its row "
                         f"to optedu/optim/catalogue.py)")
    kwargs = dict(VARIANTS[name] if name in VARIANTS else KWARGS[name])
    if "base_optimizer" in kwargs:
        from optedu.optim.sgd import SGD
        kwargs["base_optimizer"] = SGD
    return kwargs


def make_model(name: str, widths: Sequence[int] = WIDTHS) -> nn.Sequential:
    """The seeded MLP (float64, tanh) of layer ``widths``, biases unless the
    rule takes matrices only."""
    torch.manual_seed(SEED)
    bias = name not in MATRICES_ONLY
    layers: list[nn.Module] = []
    for d_in, d_out in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(d_in, d_out, bias=bias, dtype=torch.float64),
                   nn.Tanh()]
    return nn.Sequential(*layers[:-1])


def make_batch(rank: int = 0, world_size: int = 1,
               widths: Sequence[int] = WIDTHS
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank ``rank``'s contiguous slice of the seeded batch."""
    gen = torch.Generator().manual_seed(SEED + 1)
    x = torch.randn(BATCH, widths[0], generator=gen, dtype=torch.float64)
    y = torch.randn(BATCH, widths[-1], generator=gen, dtype=torch.float64)
    return x.chunk(world_size)[rank], y.chunk(world_size)[rank]


def _groups(name: str, model: nn.Module) -> list[Any]:
    """Weights, then biases with their own group (a second group keeps the
    sharded optimizers honest); LBFGS takes one list only, Adam-mini the
    named tensors; GaLore's and APOLLO's weights group names its rank."""
    named = list(model.named_parameters())
    if name == "LBFGS":
        return [p for _, p in named]
    if name == "AdamMini":
        return named
    weights = [p for n, p in named if not n.endswith("bias")]
    biases = [p for n, p in named if n.endswith("bias")]
    if name in ("NorMuon", "MuonClip"):    # Muon for the matrices, AdamW for the rest
        return ([{"params": weights, "use_muon": True}]
                + ([{"params": biases, "use_muon": False}] if biases else []))
    return ([{"params": weights, **LOW_RANK.get(name, {})}]
            + ([{"params": biases}] if biases else []))


@contextlib.contextmanager
def _counting() -> Iterator[dict[str, Any]]:
    """The collectives in the block: ``log`` as :func:`count_collectives`
    records them (``torch.distributed``'s functions), and ``all``, every
    collective DTensor or anything else issued (torch's
    ``CommDebugMode``), so a rule that communicates behind DTensor's back
    is seen too."""
    from torch.distributed.tensor.debug import CommDebugMode
    seen: dict[str, Any] = {}
    with CommDebugMode() as mode, count_collectives() as log:
        yield seen
    seen.update(log=list(log), all=mode.get_total_counts())


def _train(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
           world_size: int) -> dict[str, Any]:
    """:data:`STEPS` steps with a closure (SAM and LBFGS need one); the
    collectives inside ``step`` less those of the closure's forward and
    backward passes (FSDP2's own)."""
    cls = class_of(name)
    opt = cls(_groups(name, model), **arguments(name))
    if hasattr(opt, "train"):
        opt.train()                       # schedule-free: y, the train point
    inner: list[dict[str, Any]] = []

    def closure() -> torch.Tensor:
        with _counting() as seen:
            opt.zero_grad()
            loss = F.mse_loss(model(x), y)
            loss.backward()
        inner.append(seen)
        return loss

    with warnings.catch_warnings():
        # FSDP2 on a Sequential of one-layer modules: harmless notes about views and hooks
        warnings.filterwarnings("ignore", message="FSDP2-wrapped module")
        warnings.filterwarnings("ignore", message="Full backward hook")
        for _ in range(STEPS):
            closure()
            inner.clear()
            with _counting() as outer:
                # torch's closures return the loss tensor; its stub says a float
                opt.step(closure)  # type: ignore[arg-type]
    if hasattr(opt, "eval"):
        opt.eval()                        # schedule-free: x, the average
    counted = (sum(b for _, b in outer["log"])
               - sum(b for s in inner for _, b in s["log"]))
    calls = len(outer["log"]) - sum(len(s["log"]) for s in inner)
    hidden = outer["all"] - sum(s["all"] for s in inner) - calls
    params = [p.full_tensor() if hasattr(p, "full_tensor") else p
              for p in model.parameters()]
    return {"params": [p.detach().clone() for p in params],
            "step_bytes": counted, "step_collectives": calls,
            "hidden_collectives": hidden}


def _shard(model: nn.Sequential, world_size: int) -> None:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    mesh = init_device_mesh("cpu", (world_size,))
    for layer in model:
        if isinstance(layer, nn.Linear):
            fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)


def run_rank(rank: int, world_size: int, names: Sequence[str],
             widths: Sequence[int] = WIDTHS) -> list[dict[str, Any]]:
    """Every rule in ``names`` on this rank, FSDP2-sharded; a rule that
    raises gives its exception's type and message instead of parameters."""
    out = []
    for name in names:
        with default_dtype(torch.float64):
            model = make_model(name, widths)
            _shard(model, world_size)
            x, y = make_batch(rank, world_size, widths)
            try:
                out.append(_train(name, model, x, y, world_size))
            except Exception as exc:  # noqa: BLE001 - recorded, classified
                out.append({"error": type(exc).__name__,
                            "message": str(exc)})
        torch.distributed.barrier()
    return out


def mixed_sums_rank(rank: int, world_size: int) -> dict[str, Any]:
    """A group that mixes a sharded matrix (``Shard(0)``, seeded 6×3) and a
    plain vector (the same on every rank, as DDP or an unwrapped module
    leaves it): :func:`optedu.optim._sharding.sum_of_squares` and
    :func:`~optedu.optim._sharding.norms` of the pair on this rank, for a
    test against the whole tensors. Each whole tensor must count once: the
    plain vector's sum is not added over the ranks."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor

    from optedu.optim._sharding import norms, sum_of_squares
    gen = torch.Generator().manual_seed(SEED)
    matrix = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    vector = torch.randn(4, generator=gen, dtype=torch.float64)
    mesh = init_device_mesh("cpu", (world_size,))
    pieces = distribute_tensor(matrix, mesh, [Shard(0)])
    from optedu.optim.dog import DoG, LDoG
    steps = {}
    for name, cls in (("DoG", DoG), ("LDoG", LDoG)):  # sums over the group: each once
        whole = [torch.nn.Parameter(matrix.clone()), torch.nn.Parameter(vector.clone())]
        mixed = [torch.nn.Parameter(distribute_tensor(matrix, mesh, [Shard(0)])),
                 torch.nn.Parameter(vector.clone())]
        opts = cls(whole), cls(mixed)
        for _ in range(2):
            for a, b in zip(whole, mixed):
                a.grad = torch.cos(a.detach())
                b.grad = torch.cos(b.detach())
            for opt in opts:
                opt.step()
        steps[name] = relative_difference([cast("DTensor", mixed[0]).full_tensor(), mixed[1]],
                                          whole)
    return {"sum_of_squares": sum_of_squares(pieces, vector).tolist(),
            "norms": norms([pieces, vector]).tolist(),
            "whole": [float(matrix.square().sum()),
                      float(vector.square().sum())],
            "steps": steps}


def run_single(name: str, widths: Sequence[int] = WIDTHS) -> dict[str, Any]:
    """The reference: the whole model and batch in this process."""
    with default_dtype(torch.float64):
        x, y = make_batch(widths=widths)
        return _train(name, make_model(name, widths), x, y, 1)


def step_difference(name: str, sharded: Sequence[torch.Tensor],
                    single: Sequence[torch.Tensor],
                    widths: Sequence[int] = WIDTHS) -> float:
    r"""``max |Δa - Δb| / max |Δb|``: the relative difference of the
    *displacements* from the initial weights (a rule that moves by
    :math:`10^{-6}`, DoG's first steps, would otherwise look exact)."""
    init = [p.detach() for p in make_model(name, widths).parameters()]
    return relative_difference([a - w for a, w in zip(sharded, init)],
                               [b - w for b, w in zip(single, init)])


def label(row: Mapping[str, Any], tolerance: float = TOLERANCE) -> str:
    """The class of one row (see the module docstring)."""
    if "error" in row:
        refused = (row["error"] == "ValueError"
                   and "cannot step a sharded parameter" in row["message"])
        return "refused" if refused else "crashed"
    if row["relative_difference"] > tolerance:
        return "silent"
    talks = row["step_bytes"] > 0 or row.get("hidden_collectives", 0) > 0
    return "fixed" if talks else "element-wise"


def classify(names: Sequence[str] | None = None, world_size: int = 2,
             timeout: float = 300.0, widths: Sequence[int] = WIDTHS,
             launcher: Callable[..., list[Any]] = launch
             ) -> list[dict[str, Any]]:
    """One row per optimizer class (all of :func:`rule_names` by default:
    every class, and the foreach implementations): ``rule``, ``class``
    (:func:`label`), ``relative_difference`` from the single process
    (:func:`step_difference`; ``None`` when a rank raised), ``step_bytes``
    and ``step_collectives`` (rank 0's last ``optimizer.step``, FSDP2's own
    gathers excluded), ``hidden_collectives`` (those not made through
    ``torch.distributed``'s functions, so not in the bytes), ``ranks_identical``, and ``error``/``message`` for a rule that
    raised."""
    names = rule_names() if names is None else list(names)
    per_rank = launcher(run_rank, world_size, (names, tuple(widths)),
                        timeout=timeout)
    rows = []
    for i, name in enumerate(names):
        ranks = [results[i] for results in per_rank]
        first = ranks[0]
        row: dict[str, Any] = {"rule": name}
        if "error" in first:
            row.update(error=first["error"], message=first["message"],
                       relative_difference=None, step_bytes=None,
                       step_collectives=None, hidden_collectives=None,
                       ranks_identical=None)
        else:
            single = run_single(name, widths)
            row.update(
                relative_difference=step_difference(
                    name, first["params"], single["params"], widths),
                step_bytes=first["step_bytes"],
                step_collectives=first["step_collectives"],
                hidden_collectives=first["hidden_collectives"],
                ranks_identical=all(
                    all(torch.equal(p, q)
                        for p, q in zip(first["params"], r["params"]))
                    for r in ranks[1:] if "params" in r))
        row["class"] = label(row)
        rows.append(row)
    return rows


def table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as a plain-text table (rule, class, difference, bytes)."""
    lines = [f"{'rule':<18}{'class':<14}{'rel. diff.':>12}{'bytes/step':>12}"]
    for r in rows:
        diff = ("-" if r["relative_difference"] is None
                else f"{r['relative_difference']:.1e}")
        size = "-" if r["step_bytes"] is None else str(r["step_bytes"])
        lines.append(f"{r['rule']:<18}{r['class']:<14}{diff:>12}{size:>12}")
    return "\n".join(lines)


STORED = pathlib.Path("experiments/sharded_rules.json")


def read_stored(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The stored classification (``make experiments-sharded-rules``), read
    from the data ``folder`` the caller passes (a chapter passes
    ``optedu.instruments.store.folder()``)."""
    path = pathlib.Path(folder) / STORED.name
    if not path.exists():
        raise ValueError(f"Invalid path: no classification stored in {path} "
                         f"(make experiments-sharded-rules)")
    return json.loads(path.read_text())


def main(argv: Sequence[str] | None = None) -> int:
    """Classify every rule, print the table, store it (``--out``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=pathlib.Path, default=STORED)
    parser.add_argument("--jobs", type=int, default=1,
                        help="accepted for the Makefile's convention; the "
                             "run is one launch of two processes")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows = classify()
    seconds = time.perf_counter() - start
    print(table(rows))
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip() or None
    args.out.write_text(json.dumps(
        {"rows": rows, "tolerance": TOLERANCE, "steps": STEPS,
         "widths": list(WIDTHS), "world_size": 2,
         "torch": torch.__version__, "seconds": round(seconds, 1),
         "machine": platform.platform(), "python": platform.python_version(),
         "commit": commit}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    # the ranks import run_rank by its module's name, not as __main__'s
    from optedu.distributed.sharded_rules import main as _main
    sys.exit(_main())
