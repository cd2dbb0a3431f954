"""optedu ADOPT against its authors' torch-adopt 0.1.0 (the signature's reference: bit for
bit over every option, float32 and float64, one and two groups, checkpoints both ways) and
against pytorch_optimizer.ADOPT 4.1.0 (bit for bit where an option selects its behaviour; the
decoupled decay of its first step measured); then the paper's claim on Reddi et al.'s online
counter-example."""

from __future__ import annotations

import itertools
import math
import re

import adopt as torch_adopt
import pytest
import torch
from pytorch_optimizer import ADOPT as PytorchOptimizerADOPT

import optedu
from optedu.optim.adopt import ADOPT, quarter_power
from optimizers import FULL
import reference_harness as harness

# torch-adopt 0.1.0 calls torch._utils.is_compiling, deprecated in torch 2.13
pytestmark = [pytest.mark.filterwarnings("ignore:.*is_compiling.*:UserWarning"),
              pytest.mark.filterwarnings("ignore:Use _accelerator_graph:DeprecationWarning")]

STEPS = 25


def _same_state(ours, theirs, keys=("step", "exp_avg", "exp_avg_sq")) -> None:
    for p, q in zip(ours.state, theirs.state):
        for key in keys:
            assert torch.equal(ours.state[p][key], theirs.state[q][key]), key


def _custom_clip(step: float) -> float:
    return 0.5 + 0.1 * step


CLIPS = {"t^0.25": {}, "none": {"clip_lambda": None}, "custom": {"clip_lambda": _custom_clip}}
OPTIONS = dict(weight_decay=[0.0, 0.1], decouple=[False, True], clip=list(CLIPS),
               maximize=[False, True])
SECOND = {"weight_decay": 0.3, "betas": (0.8, 0.99), "eps": 1e-3}


def _cases():
    return harness.cases(OPTIONS, every=11, full=FULL)


@pytest.mark.parametrize(("options", "dtype", "two"), _cases(),
                         ids=lambda x: str(x).replace("torch.", ""))
def test_bit_identical_to_torch_adopt(options, dtype, two):
    """25 steps, parameters and every state tensor identical bit for bit to torch-adopt's
    one-tensor path (the one it takes on CPU)."""
    kwargs = dict(options, lr=0.01, **CLIPS[options["clip"]])
    del kwargs["clip"]
    a, ours = harness.run(lambda g: ADOPT(g, **kwargs), dtype, two, SECOND)
    b, theirs = harness.run(lambda g: torch_adopt.ADOPT(g, foreach=False, **kwargs), dtype,
                            two, SECOND)
    assert harness.same(a, b)
    _same_state(ours, theirs)
    assert not harness.same(a, harness.params(dtype))


def test_torch_adopt_foreach_rounds_the_clip_to_float32():
    """torch-adopt's multi-tensor path calls clip_lambda with the float32 step tensor, so c_t
    is rounded to float32 even for float64 parameters: the same clip given to optedu gives its
    numbers bit for bit; the float64 clip does not (where the clip binds)."""
    as_float32 = lambda s: float(torch.tensor(s, dtype=torch.float32) ** 0.25)  # noqa: E731
    b, _ = harness.run(lambda g: torch_adopt.ADOPT(g, lr=0.01, foreach=True))
    a, _ = harness.run(lambda g: ADOPT(g, lr=0.01, clip_lambda=as_float32))
    assert harness.same(a, b)
    exact, _ = harness.run(lambda g: ADOPT(g, lr=0.01))
    assert 0 < harness.worst(exact, b) < 1e-8
    for dtype in (torch.float32,):   # float32 parameters: no difference
        a, _ = harness.run(lambda g: ADOPT(g, lr=0.01), dtype)
        b, _ = harness.run(lambda g: torch_adopt.ADOPT(g, lr=0.01, foreach=True), dtype)
        assert harness.same(a, b)


def _shifted_clip(step: float) -> float:
    """pytorch_optimizer's default clip, math.pow(step, 0.25), at its own count: one more
    than torch-adopt's."""
    return math.pow(step + 1, 0.25)


PO_OPTIONS = dict(weight_decay=[0.0, 0.1], clip=[True, False], maximize=[False, True],
                  foreach=[False, None])


def _po_cases():
    cases = [(dict(zip(PO_OPTIONS, v)), two, dtype)
             for v in itertools.product(*PO_OPTIONS.values())
             for two in (False, True) for dtype in (torch.float32, torch.float64)]
    return cases if FULL else cases[::9]   # quick: 8 of 64, each value of each factor


@pytest.mark.parametrize(("options", "two", "dtype"), _po_cases(),
                         ids=lambda x: str(x).replace("torch.", ""))
def test_bit_identical_to_pytorch_optimizer(options, two, dtype):
    """With L2 decay (or none), on both of its paths: bit for bit once optedu's clip_lambda
    is shifted by one step (its count starts at 1, torch-adopt's at 0)."""
    options = dict(options)
    clip, foreach = options.pop("clip"), options.pop("foreach")
    second = {"weight_decay": 0.3, "betas": (0.8, 0.99)}
    ours = dict(clip_lambda=_shifted_clip if clip else None)
    theirs = {} if clip else dict(clip_lambda=None)
    a, opt_a = harness.run(lambda g: ADOPT(g, lr=0.01, **options, **ours), dtype, two, second)
    b, opt_b = harness.run(lambda g: PytorchOptimizerADOPT(g, lr=0.01, foreach=foreach,
                                                           **options, **theirs),
                           dtype, two, second)
    assert harness.same(a, b)
    _same_state(opt_a, opt_b, keys=("exp_avg", "exp_avg_sq"))
    assert all(g["step"] == STEPS for g in opt_b.param_groups)


@pytest.mark.parametrize("fixed, dtype, bound", [   # quick tier: lr_scaled in float64
    pytest.param(fixed, dtype, bound, id=f"{decay}-{str(dtype)[6:]}",
                 marks=pytest.mark.full if fixed or dtype == torch.float32 else ())
    for fixed, decay in ((False, "lr_scaled"), (True, "fixed_decay"))
    for dtype, bound in ((torch.float64, 1e-15), (torch.float32, 1e-6))])
def test_pytorch_optimizer_decoupled_decay(fixed, dtype, bound):
    """Its weight_decouple=True also decays on the first step, where torch-adopt and optedu
    only record v_0: 25 steps apart by about eta*lambda*|theta| (>1e-4). Apply that one decay
    by hand after optedu's first step, and the rest differs only in the rounding of
    theta*(1 - eta lambda) against theta - eta lambda theta: measured <= 2.2e-16 in float64
    (one ulp of the entries near 1) and ~1e-7 in float32 (bounds 1e-15, 1e-6). fixed_decay
    (no eta) is optedu's weight_decay = lambda / eta."""
    lr, wd = 0.01, 0.1
    ours = dict(lr=lr, weight_decay=wd / lr if fixed else wd, decouple=True,
                clip_lambda=_shifted_clip)
    theirs = dict(lr=lr, weight_decay=wd, weight_decouple=True, fixed_decay=fixed,
                  foreach=False)
    b, _ = harness.run(lambda g: PytorchOptimizerADOPT(g, **theirs), dtype)
    plain, _ = harness.run(lambda g: ADOPT(g, **ours), dtype)
    assert harness.worst(plain, b) > 1e-4

    def first_decay(params):
        with torch.no_grad():
            for p in params:
                p.mul_(1 - wd * (1 if fixed else lr))

    a, _ = harness.run(lambda g: ADOPT(g, **ours), dtype, after_first=first_decay)
    assert harness.worst(a, b) <= bound


def test_a_parameter_that_joins_late():
    """torch-adopt (and optedu) count steps per tensor: a tensor whose first gradient comes at
    step 6 spends that step recording v_0. pytorch_optimizer counts per group: it divides that
    gradient by max(sqrt(0), eps) = eps and moves the tensor at once, by lr (1-beta1) c_t (the
    clip binds; without clipping the move would be ~ lr (1-beta1) |g| / eps)."""
    moved = {}
    for name, make in (("ours", lambda p: ADOPT(p, lr=0.01)),
                       ("torch_adopt", lambda p: torch_adopt.ADOPT(p, lr=0.01, foreach=False)),
                       ("reference", lambda p: PytorchOptimizerADOPT(p, lr=0.01,
                                                                     foreach=False))):
        early = torch.ones(3, dtype=torch.float64, requires_grad=True)
        late = torch.ones(3, dtype=torch.float64, requires_grad=True)
        opt = make([early, late])
        for t in range(6):
            early.grad = torch.full_like(early, 0.5)
            late.grad = torch.full_like(late, 0.5) if t == 5 else None
            opt.step()
        moved[name] = (late.detach() - 1).abs().max().item()
    assert moved["ours"] == moved["torch_adopt"] == 0.0
    assert moved["reference"] == pytest.approx(0.01 * 0.1 * 6**0.25, rel=1e-12)


def test_defaults_are_torch_adopt_s():
    ours = ADOPT(harness.params(torch.float64)).defaults
    theirs = torch_adopt.ADOPT(harness.params(torch.float64)).defaults
    assert ours == {k: v for k, v in theirs.items()
                    if k not in ("foreach", "capturable", "differentiable", "fused")}
    reference = torch_adopt.ADOPT(harness.params(torch.float64)).clip_lambda
    assert all(quarter_power(s) == reference(s) for s in (1.0, 2.0, 17.0, 1e6))


def test_first_step_records_v0_and_does_not_move():
    """Step 1 (even with decoupled decay): v_0 = g_0^2, m_0 = 0, theta unchanged; step 2 by
    hand (with clipping): m_1 = (1-beta1) clip(g_1 / max(|g_0|, eps), 1), theta -= lr m_1."""
    theta = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
    opt = ADOPT([theta], lr=0.1, betas=(0.5, 0.75), eps=1e-6, weight_decay=0.2,
                decouple=True)
    g0 = torch.tensor([0.5, -4.0, 0.0], dtype=torch.float64)
    theta.grad = g0.clone()
    opt.step()
    state = opt.state[theta]
    assert torch.equal(theta.detach(), torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64))
    assert torch.equal(state["exp_avg_sq"], g0**2) and not state["exp_avg"].any()
    theta.grad = torch.tensor([0.25, 8.0, 1e-7], dtype=torch.float64)
    opt.step()
    # decay 0.98 theta; normed g = [0.5, 2 -> clip 1, 0.1]; m = 0.5 * that
    expected = torch.tensor([0.98 - 0.025, -1.96 - 0.05, 0.49 - 0.005], dtype=torch.float64)
    torch.testing.assert_close(theta.detach(), expected, rtol=1e-15, atol=1e-16)
    torch.testing.assert_close(state["exp_avg_sq"], torch.tensor(
        [0.75 * 0.25 + 0.25 * 0.0625, 0.75 * 16 + 0.25 * 64, 0.25e-14],
        dtype=torch.float64), rtol=1e-15, atol=0)


@pytest.mark.parametrize("load_into", [ADOPT, torch_adopt.ADOPT],
                         ids=["optedu", "torch_adopt"])
@pytest.mark.parametrize("save_from", [ADOPT, torch_adopt.ADOPT],
                         ids=["optedu", "torch_adopt"])
def test_state_dict_round_trip(save_from, load_into):
    """A checkpoint after 10 steps resumes bit for bit, whichever class saved or loads it."""
    kwargs = dict(lr=0.01, weight_decay=0.1, decouple=True)
    harness.resume(lambda g: save_from(g, **kwargs),
                   lambda g: load_into(g, **kwargs), SECOND)


def test_complex_parameters_as_torch_adopt():
    runs = []
    for cls in (ADOPT, torch_adopt.ADOPT):
        z = torch.tensor([1 + 2j, -0.5 + 0.1j], dtype=torch.complex128, requires_grad=True)
        opt = cls([z], lr=0.05, weight_decay=0.1)
        for t in range(6):
            opt.zero_grad()
            (z.abs() ** 2 * (1 + t)).sum().backward()
            opt.step()
        runs.append(z.detach())
    assert torch.equal(*runs)


def test_grad_none_skipped_and_sparse_refused():
    params = harness.params(torch.float64)
    unused = torch.ones(3, dtype=torch.float64, requires_grad=True)
    harness.train(params, ADOPT([*params, unused], lr=0.01), steps=3)
    assert torch.equal(unused, torch.ones(3, dtype=torch.float64))
    emb = torch.zeros(4, 2, dtype=torch.float64, requires_grad=True)
    emb.grad = torch.zeros(4, 2, dtype=torch.float64).to_sparse()
    with pytest.raises(RuntimeError, match="ADOPT does not support sparse gradients"):
        ADOPT([emb]).step()


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=-0.1), "Invalid learning rate: -0.1"),
    (dict(eps=-1e-6), "Invalid epsilon value: -1e-06"),
    (dict(betas=(1.0, 0.99)), "Invalid beta parameter at index 0: 1.0"),
    (dict(betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
    (dict(weight_decay=-0.01), "Invalid weight_decay value: -0.01"),
])
def test_bad_arguments_as_torch_adopt(kwargs, message):
    """The same ValueError and message as torch-adopt's."""
    for cls in (ADOPT, torch_adopt.ADOPT):
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            cls(harness.params(torch.float64), **kwargs)


def _online(make, steps: int = 3000, big: float = 3.0) -> list[float]:
    """Reddi et al. (2018), section 3: f_t(x) = C x if t mod 3 = 1 else -x on [-1, 1]
    (optimum x = -1), lr 0.1/sqrt(t), projected after each step; the x visited."""
    x = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = make([x])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: (t + 1) ** -0.5)
    visited = []
    for t in range(1, steps + 1):
        x.grad = torch.full_like(x, big if t % 3 == 1 else -1.0)
        opt.step()
        sched.step()
        with torch.no_grad():
            x.clamp_(-1.0, 1.0)
        visited.append(x.item())
    return visited


@pytest.mark.full  # about 1 s
def test_adopt_converges_where_adam_does_not():
    """Taniguchi et al.'s claim on Reddi et al.'s counter-example (C = 3, beta1 = 0,
    beta2 = 1/(1+C^2) = 0.1): Adam drifts to x = +1, the worst point, and stays; ADOPT with
    the same betas reaches the optimum -1. Adam needs a larger beta2 (0.5: stuck near -0.18;
    0.9: converges), ADOPT converges at each."""
    tail = lambda xs: sum(xs[-300:]) / 300  # noqa: E731  the last 100 periods
    adam = _online(lambda p: optedu.Adam(p, lr=0.1, betas=(0.0, 0.1), eps=1e-8))
    assert tail(adam) > 0.99
    assert abs(tail(_online(lambda p: optedu.Adam(p, lr=0.1, betas=(0.0, 0.5))))) < 0.3
    for beta2 in (0.1, 0.5, 0.9):
        assert tail(_online(lambda p: ADOPT(p, lr=0.1, betas=(0.0, beta2)))) < -0.99
