"""optedu.Prodigy against prodigyopt 1.1.2 (bit for bit: parameters, every state tensor and
the groups' d), its refusal of a second lr, checkpoints both ways, and d_t <= D on a convex
problem."""

from __future__ import annotations

import copy
import inspect
import itertools

import numpy as np
import prodigyopt
import pytest
import torch

import optedu
from optedu.optim.prodigy import Prodigy
from optimizers import FULL

STEPS = 20
GROUP_KEYS = ("d", "d_max", "d_numerator", "d_denom", "d_hat", "k")


def _params(dtype: torch.dtype, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    w1 = torch.randn(4, 5, generator=g, dtype=dtype)
    b1 = torch.zeros(5, dtype=dtype)             # starts at zero: p0 is a zero scalar
    w2 = torch.randn(5, 1, generator=g, dtype=dtype)
    return [p.requires_grad_() for p in (w1, b1, w2)]


def _loss(params: list[torch.Tensor]) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    w1, b1, w2 = params
    x = torch.randn(16, 4, generator=g, dtype=w1.dtype)
    y = torch.randn(16, 1, generator=g, dtype=w1.dtype)
    return ((torch.tanh(x @ w1 + b1) @ w2 - y) ** 2).mean()


def _run(cls, kwargs, *, dtype=torch.float64, two=False, second=None, steps=STEPS,
         params=None, opt=None):
    params = _params(dtype) if params is None else params
    if opt is None:
        groups = [{"params": params[:2]}, {"params": params[2:], **second}] if two else params
        opt = cls(groups, **kwargs)
    for _ in range(steps):
        opt.zero_grad()
        _loss(params).backward()
        opt.step()
    return params, opt


def _assert_same(ours, a, theirs, b):
    """Parameters, every state entry and the groups' d statistics identical."""
    for p, q in zip(ours, theirs):
        assert torch.equal(p, q)
        sa, sb = a.state[p], b.state[q]
        assert sa.keys() == sb.keys()
        for key in sa:
            if isinstance(sa[key], torch.Tensor):
                assert torch.equal(sa[key], sb[key]), key
                assert sa[key].dtype == sb[key].dtype and sa[key].shape == sb[key].shape
            else:
                assert sa[key] == sb[key], key
    for ga, gb in zip(a.param_groups, b.param_groups):
        for key in GROUP_KEYS:
            assert ga.get(key) == gb.get(key), key


# every option that changes the algorithm, two values each; with the dtype and the number of
# groups, 12 factors: 2^12 = 4096 combinations, too many to run whole (they were 27 % of the
# full tier)
OPTIONS = {
    "betas": [(0.9, 0.999), (0.0, 0.99)],         # beta1 = 0: no exp_avg, the step uses g
    "beta3": [None, 0.9],
    "weight_decay": [0.0, 0.1],
    "decouple": [True, False],
    "use_bias_correction": [False, True],
    "safeguard_warmup": [False, True],
    "d_coef": [1.0, 2.0],
    "growth_rate": [float("inf"), 1.02],
    "slice_p": [1, 3],
    "base": [dict(), dict(lr=0.5, d0=1e-3, eps=1e-6)],
}
DTYPES = (torch.float32, torch.float64)
GROUPS = (False, True)                            # one group, or two
# the second group: same lr, its own decay, eps, warm-up safeguard, slice and d0 (prodigyopt
# reads betas, beta3, decouple, bias correction, d_coef and growth_rate from the first group)
SECOND = {"weight_decay": 0.3, "eps": 1e-7, "safeguard_warmup": True, "slice_p": 2, "d0": 2e-6}
# a covering array of the 12 factors: every combination of the values of any STRENGTH of them
# runs in some case. The rule's branches each read one or two options (beta1 = 0, beta3 None,
# coupled or decoupled decay, bias correction, the warm-up safeguard, the growth cap, the
# slice), so a fault needs at most a few options set together to show: the full tier runs
# every 4-way combination (47 cases), the quick tier every pair (9), as tests/optimizers.py's
# pairwise cover does for the other grids.
STRENGTH = 4 if FULL else 2


def covering_array(levels: list[int], strength: int) -> list[tuple[int, ...]]:
    """Rows of the full grid of ``levels`` values per factor (indices), chosen greedily in grid
    order, until every combination of values of any ``strength`` factors is in one of them.
    Deterministic; numpy, as the grid has thousands of rows."""
    grid = np.array(list(itertools.product(*(range(n) for n in levels))))
    codes, offset = [], 0
    for factors in itertools.combinations(range(len(levels)), strength):
        radix = np.cumprod([1] + [levels[f] for f in factors[:-1]])
        codes.append(offset + grid[:, factors] @ radix)
        offset += int(np.prod([levels[f] for f in factors]))
    codes = np.stack(codes, axis=1)             # row x factor set -> which combination
    uncovered = np.ones(offset, dtype=bool)
    chosen = []
    while uncovered.any():
        best = int(uncovered[codes].sum(axis=1).argmax())
        chosen.append(best)
        uncovered[codes[best]] = False
    return [tuple(int(i) for i in grid[row]) for row in chosen]


FACTORS = [*OPTIONS.values(), DTYPES, GROUPS]
ROWS = covering_array([len(values) for values in FACTORS], STRENGTH)


def _cases():
    cases = []
    for row in ROWS:
        *combo, dtype, two = (values[i] for values, i in zip(FACTORS, row))
        cases.append((tuple(combo), dtype, two))
    return cases


def _kwargs(combo):
    kwargs = dict(zip(OPTIONS, combo))
    return {**kwargs.pop("base"), **kwargs}


@pytest.mark.parametrize(("combo", "dtype", "two"), _cases(),
                         ids=lambda x: str(x).replace("torch.", "").replace(" ", ""))
def test_bit_identical_to_prodigyopt(combo, dtype, two):
    kwargs = _kwargs(combo)
    ours, a = _run(Prodigy, kwargs, dtype=dtype, two=two, second=SECOND)
    theirs, b = _run(prodigyopt.Prodigy, kwargs, dtype=dtype, two=two, second=SECOND)
    _assert_same(ours, a, theirs, b)
    assert not torch.equal(ours[0], _params(dtype)[0])       # the parameters moved
    d, d0 = a.param_groups[0]["d"], a.param_groups[0]["d0"]
    assert d > d0 if d0 == 1e-6 else d >= d0                # d grew from a small d0
    assert all(p.dtype == dtype for p in ours)


def test_the_cases_cover_every_combination_of_any_strength_factors():
    """Checked without the greedy's bookkeeping: every combination of values of any STRENGTH
    of the 12 factors appears in some case; in the quick tier also every value of each."""
    for factors in itertools.combinations(range(len(FACTORS)), STRENGTH):
        seen = {tuple(row[f] for f in factors) for row in ROWS}
        assert len(seen) == np.prod([len(FACTORS[f]) for f in factors]), factors
    assert len(ROWS) == (47 if FULL else 9)


@pytest.mark.parametrize("beta1", [0.9, 0.0])
def test_group_with_lr_zero_as_prodigyopt(beta1):
    """lr 0 is the one other rate a group may have: its tensors add nothing to r and s,
    yet prodigyopt still steps them: by the decoupled decay at the largest rate, and with
    beta1 = 0 by d g/(0 + d eps), about 1/eps (NaN after a few steps); optedu too."""
    kwargs = dict(betas=(beta1, 0.999), weight_decay=0.1)
    second = {"lr": 0.0}
    ours, a = _run(Prodigy, kwargs, two=True, second=second, steps=3)
    theirs, b = _run(prodigyopt.Prodigy, kwargs, two=True, second=second, steps=3)
    _assert_same(ours, a, theirs, b)
    assert not torch.equal(ours[2], _params(torch.float64)[2])   # the lr-0 tensor moved
    assert a.state[ours[2]]["s"].count_nonzero() == 0             # but fed no statistics


def test_second_learning_rate_refused_as_prodigyopt():
    """Both accept the groups and refuse them at step(), with prodigyopt's RuntimeError;
    optedu before any parameter or state moves."""
    message = ("^Setting different lr values in different parameter groups is only "
               "supported for values of 0$")
    for cls in (Prodigy, prodigyopt.Prodigy):
        params = _params(torch.float64)
        opt = cls([{"params": params[:2]}, {"params": params[2:], "lr": 0.5}])
        _loss(params).backward()
        with pytest.raises(RuntimeError, match=message):
            opt.step()
        assert all(torch.equal(p, q) for p, q in zip(params, _params(torch.float64)))
        if cls is Prodigy:  # nothing moved: no state, no statistics
            assert not opt.state and opt.param_groups[0]["d_numerator"] == 0.0


def test_lr_changed_by_a_scheduler_matches():
    """One lr for all groups, driven by a torch scheduler (warm-up then decay)."""
    def run(cls):
        params = _params(torch.float64)
        opt = cls(params, safeguard_warmup=True)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: min(1.0, (t + 1) / 10))
        for _ in range(STEPS):
            opt.zero_grad()
            _loss(params).backward()
            opt.step()
            sched.step()
        return params, opt
    _assert_same(*run(Prodigy), *run(prodigyopt.Prodigy))


@pytest.mark.parametrize("kwargs, message", [
    (dict(d0=0.0), "Invalid d0 value: 0.0"),
    (dict(lr=0.0), "Invalid learning rate: 0.0"),
    (dict(lr=float("nan")), "Invalid learning rate: nan"),
    (dict(eps=-1e-8), "Invalid epsilon value: -1e-08"),
    (dict(betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
    (dict(betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
    (dict(weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
    (dict(beta3=1.5), "Invalid beta3 value: 1.5 (expected a number in [0, 1])"),
    (dict(d_coef=0.0), "Invalid d_coef value: 0.0 (expected a number > 0)"),
    (dict(growth_rate=0.5), "Invalid growth_rate value: 0.5 (expected a number >= 1)"),
    (dict(slice_p=0), "Invalid slice_p value: 0 (expected an integer >= 1)"),
    (dict(slice_p=2.0), "Invalid slice_p value: 2.0 (expected an integer >= 1)"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError) as error:
        Prodigy(_params(torch.float64), **kwargs)
    assert str(error.value) == message


def test_reference_checks_raise_the_same_words():
    """prodigyopt's own checks: optedu raises ValueError with the same message."""
    for kwargs in (dict(d0=-1.0), dict(lr=-1.0), dict(eps=0.0), dict(betas=(0.9, 1.0))):
        with pytest.raises(ValueError) as theirs:
            prodigyopt.Prodigy(_params(torch.float64), **kwargs)
        with pytest.raises(ValueError) as ours:
            Prodigy(_params(torch.float64), **kwargs)
        assert str(ours.value) == str(theirs.value)


def test_defaults_and_group_keys_match_prodigyopt():
    ours = Prodigy(_params(torch.float64)).defaults
    theirs = prodigyopt.Prodigy(_params(torch.float64)).defaults
    assert ours == theirs          # fsdp_in_use stays a key (False), only not an argument
    names = list(inspect.signature(prodigyopt.Prodigy).parameters)
    names.remove("fsdp_in_use")
    assert list(inspect.signature(Prodigy).parameters) == names
    for name in names[1:]:
        assert (inspect.signature(Prodigy).parameters[name].default
                == inspect.signature(prodigyopt.Prodigy).parameters[name].default)


@pytest.mark.parametrize("source, target", [(prodigyopt.Prodigy, Prodigy),
                                            (Prodigy, prodigyopt.Prodigy)],
                         ids=["prodigyopt->optedu", "optedu->prodigyopt"])
def test_checkpoint_moves_both_ways(source, target):
    kwargs = dict(weight_decay=0.1, slice_p=3, use_bias_correction=True)
    params, first = _run(source, kwargs, steps=10)
    checkpoint = copy.deepcopy(first.state_dict())
    moved = [p.detach().clone().requires_grad_() for p in params]
    loaded = target(moved, **kwargs)
    loaded.load_state_dict(checkpoint)
    ours, a = _run(None, {}, params=moved, opt=loaded, steps=15)
    theirs, b = _run(None, {}, params=params, opt=first, steps=15)
    _assert_same(ours, a, theirs, b)


def test_no_gradient_no_step_and_grad_untouched():
    """Before any gradient d_denom is 0: prodigyopt returns without a step; so does optedu.
    optedu's coupled decay leaves p.grad as it was (prodigyopt adds lambda x into it)."""
    params = _params(torch.float64)
    opt = Prodigy(params, weight_decay=0.1, decouple=False)
    opt.step()
    assert opt.param_groups[0]["k"] == 0 and not opt.state
    _loss(params).backward()
    grads = [p.grad.clone() for p in params]
    opt.step()
    assert all(torch.equal(p.grad, g) for p, g in zip(params, grads))
    assert opt.param_groups[0]["k"] == 1


def test_complex_and_sparse_refused():
    z = torch.zeros(3, dtype=torch.complex128, requires_grad=True)
    z.grad = torch.ones_like(z)
    with pytest.raises(RuntimeError, match="does not support complex"):
        Prodigy([z]).step()
    emb = torch.zeros(4, 2, dtype=torch.float64, requires_grad=True)
    emb.grad = torch.zeros(4, 2, dtype=torch.float64).to_sparse()
    with pytest.raises(RuntimeError, match="does not support sparse"):
        Prodigy([emb]).step()


def _least_squares(g):
    A = torch.randn(40, 8, generator=g, dtype=torch.float64)
    b = torch.randn(40, generator=g, dtype=torch.float64)
    x_star = torch.linalg.lstsq(A, b.unsqueeze(1)).solution.squeeze(1)
    return lambda x: 0.5 * ((A @ x - b) ** 2).mean(), x_star, 8


def _separable(g):
    """Every coordinate starts at distance 1: <s, x0 - x*> = ||s||_1 D while the signs
    hold, so the bound is nearly reached (d ends at 0.42 D)."""
    scales = torch.tensor([1.0, 3.0, 0.3, 10.0, 0.1], dtype=torch.float64)
    x_star = torch.randn(5, generator=g, dtype=torch.float64)
    return lambda x: 0.5 * (scales * (x - x_star) ** 2).sum(), x_star, 5


@pytest.mark.parametrize("problem", [_least_squares, _separable])
def test_d_never_exceeds_the_distance_on_a_convex_problem(problem):
    """On a convex f, <g_i, x_i - x*> >= 0, so r <= <s, x0 - x*> <= ||s||_1 D with
    D = ||x0 - x*||_inf: d_t <= max(d0, D) at every step. d_t also grows to a fair
    fraction of D (0.12 D on least squares, where it stops once the iterates converge)."""
    g = torch.Generator().manual_seed(3)
    f, x_star, n = problem(g)
    signs = torch.tensor([1.0, -1.0], dtype=torch.float64).repeat(n)[:n]
    x = (x_star + signs if problem is _separable
         else torch.randn(n, generator=g, dtype=torch.float64)).requires_grad_()
    D = (x.detach() - x_star).abs().max().item()
    opt = Prodigy([x])
    ds = []
    for _ in range(150):
        opt.zero_grad()
        f(x).backward()
        opt.step()
        ds.append(opt.param_groups[0]["d"])
    assert max(ds) <= D
    assert ds[-1] > 0.1 * D and ds == sorted(ds)   # it grows, never shrinks
    assert (x.detach() - x_star).abs().max() < 1e-2 * D  # and it solved the problem


def test_exported_if_registered():
    """The lead registers the class; until then the module is the source."""
    assert getattr(optedu, "Prodigy", Prodigy) is Prodigy
