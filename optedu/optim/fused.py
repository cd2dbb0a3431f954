r"""The fused path: each tensor's step compiled into one pass over memory.

The one-tensor rules (:func:`optedu.adam` and the rest) make one pass over
memory per line: ``exp_avg.lerp_(g, 1 - beta1)`` reads two tensors and
writes one, the next line reads again, and an Adam step moves 18 elements
per parameter in 7 passes where one pass would move 7 (read θ, g, m, v;
write θ, m, v; counted in the chapter "The fused step").
The foreach path saves Python calls, not bytes. A *fused* step reads each
tensor once and writes it once: one loop over the elements that does the
whole rule in registers.

torch writes that loop by hand in C++ (``torch._fused_adam_`` and friends).
optedu gets it from the compiler: each rule is written once more, line for
line as its one-tensor form and beside it in the rule's module
(:func:`optedu.optim.sgd.sgd_fused`, :func:`optedu.optim.adam.adam_fused`,
:func:`optedu.optim.adagrad.adagrad_fused`, :func:`optedu.optim.lion.lion_fused`,
Muon's two in :mod:`optedu.optim.muon`); this module compiles and calls
them. ``torch.compile``
(Inductor; on a CPU it emits a vectorised C++ loop and compiles it with the
system's C++ compiler) turns each into one kernel. Four things make the
compiled step fast and keep it compiled:

* **Nothing leaves the graph.** The step counter stays a tensor
  (``step += 1`` inside the function) and the learning rate comes in as a
  0-d float64 tensor: a scheduler that changes it changes a value, not the
  graph. The group's other numbers (betas, ε, λ) and flags are bound to a
  compiled function of their own (:func:`compiled`): the flags choose the
  lines the graph holds, and the numbers are compiled in as literals
  (dynamo's ``specialize_float`` while the kernels are called), each
  checked by one equality guard. By default dynamo makes such a float
  (in Adam, β₂ and ε) an input: a 0-d tensor built at every call and
  checked by a Python guard, for a graph that only ever sees one value.
  A group whose numbers change at two steps in a row (a scheduler that
  cycles momentum) would compile at every step: it steps uncompiled instead
  (foreach where the rule and the group allow it), with a warning
  (``FusedOptimizer._cycled``).
* **One graph for every set of tensors.** A compiled call steps
  :data:`CHUNK` (8) tensors, each flattened to one dimension (a view, as
  the padding is), compiled with ``dynamic=True`` (every length a symbol
  of its own: no duck shaping, and no special case for a length of 1) and
  the last chunk padded with zero scratch tensors. A tensor of a new size,
  one element included, or a step where some tensors have no gradient,
  reuses the graph.
* **The threads are Inductor's to share, and only its own way.** Inductor
  decides when it compiles which loops of a CPU kernel to share: none at
  one thread (no OpenMP at all), and at more only those whose tensor in
  the compiling example was large (``cpp.min_chunk_size`` elements a
  thread). dynamo guards on the thread count but, every length a symbol
  of its own (above), not on sizes: a graph compiled with a bias or a
  norm's gain in some position runs on one thread the large tensors that
  later take that position. ``cpp.dynamic_threads`` would share every
  loop, but in torch 2.13 a kernel it builds at one thread opens a
  parallel region and leaves the lines that run once per tensor unguarded
  inside it (at more threads they get ``omp single``), and it takes the
  thread count out of Inductor's cache key: served to a run at two
  threads, every thread runs the step counter's ``step += 1``, which
  races (seen: a counter that advanced twice in one step). The fused
  kernels turn it off explicitly.
* **The scalars are computed once.** The bias corrections
  :math:`1-\beta^t` depend on the step only; Inductor inlines such
  scalar work into the element loop (two ``pow`` per vector of 16 floats,
  which made an Adam step several times slower) unless the value is an
  output of the graph, so each rule *returns* its scalars.

Where no C++ compiler is found, ``fused=True`` warns once and steps
uncompiled: the foreach path where the rule has one, else the one-tensor
rule (same rule, other rounding: see below).

Rounding: the fused kernel performs the same operations as the one-tensor
rule, but not always with the same roundings. ATen's vectorised CPU kernels
round ``lerp``, ``add(x, alpha=a)`` and ``addcmul`` once each (a fused
multiply-add), while Inductor compiles with ``-ffp-contract=off`` and writes
its own arithmetic: its ``lerp`` is a subtraction, a product and a sum, each
rounded; its ``addcmul`` is an ``fmadd``. The differences are
measured and bounded in ``tests/optim/test_fused.py``: at most one unit in
the last place of each tensor's largest entry, after one step from the same
state, against the one-tensor rule and against torch's fused kernels.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
import warnings
from collections.abc import Callable
from types import FrameType
from typing import Any, cast

import torch
import torch.fx.experimental._config as shape_config

from ._sharding import _is_dtensor
from ._validation import invalid
from .foreach import ForeachOptimizer, Tensors
from .optimizer import Group, State

Tensor = torch.Tensor


_NO_COMPILER: list[str] = []          # why the fused path is off, once known


def compiler_missing() -> str:
    """Why ``torch.compile`` cannot build a CPU kernel here ("" when it
    can): Inductor needs a C++ compiler (``$CXX``, else ``c++``/``g++``/
    ``clang++`` on the path)."""
    if _NO_COMPILER:
        return _NO_COMPILER[0]
    names = (os.environ["CXX"],) if os.environ.get("CXX") else \
        ("c++", "g++", "clang++")
    if not _on_path(names, os.environ.get("PATH")):
        return f"no C++ compiler found ({', '.join(names)})"
    return ""


@functools.cache
def _on_path(names: tuple[str, ...], path: str | None) -> bool:
    """Whether one of ``names`` is a program on ``path``: looked up once per
    value (a lookup costs a step about 90 µs of file-system calls)."""
    return any(shutil.which(name, path=path) for name in names)


def _outside() -> int:
    """The ``stacklevel`` of a warning raised by this function's caller that names
    the first frame outside optedu and torch (the user's ``step()``, past torch's
    wrappers and a scheduler's)."""
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and \
            frame.f_globals.get("__name__", "").partition(".")[0] in ("optedu", "torch"):
        frame, level = frame.f_back, level + 1
    return level


def fall_back(reason: str) -> None:
    """Turn the fused path off for this process, saying why, once."""
    if not _NO_COMPILER:
        _NO_COMPILER.append(reason)
        warnings.warn(
            f"fused=True needs torch.compile's C++ backend: {reason}; "
            "optedu steps these groups uncompiled instead (on the foreach "
            "path where the rule has one)",
            RuntimeWarning, stacklevel=_outside())


# tensors per compiled call: fewer calls cost less Python per tensor (tens of µs a
# tensor in calls of 8: the chapter "The fused step" fits it), more compile longer
CHUNK = 8


@functools.cache
def compiled(rule: Callable[..., Any], **constants: Any) -> Callable[..., Any]:
    """``rule`` with a group's constants bound, compiled for a chunk of
    :data:`CHUNK` tensors: ``kernel(rows, *shared)`` applies ``rule(*row,
    *shared)`` to every row (one tensor's arguments) and returns what each
    call returns.

    One compiled function per rule and set of constants, each with a code
    object of its own: dynamo keeps its graphs per code object and after
    ``recompile_limit`` (8) of them runs the function uncompiled, so a sweep
    over β₂ would otherwise fall off the fused path.

    ``size_asserts`` is off: Inductor's wrapper would otherwise check every
    input's sizes and strides again at each call, after dynamo's guards
    have checked them (about 20 µs a call of eight Adam rows here)."""
    def kernel(rows: list[tuple[Any, ...]], *shared: Any) -> list[Any]:
        return [rule(*row, *shared, **constants) for row in rows]
    kernel.__code__ = kernel.__code__.replace()     # its own dynamo cache
    # not cpp.dynamic_threads, even if the environment asks: it can race the
    # step counter (see the module)
    return torch.compile(kernel, fullgraph=True, dynamic=True,
                         options={"size_asserts": False, "cpp.dynamic_threads": False})


@functools.cache
def _filler(dtype: torch.dtype, position: int, column: int, zero_d: bool) -> Tensor:
    """A zero scratch tensor that pads a short chunk (two elements, or 0-d for a
    step counter): zero parameters with zero gradients and zero state stay
    zero under every rule here. A 1-D filler is a view, as the flattened
    tensors it stands in for are: dynamo guards on which inputs are views."""
    if zero_d:
        return torch.zeros((), dtype=dtype)
    return torch.zeros(2, dtype=dtype).view(-1)


@functools.cache
def _padding(columns: tuple[tuple[torch.dtype, bool] | None, ...], start: int,
             size: int) -> list[tuple[Tensor | None, ...]]:
    """The scratch rows that fill a chunk from row ``start`` to ``size``:
    one filler per column (``None`` where the row has ``None``, else its
    dtype and whether it is 0-d)."""
    return [tuple(None if column is None else
                  _filler(column[0], position, index, column[1])
                  for index, column in enumerate(columns))
            for position in range(start, size)]


def run_in_chunks(kernel: Callable[..., Any], rows: list[tuple[Tensor | None, ...]],
                  *shared: Tensor, size: int = CHUNK,
                  returned: list[Any] | None = None) -> None:
    """Call ``kernel`` on the rows ``size`` at a time, rows of one dtype
    together; the last chunk is padded with zero scratch rows, so every call
    has the same arguments and one compiled graph serves any set of tensors.
    Sizes are not unified across rows (no duck shaping), so a chunk whose
    tensors happen to share a size compiles nothing of its own. What the
    kernel returns for each row is appended to ``returned``, in the order
    of ``rows``."""
    by_dtype: dict[torch.dtype, list[int]] = {}
    for index, row in enumerate(rows):
        # a row starts with its parameter
        by_dtype.setdefault(cast(Tensor, row[0]).dtype, []).append(index)
    results: list[Any] = [None] * len(rows)
    # sizes: a symbol each (no duck shaping), and no special case for a
    # length of 1 (size-oblivious), so no size makes a graph; the bound
    # numbers compiled in (one graph per set of them already, see compiled)
    # imported here, not with optedu: importing torch._dynamo writes Inductor's
    # default cache directory into TORCHINDUCTOR_CACHE_DIR, and costs a second
    from torch._dynamo import config as dynamo_config
    duck, oblivious = shape_config.use_duck_shape, shape_config.backed_size_oblivious
    specialize = dynamo_config.specialize_float
    shape_config.use_duck_shape, shape_config.backed_size_oblivious = False, True
    dynamo_config.specialize_float = True
    try:
        for dtype, same in by_dtype.items():
            for start in range(0, len(same), size):
                indices = same[start:start + size]
                chunk = [rows[i] for i in indices]
                if len(chunk) < size:
                    chunk += _padding(tuple(
                        None if t is None else (t.dtype, t.ndim == 0)
                        for t in chunk[0]), len(chunk), size)
                out = kernel(chunk, *shared)
                for i, value in zip(indices, out):
                    results[i] = value
    finally:
        shape_config.use_duck_shape, shape_config.backed_size_oblivious = duck, oblivious
        dynamo_config.specialize_float = specialize
    if returned is not None:
        returned.extend(results)


def flat(*tensors: Tensor | None) -> tuple[Tensor | None, ...]:
    """The tensors detached (the graph never sees ``requires_grad``, which
    would be guarded on) and, when all are contiguous, as 1-D views (one
    compiled graph for every shape)."""
    views: list[Tensor | None] = []
    for t in tensors:
        if t is None:
            views.append(None)
        elif t.is_contiguous():
            views.append(t.detach().view(-1))
        else:
            return tuple(None if t is None else t.detach() for t in tensors)
    return tuple(views)


def learning_rate(group: Group) -> Tensor:
    """The group's learning rate as a 0-d float64 tensor (a new value each
    step is a new input, never a new graph)."""
    lr = group["lr"]
    if isinstance(lr, Tensor):
        return lr.detach().to(torch.float64).reshape(())
    return torch.tensor(lr, dtype=torch.float64)


def defined_by(cls: type, name: str) -> type:
    """The class in ``cls``'s MRO whose body defines ``name``."""
    return next(k for k in cls.__mro__ if name in vars(k))


@functools.cache
def _stale_kernel(cls: type) -> str:
    """The class whose fused kernel ``cls`` inherits while changing its
    rule (``update``), or "" (looked up once per class)."""
    rule, kernel = defined_by(cls, "update"), defined_by(cls, "update_fused")
    return kernel.__name__ if rule is not kernel and issubclass(rule, kernel) else ""


def check_fused(fused: Any, foreach: Any = None) -> None:
    """torch's checks of ``fused``: a bool or None, and not with
    ``foreach=True``."""
    if fused is not None and not isinstance(fused, bool):
        raise invalid("fused", fused, "None, True or False")
    if fused and foreach:
        raise RuntimeError("`fused` and `foreach` cannot be `True` together.")


_PLAIN = (torch.Tensor, torch.nn.Parameter)     # types that are never a DTensor


def _frozen(value: Any) -> Any:
    """A group's value in a form that compares by value (tensors as lists)."""
    if isinstance(value, Tensor):
        return tuple(value.detach().reshape(-1).tolist())
    if isinstance(value, (tuple, list)):
        return tuple(_frozen(v) for v in value)
    return value


class FusedOptimizer(ForeachOptimizer):
    """A :class:`~optedu.optim.foreach.ForeachOptimizer` whose groups may
    also take the fused path: a group with ``fused=True`` is stepped by
    ``update_fused``, one compiled call per tensor.

    Like torch's fused optimizers it refuses, before any tensor moves,
    parameters that are not real floating-point tensors (complex ones
    included) and sparse gradients; it refuses DTensors too (the compiled
    kernels step local tensors; FSDP2's shards take the other paths).
    """

    def update_fused(self, params: Tensors, grads: Tensors,
                     states: list[State], group: Group) -> None:
        """Apply one step of the rule to every tensor, one compiled call
        each."""
        raise NotImplementedError

    def update_group(self, params: Tensors, grads: Tensors,
                     states: list[State], group: Group) -> None:
        if not group.get("fused") or not params:
            super().update_group(params, grads, states, group)
            return
        kind: type = type(self)     # as a plain type: mypy checks type[Self] as an instance
        stale = _stale_kernel(kind)
        if stale:
            raise ValueError(
                f"{type(self).__name__} changes the rule of {stale} but not its "
                f"fused kernel: fused=True would step {stale}'s rule; use "
                "fused=False")
        for param, grad in zip(params, grads):
            # CPU only: built and tested for Inductor's C++ loops (on an H200,
            # as written here, it took 6-9 times torch's fused CUDA step)
            if not param.is_floating_point() or not param.is_cpu:
                raise RuntimeError(
                    "`fused=True` requires all the params to be floating "
                    f"point Tensors of supported devices: ['cpu'] but "
                    f"{param.dtype} and {param.device.type}")
            if grad.is_sparse:
                raise RuntimeError(
                    f"{type(self).__name__} with fused=True does not "
                    "support sparse gradients")
            if type(param) not in _PLAIN and _is_dtensor(param):
                raise ValueError(
                    f"{type(self).__name__} with fused=True takes plain tensors, "
                    f"not a DTensor of shape {tuple(param.shape)}: use "
                    "fused=False (foreach where the rule has it)")
        reason = compiler_missing()
        if reason:
            fall_back(reason)
        if reason or self._cycled(group):
            # the same rule on lists where the class has them (and the group may:
            # torch's Adam takes no tensor learning rate there), else per tensor
            foreach = (type(self).update_foreach is not ForeachOptimizer.update_foreach
                       and not isinstance(group["lr"], Tensor))
            super().update_group(params, grads, states, {**group, "foreach": foreach})
            return
        self.update_fused(params, grads, states, group)

    def _cycled(self, group: Group) -> bool:
        """Whether the group's numbers other than the learning rate have changed
        at two steps in a row, as a scheduler that cycles momentum does
        (OneCycleLR and CyclicLR set Adam's β₁ or SGD's momentum at every step).
        Each new set of numbers compiles a new kernel (seconds); such a group
        then steps uncompiled for good, with a warning. Changes by hand, steps
        apart, compile once each."""
        key = tuple((name, _frozen(group[name])) for name in self.defaults
                    if name != "lr" and name in group)
        seen = self.__dict__.setdefault("_fused_numbers", {})
        last, changed, cycled = seen.get(id(group), (key, False, False))
        if not cycled and key != last:
            if changed:
                cycled = True
                moved = [name for (name, old), (_, new) in zip(last, key) if old != new]
                warnings.warn(
                    f"{type(self).__name__}(fused=True): {', '.join(moved)} changed at "
                    "two steps in a row (a scheduler that cycles momentum?), and every "
                    "new value compiles a new kernel; this group steps uncompiled from "
                    "now on (foreach where the rule takes it)", RuntimeWarning,
                    stacklevel=_outside())
            changed = True
        else:
            changed = False
        seen[id(group)] = (key, changed, cycled)
        if len(seen) > len(self.param_groups):       # groups replaced: forget the old
            live = {id(g) for g in self.param_groups}
            for gone in [k for k in seen if k not in live]:
                del seen[gone]
        return cycled
