"""optedu.CAME against the authors' came-pytorch 0.1.3 (``came_pytorch.CAME``): bit for bit
over every option in float32 and float64, one and two groups, on the harness's matrices
(factored path) and vectors (full second moment, no confidence), a 3-D tensor and float16 and
bfloat16 weights; every state entry (its Python ``step`` and its ``RMS`` included) equal;
checkpoints both ways; the clip and the confidence shown to act on the problem; bad
arguments refused by name."""

from __future__ import annotations


import came_pytorch
import pytest
import torch

import optedu
from optedu.optim.came import came, rms
from optimizers import FULL
import reference_harness as harness

KEYS_MATRIX = ["step", "exp_avg", "exp_avg_sq_row", "exp_avg_sq_col", "exp_avg_res_row",
               "exp_avg_res_col", "RMS"]
KEYS_VECTOR = ["step", "exp_avg", "exp_avg_sq", "RMS"]
OPTIONS = dict(lr=[1e-2, 0.3], eps=[(1e-30, 1e-16), (1e-3, 1e-5)],
               clip_threshold=[1.0, 0.5], betas=[(0.9, 0.999, 0.9999), (0.8, 0.99, 0.999)],
               weight_decay=[0.0, 0.1])
SECOND = {"lr": 0.05, "betas": (0.5, 0.9, 0.95), "eps": (1e-20, 1e-8),
          "clip_threshold": 2.0, "weight_decay": 0.3}


def _same_state(ours, theirs) -> None:
    assert len(ours.state) == len(theirs.state)
    for p, q in zip(ours.state, theirs.state):
        a, b = ours.state[p], theirs.state[q]
        assert list(a) == list(b) == (KEYS_MATRIX if p.dim() > 1 else KEYS_VECTOR)
        for key in a:
            if isinstance(b[key], torch.Tensor):
                assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key
            else:
                assert type(a[key]) is type(b[key]) and a[key] == b[key], key
    for g, h in zip(ours.param_groups, theirs.param_groups):
        assert {k: v for k, v in g.items() if k != "params"} == \
            {k: v for k, v in h.items() if k != "params"}


def _cases():
    return harness.cases(OPTIONS, every=7, full=FULL)


def _ours(**kwargs):
    return lambda g: optedu.CAME(g, **kwargs)


def _theirs(**kwargs):
    return lambda g: came_pytorch.CAME(g, **kwargs)


@pytest.mark.parametrize(("options", "dtype", "two"), _cases(),
                         ids=lambda x: str(x).replace("torch.", ""))
def test_bit_identical_to_came_pytorch(options, dtype, two):
    """25 steps on two matrices and two vectors: parameters and every state entry
    identical bit for bit (the 128 cases of the full tier; every 7th in the quick one)."""
    a, ours = harness.run(_ours(**options), dtype, two, SECOND)
    b, theirs = harness.run(_theirs(**options), dtype, two, SECOND)
    assert harness.same(a, b)
    _same_state(ours, theirs)
    assert not harness.same(a, harness.params(dtype))


def _tensor_run(make, shape, dtype, steps=20):
    gen = torch.Generator().manual_seed(5)
    p = torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype).requires_grad_()
    opt = make([p])
    for t in range(steps):
        g = torch.randn(shape, generator=gen, dtype=torch.float64) * (0.1 + t % 3)
        p.grad = torch.zeros_like(p) if t == 7 else g.to(dtype)   # a step of zero gradients
        opt.step()
    return p, opt


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(2, 3, 4), (1, 6), (6, 1)])
def test_three_dimensions_and_thin_matrices(shape, dtype):
    """A 3-D tensor (factored over its last two dimensions, the first kept) and matrices of
    one row or one column, with a step of zero gradients: bit for bit."""
    kwargs = dict(lr=0.05, weight_decay=0.1, clip_threshold=0.7)
    a, ours = _tensor_run(_ours(**kwargs), shape, dtype)
    b, theirs = _tensor_run(_theirs(**kwargs), shape, dtype)
    assert torch.equal(a, b)
    _same_state(ours, theirs)
    assert ours.state[a]["exp_avg_sq_row"].shape == shape[:-1]
    assert ours.state[a]["exp_avg_sq_col"].shape == shape[:-2] + shape[-1:]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_weights_step_in_float32(dtype):
    """float16 and bfloat16 weights: the gradient and the state in float32, the weights and
    their ``RMS`` in their own dtype, as the authors' code keeps them; bit for bit."""
    a, ours = harness.run(_ours(lr=0.01), dtype, True, SECOND)
    b, theirs = harness.run(_theirs(lr=0.01), dtype, True, SECOND)
    assert harness.same(a, b)
    _same_state(ours, theirs)
    state = ours.state[a[0]]
    assert state["exp_avg"].dtype == torch.float32 and state["RMS"].dtype == dtype


def test_the_clip_and_the_confidence_act_on_this_problem():
    """The runs above would test neither the clip nor the confidence if they were idle:
    on the harness's problem at the defaults the RMS of u_t passes d = 1 on every step of
    both matrices (50 of 50: without bias correction r_t and c_t start near (1-β₂)G², so
    u_t starts near 1/√(1-β₂) ≈ 32), and the confidence lengthens the matrices' steps
    against the momentum alone (measured: RMS of the step over RMS of η m_t, 112 at step 1
    and 20 at step 25; the bound asserted, 10)."""
    ps = harness.params()
    opt = optedu.CAME(ps, lr=0.01)
    clipped = ratios = 0
    for t in range(harness.STEPS):
        opt.zero_grad()
        harness.loss(ps, t).backward()
        for p in ps[::2]:                                   # the matrices
            state = opt.state.get(p)
            row = torch.zeros(p.shape[:-1], dtype=p.dtype) if state is None \
                else state["exp_avg_sq_row"]
            col = torch.zeros(p.shape[-1:], dtype=p.dtype) if state is None \
                else state["exp_avg_sq_col"]
            g2 = p.grad**2 + 1e-30
            row = 0.999 * row + 0.001 * g2.mean(dim=-1)
            col = 0.999 * col + 0.001 * g2.mean(dim=-2)
            u = p.grad * ((row / row.mean()).rsqrt()[:, None] * col.rsqrt()[None, :])
            clipped += bool(rms(u) > 1)
        before = [p.detach().clone() for p in ps]
        opt.step()
        moved = rms(ps[0].detach() - before[0]) / rms(0.01 * opt.state[ps[0]]["exp_avg"])
        ratios = max(ratios, float(moved))
    assert clipped == 2 * harness.STEPS
    assert ratios > 10


def test_first_step_by_hand():
    """Step 1 at the defaults on a rank-one gradient: the factored estimates are exact, so
    û = clip(G/|G|) elementwise, m₁ = (1-β₁)û, Ŝ₁ = (1-β₃)β₁²û² (ε's negligible), and every
    weight moves by η(1-β₁)/(β₁√(1-β₃)) = η/0.09 ≈ 11.1η against û's sign; a vector moves
    by η(1-β₁)û."""
    theta = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    theta.grad = torch.outer(torch.tensor([1.0, -2.0]), torch.tensor([3.0, 1.0, -0.5])).double()
    bias.grad = torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64)
    optedu.CAME([theta, bias], lr=0.01).step()
    expected = -0.01 * 0.1 / (0.9 * 0.0001**0.5) * theta.grad.sign()
    torch.testing.assert_close(theta.detach(), expected, rtol=1e-9, atol=0)
    u = bias.grad / (0.001 * bias.grad**2 + 1e-30).sqrt()            # ±√1000
    u = u / max(1.0, float(rms(u)))                                  # clipped to RMS 1
    torch.testing.assert_close(bias.detach(), -0.01 * 0.1 * u, rtol=1e-12, atol=0)


def test_the_function_is_the_class():
    """optedu.came on a matrix and a vector, called by hand, equals the class's step."""
    ps = harness.params()
    opt = optedu.CAME(ps, lr=0.02, weight_decay=0.1)
    harness.loss(ps, 0).backward()
    copies = [p.detach().clone() for p in ps]
    opt.step()
    for p, q in zip(copies, ps):
        z = torch.zeros
        rows = dict(exp_avg_sq=None, exp_avg_sq_row=z(p.shape[:-1], dtype=p.dtype),
                    exp_avg_sq_col=z(p.shape[-1:], dtype=p.dtype),
                    exp_avg_res_row=z(p.shape[:-1], dtype=p.dtype),
                    exp_avg_res_col=z(p.shape[-1:], dtype=p.dtype)) if p.dim() > 1 else \
            dict(exp_avg_sq=torch.zeros_like(p), exp_avg_sq_row=None, exp_avg_sq_col=None,
                 exp_avg_res_row=None, exp_avg_res_col=None)
        came(p, q.grad, torch.zeros_like(p), **rows, lr=0.02, beta1=0.9, beta2=0.999,
             beta3=0.9999, eps1=1e-30, eps2=1e-16, clip_threshold=1.0, weight_decay=0.1)
        assert torch.equal(p, q.detach())


def test_defaults_and_arguments_match_came_pytorch():
    import inspect
    ours = inspect.signature(optedu.CAME).parameters
    theirs = inspect.signature(came_pytorch.CAME).parameters
    assert list(ours) == list(theirs)
    assert all(ours[k].default == theirs[k].default for k in ours if k != "params")
    assert optedu.CAME(harness.params(), lr=0.01).defaults == \
        came_pytorch.CAME(harness.params(), lr=0.01).defaults


def test_checkpoints_move_both_ways():
    """10 steps in one implementation, its state_dict loaded into the other, 15 more: the
    same numbers as 25 steps in came-pytorch."""
    harness.checkpoints_move_both_ways(_ours(lr=0.01), _theirs(lr=0.01), SECOND)


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(), "Invalid learning rate: None (expected a number > 0)"),
    (dict(lr=0.0), "Invalid learning rate: 0.0 (expected a number > 0)"),
    (dict(lr=-1.0), "Invalid learning rate: -1.0 (expected a number > 0)"),
    (dict(lr=0.1, betas=(0.9, 0.999)), "Invalid betas value: (0.9, 0.999) (expected three values)"),
    (dict(lr=0.1, betas=(0.9, 1.0, 0.9999)), "Invalid beta parameter at index 1: 1.0"),
    (dict(lr=0.1, betas=(0.9, 0.999, -0.1)), "Invalid beta parameter at index 2: -0.1"),
    (dict(lr=0.1, eps=1e-30), "Invalid epsilon value: 1e-30 (expected two numbers >= 0)"),
    (dict(lr=0.1, eps=(1e-30, -1.0)),
     "Invalid epsilon value: (1e-30, -1.0) (expected two numbers >= 0)"),
    (dict(lr=0.1, clip_threshold=0.0),
     "Invalid clip_threshold value: 0.0 (expected a number > 0)"),
    (dict(lr=0.1, weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
])
def test_bad_arguments_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError) as error:
        optedu.CAME(harness.params(), **kwargs)
    assert str(error.value) == message


def test_complex_and_sparse_are_refused():
    p = torch.zeros(2, dtype=torch.complex64, requires_grad=True)
    p.grad = torch.ones_like(p)
    with pytest.raises(RuntimeError, match="CAME does not support complex"):
        optedu.CAME([p], lr=0.1).step()
    q = torch.zeros(3, requires_grad=True)
    q.grad = torch.ones(3).to_sparse()
    with pytest.raises(RuntimeError, match="CAME does not support sparse gradients"):
        optedu.CAME([q], lr=0.1).step()
