"""optedu AdEMAMix against pytorch_optimizer.AdEMAMix 4.1.0 (the signature's reference: bit
for bit over every option, on both of its paths, float32, float64 and bfloat16, one and two
groups, checkpoints both ways) and against optax.contrib.ademamix 0.2.8 with the paper's alpha
and beta3 schedulers (to a measured bound; full tier: jax is slow to import); then the paper's
schedules and its reduction to Adam.

The authors' code, ``pytorch/ademamix.py`` of github.com/apple/ml-ademamix (commit c3d73c0), is no
package; it was run beside optedu in a throw-away script (not kept): 30 steps, two groups, shapes
(6, 4), (5,), (3, 2, 2), ``beta1`` 0.9 and 0, ``alpha`` 2 and 5, no warmup and both warmups of 20
steps, ``weight_decay`` 0 and 0.1 (optedu with ``weight_decouple=True``): 12 settings, float32
and float64. Without warmup: max relative difference 8.4e-7 (float32) and 2.0e-15 (float64), from
the order of operations. With warmup, 2.8e-7 in float64: the authors' half-life takes
``log(beta + 1e-8)``, the paper's formula (and optedu's) ``log(beta)``; without that 1e-8 it is
2.2e-15. Where optedu follows pytorch_optimizer instead: default ``alpha`` 5 (the authors' 2),
one warmup length ``t_alpha_beta3`` (the authors' separate ``alpha_warmup`` and
``beta3_warmup``), and L2 decay by default (the authors' ``θ - η(u + λθ)`` is
``weight_decouple=True``).
"""

from __future__ import annotations

import math
import re

import pytest
import torch
from pytorch_optimizer import AdEMAMix as Reference

from optedu.optim.ademamix import AdEMAMix, alpha_schedule, beta3_schedule
from optimizers import FULL
import reference_harness as harness

STEPS = 25
STATE = ("exp_avg", "exp_avg_sq", "exp_avg_slow")


DECAYS = {"none": dict(weight_decay=0.0), "l2": dict(weight_decay=0.1),
          "decoupled": dict(weight_decay=0.1, weight_decouple=True),
          "fixed": dict(weight_decay=0.01, weight_decouple=True, fixed_decay=True)}
OPTIONS = dict(decay=list(DECAYS), t_alpha_beta3=[None, 10], maximize=[False, True],
               foreach=[False, None])
BASE = dict(lr=0.01, betas=(0.8, 0.99, 0.999))
SECOND = {"betas": (0.7, 0.9, 0.99), "alpha": 2.0, "eps": 1e-3, "weight_decay": 0.3}


def _cases():
    return harness.cases(OPTIONS, every=23, full=FULL)


@pytest.mark.parametrize(("options", "dtype", "two"), _cases(),
                         ids=lambda x: str(x).replace("torch.", ""))
def test_bit_identical_to_pytorch_optimizer(options, dtype, two):
    """25 steps: parameters, the three buffers and the group's step bit for bit, against its
    per-parameter path (foreach=False) and its multi-tensor path (None, its CPU default)."""
    options = dict(options)
    foreach = options.pop("foreach")
    kwargs = {**BASE, **DECAYS[options.pop("decay")], **options}
    a, ours = harness.run(lambda g: AdEMAMix(g, **kwargs), dtype, two, SECOND)
    b, theirs = harness.run(lambda g: Reference(g, foreach=foreach, **kwargs), dtype, two, SECOND)
    assert harness.same(a, b)
    for p, q in zip(a, b):
        for key in STATE:
            assert torch.equal(ours.state[p][key], theirs.state[q][key]), key
    assert [g["step"] for g in ours.param_groups] == [g["step"] for g in theirs.param_groups]
    assert not harness.same(a, harness.params(dtype))


def test_bfloat16_as_its_per_parameter_path():
    """bfloat16 takes the reference's low-precision branch (divide, then add): bit for bit
    with its per-parameter path. (Its multi-tensor path rounds bfloat16 differently from its
    own per-parameter path; optedu follows the latter.)"""
    kwargs = dict(BASE, weight_decay=0.1, weight_decouple=True, t_alpha_beta3=10)
    a, _ = harness.run(lambda g: AdEMAMix(g, **kwargs), torch.bfloat16)
    b, _ = harness.run(lambda g: Reference(g, foreach=False, **kwargs), torch.bfloat16)
    assert harness.same(a, b)


def test_defaults_are_pytorch_optimizer_s():
    ours = AdEMAMix(harness.params(torch.float64)).defaults
    theirs = Reference(harness.params(torch.float64)).defaults
    assert ours == {**{k: v for k, v in theirs.items() if k != "foreach"}, "maximize": False}


@pytest.mark.parametrize("load_into", [AdEMAMix, Reference], ids=["optedu", "reference"])
@pytest.mark.parametrize("save_from", [AdEMAMix, Reference], ids=["optedu", "reference"])
def test_state_dict_round_trip(save_from, load_into):
    """A checkpoint after 10 steps (the group's step inside) resumes bit for bit, whichever
    class saved or loads it: the warmups continue from step 11."""
    kwargs = dict(BASE, weight_decay=0.1, weight_decouple=True, t_alpha_beta3=15)
    twin_opt = harness.resume(lambda g: save_from(g, **kwargs),
                              lambda g: load_into(g, **kwargs), SECOND)
    assert all(g["step"] == 20 for g in twin_opt.param_groups)


def test_first_step_by_hand():
    """Step 1: m1 = (1-b1) g, v = (1-b2) g^2, m2 = (1-b3) g; after bias correction the fast
    part is g/|g| and the slow part, left uncorrected, adds alpha (1-b3) g/|g|."""
    theta = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
    opt = AdEMAMix([theta], lr=0.1, betas=(0.9, 0.99, 0.999), alpha=5.0, eps=0.0)
    theta.grad = torch.tensor([0.3, -4.0, 2.0], dtype=torch.float64)
    opt.step()
    expected = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64) \
        - 0.1 * (1 + 5.0 * 0.001) * torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(theta.detach(), expected, rtol=1e-15, atol=1e-15)
    torch.testing.assert_close(opt.state[theta]["exp_avg_slow"], 0.001 * theta.grad,
                               rtol=1e-15, atol=0)


def test_schedules_are_the_paper_s():
    """alpha rises linearly to alpha at T; beta3 starts at beta1, ends at beta3 at T, and
    between them its half-life ln(1/2)/ln(beta3_t) grows linearly in t:
    1/ln(beta3_t) = (1 - t/T)/ln(beta1) + (t/T)/ln(beta3)."""
    T, b1, b3 = 1000, 0.9, 0.9999
    assert [alpha_schedule(t, 8.0, T) for t in (0, 250, 1000, 5000)] == [0, 2, 8, 8]
    assert alpha_schedule(7, 8.0, None) == 8.0 and beta3_schedule(7, b1, b3, None) == b3
    assert beta3_schedule(0, b1, b3, T) == pytest.approx(b1, rel=1e-15)
    assert beta3_schedule(T, b1, b3, T) == pytest.approx(b3, rel=1e-15)
    assert beta3_schedule(3 * T, b1, b3, T) == b3
    inverse_log = [1 / math.log(beta3_schedule(t, b1, b3, T)) for t in range(0, T, 37)]
    second = [a - 2 * b + c for a, b, c in zip(inverse_log, inverse_log[1:], inverse_log[2:])]
    assert max(abs(d) for d in second) < 1e-9 * abs(inverse_log[-1])


def test_beta3_schedule_is_the_authors_without_their_1e8():
    """ademamix.py (apple/ml-ademamix c3d73c0) lines 20-28, linear_hl_warmup_scheduler:
    f(b) = ln(1/2)/ln(b + 1e-8) - 1, beta3_t = (1/2)^(1/(f_t + 1)), f_t linear from f(beta1) to
    f(beta3). Without the 1e-8 that is beta3_schedule (measured: equal for every t < T here); the 1e-8
    moves beta3_t at t = T/2 by 2.0e-8 relative."""
    T, b1, b3 = 100, 0.9, 0.9999

    def authors(t, eps):
        f = lambda b: math.log(0.5) / math.log(b + eps) - 1     # noqa: E731
        a = t / T
        return 0.5 ** (1 / ((1 - a) * f(b1) + a * f(b3) + 1))
    for t in range(T):
        assert beta3_schedule(t, b1, b3, T) == pytest.approx(authors(t, 0.0), rel=1e-15, abs=0)
    moved = abs(authors(T // 2, 1e-8) / beta3_schedule(T // 2, b1, b3, T) - 1)
    assert 1e-9 < moved < 1e-7


@pytest.mark.parametrize("decoupled", [False, True], ids=["Adam", "AdamW"])
def test_alpha_zero_is_adam(decoupled):
    """alpha = 0 removes the slow momentum: Adam (L2 decay) or AdamW (decoupled), as
    torch.optim computes them, up to rounding: torch multiplies m by lr/(1 - b1^t), AdEMAMix
    divides m by (1 - b1^t) then multiplies by lr. 25 float64 steps: measured <= 1 ulp of
    entries near 2 (4.4e-16); bound 4e-15."""
    kwargs = dict(lr=0.01, weight_decay=0.1)
    theirs_cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    a, _ = harness.run(lambda g: AdEMAMix(g, betas=(0.9, 0.999, 0.5), alpha=0.0,
                                          weight_decouple=decoupled, **kwargs))
    b, _ = harness.run(lambda g: theirs_cls(g, betas=(0.9, 0.999), foreach=False, **kwargs))
    assert harness.worst(a, b) <= 4e-15
    c, _ = harness.run(lambda g: AdEMAMix(g, betas=(0.9, 0.999, 0.5), alpha=0.5,
                                          weight_decouple=decoupled, **kwargs))
    assert harness.worst(c, b) > 1e-3


def test_grad_none_skipped_complex_and_sparse_refused():
    params = harness.params(torch.float64)
    unused = torch.ones(3, dtype=torch.float64, requires_grad=True)
    _, opt = harness.train(params, AdEMAMix([*params, unused]), steps=3)
    assert torch.equal(unused, torch.ones(3, dtype=torch.float64)) and unused not in opt.state
    assert opt.param_groups[0]["step"] == 3
    z = torch.zeros(2, dtype=torch.complex64, requires_grad=True)
    z.grad = torch.ones_like(z)
    with pytest.raises(RuntimeError, match="AdEMAMix does not support complex parameters"):
        AdEMAMix([z]).step()
    emb = torch.zeros(4, 2, requires_grad=True)
    emb.grad = torch.zeros(4, 2).to_sparse()
    with pytest.raises(RuntimeError, match="AdEMAMix does not support sparse gradients"):
        AdEMAMix([emb]).step()


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=-0.1), "Invalid learning rate: -0.1"),
    (dict(betas=(1.0, 0.99, 0.999)), "Invalid beta parameter at index 0: 1.0"),
    (dict(betas=(0.9, -0.1, 0.999)), "Invalid beta parameter at index 1: -0.1"),
    (dict(betas=(0.9, 0.99, 1.5)), "Invalid beta parameter at index 2: 1.5"),
    (dict(betas=(0.9, 0.99)), "Invalid betas value: (0.9, 0.99) (expected three values)"),
    (dict(alpha=-1.0), "Invalid alpha value: -1.0"),
    (dict(t_alpha_beta3=0), "Invalid t_alpha_beta3 value: 0 (expected a number > 0)"),
    (dict(betas=(0.0, 0.99, 0.999), t_alpha_beta3=10),
     "Invalid betas value: (0.0, 0.99, 0.999) (expected beta1 > 0 with t_alpha_beta3)"),
    (dict(weight_decay=-0.01), "Invalid weight_decay value: -0.01"),
    (dict(eps=-1e-8), "Invalid epsilon value: -1e-08"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        AdEMAMix(harness.params(torch.float64), **kwargs)


# ------------------------------------------------------------- optax (full tier)

@pytest.fixture(scope="module")
def jax_modules():
    """jax (x64 on, CPU) and optax, imported only when a test needs them, as
    tests/optim/test_lars_lamb.py sets them up."""
    import os
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax
    import jax.numpy as jnp
    import optax
    jax.config.update("jax_enable_x64", True)
    return jax, jnp, optax


def _paper_schedules(jnp, dtype, alpha, b1, b3, T, shift):
    """The paper's f_alpha and f_beta3 as optax schedules of its count c (0 on the first
    step): evaluated at c + shift, in the run's dtype (an int32 count divided by T would be
    float32 even under x64)."""
    l1, l3 = math.log(b1), math.log(b3)

    def f_alpha(c):
        return jnp.minimum((c + shift).astype(dtype) * alpha / T, alpha)

    def f_beta3(c):
        s = (c + shift).astype(dtype) / T
        return jnp.minimum(jnp.exp(l1 * l3 / ((1.0 - s) * l3 + s * l1)), b3)

    return f_alpha, f_beta3


def _run_optax(jax_modules, dtype, groups, steps=STEPS):
    """groups: (indices of the tensors, hyperparameters, T or None, shift) per group, each
    its own optax.contrib.ademamix on its tensors; torch computes the gradients."""
    import numpy as np
    jax, jnp, optax = jax_modules
    jdtype = jnp.float64 if dtype == torch.float64 else jnp.float32
    params = [jnp.asarray(p.detach().numpy()) for p in harness.params(dtype)]
    runs = []
    for index, h, T, shift in groups:
        b1, b2, b3 = h["betas"]
        kw = dict(learning_rate=h["lr"], b1=b1, b2=b2, b3=b3, alpha=h["alpha"], eps=h["eps"],
                  weight_decay=h["weight_decay"])
        if T is not None:
            kw["alpha"], kw["b3"] = _paper_schedules(jnp, jdtype, h["alpha"], b1, b3, T, shift)
        tx = optax.contrib.ademamix(**kw)
        runs.append([index, jax.jit(tx.update), tx.init([params[i] for i in index])])
    for t in range(steps):
        tp = [torch.tensor(np.asarray(p)).requires_grad_() for p in params]
        harness.loss(tp, t).backward()
        grads = [jnp.asarray(p.grad.numpy()) for p in tp]
        for run in runs:
            index, update, state = run
            sub = [params[i] for i in index]
            updates, run[2] = update([grads[i] for i in index], state, sub)
            for i, new in zip(index, optax.apply_updates(sub, updates)):
                params[i] = new
    return [torch.tensor(np.asarray(p)) for p in params]


OPTAX_HYPER = dict(lr=0.01, betas=(0.8, 0.99, 0.999), alpha=5.0, eps=1e-8, weight_decay=0.1)
OPTAX_SECOND = dict(OPTAX_HYPER, betas=(0.7, 0.9, 0.99), alpha=2.0, weight_decay=0.0)


@pytest.mark.full  # jax and its compilations take seconds
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("T", [None, 10], ids=["no_warmup", "warmup10"])
@pytest.mark.parametrize("two", [False, True], ids=["1group", "2groups"])
def test_close_to_optax(jax_modules, dtype, T, two):
    """optax.contrib.ademamix against weight_decouple=True, the paper's schedulers given to
    optax at its count + 1. Not bit for bit: optax forms the EMAs as (1-b) g + b m (torch's
    lerp rounds otherwise), corrects v inside the root, divides before multiplying by -lr
    and adds the decay to the update. 25 steps, worst absolute difference measured 1.3e-15
    (6 eps) in float64, 1.1e-6 (9 eps) in float32; the bound is 32 eps (weights ~1). Given
    unshifted (the count as t), optax's schedules lag one step (alpha_1 = 0, beta3_1 =
    beta1) and the runs part by > 0.1."""
    _, jnp, _ = jax_modules
    bound = 32 * torch.finfo(dtype).eps
    second = {k: OPTAX_SECOND[k] for k in ("betas", "alpha", "weight_decay")}
    ours = lambda g: AdEMAMix(g, lr=0.01, betas=OPTAX_HYPER["betas"],  # noqa: E731
                              weight_decay=0.1, weight_decouple=True, t_alpha_beta3=T)
    a, _ = harness.run(ours, dtype, two, second)
    groups = ([([0, 1], OPTAX_HYPER, T, 1), ([2, 3], OPTAX_SECOND, T, 1)] if two
              else [([0, 1, 2, 3], OPTAX_HYPER, T, 1)])
    b = _run_optax(jax_modules, dtype, groups)
    assert all(x.dtype == dtype for x in b)
    assert harness.worst(a, b) <= bound
    assert not harness.same(a, harness.params(dtype))
    if T is not None:
        lagged = _run_optax(jax_modules, dtype, [(i, h, T, 0) for i, h, T, _ in groups])
        assert harness.worst(a, lagged) > 0.1


@pytest.mark.full
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_heavyball_where_the_rules_coincide(dtype, weight_decay):
    """heavyball 3.2.1's AdEMAMix, eager (compile_mode None, compile_step=False, as
    experiments/cost.py runs it), is a second, independent reference. It parts from optedu in
    three places, each measured over these 30 steps: it holds lr as a float32 tensor (lr = 0.01
    moves every step by 2.2e-8 relative; 9.6e-10 in the parameters), takes max(sqrt(v), eps)
    where optedu takes sqrt(v) + eps (9.6e-10 more), and warms beta3 up with the authors'
    log(beta + 1e-8) (1.3e-7). So: lr a power of two, eps = 0, no warmup, optedu with the
    authors' decoupled decay and alpha. Measured max relative difference 2.0e-16 (float64),
    1.0e-7 (float32, from heavyball's debiased EMAs); bounds 1e-15 and 5e-7."""
    import heavyball
    import heavyball.utils
    heavyball.utils.compile_mode = None
    shapes = [(6, 4), (5,), (3, 2, 2)]

    def run(make):
        return harness.on_random_gradients(make, shapes, dtype, steps=30)
    kw = dict(lr=2.0**-7, betas=(0.9, 0.999, 0.9999), alpha=2.0, eps=0.0,
              weight_decay=weight_decay)
    theirs = run(lambda ps: heavyball.AdEMAMix(
        ps, **kw, compile_step=False,
        storage_dtype="float64" if dtype == torch.float64 else "float32"))
    ours = run(lambda ps: AdEMAMix(ps, **kw, weight_decouple=True))
    worst = max(((a - b).abs().max() / b.abs().max()).item() for a, b in zip(ours, theirs))
    assert worst <= (1e-15 if dtype == torch.float64 else 5e-7)
