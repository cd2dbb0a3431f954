"""optedu.memory.state_bytes against state sizes known from each
optimizer's definition."""

import pytest
import torch

import optedu
from optedu.memory import state_bytes


@pytest.fixture(autouse=True)
def _float32_default():
    """torch stores ``step`` in the default dtype; other test modules change
    the default at import, so each test here starts from float32."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    yield
    torch.set_default_dtype(previous)


def _stepped(make, dtype=torch.float32):
    # 21 weights + 3 biases = 24 elements in 2 tensors
    model = torch.nn.Linear(7, 3).to(dtype)
    opt = make(model.parameters())
    model(torch.randn(5, 7, dtype=dtype)).sum().backward()
    opt.step()
    return opt


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: torch.optim.SGD(p, lr=0.1), {}),
        (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
         {"momentum_buffer": 24 * 4}),
        (lambda p: torch.optim.Adagrad(p), {"sum": 24 * 4, "step": 2 * 4}),
        (lambda p: torch.optim.RMSprop(p),
         {"square_avg": 24 * 4, "step": 2 * 4}),
        (lambda p: torch.optim.Adam(p),
         {"exp_avg": 96, "exp_avg_sq": 96, "step": 8}),
        (lambda p: torch.optim.Adam(p, amsgrad=True),
         {"exp_avg": 96, "exp_avg_sq": 96, "max_exp_avg_sq": 96, "step": 8}),
        (lambda p: optedu.Adam(p),
         {"exp_avg": 96, "exp_avg_sq": 96, "step": 8}),
        (lambda p: optedu.SGD(p, lr=0.1, momentum=0.9),
         {"momentum_buffer": 96}),
    ],
)
def test_state_bytes_per_key(make, expected):
    assert state_bytes(_stepped(make)) == expected


def test_buffers_follow_the_parameter_dtype():
    opt = _stepped(lambda p: torch.optim.Adam(p), dtype=torch.float64)
    assert state_bytes(opt)["exp_avg"] == 24 * 8


@pytest.mark.parametrize("make", [lambda p: torch.optim.Adam(p),
                                  lambda p: optedu.Adam(p)])
def test_step_counter_follows_the_default_dtype(make):
    """float32 buffers, but an 8-byte ``step`` under a float64 default."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        sizes = state_bytes(_stepped(make, dtype=torch.float32))
    finally:
        torch.set_default_dtype(previous)
    assert sizes == {"exp_avg": 96, "exp_avg_sq": 96, "step": 2 * 8}


def test_no_state_before_the_first_step():
    model = torch.nn.Linear(7, 3)
    assert state_bytes(torch.optim.Adam(model.parameters())) == {}
