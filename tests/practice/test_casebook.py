"""Tests of optedu.practice.casebook: each bug switch of ``train`` does what it says.

Quick tier: a few steps each (the digits data is loaded once). The plots and
the longer runs are in the full tier.
"""

import math
import warnings
from functools import partial

import pytest
import torch

import optedu
from optedu.practice.casebook import (Run, full_loss, mlp, plot_signs, plot_symptoms,
                                      sgd_restarts, train, train_on)
from optedu.lr_scheduler.schedules import linear_warmup_cosine


def _grads(model):
    return [p.grad.clone() for p in model.parameters()]


def test_missing_zero_grad_sums_the_gradients():
    # lr = 0: the weights stay put, so the gradients of steps 1 and 2 are
    # those of their batches, and without zero_grad p.grad holds their sum.
    one, two, piled = mlp(0, width=8), mlp(0, width=8), mlp(0, width=8)
    train(one, optedu.SGD(one.parameters(), lr=0.0), 1)
    train(two, optedu.SGD(two.parameters(), lr=0.0), 2)
    train(piled, optedu.SGD(piled.parameters(), lr=0.0), 2, zero_grad=False)
    for g1, g2, g in zip(_grads(one), _grads(two), _grads(piled)):
        torch.testing.assert_close(g, g1 + g2)


def test_undivided_accumulation_multiplies_the_gradient():
    runs = {}
    for divide in (True, False):
        model = mlp(0, width=8)
        runs[divide] = train(model, optedu.SGD(model.parameters(), lr=0.0),
                             1, accumulate=4, divide_loss=divide)
    assert runs[False].norms[0] == pytest.approx(4 * runs[True].norms[0],
                                                 rel=1e-5)
    assert runs[False].losses == pytest.approx(runs[True].losses)


def test_one_batch_uses_the_first_examples_at_every_step():
    # lr = 0: the weights stay put, so every step sees the same loss, that of
    # the first 32 examples (also when they come in 4 micro-batches of 8).
    from optedu.practice.casebook import digits

    x, y = digits()
    model = mlp(0, width=8)
    with torch.no_grad():
        first = torch.nn.functional.cross_entropy(model(x[:32]), y[:32])
    for accumulate in (1, 4):
        run = train(model, optedu.SGD(model.parameters(), lr=0.0), 3,
                    one_batch=True, accumulate=accumulate)
        assert run.losses == pytest.approx([first.item()] * 3, rel=1e-6)


def test_clipping_bounds_the_step_and_records_the_norm_before():
    model = mlp(0, width=8)
    before = [p.detach().clone() for p in model.parameters()]
    run = train(model, optedu.SGD(model.parameters(), lr=1.0), 1, clip=1e-3)
    moved = math.sqrt(sum((p - b).square().sum().item()
                          for p, b in zip(model.parameters(), before)))
    assert moved == pytest.approx(1e-3, rel=1e-3)
    assert run.norms[0] > 1e-2  # the norm before clipping


def _scheduled(first, every, steps=4):
    model = mlp(0, width=8)
    opt = optedu.SGD(model.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, partial(
        linear_warmup_cosine, warmup_steps=10, total_steps=20))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = train(model, opt, steps, scheduler=sched, scheduler_every=every,
                    scheduler_first=first)
    return run, caught


def test_scheduler_switches():
    run, caught = _scheduled(first=False, every=1)
    assert not caught and run.lrs == pytest.approx([1 / 11, 2 / 11, 3 / 11,
                                                    4 / 11])
    run, caught = _scheduled(first=False, every=2)  # per "epoch" of 2
    assert run.lrs == pytest.approx([1 / 11, 1 / 11, 2 / 11, 2 / 11])
    run, caught = _scheduled(first=True, every=2)   # at the epoch's start
    assert run.lrs == pytest.approx([2 / 11, 2 / 11, 3 / 11, 3 / 11])
    assert any("before `optimizer.step()`" in str(w.message) for w in caught)


def test_restarts_keep_or_clear_the_momentum_buffers():
    results = {}
    for reset in (False, True):
        model = mlp(0, width=8)
        opt = optedu.SGD(model.parameters(), lr=0.1, momentum=0.9)
        results[reset] = sgd_restarts(model, opt, 2, 3, reset_state=reset)
    kept, cleared = results[False], results[True]
    assert kept.losses[:4] == cleared.losses[:4]  # same first cycle, step 4
    assert kept.losses[4] != cleared.losses[4]    # uses the buffer
    assert kept.lrs == pytest.approx([0.1, 0.075, 0.025] * 2)


def test_run_reports_divergence():
    assert Run([1.0, 0.5], [1.0, 1.0]).tail(1) == 0.5
    broken = Run([1.0, math.nan], [1.0, math.inf])
    assert broken.diverged and math.isnan(broken.tail())


def test_fp16_gradients_underflow_without_loss_scaling():
    model = mlp(0, width=8)
    opt = optedu.SGD(model.parameters(), lr=0.0)
    plain = train(model, opt, 1, loss_factor=1e-6, autocast=torch.float16)
    scaled = train(model, opt, 1, loss_factor=1e-6, autocast=torch.float16,
                   scaler=torch.amp.GradScaler("cpu"))
    assert plain.norms == [0.0] and scaled.norms[0] > 0


def test_train_on_records_the_loss_of_each_batch_it_is_given():
    # lr = 0: the weights stay put, so each step's loss is its batch's loss; entries after
    # the labels (here the examples' indices) are ignored.
    x = torch.rand(12, 64, generator=torch.Generator().manual_seed(0))
    y = torch.arange(12) % 10
    model = mlp(0, width=8)
    batches = [(x[i:i + 4], y[i:i + 4], torch.arange(i, i + 4)) for i in (0, 4, 8)]
    run = train_on(model, optedu.SGD(model.parameters(), lr=0.0), iter(batches), 3)
    with torch.no_grad():
        want = [torch.nn.functional.cross_entropy(model(b[0]), b[1]).item() for b in batches]
    assert run.losses == pytest.approx(want, rel=1e-6)
    assert len(run.norms) == 3 and min(run.norms) > 0 and run.lrs == [0.0] * 3
    more = train_on(model, optedu.SGD(model.parameters(), lr=0.0), iter(batches), 2, run=run)
    assert more is run and len(run.losses) == 5
    with pytest.raises(ValueError, match="Invalid steps: -1"):
        train_on(model, optedu.SGD(model.parameters(), lr=0.0), iter(batches), -1)


@pytest.mark.full
def test_fixes_train_better_than_the_bugs():
    losses = {}
    for zero_grad in (True, False):
        model = mlp(0)
        train(model, optedu.SGD(model.parameters(), lr=0.05, momentum=0.9),
              100, zero_grad=zero_grad)
        losses[zero_grad] = full_loss(model)
    assert losses[True] < losses[False] / 10


@pytest.mark.full
def test_plot_symptoms_draws_two_panels():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plot_symptoms({"a": Run([2.0, 1.0, math.nan], [1.0, 2.0, math.inf]),
                         "b": Run([2.0, 1.5, 1.0], [0.0, 1.0, 1.0])},
                        threshold=0.5, norm_log=False)
    loss_ax, norm_ax = fig.axes
    assert loss_ax.get_ylabel() == "training loss"
    assert norm_ax.get_ylabel() == "gradient norm"
    assert any(t.get_text() == "diverged" for t in loss_ax.texts)
    plt.close(fig)


@pytest.mark.full
def test_plot_signs_draws_lines_and_bars():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # "a" stops being finite (marked), "c" starts with NaN as a moving mean does (not marked)
    fig = plot_signs({"loss": {"a": [2.0, 1.0, math.nan], "c": [math.nan, 1.5, 1.0]},
                      "share": {"c": {"w": 0.5, "b": 0.25}, "a": {"w": 0.1, "b": 0.0}}},
                     log=["loss"], start=11, marks=[12])
    loss_ax, share_ax = fig.axes
    assert loss_ax.get_ylabel() == "loss" and loss_ax.get_yscale() == "log"
    assert [t.get_text() for t in loss_ax.texts] == ["diverged"]
    lines = {ln.get_label(): ln for ln in loss_ax.lines if ln.get_label() in ("a", "c")}
    assert [ln.get_xdata()[0] for ln in lines.values()] == [11, 11]
    assert [p.get_height() for p in share_ax.patches] == [0.5, 0.25, 0.1, 0.0]
    assert [t.get_text() for t in share_ax.get_xticklabels()] == ["w", "b"]
    # a label keeps its colour across panels
    bars = {"c": share_ax.patches[0], "a": share_ax.patches[2]}
    for label, line in lines.items():
        assert matplotlib.colors.to_rgba(line.get_color()) == bars[label].get_facecolor()
    plt.close(fig)
    with pytest.raises(ValueError, match="Invalid log"):
        plot_signs({"loss": {"a": [1.0]}}, log=["norm"])


@pytest.mark.full
def test_digits_match_scikit_learn():
    from sklearn.datasets import load_digits

    from optedu.practice.casebook import digits

    data = load_digits()
    x, y = digits()
    torch.testing.assert_close(
        x, torch.tensor(data.data / 16.0, dtype=torch.float32))
    assert torch.equal(y, torch.tensor(data.target))
