"""The first-NaN locator on runs broken on purpose: it names the module, the phase and
the step where the first non-finite tensor is made."""

import pytest
import torch
from torch import nn

import optedu
from optedu.training.nan_locator import NaNLocator, NonFinite


class NaiveLogSoftmax(nn.Module):
    """log(softmax(z)): log(0) = -inf once a probability underflows."""

    def forward(self, z):
        return torch.softmax(z, -1).log()


class Norm(nn.Module):
    """sqrt(sum a²): finite at a = 0, its gradient is not (0 · inf)."""

    def forward(self, a):
        return (a * a).sum(-1, keepdim=True).sqrt()


def train(model, optimizer, batches, loss_fn):
    """One step per batch under the locator; stop at the first record."""
    with NaNLocator(model, optimizer) as locator:
        for x, y in batches:
            loss = loss_fn(model(x), y)
            locator.check("loss", loss)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if locator.first is not None:
                break
    return locator


def batches(n, bad_step, bad, dtype=torch.float32, dim=4):
    """n batches of 8 rows; the one at bad_step replaced by bad(x)."""
    gen = torch.Generator().manual_seed(0)
    out = []
    for step in range(n):
        x = torch.randn(8, dim, generator=gen)
        x = bad(x) if step == bad_step else x
        out.append((x.to(dtype), torch.ones(8, 1, dtype=dtype)))
    return out


def test_log_of_zero_in_forward():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), NaiveLogSoftmax())
    data = [(x, torch.zeros(8, dtype=torch.long))
            for x, _ in batches(5, 2, lambda x: x * 1e4)]
    locator = train(model, optedu.SGD(model.parameters(), lr=0.1), data,
                    nn.functional.nll_loss)
    first = locator.first
    assert (first.step, first.phase, first.module, first.tensor) == \
        (2, "forward", "1", "output")
    assert first.inf > 0 and first.nan == 0


def test_fp16_overflow_in_forward():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 1)).half()
    data = batches(5, 3, lambda x: x.sign() * 6e4, torch.float16)
    # the input itself is finite in fp16; the first layer's output is not
    x_bad = data[3][0]
    assert torch.isfinite(x_bad).all()
    assert (x_bad.float() @ model[0].weight.float().T).abs().max() > 65504
    locator = train(model, optedu.SGD(model.parameters(), lr=1e-3), data,
                    lambda out, y: nn.functional.mse_loss(out.float(),
                                                          y.float()))
    first = locator.first
    assert (first.step, first.phase, first.module, first.tensor) == \
        (3, "forward", "0", "output")


def test_sqrt_at_zero_in_backward():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 32, bias=False), nn.ReLU(), Norm())

    def zero_row(x):
        x[0] = 0.0                    # sqrt(0) = 0 forward, 0 · inf backward
        return x

    locator = train(model, optedu.SGD(model.parameters(), lr=0.01),
                    batches(5, 1, zero_row), nn.functional.mse_loss)
    first = locator.first
    assert (first.step, first.phase, first.module, first.tensor) == \
        (1, "backward", "2", "grad_input[0]")
    assert first.nan > 0


def test_nan_parameter_after_an_adam_step_in_fp16():
    """Adam with fp16 state: ε = 1e-8 rounds to 0 and v = (1 - β₂) g² rounds to 0
    for |g| < 5.5e-3, so m / (√v + ε) = m / 0. The first layer is frozen for three
    steps (its gradient None, so no state); unfrozen, its tiny gradients blow up."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 1)).half()
    model[0].weight.requires_grad_(False)
    optimizer = optedu.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(1)
    with NaNLocator(model, optimizer) as locator:
        for step in range(6):
            if step == 3:
                model[0].weight.requires_grad_(True)
            x = torch.rand(8, 4, generator=gen).half() * 1e-5
            x[:, 1:] += 1.0
            loss = nn.functional.mse_loss(model(x).float(),
                                          torch.full((8, 1), 100.0))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    first = locator.first
    assert (first.step, first.phase, first.module, first.tensor) == \
        (3, "optimizer step", "0", "parameter weight")


def test_records_only_the_first_and_removes_its_hooks():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    with NaNLocator(model) as locator:
        model(torch.tensor([[float("nan"), 1.0]]))
        model(torch.tensor([[float("inf"), 1.0]]))
    assert locator.first == NonFinite(0, "forward", "", "input[0]", 1, 0, 2)
    assert not any(m._forward_hooks or m._forward_pre_hooks
                   or m._backward_hooks for m in model.modules())
    with NaNLocator(model, raise_on_first=True):
        with pytest.raises(FloatingPointError, match="step 0, forward"):
            model(torch.tensor([[1e39, 1.0]]))


def test_finite_run_records_nothing():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    locator = train(model, optedu.SGD(model.parameters(), lr=0.01),
                    batches(4, -1, None), nn.functional.mse_loss)
    assert locator.first is None and locator.step == 4


def test_bad_arguments():
    with pytest.raises(TypeError, match="not an nn.Module"):
        NaNLocator(object())
    with pytest.raises(TypeError, match="not an Optimizer"):
        NaNLocator(nn.Linear(1, 1), optimizer=object())
    with pytest.raises(ValueError, match="Invalid phase: 'later'"):
        NaNLocator(nn.Linear(1, 1)).check("x", torch.ones(1), phase="later")


def test_a_parameters_gradient_is_checked_before_the_step():
    """A parameter used directly in a forward (no submodule owns it): its
    gradient is infinite, every module's grad_input and grad_output finite, so
    only the optimizer's step pre-hook sees it."""

    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.p = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return x * self.p.sqrt()          # sqrt(0) = 0; d/dp = inf

    model = Scaled()
    optimizer = optedu.SGD(model.parameters(), lr=0.1)
    locator = train(model, optimizer, batches(2, -1, None, dim=1),
                    nn.functional.mse_loss)
    first = locator.first
    assert (first.step, first.phase, first.module, first.tensor) == \
        (0, "backward", "", "grad of p")
    assert first.inf == 1
