"""optedu.precision.quantize: the codes against their definitions (and bitsandbytes,
full tier), the round-trip error bound, exact values, idempotence, errors."""

import math

import pytest
import torch
from optimizers import FULL

from optedu.precision.quantize import (no_zero_code, dequantize_blockwise, dynamic_code, error_bound,
                             linear_code, nearest_code, quantize_blockwise)

CODES = {"dynamic": dynamic_code, "no_zero": no_zero_code, "linear": linear_code}
EPS = {torch.float32: 2.0**-24, torch.float64: 2.0**-53}  # unit roundoff


def _code(name, signed):
    return CODES[name](signed)


# --- the codes ---------------------------------------------------------------

def _dynamic_from_paper(signed):
    """Dettmers' dynamic tree in float64: sign, E zero bits (magnitude 10^-E),
    an indicator bit, k fraction bits taking the midpoints of 2^k equal bins
    of [0.1, 1]; the two bytes without an indicator bit are 0 and 1."""
    values = [0.0, 1.0]
    for e in range(7):
        k = 6 - e + (0 if signed else 1)
        for i in range(2**k):
            magnitude = 10.0**-e * (0.1 + 0.9 * (i + 0.5) / 2**k)
            values += [magnitude, -magnitude] if signed else [magnitude]
    return torch.tensor(sorted(values), dtype=torch.float64)


@pytest.mark.parametrize("signed", [True, False])
def test_dynamic_code_is_the_papers(signed):
    code = dynamic_code(signed)
    expected = _dynamic_from_paper(signed)
    assert code.dtype == torch.float32 and code.shape == (256,)
    assert (code[1:] > code[:-1]).all()
    # float32 rounding of linspace, the midpoint and the power of ten: a few ulps
    assert torch.allclose(code.double(), expected, rtol=4 * 2.0**-24, atol=0)
    assert 0.0 in code and 1.0 in code
    assert (-1.0 in code) is False
    if signed:   # lowest value half a top gap (0.9/64) above -1
        assert code[0].item() == pytest.approx(-(1 - 0.9 / 128), rel=1e-7)
        # 2^(6-E) positive values per decade [10^-E / 10, 10^-E]
        for e in range(7):
            inside = ((code > 10.0**-e / 10) & (code < 10.0**-e)).sum().item()
            assert inside == 2 ** (6 - e)


@pytest.mark.parametrize("signed", [True, False])
def test_linear_code_is_k_over_127_or_255(signed):
    code = linear_code(signed)
    ks = torch.arange(-128, 128) if signed else torch.arange(256)
    denominator = 127 if signed else 255
    assert torch.equal(code, (ks.double() / denominator).float())
    assert 0.0 in code and 1.0 in code and (not signed or -1.0 in code)


def test_codes_are_copies():
    code = dynamic_code()
    code[0] = 5.0
    assert dynamic_code()[0] < 0


bnb_functional = None


def _bnb():
    global bnb_functional
    if bnb_functional is None:
        bnb_functional = pytest.importorskip("bitsandbytes.functional")
    return bnb_functional


@pytest.mark.full  # imports bitsandbytes (about 7 s of CPU)
@pytest.mark.parametrize("signed", [True, False])
def test_dynamic_code_equals_bitsandbytes(signed):
    assert torch.equal(dynamic_code(signed), _bnb().create_dynamic_map(signed=signed))


@pytest.mark.full  # imports bitsandbytes (about 7 s of CPU)
def test_linear_code_differs_from_bitsandbytes_as_documented():
    """bitsandbytes' signed linear map: linspace(-1, 1, 255) plus an inserted
    0; its middle linspace value is 3.7e-9, not 0, and it has no -128/127."""
    theirs = _bnb().create_linear_map(signed=True).double()
    ours = linear_code(True).double()
    assert theirs[127] == 0 and 0 < theirs[128] < 1e-8
    assert torch.allclose(theirs[:127], ours[1:128], rtol=0, atol=1e-7)   # -1 .. -1/127
    assert torch.allclose(theirs[129:], ours[129:], rtol=0, atol=1e-7)    # 1/127 .. 1
    assert ours[128] == 0 and ours[0] < -1     # -128/127, never used
    unsigned = _bnb().create_linear_map(signed=False).double()
    assert torch.allclose(unsigned, linear_code(False).double(), rtol=0, atol=1e-7)


# --- the round trip ----------------------------------------------------------

def _tensors(dtype):
    """Random tensors, zeros, a block with one huge outlier, sizes that are not
    multiples of the block, negative extremes."""
    g = torch.Generator().manual_seed(0)
    outlier = torch.randn(1000 if FULL else 300, generator=g, dtype=dtype)
    outlier[3] = 1e6
    yield "normal", torch.randn(5000 if FULL else 600, generator=g, dtype=dtype)
    yield "heavy", torch.randn(3, 700 if FULL else 100, generator=g, dtype=dtype) ** 5
    yield "zeros", torch.zeros(300, dtype=dtype)
    yield "outlier", outlier
    yield "tiny", torch.randn(7, generator=g, dtype=dtype) * 1e-30
    yield "nonneg", torch.rand(1001 if FULL else 201, generator=g, dtype=dtype) ** 8
    yield "one", torch.tensor([-2.5], dtype=dtype)


def _expand(absmax, x, block_size):
    return absmax.repeat_interleave(block_size)[: x.numel()].view(x.shape)


CASES = [(name, signed, block_size)
         for name in CODES for signed in (True, False) for block_size in (1, 64, 256, 2048)]
QUICK = [("dynamic", True, 64), ("dynamic", False, 2048), ("linear", True, 2048),
         ("linear", False, 64), ("no_zero", False, 64)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("name", "signed", "block_size"),
                         CASES if FULL else QUICK)
def test_round_trip_error_bound(dtype, name, signed, block_size):
    r"""|x - x̂| <= a_b (ρ(û) + 2ε) per element (plus ε for this test's own
    subtraction in float64); the index is the argmin over the 256 codes."""
    code = _code(name, signed)
    for label, x in _tensors(dtype):
        indices, absmax = quantize_blockwise(x, code, block_size)
        assert indices.dtype == torch.uint8 and indices.shape == x.shape
        assert absmax.dtype == dtype
        assert absmax.shape == (math.ceil(x.numel() / block_size),)
        a = _expand(absmax, x, block_size)
        expected = torch.stack([c.abs().max() for c in x.reshape(-1).split(block_size)])
        assert torch.equal(absmax, expected)
        x_hat = dequantize_blockwise(indices, absmax, code, block_size)
        assert x_hat.dtype == dtype and x_hat.shape == x.shape
        u_hat = x / torch.where(a > 0, a, torch.ones_like(a))     # the working û
        brute = (u_hat.double().unsqueeze(-1) - code.double()).abs().argmin(-1)
        assert torch.equal(indices.long(), brute), label
        bound = a.double() * (error_bound(u_hat, code) + 3 * EPS[dtype])
        error = (x.double() - x_hat.double()).abs()
        assert (error <= bound).all(), (label, (error - bound).max().item())


def test_error_bound_values():
    """ρ's largest value on [-1, 1] (signed) or [0, 1] (unsigned) per code:
    half the largest gap, or the distance from -1 to the lowest value."""
    def points(code, low):   # ρ peaks at a midpoint or at an end of [low, 1]
        c = code.double()
        u = torch.cat([(c[:-1] + c[1:]) / 2, torch.tensor([low, 1.0], dtype=torch.float64)])
        return u[(u >= low) & (u <= 1)]

    worst = {(n, s): error_bound(points(_code(n, s), -1.0 if s else 0.0), _code(n, s)).max().item()
             for n in ("dynamic", "linear") for s in (True, False)}
    # float32 code values: within an ulp of 1 (6e-8)
    assert worst[("linear", True)] == pytest.approx(1 / 254, abs=1e-7)
    assert worst[("linear", False)] == pytest.approx(1 / 510, abs=1e-7)
    assert worst[("dynamic", True)] == pytest.approx(0.9 / 128, abs=1e-7)
    assert worst[("dynamic", False)] == pytest.approx(0.9 / 256, abs=1e-7)
    # ρ is the distance to the nearest code: checked against brute force
    code = dynamic_code(True)
    u_signed = torch.linspace(-1, 1, 4001, dtype=torch.float64)
    nearest = (u_signed.unsqueeze(-1) - code.double()).abs().min(-1).values
    assert (nearest <= error_bound(u_signed, code)).all()


@pytest.mark.parametrize(("name", "signed"), [(n, s) for n in CODES for s in (True, False)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_zero_and_absmax_exact(name, signed, dtype):
    code = _code(name, signed)
    x = torch.tensor([0.0, 0.5, 3.0, -0.25, 0.0, 0.0, 0.0, 0.0, 7.0, 0.0, -7.0, 1.0],
                     dtype=dtype)
    if not signed:
        x = x.abs()
    indices, absmax = quantize_blockwise(x, code, 4)
    x_hat = dequantize_blockwise(indices, absmax, code, 4)
    assert torch.equal(absmax, torch.tensor([3.0, 0.0, 7.0], dtype=dtype))
    if name == "no_zero" and not signed:    # no 0 in the code: c_1 a_b
        assert torch.equal(x_hat[x == 0], code[1].to(dtype) * absmax.repeat_interleave(4)[x == 0])
    else:
        assert (x_hat[x == 0] == 0).all()                        # 0 exact
    assert x_hat[2] == 3 and x_hat[8] == 7                       # +a_b exact
    if signed and name == "linear":
        assert x_hat[10] == -7                                   # -a_b exact
    if signed and name != "linear":    # no -1 in the code: c_0 a_b
        assert x_hat[10] == code[0].to(dtype) * 7


@pytest.mark.parametrize(("name", "signed"), [(n, s) for n in CODES for s in (True, False)])
def test_requantising_is_idempotent(name, signed):
    """q(d(q(x))) = q(x) when each block's largest |x| maps to ±1 (always,
    unless the signed dynamic code meets a negative extreme: then the
    block shrinks by |c_0| on every round trip)."""
    code = _code(name, signed)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4000, generator=g)
    x = x.abs() if not signed else x
    blocks = x.view(-1, 100)
    if name != "linear":    # make each block's extreme positive (no -1 in the code)
        blocks[:, 0] = blocks.abs().amax(dim=1) * 1.5
    indices, absmax = quantize_blockwise(x, code, 100)
    again = quantize_blockwise(dequantize_blockwise(indices, absmax, code, 100), code, 100)
    assert torch.equal(again[0], indices) and torch.equal(again[1], absmax)


def test_no_zero_code():
    """The unsigned dynamic code with -1 in place of 0: a positive v never
    rounds to 0; the signed code is the dynamic code."""
    assert torch.equal(no_zero_code(True), dynamic_code(True))
    code = no_zero_code(False)
    assert code[0] == -1 and torch.equal(code[1:], dynamic_code(False)[1:])
    v = torch.tensor([1.0, 1e-9, 1e-12, 0.0])
    indices, absmax = quantize_blockwise(v, code, 4)
    assert torch.equal(indices, torch.tensor([255, 1, 1, 1], dtype=torch.uint8))
    plain = quantize_blockwise(v, dynamic_code(False), 4)[0]
    assert torch.equal(plain, torch.tensor([255, 0, 0, 0], dtype=torch.uint8))


def test_negative_extreme_shrinks_with_the_signed_dynamic_code():
    code = dynamic_code(True)
    x = torch.tensor([-2.0, 1.0, 0.5, -0.1])
    x_hat = x
    for _ in range(3):
        x_hat = dequantize_blockwise(*quantize_blockwise(x_hat, code, 4), code, 4)
    assert x_hat[0].item() == pytest.approx(-2.0 * 0.99296875**3, rel=1e-6)


@pytest.mark.parametrize("name", ["dynamic", "linear"])
def test_an_outlier_coarsens_its_own_block_only(name):
    """Quantising the whole tensor equals quantising each block alone. In the
    outlier's block the linear code sends every other element to 0; the
    dynamic code keeps them, at a coarser relative resolution."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1000, generator=g)
    x[10] = 1e4
    code = _code(name, True)
    indices, absmax = quantize_blockwise(x, code, 256)
    for b, part in enumerate(x.split(256)):
        i, a = quantize_blockwise(part, code, 256)
        assert torch.equal(i, indices[256 * b: 256 * (b + 1)]) and a == absmax[b]
    x_hat = dequantize_blockwise(indices, absmax, code, 256)
    others = torch.ones(256, dtype=torch.bool)
    others[10] = False
    relative = (x_hat - x).abs() / x.abs()
    if name == "linear":    # |x| < 1e4 / 254: all rounded to 0
        assert (x_hat[:256][others] == 0).all()
    else:                   # measured medians 13% and 1.3%
        assert (x_hat[:256][others] != 0).all()
        assert relative[:256][others].median() > 5 * relative[256:].median()


def test_nearest_code_ties_go_down():
    code = linear_code(False)
    middle = (code[:-1].double() + code[1:].double()) / 2
    assert torch.equal(nearest_code(middle, code), torch.arange(255))


def test_bfloat16_works_in_float32():
    x = torch.randn(300).to(torch.bfloat16)
    indices, absmax = quantize_blockwise(x, dynamic_code(), 64)
    assert absmax.dtype == torch.float32
    expected = quantize_blockwise(x.float(), dynamic_code(), 64)
    assert torch.equal(indices, expected[0]) and torch.equal(absmax, expected[1])


@pytest.mark.parametrize(("call", "message"), [
    (lambda: quantize_blockwise(torch.ones(3), torch.zeros(255)),
     r"Invalid code value: \(255,\) \(expected a tensor of 256 values\)"),
    (lambda: quantize_blockwise(torch.ones(3), dynamic_code().flip(0)),
     r"Invalid code value: unsorted or non-finite"),
    (lambda: quantize_blockwise(torch.ones(3), [0.0] * 256),
     r"Invalid code value: list"),
    (lambda: quantize_blockwise(torch.ones(3), dynamic_code(), 0),
     r"Invalid block_size value: 0 \(expected an integer >= 1\)"),
    (lambda: dequantize_blockwise(torch.zeros(3, dtype=torch.uint8), torch.ones(2),
                                  dynamic_code(), 2048),
     r"Invalid absmax value: \(2,\) \(expected one value per block of 2048 elements\)"),
])
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- bitsandbytes' CPU kernels (full tier) ----------------------------------

@pytest.mark.full  # imports bitsandbytes (about 7 s of CPU)
@pytest.mark.parametrize("block_size", [64, 256, 2048])
def test_quantize_against_bitsandbytes(block_size):
    """Same absmax and same dequantisation, bit for bit; the same index for
    all but a few elements, where bitsandbytes' approximate search picked
    the other neighbour and optedu's choice is the nearer one."""
    F = _bnb()
    g = torch.Generator().manual_seed(3)
    x = torch.randn(10007, generator=g)
    x[5] = -40.0
    code = dynamic_code(True)
    indices, absmax = quantize_blockwise(x, code, block_size)
    theirs, qstate = F.quantize_blockwise(x, code=code.clone(), blocksize=block_size)
    assert torch.equal(absmax, qstate.absmax)
    assert torch.equal(dequantize_blockwise(indices, absmax, code, block_size),
                       F.dequantize_blockwise(indices, qstate))
    differ = indices != theirs
    assert differ.float().mean() < 0.01
    assert ((indices.long() - theirs.long())[differ].abs() == 1).all()
    u = (x / _expand(absmax, x, block_size))[differ].double()
    ours_d = (u - code.double()[indices[differ].long()]).abs()
    theirs_d = (u - code.double()[theirs[differ].long()]).abs()
    assert (ours_d <= theirs_d).all()


@pytest.mark.full  # imports bitsandbytes (about 7 s of CPU)
def test_bitsandbytes_cpu_search_keeps_small_v_off_zero():
    """bitsandbytes 0.50.2's CPU search sends every u below about 2e-5 of the
    unsigned dynamic code, 0 included, to index 7 (1.5625e-5); optedu rounds
    to the nearest value (0 for u below 1.6e-7)."""
    code = dynamic_code(False)
    u = torch.tensor([1.0, 0.0, 1e-9, 1e-7, 1e-6, 6e-6, 1.2e-5])
    theirs, _ = _bnb().quantize_blockwise(u, code=code.clone(), blocksize=64)
    assert theirs[1:].tolist() == [7] * 6
    ours, _ = quantize_blockwise(u, code, 64)
    assert ours[1:].tolist() == [0, 0, 0, 2, 5, 6]
    assert code[7].item() == pytest.approx(1.5625e-5, rel=1e-6)
