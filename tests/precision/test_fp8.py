"""The precision ladder from torch.finfo, per-tensor scaled fp8 casting, delayed
scaling, and the simulated fp8 linear layer."""

import math

import pytest
import torch

from optedu.precision import fp8


def test_ladder_matches_the_formats_bit_layouts():
    rows = {f.name: f for f in fp8.ladder()}
    # (exponent bits, mantissa bits, max, smallest subnormal) by the formats' definitions
    expected = {"float32": (8, 23, (2 - 2**-23) * 2.0**127, 2.0**-149),
                "bfloat16": (8, 7, (2 - 2**-7) * 2.0**127, 2.0**-133),
                "float16": (5, 10, 65504.0, 2.0**-24),
                "float8_e4m3fn": (4, 3, 448.0, 2.0**-9),
                "float8_e5m2": (5, 2, 57344.0, 2.0**-16)}
    assert list(rows) == list(expected)
    for name, (e, m, top, tiny) in expected.items():
        f = rows[name]
        assert (f.exponent_bits, f.mantissa_bits, f.max, f.smallest_subnormal) \
            == (e, m, top, tiny), name
        assert f.eps == 2.0**-m and f.bits == 1 + e + m
        assert math.isclose(f.digits, (m + 1) * math.log10(2))
        dtype = fp8.FORMATS[name]
        # the smallest subnormal is representable; half of it rounds to 0
        assert torch.tensor(tiny).to(dtype).item() == tiny
        assert torch.tensor(tiny / 2).to(dtype).item() == 0.0
    with pytest.raises(ValueError, match="Invalid dtype"):
        fp8.describe(torch.int8)


def test_adams_epsilon_rounds_to_zero_in_fp16():
    assert torch.tensor(1e-8).half().item() == 0.0
    assert torch.tensor(1e-8).bfloat16().item() > 0.0


@pytest.mark.parametrize("dtype", fp8.FP8)
def test_scaled_cast_error_is_within_half_a_spacing(dtype):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4096, generator=gen) * 1e-3
    top = torch.finfo(dtype).max
    s = fp8.scale_for(x.abs().max().item(), dtype)
    assert math.isclose(s * x.abs().max().item(), top, rel_tol=1e-6)
    q = fp8.cast(x, s, dtype)
    assert q.dtype == dtype and q.float().abs().max().item() == top
    x_hat = fp8.quantize(x, dtype)
    normal = (x * s).abs() >= torch.finfo(dtype).smallest_normal
    rel = ((x_hat - x).abs() / x.abs())[normal]
    assert rel.max().item() <= torch.finfo(dtype).eps / 2 + 1e-7
    # unscaled, most of these small values underflow in e4m3fn
    plain = x.to(dtype).float()
    assert fp8.flushed(x, plain) > 0.5 if dtype == torch.float8_e4m3fn else True
    assert fp8.flushed(x, x_hat) < 0.01
    assert fp8.relative_error(x, x_hat) < fp8.relative_error(x, plain)


def test_margin_and_clipping():
    x = torch.tensor([1.0, -2.0, 4.0])
    assert fp8.scale_for(4.0, margin=1) == 448 / 4 / 2
    assert fp8.scale_for(0.0) == 1.0 and fp8.scale_for(float("inf")) == 1.0
    # values beyond the format are clipped, for both formats
    for dtype in fp8.FP8:
        top = torch.finfo(dtype).max
        assert fp8.cast(x * 1e6, 1.0, dtype).float().tolist() == [top, -top, top]
    for bad in (-1, 0.5):
        with pytest.raises(ValueError, match="Invalid margin"):
            fp8.scale_for(1.0, margin=bad)
    with pytest.raises(ValueError, match="Invalid dtype"):
        fp8.cast(x, 1.0, torch.float16)


def test_delayed_scaling_uses_the_history():
    delayed = fp8.DelayedScaling(amax_history_len=2)
    assert delayed.scale == 1.0
    delayed(torch.tensor([2.0]))                       # cast with s = 1
    assert delayed.scale == 448 / 2
    out = delayed(torch.tensor([8.0]))                 # s from amax 2: clipped
    assert out.item() == 2.0
    assert delayed.scale == 448 / 8
    delayed(torch.tensor([1.0]))
    assert delayed.scale == 448 / 8                    # max of (8, 1)
    delayed(torch.tensor([1.0]))
    assert delayed.scale == 448 / 1                    # 8 left the window
    # an amax of 0, inf or nan keeps the previous scale (Transformer Engine's
    # delayed_scaling.cu), it does not reset it to 1
    kept = fp8.DelayedScaling(amax_history_len=1)
    kept(torch.tensor([4.0]))
    for bad in (0.0, float("inf"), float("nan")):
        kept(torch.tensor([bad]))
        assert kept.scale == 448 / 4, bad
    recent = fp8.DelayedScaling(amax_compute_algo="most_recent")
    recent(torch.tensor([8.0]))
    recent(torch.tensor([1.0]))
    assert recent.scale == 448.0
    with pytest.raises(ValueError, match="Invalid amax_compute_algo"):
        fp8.DelayedScaling(amax_compute_algo="mean")
    with pytest.raises(ValueError, match="Invalid amax_history_len"):
        fp8.DelayedScaling(amax_history_len=0)


def test_fp8_linear_equals_the_product_of_the_dequantized_tensors():
    gen = torch.Generator().manual_seed(0)
    x, w, b = (torch.randn(*s, generator=gen) for s in ((5, 6), (3, 6), (3,)))
    y = fp8.fp8_linear(x, w, b)
    assert torch.equal(y, fp8.quantize(x) @ fp8.quantize(w).T + b)
    exact = x @ w.T + b
    assert 0 < fp8.relative_error(exact, y) < 0.1
    assert torch.equal(fp8.rounded_linear(x, w, b, torch.float32), exact)


def test_linears_in_swaps_and_restores_the_forward():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(),
                                torch.nn.Linear(8, 2))
    x = torch.randn(4, 6)
    exact = model(x)
    with fp8.linears_in(model, "float32"):
        assert torch.allclose(model(x), exact, atol=1e-6)
    with fp8.linears_in(model, "float8_e4m3fn"):
        y8 = model(x)
    with fp8.linears_in(model, "bfloat16"):
        y16 = model(x)
    assert fp8.relative_error(exact, y16) < fp8.relative_error(exact, y8)
    assert torch.equal(model(x), exact)
    assert all("forward" not in vars(m) for m in model.modules())
    with pytest.raises(ValueError, match="Invalid fmt"):
        with fp8.linears_in(model, "int8"):
            pass


def test_block_scaling_gives_each_block_its_own_scale():
    """A 1×4 tile of values near 2⁻¹² beside a tile with an outlier of 10⁴: per tensor the
    small tile falls below e4m3fn's range and flushes to 0, per tile it keeps a spacing's
    accuracy; each block equals `quantize` of that block alone."""
    small = torch.full((2, 4), 2.0**-12) * torch.tensor([1.0, 1.25, 1.5, 1.75])
    big = torch.ones(2, 4)
    big[0, 0] = 1e4
    x = torch.cat([small, big], dim=1)
    assert (fp8.quantize(x)[:, :4] == 0).all()
    tiles = fp8.quantize_blocks(x, (1, 4))
    assert torch.equal(tiles[:, :4], small)          # exact: 1.x · 2^k fits 3 bits
    for i in range(2):
        for j in (0, 4):
            assert torch.equal(tiles[i, j:j + 4], fp8.quantize(x[i, j:j + 4]))
    assert torch.equal(fp8.quantize_blocks(x, (2, 8)), fp8.quantize(x))
    for bad in ((3, 4), (1, 3), (0, 4)):
        with pytest.raises(ValueError, match=r"Invalid block value: \(.*\) \(expected a tiling"):
            fp8.quantize_blocks(x, bad)
