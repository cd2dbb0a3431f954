"""optedu.training.clip against torch.nn.utils (torch 2.13): same norms, same clipped gradients, same errors."""

import math
import warnings

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.nn import utils as tu

from optedu.training.clip import clip_grad_norm_, clip_grad_value_, clip_grads_with_norm_, get_total_norm

NORM_TYPES = [-math.inf, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.5, math.inf, "inf"]
DTYPES = {"f32": [torch.float32] * 3, "f64": [torch.float64] * 3,
          "mixed": [torch.float32, torch.float64, torch.float32, torch.float64]}
SHAPES = [(4, 3), (5,), (2, 2, 2), (1,)]


def make_params(dtypes, seed=0, scale=1.0):
    """Tensors of several shapes and gradient scales (1e-1 .. 1e2), plus one whose grad is None."""
    gen = torch.Generator().manual_seed(seed)
    params = []
    for i, dtype in enumerate(dtypes):
        shape = SHAPES[i % len(SHAPES)]
        p = torch.zeros(shape, dtype=dtype, requires_grad=True)
        grad = torch.randn(shape, generator=gen, dtype=torch.float64) * scale * 10.0 ** (i - 1)
        p.grad = grad.to(dtype)
        params.append(p)
    params.append(torch.zeros(3, requires_grad=True))   # grad None: skipped
    return params


def grads_equal(a, b):
    return all((x.grad is None and y.grad is None) or torch.equal(x.grad, y.grad)
               for x, y in zip(a, b))


@pytest.mark.parametrize("dtypes", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("norm_type", NORM_TYPES, ids=str)
@pytest.mark.parametrize("max_norm", [1e-3, 1.0, 1e6, 0.0, -1.0])
def test_clip_grad_norm_equals_torch_bit_for_bit(dtypes, norm_type, max_norm):
    ours, theirs = make_params(dtypes), make_params(dtypes)
    n_ours = clip_grad_norm_(ours, max_norm, norm_type)
    n_theirs = tu.clip_grad_norm_(theirs, max_norm, norm_type)
    assert n_ours.dtype == n_theirs.dtype
    assert torch.equal(n_ours, n_theirs)
    assert grads_equal(ours, theirs)
    assert ours[-1].grad is None


@pytest.mark.parametrize("norm_type", NORM_TYPES, ids=str)
def test_get_total_norm_and_clip_with_norm_equal_torch(norm_type):
    ours, theirs = make_params(DTYPES["mixed"]), make_params(DTYPES["mixed"])
    grads = [p.grad for p in ours if p.grad is not None]
    n_ours = get_total_norm(grads, norm_type)
    n_theirs = tu.get_total_norm([p.grad for p in theirs if p.grad is not None], norm_type)
    assert torch.equal(n_ours, n_theirs)
    clip_grads_with_norm_(ours, 0.5, n_ours)
    tu.clip_grads_with_norm_(theirs, 0.5, n_theirs)
    assert grads_equal(ours, theirs)


def test_returns_norm_before_clipping_and_clips_to_max_norm():
    p = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    p.grad = torch.tensor([3.0, 4.0, 0.0], dtype=torch.float64)
    total = clip_grad_norm_(p, 1.0)                      # single tensor input
    assert total.item() == 5.0                           # before clipping
    c = 1.0 / (5.0 + 1e-6)
    assert torch.allclose(p.grad, torch.tensor([3 * c, 4 * c, 0.0], dtype=torch.float64),
                          rtol=0, atol=1e-15)
    assert get_total_norm(p.grad).item() < 1.0           # N c = 5 / (5 + 1e-6) < 1


def test_below_threshold_is_unchanged_and_exact_threshold_shrinks_by_eps():
    p = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    p.grad = torch.tensor([0.3, 0.4], dtype=torch.float64)
    clip_grad_norm_([p], 2.0)
    assert p.grad.tolist() == [0.3, 0.4]                 # c clamped to 1
    p.grad = torch.tensor([0.3, 0.4], dtype=torch.float64)
    clip_grad_norm_([p], 0.5)                            # N = τ: c = 0.5 / 0.500001
    assert p.grad[0].item() == pytest.approx(0.3 * 0.5 / 0.500001, rel=1e-14)


def test_norm_zero_counts_tensors_not_entries():
    a, b = torch.zeros(3, requires_grad=True), torch.zeros(2, requires_grad=True)
    a.grad, b.grad = torch.tensor([1.0, 2.0, 0.0]), torch.tensor([5.0, 6.0])
    # per-tensor ‖·‖₀ = (2, 2); their ‖·‖₀ = 2, not the 4 non-zeros of the concatenation
    assert get_total_norm([a.grad, b.grad], 0).item() == 2.0


def test_negative_max_norm_flips_gradients_like_torch():
    p = torch.zeros(2, requires_grad=True)
    p.grad = torch.tensor([3.0, 4.0])
    clip_grad_norm_(p, -1.0)
    assert torch.allclose(p.grad, torch.tensor([-0.6, -0.8]), atol=1e-6)


def test_no_gradients_returns_zero_and_empty_generator_warns():
    p = torch.zeros(2, requires_grad=True)
    assert torch.equal(clip_grad_norm_([p], 1.0), torch.tensor(0.0))
    assert torch.equal(clip_grad_norm_([], 1.0), torch.tensor(0.0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clip_grad_norm_((q for q in []), 1.0)
    assert [str(w.message) for w in caught] == [
        "`parameters` is an empty generator, no gradient clipping will occur."]
    assert caught[0].filename == __file__


def test_generator_of_parameters_is_clipped():
    ours, theirs = make_params(DTYPES["f64"]), make_params(DTYPES["f64"])
    n_ours = clip_grad_norm_((p for p in ours), 0.1)
    n_theirs = tu.clip_grad_norm_((p for p in theirs), 0.1)
    assert torch.equal(n_ours, n_theirs) and grads_equal(ours, theirs)


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
@pytest.mark.parametrize("norm_type", [1.0, 2.0, math.inf])
def test_error_if_nonfinite_message_is_torchs(bad, norm_type):
    messages = []
    for fn in (clip_grad_norm_, tu.clip_grad_norm_):
        params = make_params(DTYPES["f32"])
        params[0].grad[0, 0] = bad
        with pytest.raises(RuntimeError) as raised:
            fn(params, 1.0, norm_type, error_if_nonfinite=True)
        messages.append(str(raised.value))
    assert messages[0] == messages[1]
    assert messages[0].startswith(f"The total norm of order {float(norm_type)} for gradients")


@pytest.mark.parametrize("bad", [math.inf, math.nan])
def test_nonfinite_without_error_scales_like_torch(bad):
    ours, theirs = make_params(DTYPES["f32"]), make_params(DTYPES["f32"])
    ours[0].grad[0, 0] = bad
    theirs[0].grad[0, 0] = bad
    n_ours, n_theirs = clip_grad_norm_(ours, 1.0), tu.clip_grad_norm_(theirs, 1.0)
    assert torch.equal(n_ours.isnan(), n_theirs.isnan()) and torch.equal(n_ours.isinf(), n_theirs.isinf())
    for a, b in zip(ours, theirs):
        if a.grad is not None:
            assert torch.equal(a.grad.isnan(), b.grad.isnan())
            assert torch.equal(a.grad.nan_to_num(), b.grad.nan_to_num())


@pytest.mark.parametrize("dtypes", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("clip_value", [0.05, 1.0, 0.0, -0.5, 1e9])
def test_clip_grad_value_equals_torch(dtypes, clip_value):
    ours, theirs = make_params(dtypes), make_params(dtypes)
    assert clip_grad_value_(ours, clip_value) is None
    tu.clip_grad_value_(theirs, clip_value)
    assert grads_equal(ours, theirs)


def test_clip_grad_value_by_hand():
    p = torch.zeros(4, requires_grad=True)
    p.grad = torch.tensor([-3.0, -0.5, 0.25, 2.0])
    clip_grad_value_(p, 1.0)
    assert p.grad.tolist() == [-1.0, -0.5, 0.25, 1.0]


@given(max_norm=st.floats(1e-6, 1e6),
       norm_type=st.one_of(st.floats(0.25, 8.0), st.sampled_from([math.inf, -math.inf, 1.0, 2.0])),
       scale=st.floats(1e-4, 1e4), seed=st.integers(0, 2**16))
def test_property_equal_to_torch_and_norm_bounded(max_norm, norm_type, scale, seed):
    ours = make_params(DTYPES["f64"], seed=seed, scale=scale)
    theirs = make_params(DTYPES["f64"], seed=seed, scale=scale)
    before = [p.grad.clone() for p in ours[:-1]]
    n_ours = clip_grad_norm_(ours, max_norm, norm_type)
    n_theirs = tu.clip_grad_norm_(theirs, max_norm, norm_type)
    assert torch.equal(n_ours, n_theirs) and grads_equal(ours, theirs)
    after = get_total_norm([p.grad for p in ours[:-1]], norm_type).item()
    # clipped: N c = τ N / (N + 1e-6) < τ; not clipped (c = 1): the norm is unchanged
    assert after <= max_norm * (1 + 1e-12) or after == pytest.approx(n_ours.item(), rel=1e-12)
    # direction kept: every block scaled by the same c in [0, 1]
    c = min(max_norm / (n_ours.item() + 1e-6), 1.0)
    for b, p in zip(before, ours[:-1]):
        assert torch.allclose(p.grad, c * b, rtol=1e-12, atol=0)
