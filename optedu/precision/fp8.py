r"""The precision ladder (fp32, bf16, fp16, fp8) and per-tensor scaled fp8 casting.

A floating-point format with :math:`m` stored mantissa bits and exponent range
:math:`[e_\min, e_\max]` holds the normal numbers :math:`\pm 2^e (1 + k 2^{-m})`,
:math:`k < 2^m`, and below them the subnormals :math:`\pm k\, 2^{e_\min - m}`. So

.. math::

    \varepsilon = 2^{-m}\ \text{(spacing at 1)},\qquad
    \text{smallest subnormal} = 2^{e_\min}\,\varepsilon ,

and a number :math:`x` in the normal range is stored with relative error at most
:math:`\varepsilon/2`. :func:`ladder` reads these from ``torch.finfo``.

fp8 has so little range (e4m3fn: :math:`2^{-9}` to 448) that a tensor is cast with a
**per-tensor scale** :math:`s`, kept in fp32 beside it (Micikevicius et al., *FP8 Formats
for Deep Learning*, 2022; NVIDIA Transformer Engine):

.. math::

    s = \frac{\text{fp8 max}}{a \cdot 2^{\text{margin}}},\qquad
    q = \mathrm{fp8}\bigl(\mathrm{clip}(s x)\bigr),\qquad \hat x = q / s ,

with :math:`a` the tensor's absolute maximum (*amax*). *Current scaling* takes :math:`a`
from the tensor itself (:func:`quantize`); *delayed scaling* (:class:`DelayedScaling`) takes it from a history of the amaxes of earlier
steps, so the cast needs one read of the tensor, and clips values that outgrow the
history. (Transformer Engine's original recipe, its default on Hopper GPUs; on
Blackwell its default is MXFP8, a scale per block of 32 values.) :func:`fp8_linear` simulates an fp8 matrix product: inputs and weights
cast with their scales, the product accumulated in fp32, as the recipes' GEMMs
accumulate in higher precision.
"""

from __future__ import annotations

import contextlib
import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from optedu.optim._validation import check_integer, invalid

LADDER = (torch.float32, torch.bfloat16, torch.float16, torch.float8_e4m3fn,
          torch.float8_e5m2)
FP8 = (torch.float8_e4m3fn, torch.float8_e5m2)
FORMATS = {str(d).removeprefix("torch."): d for d in LADDER}


@dataclass(frozen=True)
class Format:
    """One rung of the ladder, from ``torch.finfo``."""

    name: str
    bits: int
    exponent_bits: int
    mantissa_bits: int
    max: float
    smallest_normal: float
    smallest_subnormal: float
    eps: float      # spacing at 1: 2^-m
    digits: float   # decimal digits: (m + 1) log10(2)


def describe(dtype: torch.dtype) -> Format:
    """The :class:`Format` of a floating-point ``dtype``."""
    if not dtype.is_floating_point:
        raise invalid("dtype", dtype, "a floating-point dtype")
    fi = torch.finfo(dtype)
    mantissa = round(-math.log2(fi.eps))                  # ε = 2^-m
    return Format(str(dtype).removeprefix("torch."), fi.bits,
                  fi.bits - 1 - mantissa, mantissa, fi.max, fi.smallest_normal,
                  fi.smallest_normal * fi.eps,             # 2^e_min · 2^-m
                  fi.eps, (mantissa + 1) * math.log10(2))


def ladder(dtypes: tuple[torch.dtype, ...] = LADDER) -> list[Format]:
    """:func:`describe` for each dtype: fp32, bf16, fp16, e4m3fn, e5m2 by default."""
    return [describe(d) for d in dtypes]


def _check_fp8(dtype: torch.dtype) -> None:
    if dtype not in FP8:
        raise invalid("dtype", dtype, "torch.float8_e4m3fn or torch.float8_e5m2")


def scale_for(amax: float, dtype: torch.dtype = torch.float8_e4m3fn,
              margin: int = 0) -> float:
    r""":math:`s = \text{max}/(a\, 2^{\text{margin}})`: the scale that maps an amax
    :math:`a` to :math:`2^{-\text{margin}}` times the format's largest number
    (Transformer Engine's formula); 1 when :math:`a` is 0 or not finite."""
    _check_fp8(dtype)
    check_integer("margin", margin, 0)
    if not amax > 0 or not math.isfinite(amax):
        return 1.0
    return torch.finfo(dtype).max / amax / 2.0**margin


def cast(x: torch.Tensor, scale: float,
         dtype: torch.dtype = torch.float8_e4m3fn) -> torch.Tensor:
    r""":math:`q = \mathrm{fp8}(\mathrm{clip}(s x))`: values beyond the format's
    largest number are clipped to it, as the recipes do (torch's own cast
    saturates for e4m3fn but overflows to ``inf`` for e5m2)."""
    _check_fp8(dtype)
    top = torch.finfo(dtype).max
    return (x.float() * scale).clamp(-top, top).to(dtype)


def quantize(x: torch.Tensor, dtype: torch.dtype = torch.float8_e4m3fn,
             margin: int = 0) -> torch.Tensor:
    r""":math:`\hat x = q/s` with the current scale (the tensor's own amax),
    returned in fp32: the value an fp8 kernel computes with."""
    s = scale_for(x.detach().abs().max().item(), dtype, margin)
    return cast(x, s, dtype).float() / s


def quantize_blocks(x: torch.Tensor, block: tuple[int, int],
                    dtype: torch.dtype = torch.float8_e4m3fn,
                    margin: int = 0) -> torch.Tensor:
    r""":func:`quantize` applied to each ``block[0]`` × ``block[1]`` block of a matrix on
    its own: one current scale per block (DeepSeek-V3's fine-grained scaling: 1×128 tiles
    of an activation, one token's 128 channels, and 128×128 blocks of a weight). The
    blocks must tile ``x`` exactly."""
    rows, cols = block
    if (x.dim() != 2 or rows < 1 or cols < 1 or x.shape[0] % rows
            or x.shape[1] % cols):
        raise invalid("block", block, f"a tiling of the matrix's shape {tuple(x.shape)}")
    out = torch.empty(x.shape, dtype=torch.float32)
    for i in range(0, x.shape[0], rows):
        for j in range(0, x.shape[1], cols):
            part = x[i:i + rows, j:j + cols]
            out[i:i + rows, j:j + cols] = quantize(part, dtype, margin)
    return out


def relative_error(x: torch.Tensor, approx: torch.Tensor) -> float:
    r""":math:`\|\hat x - x\|_2 / \|x\|_2` in float64 (0 for a zero tensor)."""
    x, approx = x.double(), approx.double()
    norm = x.norm().item()
    return (approx - x).norm().item() / norm if norm > 0 else 0.0


def flushed(x: torch.Tensor, approx: torch.Tensor) -> float:
    """The share of ``x``'s non-zero elements that come back as 0 (underflow)."""
    nonzero = x != 0
    count = int(nonzero.sum())
    return float((approx[nonzero] == 0).sum()) / count if count else 0.0


class DelayedScaling:
    r"""Transformer Engine's delayed scaling for one tensor, simulated.

    Each call casts with the scale computed from the *history* of earlier amaxes
    (``"max"`` over the last ``amax_history_len`` steps, or the ``"most_recent"``),
    then records the tensor's amax and recomputes the scale for the next call. The
    first call has no history and uses :math:`s = 1`, as Transformer Engine's initial
    scale; an amax of 0, ``inf`` or ``nan`` keeps the previous scale, as its
    ``delayed_scaling.cu`` does (``nan`` amaxes are ignored, as ``fmaxf`` ignores
    them). Values above the history's reach are clipped: that is the recipe's risk.

    Args:
        dtype: ``torch.float8_e4m3fn`` (default) or ``torch.float8_e5m2``.
        margin: :math:`s = \text{max} / (a\, 2^{\text{margin}})` (default 0).
        amax_history_len: steps of history (default 1024, Transformer Engine's).
        amax_compute_algo: ``"max"`` (default) or ``"most_recent"``.
    """

    def __init__(self, dtype: torch.dtype = torch.float8_e4m3fn, margin: int = 0,
                 amax_history_len: int = 1024,
                 amax_compute_algo: str = "max") -> None:
        _check_fp8(dtype)
        check_integer("margin", margin, 0)
        check_integer("amax_history_len", amax_history_len, 1)
        if amax_compute_algo not in ("max", "most_recent"):
            raise invalid("amax_compute_algo", repr(amax_compute_algo),
                          "'max' or 'most_recent'")
        self.dtype, self.margin, self.algo = dtype, margin, amax_compute_algo
        self.history: deque[float] = deque(maxlen=amax_history_len)
        self.scale = 1.0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`\\hat x` with the delayed scale, in fp32; then update the scale."""
        out = cast(x, self.scale, self.dtype).float() / self.scale
        self.history.append(x.detach().abs().max().item())
        seen = [a for a in self.history if not math.isnan(a)]
        amax = (max(seen, default=0.0) if self.algo == "max"
                else self.history[-1])
        if amax > 0 and math.isfinite(amax):       # else keep the old scale
            self.scale = scale_for(amax, self.dtype, self.margin)
        return out


def fp8_linear(x: torch.Tensor, weight: torch.Tensor,
               bias: torch.Tensor | None = None,
               dtype: torch.dtype = torch.float8_e4m3fn,
               margin: int = 0) -> torch.Tensor:
    r""":math:`y = \hat x \hat W^\top + b` with :math:`\hat x, \hat W` cast to fp8
    with their own per-tensor scales (:func:`quantize`) and the product and bias
    in fp32: what an fp8 GEMM with fp32 accumulation computes, up to the order of
    its sums."""
    y = quantize(x, dtype, margin) @ quantize(weight, dtype, margin).T
    return y if bias is None else y + bias.float()


def rounded_linear(x: torch.Tensor, weight: torch.Tensor,
                   bias: torch.Tensor | None = None,
                   dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
    """The same product with the inputs and weights rounded to a 16- or 32-bit
    ``dtype`` (no scale), accumulated in fp32: the baseline for :func:`fp8_linear`."""
    y = x.to(dtype).float() @ weight.to(dtype).float().T
    return y if bias is None else y + bias.float()


@contextlib.contextmanager
def linears_in(model: torch.nn.Module, fmt: str) -> Iterator[torch.nn.Module]:
    """Run every ``nn.Linear`` of ``model`` with its inputs and weights in ``fmt``
    (``"float32"``, ``"bfloat16"``, ``"float16"``, ``"float8_e4m3fn"``,
    ``"float8_e5m2"``; fp8 with per-tensor current scaling), accumulating in
    fp32; the modules' own ``forward`` comes back on exit."""
    if fmt not in FORMATS:
        raise invalid("fmt", repr(fmt), "one of " + ", ".join(FORMATS))
    dtype = FORMATS[fmt]
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]

    def forward_of(m: torch.nn.Linear):
        if dtype in FP8:
            return lambda x: fp8_linear(x, m.weight, m.bias, dtype)
        return lambda x: rounded_linear(x, m.weight, m.bias, dtype)

    for m in linears:
        setattr(m, "forward", forward_of(m))            # a method, patched per instance
    try:
        yield model
    finally:
        for m in linears:
            del m.forward             # the class's forward again
