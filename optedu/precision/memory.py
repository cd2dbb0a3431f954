r"""How much memory an optimizer's state takes, measured from the state
tensors themselves.

An optimizer keeps per-parameter state (``exp_avg``, ``momentum_buffer``,
``sum``, ...) in ``optimizer.state``. :func:`state_bytes` adds up the bytes
of those tensors, by state key, for ``torch.optim`` optimizers and optedu's
alike, so a memory table is measured, not typed. torch's scalar ``step``
counters take the default dtype: 4 bytes under float32, 8 under float64.

Beside the measurement, the closed form: :data:`STATE_LAYOUTS` says which
state tensors each optimizer class (optedu's and torch.optim's) keeps for a
parameter of a given shape; :func:`predicted_state_bytes` turns that into
bytes, to set beside :func:`state_bytes`; :func:`state_per_element` gives
the count per parameter element (Adam 2, AMSGrad 3, Lion 1, L-BFGS
:math:`2 + 2m`). :func:`training_budget` adds weights, gradients, master
weights and state for a model of :math:`N` parameters in each precision.

>>> import torch
>>> w = torch.nn.Parameter(torch.zeros(1000))
>>> opt = torch.optim.Adam([w])
>>> w.grad = torch.ones(1000)
>>> opt.step()
>>> state_bytes(opt)
{'exp_avg': 4000, 'exp_avg_sq': 4000, 'step': 4}
"""

from __future__ import annotations

import inspect
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, cast

import torch

from optedu.optim._validation import check_integer, invalid
from optedu.optim import adam_mini as _adam_mini
from optedu.optim import apollo as _apollo
from optedu.optim import distributed_shampoo as _ds
from optedu.optim import galore as _galore
from optedu.optim.catalogue import CATALOGUE, When
from optedu.optim.kron import factor_shapes
from optedu.optim.soap import merge_small_dims


def state_bytes(optimizer: torch.optim.Optimizer) -> dict[str, int]:
    """Bytes of every tensor in ``optimizer.state``, per state key.

    Sums over parameters. Keys whose value is not a tensor (``None``, Python
    numbers) are left out. Scalar tensors such as torch's ``step`` counters
    are included: a few bytes per parameter tensor, not per element. Lists of
    tensors (L-BFGS's history ``old_dirs``, ``old_stps``, ``ro``, ``al``)
    count the tensors they hold. Most optimizers create their state at the
    first ``step()``; torch's Adagrad creates it in its constructor.

    State a rule keeps in its parameter groups counts too: tensors under a
    group key that is not a constructor argument (DoG's ``init_buffer``, the
    copy of :math:`x_0`, and its ``rbar``, ``G`` and ``eta``); a tensor
    learning rate, an argument, does not. GaLore's and APOLLO's ``projector``
    (an object, as their references keep it) counts its ``ortho_matrix``.
    """
    total: dict[str, int] = defaultdict(int)
    group_state = [{key: value for key, value in group.items()
                    if key != "params" and key not in optimizer.defaults}
                   for group in optimizer.param_groups]
    for state in [*optimizer.state.values(), *group_state]:
        for key, value in state.items():
            if hasattr(value, "ortho_matrix"):  # GaLore's / APOLLO's projector object
                value = value.ortho_matrix       # a tensor, a list of two, or None
            items = value if isinstance(value, (list, tuple)) else [value]
            for item in items:
                if isinstance(item, torch.Tensor):
                    total[key] += item.numel() * item.element_size()
    return dict(sorted(total.items()))


def state_bytes_per_element(
        optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """:func:`state_bytes` divided by the number of parameter elements.

    The elements are those of every parameter in ``optimizer.param_groups``
    (with or without state). Adam in float32 gives 4 bytes per element for
    ``exp_avg`` and for ``exp_avg_sq``, plus ``4 × (tensors) / (elements)``
    for the ``step`` counters.
    """
    n = sum(p.numel() for group in optimizer.param_groups
            for p in group["params"])
    if n == 0:
        raise invalid("optimizer", type(optimizer).__name__,
                      "parameters with elements")
    return {key: size / n for key, size in state_bytes(optimizer).items()}


# ----------------------------------------------------------------------------
# The closed form: which state tensors each optimizer keeps for a parameter
# of a given shape.

Shape = tuple[int, ...]
# state key -> (shape of the state tensor, dtype rule). Rules: "param", the
# parameter's dtype; "scalar", torch's dtype for counters (float32, float64
# under a float64 default); "param_scalar", the parameter's dtype for numbers
# kept per tensor or per pair (L-BFGS's rho); "uint8", one byte (8-bit
# codes); "absmax", the parameter's dtype promoted to at least float32.
Layout = dict[str, tuple[Shape, str]]


def _buffers(shape: Shape, *names: str) -> Layout:
    return {name: (shape, "param") for name in names}


def _step(shape: Shape, *names: str) -> Layout:
    return {"step": ((), "scalar"), **_buffers(shape, *names)}


def _adafactor(shape: Shape, group: Mapping[str, Any]) -> Layout:
    if len(shape) < 2:
        return _step(shape, "variance")
    rows, cols = (*shape[:-1], 1), (*shape[:-2], 1, shape[-1])
    return {"step": ((), "scalar"), "row_var": (rows, "param"),
            "col_var": (cols, "param")}


def _came(shape: Shape, group: Mapping[str, Any]) -> Layout:
    """CAME (came-pytorch's): the momentum whole; for two or more dimensions the second
    moment's and the instability's row and column averages (the last, then the
    second-to-last dimension dropped), for a vector a full second moment; the weights' RMS
    as a number of the parameter's dtype. ``step`` is a Python int (no bytes). float16 and
    bfloat16 weights keep float32 buffers (the gradient's dtype after the authors' cast),
    which this layout, in the parameter's dtype, does not follow."""
    out = _buffers(shape, "exp_avg")
    if len(shape) < 2:
        out["exp_avg_sq"] = (shape, "param")
    else:
        for kind in ("sq", "res"):
            out[f"exp_avg_{kind}_row"] = (shape[:-1], "param")
            out[f"exp_avg_{kind}_col"] = ((*shape[:-2], shape[-1]), "param")
    out["RMS"] = ((), "param_scalar")
    return out


def _nadam(shape: Shape, group: Mapping[str, Any]) -> Layout:
    return {**_step(shape, "exp_avg", "exp_avg_sq"),
            "mu_product": ((), "scalar")}


def _asgd(shape: Shape, group: Mapping[str, Any]) -> Layout:
    return {**_step(shape, "ax"), "eta": ((), "scalar"), "mu": ((), "scalar")}


def _adam8bit(shape: Shape, group: Mapping[str, Any]) -> Layout:
    """optedu.Adam8bit: uint8 codes plus one absmax per block for each moment;
    tensors under ``min_8bit_size`` elements keep Adam's layout."""
    n = math.prod(shape)
    if n < group.get("min_8bit_size", 4096):
        return _step(shape, "exp_avg", "exp_avg_sq")
    blocks = (math.ceil(n / group.get("block_size", 2048)),)
    layout: Layout = {"step": ((), "scalar")}
    for moment in ("exp_avg", "exp_avg_sq"):
        layout[f"{moment}_indices"] = (shape, "uint8")
        layout[f"{moment}_absmax"] = (blocks, "absmax")
    return layout


def _sam(shape: Shape, group: Mapping[str, Any]) -> Layout:
    """SAM between steps holds its base optimizer's state (``old_p``, one
    copy of the weights, lives only inside ``step``): ``base_optimizer`` names
    the base (a class or its name; default ``"SGD"``, the paper's)."""
    base = group.get("base_optimizer", "SGD")
    base = base if isinstance(base, str) else base.__name__
    if base not in STATE_LAYOUTS or base == "SAM":
        raise invalid("base_optimizer", repr(base),
                      "an optimizer named in STATE_LAYOUTS")
    return STATE_LAYOUTS[base](shape, group)


def _dog(shape: Shape, group: Mapping[str, Any]) -> Layout:
    """DoG keeps its state in the group: a copy of :math:`x_0` and a step
    size per tensor (the group's ``rbar`` and ``G``, one each, are added by
    :func:`predicted_state_bytes`)."""
    return {"init_buffer": (shape, "param"), "eta": ((), "param_scalar")}


def _ldog(shape: Shape, group: Mapping[str, Any]) -> Layout:
    """LDoG: DoG's state with ``rbar`` and ``G`` per tensor."""
    return {**_dog(shape, group), "rbar": ((), "param_scalar"),
            "G": ((), "param_scalar")}


def _prodigy(shape: Shape, group: Mapping[str, Any]) -> Layout:
    """Prodigy: Adam's moments (``exp_avg`` only for β₁ > 0), and ``s`` and
    ``p0`` over every ``slice_p``-th element, flattened (``p0`` is a scalar
    zero for a parameter that starts all zero: not modelled here)."""
    n = math.ceil(math.prod(shape) / group.get("slice_p", 1))
    layout = {"s": ((n,), "param"), "p0": ((n,), "param"),
              "exp_avg_sq": (shape, "param")}
    if group.get("betas", (0.9, 0.999))[0] > 0:
        layout["exp_avg"] = (shape, "param")
    return layout


def _shampoo(shape: Shape, group: Mapping[str, Any]) -> Layout:
    """Shampoo (pytorch_optimizer's layout): per dimension of size d the statistics
    ``pre_cond_i`` and their inverse root ``inv_pre_cond_i``, d × d each, and the last step
    ``momentum_buffer`` (kept after the first step even at momentum 0): for an m × n matrix
    mn + 2(m² + n²) numbers, for a vector of n, n + 2n²."""
    layout = _buffers(shape, "momentum_buffer")
    for i, d in enumerate(shape):
        layout[f"pre_cond_{i}"] = ((d, d), "param")
        layout[f"inv_pre_cond_{i}"] = ((d, d), "param")
    return layout


def _distributed_shampoo(shape: Shape, group: Mapping[str, Any]) -> Layout:
    """DistributedShampoo: the two momenta (``momentum``, ``diagonal_momentum``), the
    graft's ``diagonal_statistics`` (AdaGrad and RMSProp grafts), and for each block of the
    shape it preconditions (small dimensions merged, large ones cut into ``block_size``
    pieces) a factor and its root per dimension it preconditions, d × d each; the lists
    ``statistics`` and ``preconditioners`` are counted as one run of numbers each."""
    defaults = inspect.signature(_ds.DistributedShampoo).parameters.values()
    settings = {**{p.name: p.default for p in defaults if p.default is not p.empty}, **group}
    layout = _step(shape, "momentum", "diagonal_momentum")
    if settings["graft_type"] not in ("sgd", "sqrt_n"):
        layout["diagonal_statistics"] = (shape, "param")
    dims = list(shape)
    if (len(dims) < settings["skip_preconditioning_rank_lt"]
            or any(d > settings["skip_preconditioning_dim_size_gt"] for d in dims)):
        return layout
    if settings["best_effort_shape_interpretation"]:
        dims = _ds.merge_small_dims(dims, settings["merge_small_dims_block_size"])
    axes = len(dims) - (settings["preconditioner_type"] == "input" and len(dims) > 1)
    numbers = sum(d * d for block in _ds._product(_ds.block_sizes(dims, settings["block_size"]))
                  for d in block[:axes])
    if numbers:
        layout["statistics"] = ((numbers,), "param")
        layout["preconditioners"] = ((numbers,), "param")
    return layout


def _soap(shape: Shape, group: Mapping[str, Any]) -> Layout:
    """SOAP: Adam's two moments, and for each preconditioned dimension d ≤
    ``max_precondition_dim`` a factor (``GG``) and its basis (``Q``), d × d each (a vector
    only with ``precondition_1d``; ``merge_dims`` merges small dimensions first, in the
    channels-first order: ``data_format`` is the optimizer's attribute, not a group key).
    ``GG`` and ``Q`` are lists: their entries are summed into one length. For an m × n
    matrix, 2 + 2(m² + n²)/(mn) numbers per element."""
    cap = group.get("max_precondition_dim", 10000)
    if len(shape) == 1:
        dims = list(shape) if group.get("precondition_1d", False) else []
    elif group.get("merge_dims", False):
        dims = merge_small_dims(shape, cap)
    else:
        dims = list(shape)
    square = sum(d * d for d in dims if d <= cap)
    layout = _buffers(shape, "exp_avg", "exp_avg_sq")
    if square:
        layout["GG"] = ((square,), "param")
        layout["Q"] = ((square,), "param")
    return layout


def _kron(shape: Shape, group: Mapping[str, Any]) -> Layout:
    """PSGD-Kron (kron-torch's layout): the momentum in ``mu_dtype`` (merged to a matrix for
    3+ axes: same element count) and the factors ``Q`` in ``precond_dtype`` (float32 by
    default): a dense d × d per axis, or d numbers for a diagonal one, summed as one entry.
    For an m × n matrix (both sides triangular), b_mu + 4(m² + n²)/(mn) bytes per element."""
    keys = ("merge_dims", "max_size_triangular", "min_ndim_triangular", "memory_save_mode")
    factors = factor_shapes(shape, **{k: group[k] for k in keys if k in group})
    mu = group.get("mu_dtype")
    precond = group.get("precond_dtype") or torch.float32
    return {"momentum_buffer": (shape, str(mu).removeprefix("torch.") if mu else "param"),
            "Q": ((sum(math.prod(f) for f in factors),), str(precond).removeprefix("torch."))}


def _adan(shape: Shape, group: Mapping[str, Any]) -> Layout:
    """Adan: three averages (of the gradient, its change and the squared Nesterov estimate)
    and the last gradient, negated; with ``adanorm`` a running gradient norm, one element of
    the parameter's dtype; ``step`` is in the group (a Python int, no bytes)."""
    layout = _buffers(shape, "exp_avg", "exp_avg_sq", "exp_avg_diff", "previous_grad")
    if group.get("adanorm", False):
        layout["exp_grad_adanorm"] = ((1,), "param")
    return layout


def _stable_adamw(shape: Shape, group: Mapping[str, Any]) -> Layout:
    """StableAdamW (optimi's): Adam's two moments and ε² as a number of the parameter's
    dtype; ``kahan_comp`` is ``None`` for float32 and float64 weights (a buffer for float16
    and bfloat16 ones, which this layout leaves out); the step is an int32 tensor in the
    group (:func:`predicted_state_bytes` adds it once per group)."""
    return {**_buffers(shape, "exp_avg", "exp_avg_sq"), "eps_sq": ((), "param_scalar")}


def _muon_adamw(*matrix_keys: str) -> Callable[[Shape, Mapping[str, Any]], Layout]:
    """pytorch_optimizer's Muon family: ``use_muon`` groups keep the momentum (NorMuon also
    one second moment per row, ``(rows, 1)``), the others AdamW's two buffers; the step
    count lives in the group (no bytes). Without a group, matrices are Muon's."""
    def layout(shape: Shape, group: Mapping[str, Any]) -> Layout:
        if not group.get("use_muon", len(shape) >= 2):   # unsaid: Muon for matrices
            return _buffers(shape, "exp_avg", "exp_avg_sq")
        out = _buffers(shape, "momentum_buffer")
        if "second_momentum_buffer" in matrix_keys:
            out["second_momentum_buffer"] = ((shape[0], 1), "param")
        return out
    return layout


def _as_layout(shapes: dict[str, tuple[int, ...]]) -> Layout:
    return {key: (shape, "param") for key, shape in shapes.items()}


def _galore_layout(shape: Shape, group: Mapping[str, Any]) -> Layout:
    """GaLoreAdamW: in a ``rank`` group the moments in the projected shape (max(m, n) × r for
    ``std``) and the projector (r × min(m, n); U_r and V_r together for ``full``); else AdamW's
    moments. ``step`` is a Python int."""
    return _as_layout(_galore.state_shapes(shape, dict(group)))


def _apollo_layout(shape: Shape, group: Mapping[str, Any]) -> Layout:
    """APOLLO: GaLore's layout (the Gaussian projector is not capped at min(m, n)) plus the
    limiter's scalar ``scaled_grad``."""
    return _as_layout(_apollo.state_shapes(shape, dict(group)))


def _adam_mini_layout(shape: Shape, group: Mapping[str, Any]) -> Layout:
    """AdamMini: ``m`` whole, and ``v`` (biases) or ``vmean`` (one per head, row or tensor),
    by the group's ``name`` and the default rules; a head is ``head_numel`` entries (the
    reference's default dim 2048, 32 heads, unless the group carries ``head_numel``)."""
    return _as_layout(_adam_mini.state_shapes(
        shape, group.get("name", ""), group.get("head_numel", 2048 * 2048 // 32)))


# the layouts that depend on the shape, or on the settings other than by switching a buffer on,
# by the name a catalogue row's ``state`` gives (optedu.optim.catalogue.Rule.state); a row that
# lists its state keys, a switched one as a When, needs none
LAYOUTS: dict[str, Callable[[Shape, Mapping[str, Any]], Layout]] = {
    "nadam": _nadam,
    "asgd": _asgd,
    "adafactor": _adafactor,
    "came": _came,
    "adam8bit": _adam8bit,
    "sam": _sam,
    "prodigy": _prodigy,
    "dog": _dog,
    "ldog": _ldog,
    "shampoo": _shampoo,
    "distributed_shampoo": _distributed_shampoo,
    "soap": _soap,
    "kron": _kron,
    "adan": _adan,
    "stable_adamw": _stable_adamw,
    "normuon": _muon_adamw("momentum_buffer", "second_momentum_buffer"),
    "muonclip": _muon_adamw("momentum_buffer"),
    "galore": _galore_layout,
    "apollo": _apollo_layout,
    "adam_mini": _adam_mini_layout,
}


def _layout(state: tuple[str | When, ...] | str) -> Callable[[Shape, Mapping[str, Any]], Layout]:
    """A catalogue row's ``state`` as a layout function: the named one, or its buffers in the
    parameter's shape and dtype (a scalar ``step`` tensor when the keys start with ``"step"``),
    a :class:`~optedu.optim.catalogue.When` key only while its setting is truthy."""
    if isinstance(state, str):
        return LAYOUTS[state]

    def layout(shape: Shape, group: Mapping[str, Any]) -> Layout:
        out: Layout = {"step": ((), "scalar")} if state[:1] == ("step",) else {}
        for entry in state[len(out):]:
            if isinstance(entry, When):
                if group.get(entry.setting, False):
                    out[entry.key] = (shape, "param")
            else:
                out[entry] = (shape, "param")
        return out
    return layout


# one entry per optimizer class name, optedu's and torch.optim's (same names, same state keys),
# read from the catalogue; SparseAdam's ``step`` is a Python int (no bytes); L-BFGS keeps one
# state for all parameters: lbfgs_layout
STATE_LAYOUTS: dict[str, Callable[[Shape, Mapping[str, Any]], Layout]] = {
    rule.name: _layout(rule.state) for rule in CATALOGUE if rule.state != "lbfgs"}


def lbfgs_layout(n: int, pairs: int) -> Layout:
    r"""L-BFGS's state for ``n`` parameter elements (all tensors flattened
    into one vector) once it holds ``pairs`` curvature pairs
    (:math:`\le` ``history_size``; equal to it in the steady state).

    Two vectors of length ``n`` (the direction ``d`` and the previous
    gradient), ``pairs`` pairs :math:`(s_i, y_i)` of length ``n`` each, and
    scalars: :math:`\rho_i = 1/(y_i^\top s_i)` and :math:`\alpha_i` per pair
    and the initial Hessian scale ``H_diag``. Elements: :math:`(2 + 2m)\,n`.
    The step length ``t`` is a Python float after the first iteration
    (without a line search); counters are Python ints.
    """
    return {"d": ((n,), "param"), "prev_flat_grad": ((n,), "param"),
            "old_dirs": ((pairs, n), "param"),
            "old_stps": ((pairs, n), "param"),
            "ro": ((pairs,), "param_scalar"), "al": ((pairs,), "param_scalar"),
            "H_diag": ((), "param_scalar")}


def state_layout(name: str, shape: Shape, **settings: Any) -> Layout:
    """The state tensors ``name`` keeps for one parameter of ``shape``, by
    key: ``{key: (shape, dtype rule)}`` (see :data:`STATE_LAYOUTS`).

    ``settings`` are the optimizer's arguments that change the layout
    (``momentum``, ``amsgrad``, ``centered``). For ``"LBFGS"`` the shape is
    flattened and ``history_size`` (default 100) pairs are held.

    >>> state_layout("Adam", (3, 2), amsgrad=True)["max_exp_avg_sq"]
    ((3, 2), 'param')
    """
    shape = tuple(int(s) for s in shape)
    if name == "LBFGS":
        return lbfgs_layout(math.prod(shape), settings.get("history_size", 100))
    if name not in STATE_LAYOUTS:
        names = ", ".join(sorted([*STATE_LAYOUTS, "LBFGS"]))
        raise invalid("name", repr(name), "one of " + names)
    return STATE_LAYOUTS[name](shape, settings)


def state_per_element(name: str, shape: Shape = (1024, 1024),
                      **settings: Any) -> float:
    """State elements per parameter element for a parameter of ``shape``,
    scalars left out: Adam 2, AMSGrad 3, SGD 0 (1 with momentum), Lion 1,
    L-BFGS :math:`2 + 2m`, Adafactor :math:`(r + c)/(rc)` for an
    :math:`r \\times c` matrix (a vector keeps a full ``variance``: 1).
    """
    layout = state_layout(name, shape, **settings)
    tensors = [math.prod(s) for s, rule in layout.values()
               if not rule.endswith("scalar") and rule != "absmax"]
    return sum(tensors) / math.prod(shape)


def _itemsize(rule: str, param_dtype: torch.dtype) -> int:
    from optedu.optim.optimizer import scalar_dtype
    if rule == "uint8":
        return 1
    if rule in ("float32", "float64", "float16", "bfloat16"):  # a rule that names its dtype
        return torch.empty((), dtype=getattr(torch, rule)).element_size()
    dtype = {"scalar": scalar_dtype(),
             "absmax": torch.promote_types(param_dtype, torch.float32),
             }.get(rule, param_dtype)
    return torch.empty((), dtype=dtype).element_size()


def predicted_state_bytes(optimizer: torch.optim.Optimizer, *,
                          lbfgs_pairs: int | None = None) -> dict[str, int]:
    """:func:`state_bytes` predicted from the closed form: the class name's
    layout (:data:`STATE_LAYOUTS`), each group's settings and each
    parameter's shape and dtype, once every parameter has taken a step.

    For L-BFGS, ``lbfgs_pairs`` curvature pairs (default: the group's
    ``history_size``, the steady state).
    """
    name = type(optimizer).__name__
    if name == "SAM":   # between steps, its base's state (the groups are shared)
        return predicted_state_bytes(optimizer.base_optimizer,  # type: ignore[attr-defined]
                                     lbfgs_pairs=lbfgs_pairs)
    total: dict[str, int] = defaultdict(int)
    if name == "LBFGS":
        group = optimizer.param_groups[0]
        params = group["params"]
        pairs = group["history_size"] if lbfgs_pairs is None else lbfgs_pairs
        n = sum(p.numel() for p in params)
        layouts = [(lbfgs_layout(n, pairs), params[0].dtype)]
    elif name in STATE_LAYOUTS:
        layouts = [(STATE_LAYOUTS[name](tuple(p.shape), group), p.dtype)
                   for group in optimizer.param_groups for p in group["params"]]
    else:
        raise invalid("optimizer", name,
                      "a class named in optedu.precision.memory.STATE_LAYOUTS")
    for layout, dtype in layouts:
        for key, (shape, rule) in layout.items():
            total[key] += math.prod(shape) * _itemsize(rule, dtype)
    if name == "StableAdamW":   # optimi's step counter: an int32 tensor in each group
        total["step"] += sum(group["step"].element_size() for group in optimizer.param_groups
                             if "step" in group)
    if name == "DoG":   # one rbar and one G per group
        for group in optimizer.param_groups:
            size = _itemsize("param_scalar", group["params"][0].dtype)
            total["rbar"] += size
            total["G"] += size
    return dict(sorted(total.items()))


def stepped(cls: type[torch.optim.Optimizer],
            shapes: Sequence[Shape] = ((64, 32), (32,)),
            dtype: torch.dtype = torch.float32, seed: int = 0,
            **kwargs: Any) -> torch.optim.Optimizer:
    r"""An optimizer of class ``cls`` over random tensors of ``shapes``,
    after one ``step()`` on :math:`\sum_i (i+1)\lVert p_i\rVert^2`: its
    state is then in place, ready for :func:`state_bytes`.

    Each class is built as it must be: L-BFGS steps with a closure (one
    ``step()`` runs ``max_iter`` iterations); SparseAdam updates an
    embedding table of ``shapes[0]`` from a sparse gradient (rows 0, 1, 3);
    Muon takes matrices only (pass 2-D shapes); SAM takes its second
    gradient through the closure; GaLore and APOLLO project the matrices of a
    group that names a ``rank`` (the projection keys of ``kwargs`` go there,
    the other tensors form a plain group); NorMuon and MuonClip take
    ``use_muon`` groups (the tensors of two or more dimensions, and the
    rest); Adam-mini takes named tensors (``p0``, ``p1``, ...); SophiaH's
    gradient keeps its graph (``autograd.grad(..., create_graph=True)``).
    """
    gen = torch.Generator().manual_seed(seed)
    if cls.__name__ == "SparseAdam":
        rows, dim = shapes[0]
        table = torch.nn.Embedding(rows, dim, sparse=True).to(dtype)
        optimizer = cls(table.parameters(), **kwargs)
        table(torch.tensor([0, 1, 1, 3])).pow(2).sum().backward()
        optimizer.step()
        return optimizer
    params = [torch.randn(s, generator=gen, dtype=dtype).requires_grad_()
              for s in shapes]
    if cls.__name__ in ("GaLoreAdamW", "APOLLO"):
        projection: dict[str, Any] = {key: kwargs.pop(key) for key in
                      ("rank", "update_proj_gap", "scale", "proj_type", "proj",
                       "scale_type") if key in kwargs}
        groups: list[dict[str, Any]] = [
            {"params": [p for p in params if p.dim() == 2], **projection},
                  {"params": [p for p in params if p.dim() != 2]}]
        optimizer = cls([g for g in groups if g["params"]], **kwargs)
    elif cls.__name__ in ("NorMuon", "MuonClip"):
        groups = [{"params": [p for p in params if p.dim() >= 2], "use_muon": True},
                  {"params": [p for p in params if p.dim() < 2], "use_muon": False}]
        optimizer = cls([g for g in groups if g["params"]], **kwargs)
    elif cls.__name__ == "AdamMini":
        optimizer = cls([(f"p{i}", p) for i, p in enumerate(params)], **kwargs)
    else:
        optimizer = cls(params, **kwargs)
    if hasattr(optimizer, "train"):   # schedule-free: the training point
        optimizer.train()

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = cast(torch.Tensor,                  # params is not empty
                    sum((p * p).sum() * (i + 1) for i, p in enumerate(params)))
        if cls.__name__ == "SophiaH":    # it differentiates the gradient again
            grads = torch.autograd.grad(loss, params, create_graph=True)
            for p, g in zip(params, grads):
                p.grad = g
        else:
            loss.backward()
        return loss

    closure()
    if cls.__name__ in ("LBFGS", "SAM"):
        # torch's closures return the loss tensor; its stub says a float
        optimizer.step(closure)  # type: ignore[arg-type]
    else:
        optimizer.step()
    return optimizer


# ----------------------------------------------------------------------------
# A training budget: where the bytes go for a model of N parameters.

_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
PRECISIONS = ("fp32", "bf16-mixed", "fp16-mixed", "bf16", "fp16")
STATE_PRECISIONS = ("fp32", "bf16", "int8")


@dataclass(frozen=True)
class Budget:
    """Bytes of one training step, by kind (activations as given).

    ``master_gradients`` is the fp32 copy of the gradients that a
    mixed-precision step holds while ``optimizer.step()`` runs
    (:class:`optedu.precision.mixed.MasterWeights`); ``compensation`` the Kahan
    buffers of a pure 16-bit run.
    """

    weights: int
    gradients: int
    master_weights: int
    master_gradients: int
    optimizer_state: int
    compensation: int
    activations: int

    @property
    def total(self) -> int:
        return sum(asdict(self).values())

    def per_parameter(self, n: int) -> dict[str, float]:
        """Each line divided by ``n`` (bytes per parameter)."""
        lines = {**asdict(self), "total": self.total}
        return {key: value / n for key, value in lines.items()}


def _state_bytes(layout: Layout, state: str, block_size: int,
                 fallback: str) -> int:
    """Bytes of one parameter's state: buffers in ``state`` precision,
    counters 4 bytes; under ``"int8"``, a tensor too small to quantise
    (``fallback`` set) keeps ``fallback``."""
    total = 0
    for shape, rule in layout.values():
        n = math.prod(shape)
        if rule == "scalar":
            total += 4 * n                     # torch's float32 counters
        elif rule == "param_scalar":
            total += n * (4 if state == "int8" else _BYTES[state])
        elif state == "int8" and fallback:
            total += n * _BYTES[fallback]
        elif state == "int8":                  # codes + an fp32 scale a block
            total += n + 4 * math.ceil(n / block_size)
        else:
            total += n * _BYTES[state]
    return total


def training_budget(shapes: int | Sequence[int | Sequence[int]],
                    optimizer: str = "Adam", *, precision: str = "fp32",
                    state: str | None = None, block_size: int = 2048,
                    min_8bit_size: int = 4096, kahan: bool = False,
                    activations: int = 0, **settings: Any) -> Budget:
    r"""Bytes to train a model whose parameters have ``shapes`` (an ``int``
    :math:`N`: one tensor of :math:`N` elements) with ``optimizer`` (a
    class name of :data:`STATE_LAYOUTS`, its layout ``settings`` such as
    ``momentum=0.9``).

    Per parameter element, with :math:`k` state buffers
    (:func:`state_per_element`):

    ============== ======= ===== ====== ============ =====
    precision      weights grads master master grads state
    ============== ======= ===== ====== ============ =====
    ``fp32``       4       4     0      0            4k
    ``bf16-mixed`` 2       2     4      4 (in step)  4k
    ``fp16-mixed`` 2       2     4      4 (in step)  4k
    ``bf16``       2       2     0      0            2k
    ============== ======= ===== ====== ============ =====

    ``state``: the precision of the state buffers. ``None`` (default): that
    of the tensors the optimizer updates (fp32 masters under mixed
    precision; the 16-bit weights in a pure ``bf16`` run, as ``zeros_like``
    makes them; :class:`optedu.precision.mixed.LowPrecisionOptimizer` keeps fp32
    state: pass ``"fp32"``). Else ``"fp32"`` (4 bytes), ``"bf16"`` (2) or
    ``"int8"`` (1 byte per value plus one fp32 scale per ``block_size``
    values of each state tensor: the block-wise layout of Dettmers et al.,
    2022); a tensor under ``min_8bit_size`` elements keeps its state
    unquantised, as bitsandbytes and :class:`optedu.Adam8bit` do.
    ``kahan`` adds a compensation buffer in the weights' precision. torch's
    ``step`` counters add 4 bytes per tensor. The 16 bytes per parameter
    of mixed-precision Adam (2 + 2 + 4 + 8) in Rajbhandari et al. (2020,
    ZeRO) leave out the fp32 gradients held during the step.
    """
    if isinstance(shapes, int):
        shapes = [shapes]
    if precision not in PRECISIONS:
        raise invalid("precision", repr(precision),
                      "one of " + ", ".join(PRECISIONS))
    if state is not None and state not in STATE_PRECISIONS:
        raise invalid("state", repr(state),
                      "one of " + ", ".join(STATE_PRECISIONS))
    check_integer("block_size", block_size, 1)
    check_integer("min_8bit_size", min_8bit_size, 0)
    check_integer("activations", activations, 0)
    mixed = precision.endswith("-mixed")
    weight_bytes = _BYTES[precision.split("-")[0]]
    plain = "fp32" if mixed else precision   # what zeros_like would give
    state = plain if state is None else state
    dims = [(s,) if isinstance(s, int) else tuple(s) for s in shapes]
    sizes = [math.prod(s) for s in dims]
    n = sum(sizes)
    if optimizer == "LBFGS":       # one state for all parameters
        dims, sizes = [(n,)], [n]
    state_total = 0
    for shape, size in zip(dims, sizes):
        layout = state_layout(optimizer, shape, **settings)
        fallback = plain if size < min_8bit_size else ""
        state_total += _state_bytes(layout, state, block_size, fallback)
    return Budget(
        weights=weight_bytes * n,
        gradients=weight_bytes * n,
        master_weights=4 * n if mixed else 0,
        master_gradients=4 * n if mixed else 0,
        optimizer_state=state_total,
        compensation=weight_bytes * n if kahan else 0,
        activations=activations,
    )
