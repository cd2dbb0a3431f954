"""optedu.lr_scheduler against torch.optim.lr_scheduler 2.13: same rates, momenta, state, errors.

One table of scheduler factories drives the parity tests. Each factory receives the scheduler
module (``optedu.lr_scheduler`` or ``torch.optim.lr_scheduler``) and an optimizer, so the same
line builds both twins. Every case runs 130 steps on two parameter groups with different base
rates, on optedu's and on torch's optimizers (SGD with ``momentum``, Adam with ``betas``); the
rates must be bit-identical to torch's (the same float operations in the same order), and so
must the momenta, the extra entries schedulers put in ``param_groups``, ``last_epoch`` and
``get_last_lr()``.
Hypothesis then draws the arguments of each class from their valid ranges.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import optedu
from optedu import lr_scheduler as O
from optedu.lr_scheduler import trace
from optedu.instruments.parity import compare
from optedu.lr_scheduler.schedules import inverse_sqrt, linear_warmup_cosine, warmup_stable_decay
from optedu.training import swa_utils
from optimizers import crossed

T = torch.optim.lr_scheduler
STEPS = 130


def _swa(L):
    """Where SWALR lives: torch.optim.swa_utils beside torch's schedulers, and
    optedu.training.swa_utils beside optedu's."""
    return torch.optim.swa_utils if L is T else swa_utils
TRANSIENT = {"_is_initial", "_get_lr_called_within_step"}  # torch's flags, not schedule state

OPTIMIZERS = {  # kind -> (optedu class, torch class, defaults); two groups, base rates 0.1, 0.03
    "sgd": (optedu.SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9)),
    "adam": (optedu.Adam, torch.optim.Adam, dict(lr=0.1, betas=(0.9, 0.99))),
}


def make_optimizer(kind: str, lib: str) -> torch.optim.Optimizer:
    ours, theirs, defaults = OPTIMIZERS[kind]
    cls = ours if lib == "optedu" else theirs
    params = [torch.zeros(3, requires_grad=True), torch.zeros(2, requires_grad=True)]
    return cls([{"params": [params[0]]}, {"params": [params[1]], "lr": 0.03}], **defaults)


def _metrics(sign: float = 1.0) -> list[float]:
    """A loss curve: falls, plateaus with noise (ties, tiny gains, bumps), falls again."""
    rng = np.random.default_rng(0)
    values = [1 / (1 + t) if t < 30 else 1 / 31 + 1e-3 * rng.integers(0, 3) for t in range(90)]
    values += [values[-1] * 0.97**k for k in range(1, STEPS - 90 + 1)]
    return [sign * v for v in values]


class Decay:
    """A callable object with state (torch checkpoints its ``__dict__``)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate

    def __call__(self, epoch: int) -> float:
        return self.rate**epoch


# name -> (factory(L, optimizer), metrics or None)
CASES = {
    "lambda": (lambda L, o: L.LambdaLR(o, [lambda e: 0.97**e, lambda e: 1 / (1 + e)]), None),
    "lambda-object": (lambda L, o: L.LambdaLR(o, Decay(0.98)), None),
    "lambda-warmup-cosine": (lambda L, o: L.LambdaLR(o, partial(
        linear_warmup_cosine, warmup_steps=10, total_steps=100, min_ratio=0.1)), None),
    "lambda-inverse-sqrt": (lambda L, o: L.LambdaLR(o, partial(inverse_sqrt, warmup_steps=8)), None),
    "lambda-wsd": (lambda L, o: L.LambdaLR(o, partial(
        warmup_stable_decay, warmup_steps=5, stable_steps=70, decay_steps=40)), None),
    "multiplicative": (lambda L, o: L.MultiplicativeLR(o, lambda e: 0.95 if e % 3 else 1.01), None),
    "step": (lambda L, o: L.StepLR(o, step_size=7, gamma=0.5), None),
    "step-grow": (lambda L, o: L.StepLR(o, 13, gamma=1.5), None),
    "multistep": (lambda L, o: L.MultiStepLR(o, [10, 30, 30, 75], gamma=0.3), None),
    "multistep-unsorted": (lambda L, o: L.MultiStepLR(o, [60, 20]), None),
    "constant": (lambda L, o: L.ConstantLR(o, factor=0.25, total_iters=12), None),
    "constant-default": (lambda L, o: L.ConstantLR(o), None),
    "linear-warmup": (lambda L, o: L.LinearLR(o, start_factor=0.01, total_iters=25), None),
    "linear-decay": (lambda L, o: L.LinearLR(o, 1.0, 0.0, total_iters=80), None),
    "linear-partial": (lambda L, o: L.LinearLR(o, 0.5, 0.2, total_iters=33), None),
    "exponential": (lambda L, o: L.ExponentialLR(o, 0.97), None),
    "polynomial": (lambda L, o: L.PolynomialLR(o, total_iters=60, power=2.0), None),
    "polynomial-sqrt": (lambda L, o: L.PolynomialLR(o, total_iters=100, power=0.5), None),
    "cosine": (lambda L, o: L.CosineAnnealingLR(o, T_max=40, eta_min=0.001), None),
    "cosine-plain": (lambda L, o: L.CosineAnnealingLR(o, T_max=100), None),
    "cosine-short": (lambda L, o: L.CosineAnnealingLR(o, T_max=3, eta_min=0.02), None),
    "cosine-float-period": (lambda L, o: L.CosineAnnealingLR(o, T_max=25.0), None),
    "warm-restarts": (lambda L, o: L.CosineAnnealingWarmRestarts(o, T_0=10), None),
    "warm-restarts-mult": (lambda L, o: L.CosineAnnealingWarmRestarts(o, 5, T_mult=2, eta_min=0.005), None),
    "warm-restarts-mult3": (lambda L, o: L.CosineAnnealingWarmRestarts(o, 3, T_mult=3), None),
    "cyclic": (lambda L, o: L.CyclicLR(o, base_lr=[0.01, 0.002], max_lr=[0.1, 0.05],
                                       step_size_up=8), None),
    "cyclic-triangular2": (lambda L, o: L.CyclicLR(o, 0.01, 0.1, step_size_up=5,
                                                   step_size_down=15, mode="triangular2"), None),
    "cyclic-exp-range": (lambda L, o: L.CyclicLR(o, 0.01, 0.1, step_size_up=10, mode="exp_range",
                                                 gamma=0.99), None),
    "cyclic-custom-cycle": (lambda L, o: L.CyclicLR(o, 0.01, 0.1, 6, scale_fn=lambda x: 1 / x),
                            None),
    "cyclic-custom-iterations": (lambda L, o: L.CyclicLR(
        o, 0.01, 0.1, 6, 3, scale_fn=lambda x: 0.5 * (1 + math.cos(x / 20)),
        scale_mode="iterations"), None),
    "cyclic-no-momentum": (lambda L, o: L.CyclicLR(o, 0.01, 0.1, 9, cycle_momentum=False), None),
    "cyclic-momentum-lists": (lambda L, o: L.CyclicLR(o, 0.01, 0.1, 7, base_momentum=[0.7, 0.8],
                                                      max_momentum=[0.9, 0.95]), None),
    "cyclic-no-down": (lambda L, o: L.CyclicLR(o, 0.01, 0.1, 10, step_size_down=0), None),
    "onecycle": (lambda L, o: L.OneCycleLR(o, max_lr=[0.2, 0.05], total_steps=STEPS), None),
    "onecycle-linear-3phase": (lambda L, o: L.OneCycleLR(
        o, 0.2, total_steps=STEPS, pct_start=0.25, anneal_strategy="linear", three_phase=True), None),
    "onecycle-cos-3phase": (lambda L, o: L.OneCycleLR(o, 0.2, total_steps=STEPS + 20,
                                                      three_phase=True), None),
    "onecycle-epochs": (lambda L, o: L.OneCycleLR(o, 0.3, epochs=13, steps_per_epoch=10,
                                                  div_factor=10.0, final_div_factor=100.0), None),
    "onecycle-no-momentum": (lambda L, o: L.OneCycleLR(o, 0.2, total_steps=200,
                                                       cycle_momentum=False), None),
    "onecycle-momentum-lists": (lambda L, o: L.OneCycleLR(
        o, 0.2, total_steps=STEPS, base_momentum=[0.8, 0.85], max_momentum=(0.9, 0.99)), None),
    "onecycle-short-warmup": (lambda L, o: L.OneCycleLR(o, 0.2, total_steps=STEPS,
                                                        pct_start=0.005), None),
    "sequential-warmup-cosine": (lambda L, o: L.SequentialLR(
        o, [L.LinearLR(o, 0.1, total_iters=10), L.CosineAnnealingLR(o, T_max=90, eta_min=1e-4)],
        milestones=[10]), None),
    "sequential-three": (lambda L, o: L.SequentialLR(
        o, [L.ConstantLR(o, 0.5, 5), L.ExponentialLR(o, 0.98), L.StepLR(o, 10, 0.5)],
        milestones=[5, 50]), None),
    "sequential-multiplicative": (lambda L, o: L.SequentialLR(
        o, [L.MultiplicativeLR(o, lambda e: 0.9), L.PolynomialLR(o, 80, 1.5)], [20]), None),
    "sequential-lambda-multistep": (lambda L, o: L.SequentialLR(
        o, [L.LambdaLR(o, lambda e: (e + 1) / 8), L.MultiStepLR(o, [0, 40, 80], 0.5)], [7]), None),
    "chained": (lambda L, o: L.ChainedScheduler([L.ConstantLR(o, 0.1, 10),
                                                 L.ExponentialLR(o, 0.97)]), None),
    "chained-cosine-multistep": (lambda L, o: L.ChainedScheduler(
        [L.CosineAnnealingLR(o, 50), L.MultiStepLR(o, [20, 60], 0.5)]), None),
    "chained-linear-step": (lambda L, o: L.ChainedScheduler(
        [L.LinearLR(o, 0.2, total_iters=15), L.StepLR(o, 25, 0.7), L.PolynomialLR(o, 120, 0.8)]),
        None),
    "plateau": (lambda L, o: L.ReduceLROnPlateau(o, patience=3), _metrics()),
    "plateau-max-abs-cooldown": (lambda L, o: L.ReduceLROnPlateau(
        o, mode="max", factor=0.5, patience=2, threshold=1e-3, threshold_mode="abs", cooldown=4),
        _metrics(-1.0)),
    "plateau-min-lr-list": (lambda L, o: L.ReduceLROnPlateau(
        o, factor=0.3, patience=0, min_lr=[0.02, 0.001]), _metrics()),
    "plateau-eps": (lambda L, o: L.ReduceLROnPlateau(
        o, factor=0.9, patience=1, threshold=0.0, eps=0.003), _metrics()),
    "plateau-max-rel": (lambda L, o: L.ReduceLROnPlateau(
        o, mode="max", patience=5, threshold=0.01, cooldown=1, min_lr=0.005), _metrics(-1.0)),
    "swalr-cos": (lambda L, o: _swa(L).SWALR(o, swa_lr=0.05, anneal_epochs=5), None),
    "swalr-linear-lists": (lambda L, o: _swa(L).SWALR(o, [0.02, 0.01], anneal_epochs=17,
                                                      anneal_strategy="linear"), None),
    "sequential-cosine-swalr-jump": (lambda L, o: L.SequentialLR(
        o, [L.CosineAnnealingLR(o, 40), _swa(L).SWALR(o, 0.04, anneal_epochs=0)], [40]), None),
    "sequential-cosine-swalr": (lambda L, o: L.SequentialLR(
        o, [L.CosineAnnealingLR(o, 60), _swa(L).SWALR(o, 0.01, anneal_epochs=10)], [60]), None),
    "swalr-one-step": (lambda L, o: _swa(L).SWALR(o, 0.2, anneal_epochs=1), None),
    "chained-swalr-exponential": (lambda L, o: L.ChainedScheduler(
        [L.ExponentialLR(o, 0.99), _swa(L).SWALR(o, 0.01, anneal_epochs=40)]), None),
}
NAMES = list(CASES)
GROUP_KEYS = ("lr", "initial_lr", "max_lr", "min_lr", "base_momentum", "max_momentum",
              "momentum", "betas", "swa_lr")


def _assert_close(a, b):
    """Bit-equal: the same floats in the same places (NaN where the other has NaN)."""
    np.testing.assert_array_equal(np.asarray(a, dtype=float), np.asarray(b, dtype=float))


def _assert_same_groups(opt_a, opt_b):
    for ga, gb in zip(opt_a.param_groups, opt_b.param_groups):
        assert {k for k in GROUP_KEYS if k in ga} == {k for k in GROUP_KEYS if k in gb}
        for key in GROUP_KEYS:
            if key in ga:
                _assert_close(np.array(ga[key], dtype=float), np.array(gb[key], dtype=float))


def _twins(name, kind, lib):
    factory, metrics = CASES[name]
    ours = factory(O, make_optimizer(kind, lib))
    theirs = factory(T, make_optimizer(kind, "torch"))
    return ours, theirs, metrics


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("name, kind, lib", crossed(
    NAMES, list(OPTIMIZERS), {"on-optedu": "optedu", "on-torch": "torch"}))
def test_same_rates_and_momenta_as_torch(name, kind, lib):
    ours, theirs, metrics = _twins(name, kind, lib)
    assert isinstance(ours, O.LRScheduler) and not isinstance(ours, T.LRScheduler)
    a, b = trace(ours, STEPS, metrics), trace(theirs, STEPS, metrics)
    _assert_close(a.lr, b.lr)
    _assert_close(a.momentum, b.momentum)
    assert np.unique(a.lr[:, 0]).size > 1, "the schedule never moved: a vacuous case"
    assert getattr(ours, "last_epoch", None) == getattr(theirs, "last_epoch", None)
    _assert_close(ours.get_last_lr(), theirs.get_last_lr())
    _assert_same_groups(ours.optimizer, theirs.optimizer)


def _keys(state):
    keys = set(state) - TRANSIENT
    nested = [_keys(s) for s in state.get("_schedulers", [])]
    return keys, nested


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_has_torchs_keys(name):
    ours, theirs, metrics = _twins(name, "sgd", "optedu")
    trace(ours, 20, metrics), trace(theirs, 20, metrics)
    assert _keys(ours.state_dict()) == _keys(theirs.state_dict())


@pytest.mark.parametrize("name, source, target", crossed(NAMES, {
    "optedu-to-optedu": ("O", "O"), "torch-to-optedu": ("T", "O"),
    "optedu-to-torch": ("O", "T")}))
def test_state_dict_round_trip_mid_run(name, source, target):
    """Stop after 45 steps, checkpoint optimizer and scheduler, rebuild, load, continue: the
    restored run continues exactly like the uninterrupted one."""
    factory, metrics = CASES[name]
    mods = {"O": (O, "optedu"), "T": (T, "torch")}
    (src_mod, src_lib), (dst_mod, dst_lib) = mods[source], mods[target]
    first = factory(src_mod, make_optimizer("adam", src_lib))
    trace(first, 45, None if metrics is None else metrics[:45])
    opt_state = first.optimizer.state_dict()
    sched_state = first.state_dict()
    rest = None if metrics is None else metrics[45:]
    # restore: build the scheduler first, then load the optimizer, then the scheduler (torch's order)
    second = factory(dst_mod, make_optimizer("adam", dst_lib))
    second.optimizer.load_state_dict(opt_state)
    second.load_state_dict(sched_state)
    if "lambda-object" in name:
        assert second.lr_lambdas[0].rate == 0.98
    uninterrupted, restored = trace(first, 85, rest), trace(second, 85, rest)
    _assert_close(restored.lr, uninterrupted.lr)
    _assert_close(restored.momentum, uninterrupted.momentum)
    assert getattr(second, "last_epoch", None) == getattr(first, "last_epoch", None)


def test_callable_object_state_is_restored():
    opt = make_optimizer("sgd", "optedu")
    sched = O.LambdaLR(opt, Decay(0.5))
    state = sched.state_dict()
    assert state["lr_lambdas"] == [{"rate": 0.5}, {"rate": 0.5}]
    other = O.LambdaLR(make_optimizer("sgd", "optedu"), Decay(0.9))
    other.load_state_dict(state)
    assert other.lr_lambdas[0].rate == 0.5
    plain = O.LambdaLR(make_optimizer("sgd", "optedu"), lambda e: 1.0)
    assert plain.state_dict()["lr_lambdas"] == [None, None]


@pytest.mark.parametrize("name", ["step", "multistep", "constant", "linear-warmup", "exponential",
                                  "polynomial", "cosine", "warm-restarts-mult", "cyclic",
                                  "onecycle", "lambda"])
@pytest.mark.parametrize("stop", [10, 30])
def test_resume_with_last_epoch_matches_torch(name, stop):
    """The old way to resume: load the optimizer (it holds initial_lr), pass last_epoch."""
    factory, _ = CASES[name]
    runs = []
    for L, lib in ((O, "optedu"), (T, "torch")):
        opt = make_optimizer("sgd", lib)
        sched = factory(L, opt)
        trace(sched, stop)
        state = opt.state_dict()
        opt2 = make_optimizer("sgd", lib)
        opt2.load_state_dict(state)
        resumed = _resume(factory, L, opt2, last_epoch=stop - 1)
        runs.append(trace(resumed, 40))
    _assert_close(runs[0].lr, runs[1].lr)
    _assert_close(runs[0].momentum, runs[1].momentum)


def _resume(factory, L, opt, last_epoch):
    """Rebuild the case's scheduler with ``last_epoch`` (by wrapping the module's classes)."""
    class Resuming:
        def __getattr__(self, attr):
            cls = getattr(L, attr)
            return lambda *args, **kwargs: cls(*args, **kwargs, last_epoch=last_epoch)
    return factory(Resuming(), opt)


def test_resume_without_initial_lr_is_a_key_error():
    with pytest.raises(KeyError, match=r"param 'initial_lr' is not specified in param_groups\[0\]"):
        O.StepLR(make_optimizer("sgd", "optedu"), 3, last_epoch=5)


def test_initial_lr_is_recorded_and_kept():
    opt = make_optimizer("sgd", "optedu")
    O.StepLR(opt, 3)
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.03]
    opt.param_groups[0]["lr"] = 0.5  # a second scheduler keeps the first one's initial_lr
    second = O.ExponentialLR(opt, 0.9)
    assert second.base_lrs == [0.1, 0.03]


# -- hypothesis: arguments drawn from each class's valid range ------------------------------------
counts = st.integers(1, 60)
gammas = st.floats(0.05, 1.5)
factors = st.floats(0.01, 1.0)

STRATEGIES = {
    "StepLR": st.fixed_dictionaries(dict(step_size=counts, gamma=gammas)),
    "MultiStepLR": st.fixed_dictionaries(dict(milestones=st.lists(st.integers(0, 140), max_size=6),
                                              gamma=gammas)),
    "ConstantLR": st.fixed_dictionaries(dict(factor=factors, total_iters=counts)),
    "LinearLR": st.fixed_dictionaries(dict(start_factor=factors, end_factor=st.floats(0, 1),
                                           total_iters=counts)),
    "ExponentialLR": st.fixed_dictionaries(dict(gamma=st.floats(0.5, 1.05))),
    "PolynomialLR": st.fixed_dictionaries(dict(total_iters=counts, power=st.floats(0, 4))),
    "CosineAnnealingLR": st.fixed_dictionaries(dict(T_max=counts, eta_min=st.floats(0, 0.05))),
    "CosineAnnealingWarmRestarts": st.fixed_dictionaries(dict(
        T_0=st.integers(1, 30), T_mult=st.integers(1, 4), eta_min=st.floats(0, 0.05))),
    "CyclicLR": st.fixed_dictionaries(dict(
        base_lr=st.floats(1e-4, 0.05), max_lr=st.floats(0.05, 1.0), step_size_up=counts,
        step_size_down=st.one_of(st.none(), st.integers(0, 60)),
        mode=st.sampled_from(["triangular", "triangular2", "exp_range"]),
        gamma=st.floats(0.9, 1.0), base_momentum=st.floats(0.5, 0.85),
        max_momentum=st.floats(0.85, 0.99), cycle_momentum=st.booleans())),
    "OneCycleLR": st.fixed_dictionaries(dict(
        max_lr=st.floats(0.01, 1.0), total_steps=st.integers(STEPS, 400),
        pct_start=st.floats(0.05, 0.95), anneal_strategy=st.sampled_from(["cos", "linear"]),
        three_phase=st.booleans(), div_factor=st.floats(1.0, 100.0),
        final_div_factor=st.floats(1.0, 1e5), cycle_momentum=st.booleans())),
    "SWALR": st.fixed_dictionaries(dict(
        swa_lr=st.one_of(st.floats(1e-4, 1.0), st.lists(st.floats(1e-4, 1.0), min_size=2,
                                                         max_size=2)),
        anneal_epochs=st.integers(0, 60), anneal_strategy=st.sampled_from(["cos", "linear"]))),
}


def _module(L, cls_name):
    return _swa(L) if cls_name == "SWALR" else L


@given(data=st.data())
@pytest.mark.parametrize("kind", list(OPTIMIZERS))
@pytest.mark.parametrize("cls_name", list(STRATEGIES))
def test_random_arguments_match_torch(cls_name, kind, data):
    kwargs = data.draw(STRATEGIES[cls_name])
    ours = getattr(_module(O, cls_name), cls_name)(make_optimizer(kind, "optedu"), **kwargs)
    theirs = getattr(_module(T, cls_name), cls_name)(make_optimizer(kind, "torch"), **kwargs)
    a, b = trace(ours, STEPS), trace(theirs, STEPS)
    _assert_close(a.lr, b.lr)
    _assert_close(a.momentum, b.momentum)


@given(mode=st.sampled_from(["min", "max"]), threshold_mode=st.sampled_from(["rel", "abs"]),
       factor=st.floats(0.0, 0.99), patience=st.integers(0, 8), cooldown=st.integers(0, 5),
       threshold=st.floats(0, 0.1), min_lr=st.floats(0, 0.05), eps=st.floats(0, 1e-3),
       seed=st.integers(0, 1000))
def test_plateau_random_arguments_match_torch(mode, threshold_mode, factor, patience, cooldown,
                                              threshold, min_lr, eps, seed):
    rng = np.random.default_rng(seed)
    metrics = list(np.round(np.cumsum(rng.normal(0, 1, STEPS)), 1))  # ties happen
    kwargs = dict(mode=mode, threshold_mode=threshold_mode, factor=factor, patience=patience,
                  cooldown=cooldown, threshold=threshold, min_lr=min_lr, eps=eps)
    a = trace(O.ReduceLROnPlateau(make_optimizer("sgd", "optedu"), **kwargs), STEPS, metrics)
    b = trace(T.ReduceLROnPlateau(make_optimizer("sgd", "torch"), **kwargs), STEPS, metrics)
    _assert_close(a.lr, b.lr)


# -- behaviour worth a test of its own ------------------------------------------------------------
@pytest.mark.parametrize("L", [O, T], ids=["optedu", "torch"])
def test_scheduler_step_before_optimizer_step_warns_and_skips_the_first_rate(L):
    opt = make_optimizer("sgd", "optedu")
    sched = L.StepLR(opt, step_size=1, gamma=0.5)
    with pytest.warns(UserWarning, match=r"`lr_scheduler.step\(\)` before `optimizer.step\(\)`"):
        sched.step()
    used = opt.param_groups[0]["lr"]
    opt.step()
    assert used == 0.05  # the first optimizer step ran at the second value: 0.1 was skipped


@pytest.mark.filterwarnings("error")
def test_right_order_is_silent():
    opt = make_optimizer("sgd", "optedu")
    sched = O.StepLR(opt, step_size=1, gamma=0.5)
    for _ in range(3):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == 0.1 * 0.5**3


@pytest.mark.parametrize("L", [O, T], ids=["optedu", "torch"])
def test_onecycle_refuses_to_step_past_total_steps(L):
    opt = make_optimizer("sgd", "optedu")
    sched = L.OneCycleLR(opt, max_lr=0.1, total_steps=10)
    trace(sched, 9)
    opt.step()
    sched.step()  # last_epoch == total_steps is still allowed, as in torch
    with pytest.raises(ValueError) as raised:
        sched.step()
    assert str(raised.value) == "Tried to step 11 times. The specified number of total steps is 10"


def test_cosine_recursion_matches_closed_form_until_someone_edits_the_rate():
    opt = make_optimizer("sgd", "optedu")
    sched = O.CosineAnnealingLR(opt, T_max=50, eta_min=0.01)
    worst = 0.0
    for _ in range(200):  # four troughs and four peaks
        opt.step()
        sched.step()
        worst = max(worst, max(abs(a - b) / b for a, b in zip(sched.get_last_lr(),
                                                              sched.closed_form_lr())))
    assert worst < 1e-12
    # a hand edit is carried forward by the recursion (torch's too), not by the closed form
    twin_opt = make_optimizer("sgd", "torch")
    twin = T.CosineAnnealingLR(twin_opt, T_max=50, eta_min=0.01)
    for _ in range(200):
        twin_opt.step()
        twin.step()
    for o in (opt, twin_opt):
        o.param_groups[0]["lr"] *= 2
    a, b = trace(sched, 30), trace(twin, 30)
    _assert_close(a.lr, b.lr)
    assert abs(a.lr[5, 0] - sched.closed_form_lr()[0]) > 1e-3


@pytest.mark.parametrize("epochs", [[0.5, 1.25, 7.9, 12.0, 3.3], [0, 5, 15, 35, 36.5, 80]])
@pytest.mark.parametrize("T_mult", [1, 2, 3])
def test_warm_restarts_accept_fractional_epochs_like_torch(epochs, T_mult):
    runs = []
    for L in (O, T):
        opt = make_optimizer("sgd", "optedu")
        sched = L.CosineAnnealingWarmRestarts(opt, T_0=5, T_mult=T_mult, eta_min=0.001)
        lrs = []
        for epoch in epochs:
            opt.step()
            sched.step(epoch)
            lrs.append(sched.get_last_lr())
        runs.append((lrs, sched.T_cur, sched.T_i, sched.last_epoch))
    _assert_close(runs[0][0], runs[1][0])
    assert runs[0][1:] == runs[1][1:]


def test_chained_scheduler_accepts_torch_members():
    opt_a, opt_b = make_optimizer("sgd", "optedu"), make_optimizer("sgd", "optedu")
    mixed = O.ChainedScheduler([T.ExponentialLR(opt_a, 0.9), O.StepLR(opt_a, 4, 0.5)])
    pure = T.ChainedScheduler([T.ExponentialLR(opt_b, 0.9), T.StepLR(opt_b, 4, 0.5)])
    _assert_close(trace(mixed, 20).lr, trace(pure, 20).lr)


@pytest.mark.parametrize("name", ["step", "cosine", "onecycle", "cyclic", "sequential-three"])
def test_parameters_follow_the_schedule_like_torch(name):
    """optedu optimizer + optedu scheduler vs torch + torch, through optedu.instruments.parity.compare:
    parameters and optimizer state after 60 steps with real gradients."""
    factory, _ = CASES[name]
    schedulers = {}

    def build(L, cls):
        def make(groups, **defaults):
            opt = cls(groups, **defaults)
            schedulers[id(opt)] = factory(L, opt)
            return opt
        return make

    result = compare(build(O, optedu.SGD), build(T, torch.optim.SGD), dict(lr=0.1, momentum=0.9),
                     [{}, {"lr": 0.03}], steps=60,
                     after_step=lambda opt, t: schedulers[id(opt)].step())
    assert result.ok(0.0), result


# -- errors ---------------------------------------------------------------------------------------
def _sgd(L=None):
    return make_optimizer("sgd", "optedu")


# (name, factory(L, optimizer), exception, message, torch raises the same message)
BAD = [
    ("not-an-optimizer", lambda L, o: L.StepLR([1, 2], 3), TypeError, "list is not an Optimizer", True),
    ("step-size-0", lambda L, o: L.StepLR(o, 0), ValueError,
     "Invalid step_size value: 0 (expected an integer >= 1)", False),
    ("step-size-float", lambda L, o: L.StepLR(o, 2.5), ValueError,
     "Invalid step_size value: 2.5 (expected an integer >= 1)", False),
    ("step-gamma-0", lambda L, o: L.StepLR(o, 5, gamma=0), ValueError,
     "Invalid gamma value: 0 (expected a number > 0)", False),
    ("step-gamma-neg", lambda L, o: L.StepLR(o, 5, gamma=-0.1), ValueError,
     "Invalid gamma value: -0.1 (expected a number > 0)", False),
    ("multistep-gamma", lambda L, o: L.MultiStepLR(o, [10], gamma=-1.0), ValueError,
     "Invalid gamma value: -1.0 (expected a number > 0)", False),
    ("multistep-float", lambda L, o: L.MultiStepLR(o, [1.5]), ValueError,
     "Invalid milestones value: [1.5] (expected a list of integers)", False),
    ("exponential-gamma", lambda L, o: L.ExponentialLR(o, 0.0), ValueError,
     "Invalid gamma value: 0.0 (expected a number > 0)", False),
    ("constant-factor", lambda L, o: L.ConstantLR(o, factor=1.5), ValueError,
     "Constant multiplicative factor expected to be between 0 and 1.", True),
    ("constant-iters", lambda L, o: L.ConstantLR(o, total_iters=0), ValueError,
     "Invalid total_iters value: 0 (expected an integer >= 1)", False),
    ("linear-start", lambda L, o: L.LinearLR(o, start_factor=0), ValueError,
     "Starting multiplicative factor expected to be greater than 0 and less or equal to 1.", True),
    ("linear-end", lambda L, o: L.LinearLR(o, end_factor=1.5), ValueError,
     "Ending multiplicative factor expected to be between 0 and 1.", True),
    ("linear-iters", lambda L, o: L.LinearLR(o, total_iters=0), ValueError,
     "Invalid total_iters value: 0 (expected an integer >= 1)", False),
    ("poly-iters", lambda L, o: L.PolynomialLR(o, total_iters=-2), ValueError,
     "Invalid total_iters value: -2 (expected an integer >= 1)", False),
    ("poly-power", lambda L, o: L.PolynomialLR(o, power=-1.0), ValueError,
     "Invalid power value: -1.0", False),
    ("cosine-tmax", lambda L, o: L.CosineAnnealingLR(o, T_max=0), ValueError,
     "Invalid T_max value: 0 (expected a number > 0)", False),
    ("cosine-eta", lambda L, o: L.CosineAnnealingLR(o, 10, eta_min=-0.1), ValueError,
     "Invalid eta_min value: -0.1", False),
    ("restarts-t0", lambda L, o: L.CosineAnnealingWarmRestarts(o, T_0=0), ValueError,
     "Expected positive integer T_0, but got 0", True),
    ("restarts-t0-float", lambda L, o: L.CosineAnnealingWarmRestarts(o, T_0=2.5), ValueError,
     "Expected positive integer T_0, but got 2.5", True),
    ("restarts-tmult", lambda L, o: L.CosineAnnealingWarmRestarts(o, 5, T_mult=0), ValueError,
     "Expected integer T_mult >= 1, but got 0", True),
    ("restarts-eta", lambda L, o: L.CosineAnnealingWarmRestarts(o, 5, eta_min="0"), ValueError,
     "Expected float or int eta_min, but got 0 of type <class 'str'>", True),
    ("cyclic-mode", lambda L, o: L.CyclicLR(o, 0.01, 0.1, mode="square"), ValueError,
     "mode is invalid and scale_fn is None", True),
    ("cyclic-base-lr-list", lambda L, o: L.CyclicLR(o, [0.01], 0.1), ValueError,
     "base_lr must have the same length as optimizer.param_groups. base_lr has 1 values, "
     "param_groups has 2.", True),
    ("cyclic-no-momentum", lambda L, o: L.CyclicLR(torch.optim.Adagrad([torch.zeros(1)]), 0.01, 0.1),
     ValueError, "optimizer must support momentum or beta1 with `cycle_momentum` option enabled", True),
    ("cyclic-step-size", lambda L, o: L.CyclicLR(o, 0.01, 0.1, step_size_up=0), ValueError,
     "Invalid step_size_up value: 0 (expected a number > 0)", False),
    ("cyclic-down", lambda L, o: L.CyclicLR(o, 0.01, 0.1, 5, step_size_down=-1), ValueError,
     "Invalid step_size_down value: -1", False),
    ("cyclic-gamma", lambda L, o: L.CyclicLR(o, 0.01, 0.1, mode="exp_range", gamma=0.0), ValueError,
     "Invalid gamma value: 0.0 (expected a number > 0)", False),
    ("cyclic-scale-mode", lambda L, o: L.CyclicLR(o, 0.01, 0.1, scale_fn=abs, scale_mode="epoch"),
     ValueError, "Invalid scale_mode value: 'epoch' (expected 'cycle' or 'iterations')", False),
    ("onecycle-total", lambda L, o: L.OneCycleLR(o, 0.1, total_steps=0), ValueError,
     "Expected positive integer total_steps, but got 0", True),
    ("onecycle-nothing", lambda L, o: L.OneCycleLR(o, 0.1), ValueError,
     "You must define either total_steps OR (epochs AND steps_per_epoch)", True),
    ("onecycle-epochs", lambda L, o: L.OneCycleLR(o, 0.1, epochs=0, steps_per_epoch=5), ValueError,
     "Expected positive integer epochs, but got 0", True),
    ("onecycle-spe", lambda L, o: L.OneCycleLR(o, 0.1, epochs=3, steps_per_epoch=-5), ValueError,
     "Expected positive integer steps_per_epoch, but got -5", True),
    ("onecycle-pct", lambda L, o: L.OneCycleLR(o, 0.1, 100, pct_start=1.5), ValueError,
     "Expected float between 0 and 1 pct_start, but got 1.5", True),
    ("onecycle-pct-int", lambda L, o: L.OneCycleLR(o, 0.1, 100, pct_start=0), ValueError,
     "Expected float between 0 and 1 pct_start, but got 0", True),
    ("onecycle-anneal", lambda L, o: L.OneCycleLR(o, 0.1, 100, anneal_strategy="exp"), ValueError,
     "anneal_strategy must be one of 'cos' or 'linear', instead got exp", True),
    ("onecycle-div", lambda L, o: L.OneCycleLR(o, 0.1, 100, div_factor=0.0), ValueError,
     "Invalid div_factor value: 0.0 (expected a number > 0)", False),
    ("onecycle-max-lr-list", lambda L, o: L.OneCycleLR(o, [0.1, 0.2, 0.3], 100), ValueError,
     "max_lr must have the same length as optimizer.param_groups. max_lr has 3 values, "
     "param_groups has 2.", True),
    ("onecycle-zero-phase", lambda L, o: L.OneCycleLR(o, 0.1, total_steps=10, pct_start=0.1),
     ValueError, "OneCycleLR phase 0 has zero length at step 0: choose pct_start and total_steps "
     "(10) so that every phase is at least one step long", False),
    ("lambda-count", lambda L, o: L.LambdaLR(o, [lambda e: 1.0]), ValueError,
     "Expected 2 lr_lambdas, but got 1", True),
    ("multiplicative-not-callable", lambda L, o: L.MultiplicativeLR(o, 0.9), TypeError,
     "lr_lambda should be a function, but got float", True),
    ("lambda-not-callable", lambda L, o: L.LambdaLR(o, 0.9), TypeError,
     "lr_lambda should be a function, but got float", False),
    ("sequential-empty", lambda L, o: L.SequentialLR(o, [], []), ValueError,
     "SequentialLR expects at least one scheduler, but got no scheduler.", True),
    ("sequential-count", lambda L, o: L.SequentialLR(o, [L.StepLR(o, 3), L.StepLR(o, 4)], [2, 5]),
     ValueError, "Sequential Schedulers expects number of schedulers provided to be one more than "
     "the number of milestone points, but got number of schedulers 2 and the number of "
     "milestones to be equal to 2", True),
    ("sequential-order", lambda L, o: L.SequentialLR(
        o, [L.StepLR(o, 3), L.StepLR(o, 4), L.StepLR(o, 5)], [8, 4]), ValueError,
     "Invalid milestones value: [8, 4] (expected increasing integers)", False),
    ("sequential-plateau", lambda L, o: L.SequentialLR(o, [L.StepLR(o, 3), L.ReduceLROnPlateau(o)],
                                                       [5]), ValueError,
     "SequentialLR does not support `ReduceLROnPlateau` scheduler as it requires additional "
     "kwargs to be specified when calling `step`, but got one at index 1 in the given "
     "schedulers sequence.", True),
    ("sequential-other-optimizer", lambda L, o: L.SequentialLR(o, [L.StepLR(_sgd(), 3)], []),
     ValueError, "SequentialLR expects all schedulers to belong to the same optimizer, but got "
     "scheduler StepLR at index 0 with another optimizer", False),
    ("chained-empty", lambda L, o: L.ChainedScheduler([]), ValueError,
     "ChainedScheduler expects at least one scheduler to be chained, but got no scheduler.", True),
    ("plateau-factor", lambda L, o: L.ReduceLROnPlateau(o, factor=1.0), ValueError,
     "Factor should be < 1.0.", True),
    ("plateau-factor-neg", lambda L, o: L.ReduceLROnPlateau(o, factor=-0.5), ValueError,
     "Invalid factor value: -0.5", False),
    ("plateau-mode", lambda L, o: L.ReduceLROnPlateau(o, mode="avg"), ValueError,
     "mode avg is unknown!", True),
    ("plateau-threshold-mode", lambda L, o: L.ReduceLROnPlateau(o, threshold_mode="pct"),
     ValueError, "threshold mode pct is unknown!", True),
    ("plateau-min-lrs", lambda L, o: L.ReduceLROnPlateau(o, min_lr=[0.1]), ValueError,
     "expected 2 min_lrs, got 1", True),
    ("plateau-patience", lambda L, o: L.ReduceLROnPlateau(o, patience=-1), ValueError,
     "Invalid patience value: -1", False),
    ("swalr-strategy", lambda L, o: _swa(L).SWALR(o, 0.1, anneal_strategy="exp"), ValueError,
     "anneal_strategy must be one of 'cos' or 'linear', instead got exp", True),
    ("swalr-epochs", lambda L, o: _swa(L).SWALR(o, 0.1, anneal_epochs=-1), ValueError,
     "anneal_epochs must be equal or greater than 0, got -1", True),
    ("swalr-epochs-float", lambda L, o: _swa(L).SWALR(o, 0.1, anneal_epochs=2.5), ValueError,
     "anneal_epochs must be equal or greater than 0, got 2.5", True),
    ("swalr-lrs", lambda L, o: _swa(L).SWALR(o, [0.1]), ValueError,
     "swa_lr must have the same length as optimizer.param_groups. swa_lr has 1 values, "
     "param_groups has 2.", False),
]


@pytest.mark.parametrize("factory, exception, message, torch_same",
                         [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_arguments(factory, exception, message, torch_same):
    with pytest.raises(exception) as raised:
        factory(O, _sgd())
    assert str(raised.value) == message
    if torch_same:
        with pytest.raises(exception) as raised:
            factory(T, _sgd())
        assert str(raised.value) == message
