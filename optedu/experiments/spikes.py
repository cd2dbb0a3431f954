"""Evidence for the chapter "Loss spikes": a small character transformer trained with Adam at
a rate ten times too high, and what each remedy does to its attention logits and its loss.

``make experiments-spikes`` stores each run as one JSON line in ``experiments/spikes.jsonl``
as soon as it finishes, keyed ``(setting, seed)``, resumable, with the machine, versions and
commit in ``experiments/spikes.meta.json``; one worker, one thread, torch's CPU kernels pinned
(:mod:`optedu.instruments.reproducible`), so that a stored run can be re-run exactly::

    python -m optedu.experiments spikes

The model (:class:`TinyLM`): 2 pre-LN blocks of width 32 with 2 heads, on the benchmark's
help texts (:func:`optedu.choosing.workloads.text_windows`, 16 windows of 32 characters).
Adam, :data:`STEPS` steps, every :data:`SETTINGS` entry at seeds :data:`SEEDS`: the rate
:data:`HIGH` with nothing else (``baseline``), the same with one remedy each — β₂ = 0.95,
gradient clipping at norm 1 (it rarely fires here) and at norm 0.1 (it fires at every step),
a linear warmup, QK-normalisation (a LayerNorm on each head's query and key), a tanh soft cap
on the logits, MuonClip's QK-clip after each step — and a healthy rate :data:`LOW`. Every
step stores the loss, the total gradient norm (before any clipping), the largest attention
logit (before any cap), the update-to-weight ratio of every parameter tensor and Adam's mean
√v̂ of the attention weights (:mod:`optedu.training.layer_stats`).

References: M. Dehghani et al., *Scaling vision transformers to 22 billion parameters*, 2023
(QK-normalisation); M. Wortsman et al., *Small-scale proxies for large-scale Transformer
training instabilities*, ICLR 2024 (logit growth reproduced small); Kimi Team, *Kimi K2*, 2025
(QK-clip).
"""

from __future__ import annotations

import math
import pathlib
from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import nn

from optedu.choosing import workloads
from optedu.instruments import store
from optedu.training.clip import clip_grad_norm_, get_total_norm
from optedu.training.layer_stats import AttentionLogits, UpdateRatios, adam_sqrt_v
from optedu.training.spikes import qk_clip_

from .grid import Grid, Job, Key, timed

__all__ = ["GRID", "KEY", "STEPS", "SEEDS", "HIGH", "LOW", "SETTINGS", "Attention", "TinyLM",
           "jobs", "train", "execute", "read"]

STEPS = 300
SEEDS = (0, 1, 2)
#: Adam's rate that makes the logits grow, and a healthy one (ten times lower)
HIGH, LOW = 0.1, 0.01
#: setting -> what differs from the baseline (Adam, rate HIGH, betas (0.9, 0.999))
SETTINGS: dict[str, dict[str, Any]] = {
    "baseline": {},
    "beta2=0.95": {"beta2": 0.95},
    "clip=1": {"max_norm": 1.0},
    "clip=0.1": {"max_norm": 0.1},
    "warmup=100": {"warmup": 100},
    "qk-norm": {"qk_norm": True},
    "softcap=30": {"softcap": 30.0},
    "qk-clip=30": {"qk_clip": 30.0},
    "low-lr": {"lr": LOW},
}


class Attention(nn.Module):
    """Causal self-attention with a packed ``qkv`` projection (no biases), optional
    QK-normalisation (``q_norm``/``k_norm``: a LayerNorm per head) and an optional tanh soft
    cap :math:`c\\tanh(s/c)` on the logits."""

    def __init__(self, width: int, heads: int, qk_norm: bool = False,
                 softcap: float | None = None) -> None:
        super().__init__()
        self.heads, self.softcap = heads, softcap
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.proj = nn.Linear(width, width, bias=False)
        d = width // heads
        self.q_norm = nn.LayerNorm(d) if qk_norm else None
        self.k_norm = nn.LayerNorm(d) if qk_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, width = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        if self.q_norm is not None and self.k_norm is not None:   # both or neither
            q, k = self.q_norm(q), self.k_norm(k)
        s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])         # logits
        if self.softcap is not None:
            s = self.softcap * torch.tanh(s / self.softcap)         # c tanh(s/c)
        s = s.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
        y = s.softmax(-1) @ v
        return self.proj(y.transpose(1, 2).reshape(b, t, width))


class Block(nn.Module):
    """A pre-LN block: :class:`Attention` and a GELU MLP 4× wide, each after a LayerNorm."""

    def __init__(self, width: int, heads: int, qk_norm: bool, softcap: float | None) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attn = Attention(width, heads, qk_norm, softcap)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(),
                                 nn.Linear(4 * width, width))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z + self.attn(self.ln1(z))
        return z + self.mlp(self.ln2(z))


class TinyLM(nn.Module):
    """Token and position embeddings, ``layers`` pre-LN blocks (:class:`Attention`, a GELU
    MLP 4× wide), a final LayerNorm and a linear head to the benchmark's vocabulary."""

    def __init__(self, width: int = 32, heads: int = 2, layers: int = 2,
                 qk_norm: bool = False, softcap: float | None = None) -> None:
        super().__init__()
        self.tok = nn.Embedding(workloads.VOCAB, width)
        self.pos = nn.Embedding(workloads.CONTEXT, width)
        self.blocks = nn.ModuleList(Block(width, heads, qk_norm, softcap)
                                    for _ in range(layers))
        self.ln_f = nn.LayerNorm(width)
        self.head = nn.Linear(width, workloads.VOCAB)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.tok(x) + self.pos.weight[:x.shape[1]]
        for block in self.blocks:
            z = block(z)
        return self.head(self.ln_f(z))


KEY = Key("setting", "seed")


def jobs(stored: Sequence[dict[str, Any]] = (), folder: pathlib.Path | None = None
         ) -> list[Job]:
    return [KEY(s, seed) for s in SETTINGS for seed in SEEDS]


def _r(v: float) -> float | None:
    return store.rounded(v)


def train(setting: str, seed: int, steps: int = STEPS) -> dict[str, Any]:
    """One run of ``setting`` (a key of :data:`SETTINGS`): per step the loss, the total
    gradient norm before clipping, the largest logit, every tensor's update-to-weight ratio
    and the attention weights' mean √v̂; at the end the validation loss."""
    if setting not in SETTINGS:
        raise ValueError(f"Invalid setting: {setting!r}")
    cfg = {"lr": HIGH, "beta2": 0.999, "max_norm": None, "warmup": 0, "qk_norm": False,
           "softcap": None, "qk_clip": None, **SETTINGS[setting]}
    torch.manual_seed(seed)
    model = TinyLM(qk_norm=cfg["qk_norm"], softcap=cfg["softcap"])
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"], betas=(0.9, cfg["beta2"]))
    warm = cfg["warmup"]
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda t: min(1.0, (t + 1) / warm) if warm else 1.0)
    names: dict[torch.Tensor, str] = {p: n for n, p in model.named_parameters()}
    attn = [n for n in names.values() if n.endswith("attn.qkv.weight")]
    logits = AttentionLogits(model, causal=True)
    ratios = UpdateRatios(model)
    batches = workloads.text_windows(seed)
    out: dict[str, Any] = {"loss": [], "grad_norm": [], "logit": [],
                           "ratio": {n: [] for n in names.values()},
                           "sqrt_v": {n: [] for n in attn}}
    for _ in range(steps):
        x, y = next(batches)
        loss = nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten())
        out["loss"].append(_r(float(loss.detach())))
        out["logit"].append(_r(max(logits.maxima().values())))
        opt.zero_grad()
        loss.backward()
        out["grad_norm"].append(_r(float(get_total_norm(
            [p.grad for p in model.parameters() if p.grad is not None]))))
        if cfg["max_norm"] is not None:
            clip_grad_norm_(model.parameters(), cfg["max_norm"])
        ratios.before()
        opt.step()
        sched.step()
        if cfg["qk_clip"] is not None:
            for name, block in zip(("blocks.0.attn", "blocks.1.attn"), model.blocks):
                qk_clip_(cast(Block, block).attn, logits.last[name], cfg["qk_clip"])
        for n, v in ratios.after().items():
            out["ratio"][n].append(_r(v))
        v_hat = adam_sqrt_v(opt, names)
        for n in attn:
            out["sqrt_v"][n].append(_r(v_hat[n].mean))
    logits.remove()
    data = workloads.help_text()
    with torch.no_grad():
        val = nn.functional.cross_entropy(model(data.val_x).flatten(0, 1),
                                          data.val_y.flatten())
    return {**out, "val_loss": _r(float(val))}


@timed
def execute(job: Job) -> dict[str, Any]:
    """Run ``job`` and return its record (what is stored)."""
    return {"setting": job.setting, "seed": job.seed, "steps": STEPS,
            **train(job.setting, job.seed)}


GRID = Grid(name="spikes", chapter="Loss spikes",
            about="a two-block char transformer, Adam at 10x the healthy rate, alone and with each "
                  "remedy, three seeds, 27 runs.",
            minutes=2, file="spikes.jsonl", job=KEY, jobs=jobs, execute=execute,
            sample=2)
read = GRID.read
