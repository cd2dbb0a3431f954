"""optedu.optim.distributed_shampoo.DistributedShampoo against optax-shampoo 0.0.6 (Google's
Distributed Shampoo in JAX, the authors' package: ``tests/optim/_optax_shampoo.py`` says how
it runs on the pinned jax), jax on the CPU with x64 on, its update jitted as its users run it.

What the runs hold: 32 steps on five tensors at once (a vector; a 5 × 4 matrix; a 9 × 6
matrix cut by ``block_size=4`` into 3 × 2 blocks, one of them 1 × 2; a 2 × 3 × 4 × 5 tensor
merged by ``best_effort_shape_interpretation`` into 6 × 4 × 5 and then blocked; a scalar,
which takes the grafted step), Shampoo's direction from step 5 on, roots refreshed every step
or every third. Parameters and every state entry are compared.

Not bit for bit, and why. XLA's CPU compiler fuses ``a * b + c`` into one fused multiply-add
(one rounding; torch rounds the product and then the sum: :func:`test_xla_fuses_multiply_add`
shows it on the reference's own momentum line), and sums a matmul, a Gram matrix and a norm in
its own order. Those last-bit differences pass through the inverse roots: a root's
sensitivity grows with its factor's condition number, which the relative ε caps at
:math:`10^6`, so a ``p``-th root moves up to :math:`10^{6/p}` times the input's relative
change. The tolerances below were measured on these runs (the largest relative difference,
per tensor, of the parameters and of each state entry, over ``max |reference|``) and set at
about four times the largest measured value of the option's runs; the measured values are in
``MEASURED``.

float32: the reference keeps its factors in float32 and takes their roots in float64 (x64 on:
``_MAT_INV_PTH_ROOT_DTYPE``), as optedu does. float64: the reference fails on float64
parameters (``lax.cond`` between its float32 initial roots and float64 new ones), so the
float64 runs start it from the same state built in float64 (``εI`` and ``I``: what its
``init`` would make in that dtype).
"""

from __future__ import annotations

import copy
import math
import sys

import numpy as np
import pytest
import torch

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

import _optax_shampoo  # noqa: E402  (the reference's stand-ins: see its docstring)
from optedu.optim import distributed_shampoo as ds  # noqa: E402
from optedu.optim.distributed_shampoo import DistributedShampoo  # noqa: E402

REF = _optax_shampoo.load()
STEPS = 32
SHAPES = [(6,), (5, 4), (9, 6), (2, 3, 4, 5), ()]
BASE = dict(block_size=4, merge_small_dims_block_size=8)
GRAFTS = {"sgd": 1, "adagrad": 2, "rmsprop": 3, "rmsprop_normalized": 4, "sqrt_n": 5,
          "adagrad_normalized": 6}

# option -> the arguments it sets (on top of BASE); every graft, both momenta, sums and EMA,
# both weight decays, the refresh periods, ε absolute, one-sided, skipped tensors
CASES = {
    "sgd": dict(graft_type="sgd"),
    "adagrad": dict(graft_type="adagrad"),
    "rmsprop": dict(graft_type="rmsprop"),
    "rmsprop_normalized+clip": dict(graft_type="rmsprop_normalized",
                                    clip_by_scaled_gradient_norm=0.5),
    "sqrt_n": dict(graft_type="sqrt_n"),
    "adagrad_normalized": dict(graft_type="adagrad_normalized"),
    "no_nesterov+moving_average": dict(graft_type="adagrad", nesterov=False,
                                       moving_average_for_momentum=True),
    "beta2=1 (sums)": dict(graft_type="adagrad", beta2=1.0),
    "weight_decay": dict(graft_type="rmsprop", weight_decay=0.05),
    "decoupled_weight_decay+lr": dict(graft_type="adagrad", weight_decay=0.05,
                                      decoupled_weight_decay=True,
                                      decoupled_learning_rate=False),
    "exponent_override": dict(graft_type="adagrad", exponent_override=2),
    "refresh=3,statistics=2": dict(graft_type="adagrad", preconditioning_compute_steps=3,
                                   statistics_compute_steps=2),
    "absolute_eps+input": dict(graft_type="sgd", relative_matrix_epsilon=False,
                               matrix_epsilon=1e-3, preconditioner_type="input"),
    "skips+no_merge": dict(graft_type="rmsprop", skip_preconditioning_dim_size_gt=8,
                           skip_preconditioning_rank_lt=2,
                           best_effort_shape_interpretation=False, start_preconditioning_step=2),
}
# the largest relative difference measured per case over parameters and state, float32, 32
# steps (``python tests/optim/test_distributed_shampoo.py`` prints them again); the tolerance
# is four times it, rounded up to one digit: room for another machine's kernels (torch picks
# AVX-512 or AVX2 ones, XLA its own), not for another rule. The largest: stale roots (a root
# from 1-2 steps earlier meets a gradient and a graft that differ by rounding), sums (β₂ = 1:
# factors that grow with t and a condition number at the ridge's cap sooner) and weight decay
# (the scalar parameter decays towards 0, so its relative difference grows)
MEASURED = {
    "sgd": 3.42e-07, "adagrad": 4.31e-07, "rmsprop": 1.07e-06,
    "rmsprop_normalized+clip": 3.42e-07, "sqrt_n": 1.17e-06, "adagrad_normalized": 4.68e-07,
    "no_nesterov+moving_average": 3.42e-07, "beta2=1 (sums)": 4.02e-06,
    "weight_decay": 7.14e-06, "decoupled_weight_decay+lr": 5.28e-07,
    "exponent_override": 1.20e-06, "refresh=3,statistics=2": 9.09e-06,
    "absolute_eps+input": 3.27e-07, "skips+no_merge": 1.07e-06,
}


def _four_times(value: float) -> float:
    """4 × value rounded up to one significant digit (3.42e-7 -> 2e-6)."""
    exponent = math.floor(math.log10(4 * value))
    return math.ceil(4 * value / 10 ** exponent) * 10.0 ** exponent


TOLERANCE = {name: _four_times(value) for name, value in MEASURED.items()}


def _gradients(dtype, steps=STEPS, seed=1):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(steps)]


def _initial(dtype):
    rng = np.random.default_rng(0)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


def _reference_kwargs(kwargs):
    kwargs = dict(kwargs)
    kwargs["graft_type"] = REF.GraftingType(GRAFTS[kwargs.get("graft_type", "sgd")])
    if "preconditioner_type" in kwargs:
        kind = kwargs.pop("preconditioner_type")
        kwargs["precondtioner_type"] = REF.PreconditionerType(1 if kind == "all" else 2)
    return kwargs


def run_reference(kwargs, dtype=np.float32, lr=0.1, steps=STEPS, seed=1):
    """The reference's parameters and per-tensor state after ``steps`` steps."""
    with jax.enable_x64(True), _optax_shampoo.compat():
        params = [jnp.asarray(p) for p in _initial(dtype)]
        tx = REF.distributed_shampoo(lr, generate_training_metrics=False,
                                     **_reference_kwargs(kwargs))
        state = tx.init(params)
        if dtype == np.float64:   # its init's εI and I, made in float64
            eps = kwargs.get("matrix_epsilon", 1e-6)
            state = state._replace(stats=[s._replace(
                statistics=[eps * jnp.eye(len(x), dtype=jnp.float64) for x in s.statistics],
                preconditioners=[jnp.eye(len(x), dtype=jnp.float64) for x in s.statistics])
                for s in state.stats])
        update = jax.jit(tx.update)
        for grads in _gradients(dtype, steps, seed):
            updates, state = update([jnp.asarray(g) for g in grads], state, params)
            params = optax.apply_updates(params, updates)
        return [np.asarray(p) for p in params], [_reference_state(s) for s in state.stats]


def _reference_state(stats):
    state = {"momentum": stats.momentum.quantized,
             "diagonal_momentum": stats.diagonal_momentum.quantized,
             "statistics": list(stats.statistics), "preconditioners": list(stats.preconditioners)}
    if not isinstance(stats.diagonal_statistics.quantized, list):
        state["diagonal_statistics"] = stats.diagonal_statistics.quantized
    return {k: [np.asarray(x) for x in v] if isinstance(v, list) else np.asarray(v)
            for k, v in state.items()}


def run_optedu(kwargs, dtype=np.float32, lr=0.1, steps=STEPS, seed=1, groups=None):
    params = [torch.tensor(p).requires_grad_() for p in _initial(dtype)]
    opt = DistributedShampoo(groups(params) if groups else params, lr=lr, **kwargs)
    for grads in _gradients(dtype, steps, seed):
        for p, g in zip(params, grads):
            p.grad = torch.tensor(g)
        opt.step()
    return params, opt


def _state_of(opt, p):
    state = {k: v for k, v in opt.state[p].items() if k != "step"}
    if "statistics" not in state:    # a skipped tensor: the reference keeps empty lists
        state.update(statistics=[], preconditioners=[])
    return {k: [x.numpy() for x in v] if isinstance(v, list) else v.numpy()
            for k, v in state.items()}


def _relative(a, b):
    scale = float(np.max(np.abs(a))) if a.size else 0.0
    return float(np.max(np.abs(a - b))) / scale if scale else float(np.max(np.abs(a - b), initial=0))


def differences(ours, theirs):
    """Per tensor and per state entry, max |ours - theirs| / max |theirs|; the worst one."""
    (params, opt), (ref_params, ref_states) = ours, theirs
    worst = {}
    for i, (p, q, ref) in enumerate(zip(params, ref_params, ref_states)):
        assert p.dtype == torch.from_numpy(q).dtype
        worst[f"param{i}"] = _relative(q, p.detach().numpy())
        state = _state_of(opt, p)
        assert sorted(state) == sorted(ref), (i, sorted(state), sorted(ref))
        for key, value in state.items():
            pairs = zip(ref[key], value) if isinstance(value, list) else [(ref[key], value)]
            if isinstance(value, list):
                assert len(value) == len(ref[key]), (i, key)
            for a, b in pairs:
                assert a.shape == b.shape, (i, key)
                worst[f"{key}{i}"] = max(worst.get(f"{key}{i}", 0.0), _relative(a, b))
    return worst


# Each case compiles optax's update with XLA, 3 to 8 s on two cores, and each root below a
# second: the comparisons of whole runs and of roots are the full tier's, as the tests that
# compile torch's kernels are; the quick tier keeps the pieces that run eagerly (merging,
# blocking, the power iteration's start), the state and the refusals.
JITTED = pytest.mark.full


@JITTED
@pytest.mark.parametrize("name", list(CASES))
def test_float32_matches_optax_shampoo(name):
    kwargs = {**BASE, **CASES[name]}
    worst = differences(run_optedu(kwargs), run_reference(kwargs))
    largest = max(worst.values())
    assert largest <= TOLERANCE[name], (name, largest, max(worst, key=worst.get))


FLOAT64_CASES = ["adagrad", "refresh=3,statistics=2", "rmsprop_normalized+clip",
                 "decoupled_weight_decay+lr"]


@JITTED
@pytest.mark.parametrize("name", FLOAT64_CASES)
def test_float64_matches_optax_shampoo(name):
    """Measured 2.4e-15 to 6.0e-14 (the stale roots' case); float64's rounding passed
    through roots of factors whose condition number reaches 10⁶."""
    kwargs = {**BASE, **CASES[name]}
    worst = differences(run_optedu(kwargs, np.float64), run_reference(kwargs, np.float64))
    assert max(worst.values()) <= 3e-13, (name, max(worst, key=worst.get))


@JITTED
def test_two_groups_are_two_references():
    """The reference has one set of hyperparameters; two torch groups with different rates
    step as two references would, each tensor by its group's."""
    kwargs = {**BASE, **CASES["adagrad"]}
    params, opt = run_optedu(kwargs, groups=lambda ps: [{"params": ps[:2]},
                                                         {"params": ps[2:], "lr": 0.03}])
    for lr, picked in ((0.1, slice(0, 2)), (0.03, slice(2, None))):
        ref_params, _ = run_reference(kwargs, lr=lr)
        for p, q in list(zip(params, ref_params))[picked]:
            assert _relative(q, p.detach().numpy()) <= TOLERANCE["adagrad"]


@JITTED
def test_xla_fuses_multiply_add():
    """Why float32 is not bit for bit: the reference's momentum line, jitted, rounds once
    (a fused multiply-add, reproduced in float64 then rounded), where torch rounds twice."""
    rng = np.random.default_rng(0)
    m, u = (rng.standard_normal(100).astype(np.float32) for _ in range(2))
    with jax.enable_x64(True):
        fused = np.asarray(jax.jit(lambda m, u: m * 0.9 + 1.0 * u)(m, u))
    once = (m.astype(np.float64) * np.float64(np.float32(0.9)) + u).astype(np.float32)
    twice = (torch.from_numpy(m) * 0.9 + 1.0 * torch.from_numpy(u)).numpy()
    assert np.array_equal(fused, once) and not np.array_equal(fused, twice)


# --- the pieces, one by one, against the reference's functions ----------------------------------

SHAPES_TO_MERGE = [[1, 2, 512, 1, 2048, 1, 3, 4], [1, 2, 768, 1, 2048], [1, 1], [7], [],
                   [3, 3, 16, 32], [4096, 2], [2, 2, 2, 2, 2]]


@pytest.mark.parametrize("shape", SHAPES_TO_MERGE, ids=str)
@pytest.mark.parametrize("max_dim", [8, 1024, 4096])
def test_merge_small_dims(shape, max_dim):
    assert ds.merge_small_dims(shape, max_dim) == REF.merge_small_dims(shape, max_dim)


@pytest.mark.parametrize("shape", [(9, 6), (4, 4), (13,), (6, 4, 5), (1, 9)], ids=str)
def test_blocks_in_the_reference_order(shape):
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    theirs = REF.BlockPartitioner(jnp.asarray(x), 4)
    sizes = ds.block_sizes(list(shape), 4)
    assert sizes == [list(s) for s in theirs.split_sizes()]
    ours = ds.partition(torch.from_numpy(x), sizes)
    assert len(ours) == len(theirs.partition(jnp.asarray(x)))
    for a, b in zip(ours, theirs.partition(jnp.asarray(x))):
        assert np.array_equal(a.numpy(), np.asarray(b))
    assert torch.equal(ds.merge_partitions(ours, sizes), torch.from_numpy(x))
    assert [tuple(b.shape) for b in ours] == ds._product(sizes)


def test_power_iteration_starts_where_the_reference_does():
    assert np.array_equal(np.array(ds._start_vector(300)),
                          np.random.RandomState(1729).uniform(-1.0, 1.0, 300))


def _spd(n, rank, seed=0, dtype=np.float64):
    g = np.random.default_rng(seed).standard_normal((n, rank))
    return (g @ g.T / rank + 1e-6 * np.eye(n)).astype(dtype)


MATRICES = [(4, 4, 2), (4, 2, 4), (6, 6, 4), (8, 3, 2), (1, 1, 2), (5, 5, 8)]


@JITTED
@pytest.mark.parametrize("x64", [True, False], ids=["float64", "float32"])
@pytest.mark.parametrize(("n", "rank", "p"), MATRICES, ids=str)
def test_inverse_pth_root(n, rank, p, x64):
    """The coupled Newton iteration with ε relative to the power iteration's eigenvalue, on
    full-rank factors (condition ~10²) and rank-deficient ones (~10⁶, the ridge's cap).
    Measured: float64 (x64 on; the dtype the class uses) ≤ 5.1e-12 relative; a 1 × 1 factor
    2.9e-8, because the reference's function alone takes its root in closed form (inside a
    model with any larger factor it pads it and iterates, as optedu always does) while the
    iteration stops at an error of 1e-6. float32 (x64 off, the reference's fallback) ≤ 3.8e-7
    at condition 10², but 4.6e-3 at 10⁶: float32's rounding amplified by the condition number,
    in both implementations (the reason the class computes roots in float64)."""
    dtype = np.float64 if x64 else np.float32
    a = _spd(n, rank, dtype=dtype)
    with jax.enable_x64(x64):
        theirs, metrics = REF.matrix_inverse_pth_root(jnp.asarray(a), p, ridge_epsilon=1e-6)
        _, top = REF.power_iteration(jnp.asarray(a))
    ours, error = ds.matrix_inverse_pth_root(torch.from_numpy(a), p, ridge_epsilon=1e-6)
    assert ours.dtype == torch.from_numpy(a).dtype
    assert _relative(np.asarray(top), ds.power_iteration(torch.from_numpy(a)).numpy()) <= (
        2e-15 if x64 else 1e-6)
    if x64:
        bound = 1e-7 if n == 1 else 2e-11
    else:
        bound = 2e-6 if rank == n else 2e-2
    assert _relative(np.asarray(theirs), ours.numpy()) <= bound
    assert abs(float(error) - float(metrics.inverse_pth_root_errors)) <= (
        1e-6 if n == 1 else 1e-12 if x64 else 5e-7)   # 1 × 1: the iteration's tolerance


def test_a_failed_root_keeps_the_last():
    """A root whose Newton error reaches inverse_failure_threshold is dropped: with a
    threshold of 0 every refresh fails and the roots stay I, so from step 5 on the step is the
    graft's length along the raw gradient."""
    p = torch.zeros(5, 4, requires_grad=True)
    opt = DistributedShampoo([p], lr=0.1, inverse_failure_threshold=0.0, block_size=8)
    for t in range(8):
        p.grad = torch.randn(5, 4, generator=torch.Generator().manual_seed(t))
        opt.step()
    assert all(torch.equal(r, torch.eye(len(r))) for r in opt.state[p]["preconditioners"])


# --- stale roots, state, checkpoints, errors -------------------------------------------------------

def test_roots_are_stale_between_refreshes():
    """With T = 3 the roots change at steps 0, 3, 6, ... only, and the parameters part from
    a run with T = 1 once Shampoo's direction is taken (step 5) with a stale root."""
    kwargs = {**BASE, "graft_type": "adagrad", "preconditioning_compute_steps": 3}
    p = torch.tensor(_initial(np.float32)[1]).requires_grad_()
    opt = DistributedShampoo([p], lr=0.1, **kwargs)
    before = [r.clone() for r in opt.state.get(p, {}).get("preconditioners", [])]
    for t, grads in enumerate(_gradients(np.float32, 10)):
        p.grad = torch.tensor(grads[1])
        opt.step()
        roots = opt.state[p]["preconditioners"]
        changed = not before or any(not torch.equal(a, b) for a, b in zip(before, roots))
        assert changed == (t % 3 == 0), t
        before = [r.clone() for r in roots]
    every, _ = run_optedu({**kwargs, "preconditioning_compute_steps": 1}, steps=5)
    stale, _ = run_optedu(kwargs, steps=5)
    assert all(torch.equal(a, b) for a, b in zip(every, stale))       # graft only: the same
    every, _ = run_optedu({**kwargs, "preconditioning_compute_steps": 1}, steps=8)
    stale, _ = run_optedu(kwargs, steps=8)
    assert not torch.equal(every[1], stale[1])


def test_a_tensor_without_gradient_does_not_step():
    """Each tensor counts its own steps (the reference counts one step for the whole tree):
    a tensor with no gradient keeps its value and its state, and its refresh period and the
    start of Shampoo's direction run on its own count."""
    kwargs = {**BASE, "preconditioning_compute_steps": 2}
    a, b = (torch.tensor(x).requires_grad_() for x in _initial(np.float32)[1:3])
    alone = b.detach().clone().requires_grad_()
    opt, solo = DistributedShampoo([a, b], lr=0.1, **kwargs), DistributedShampoo(
        [alone], lr=0.1, **kwargs)
    for t, g in enumerate(_gradients(np.float32, 4)):
        a.grad = torch.tensor(g[1])
        b.grad = torch.tensor(g[2]) if t % 2 else None
        before = b.detach().clone()
        opt.step()
        assert t % 2 or torch.equal(b, before)
        if t % 2:
            alone.grad = torch.tensor(g[2])
            solo.step()
    assert int(opt.state[a]["step"]) == 4 and int(opt.state[b]["step"]) == 2
    assert torch.equal(b, alone)
    for x, y in zip(opt.state[b]["preconditioners"], solo.state[alone]["preconditioners"]):
        assert torch.equal(x, y)


def test_state_keys_are_documented():
    _, opt = run_optedu({**BASE, "graft_type": "rmsprop"}, steps=2)
    keys = {k for s in opt.state.values() for k in s}
    assert keys == {"step", "momentum", "diagonal_momentum", "diagonal_statistics",
                    "statistics", "preconditioners"}
    for key in keys:
        assert f"``{key}``" in DistributedShampoo.__doc__, key
    _, opt = run_optedu({**BASE, "graft_type": "sgd"}, steps=1)
    assert all("diagonal_statistics" not in s for s in opt.state.values())


def test_state_dict_round_trip():
    """7 steps, the state saved and loaded into a fresh optimizer, then 5 more steps on each:
    the same parameters and state, bit for bit (the refresh period crosses the load)."""
    kwargs = {**BASE, "graft_type": "adagrad", "preconditioning_compute_steps": 3}
    params, opt = run_optedu(kwargs, steps=7)
    twins = [p.detach().clone().requires_grad_() for p in params]
    moved = DistributedShampoo(twins, lr=0.1, **kwargs)
    moved.load_state_dict(copy.deepcopy(opt.state_dict()))
    for grads in _gradients(np.float32, 5, seed=9):
        for ps, o in ((params, opt), (twins, moved)):
            for p, g in zip(ps, grads):
                p.grad = torch.tensor(g)
            o.step()
    for p, q in zip(params, twins):
        assert torch.equal(p, q)
        for key, value in opt.state[p].items():
            other = moved.state[q][key]
            if isinstance(value, list):
                assert all(torch.equal(a, b) for a, b in zip(value, other)), key
            else:
                assert torch.equal(value, other), key


BAD = [
    (dict(lr=-0.1), "Invalid learning rate: -0.1"),
    (dict(block_size=0), "Invalid block_size value: 0"),
    (dict(beta1=1.5), "Invalid beta1 value: 1.5"),
    (dict(beta2=-0.1), "Invalid beta2 value: -0.1"),
    (dict(diagonal_epsilon=-1e-10), "Invalid diagonal_epsilon value: -1e-10"),
    (dict(matrix_epsilon=-1.0), "Invalid matrix_epsilon value: -1.0"),
    (dict(weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
    (dict(start_preconditioning_step=-1), "Invalid start_preconditioning_step value: -1"),
    (dict(preconditioning_compute_steps=0), "Invalid preconditioning_compute_steps value: 0"),
    (dict(statistics_compute_steps=1.5), "Invalid statistics_compute_steps value: 1.5"),
    (dict(graft_type="adam"), "Invalid graft_type value: adam"),
    (dict(exponent_override=-2), "Invalid exponent_override value: -2"),
    (dict(inverse_failure_threshold=float("nan")), "Invalid inverse_failure_threshold value"),
    (dict(skip_preconditioning_dim_size_gt=0), "Invalid skip_preconditioning_dim_size_gt"),
    (dict(skip_preconditioning_rank_lt=-1), "Invalid skip_preconditioning_rank_lt value: -1"),
    (dict(clip_by_scaled_gradient_norm=-1.0), "Invalid clip_by_scaled_gradient_norm value"),
    (dict(merge_small_dims_block_size=0), "Invalid merge_small_dims_block_size value: 0"),
    (dict(preconditioner_type="output"), "Invalid preconditioner_type value: output"),
    (dict(batch_axis_name="batch"), "unexpected keyword argument 'batch_axis_name'"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_arguments(kwargs, message):
    error = TypeError if "unexpected" in message else ValueError
    with pytest.raises(error, match=message.replace("(", r"\(")):
        DistributedShampoo([torch.zeros(2, requires_grad=True)], **kwargs)


def test_refuses_complex_and_sparse():
    p = torch.zeros(2, 2, dtype=torch.complex64, requires_grad=True)
    p.grad = torch.ones_like(p)
    with pytest.raises(RuntimeError, match="complex"):
        DistributedShampoo([p]).step()
    q = torch.zeros(3, requires_grad=True)
    q.grad = torch.ones(3).to_sparse()
    with pytest.raises(RuntimeError, match="sparse"):
        DistributedShampoo([q]).step()


if __name__ == "__main__":   # python tests/optim/test_distributed_shampoo.py: the measurements
    for name in CASES:
        kwargs = {**BASE, **CASES[name]}
        worst = differences(run_optedu(kwargs), run_reference(kwargs))
        print(f"{name:30s} {max(worst.values()):.2e} at {max(worst, key=worst.get)}",
              file=sys.stdout)
