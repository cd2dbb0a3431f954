r"""Block-wise 8-bit quantisation: the storage format of 8-bit optimizer state.

A tensor :math:`x` is flattened and cut into blocks of ``block_size``
elements (the last block padded with zeros). Each block :math:`b` keeps one
scale, its absolute maximum :math:`a_b = \max_{i \in b} |x_i|`, and each
element keeps one byte: the index :math:`q_i` of the entry of a 256-entry
*code* :math:`c_0 < c_1 < \dots < c_{255}` nearest to :math:`x_i / a_b`:

.. math::

    u_i = x_i / a_b \in [-1, 1], \qquad
    q_i = \arg\min_k |u_i - c_k|, \qquad
    \hat x_i = c_{q_i}\, a_b .

Dettmers, Lewis, Shleifer & Zettlemoyer, *8-bit Optimizers via Block-wise
Quantization* (ICLR 2022), store Adam's two moments this way; one outlier
then spoils the resolution of its own block only.

**Error bound.** If :math:`c_j \le u \le c_{j+1}`, the nearer of the two ends
is within half the gap, so the nearest code satisfies

.. math::

    |u - c_q| \le \rho(u) =
    \begin{cases}
    (c_{j+1} - c_j)/2 & c_j \le u \le c_{j+1} \\
    c_0 - u & u < c_0 \\
    u - c_{255} & u > c_{255}
    \end{cases}
    \qquad\Longrightarrow\qquad |x_i - \hat x_i| \le a_b\, \rho(u_i).

In floating point (unit roundoff :math:`\varepsilon` of the working dtype)
:math:`\hat u = \mathrm{fl}(x/a_b)` and :math:`\hat x = \mathrm{fl}(c_q a_b)`
each round once, and the rounding to the code is exact (the midpoints
between float32 code values are exact in float64), so
:math:`|x - \hat x| \le |x - a_b \hat u| + a_b |\hat u - c_q| +
|c_q a_b - \hat x| \le a_b(\rho(\hat u) + 2\varepsilon)`. Since
:math:`x/x = 1` exactly, an element equal to :math:`\pm a_b` comes back
exactly when the code holds :math:`\pm 1`, and 0 comes back exactly when the
code holds 0.

Codes: :func:`dynamic_code` (Dettmers' dynamic tree, exactly as
bitsandbytes builds it), :func:`no_zero_code` (the same without 0 for an
unsigned moment) and :func:`linear_code` (evenly spaced). The working dtype
is the input's, promoted to at least float32; ``absmax`` is kept in it
(float32 for float32 tensors, as bitsandbytes; float64 for float64 ones). A
block of zeros has :math:`a_b = 0`; it is divided by 1 instead.
"""

from __future__ import annotations

import functools

import torch

from optedu.optim._validation import check_integer, invalid

CODE_SIZE = 256


@functools.lru_cache(maxsize=None)
def _dynamic_code(signed: bool) -> torch.Tensor:
    values = [0.0, 1.0]     # the two patterns without an indicator bit
    for zeros in range(7):  # E leading zeros: magnitude 10^-E
        # bits after the indicator: 6 - E (one more without a sign bit)
        bits = 6 - zeros + (0 if signed else 1)
        edges = torch.linspace(0.1, 1, 2**bits + 1, dtype=torch.float32)
        fractions = (edges[:-1] + edges[1:]) / 2.0   # bin midpoints
        magnitudes = (10.0**-zeros * fractions).tolist()
        values += magnitudes + ([-m for m in magnitudes] if signed else [])
    return torch.tensor(sorted(values), dtype=torch.float32)


def dynamic_code(signed: bool = True) -> torch.Tensor:
    r"""The dynamic tree code (Dettmers, *8-Bit Approximations for
    Parallelism in Deep Learning*, ICLR 2016; Dettmers et al., ICLR 2022),
    256 sorted float32 values.

    A byte is read as: a sign bit (signed code only); :math:`E` zero bits,
    the exponent, giving the magnitude :math:`10^{-E}`, :math:`E = 0..6`;
    an indicator bit 1; the remaining bits a linear fraction in
    :math:`[0.1, 1]`. With :math:`k` fraction bits the fraction takes the
    midpoints of :math:`2^k` equal bins of :math:`[0.1, 1]`:

    .. math::

        c = \pm 10^{-E} \Big(0.1 + \frac{0.9\,(i + 1/2)}{2^k}\Big),
        \qquad i = 0..2^k - 1, \quad k = 6 - E\ (\text{signed}),\
        7 - E\ (\text{unsigned}).

    Large exponents (small numbers) spend their bits on the exponent, small
    ones on the fraction: the relative resolution is coarse near
    :math:`10^{-6}` and fine near 1. The two bytes that have no indicator
    bit encode 0 and 1. So the signed code holds 0 and :math:`+1` but not
    :math:`-1`: its lowest value is :math:`-0.99296875`, half a top gap
    from :math:`-1` (bitsandbytes' ``create_dynamic_map``, which
    :func:`dynamic_code` reproduces value for value).
    """
    return _dynamic_code(bool(signed)).clone()


def no_zero_code(signed: bool = True) -> torch.Tensor:
    r"""The dynamic code for a second moment that must not round to 0.

    Signed: :func:`dynamic_code` unchanged. Unsigned: :func:`dynamic_code`
    with its 0 replaced by :math:`-1`, a value never nearest to a
    :math:`u \ge 0`; so a positive :math:`v` never comes back as 0 (the
    smallest value left is :math:`3.25 \cdot 10^{-7}`), and 0 comes back
    as :math:`3.25 \cdot 10^{-7} a_b`. Adam divides by
    :math:`\sqrt{\hat v} + \epsilon`: a :math:`v` rounded to 0 under a
    non-zero :math:`m` makes a step of :math:`\eta\,\hat m/\epsilon`.
    (bitsandbytes 0.50.2's CPU kernel does not round small :math:`v` to 0
    either: its approximate search sends every :math:`u` below about
    :math:`2 \cdot 10^{-5}`, 0 included, to :math:`1.5625 \cdot 10^{-5}`,
    the unsigned code's value at index 7; measured.)
    """
    code = dynamic_code(signed)
    if not signed:
        code[0] = -1.0
    return code


def linear_code(signed: bool = True) -> torch.Tensor:
    r"""A linear (evenly spaced) code, 256 sorted float32 values.

    Unsigned: :math:`c_k = k/255`, :math:`k = 0..255`. Signed: int8
    absmax quantisation, :math:`c_k = k/127`, :math:`k = -128..127`, so
    0 and :math:`\pm 1` are exact and the level :math:`-128/127` (below
    :math:`-1`) is never the nearest to any :math:`u \in [-1, 1]`. Each value
    is :math:`k/127` (or :math:`k/255`) rounded once to float32.

    Differences from bitsandbytes' ``create_linear_map``: that map takes
    ``torch.linspace`` values (a few float32 ulps from :math:`k/127`, and
    :math:`3.7 \cdot 10^{-9}` where 0 should be) plus an inserted 0.
    """
    low, high, top = (-128, 128, 127) if signed else (0, 256, 255)
    ks = torch.arange(low, high, dtype=torch.float64)
    return (ks / top).to(torch.float32)                 # k/127 or k/255


def check_code(code: torch.Tensor) -> None:
    """Raise ``ValueError`` unless ``code`` holds 256 finite, strictly
    increasing values (nearest-code rounding needs them sorted)."""
    if not isinstance(code, torch.Tensor) or code.shape != (CODE_SIZE,):
        shape = (tuple(code.shape) if isinstance(code, torch.Tensor)
                 else type(code).__name__)
        raise invalid("code", shape, "a tensor of 256 values")
    if not (torch.isfinite(code).all() and (code[1:] > code[:-1]).all()):
        raise invalid("code", "unsorted or non-finite",
                      "256 finite increasing values")


def nearest_code(u: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
    r"""Index of the code value nearest to each element of ``u`` (int64):
    :math:`\arg\min_k |u - c_k|`, ties to the lower value.

    The midpoints :math:`(c_k + c_{k+1})/2` of float32 codes are exact in
    float64, so comparing ``u`` (exact in float64) with them rounds exactly.
    """
    c = code.to(device=u.device, dtype=torch.float64)
    midpoints = (c[:-1] + c[1:]) / 2
    return torch.bucketize(u.to(torch.float64), midpoints)  # #midpoints < u


def _blocks(x: torch.Tensor, block_size: int) -> torch.Tensor:
    """``x`` flattened, padded with zeros to whole blocks, one block a row."""
    flat = x.reshape(-1)
    pad = -flat.numel() % block_size
    if pad:
        flat = torch.cat([flat, flat.new_zeros(pad)])
    return flat.view(-1, block_size)


def working_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype quantisation computes in: ``dtype`` promoted to at least
    float32 (float16 and bfloat16 compute in float32)."""
    return torch.promote_types(dtype, torch.float32)


def quantize_blockwise(
    x: torch.Tensor, code: torch.Tensor, block_size: int = 2048
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Quantise ``x`` block-wise onto ``code``: returns ``(indices,
    absmax)``.

    ``indices`` is uint8 shaped like ``x``; ``absmax`` holds
    :math:`a_b = \max_{i\in b}|x_i|`, one per block (the last block may be
    short), in the working dtype. :math:`q_i = \arg\min_k |x_i/a_b - c_k|`;
    a block of zeros gets :math:`a_b = 0` and the index of the code's 0.
    A non-finite element makes its whole block non-finite.
    """
    check_code(code)
    check_integer("block_size", block_size, 1)
    blocks = _blocks(x.to(working_dtype(x.dtype)), block_size)
    absmax = blocks.abs().amax(dim=1)                   # a_b = max |x_i|
    scale = torch.where(absmax > 0, absmax, torch.ones_like(absmax))
    u = blocks / scale[:, None]                         # u_i = x_i / a_b
    indices = nearest_code(u, code).to(torch.uint8)     # argmin |u_i - c_k|
    return indices.reshape(-1)[: x.numel()].view(x.shape), absmax


def dequantize_blockwise(
    indices: torch.Tensor, absmax: torch.Tensor, code: torch.Tensor,
    block_size: int = 2048,
) -> torch.Tensor:
    r""":math:`\hat x_i = c_{q_i} a_b`, shaped like ``indices``, in
    ``absmax``'s dtype."""
    check_code(code)
    check_integer("block_size", block_size, 1)
    if absmax.shape != (-(-indices.numel() // block_size),):
        raise invalid("absmax", tuple(absmax.shape),
                      f"one value per block of {block_size} elements")
    values = code.to(absmax)[_blocks(indices, block_size).long()]
    x_hat = values * absmax[:, None]                    # x̂_i = c_{q_i} a_b
    return x_hat.reshape(-1)[: indices.numel()].view(indices.shape)


def error_bound(u: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
    r""":math:`\rho(u)`, the largest distance from ``u`` to its nearest code
    value allowed by the bracket of the code that holds ``u`` (see the
    module docstring); the round-trip error of :math:`x` is at most
    :math:`a_b\,\rho(x/a_b)` plus rounding."""
    c = code.to(device=u.device, dtype=torch.float64)
    u = u.to(torch.float64)
    # c_{j-1} <= u < c_j
    j = torch.searchsorted(c, u, right=True).clamp(1, CODE_SIZE - 1)
    half_gap = (c[j] - c[j - 1]) / 2
    outside = torch.where(u < c[0], c[0] - u, u - c[-1])
    return torch.where((u < c[0]) | (u > c[-1]), outside, half_gap)
