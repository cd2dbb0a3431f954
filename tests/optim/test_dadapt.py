"""optedu's DAdaptSGD and DAdaptAdam against dadaptation 3.2, bit for bit: every combination of
the options that change the algorithm, float32 and float64, one and two groups, over 20 steps
(parameters, gradients, every state tensor and the group's d, k and sums); then the refused
second learning rate, a frozen group, checkpoints both ways, bad arguments, and the bound
d_k <= 2D on a convex problem."""

from __future__ import annotations

import copy
import itertools
import math

import pytest
import torch
from dadaptation import DAdaptAdam as RefAdam
from dadaptation import DAdaptSGD as RefSGD

from optedu.optim.dadapt_adam import DAdaptAdam
from optedu.optim.dadapt_sgd import DAdaptSGD
from optimizers import FULL
import reference_harness as harness

STEPS = 20
GROUP_KEYS = ("d", "k", "numerator_weighted", "g0_norm", "lr")


def _groups(params, second):
    if second is None:
        return params
    return [{"params": params[:2]}, {"params": params[2:], **second}]


def _run(cls, kwargs, *, dtype=torch.float64, second=None, steps=STEPS, start=0,
         params=None, opt=None):
    """Params and optimizer after `steps` steps (from step `start`)."""
    params = harness.params(dtype) if params is None else params
    opt = cls(_groups(params, second), **kwargs) if opt is None else opt
    for t in range(start, start + steps):
        opt.zero_grad()
        harness.loss(params, t).backward()
        opt.step()
    return params, opt


def _assert_same(a, ours, b, theirs) -> None:
    """Parameters, gradients (the decay lands in p.grad), state and group keys, bit for bit."""
    for p, q in zip(a, b):
        assert torch.equal(p, q)
        assert (p.grad is None) == (q.grad is None)
        assert p.grad is None or torch.equal(p.grad, q.grad)
    for p, q in zip(a, b):
        s, r = ours.state[p], theirs.state[q]
        assert list(s) == list(r)
        for key in s:
            if isinstance(s[key], torch.Tensor):
                assert s[key].dtype == r[key].dtype and torch.equal(s[key], r[key]), key
            else:
                assert type(s[key]) is type(r[key]) and s[key] == r[key], key
    for g, h in zip(ours.param_groups, theirs.param_groups):
        for key in GROUP_KEYS:
            assert (key in g) == (key in h), key
            if key in g:
                assert g[key] == h[key], key        # floats: == is bit-identity here


# momentum 0.3: the only one of these where 1 - (1 - m) != m (the reference steps with the former)
SGD_OPTIONS = dict(lr=[1.0, 0.5], momentum=[0.0, 0.3, 0.9], weight_decay=[0.0, 0.01],
                   d0=[1e-6, 1e-2], growth_rate=[float("inf"), 1.02])
ADAM_OPTIONS = dict(lr=[1.0, 0.5], betas=[(0.9, 0.999), (0.8, 0.99)], eps=[1e-8, 1e-3],
                    weight_decay=[0.0, 0.05], decouple=[False, True],
                    use_bias_correction=[False, True], d0=[1e-6, 1e-2],
                    growth_rate=[float("inf"), 1.02])
# the second group: the same lr, other per-group values (DAdaptSGD reads momentum and
# weight_decay from the first group only, DAdaptAdam its betas: the reference ignores them here)
SECOND = {DAdaptSGD: {"weight_decay": 0.05, "momentum": 0.5},
          DAdaptAdam: {"weight_decay": 0.02, "eps": 1e-6, "layer_scale": 0.3,
                       "betas": (0.5, 0.9)}}
RULES = {DAdaptSGD: (RefSGD, SGD_OPTIONS), DAdaptAdam: (RefAdam, ADAM_OPTIONS)}


def _cases():
    cases = []
    for cls, (_, options) in RULES.items():
        combos = [dict(zip(options, v)) for v in itertools.product(*options.values())]
        full = [(cls, c, dtype, two) for c in combos
                for dtype in (torch.float32, torch.float64) for two in (False, True)]
        # quick: every 13th of SGD's 192 (15), every 61st of Adam's 1024 (17); both strides
        # are prime to every factor: each value of each option, dtype and group count comes up
        cases += full if FULL else full[::13 if cls is DAdaptSGD else 61]
    return cases


@pytest.mark.parametrize(("cls", "options", "dtype", "two"), _cases(),
                         ids=lambda x: getattr(x, "__name__", str(x).replace("torch.", "")))
def test_bit_identical_to_dadaptation(cls, options, dtype, two):
    reference, _ = RULES[cls]
    second = SECOND[cls] if two else None
    a, ours = _run(cls, options, dtype=dtype, second=second)
    b, theirs = _run(reference, options, dtype=dtype, second=second)
    _assert_same(a, ours, b, theirs)
    assert not all(torch.equal(p, q) for p, q in zip(a, harness.params(dtype)))   # they moved
    assert ours.param_groups[0]["d"] > options["d0"]                        # d adapted


@pytest.mark.parametrize("cls", list(RULES))
def test_a_group_at_lr_zero_and_a_parameter_without_grad(cls):
    """lr=0 is the one second rate allowed: that group adds nothing to the sums (its decay
    still runs); a parameter whose grad is None keeps no state."""
    reference, _ = RULES[cls]
    runs = []
    for c in (cls, reference):
        params = harness.params(torch.float64)
        extra = torch.ones(2, dtype=torch.float64, requires_grad=True)   # never in the loss
        opt = c([{"params": params[:2] + [extra]},
                 {"params": params[2:], "lr": 0.0, "weight_decay": 0.1}],
                lr=1.0, weight_decay=0.1, d0=1e-2, **({"decouple": True} if c in
                                                      (DAdaptAdam, RefAdam) else {}))
        runs.append(_run(c, {}, params=params, opt=opt, steps=5) + (extra,))
    (a, ours, e), (b, theirs, f) = runs
    _assert_same(a, ours, b, theirs)
    assert e not in ours.state and torch.equal(e, f)


@pytest.mark.parametrize("cls", list(RULES))
def test_second_learning_rate_refused_as_the_reference(cls):
    """The same error at the same moment: the first group (the larger lr) has already
    accumulated into s when the second is refused, in both."""
    reference, _ = RULES[cls]
    runs = []
    for c in (cls, reference):
        params = harness.params(torch.float64)
        opt = c([{"params": params[:2]}, {"params": params[2:], "lr": 0.5}], lr=1.0,
                weight_decay=0.01)
        harness.loss(params, 0).backward()
        with pytest.raises(RuntimeError, match="different lr values") as error:
            opt.step()
        runs.append((params, opt, str(error.value)))
    (a, ours, said), (b, theirs, ref_said) = runs
    assert said == ref_said
    _assert_same(a, ours, b, theirs)


@pytest.mark.parametrize("cls", list(RULES))
@pytest.mark.parametrize("direction", ["from_reference", "to_reference"])
def test_checkpoint_moves_between_them(cls, direction):
    """10 steps in one, the state_dict into the other, 10 more: as 20 steps in the reference."""
    reference, options = RULES[cls]
    kwargs = {key: values[1] for key, values in options.items()}    # non-defaults
    first, then = (reference, cls) if direction == "from_reference" else (cls, reference)
    a, half = _run(first, kwargs, steps=10)
    params = [p.detach().clone().requires_grad_() for p in a]
    resumed = then(params, **kwargs)
    resumed.load_state_dict(copy.deepcopy(half.state_dict()))
    a, resumed = _run(then, {}, params=params, opt=resumed, steps=10, start=10)
    b, whole = _run(reference, kwargs)
    _assert_same(a, resumed, b, whole)


def _sgd_bad():
    return [(dict(lr=0.0), "Invalid learning rate: 0.0"), (dict(lr=-1), "Invalid learning rate"),
            (dict(d0=0.0), "Invalid d0 value: 0.0"), (dict(d0=float("nan")), "Invalid d0"),
            (dict(momentum=1.0), "Invalid momentum value: 1.0"),
            (dict(momentum=-0.1), "Invalid momentum value"),
            (dict(weight_decay=-1e-3), "Invalid weight_decay value: -0.001"),
            (dict(growth_rate=0.0), "Invalid growth_rate value: 0.0")]


def _adam_bad():
    return [(dict(lr=0.0), "Invalid learning rate: 0.0"), (dict(d0=-1.0), "Invalid d0 value"),
            (dict(eps=0.0), "Invalid epsilon value: 0.0"),
            (dict(betas=(1.0, 0.9)), "Invalid beta parameter at index 0: 1.0"),
            (dict(betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
            (dict(weight_decay=-1.0), "Invalid weight_decay value: -1.0"),
            (dict(growth_rate=-1.0), "Invalid growth_rate value: -1.0")]


@pytest.mark.parametrize(("cls", "kwargs", "message"),
                         [(DAdaptSGD, *case) for case in _sgd_bad()]
                         + [(DAdaptAdam, *case) for case in _adam_bad()])
def test_bad_arguments(cls, kwargs, message):
    with pytest.raises(ValueError, match=message) as ours:
        cls(harness.params(torch.float64), **kwargs)
    reference, _ = RULES[cls]
    if next(iter(kwargs)) in ("lr", "d0", "eps", "betas"):     # the reference checks these:
        with pytest.raises(ValueError) as theirs:               # its words, then optedu's
            reference(harness.params(torch.float64), **kwargs)        # "(expected ...)"
        assert str(ours.value).startswith(str(theirs.value))


def test_defaults_and_argument_order_match_the_reference():
    import inspect
    left_out = {"log_every", "fsdp_in_use"}
    for cls, (reference, _) in RULES.items():
        ours = inspect.signature(cls).parameters
        theirs = {k: v for k, v in inspect.signature(reference).parameters.items()
                  if k not in left_out}
        assert list(ours) == list(theirs)
        assert all(ours[k].default == theirs[k].default for k in ours)


def test_d_stays_below_twice_the_distance_on_a_convex_problem():
    """f(x) = |x - x*| (convex, 1-Lipschitz), momentum 0: x_k = x_0 - s_k, and convexity gives
    r_{k+1} = sum_i lam_i <g_i, s_i> <= <s_{k+1}, x_0 - x*> <= |s_{k+1}| D, so the code's
    d_hat = 2 r / |s| <= 2D. The factor 2 is real: with seed 3, d reaches 1.26 D, above the
    D that an estimate r / |s| would respect."""
    ratios = []
    for seed in range(4):
        x_star = torch.randn(10, generator=torch.Generator().manual_seed(seed),
                             dtype=torch.float64)
        distance = torch.linalg.norm(x_star).item()       # D = |x_0 - x*|, x_0 = 0
        x = torch.zeros(10, dtype=torch.float64, requires_grad=True)
        opt = DAdaptSGD([x])
        ds = []
        for _ in range(60):
            opt.zero_grad()
            torch.linalg.norm(x - x_star).backward()
            opt.step()
            ds.append(opt.param_groups[0]["d"])
            s = opt.state[x]["s"]        # r_{k+1} <= <s_{k+1}, x_0 - x*>, up to rounding
            assert opt.param_groups[0]["numerator_weighted"] <= \
                torch.dot(s, -x_star).item() * (1 + 1e-12) + 1e-300
        assert ds == sorted(ds)                               # d never shrinks
        assert max(ds) <= 2 * distance
        ratios.append(max(ds) / distance)
    assert min(ratios) > 0.5                                  # it grew from 1e-6 to order D
    assert max(ratios) > 1.0                                  # and passed D once (seed 3)


def test_edge_steps():
    """A first gradient of zero: ZeroDivisionError in both SGDs (lr d / |g_0|); no step in
    both Adams (|s|_1 = 0: k stays 0). Every group at lr=0 after a first step: the reference
    SGD raises UnboundLocalError, optedu's returns (a documented difference)."""
    for c in (DAdaptSGD, RefSGD):
        x = torch.zeros(3, dtype=torch.float64, requires_grad=True)
        x.grad = torch.zeros(3, dtype=torch.float64)
        with pytest.raises(ZeroDivisionError):
            c([x]).step()
    for c in (DAdaptAdam, RefAdam):
        x = torch.ones(3, dtype=torch.float64, requires_grad=True)
        x.grad = torch.zeros(3, dtype=torch.float64)
        opt = c([x])
        opt.step()
        assert opt.param_groups[0]["k"] == 0 and torch.equal(x, torch.ones(3).double())
    runs = []
    for c in (DAdaptSGD, RefSGD):
        params, opt = _run(c, dict(d0=1e-2), steps=3)
        opt.param_groups[0]["lr"] = 0.0
        runs.append((params, opt))
    before = [p.detach().clone() for p in runs[0][0]]
    runs[0][1].step()
    assert all(torch.equal(p, q) for p, q in zip(runs[0][0], before))
    with pytest.raises(UnboundLocalError):
        runs[1][1].step()


def test_adam_d_is_readable_and_grows():
    params, opt = _run(DAdaptAdam, dict(d0=1e-6), second=SECOND[DAdaptAdam])
    d = opt.param_groups[0]["d"]
    assert isinstance(d, float) and all(g["d"] == d for g in opt.param_groups)
    assert 1e-6 < d < math.inf
