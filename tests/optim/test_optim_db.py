"""optedu beside torch's own description of its optimizers: ``optim_db``.

torch 2.13 describes each of its fifteen optimizers in
``torch.testing._internal.common_optimizers.optim_db``: the inputs its own tests run
(``optim_inputs_func``), the bad inputs and the error each must raise, at construction or at
step (``optim_error_inputs_func``), and whether it takes complex parameters
(``supports_complex``) and sparse gradients (``supports_sparse``,
``only_supports_sparse_grads``). These tests read that table, so they grow with torch:

* every error input raises the same exception type at the same moment in optedu's twin, with a
  message that matches torch's pattern (and torch's class is checked against the table too);
* every input of ``optim_inputs_func``, in float32, float64, complex64 and complex128, ends in
  the same outcome in both libraries: the same parameters and state (``torch.equal``, after
  several steps, two parameter groups, a real and a complex parameter in one group, a
  parameter whose gradient stays ``None``), or the same exception at the same moment (complex
  parameters where torch refuses them);
* the same with sparse gradients from ``nn.Embedding(sparse=True)``.

The quick tier runs every error input, the first four inputs of each class in one dtype each
(the four in turn) and torch's tuned sparse input; ``OPTEDU_TESTS=full`` runs every input in
every dtype (and with ``foreach=True`` where optedu has that path), and every input with sparse
gradients.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch

from optimizers import FULL, TORCH_OPTIMIZERS

import optedu

# every test here is the full tier's; torch's table imports its whole OpInfo database (4 s in
# every pytest worker), so the quick tier, which deselects them, does not even read it
pytestmark = pytest.mark.full
if FULL:
    from torch.testing._internal.common_optimizers import OptimizerErrorEnum, optim_db
    INFOS = {info.name: info for info in optim_db}
else:
    INFOS = {}
DTYPES = (torch.float32, torch.complex64, torch.float64, torch.complex128)
STEPS = 4


def _ours(name: str) -> type:
    return getattr(optedu, name)


def _errors(name: str) -> list[Any]:
    return INFOS[name].optim_error_inputs_func(device="cpu", dtype=torch.float32)


def _inputs(name: str) -> list[dict[str, Any]]:
    """torch's inputs for a class, plus ``foreach=True`` for each where optedu has that path."""
    kwargs = [given.kwargs for given in INFOS[name].optim_inputs_func(device="cpu",
                                                                         dtype=torch.float32)]
    if "foreach" in inspect.signature(_ours(name)).parameters:
        kwargs += [{**k, "foreach": True} for k in kwargs]
    return kwargs


def _id(kwargs: dict[str, Any]) -> str:
    def show(value: Any) -> str:
        return f"tensor({value.item():g})" if isinstance(value, torch.Tensor) else str(value)
    return ",".join(f"{k}={show(v)}" for k, v in kwargs.items()) or "default"


ERROR_CASES = [(name, index, error.optimizer_error_input.desc)
               for name in INFOS for index, error in enumerate(_errors(name))]

INPUT_CASES = []
for _name in INFOS:
    for _index, _kwargs in enumerate(_inputs(_name)):
        if not FULL and _index >= 4:  # quick: the first four inputs, one dtype each
            continue
        for _dtype in (DTYPES if FULL else DTYPES[_index:_index + 1]):
            INPUT_CASES.append(pytest.param(
                _name, _index, _dtype, id=f"{_name}-{_id(_kwargs)}-{str(_dtype)[6:]}"))

SPARSE_CASES = []
for _name, _info in INFOS.items():
    _tuned = _info.metadata_for_sparse[0]
    _all = [_tuned] + (_inputs(_name) if FULL else [])
    for _index, _kwargs in enumerate(_all):
        SPARSE_CASES.append(pytest.param(_name, _kwargs, id=f"{_name}-{_index}-{_id(_kwargs)}"))


def test_optim_db_describes_the_fifteen_twins():
    assert sorted(INFOS) == sorted(
        name for name, value in vars(torch.optim).items()
        if isinstance(value, type) and issubclass(value, torch.optim.Optimizer)
        and value is not torch.optim.Optimizer)
    assert all(hasattr(optedu, name) for name in INFOS)
    assert sorted(INFOS) == TORCH_OPTIMIZERS  # test_torch_behaviours.py's list
    assert len(ERROR_CASES) >= 124  # torch 2.13 on CPU: 124


# ---- error inputs -------------------------------------------------------------------------

def _expect_error(cls: type, error: Any) -> None:
    """``error``'s exception (or warning) from ``cls``, at the moment the table says."""
    given = error.optimizer_error_input
    if issubclass(error.error_type, Warning):
        expected = pytest.warns(error.error_type, match=error.error_regex)
    else:
        expected = pytest.raises(error.error_type, match=error.error_regex)
    if error.error_on == OptimizerErrorEnum.STEP_ERROR:
        optimizer = cls(given.params, **given.kwargs)  # must not raise yet
        with expected:
            optimizer.step()
    else:
        with expected:
            cls(given.params, **given.kwargs)


@pytest.mark.parametrize("name, index, desc", ERROR_CASES,
                         ids=[f"{n}-{i}-{d}" for n, i, d in ERROR_CASES])
def test_error_input_raises_as_in_torch(name, index, desc):
    """Same exception type (or warning), same moment, a message matching torch's pattern."""
    _expect_error(INFOS[name].optim_cls, _errors(name)[index])  # the table describes torch
    _expect_error(_ours(name), _errors(name)[index])


# ---- one outcome: parameters and state, or the exception ----------------------------------

def _outcome(make: Callable[[], Any]) -> tuple:
    """``("ok", result)`` or ``(moment, exception type, message)``."""
    moment = ["construction"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's sparse-invariants notice
            return ("ok", make(moment))
    except Exception as raised:  # noqa: BLE001 -- any exception is an outcome to compare
        return (moment[0], type(raised), str(raised))


def _same(a: Any, b: Any) -> bool:
    """Equal values: tensors bit for bit (same dtype and layout; NaN equal to NaN), numbers,
    and containers of them."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return False
        if (a.dtype, a.layout, a.shape) != (b.dtype, b.layout, b.shape):
            return False
        a, b = a.to_dense(), b.to_dense()
        nan_a, nan_b = a.isnan(), b.isnan()
        return torch.equal(nan_a, nan_b) and torch.equal(a.masked_fill(nan_a, 0),
                                                         b.masked_fill(nan_b, 0))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return (type(a) is type(b) and len(a) == len(b)
                and all(_same(x, y) for x, y in zip(a, b)))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


def _assert_same_outcome(theirs: tuple, ours: tuple) -> None:
    assert theirs[0] == ours[0], (theirs[:3] if theirs[0] != "ok" else "torch ok", ours[:3]
                                  if ours[0] != "ok" else "optedu ok")
    if theirs[0] != "ok":
        assert theirs[1] is ours[1], (theirs, ours)
        return
    (t_params, t_dict), (o_params, o_dict) = theirs[1], ours[1]
    for index, (t, o) in enumerate(zip(t_params, o_params, strict=True)):
        assert _same(t, o), f"parameter {index} differs: {(t - o).abs().max().item():.3g}"
    assert _same(t_dict["state"], o_dict["state"]), "state differs"
    for t_group, o_group in zip(t_dict["param_groups"], o_dict["param_groups"], strict=True):
        assert _same({k: t_group[k] for k in o_group}, o_group)


def _dense_run(cls: type, kwargs: dict[str, Any], dtype: torch.dtype) -> Callable:
    """Two groups (one group for L-BFGS): a matrix of ``dtype`` beside a real vector in the
    first (mixed dtypes in one group), a parameter whose gradient stays ``None``, a second
    group with half the learning rate; a loss whose gradient depends on the parameters."""
    real = torch.empty((), dtype=dtype).real.dtype
    matrices = cls in (torch.optim.Muon, optedu.Muon)

    def make(moment: list[str]) -> tuple:
        g = torch.Generator().manual_seed(0)
        shapes = [(4, 3), (3, 5), (2, 4)] if matrices else [(4, 3), (5,), (2, 2, 2)]
        dtypes = [dtype, real, dtype]
        params = [torch.randn(s, generator=g, dtype=d).requires_grad_()
                  for s, d in zip(shapes, dtypes)]
        unused = torch.randn(shapes[0], generator=g, dtype=dtype).requires_grad_()
        weights = [torch.rand(torch.view_as_real(p).shape if p.is_complex() else p.shape,
                              generator=g, dtype=real) + 0.5 for p in params]
        if cls in (torch.optim.LBFGS, optedu.LBFGS):
            groups = [{"params": [*params, unused]}]
        else:
            lr = kwargs.get("lr", inspect.signature(cls).parameters["lr"].default)
            groups = [{"params": [params[0], params[1], unused]},
                      {"params": [params[2]], "lr": lr * 0.5}]
        optimizer = cls(groups, **kwargs)
        moment[0] = "step"

        def closure():
            optimizer.zero_grad()
            loss = sum(((torch.view_as_real(p) if p.is_complex() else p) ** 2 * w
                        + 0.1 * (torch.view_as_real(p) if p.is_complex() else p) ** 4).sum()
                       for p, w in zip(params, weights))
            loss.backward()
            return loss

        for _ in range(STEPS):
            optimizer.step(closure)
        return [p.detach().clone() for p in [*params, unused]], optimizer.state_dict()

    return make


@pytest.mark.parametrize("name, index, dtype", INPUT_CASES)
def test_optim_input_matches_torch(name, index, dtype):
    """torch's own inputs (tensor learning rates among them), real and complex: optedu ends
    where torch ends, or raises what torch raises when torch raises it."""
    info, kwargs = INFOS[name], _inputs(name)[index]
    theirs = _outcome(_dense_run(info.optim_cls, kwargs, dtype))
    ours = _outcome(_dense_run(_ours(name), kwargs, dtype))
    _assert_same_outcome(theirs, ours)
    if dtype.is_complex and info.supports_complex and not kwargs.get("foreach"):
        assert theirs[0] == "ok"  # the table says torch trains it
    if dtype.is_complex and not info.supports_complex:
        assert theirs[0] != "ok"  # ... or refuses it


# ---- sparse gradients ---------------------------------------------------------------------

def _sparse_run(cls: type, kwargs: dict[str, Any]) -> Callable:
    """Two sparse embeddings (two groups, float64), rows looked up at random: each step's
    gradient holds some rows, some twice (uncoalesced), and misses others."""

    def make(moment: list[str]) -> tuple:
        torch.manual_seed(0)
        first = torch.nn.Embedding(10, 3, sparse=True).double()
        second = torch.nn.Embedding(6, 2, sparse=True).double()
        lr = kwargs.get("lr", inspect.signature(cls).parameters["lr"].default)
        groups = [{"params": first.parameters()},
                  {"params": second.parameters(), "lr": lr * 0.5}]
        if cls in (torch.optim.LBFGS, optedu.LBFGS):
            groups = [{"params": [*first.parameters(), *second.parameters()]}]
        optimizer = cls(groups, **kwargs)
        moment[0] = "step"
        g = torch.Generator().manual_seed(1)

        def closure():
            optimizer.zero_grad()
            rows = torch.randint(0, 6, (7,), generator=g)
            loss = first(rows).pow(2).sum() + second(rows).sin().sum()
            loss.backward()
            return loss

        for _ in range(STEPS):
            optimizer.step(closure)
        return [first.weight.detach().clone(), second.weight.detach().clone()], \
            optimizer.state_dict()

    return make


@pytest.mark.parametrize("name, kwargs", SPARSE_CASES)
def test_sparse_gradients_as_in_torch(name, kwargs):
    """Where torch takes sparse gradients (SGD, Adagrad; SparseAdam only those), optedu ends
    where torch does; where torch refuses them, optedu refuses them at the same moment."""
    info = INFOS[name]
    theirs = _outcome(_sparse_run(info.optim_cls, kwargs))
    ours = _outcome(_sparse_run(_ours(name), kwargs))
    _assert_same_outcome(theirs, ours)
    if kwargs is info.metadata_for_sparse[0] and (info.supports_sparse
                                                  or info.only_supports_sparse_grads):
        assert theirs[0] == "ok"
