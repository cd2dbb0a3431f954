"""optedu.LBFGS against torch.optim.LBFGS 2.13: every option, driven by a closure, bit for bit.

L-BFGS does not fit the one-row table of ``tests/optimizers.py``: it takes one parameter group
and a closure that it calls many times per step. Its seven options at two values each run as a
half fraction (64 settings; every combination of any six options), as Muon's grid does. Each
setting runs three ``step(closure)``
calls on two problems (Rosenbrock's valley in one tensor; an L2-regularised softmax regression
in a weight matrix and a bias, beside a tensor whose grad stays None), in float64 and float32.
After every step the returned loss, the parameters, the number of closure calls and every
state entry (directions, curvature pairs, ``al``, ``H_diag``, ``t``, counters) must be equal.
"""

from __future__ import annotations

import copy
import inspect
import itertools

import pytest
import torch
from optimizers import FULL, _pairwise_cover

import optedu
from optedu.optim.lbfgs import LBFGS, cubic_minimizer, strong_wolfe, two_loop

GRID = dict(lr=[1.0, 0.3], max_iter=[20, 4], max_eval=[None, 6], tolerance_grad=[1e-7, 1e-2],
            tolerance_change=[1e-9, 1e-3], history_size=[100, 2],
            line_search_fn=[None, "strong_wolfe"])


def _cases():
    """The half of the 2^7 combinations whose value indices sum to an even number (every
    combination of any six options runs), or a pairwise cover of them in the quick tier."""
    combos = [c for c in itertools.product(*(range(len(v)) for v in GRID.values()))
              if sum(c) % 2 == 0]
    if not FULL:
        combos = _pairwise_cover(combos)
    return [{k: GRID[k][i] for k, i in zip(GRID, c)} for c in combos]


def rosenbrock(dtype):
    x = torch.tensor([-1.5, 2.0], dtype=dtype, requires_grad=True)

    def loss(params):
        (p,) = params
        return (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2
    return [x], loss


def softmax_regression(dtype):
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(40, 5, generator=gen, dtype=dtype)
    y = torch.randint(0, 3, (40,), generator=gen)
    W = (0.1 * torch.randn(3, 5, generator=gen, dtype=dtype)).requires_grad_()
    b = torch.zeros(3, dtype=dtype, requires_grad=True)
    unused = torch.ones(4, dtype=dtype, requires_grad=True)  # its grad stays None

    def loss(params):
        W, b, _ = params
        logits = X @ W.T + b
        return torch.nn.functional.cross_entropy(logits, y) + 0.01 * (W**2).sum()
    return [W, b, unused], loss


PROBLEMS = {"rosenbrock": rosenbrock, "softmax": softmax_regression}


def _run(cls, problem, dtype, kwargs, steps=3):
    params, loss_fn = PROBLEMS[problem](dtype)
    optimizer = cls(params, **kwargs)
    calls = [0]

    def closure():
        calls[0] += 1
        optimizer.zero_grad()
        loss = loss_fn(params)
        loss.backward()
        return loss

    trace = []
    for _ in range(steps):
        returned = optimizer.step(closure)
        trace.append((float(returned.detach()), [p.detach().clone() for p in params], calls[0],
                      _snapshot(optimizer.state[params[0]])))
    return trace, optimizer


def _snapshot(value):
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {k: _snapshot(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_snapshot(v) for v in value]
    return value


def _equal(a, b) -> bool:
    """Exact equality of nested state: tensors bit for bit (dtype and shape too)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
                and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_equal, a, b))
    return type(a) is type(b) and a == b


def _assert_same(ours, theirs):
    for step, (o, t) in enumerate(zip(ours, theirs, strict=True)):
        assert o[0] == t[0], f"step {step}: returned loss"
        assert all(torch.equal(p, q) for p, q in zip(o[1], t[1])), f"step {step}: parameters"
        assert o[2] == t[2], f"step {step}: closure calls {o[2]} vs {t[2]}"
        assert o[3].keys() == t[3].keys(), f"step {step}: state keys"
        for key in t[3]:
            assert _equal(o[3][key], t[3][key]), f"step {step}: state {key!r}"


# float32 too under make test and CI; the quick tier's float64 runs take every branch already
DTYPES = {"f64": torch.float64, "f32": torch.float32} if FULL else {"f64": torch.float64}


@pytest.mark.parametrize("dtype", list(DTYPES.values()), ids=list(DTYPES))
@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize("kwargs", _cases(), ids=lambda k: "-".join(map(str, k.values())))
def test_every_option_combination_is_bit_identical(kwargs, problem, dtype):
    ours, _ = _run(LBFGS, problem, dtype, kwargs)
    theirs, _ = _run(torch.optim.LBFGS, problem, dtype, kwargs)
    _assert_same(ours, theirs)


# settings that end a step by each of torch's rules (found by running them), with the rule
STOPS = [
    ("rosenbrock", dict(max_iter=4), "max_iter"),
    ("rosenbrock", dict(max_iter=20, max_eval=6), "max_eval"),
    ("rosenbrock", dict(lr=0.05, line_search_fn="strong_wolfe", max_iter=100), "max_eval"),
    ("rosenbrock", dict(tolerance_grad=1e-3, max_iter=100), "tolerance_grad"),
    ("softmax", dict(tolerance_grad=1e-3, line_search_fn="strong_wolfe"), "tolerance_grad"),
    ("rosenbrock", dict(tolerance_change=1e-3, history_size=2, max_iter=100),
     "tolerance_change (step)"),
    ("rosenbrock", dict(tolerance_change=1e-3, max_iter=100), "tolerance_change (loss)"),
    ("rosenbrock", dict(max_iter=100), "no descent"),
]


@pytest.mark.parametrize("problem, kwargs, reason", STOPS, ids=[f"{s[2]}-{i}" for i, s in enumerate(STOPS)])
def test_each_stopping_rule_ends_a_step_as_in_torch(problem, kwargs, reason):
    ours, optimizer = _run(LBFGS, problem, torch.float64, kwargs, steps=1)
    theirs, _ = _run(torch.optim.LBFGS, problem, torch.float64, kwargs, steps=1)
    _assert_same(ours, theirs)
    assert optimizer.stop_reason == reason


def test_history_fills_up_and_drops_the_oldest_pair():
    ours, optimizer = _run(LBFGS, "rosenbrock", torch.float64, dict(history_size=3), steps=3)
    theirs, _ = _run(torch.optim.LBFGS, "rosenbrock", torch.float64, dict(history_size=3),
                     steps=3)
    _assert_same(ours, theirs)
    state = optimizer.state[optimizer.param_groups[0]["params"][0]]
    assert state["n_iter"] > 10 and len(state["old_dirs"]) == 3


def test_two_loop_is_the_bfgs_inverse_hessian_times_the_gradient():
    """The recursion equals -H g with H from the BFGS update applied pair by pair to γI
    (Nocedal & Wright, eq. 7.19), formed as a matrix here."""
    gen = torch.Generator().manual_seed(1)
    n, k = 6, 4
    A = torch.randn(n, n, generator=gen, dtype=torch.float64)
    A = A @ A.T + n * torch.eye(n, dtype=torch.float64)   # a positive definite Hessian
    steps = [torch.randn(n, generator=gen, dtype=torch.float64) for _ in range(k)]
    dirs = [A @ s for s in steps]                           # y = A s: positive curvature
    rhos = [1 / y.dot(s) for y, s in zip(dirs, steps)]
    gamma = steps[-1].dot(dirs[-1]) / dirs[-1].dot(dirs[-1])
    H = gamma * torch.eye(n, dtype=torch.float64)
    for s, y, rho in zip(steps, dirs, rhos):
        V = torch.eye(n, dtype=torch.float64) - rho * torch.outer(y, s)
        H = V.T @ H @ V + rho * torch.outer(s, s)
    g = torch.randn(n, generator=gen, dtype=torch.float64)
    d = two_loop(g, dirs, steps, rhos, gamma, [None] * k)
    torch.testing.assert_close(d, -H @ g, rtol=1e-12, atol=1e-12)
    # the secant condition H y = s holds for the newest pair
    torch.testing.assert_close(H @ dirs[-1], steps[-1], rtol=1e-10, atol=1e-12)


def test_cubic_minimizer_finds_a_cubics_minimum():
    def c(x):
        return (x - 0.3) ** 2 * (x + 2)  # local minimum at 0.3
    x1, x2 = torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)
    slope = torch.func.grad(c)
    found = cubic_minimizer(x1, c(x1), slope(x1), x2, c(x2), slope(x2))
    assert abs(float(found) - 0.3) < 1e-12
    # d1 = g1 + g2 - 3 (f1 - f2)/(x1 - x2) = 0, so d1² - g1 g2 = -1 < 0: the cubic has no
    # minimum, and the answer is the middle of the bounds
    minus_one = torch.tensor(-1.0, dtype=torch.float64)
    assert cubic_minimizer(0.0, 0.0, minus_one, 1.0, -2 / 3, minus_one, bounds=(1.0, 3.0)) == 2.0


def test_cubic_minimizer_takes_python_floats():
    # its annotations take floats for every argument; the same cubic as above, as floats
    def c(x):
        return (x - 0.3) ** 2 * (x + 2)

    def slope(x):
        return 2 * (x - 0.3) * (x + 2) + (x - 0.3) ** 2
    found = cubic_minimizer(0.0, c(0.0), slope(0.0), 1.0, c(1.0), slope(1.0))
    assert abs(float(found) - 0.3) < 1e-12


def test_strong_wolfe_returns_a_step_meeting_both_conditions():
    x0 = torch.tensor([-1.5, 2.0], dtype=torch.float64)

    def f_and_g(x):
        x = x.clone().requires_grad_()
        f = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
        (g,) = torch.autograd.grad(f, x)
        return float(f.detach()), g

    f0, g0 = f_and_g(x0)
    d = -g0
    gtd = g0.dot(d)
    f, g, t, evals = strong_wolfe(lambda t: f_and_g(x0 + t * d), 1.0, d, f0, g0, gtd)
    assert f <= f0 + 1e-4 * t * float(gtd)            # sufficient decrease
    assert abs(float(g.dot(d))) <= 0.9 * abs(float(gtd))  # curvature
    assert 1 <= evals <= 25


def _closure(optimizer, params, loss_fn):
    def closure():
        optimizer.zero_grad()
        loss = loss_fn(params)
        loss.backward()
        return loss
    return closure


def test_checkpoint_moves_between_torch_and_optedu():
    """A run saved by one class continues in the other exactly as in the one that saved it."""
    kwargs = dict(history_size=5, line_search_fn="strong_wolfe", max_iter=5)
    for first, second in [(torch.optim.LBFGS, LBFGS), (LBFGS, torch.optim.LBFGS)]:
        params, loss_fn = rosenbrock(torch.float64)
        optimizer = first(params, **kwargs)
        optimizer.step(_closure(optimizer, params, loss_fn))
        saved = optimizer.state_dict()
        start = [p.detach().clone() for p in params]
        ends = []
        for cls in (second, first):
            ps = [p.clone().requires_grad_() for p in start]
            resumed = cls(ps, **kwargs)
            resumed.load_state_dict(copy.deepcopy(saved))
            resumed.step(_closure(resumed, ps, loss_fn))
            ends.append(ps)
        assert all(torch.equal(p, q) for p, q in zip(*ends)), (first, second)
        assert not torch.equal(ends[0][0], start[0])  # the resumed step moved


def test_signature_and_defaults_are_torchs():
    ours = inspect.signature(LBFGS.__init__).parameters
    theirs = inspect.signature(torch.optim.LBFGS.__init__).parameters
    assert [(p.name, p.kind, p.default) for p in ours.values()] == \
        [(p.name, p.kind, p.default) for p in theirs.values()]
    assert optedu.LBFGS is LBFGS
    x = torch.zeros(2, requires_grad=True)
    assert LBFGS([x]).defaults == torch.optim.LBFGS([x]).defaults  # max_eval = 25


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=-1.0), "Invalid learning rate: -1.0"),
])
def test_bad_hyperparameters_as_torch(kwargs, message):
    x = torch.zeros(2, requires_grad=True)
    for cls in (LBFGS, torch.optim.LBFGS):
        with pytest.raises(ValueError) as raised:
            cls([x], **kwargs)
        assert str(raised.value) == message


@pytest.mark.parametrize("kwargs, message", [
    (dict(line_search_fn="armijo"),
     "Invalid line_search_fn value: armijo (expected None or 'strong_wolfe')"),
    (dict(history_size=0), "Invalid history_size value: 0 (expected an integer >= 1)"),
])
def test_optedu_refuses_at_construction_what_torch_fails_on_in_step(kwargs, message):
    x = torch.zeros(2, requires_grad=True)
    torch.optim.LBFGS([x], **kwargs)  # torch takes it here
    with pytest.raises(ValueError) as raised:
        LBFGS([x], **kwargs)
    assert str(raised.value) == message


def test_one_parameter_group_only():
    groups = [{"params": [torch.zeros(2, requires_grad=True)]},
              {"params": [torch.zeros(2, requires_grad=True)]}]
    for cls in (LBFGS, torch.optim.LBFGS):
        with pytest.raises(ValueError, match="doesn't support per-parameter options"):
            cls(groups)


def test_sparse_gradients_are_densified_as_torch_does():
    emb = {}
    for cls in (LBFGS, torch.optim.LBFGS):
        torch.manual_seed(0)
        e = torch.nn.Embedding(6, 2, sparse=True).double()
        opt = cls(e.parameters(), max_iter=3)
        idx = torch.tensor([1, 3, 3])

        def closure(e=e, opt=opt):
            opt.zero_grad()
            loss = (e(idx) ** 2).sum()
            loss.backward()
            return loss
        opt.step(closure)
        emb[cls] = e.weight.detach().clone()
    assert torch.equal(emb[LBFGS], emb[torch.optim.LBFGS])
