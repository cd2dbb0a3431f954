r"""Activation memory of a transformer layer: counted by formula, measured by hooks.

Korthikanti et al. (2022, Section 4.1) count the bytes one GPT layer keeps for
its backward pass, with 16-bit activations and 1-byte dropout masks, for
sequence length :math:`s`, micro-batch :math:`b`, width :math:`h` and
:math:`a` heads:

.. math::

    s b h \Bigl(34 + 5\,\frac{a s}{h}\Bigr)

of which attention keeps :math:`11sbh + 5as^2b`, the MLP :math:`19sbh` and
the two LayerNorms :math:`4sbh`. With :math:`t`-way tensor parallelism the
parts inside the parallel regions shrink by :math:`t`:
:math:`sbh(10 + 24/t + 5as/(ht))`; sequence parallelism cuts the rest too,
:math:`sbh(34 + 5as/h)/t`; recomputing the attention core drops the
:math:`5as/h` term, recomputing the whole layer keeps only its input,
:math:`2sbh` (:func:`layer_bytes`).

:class:`Block` is that layer (pre-LayerNorm, GeLU, dropout as
``torch.native_dropout``, whose mask is one byte), :func:`saved_bytes`
measures what autograd keeps with ``torch.autograd.graph.saved_tensors_hooks``
(each storage once, parameters excluded) and :func:`recompute_flops` the
matrix-product FLOPs of a training pass with and without
``torch.utils.checkpoint``.

Imports: torch only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint
from torch.utils.flop_counter import FlopCounterMode


def layer_bytes(s: int, b: int, h: int, a: int, t: int = 1, sequence_parallel: bool = False,
                recompute: str | None = None) -> dict[str, float]:
    r"""Korthikanti et al.'s activation bytes of one layer, by part:
    ``layernorm`` (:math:`4sbh`), ``attention`` (:math:`11sbh + 5as^2b`, of which
    ``attention_core`` :math:`5as^2b`), ``mlp`` (:math:`19sbh`) and ``total``.

    ``t``: tensor-parallel ranks (bytes per rank); ``sequence_parallel``: the
    LayerNorm and dropout parts cut by :math:`t` too; ``recompute``: ``None``,
    ``"selective"`` (the attention core recomputed) or ``"full"`` (only the
    layer's input kept, :math:`2sbh`)."""
    sp = t if sequence_parallel else 1
    core = 5 * a * s * s * b / t
    parts = {"layernorm": 4 * s * b * h / sp,
             # QKV input 2 (cut by t only with SP), Q K V 6/t, projection input 2/t, mask 1
             "attention": (2 / sp + 8 / t + 1 / sp) * s * b * h + core,
             # fc1 input 2 (SP), GeLU input 8/t, fc2 input 8/t, mask 1
             "mlp": (2 / sp + 16 / t + 1 / sp) * s * b * h,
             "attention_core": core}
    if recompute == "selective":
        parts["attention"] -= core
        parts["attention_core"] = 0.0
    elif recompute == "full":
        return {"layernorm": 0.0, "attention": 0.0, "mlp": 0.0, "attention_core": 0.0,
                "total": 2 * s * b * h / sp}
    elif recompute is not None:
        raise ValueError(f"Invalid recompute value: {recompute!r} "
                         "(expected None, 'selective' or 'full')")
    parts["total"] = parts["layernorm"] + parts["attention"] + parts["mlp"]
    return parts


def dropout(x: torch.Tensor, p: float, train: bool = True) -> torch.Tensor:
    """Dropout whose backward keeps a one-byte mask (``torch.native_dropout``;
    ``F.dropout`` on CPU keeps a mask in ``x``'s dtype)."""
    if not train or p == 0:
        return x
    return torch.native_dropout(x, p, True)[0]


class Block(nn.Module):
    """A GPT layer as Korthikanti et al. count it: ``x + Dropout(Proj(Attn(LN(x))))``,
    then ``x + Dropout(FC2(GeLU(FC1(LN(x)))))``; inputs ``(s, b, h)``.

    ``checkpoint_core``: recompute the attention core (scores, softmax, dropout,
    the product with V) in the backward pass: the selective recomputation."""

    def __init__(self, h: int, heads: int, p: float = 0.1,
                 checkpoint_core: bool = False) -> None:
        super().__init__()
        self.heads, self.p, self.checkpoint_core = heads, p, checkpoint_core
        self.ln1, self.ln2 = nn.LayerNorm(h), nn.LayerNorm(h)
        self.qkv, self.proj = nn.Linear(h, 3 * h), nn.Linear(h, h)
        self.fc1, self.fc2 = nn.Linear(h, 4 * h), nn.Linear(4 * h, h)

    def core(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """softmax(QKᵀ/√d) with dropout, times V; ``(b·a, s, d)`` each."""
        scores = q @ k.transpose(1, 2) / math.sqrt(q.shape[-1])     # QKᵀ/√d
        probs = dropout(scores.softmax(-1), self.p, self.training)
        return probs @ v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, b, h = x.shape
        d = h // self.heads
        q, k, v = self.qkv(self.ln1(x)).chunk(3, dim=-1)

        def heads(t: torch.Tensor) -> torch.Tensor:   # (s, b, h) → (b·a, s, d)
            return t.reshape(s, b * self.heads, d).transpose(0, 1)
        q, k, v = heads(q), heads(k), heads(v)
        if self.checkpoint_core:
            ctx = checkpoint(self.core, q, k, v, use_reentrant=True)
        else:
            ctx = self.core(q, k, v)
        ctx = ctx.transpose(0, 1).reshape(s, b, h)
        x = x + dropout(self.proj(ctx), self.p, self.training)
        return x + dropout(self.fc2(F.gelu(self.fc1(self.ln2(x)))), self.p, self.training)


def saved_bytes(fn: Callable[[], torch.Tensor], exclude: nn.Module | None = None
                ) -> dict[str, Any]:
    """Bytes autograd keeps for the backward pass of ``fn()``: each storage
    counted once (whole), ``exclude``'s parameters left out. Returns ``total``
    and ``tensors``: one ``(shape, dtype, bytes)`` per storage, in order."""
    params = {p.untyped_storage().data_ptr() for p in exclude.parameters()} \
        if exclude is not None else set()
    seen: dict[int, tuple[tuple[int, ...], torch.dtype, int]] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in params and ptr not in seen:
            seen[ptr] = (tuple(t.shape), t.dtype, t.untyped_storage().nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    del out
    tensors = list(seen.values())
    return {"total": sum(n for _, _, n in tensors), "tensors": tensors}


def recompute_flops(block: nn.Module, x: torch.Tensor, full: bool = False) -> dict[str, int]:
    """Matrix-product FLOPs of the forward pass and of the backward pass
    (``torch.utils.flop_counter``), with the whole block checkpointed if
    ``full``: the backward pass then runs the forward again."""
    counts = {}
    x = x.detach().requires_grad_()
    with FlopCounterMode(display=False) as forward:
        y = checkpoint(block, x, use_reentrant=True) if full else block(x)
    counts["forward"] = forward.get_total_flops()
    with FlopCounterMode(display=False) as backward:
        y.sum().backward()
    counts["backward"] = backward.get_total_flops()
    return counts
