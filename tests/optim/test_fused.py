"""optedu.optim.fused: each tensor's step compiled into one kernel.

What is checked:

* rounding: from the same state, one fused step lands within one unit in the last place (of
  the tensor's largest entry) of optedu's one-tensor step and of torch's fused step, for every
  parameter and state tensor, in float32 and float64 (bfloat16 too against torch); Lion's
  parameter bit for bit. The differences come from fused multiply-adds (ATen's vectorised
  ``add(alpha=)`` and ``lerp`` round once, Inductor's separate product and sum twice);
* the compiled step stays compiled: after the warm-up no graph is compiled again and none breaks
  while a scheduler changes the learning rate every step and the set of tensors with gradients
  changes, sizes included (dynamo's counters);
* without a C++ compiler, ``fused=True`` warns and steps exactly as the uncompiled path;
* torch's refusals: ``fused`` with ``foreach``, complex parameters, sparse gradients; and a
  DTensor, which the kernels cannot step.

Compiling takes a second or more a kernel, so every test that compiles runs in the full tier
(``make test``, CI); a quick pytest runs the refusals and the fallback, which compile nothing.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
import warnings
from typing import Any

import pytest
import torch

import optedu
from optedu.instruments.parity import one_step_ulps
from optedu.optim import fused

GRIDS: dict[str, dict[str, list[Any]]] = {
    "SGD": dict(lr=[0.1], momentum=[0, 0.9], dampening=[0, 0.1], nesterov=[False, True],
                weight_decay=[0, 0.01], maximize=[False, True]),
    "Adam": dict(lr=[0.01], weight_decay=[0, 0.1], amsgrad=[False, True],
                 maximize=[False, True], decoupled_weight_decay=[False, True]),
    "AdamW": dict(lr=[0.01], weight_decay=[0.1], amsgrad=[False, True],
                  maximize=[False, True]),
    "Adagrad": dict(lr=[0.1], lr_decay=[0, 0.01], weight_decay=[0, 0.1],
                    maximize=[False, True]),
    "Lion": dict(lr=[0.01], weight_decay=[0, 0.1]),
}
TORCH_FUSED = {"SGD", "Adam", "AdamW", "Adagrad"}
# the measured bound, in ulps of each tensor's largest entry (optedu.instruments.parity.ulps)
BOUND = 1.0


def cases(name: str, every_one: bool) -> list[dict[str, Any]]:
    """Every combination of the rule's options, or the one with the most options away from
    their first value."""
    grid = GRIDS[name]
    every = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    every = [kw for kw in every if not (kw.get("nesterov") and (
        kw["momentum"] == 0 or kw["dampening"] != 0))]       # torch refuses these
    if every_one:
        return every
    return [max(every, key=lambda kw: sum(kw[k] != grid[k][0] for k in kw))]


def grid(names, dtypes) -> list[tuple[str, dict[str, Any], torch.dtype]]:
    """Every combination in float32; in the other dtypes, the case of :func:`cases` with
    the most options set (compiling every combination twice more would double the time)."""
    return [(name, kw, dtype) for dtype in dtypes for name in names
            for kw in cases(name, dtype == torch.float32)]


def ids(rows) -> list[str]:
    return [f"{name}-{str(dtype).removeprefix('torch.')}-"
            + ",".join(f"{k}={v}" for k, v in kw.items() if k != "lr") for name, kw, dtype in rows]


ONE_TENSOR = grid(list(GRIDS), [torch.float32, torch.float64])
TORCH = grid(sorted(TORCH_FUSED), [torch.float32, torch.float64, torch.bfloat16])


def optedu_class(name: str) -> type:
    return getattr(optedu, name)


@pytest.mark.full  # compiles kernels
@pytest.mark.parametrize(("name", "kwargs", "dtype"), ONE_TENSOR, ids=ids(ONE_TENSOR))
def test_fused_step_rounds_within_one_ulp_of_the_one_tensor_step(name, kwargs, dtype):
    cls = optedu_class(name)
    worst = one_step_ulps(lambda p: cls(p, **kwargs), lambda p: cls(p, fused=True, **kwargs),
                          dtype=dtype)
    assert max(worst.values()) <= BOUND, worst
    if name == "Lion":     # η sign(c) is exact: the step rounds once on both paths
        assert worst["param"] == 0.0, worst


@pytest.mark.full  # compiles kernels
@pytest.mark.parametrize(("name", "kwargs", "dtype"), TORCH, ids=ids(TORCH))
def test_fused_step_rounds_within_one_ulp_of_torchs_fused_step(name, kwargs, dtype):
    if name == "SGD" and dtype == torch.bfloat16:
        pytest.skip("torch 2.13's fused SGD skips bfloat16 vector blocks: tested below")
    theirs, ours = getattr(torch.optim, name), optedu_class(name)
    worst = one_step_ulps(lambda p: theirs(p, fused=True, **kwargs),
                          lambda p: ours(p, fused=True, **kwargs), dtype=dtype)
    assert max(worst.values()) <= BOUND, worst


@pytest.mark.full  # compiles kernels
def test_torchs_fused_sgd_leaves_bfloat16_vector_blocks_unchanged():
    """pytorch/pytorch#191763 (fixed after 2.13): on a CPU, torch's fused SGD skips the update
    of every whole SIMD block of a float16 or bfloat16 parameter. optedu's fused SGD steps
    them. If this fails, torch has the fix: re-run the bfloat16 parity above against it."""
    g = torch.Generator().manual_seed(0)
    start = torch.randn(64, generator=g).bfloat16()
    grad = torch.randn(64, generator=g).bfloat16()
    theirs, ours = start.clone(), start.clone()
    theirs.grad, ours.grad = grad.clone(), grad.clone()
    torch.optim.SGD([theirs], lr=0.1, fused=True).step()
    optedu.SGD([ours], lr=0.1, fused=True).step()
    assert torch.equal(theirs, start)                  # not one entry moved
    expected = (start.float() - 0.1 * grad.float()).bfloat16()
    assert torch.equal(ours, expected)


@pytest.mark.full  # compiles kernels
def test_fused_muon_matches_the_one_tensor_step():
    """Muon's products stay matrix multiplications (the same calls as the one-tensor rule);
    the element-wise lines before and after them are fused."""
    shapes = ((64, 33), (33, 64))
    for kwargs in ({}, {"nesterov": False, "adjust_lr_fn": "match_rms_adamw"}):
        worst = one_step_ulps(lambda p: optedu.Muon(p, lr=0.02, **kwargs),
                              lambda p: optedu.Muon(p, lr=0.02, fused=True, **kwargs),
                              shapes=shapes)
        assert max(worst.values()) <= BOUND, worst


@pytest.mark.full  # compiles kernels
def test_state_is_torchs_fused_state():
    """The same keys, shapes and dtypes as torch's fused Adam: ``step`` in float32 even under a
    float64 default, as torch keeps it for its fused kernels."""
    with torch.device("cpu"):
        previous = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            ours, theirs = torch.ones(3, requires_grad=True), torch.ones(3, requires_grad=True)
            a = optedu.Adam([ours], fused=True)
            b = torch.optim.Adam([theirs], fused=True)
            for p, opt in ((ours, a), (theirs, b)):
                p.grad = torch.full_like(p, 0.5)
                opt.step()
        finally:
            torch.set_default_dtype(previous)
    for key, value in b.state[theirs].items():
        assert a.state[ours][key].dtype == value.dtype, key
        assert a.state[ours][key].shape == value.shape, key
    assert set(a.state[ours]) == set(b.state[theirs])
    assert a.state_dict()["param_groups"][0]["fused"] is True


@pytest.mark.full  # compiles kernels
def test_no_recompilation_or_graph_break_after_warm_up():
    """A run with a scheduler (the rate changes every step) in which the set of tensors with
    gradients changes: a frozen layer of new sizes joins after the warm-up, another leaves, and
    a one-element gain (a size dynamo would specialise) joins last."""
    from torch._dynamo.utils import counters     # imports dynamo: only where it is used
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3),
                                torch.nn.Tanh(), torch.nn.Linear(3, 5))
    late = list(model[4].parameters())             # sizes 15 and 5: seen only after warm-up
    gain = torch.nn.Parameter(torch.ones(1))        # one element, from step 6 on
    decay = [p for p in model.parameters() if p.ndim == 2]
    no_decay = [p for p in model.parameters() if p.ndim == 1] + [gain]
    optimizer = optedu.AdamW([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}],
                             lr=1e-2, fused=True)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 / (1 + step))
    x = torch.randn(16, 6)

    def step(k: int) -> None:
        for p in late:
            p.requires_grad_(k >= 3)
        model[0].weight.requires_grad_(k % 2 == 0 or k < 3)
        gain.requires_grad_(k >= 6)
        optimizer.zero_grad(set_to_none=True)
        (gain * model(x)).square().mean().backward()
        optimizer.step()
        scheduler.step()

    for k in range(2):                              # warm-up: one kernel per group
        step(k)
    graphs = counters["stats"]["unique_graphs"]
    breaks = sum(counters["graph_break"].values())
    rates = set()
    for k in range(2, 10):
        rates.add(optimizer.param_groups[0]["lr"])
        step(k)
    assert len(rates) == 8                          # the rate changed every step
    assert all(int(optimizer.state[p]["step"]) == 7 for p in late)
    assert counters["stats"]["unique_graphs"] == graphs
    assert sum(counters["graph_break"].values()) == breaks


class Recording(optedu.Adam):
    """Adam whose fused kernel is the one-tensor step, recording the β₁ of each call (nothing
    compiles)."""

    def update_fused(self, params, grads, states, group):  # type: ignore[no-untyped-def]
        self.calls.append(group["betas"][0])
        for param, grad, state in zip(params, grads, states):
            self.update(param, grad, state, group)


def _cycled_run(monkeypatch: pytest.MonkeyPatch, change: Any, steps: int = 6,
                lr: Any = 1e-2) -> tuple[list[float], list[warnings.WarningMessage]]:
    """The β₁ of each fused call and the fused warnings of ``steps`` steps, ``change(k,
    optimizer)`` called after step k."""
    monkeypatch.setattr(fused, "compiler_missing", lambda: "")
    p = torch.randn(5, requires_grad=True)
    optimizer = Recording([p], lr=lr, fused=True)
    optimizer.calls = []
    hook = change(optimizer)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for k in range(steps):
            p.grad = torch.randn_like(p)
            optimizer.step()
            hook(k)
    return optimizer.calls, [w for w in caught if "fused=True" in str(w.message)]


def _one_cycle(optimizer):  # type: ignore[no-untyped-def]
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=20)
    return lambda k: scheduler.step()


def test_a_group_whose_numbers_keep_changing_steps_uncompiled(monkeypatch):
    """OneCycleLR sets Adam's β₁ at every step, and every new value compiles a new kernel
    (seconds each). After the second change the group steps uncompiled, with one warning."""
    calls, warned = _cycled_run(monkeypatch, _one_cycle)
    assert len(calls) == 2 and calls[0] != calls[1]     # the first step and the first change
    assert len(warned) == 1 and "betas changed at two steps in a row" in str(warned[0].message)
    assert warned[0].filename == __file__                 # the caller of step()


def test_the_fall_back_takes_a_path_the_group_allows(monkeypatch):
    """Adam's foreach path refuses a tensor learning rate (as torch's does): with one, the
    cycled group steps one tensor at a time."""
    calls, warned = _cycled_run(monkeypatch, _one_cycle, lr=torch.tensor(1e-2))
    assert len(calls) == 2 and len(warned) == 1


def test_numbers_changed_by_hand_steps_apart_stay_fused(monkeypatch):
    def by_hand(optimizer):  # type: ignore[no-untyped-def]
        def hook(k: int) -> None:
            if k in (1, 4):
                optimizer.param_groups[0]["weight_decay"] = 0.1 * k
        return hook
    calls, warned = _cycled_run(monkeypatch, by_hand, steps=8)
    assert len(calls) == 8 and not warned


@pytest.mark.full  # compiles kernels
def test_a_cycling_scheduler_compiles_two_kernels_and_no_more():
    """Adam with OneCycleLR (β₁ changes every step): the first kernel, one for the first
    change, then the uncompiled path."""
    from torch._dynamo.utils import counters     # imports dynamo: only where it is used
    p = torch.randn(7, requires_grad=True)
    optimizer = optedu.Adam([p], lr=1e-2, betas=(0.85, 0.9), fused=True)  # its own kernels
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=20)
    graphs = counters["stats"]["unique_graphs"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for _ in range(5):
            p.grad = torch.randn_like(p)
            optimizer.step()
            scheduler.step()
    assert counters["stats"]["unique_graphs"] == graphs + 2
    assert int(optimizer.state[p]["step"]) == 5


@pytest.mark.full  # compiles kernels
@pytest.mark.parametrize("threads, sizes", [(1, (7,)), (2, (7,)), (2, (7, 100_000))])
def test_no_scalar_line_runs_unguarded_in_a_parallel_region(threads, sizes):
    """A line outside a work-sharing loop runs on every thread of a parallel region unless
    ``omp single`` guards it, and ``step += 1`` (an in-place write of a 0-d input) would then
    race. With ``cpp.dynamic_threads`` a kernel compiled at one thread opens a region and leaves
    seven rows' scalar lines unguarded in it (the reason the option is off). Compiled without
    Inductor's cache, each case with β₂ of its own."""
    from torch._inductor.utils import run_and_get_code    # imports dynamo: only here
    params = [torch.randn(n).requires_grad_() for n in sizes]
    for p in params:
        p.grad = torch.randn_like(p)
    betas = (0.5, 0.5 + threads / 8 + len(sizes) / 64)
    optimizer = optedu.Adam(params, lr=1e-3, betas=betas, fused=True)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch._inductor.config.patch({"fx_graph_cache": False}):
            _, sources = run_and_get_code(optimizer.step)
    finally:
        torch.set_num_threads(before)
    kernel = next(source for source in sources if 'extern "C"' in source).split('extern "C"')[1]
    scalar = r"out_ptr\d+\[static_cast<int64_t>\(0L\)\] = "     # a store of one value
    stores = [m.start() for m in re.finditer(scalar, kernel)]
    assert len(stores) == 3 * fused.CHUNK                 # step, -η/(1-β₁ᵗ), √(1-β₂ᵗ)
    region = kernel.find("#pragma omp parallel")
    assert region == -1 or max(stores) < region or "#pragma omp single" in kernel


@pytest.mark.full  # compiles kernels
def test_the_bound_numbers_are_compiled_in_and_nothing_is_checked_twice():
    """β₁, β₂ and ε are literals of the kernel, not inputs that dynamo would turn into tensors
    and guard at every call; and the generated wrapper does not check the inputs' sizes and
    strides again after dynamo's guards (``size_asserts`` off). Values exact in binary, so
    that each literal reads as written."""
    from torch._inductor.utils import run_and_get_code    # imports dynamo: only here
    params = [torch.randn(n).requires_grad_() for n in (5, 7)]
    for p in params:
        p.grad = torch.randn_like(p)
    optimizer = optedu.Adam(params, lr=1e-3, betas=(0.75, 0.875), eps=0.5, fused=True)
    _, sources = run_and_get_code(optimizer.step)
    module = next(source for source in sources if 'extern "C"' in source)
    kernel = module.split('extern "C"')[1]                   # the C++ function
    for literal in ("0.25", "0.875", "0.125", "0.5"):       # 1-β₁, β₂, 1-β₂, ε
        assert f"static_cast<float>({literal})" in kernel, literal
    assert kernel.count("const double*") == 1                 # the learning rate alone
    assert "assert_size_stride(" not in module


@pytest.mark.full  # a fresh process that imports torch and optedu: 3-5 s of CPU
def test_importing_optedu_leaves_dynamo_and_inductors_cache_alone():
    """``import optedu`` does not import torch._dynamo (a second, and the import writes
    Inductor's default cache directory into ``TORCHINDUCTOR_CACHE_DIR``, where a program that
    chooses its own cache afterwards, as tools/bench.py does, would find it set): the fused
    path imports it when it first runs."""
    code = ("import os, sys, optedu; "
            "print('torch._dynamo' in sys.modules, 'TORCHINDUCTOR_CACHE_DIR' in os.environ)")
    env = {k: v for k, v in os.environ.items() if k != "TORCHINDUCTOR_CACHE_DIR"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_without_a_compiler_fused_warns_and_steps_uncompiled(monkeypatch):
    """Each rule falls back to its foreach path where it has one (SGD, Adam), else its
    one-tensor path: the same numbers bit for bit, and one warning that says why."""
    monkeypatch.setattr(fused, "compiler_missing", lambda: "no C++ compiler found (c++)")
    monkeypatch.setattr(fused, "_NO_COMPILER", [])
    for name, kwargs in (("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", {}),
                         ("Adagrad", {}), ("Lion", {})):
        cls = optedu_class(name)
        uncompiled = {"foreach": True} if name in ("SGD", "Adam") else {}
        worst = None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            worst = one_step_ulps(lambda p: cls(p, **uncompiled, **kwargs),
                                  lambda p: cls(p, fused=True, **kwargs))
        assert max(worst.values()) == 0.0, (name, worst)
        if name == "SGD":
            messages = [str(w.message) for w in caught if w.category is RuntimeWarning]
            assert len(messages) == 1 and "no C++ compiler found (c++)" in messages[0]


def test_compiler_missing_names_what_it_looked_for(monkeypatch):
    monkeypatch.setattr(fused, "_NO_COMPILER", [])
    monkeypatch.setenv("CXX", "no-such-compiler-here")
    assert fused.compiler_missing() == "no C++ compiler found (no-such-compiler-here)"
    monkeypatch.delenv("CXX")
    monkeypatch.setenv("PATH", "/nonexistent")
    assert fused.compiler_missing() == "no C++ compiler found (c++, g++, clang++)"


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "Adagrad", "Lion", "Muon"])
def test_fused_refuses_what_torchs_refuses(name):
    cls = optedu_class(name)
    matrix = torch.ones(3, 3, requires_grad=True)
    with pytest.raises(ValueError, match="fused"):
        cls([matrix], fused="yes")
    if name in ("SGD", "Adam", "AdamW"):
        with pytest.raises(RuntimeError, match="`fused` and `foreach` cannot be `True`"):
            cls([matrix], foreach=True, fused=True)
    if name != "Muon":            # Muon refuses complex parameters on every path
        z = torch.ones(3, dtype=torch.complex64, requires_grad=True)
        z.grad = torch.ones_like(z)
        with pytest.raises(RuntimeError, match="floating point"):
            cls([z], fused=True).step()
    meta = torch.ones(3, 3, device="meta", requires_grad=True)
    meta.grad = torch.ones(3, 3, device="meta")
    with pytest.raises(RuntimeError,
                       match=r"supported devices: \['cpu'\] but torch.float32 and meta"):
        cls([meta], fused=True).step()
    if name in ("SGD", "Adagrad"):
        p = torch.ones(3, requires_grad=True)
        p.grad = torch.ones(3).to_sparse()
        with pytest.raises(RuntimeError, match="sparse"):
            cls([p], fused=True).step()


def test_a_subclass_that_changes_the_rule_is_refused_the_parents_kernel():
    """A class that overrides ``update`` but not ``update_fused`` would silently step its
    parent's rule on the fused path: refused, naming both."""
    class Halved(optedu.SGD):
        def update(self, param, grad, state, group):
            super().update(param, grad / 2, state, group)

    p = torch.ones(3, requires_grad=True)
    p.grad = torch.ones(3)
    with pytest.raises(ValueError, match="Halved changes the rule of SGD but not its fused"):
        Halved([p], lr=0.1, fused=True).step()
    assert torch.equal(p, torch.ones(3))           # refused before anything moved
