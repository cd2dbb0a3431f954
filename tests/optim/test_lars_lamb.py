"""optedu.LARS and optedu.Lamb against optax.lars and optax.lamb (jax on
CPU, float64), step for step."""

from __future__ import annotations

import copy
import itertools
import os

import numpy as np
import pytest
import torch

os.environ.setdefault("JAX_PLATFORMS", "cpu")
import jax  # noqa: E402  (imported once per module: it is slow)
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

import optedu  # noqa: E402

jax.config.update("jax_enable_x64", True)

F64 = torch.float64
STEPS = 50
RTOL = 1e-10
LABELS = ["a", "a", "b"]  # two groups: (w1, b1) and (w2,)


def _params0() -> list[np.ndarray]:
    """w1, b1 (zero: its first trust ratio takes the zero-norm branch), w2."""
    g = torch.Generator().manual_seed(0)
    w1 = torch.randn(4, 5, generator=g, dtype=F64)
    w2 = torch.randn(5, 1, generator=g, dtype=F64)
    return [w1.numpy(), np.zeros(5), w2.numpy()]


_G = torch.Generator().manual_seed(1)
_X = torch.randn(16, 4, generator=_G, dtype=F64)
_Y = torch.randn(16, 1, generator=_G, dtype=F64)


def _loss(params) -> torch.Tensor:
    w1, b1, w2 = params
    return ((torch.tanh(_X @ w1 + b1) @ w2 - _Y) ** 2).mean()


def _torch_params() -> list[torch.Tensor]:
    return [torch.tensor(p, dtype=F64, requires_grad=True)
            for p in _params0()]


def _run_optedu(make, groups, steps=STEPS, scheduler=None):
    params = _torch_params()
    opt = make(groups(params))
    sched = scheduler(opt) if scheduler else None
    for _ in range(steps):
        opt.zero_grad()
        _loss(params).backward()
        opt.step()
        if sched:
            sched.step()
    return [p.detach().numpy() for p in params], opt


def _torch_grads(params) -> list[np.ndarray]:
    ps = [torch.tensor(np.asarray(p), requires_grad=True) for p in params]
    _loss(ps).backward()
    return [p.grad.numpy() for p in ps]


def _run_optax(tx, steps=STEPS):
    """A plain optax transformation, its update jitted; torch's gradients."""
    params = [jnp.asarray(p) for p in _params0()]
    state, update = tx.init(params), jax.jit(tx.update)
    for _ in range(steps):
        grads = [jnp.asarray(g) for g in _torch_grads(params)]
        updates, state = update(grads, state, params)
        params = optax.apply_updates(params, updates)
    return [np.asarray(p) for p in params]


_COMPILED: dict = {}


def _injected(kind: str, nesterov: bool):
    """optax.lars or optax.lamb with its hyperparameters in the state
    (``inject_hyperparams``), so one jit compilation serves every value."""
    if (kind, nesterov) not in _COMPILED:
        if kind == "lars":
            tx = optax.inject_hyperparams(optax.lars, static_args="nesterov")(
                learning_rate=1.0, nesterov=nesterov)
        else:
            tx = optax.inject_hyperparams(optax.lamb)(learning_rate=1.0)
        _COMPILED[kind, nesterov] = tx, jax.jit(tx.update)
    return _COMPILED[kind, nesterov]


def _run_optax_groups(groups, steps=STEPS):
    """``groups``: (indices of the tensors, "lars" or "lamb", optax
    hyperparameters) per group, each its own optax instance on its tensors
    (what optax.multi_transform does)."""
    params = [jnp.asarray(p) for p in _params0()]
    runs = []
    for index, kind, hyper in groups:
        hyper = dict(hyper)
        tx, update = _injected(kind, hyper.pop("nesterov", False))
        state = tx.init([params[i] for i in index])
        state.hyperparams.update(
            {k: jnp.asarray(v, dtype=jnp.float64) for k, v in hyper.items()})
        runs.append([index, update, state])
    for _ in range(steps):
        grads = [jnp.asarray(g) for g in _torch_grads(params)]
        for run in runs:
            index, update, state = run
            sub = [params[i] for i in index]
            updates, run[2] = update([grads[i] for i in index], state, sub)
            for i, new in zip(index, optax.apply_updates(sub, updates)):
                params[i] = new
    return [np.asarray(p) for p in params]


def _worst(ours, theirs) -> float:
    """Largest relative difference over all entries."""
    return max(float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))
               for a, b in zip(ours, theirs))


def _assert_close(ours, theirs):
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=0)
    assert not np.array_equal(ours[0], _params0()[0])


def _one(params):
    return params


def _two(second):
    return lambda p: [{"params": p[:2]}, {"params": p[2:], **second}]


def _masked(p):  # b1 without decay: optax's mask False on it
    return [{"params": [p[0], p[2]]}, {"params": [p[1]], "weight_decay": 0.0}]


# ---------------------------------------------------------------- LARS

# a non-default base, then each option changed alone, then all at once
LARS_BASE = dict(momentum=0.9, weight_decay=0.01, trust_coefficient=0.05,
                 eps=0.0, nesterov=False)
LARS_CASES = [LARS_BASE] + [
    {**LARS_BASE, key: value} for key, value in
    [("momentum", 0.0), ("weight_decay", 0.0), ("trust_coefficient", 0.001),
     ("eps", 0.3), ("nesterov", True)]] + [
    dict(momentum=0.5, weight_decay=0.0, trust_coefficient=0.001, eps=0.3,
         nesterov=True)]
LARS_SECOND = dict(lr=0.3, momentum=0.5, weight_decay=0.05,
                   trust_coefficient=0.02, eps=0.1, nesterov=True)


def _lars_hyper(lr, kw):
    """optedu.LARS's arguments as optax.lars's: one to one."""
    return dict(learning_rate=lr, **kw)


def _cases(cases):
    """Every case with one group and with two."""
    return [pytest.param(kw, two, id=f"{kw}-{'2groups' if two else '1group'}")
            for kw in cases for two in (False, True)]


# Each optax run compiles its update with XLA (half a second to a second): the comparisons
# with optax are the full tier's, as the tests that compile torch's kernels are; the quick
# tier keeps the checks by hand, the state and the refusals.
JITTED = pytest.mark.full


@JITTED
@pytest.mark.parametrize("kwargs, two", _cases(LARS_CASES))
def test_lars_matches_optax(kwargs, two):
    """Each option, one group or two (the second differs in every
    argument): 50 steps within rtol 1e-10."""
    lr, second = 0.5, dict(LARS_SECOND)
    ours, _ = _run_optedu(lambda p: optedu.LARS(p, lr, **kwargs),
                          _two(LARS_SECOND) if two else _one)
    if two:
        lr2 = second.pop("lr")
        groups = [([0, 1], "lars", _lars_hyper(lr, kwargs)),
                  ([2], "lars", _lars_hyper(lr2, second))]
    else:
        groups = [([0, 1, 2], "lars", _lars_hyper(lr, kwargs))]
    _assert_close(ours, _run_optax_groups(groups))


@JITTED
def test_lars_weight_decay_mask_is_a_group_without_decay():
    kw = dict(momentum=0.9, weight_decay=0.05, trust_coefficient=0.02)
    ours, _ = _run_optedu(lambda p: optedu.LARS(p, 0.5, **kw), _masked)
    theirs = _run_optax(optax.lars(0.5, **kw,
                                   weight_decay_mask=[True, False, True]))
    _assert_close(ours, theirs)


@JITTED
def test_lars_trust_ratio_mask_is_sgd():
    """optax's ``trust_ratio_mask=False`` has no LARS argument: those tensors
    take SGD with momentum (lr inside the buffer), which optedu.SGD matches
    up to rounding for a constant lr."""
    kw = dict(momentum=0.9, weight_decay=0.01, nesterov=True)
    ours, _ = _run_optedu(lambda p: optedu.SGD(p, 0.05, **kw), _one)
    theirs = _run_optax(optax.lars(0.05, **kw, trust_coefficient=0.02,
                                   trust_ratio_mask=False))
    _assert_close(ours, theirs)


def test_lars_trust_ratio_by_hand_and_the_papers_form():
    """One step from theta = (3, 4), g = (0, 1), lambda = 0.5, c = 0.1,
    eta = 1, mu = 0: u = (1.5, 3), ||u|| = 3.3541..., ratio
    0.1 * 5 / ||u||. The paper's ratio 0.1 * 5 / (||g|| + 0.5 ||theta||)
    = 0.5 / 3.5 is smaller (triangle inequality)."""
    theta = torch.tensor([3.0, 4.0], dtype=F64, requires_grad=True)
    theta.grad = torch.tensor([0.0, 1.0], dtype=F64)
    opt = optedu.LARS([theta], 1.0, momentum=0.0, weight_decay=0.5,
                      trust_coefficient=0.1)
    opt.step()
    ratio = 0.5 / 45**0.5 * 2  # ||u|| = sqrt(1.5² + 3²) = sqrt(45)/2
    expected = torch.tensor([3 - 1.5 * ratio, 4 - 3 * ratio], dtype=F64)
    torch.testing.assert_close(theta.detach(), expected, rtol=1e-15, atol=0)
    paper = 0.5 / 3.5
    assert paper < ratio and abs(ratio / paper - 3.5 / 45**0.5 * 2) < 1e-15


# ---------------------------------------------------------------- LAMB

LAMB_CASES = [dict(betas=b, eps=eps, weight_decay=wd)
              for b, eps, wd in itertools.product(
                  [(0.9, 0.999), (0.5, 0.8)], [1e-6, 0.1], [0.0, 0.01])]
LAMB_SECOND = dict(lr=0.003, betas=(0.8, 0.99), eps=1e-3, weight_decay=0.1)


def _lamb_hyper(lr, kw):
    """optedu.Lamb's arguments as optax.lamb's: betas -> b1, b2."""
    b1, b2 = kw["betas"]
    return dict(learning_rate=lr, b1=b1, b2=b2, eps=kw["eps"],
                weight_decay=kw["weight_decay"])


@JITTED
@pytest.mark.parametrize("kwargs, two", _cases(LAMB_CASES))
def test_lamb_matches_optax(kwargs, two):
    lr, second = 0.01, dict(LAMB_SECOND)
    ours, _ = _run_optedu(lambda p: optedu.Lamb(p, lr, **kwargs),
                          _two(LAMB_SECOND) if two else _one)
    if two:
        lr2 = second.pop("lr")
        groups = [([0, 1], "lamb", _lamb_hyper(lr, kwargs)),
                  ([2], "lamb", _lamb_hyper(lr2, second))]
    else:
        groups = [([0, 1, 2], "lamb", _lamb_hyper(lr, kwargs))]
    _assert_close(ours, _run_optax_groups(groups))


@JITTED
def test_lamb_mask_is_a_group_without_decay():
    ours, _ = _run_optedu(lambda p: optedu.Lamb(p, 0.01, weight_decay=0.1),
                          _masked)
    theirs = _run_optax(optax.lamb(0.01, weight_decay=0.1,
                                   mask=[True, False, True]))
    _assert_close(ours, theirs)


def test_lamb_moves_each_tensor_by_lr_times_its_norm():
    theta = torch.tensor([3.0, 4.0], dtype=F64, requires_grad=True)
    theta.grad = torch.tensor([1e-3, -7.0], dtype=F64)
    optedu.Lamb([theta], 0.1).step()
    step = (theta.detach() - torch.tensor([3.0, 4.0], dtype=F64)).norm()
    assert abs(step.item() - 0.5) < 1e-15


# ------------------------------------------------- both: API conventions

OPTIMIZERS = {
    "LARS": (lambda p, **k: optedu.LARS(p, **{"lr": 0.5, **k}),
             lambda lr: optax.lars(lr, trust_coefficient=0.02)),
    "Lamb": (lambda p, **k: optedu.Lamb(p, **{"lr": 0.01, **k}),
             lambda lr: optax.lamb(lr)),
}


@JITTED
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_torch_step_lr_matches_optax_schedule(name):
    """torch's StepLR drives optedu through param_groups['lr']; optax takes
    the same schedule as a function of its step count. (Not
    optax.exponential_decay: on optax's int32 count it returns float32 even
    with x64, 0.01 -> 0.01 * (1 + 2.2e-8).)"""
    make, tx = OPTIMIZERS[name]
    kw = {"trust_coefficient": 0.02} if name == "LARS" else {}
    ours, opt = _run_optedu(
        lambda p: make(p, **kw), _one,
        scheduler=lambda o: torch.optim.lr_scheduler.StepLR(o, 7, 0.5))
    lr = opt.defaults["lr"]
    assert opt.param_groups[0]["lr"] == lr * 0.5**7
    def schedule(count):
        return lr * jnp.float64(0.5) ** (count // 7)

    assert optax.exponential_decay(lr, 7, 0.5, staircase=True)(
        jnp.int32(0)).dtype == jnp.float32
    _assert_close(ours, _run_optax(tx(schedule)))


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_state_dict_round_trip(name):
    make, _ = OPTIMIZERS[name]
    groups = _two({"lr": 0.003, "weight_decay": 0.1})
    params = _torch_params()
    opt = make(groups(params))
    twin = _torch_params()
    for step in range(20):
        if step == 10:
            with torch.no_grad():
                for p, q in zip(params, twin):
                    q.copy_(p)
            twin_opt = make(groups(twin))
            twin_opt.load_state_dict(copy.deepcopy(opt.state_dict()))
        for ps, o in [(params, opt)] + ([(twin, twin_opt)] if step >= 10
                                        else []):
            o.zero_grad()
            _loss(ps).backward()
            o.step()
    assert all(torch.equal(p, q) for p, q in zip(params, twin))


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_grad_none_skipped_and_sparse_refused(name):
    make, _ = OPTIMIZERS[name]
    used = torch.ones(3, dtype=F64, requires_grad=True)
    unused = torch.ones(3, dtype=F64, requires_grad=True)
    opt = make([used, unused])
    for _ in range(2):
        used.grad = torch.ones(3, dtype=F64)
        opt.step()
    assert torch.equal(unused, torch.ones(3, dtype=F64))
    assert unused not in opt.state and used in opt.state
    emb = torch.zeros(4, 2, dtype=F64, requires_grad=True)
    emb.grad = torch.zeros(4, 2, dtype=F64).to_sparse()
    with pytest.raises(RuntimeError, match="does not support sparse"):
        make([emb]).step()


@pytest.mark.parametrize("name, kwargs, message", [
    ("LARS", dict(lr=-0.1), "Invalid learning rate: -0.1"),
    ("LARS", dict(momentum=-0.5), "Invalid momentum value: -0.5"),
    ("LARS", dict(weight_decay=-1e-4), "Invalid weight_decay value: -0.0001"),
    ("LARS", dict(trust_coefficient=-1.0),
     "Invalid trust_coefficient value: -1.0"),
    ("LARS", dict(eps=float("nan")), "Invalid epsilon value: nan"),
    ("Lamb", dict(lr=float("nan")), "Invalid learning rate: nan"),
    ("Lamb", dict(betas=(0.9, 1.0)), "Invalid beta parameter at index 1: 1.0"),
    ("Lamb", dict(eps=-1e-6), "Invalid epsilon value: -1e-06"),
    ("Lamb", dict(weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
])
def test_bad_arguments(name, kwargs, message):
    make, _ = OPTIMIZERS[name]
    with pytest.raises(ValueError) as error:
        make(_torch_params(), **kwargs)
    assert str(error.value) == message


def test_lr_is_required():
    for cls in (optedu.LARS, optedu.Lamb):
        with pytest.raises(TypeError):
            cls(_torch_params())
