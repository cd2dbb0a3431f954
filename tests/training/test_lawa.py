"""optedu.training.lawa: the mean of the latest k checkpoints, its sliding window, its
spacing, buffers, and the argument checks."""

import pytest
import torch
from torch import nn

from optedu.training.lawa import LAWA, latest_average


def _model(dtype=torch.float64):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4, dtype=dtype), nn.BatchNorm1d(4, dtype=dtype))


@torch.no_grad()
def _move(model, t):
    for p in model.parameters():
        p.add_(0.1 * t + torch.arange(p.numel(), dtype=p.dtype).reshape(p.shape))
    model[1].running_mean.fill_(float(t))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("k, every", [(1, 1), (3, 1), (3, 2), (5, 3)])
def test_the_average_is_the_mean_of_the_last_k_checkpoints(dtype, k, every):
    model = _model(dtype)
    lawa = LAWA(model, k=k, every=every)
    taken = []
    for t in range(1, 12):
        _move(model, t)
        if lawa.update_parameters(model):
            taken.append([p.detach().clone() for p in model.parameters()])
            newest = model[1].running_mean.clone()
        assert lawa.n_checkpoints == min(k, t // every)
    window = taken[-k:]
    for i, a in enumerate(lawa.module.parameters()):
        exact = sum(w[i].double() for w in window) / len(window)    # by hand, in float64
        assert torch.equal(a, exact.to(dtype))
    assert torch.equal(lawa.module[1].running_mean, newest)   # the newest checkpoint's


def test_k_one_is_the_last_checkpoint_and_the_oldest_leaves_the_window():
    model = _model()
    lawa = LAWA(model, k=1)
    _move(model, 1)
    lawa.update_parameters(model)
    assert all(torch.equal(a, p) for a, p in zip(lawa.module.parameters(), model.parameters()))
    two = LAWA(model, k=2)
    values = []
    for t in range(3):
        _move(model, t)
        two.update_parameters(model)
        values.append(next(model.parameters()).detach().clone())
    assert torch.equal(next(two.module.parameters()), (values[1] + values[2]) / 2)


def test_latest_average_refuses_an_empty_window():
    with pytest.raises(ValueError, match=r"Invalid checkpoints value: \[\]"):
        latest_average([])


@pytest.mark.parametrize("kwargs, message", [
    ({"k": 0}, "Invalid k value: 0"), ({"k": 2.0}, "Invalid k value: 2.0"),
    ({"every": 0}, "Invalid every value: 0"), ({"every": True}, "Invalid every value: True")])
def test_bad_arguments_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LAWA(_model(), **kwargs)
