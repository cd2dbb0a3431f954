"""Behaviours torch's test/optim/test_optim.py checks beyond the numbers, on every optedu twin
of ``optim_db``: step hooks, state-dict hooks, deep copy, pickling, an older state dict (no
``maximize``/``foreach`` entries, a Python number as ``step``). Each runs beside torch's class
and asks for the same result."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch

import optedu
from optimizers import TORCH_OPTIMIZERS

NAMES = TORCH_OPTIMIZERS


def _older_flags(name: str) -> tuple[str, ...]:
    """The flags optim_db says a class lacked at its first release."""
    from torch.testing._internal.common_optimizers import optim_db

    return next(info.not_og_supported_flags for info in optim_db if info.name == name)


def _setup(cls):
    torch.manual_seed(0)
    weight = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    optimizer = cls([weight])

    def closure():
        optimizer.zero_grad()
        loss = (weight ** 2).sum() + (weight ** 4).sum()
        loss.backward()
        if weight.grad is not None and cls.__name__ == "SparseAdam":
            weight.grad = weight.grad.to_sparse()
        return loss

    return weight, optimizer, closure


def _train(optimizer, closure, steps=3):
    for _ in range(steps):
        optimizer.step(closure)


def _both(name):
    return getattr(torch.optim, name), getattr(optedu, name)


@pytest.mark.parametrize("name", NAMES)
def test_step_hooks_fire_in_order(name):
    calls = {}
    for cls in _both(name):
        weight, optimizer, closure = _setup(cls)
        seen = []
        optimizer.register_step_pre_hook(lambda o, a, k: seen.append("pre"))
        handle = optimizer.register_step_post_hook(lambda o, a, k: seen.append("post"))
        _train(optimizer, closure, 1)
        handle.remove()
        _train(optimizer, closure, 1)
        calls[cls] = seen
    assert list(calls.values())[0] == list(calls.values())[1] == ["pre", "post", "pre"]


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_hooks(name):
    for cls in _both(name):
        weight, optimizer, closure = _setup(cls)
        _train(optimizer, closure)
        optimizer.register_state_dict_pre_hook(lambda o: o.param_groups[0].update(mark=1))
        optimizer.register_state_dict_post_hook(lambda o, sd: sd.update(extra=2) or sd)
        saved = optimizer.state_dict()
        assert saved["param_groups"][0]["mark"] == 1 and saved["extra"] == 2
        loaded = []
        optimizer.register_load_state_dict_pre_hook(lambda o, sd: loaded.append("pre"))
        optimizer.register_load_state_dict_post_hook(lambda o: loaded.append("post"))
        del saved["extra"]
        optimizer.load_state_dict(saved)
        assert loaded == ["pre", "post"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_copy_steps_as_the_original(name, how):
    """A deep copy (or a pickled copy) of an optimizer with its parameters steps exactly as the
    original, in optedu as in torch."""
    if name == "LBFGS":
        pytest.skip("torch's own LBFGS cannot step after a copy (_params is not restored)")
    for cls in _both(name):
        weight, optimizer, closure = _setup(cls)
        _train(optimizer, closure)
        twin = copy.deepcopy((weight, optimizer)) if how == "deepcopy" else \
            pickle.loads(pickle.dumps((weight, optimizer)))
        twin_weight, twin_optimizer = twin

        def twin_closure():
            twin_optimizer.zero_grad()
            loss = (twin_weight ** 2).sum() + (twin_weight ** 4).sum()
            loss.backward()
            if cls.__name__ == "SparseAdam":
                twin_weight.grad = twin_weight.grad.to_sparse()
            return loss

        _train(optimizer, closure)
        _train(twin_optimizer, twin_closure)
        assert torch.equal(weight, twin_weight)


@pytest.mark.full  # reads torch's optim_db
@pytest.mark.parametrize("name", NAMES)
def test_older_state_dict_loads(name):
    """torch's test_can_load_older_state_dict and test_load_nontensor_step: a state dict
    without the flags added after a class's first release, and with ``step`` as a Python
    number, loads into optedu and steps as torch steps after loading it."""
    results = []
    for cls in _both(name):
        weight, optimizer, closure = _setup(torch.optim.__dict__[name])
        _train(optimizer, closure)
        older = copy.deepcopy(optimizer.state_dict())
        for group in older["param_groups"]:
            for flag in _older_flags(name):
                group.pop(flag, None)
        for state in older["state"].values():
            if isinstance(state.get("step"), torch.Tensor):
                state["step"] = state["step"].item()
        resumed = cls([weight])
        resumed.load_state_dict(older)

        def resumed_closure():
            resumed.zero_grad()
            loss = (weight ** 2).sum() + (weight ** 4).sum()
            loss.backward()
            if name == "SparseAdam":
                weight.grad = weight.grad.to_sparse()
            return loss

        _train(resumed, resumed_closure)
        results.append(weight.detach().clone())
    assert torch.equal(results[0], results[1])
