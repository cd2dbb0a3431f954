"""optedu.training.accumulation: the accumulation loop, its weights, per-micro-batch clipping, the
learning-rate rules and the small training run (quick tier, all in this process)."""


import pytest
import torch
import torch.nn.functional as F
from torch import nn

import optedu
from optedu.training.accumulation import (accumulate, flat_grad, scaled_lr, size_weights,
                                 train_epochs)


def problem(n=24, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=gen, dtype=torch.float64)
    y = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 7, dtype=torch.float64), nn.Tanh(),
                          nn.Linear(7, 2, dtype=torch.float64))
    return model, x, y


def full_grad(model, x, y):
    model.zero_grad()
    F.mse_loss(model(x), y).backward()
    return flat_grad(model)


def test_equal_micro_batches_give_the_large_batch_gradient():
    model, x, y = problem()
    g = full_grad(model, x, y)
    model.zero_grad()
    accumulate(model, F.mse_loss, list(zip(x.chunk(4), y.chunk(4))))
    assert torch.allclose(flat_grad(model), g, rtol=0, atol=1e-15)


def test_unequal_micro_batches_need_size_weights():
    model, x, y = problem()
    g = full_grad(model, x, y)
    sizes = [2, 4, 18]
    micro = list(zip(x.split(sizes), y.split(sizes)))
    model.zero_grad()
    accumulate(model, F.mse_loss, micro)                       # 1/k: wrong
    assert (flat_grad(model) - g).abs().max() > 1e-3
    model.zero_grad()
    accumulate(model, F.mse_loss, micro, size_weights(sizes))  # n_j / B: right
    assert torch.allclose(flat_grad(model), g, rtol=0, atol=1e-15)


def test_size_weights_by_hand():
    assert size_weights([4, 4, 8]) == [0.25, 0.25, 0.5]
    with pytest.raises(ValueError, match="Invalid size value: 0"):
        size_weights([3, 0])


def test_clip_each_differs_from_clipping_the_sum():
    model, x, y = problem()
    micro = list(zip(x.chunk(4), y.chunk(4)))
    g = full_grad(model, x, y)
    tau = 0.2 * float(g.norm())
    once = g * min(1.0, tau / (float(g.norm()) + 1e-6))   # torch's rule on the sum
    model.zero_grad()
    accumulate(model, F.mse_loss, micro, clip_each=tau / 8)
    each = flat_grad(model)
    assert each.norm() <= tau / 2 + 1e-12             # 4 pieces of norm <= tau/8
    assert (each - once).norm() > 1e-3 * once.norm()
    # a threshold no contribution reaches changes nothing
    model.zero_grad()
    accumulate(model, F.mse_loss, micro, clip_each=1e6)
    assert torch.allclose(flat_grad(model), g, rtol=0, atol=1e-15)


def test_accumulate_bad_input():
    model, x, y = problem()
    micro = list(zip(x.chunk(2), y.chunk(2)))
    with pytest.raises(ValueError, match="Invalid weights value: 1 weights for 2"):
        accumulate(model, F.mse_loss, micro, [1.0])
    with pytest.raises(ValueError, match="Invalid clip_each value: 0"):
        accumulate(model, F.mse_loss, micro, clip_each=0.0)


@pytest.mark.parametrize("rule, expected", [("none", 0.1), ("linear", 1.6),
                                            ("sqrt", 0.4)])
def test_scaled_lr(rule, expected):
    assert scaled_lr(0.1, 16, rule) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=0.1, factor=4, rule="cube"), "Invalid rule value: 'cube'"),
    (dict(lr=-0.1, factor=4, rule="sqrt"), r"Invalid learning rate: -0\.1"),
    (dict(lr=0.1, factor=0, rule="sqrt"), "Invalid factor value: 0"),
])
def test_scaled_lr_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        scaled_lr(**kwargs)


def test_train_epochs_is_seeded_and_learns():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(60, 4, generator=gen, dtype=torch.float64)
    y = (x[:, 0] > 0).long()
    run = lambda: train_epochs(lambda p: optedu.SGD(p, lr=0.5), x, y, 16, 3)
    first = run()
    assert first == run() and len(first) == 4
    assert first[-1] < first[0]
    losses, model = train_epochs(lambda p: optedu.SGD(p, lr=0.5), x, y, 16, 3,
                                 return_model=True)
    assert losses == first and isinstance(model, nn.Linear)
