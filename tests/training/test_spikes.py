"""optedu.training.spikes: the detector fires at the injected step, rollback-and-skip ends on
the trajectory of a run that never saw the skipped batches (bit for bit), the retry cap, and
MuonClip's QK-clip."""

import math

import pytest
import torch
from torch import nn

from optedu import Adam
from optedu.training.layer_stats import AttentionLogits
from optedu.training.spikes import (RollbackGuard, SpikeDetector, qk_clip_,
                                    train_with_rollback)

BAD = 37


def data(n=80, bad=(BAD,), seed=0):
    """Batches of a linear regression; the batches in ``bad`` have targets scaled 100x."""
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(8, 1, generator=gen)
    out = []
    for i in range(n):
        x = torch.randn(16, 8, generator=gen)
        y = x @ w + 0.1 * torch.randn(16, 1, generator=gen)
        out.append((x, 100 * y if i in bad else y))
    return out


def model_and_opt(opt="adam"):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))
    if opt == "adam":
        optimizer = Adam(model.parameters(), lr=1e-2)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
    return model, optimizer


def mse(model, batch):
    x, y = batch
    return nn.functional.mse_loss(model(x), y)


def plain(batches, opt="adam", scheduler=None):
    model, optimizer = model_and_opt(opt)
    sched = None if scheduler is None else scheduler(optimizer)
    for batch in batches:
        loss = mse(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if sched is not None:
            sched.step()
    return model, optimizer


@pytest.mark.parametrize("opt,every,keep", [
    ("adam", 5, 2),
    *[pytest.param(o, e, k, marks=pytest.mark.full) for o, e, k in
      [("adam", 1, 1), ("adam", 10, 3), ("sgd", 1, 1), ("sgd", 5, 2), ("sgd", 10, 3)]]])
def test_rollback_ends_on_the_run_that_never_saw_the_skipped_batches(opt, every, keep):
    batches = data()
    model, optimizer = model_and_opt(opt)
    sched = torch.optim.lr_scheduler.StepLR(optimizer, 7, 0.9)
    report = train_with_rollback(model, optimizer, batches, mse, scheduler=sched,
                                 detector=SpikeDetector(loss_factor=10.0),
                                 every=every, keep=keep)
    assert [s.index for s in report.spikes] == [BAD] and report.spikes[0].loss_spiked
    assert report.rollbacks == 1 and BAD in report.skipped
    assert report.skipped == list(range(report.skipped[0], BAD + 1))
    assert BAD - report.skipped[0] < keep * every
    kept = [b for i, b in enumerate(batches) if i not in report.skipped]
    ref, ref_opt = plain(kept, opt, lambda o: torch.optim.lr_scheduler.StepLR(o, 7, 0.9))
    for p, q in zip(model.parameters(), ref.parameters()):
        assert torch.equal(p, q)
    assert sched.last_epoch == len(kept)
    for a, b in zip(optimizer.state.values(), ref_opt.state.values()):
        assert all(torch.equal(torch.as_tensor(a[k]), torch.as_tensor(b[k])) for k in a)


def test_without_the_guard_the_bad_batch_leaves_its_mark():
    damaged, _ = plain(data())
    clean, _ = plain(data(bad=()))
    gap = max(float((p - q).detach().abs().max()) for p, q in
              zip(damaged.parameters(), clean.parameters()))
    assert gap > 1e-2


def test_a_spike_that_comes_back_hits_the_cap():
    batches = data(bad=range(30, 80))
    model, optimizer = model_and_opt()
    with pytest.raises(RuntimeError, match="after 2 rollbacks in a row"):
        train_with_rollback(model, optimizer, batches, mse, every=5, max_rollbacks=2)


def test_isolated_spikes_far_apart_do_not_add_up_to_the_cap():
    """Four corrupted batches, each more than keep x every steps after the last: four
    rollbacks with max_rollbacks=2, and the run ends on the clean trajectory."""
    bad = (40, 70, 100, 130)
    batches = data(n=140, bad=bad)
    model, optimizer = model_and_opt()
    report = train_with_rollback(model, optimizer, batches, mse,
                                 detector=SpikeDetector(loss_factor=10.0),
                                 every=5, keep=2, max_rollbacks=2)
    assert [s.index for s in report.spikes] == list(bad) and report.rollbacks == 4
    kept = [b for i, b in enumerate(batches) if i not in report.skipped]
    ref, _ = plain(kept)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), ref.parameters()))


def test_nan_loss_rolls_back_from_the_first_step():
    batches = data(n=20, bad=())
    batches[3] = (torch.full((16, 8), math.nan), batches[3][1])
    model, optimizer = model_and_opt()
    report = train_with_rollback(model, optimizer, batches, mse, every=1, keep=1)
    assert [s.index for s in report.spikes] == [3] and report.skipped == [3]
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_detector_update_norms_flag_the_layer():
    det = SpikeDetector(window=5, update_factor=10.0, min_history=3)
    for i in range(6):
        assert not det.record(i, 1.0, {"a": 1.0, "b": 2.0}).fired
    spike = det.record(6, 1.0, {"a": 1.0, "b": 25.0})
    assert spike.fired and not spike.loss_spiked and spike.layers == ("b",)
    assert det.record(7, 2.5, {}).loss_spiked                 # 2.5 > 2 x median 1
    assert not SpikeDetector(update_factor=None).record(0, 1.0, {"a": 1e9}).fired


def test_guard_around_a_hand_written_loop():
    batches = data()
    model, optimizer = model_and_opt("sgd")
    guard = RollbackGuard(model, optimizer, every=4, keep=2,
                          detector=SpikeDetector(loss_factor=10.0))
    for i, batch in enumerate(batches):
        loss = mse(model, batch)
        optimizer.zero_grad()
        loss.backward()
        guard.before_step()
        optimizer.step()
        guard.after_step(i, loss)
    assert guard.report.spikes[0].index == BAD


@pytest.mark.parametrize("kwargs,message", [
    (dict(every=0), "Invalid every value: 0"),
    (dict(keep=0), "Invalid keep value: 0"),
    (dict(max_rollbacks=-1), "Invalid max_rollbacks value: -1"),
])
def test_bad_guard_arguments(kwargs, message):
    model, optimizer = model_and_opt()
    with pytest.raises(ValueError, match=message):
        RollbackGuard(model, optimizer, **kwargs)


@pytest.mark.parametrize("kwargs,message", [
    (dict(window=0), "Invalid window value: 0"),
    (dict(loss_factor=1.0), "Invalid loss_factor value: 1.0"),
    (dict(update_factor=0.5), "Invalid update_factor value: 0.5"),
])
def test_bad_detector_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SpikeDetector(**kwargs)


class Packed(nn.Module):
    def __init__(self, width=8, heads=2):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)

    def forward(self, x):
        return self.qkv(x)


def test_qk_clip_brings_each_heads_largest_logit_to_tau():
    torch.manual_seed(0)
    m = Packed()
    with torch.no_grad():
        m.qkv.weight.mul_(20)
    x = torch.randn(3, 5, 8)
    logits = AttentionLogits(m)
    m(x)
    before = logits.last[""].clone()
    tau = float(before.min()) / 2
    gamma = qk_clip_(m, before, tau)
    m(x)
    assert torch.allclose(logits.last[""], torch.full_like(before, tau), rtol=1e-5)
    assert torch.allclose(gamma, (tau / before.double()))
    v = m.qkv.weight[16:].clone()
    qk_clip_(m, logits.last[""], tau * 10)                   # below tau: nothing moves
    m(x)
    assert torch.allclose(logits.last[""], torch.full_like(before, tau), rtol=1e-5)
    assert torch.equal(m.qkv.weight[16:], v)


def test_qk_clip_bad_input():
    with pytest.raises(TypeError, match="Unsupported attention module: Linear"):
        qk_clip_(nn.Linear(2, 6), torch.ones(2), 1.0)
    with pytest.raises(ValueError, match=r"Invalid maxima: shape \(3,\)"):
        qk_clip_(Packed(), torch.ones(3), 1.0)
    with pytest.raises(ValueError, match="Invalid tau value: 0"):
        qk_clip_(Packed(), torch.ones(2), 0)


def test_two_rollbacks_to_the_same_state_stay_on_the_clean_trajectory():
    """The second spike comes before a new state is kept, so both restore the same saved
    state: a restore that did not copy it would let the steps in between overwrite it."""
    batches = data(bad=(37, 42))
    model, optimizer = model_and_opt()
    report = train_with_rollback(model, optimizer, batches, mse,
                                 detector=SpikeDetector(loss_factor=10.0), every=10, keep=2)
    assert [s.index for s in report.spikes] == [37, 42] and report.rollbacks == 2
    assert report.skipped == list(range(report.skipped[0], 43))
    kept = [b for i, b in enumerate(batches) if i not in report.skipped]
    ref, _ = plain(kept)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), ref.parameters()))
