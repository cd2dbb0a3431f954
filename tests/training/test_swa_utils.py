"""optedu.training.swa_utils against torch.optim.swa_utils 2.13: the averaged model (SWA and EMA,
one tensor at a time or all at once, with and without buffers, EMA decays 0.5, 0.9 and 0.999,
float32 and float64) and update_bn (on a model, and on the averaged model as SWA's recipe runs
it) give torch's numbers bit for bit; SWALR's rates are in the schedulers' parity table
(tests/lr_scheduler/test_lr_scheduler.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from optedu.training import swa_utils as O

T = torch.optim.swa_utils
DECAYS = (0.5, 0.9, 0.999)  # the EMA's decays: fast, the tests' usual, torch's default
AVERAGING = {  # name -> the averaging arguments, built from either module
    "swa": lambda M: {},
    "swa-one-tensor": lambda M: {"avg_fn": M.get_swa_avg_fn()},
    "swa-all-tensors": lambda M: {"multi_avg_fn": M.get_swa_multi_avg_fn()},
    **{f"ema-one-tensor-{d}": lambda M, d=d: {"avg_fn": M.get_ema_avg_fn(d)}
       for d in DECAYS},
    **{f"ema-all-tensors-{d}": lambda M, d=d: {"multi_avg_fn": M.get_ema_multi_avg_fn(d)}
       for d in DECAYS},
}


def _net(dtype: torch.dtype) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(),
                         nn.Linear(6, 3)).to(dtype)


def _train_and_average(model: nn.Module, averaged: list[nn.Module], dtype: torch.dtype,
                       steps: int = 25) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    gen = torch.Generator().manual_seed(1)
    for step in range(steps):
        x = torch.randn(8, 4, generator=gen, dtype=dtype)
        loss = model(x).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 2 == 0:
            for a in averaged:
                a.update_parameters(model)


# every averaging with and without buffers, in float32 and float64, but SWA over all tensors
# with buffers, on which torch 2.13 fails (test_swa_over_all_tensors_refuses_integer_buffers)
CASES = [pytest.param(name, buffers, dtype, id=f"{name}-{buffers}-{str(dtype)[-7:]}")
         for name in AVERAGING for buffers in ("params", "buffers")
         for dtype in (torch.float32, torch.float64)
         if not (name == "swa-all-tensors" and buffers == "buffers")]


@pytest.mark.parametrize("name, buffers, dtype", CASES)
def test_the_averaged_model_is_torchs(name, buffers, dtype):
    use_buffers = buffers == "buffers"
    model = _net(dtype)
    ours = O.AveragedModel(model, use_buffers=use_buffers, **AVERAGING[name](O))
    theirs = T.AveragedModel(model, use_buffers=use_buffers, **AVERAGING[name](T))
    _train_and_average(model, [ours, theirs], dtype)
    a, b = ours.state_dict(), theirs.state_dict()
    assert list(a) == list(b)
    for key in a:
        assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key
    assert int(a["n_averaged"]) == 13
    # the average is not the last weights (a vacuous average would be)
    assert not torch.equal(ours.module[0].weight, model[0].weight)
    x = torch.randn(5, 4, dtype=dtype)
    ours.eval(), theirs.eval()
    assert torch.equal(ours(x), theirs(x))


def test_swa_is_the_mean_of_the_weights_it_saw():
    model = nn.Linear(3, 2, dtype=torch.float64)
    averaged, seen = O.AveragedModel(model), []
    for k in range(7):
        with torch.no_grad():
            model.weight.add_(float(k) ** 2)
        averaged.update_parameters(model)
        seen.append(model.weight.detach().clone())
    torch.testing.assert_close(averaged.module.weight, torch.stack(seen).mean(0),
                               rtol=1e-15, atol=1e-13)
    ema = O.AveragedModel(model, multi_avg_fn=O.get_ema_multi_avg_fn(0.5))
    ema.update_parameters(model)  # the first update copies
    assert torch.equal(ema.module.weight, model.weight)


@pytest.mark.parametrize("batches", ["tensors", "tuples"])
def test_update_bn_is_torchs(batches):
    gen = torch.Generator().manual_seed(2)
    data = [torch.randn(10, 4, generator=gen) * 3 + 1 for _ in range(4)]
    loader = data if batches == "tensors" else [(x, torch.zeros(10)) for x in data]
    nets = [_net(torch.float32) for _ in range(2)]
    for net in nets:
        net.eval()
        net[1].momentum = 0.3
    O.update_bn(loader, nets[0])
    T.update_bn(loader, nets[1])
    for a, b in zip(nets[0].buffers(), nets[1].buffers()):
        assert torch.equal(a, b)
    bn = nets[0][1]
    assert bn.momentum == 0.3 and not nets[0].training  # restored
    # the statistics are those of all the data (a cumulative mean, not a moving one)
    features = torch.cat([nets[0][0](x) for x in data]).detach()
    torch.testing.assert_close(bn.running_mean, features.mean(0))
    assert int(bn.num_batches_tracked) == 4


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_update_bn_after_averaging_is_torchs(dtype):
    """SWA's recipe: average the weights, then recompute BatchNorm's statistics for them."""
    model = _net(dtype)
    averaged = [O.AveragedModel(model), T.AveragedModel(model)]
    _train_and_average(model, averaged, dtype)
    gen = torch.Generator().manual_seed(3)
    loader = [torch.randn(16, 4, generator=gen, dtype=dtype) for _ in range(3)]
    before = averaged[0].module[1].running_mean.clone()
    O.update_bn(loader, averaged[0])
    T.update_bn(loader, averaged[1])
    a, b = averaged[0].state_dict(), averaged[1].state_dict()
    assert list(a) == list(b)
    assert all(torch.equal(a[key], b[key]) for key in a)
    assert not torch.equal(averaged[0].module[1].running_mean, before)  # recomputed
    assert int(a["module.1.num_batches_tracked"]) == 3


def test_update_bn_without_batchnorm_does_nothing():
    model = nn.Linear(2, 2)
    before = [p.clone() for p in model.parameters()]
    O.update_bn([torch.ones(1, 2)], model)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_swa_over_all_tensors_refuses_integer_buffers():
    runs = []
    for M in (O, T):
        model = _net(torch.float32)
        runs.append(M.AveragedModel(model, multi_avg_fn=M.get_swa_multi_avg_fn(),
                                    use_buffers=True))
        runs[-1].update_parameters(model)
        model(torch.randn(4, 4))
        error = ValueError if M is O else RuntimeError
        with pytest.raises(error, match="num_batches_tracked" if M is O else "addcdiv"):
            runs[-1].update_parameters(model)


@pytest.mark.parametrize("decay", [1.5, -0.1, float("nan")])
@pytest.mark.parametrize("form", ["get_ema_avg_fn", "get_ema_multi_avg_fn"])
def test_a_bad_decay_is_named(form, decay):
    message = rf"Invalid decay value: {decay} \(expected a number in \[0, 1\]\)"
    with pytest.raises(ValueError, match=message):
        getattr(O, form)(decay)
    if decay == decay:  # torch refuses the same values (NaN it lets through)
        with pytest.raises(ValueError, match=f"Invalid decay value {decay}"):
            getattr(T, form)(decay)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="give avg_fn or multi_avg_fn, not both"):
        O.AveragedModel(nn.Linear(2, 2), avg_fn=O.get_swa_avg_fn(),
                        multi_avg_fn=O.get_swa_multi_avg_fn())
