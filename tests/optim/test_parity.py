"""optedu's optimizers against torch.optim 2.13: every option combination, step for step, bit for bit.

One table (``tests/optimizers.py``) drives everything here: every combination of each
optimizer's options, in float64 and float32, then hypothesis draws hyperparameters from each
argument's valid range. Every run uses :func:`optedu.instruments.parity.compare`: 50 steps, tensors of three
shapes and gradient scales spread over five orders of magnitude, two parameter groups with
different hyperparameters, a step with all-zero gradients and a parameter whose grad stays None;
parameters *and* every state entry must agree. A matrices-only row (Muon) runs on three matrices
instead, tall, wide and square, without the grad-None vector (``Pair.compare``), and its grid of
2^7 combinations runs as a half fraction (``Pair.half_fraction``: every combination of any six
options).

``make test`` and CI run all of it (``OPTEDU_TESTS=full``: 40 hypothesis draws per optimizer,
every combination, each in float64 and float32). A plain ``pytest`` is the quick tier: the same
tests over a pairwise cover of each grid, its cases alternating between the two dtypes, and 5
draws, so it finishes in under a minute.

"Agree" means bit-identical: optedu performs torch's single-tensor operations in torch's order
(torch.optim takes its single-tensor path for CPU tensors unless ``foreach=True`` is passed), so
any difference, even in the last bit, is a reordering of operations and fails.
"""

from __future__ import annotations

import inspect

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from optimizers import FULL, IDS, PAIRS, TORCH_ONLY

from optedu.instruments.parity import compare

DTYPES = {"f64": torch.float64, "f32": torch.float32}
# every case in both dtypes (full tier); the quick tier alternates them over its pairwise cases
CASES = [
    pytest.param(pair, kwargs, DTYPES[name], id=f"{pair.name}-{i}-{name}")
    for pair in PAIRS
    for i, kwargs in enumerate(pair.cases())
    for name in (DTYPES if FULL else [list(DTYPES)[i % 2]])
]


@pytest.mark.parametrize("pair, kwargs, dtype", CASES)
def test_every_option_combination_is_bit_identical(pair, kwargs, dtype):
    result = pair.compare(kwargs, [{}, pair.second_group], steps=50, dtype=dtype)
    assert result.state_keys_match, "state keys differ from torch.optim's"
    assert result.worst == 0.0, result


def _torch_arguments(cls):
    """Name, kind and default of each argument of ``cls.__init__``, less torch's switches."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(cls.__init__).parameters.values()
            if p.name not in TORCH_ONLY]


@pytest.mark.parametrize("pair", PAIRS, ids=IDS)
def test_signature_is_torchs(pair):
    """Same argument names, order, keyword-only markers and defaults as torch.optim's class,
    less ``foreach``, ``fused``, ``capturable`` and ``differentiable``."""
    assert _torch_arguments(pair.ours) == _torch_arguments(pair.theirs)


@pytest.mark.parametrize("pair", PAIRS, ids=IDS)
def test_grid_covers_every_argument(pair):
    """The table is exhaustive: each argument of *torch's* constructor (less the switches optedu
    leaves out) takes at least two values in the grid, except ``lr``, which the second group and
    the mid-run change vary, and is drawn from its range by the property test."""
    expected = {name for name, _, _ in _torch_arguments(pair.theirs)} - {"self", "params"}
    assert set(pair.grid) == expected, f"{pair.name}: grid {set(pair.grid)} vs torch {expected}"
    assert set(pair.ranges) == expected, f"{pair.name}: ranges {set(pair.ranges)} vs {expected}"
    single = {name for name, values in pair.grid.items() if len(set(values)) < 2} - {"lr"}
    assert not single, f"{pair.name}: only one value of {single} is tested"


@pytest.mark.parametrize("pair", PAIRS, ids=IDS)
def test_quick_grid_covers_every_pair_of_values(pair):
    """The quick tier's cases hold every pair of values of any two options that the full grid
    holds, so a plain ``pytest`` still runs each option against each other one."""
    def pairs(cases):
        return {(a, repr(c[a]), b, repr(c[b])) for c in cases for a in c for b in c if a < b}

    full, quick = pair.cases(full=True), pair.cases(full=False)
    assert pairs(quick) == pairs(full)
    assert all(case in full for case in quick)
    assert len(quick) <= len(full)


@pytest.mark.parametrize("pair", PAIRS, ids=IDS)
def test_learning_rate_changed_mid_run(pair):
    """A scheduler-style change of ``lr`` between steps takes effect identically."""
    def halve(optimizer, t):
        if t % 10 == 0:
            for group in optimizer.param_groups:
                group["lr"] *= 0.5
    kwargs = list(pair.cases())[-1]
    result = pair.compare(kwargs, [{}, pair.second_group], after_step=halve)
    assert result.ok(0.0), result


def test_sgd_maximize_with_weight_decay_is_bit_identical():
    """The case a review reported as differing "in the last bits": torch's own test setting
    ``SGD(weight_decay=0.1, maximize=True)`` (``optim_inputs_func_sgd``, desc "maximize").

    torch 2.13's ``_single_tensor_sgd`` computes ``grad = -grad`` then
    ``grad.add(param, alpha=weight_decay)``, exactly optedu.sgd's order, and torch takes that path
    for CPU tensors (``_default_to_fused_or_foreach`` picks foreach only for CUDA-like devices).
    The foreach path (``_foreach_neg`` then ``_foreach_add_``) performs the same two roundings.
    Both are bit-identical to optedu here, at torch's default lr and at a large one.
    """
    for lr in (1e-3, 0.5):
        for dtype in (torch.float64, torch.float32):
            for foreach in (False, True):
                kwargs = dict(lr=lr, weight_decay=0.1, maximize=True)
                result = compare(pair_of("SGD").ours,
                                 lambda groups, **kw: torch.optim.SGD(groups, foreach=foreach, **kw),
                                 kwargs, dtype=dtype)
                assert result.ok(0.0), (lr, dtype, foreach, result)


def test_adam_bias_correction_root_is_torchs_power():
    """torch takes √(1 − β2^t) as ``bias_correction2**0.5``; ``math.sqrt`` differs in the last bit
    where 1 − β2^t = 1 − 2⁻⁵³ (0.9999999999999999 against 1.0), here at t = 16. Hypothesis found
    this case; optedu.adam now uses ``**0.5`` too."""
    for name in ("Adam", "AdamW"):
        pair = pair_of(name)
        kwargs = dict(lr=0.0625, betas=(0.0, 0.1015625), eps=1e-12)
        assert compare(pair.ours, pair.theirs, kwargs, [{}, {"lr": 0.0625}]).ok(0.0), name


def test_radam_runs_cross_the_rectification_threshold():
    """RAdam takes its momentum-only step while ρ_t ≤ 5 and the rectified step after: each beta2
    of the table's grid crosses within the 50 steps of a parity run, so both branches are
    compared bit for bit (ρ_1 = 1 for every beta2)."""
    def rho(t, beta2):
        rho_inf = 2 / (1 - beta2) - 1
        return rho_inf - 2 * t * beta2**t / (1 - beta2**t)
    for beta1, beta2 in pair_of("RAdam").grid["betas"]:
        first = next(t for t in range(1, 51) if rho(t, beta2) > 5)
        assert 1 < first <= 10, (beta2, first)


def pair_of(name):
    return next(pair for pair in PAIRS if pair.name == name)


# --- property-based: hyperparameters drawn from each argument's valid range -------------------

@pytest.mark.parametrize("pair", PAIRS, ids=IDS)
@given(data=st.data())
def test_random_hyperparameters_are_bit_identical(pair, data):
    kwargs = data.draw(st.fixed_dictionaries(dict(pair.ranges)), label="kwargs")
    assume(pair.accepts(kwargs))  # e.g. SGD's Nesterov needs momentum and no dampening
    second = {"lr": data.draw(pair.ranges["lr"], label="second group lr")}
    result = pair.compare(kwargs, [{}, second])
    assert result.ok(0.0), (kwargs, second, result)
