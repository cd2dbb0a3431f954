"""optedu AdamMini against adam-mini 1.1.1's Adam_mini on a small named transformer that has
every kind of block (embedding, queries and keys by head, values, attention projection, MLP and
output by row, norms as one block, biases as Adam, and a parameter that is not always used):
bit for bit over the options (weight decay, betas, grouped-query heads), float32 and float64,
with a group's lr changed; checkpoints both ways; then the paper's definition of the block's
second moment."""

from __future__ import annotations

import contextlib
import copy
import io
import itertools

import pytest
import torch
from adam_mini import Adam_mini
from torch import nn

from optedu.optim.adam_mini import AdamMini, block_kind
from optimizers import FULL

STEPS = 20
DIM, HEADS, VOCAB = 8, 2, 11


class Tiny(nn.Module):
    """One attention layer and one MLP, named as Llama-style code names them."""

    def __init__(self, kv_heads: int, dtype: torch.dtype) -> None:
        super().__init__()
        torch.manual_seed(0)
        head = DIM // HEADS
        self.kv_heads = kv_heads
        self.embed_tokens = nn.Embedding(VOCAB, DIM)
        self.q_proj = nn.Linear(DIM, DIM, bias=True)
        self.k_proj = nn.Linear(DIM, head * kv_heads, bias=False)
        self.v_proj = nn.Linear(DIM, head * kv_heads, bias=False)
        self.o_proj = nn.Linear(DIM, DIM, bias=False)
        self.mlp = nn.Sequential(nn.Linear(DIM, 2 * DIM), nn.GELU(), nn.Linear(2 * DIM, DIM))
        self.norm = nn.LayerNorm(DIM)
        self.gain = nn.Parameter(torch.ones(DIM))          # no rule matches: one block
        self.lm_head = nn.Linear(DIM, VOCAB, bias=False)
        self.to(dtype)

    def forward(self, tokens: torch.Tensor, step: int) -> torch.Tensor:
        x = self.embed_tokens(tokens)
        b, t, _ = x.shape
        head = DIM // HEADS
        q = self.q_proj(x).view(b, t, HEADS, head).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.kv_heads, head).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.kv_heads, head).transpose(1, 2)
        k = k.repeat_interleave(HEADS // self.kv_heads, 1)
        v = v.repeat_interleave(HEADS // self.kv_heads, 1)
        a = torch.softmax(q @ k.transpose(-1, -2) / head ** 0.5, -1) @ v
        x = x + self.o_proj(a.transpose(1, 2).reshape(b, t, DIM))
        x = x + self.mlp(self.norm(x))
        if step % 2:                                        # gain has no grad on even steps
            x = x * self.gain
        return self.lm_head(x)


def _loss(model, step):
    g = torch.Generator().manual_seed(100 + step)
    tokens = torch.randint(0, VOCAB, (4, 6), generator=g)
    logits = model(tokens, step)
    return nn.functional.cross_entropy(logits[:, :-1].reshape(-1, VOCAB), tokens[:, 1:].reshape(-1))


def _make(cls, model, kv_heads, **kwargs):
    with contextlib.redirect_stdout(io.StringIO()):          # the reference prints its blocks
        opt = cls(model.named_parameters(), dim=DIM, n_heads=HEADS, n_kv_heads=kv_heads, **kwargs)
    return opt


def _train(model, opt, steps=STEPS, start=0):
    with contextlib.redirect_stdout(io.StringIO()):
        for t in range(start, start + steps):
            opt.zero_grad()
            _loss(model, t).backward()
            opt.step()
    return model


def _run(cls, dtype, kv_heads, lr_change=False, **kwargs):
    model = Tiny(kv_heads or HEADS, dtype)
    opt = _make(cls, model, kv_heads, lr=0.01, **kwargs)
    if lr_change:                           # a second learning rate, for the MLP's first layer
        opt.param_groups[6]["lr"] = 0.003
    return _train(model, opt), opt


def _same(a, b):
    (ma, oa), (mb, ob) = a, b
    for (name, x), y in zip(ma.named_parameters(), mb.parameters()):
        assert torch.equal(x, y), name
        sa, sb = oa.state[x], ob.state[y]
        assert sa.keys() == sb.keys(), name
        for key in sa:
            if isinstance(sa[key], torch.Tensor):
                assert torch.equal(sa[key], sb[key]), (name, key)
                assert sa[key].shape == sb[key].shape
            else:
                assert sa[key] == sb[key], (name, key)


QUICK = [(0.1, (0.9, 0.999), None, torch.float32, True)]
ALL = list(itertools.product([0.0, 0.1], [(0.9, 0.999), (0.8, 0.95)], [None, 1],
                             [torch.float32, torch.float64], [False, True]))


@pytest.mark.parametrize("wd,betas,kv_heads,dtype,lr_change", ALL if FULL else QUICK)
def test_bit_identical_to_adam_mini(wd, betas, kv_heads, dtype, lr_change):
    kwargs = dict(weight_decay=wd, betas=betas)
    _same(_run(AdamMini, dtype, kv_heads, lr_change, **kwargs),
          _run(Adam_mini, dtype, kv_heads, lr_change, **kwargs))


def test_partition_and_groups_match():
    model = Tiny(HEADS, torch.float32)
    ours, theirs = _make(AdamMini, model, None, weight_decay=0.1), _make(Adam_mini, model, None,
                                                                         weight_decay=0.1)
    strip = lambda g: {k: v for k, v in g.items() if k != "params"}
    assert [strip(g) for g in ours.param_groups] == [strip(g) for g in theirs.param_groups]
    kinds = {g["name"]: block_kind(g["name"], ours) for g in ours.param_groups}
    assert kinds == {"embed_tokens.weight": "row", "q_proj.weight": "head", "q_proj.bias": "adam",
                     "k_proj.weight": "head", "v_proj.weight": "row", "o_proj.weight": "row",
                     "mlp.0.weight": "row", "mlp.0.bias": "adam", "mlp.2.weight": "row",
                     "mlp.2.bias": "adam", "norm.weight": "tensor", "norm.bias": "adam",
                     "gain": "tensor", "lm_head.weight": "row"}


@pytest.mark.parametrize("first,second", [(Adam_mini, AdamMini), (AdamMini, Adam_mini)])
def test_checkpoint_moves_both_ways(first, second):
    model = Tiny(HEADS, torch.float32)
    opt = _make(first, model, None, lr=0.01, weight_decay=0.1)
    _train(model, opt, steps=8)
    moved = _make(second, model, None, lr=0.01, weight_decay=0.1)
    moved.load_state_dict(copy.deepcopy(opt.state_dict()))
    _train(model, moved, steps=12, start=8)
    _same((model, moved), _run(second, torch.float32, None, weight_decay=0.1))


def test_block_second_moment_is_the_mean_of_adams():
    """Zhang et al. (2025), Alg. 1: a block's v is the EMA of the block's mean g², that is the
    mean over the block of Adam's per-entry v (the EMA is linear)."""
    model = Tiny(HEADS, torch.float64)
    opt = _make(AdamMini, model, None, lr=0.01)
    adam_v = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for t in range(STEPS):
        opt.zero_grad()
        _loss(model, t).backward()
        for n, p in model.named_parameters():
            if p.grad is not None:
                adam_v[n].mul_(0.999).addcmul_(p.grad, p.grad, value=1 - 0.999)
        opt.step()
    params = dict(model.named_parameters())
    row = opt.state[params["o_proj.weight"]]["vmean"]
    torch.testing.assert_close(row, adam_v["o_proj.weight"].mean(1, keepdim=True), rtol=1e-12, atol=0)
    heads = opt.state[params["q_proj.weight"]]["vmean"]
    torch.testing.assert_close(heads, adam_v["q_proj.weight"].view(HEADS, -1).mean(1, keepdim=True),
                               rtol=1e-12, atol=0)
    whole = opt.state[params["norm.weight"]]["vmean"]
    torch.testing.assert_close(whole, adam_v["norm.weight"].mean(), rtol=1e-12, atol=0)
    assert torch.equal(opt.state[params["q_proj.bias"]]["v"], adam_v["q_proj.bias"])


@pytest.mark.parametrize("kwargs,message", [
    (dict(lr=-1.0), "Invalid learning rate: -1.0"),
    (dict(betas=(0.9, 1.0)), "Invalid beta parameter at index 1: 1.0"),
    (dict(eps=-1.0), "Invalid epsilon value: -1.0"),
    (dict(weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
    (dict(dim=0), "Invalid dim value: 0"),
    (dict(n_heads=4, n_kv_heads=3), "Invalid n_kv_heads value: 3"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        AdamMini([("w", nn.Parameter(torch.zeros(2)))], **kwargs)


def test_closed_form_state_shapes():
    from optedu.optim.adam_mini import state_shapes
    model = Tiny(1, torch.float32)
    opt = _make(AdamMini, model, 1, lr=0.01)
    _train(model, opt, steps=2)
    for name, p in model.named_parameters():
        st = opt.state[p]
        got = {k: tuple(v.shape) for k, v in st.items() if isinstance(v, torch.Tensor)}
        assert got == state_shapes(tuple(p.shape), name, DIM * DIM // HEADS), name
