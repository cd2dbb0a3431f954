"""A language model as current practice builds one, small enough for a CPU: a decoder-only
transformer trained byte by byte on the standard library's own source code.

The model (:class:`GPT`) is the recipe of today's open models at toy size: pre-norm blocks with
RMSNorm, rotary positions, causal attention through ``scaled_dot_product_attention``, a SwiGLU
(or GELU) MLP, no biases, untied input embedding and output head (tying is an option), and
optionally QK-norm (an RMSNorm on each head's queries and keys). The ladder (:data:`LADDER`)
grows depth and width together, as the scaling papers do.

The corpus (:func:`stdlib_source`) ships with every Python: the ``.py`` files at the top of
the standard library's folder, in sorted order, as bytes. Every tenth file (by that order)
is held out for validation, so validation text comes from files the model never saw. The
files are those of Python 3.11.7, whose names and contents hash to :data:`CORPUS_SHA256`;
another interpreter's standard library is refused, because its runs would not be comparable
with the stored ones.

References: A. Vaswani et al., *Attention is all you need*, 2017; B. Zhang and R. Sennrich,
*Root mean square layer normalization*, 2019; J. Su et al., *RoFormer*, 2021; N. Shazeer,
*GLU variants improve transformer*, 2020; M. Dehghani et al., *Scaling vision transformers
to 22 billion parameters*, 2023 (QK-norm).
"""

from __future__ import annotations

import functools
import hashlib
import math
import platform
import sysconfig
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["VOCAB", "CORPUS_SHA256", "VALIDATION_EVERY", "Corpus", "stdlib_source",
           "batches", "RMSNorm", "rotary", "Attention", "MLP", "Block", "GPT", "Size",
           "LADDER", "non_embedding_parameters", "CONTEXT", "windows", "evaluate", "train",
           "MUP_BASE_WIDTH", "mu_gpt"]

#: bytes are the tokens
VOCAB = 256
#: SHA-256 over the corpus files' names and contents (Python 3.11.7's standard library)
CORPUS_SHA256 = "110b1c1c3a8284452cac64add7fef201708f4d6a8a4ef27f25bb8056542e277d"
#: every ``VALIDATION_EVERY``-th file, in sorted order, is held out for validation
VALIDATION_EVERY = 10


@dataclass(frozen=True)
class Corpus:
    """Training and validation bytes (``uint8`` tensors) and the files each came from."""
    train: torch.Tensor
    val: torch.Tensor
    train_files: tuple[str, ...]
    val_files: tuple[str, ...]


def _digest(files: list[tuple[str, bytes]]) -> str:
    h = hashlib.sha256()
    for name, content in files:
        h.update(name.encode() + b"\0" + content + b"\0")
    return h.hexdigest()


@functools.cache
def stdlib_source(root: str | None = None) -> Corpus:
    """The standard library's top-level ``.py`` files as bytes, split by file; each file is
    followed by a zero byte (which Python source never contains) marking its end.

    ``root`` defaults to this interpreter's standard library. Raises ``RuntimeError`` if the
    files differ from Python 3.11.7's (:data:`CORPUS_SHA256`).
    """
    folder = Path(root or sysconfig.get_paths()["stdlib"])
    files = [(p.name, p.read_bytes()) for p in sorted(folder.glob("*.py"))]
    digest = _digest(files)
    if digest != CORPUS_SHA256:
        raise RuntimeError(
            f"the standard library at {folder} (Python {platform.python_version()}, "
            f"{len(files)} files, SHA-256 {digest[:12]}...) differs from the corpus the "
            f"stored runs used (Python 3.11.7, SHA-256 {CORPUS_SHA256[:12]}...): run with "
            f"Python 3.11.7")
    held = [i % VALIDATION_EVERY == 0 for i in range(len(files))]

    def join(part: list[tuple[str, bytes]]) -> torch.Tensor:
        data = b"".join(content + b"\0" for _, content in part)
        return torch.frombuffer(bytearray(data), dtype=torch.uint8)

    val = [f for f, h in zip(files, held) if h]
    train = [f for f, h in zip(files, held) if not h]
    return Corpus(join(train), join(val), tuple(n for n, _ in train), tuple(n for n, _ in val))


def batches(data: torch.Tensor, batch: int, context: int,
            seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Training batches without end: ``batch`` windows of ``context`` bytes at offsets drawn
    uniformly (a generator seeded by ``seed``), and the bytes that follow each position."""
    gen = torch.Generator().manual_seed(seed)
    while True:
        starts = torch.randint(len(data) - context, (batch,), generator=gen)
        windows = torch.stack([data[s:s + context + 1] for s in starts.tolist()]).long()
        yield windows[:, :-1], windows[:, 1:]


class RMSNorm(nn.Module):
    """``x / rms(x) * g``: LayerNorm without the mean and the bias (Zhang and Sennrich)."""

    def __init__(self, width: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps, self.weight = eps, nn.Parameter(torch.ones(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


def rotary(x: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Rotate each pair of channels ``(x_i, x_{i+d/2})`` of every head by the angle
    ``position · base^(-2i/d)`` (RoFormer): a dot product of rotated queries and keys depends
    on their positions only through their distance. ``x`` is ``(batch, heads, time, d)``."""
    t, d = x.shape[-2], x.shape[-1]
    exact = torch.float64 if x.dtype == torch.float64 else torch.float32
    freq = base ** (-torch.arange(0, d, 2, dtype=exact, device=x.device) / d)
    angle = torch.outer(torch.arange(t, dtype=exact, device=x.device), freq)
    cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
    x1, x2 = x[..., :d // 2], x[..., d // 2:]
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class Attention(nn.Module):
    """Causal multi-head self-attention with separate query, key, value and output matrices
    (so that each is one matrix for a whole-matrix rule such as Muon), rotary positions, and
    optionally QK-norm."""

    def __init__(self, width: int, heads: int, qk_norm: bool = False) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"Invalid heads: {heads} (width {width} is not a multiple)")
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(width, width, bias=False) for _ in range(4))
        d = width // heads
        self.q_norm = RMSNorm(d) if qk_norm else nn.Identity()
        self.k_norm = RMSNorm(d) if qk_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, w = x.shape
        q, k, v = (f(x).view(b, t, self.heads, w // self.heads).transpose(1, 2)
                   for f in (self.q, self.k, self.v))
        q, k = rotary(self.q_norm(q)), rotary(self.k_norm(k))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o(y.transpose(1, 2).reshape(b, t, w))


class MLP(nn.Module):
    """SwiGLU, ``W_down (silu(W_gate x) ⊙ W_up x)`` with a hidden width of 8/3 of the model's
    (rounded up to a multiple of 8: the parameters of a 4× GELU MLP), or a 4× GELU MLP."""

    def __init__(self, width: int, swiglu: bool = True) -> None:
        super().__init__()
        self.swiglu = swiglu
        hidden = 8 * math.ceil(8 * width / 3 / 8) if swiglu else 4 * width
        self.up = nn.Linear(width, hidden, bias=False)
        self.gate = nn.Linear(width, hidden, bias=False) if swiglu else None
        self.down = nn.Linear(hidden, width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gate is not None:
            return self.down(F.silu(self.gate(x)) * self.up(x))
        return self.down(F.gelu(self.up(x)))


class Block(nn.Module):
    """A pre-norm block: ``x + attention(norm(x))``, then ``x + mlp(norm(x))``."""

    def __init__(self, width: int, heads: int, swiglu: bool = True,
                 qk_norm: bool = False) -> None:
        super().__init__()
        self.norm1, self.norm2 = RMSNorm(width), RMSNorm(width)
        self.attention = Attention(width, heads, qk_norm)
        self.mlp = MLP(width, swiglu)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class GPT(nn.Module):
    """Byte embedding, ``depth`` blocks, a final RMSNorm, a linear head to :data:`VOCAB`
    logits. Weights are drawn normal with deviation 0.02, the residual branches' output
    matrices (attention's ``o``, the MLP's ``down``) with 0.02/√(2·depth) (GPT-2); norm gains
    start at one. ``tie=True`` shares the embedding with the head."""

    def __init__(self, depth: int, width: int, heads: int, swiglu: bool = True,
                 qk_norm: bool = False, tie: bool = False) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, width)
        self.blocks = nn.ModuleList(Block(width, heads, swiglu, qk_norm) for _ in range(depth))
        self.norm = RMSNorm(width)
        self.head = nn.Linear(width, VOCAB, bias=False)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                residual = name.endswith(("attention.o.weight", "mlp.down.weight"))
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * depth) if residual else 0.02)
        if tie:
            self.head.weight = self.embed.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.embed(x)
        for block in self.blocks:
            z = block(z)
        return self.head(self.norm(z))


#: the width at which the µP model and the standard one coincide: the ladder's S
MUP_BASE_WIDTH = 48


def mu_gpt(depth: int, width: int, seed: int = 0, *, base_width: int = MUP_BASE_WIDTH,
           readout: Callable[..., nn.Linear] | None = None, zero_query: bool = True,
           **options: bool) -> tuple[GPT, dict[str, Any]]:
    r"""The GPT in µP (Yang et al., "Tensor Programs V", NeurIPS 2021), and its shapes for
    :func:`optedu.training.mup.mup_param_groups`.

    Against :class:`GPT` (the standard parametrisation, SP), at width :math:`n` and
    :math:`m = n / n_0` (``base_width`` :math:`n_0`, where the two coincide):

    * the head is a :class:`optedu.training.mup.MuReadout` (``readout``; ``mup.MuReadout``
      for a comparison), its input divided by :math:`m`, its weight zero at the start;
    * the blocks' matrices (two widths) are drawn with deviation
      :math:`0.02\sqrt{n_0/n}` (the residual outputs' :math:`0.02/\sqrt{2\,\text{depth}}`
      likewise): variance :math:`\propto 1/\text{fan}_\text{in}`; the embedding keeps 0.02;
    * the query matrices start at zero (``zero_query``), as Yang et al. advise;
    * Adam's rate for the blocks' matrices is :math:`\eta/m` (the groups of
      :func:`~optedu.training.mup.mup_param_groups` with ``kind="adam"``).

    The heads are 16 wide at every width (their number grows), so µP's attention scale
    :math:`1/d` differs from the standard :math:`1/\sqrt d` by a constant here: the
    attention keeps :math:`1/\sqrt{16}`. Returns ``(model, shapes)``.
    """
    from optedu.training import mup

    if options.get("tie"):
        raise ValueError("Invalid tie value: True (expected False: mu_gpt's readout is a "
                         "MuReadout of its own, not the embedding's table)")
    readout = readout or mup.MuReadout

    def plain(w: int) -> GPT:
        model = GPT(depth, w, w // 16, **options)
        model.head = readout(w, VOCAB, bias=False)
        return model

    base, delta = plain(base_width), plain(2 * base_width)
    torch.manual_seed(seed)
    model = GPT(depth, width, width // 16, **options)
    model.head = readout(width, VOCAB, bias=False, readout_zero_init=True)
    if isinstance(model.head, mup.MuReadout):
        shapes = mup.set_base_shapes(model, base, delta, rescale_params=False)
    else:
        import mup as reference                   # the authors' package, for a comparison
        reference.set_base_shapes(model, base, delta=delta, rescale_params=False)
        shapes = mup.shapes_of(model, base, delta)
    for name, p in model.named_parameters():
        if p.dim() == 2 and shapes[name].n_width == 2:
            residual = name.endswith(("attention.o.weight", "mlp.down.weight"))
            mup.normal_(p, shapes[name], std=0.02 / math.sqrt(2 * depth) if residual else 0.02)
    if zero_query:
        with torch.no_grad():
            for block in model.blocks:
                cast(Block, block).attention.q.weight.zero_()
    return model, shapes


def non_embedding_parameters(model: GPT) -> int:
    """Parameters outside the embedding and the head (the count scaling laws use)."""
    skip = {id(model.embed.weight), id(model.head.weight)}
    return sum(p.numel() for p in model.parameters() if id(p) not in skip)


@dataclass(frozen=True)
class Size:
    """A rung of the ladder: depth, width and heads (head width 16 throughout)."""
    name: str
    depth: int
    width: int

    @property
    def heads(self) -> int:
        return self.width // 16

    def model(self, seed: int, **options: bool) -> GPT:
        torch.manual_seed(seed)
        return GPT(self.depth, self.width, self.heads, **options)


#: depth and width grown together, about 33× in non-embedding parameters from bottom to top
LADDER = (Size("S", 2, 48), Size("M", 3, 96), Size("L", 4, 128), Size("XL", 6, 160))


# ---------------------------------------------------------------------------------------------
# Training

#: bytes of context per sequence
CONTEXT = 128


def windows(data: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    """``count`` windows of ``CONTEXT + 1`` bytes at offsets drawn by a generator seeded with
    ``seed``: a fixed evaluation set (``(count, CONTEXT + 1)``, ``int64``)."""
    gen = torch.Generator().manual_seed(seed)
    starts = torch.randint(len(data) - CONTEXT, (count,), generator=gen).tolist()
    return torch.stack([data[s:s + CONTEXT + 1] for s in starts]).long()


@torch.no_grad()
def evaluate(model: nn.Module, held: torch.Tensor, chunk: int = 64) -> float:
    """Mean cross-entropy (nats per byte) of ``model`` on the windows ``held``."""
    was = model.training
    model.eval()
    total = 0.0
    for i in range(0, len(held), chunk):
        w = held[i:i + chunk]
        logits = model(w[:, :-1])
        total += F.cross_entropy(logits.reshape(-1, VOCAB), w[:, 1:].reshape(-1),
                                 reduction="sum").item()
    model.train(was)
    return total / (len(held) * CONTEXT)


def train(model: nn.Module, training: Any, steps: int, batch: int, seed: int,
          corpus: Corpus, *, evals: int = 16, eval_windows: int = 64,
          final_windows: int = 512, device: str = "cpu") -> dict[str, Any]:
    """Train ``model`` for ``steps`` steps of ``batch`` windows of :data:`CONTEXT` bytes
    drawn from ``corpus.train`` (order seeded by ``seed``), stepping ``training`` (an
    :class:`optedu.choosing.contestants.Training`: the optimizers and their schedule).

    Returns ``evals`` (``[(step, validation loss), ...]`` on ``eval_windows`` fixed windows,
    ``evals`` times evenly), ``train_loss`` (the mean training loss over each interval
    between two evaluations), ``final`` (the validation loss at the end on
    ``final_windows`` fixed windows: the number compared) and ``diverged`` (a non-finite
    training loss over an interval, where the run stops; ``final`` is then ``None``).
    """
    model.to(device)
    small = windows(corpus.val, eval_windows, seed=1).to(device)
    every = max(1, steps // evals)
    stream = batches(corpus.train, batch, CONTEXT, seed)
    out: dict[str, Any] = {"evals": [], "train_loss": [], "diverged": False}
    # the training loss is summed on the device and read at each evaluation (reading it
    # every step would wait for the device every step); a run whose loss is not finite
    # stops there
    running, count = torch.zeros((), dtype=torch.float64, device=device), 0
    for t in range(steps):
        x, y = next(stream)
        x, y = x.to(device), y.to(device)
        training.zero_grad()
        loss = F.cross_entropy(model(x).reshape(-1, VOCAB), y.reshape(-1))
        loss.backward()
        training.step(t)
        running, count = running + loss.detach(), count + 1
        if (t + 1) % every == 0 or t + 1 == steps:
            mean = running.item() / count
            if not math.isfinite(mean):
                out.update(diverged=True, final=None, steps_done=t + 1)
                return out
            training.eval()
            out["evals"].append((t + 1, evaluate(model, small)))
            training.train()
            out["train_loss"].append((t + 1, mean))
            running, count = torch.zeros_like(running), 0
    training.eval()
    out["final"] = evaluate(model, windows(corpus.val, final_windows, seed=2).to(device))
    training.train()
    out["steps_done"] = steps
    return out
