"""optedu.training.layer_stats: update ratios by hand, Adam's sqrt(v-hat) against the state of
torch's and optedu's Adam, a parameter whose gradient returns after silence, and attention
logit maxima against logits computed by hand."""

import math

import pytest
import torch
from torch import nn

import optedu
from optedu.training.layer_stats import (AttentionLogits, UpdateRatios, adam_sqrt_v,
                                         summarise)


def test_update_ratio_of_an_sgd_step_by_hand():
    lin = nn.Linear(3, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[3.0, 0.0, 4.0], [0.0, 0.0, 0.0]]))
        lin.bias.zero_()
    opt = torch.optim.SGD(lin.parameters(), lr=0.1)
    lin.weight.grad = torch.tensor([[1.0, 2.0, 2.0], [0.0, 0.0, 0.0]])   # norm 3
    lin.bias.grad = torch.zeros(2)
    ratios = UpdateRatios(lin)
    ratios.before()
    opt.step()
    r = ratios.after()
    assert r["weight"] == pytest.approx(0.3 / 5.0)
    assert r["bias"] == 0.0
    lin.bias.grad = torch.ones(2)
    ratios.before()
    opt.step()
    assert ratios.after()["bias"] == math.inf          # moved from a zero tensor
    with pytest.raises(RuntimeError, match=r"after\(\) without before\(\)"):
        UpdateRatios(lin).after()
    with pytest.raises(ValueError, match="Invalid model: Tensor"):
        UpdateRatios(torch.ones(2))


@pytest.mark.parametrize("make", [
    lambda p: torch.optim.Adam(p, lr=1e-2, betas=(0.9, 0.95)),
    lambda p: torch.optim.AdamW(p, lr=1e-2, betas=(0.9, 0.95), amsgrad=True),
    lambda p: optedu.Adam(p, lr=1e-2, betas=(0.9, 0.95)),
])
def test_sqrt_v_hat_against_the_gradients(make):
    torch.manual_seed(0)
    w = nn.Parameter(torch.randn(4))
    opt = make([w])
    grads = [torch.randn(4) for _ in range(5)]
    for g in grads:
        w.grad = g.clone()
        opt.step()
    v = torch.zeros(4)
    vmax = torch.zeros(4)
    for g in grads:
        v = 0.95 * v + 0.05 * g * g
        vmax = torch.maximum(vmax, v)
    amsgrad = opt.param_groups[0].get("amsgrad", False)
    root = ((vmax if amsgrad else v) / (1 - 0.95 ** 5)).sqrt()
    (stats,) = adam_sqrt_v(opt, {w: "w"}).items()
    assert stats[0] == "w" and stats[1].step == 5
    assert stats[1].mean == pytest.approx(float(root.mean()), rel=1e-5)
    assert stats[1].max == pytest.approx(float(root.max()), rel=1e-5)


def test_sqrt_v_decays_in_silence_and_the_returning_step_is_large():
    """A coordinate with gradient 1 for 100 steps, 0 for k, then 1 again: sqrt(v-hat) falls as
    beta2^(k/2) and the returning step is (1-beta1)/sqrt(1-beta2) learning rates when v has
    decayed (beta2 = 0.95), against 1 when it has not."""
    for beta2, k, expected in [(0.95, 400, 0.1 / math.sqrt(0.05)), (0.95, 0, 1.0)]:
        w = nn.Parameter(torch.zeros(1))
        opt = torch.optim.Adam([w], lr=1.0, betas=(0.9, beta2), eps=0.0)
        for g in [1.0] * 100 + [0.0] * k:
            w.grad = torch.tensor([g])
            opt.step()
        root = adam_sqrt_v(opt)["0.0"].max
        v_before = opt.state[w]["exp_avg_sq"].clone()
        assert root == pytest.approx(math.sqrt(beta2 ** k * (1 - beta2 ** 100)
                                               / (1 - beta2 ** (100 + k))), rel=1e-4)
        before = float(w.detach())
        w.grad = torch.tensor([1.0])
        opt.step()
        assert before - float(w.detach()) == pytest.approx(expected, rel=1e-3)
        assert float(v_before) < 1e-8 or k == 0
    with pytest.raises(ValueError, match="Invalid optimizer: SGD"):
        adam_sqrt_v(torch.optim.SGD([nn.Parameter(torch.ones(1))], lr=0.1))


def logits_by_hand(q, k):
    return (q @ k.transpose(-1, -2)).abs() / math.sqrt(q.shape[-1])


def test_logit_maxima_of_multihead_attention():
    torch.manual_seed(0)
    for batch_first in (True, False):
        mha = nn.MultiheadAttention(8, 2, batch_first=batch_first)
        x = torch.randn(3, 5, 8)
        logits = AttentionLogits(nn.Sequential(mha))
        inp = x if batch_first else x.transpose(0, 1)
        mha(inp, inp, inp)
        q = nn.functional.linear(x, mha.in_proj_weight[:8], mha.in_proj_bias[:8])
        k = nn.functional.linear(x, mha.in_proj_weight[8:16], mha.in_proj_bias[8:16])
        q, k = (t.view(3, 5, 2, 4).transpose(1, 2) for t in (q, k))
        expected = logits_by_hand(q, k).amax(dim=(0, 2, 3)).detach()
        assert torch.allclose(logits.last["0"], expected)
        # and the softmax of those logits is what the module attends with
        _, weights = mha(inp, inp, inp, average_attn_weights=False)
        s = (q @ k.transpose(-1, -2)) / 2.0
        assert torch.allclose(weights, s.softmax(-1), atol=1e-6)
        assert logits.maxima() == {"0": float(expected.max())}


class Packed(nn.Module):
    def __init__(self, qk_norm=False):
        super().__init__()
        self.heads = 2
        self.qkv = nn.Linear(8, 24)
        self.q_norm = nn.LayerNorm(4) if qk_norm else None
        self.k_norm = nn.LayerNorm(4) if qk_norm else None

    def forward(self, x):
        return self.qkv(x)


@pytest.mark.parametrize("qk_norm", [False, True])
@pytest.mark.parametrize("causal", [False, True])
def test_logit_maxima_of_a_packed_qkv_module(qk_norm, causal):
    torch.manual_seed(0)
    m = Packed(qk_norm)
    x = torch.randn(3, 5, 8)
    logits = AttentionLogits(m, causal=causal)
    m(x)
    q, k, _ = m.qkv(x).view(3, 5, 3, 2, 4).permute(2, 0, 3, 1, 4)
    if qk_norm:
        q, k = m.q_norm(q), m.k_norm(k)
    s = logits_by_hand(q, k)
    if causal:
        s = s.masked_fill(torch.ones(5, 5, dtype=torch.bool).triu(1), 0.0)
    assert torch.allclose(logits.last[""], s.amax(dim=(0, 2, 3)))
    logits.remove()
    logits.last.clear()
    m(x)
    assert logits.last == {}


def test_the_benchmark_transformer_is_supported():
    from optedu.choosing.workloads import char_transformer
    model = char_transformer(0)
    logits = AttentionLogits(model, causal=True)
    model(torch.zeros(2, 6, dtype=torch.long))
    assert sorted(logits.last) == ["blocks.0", "blocks.1"]


def test_unsupported_modules_raise():
    with pytest.raises(TypeError, match="Sequential has no supported attention module"):
        AttentionLogits(nn.Sequential(nn.Linear(2, 2)))
    with pytest.raises(TypeError, match="Unsupported attention module '0': Linear"):
        AttentionLogits(nn.Sequential(nn.Linear(2, 2)), modules=["0"])
    mha = nn.MultiheadAttention(8, 2, kdim=4, vdim=4)
    with pytest.raises(TypeError, match="Unsupported attention module '0': Multihead"):
        AttentionLogits(nn.Sequential(mha), modules=["0"])
    with pytest.raises(ValueError, match="Invalid modules: 'x' is not a submodule"):
        AttentionLogits(nn.Sequential(Packed()), modules=["x"])


def test_summarise():
    assert summarise({"a": 1.0, "b": 3.0, "c": 2.0}, top=2) == [("b", 3.0), ("c", 2.0)]
    with pytest.raises(ValueError, match="Invalid top value: 0"):
        summarise({}, top=0)
