"""optedu.training.param_groups: exact assignment on a tiny transformer, LLRD rates by hand, the
exactly-once check, and optimizers (torch and optedu) honouring the groups."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import optedu
from optedu.training.param_groups import (backbone_head_groups, block_depth, check_groups,
                                 describe_groups, layerwise_lr_groups, no_decay_groups,
                                 split_no_decay, trainable_parameters)

V, T, D, C, L = 11, 5, 8, 3, 3


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(D)
        self.attn = nn.MultiheadAttention(D, 2, batch_first=True)
        self.norm2 = nn.RMSNorm(D)
        self.mlp = nn.Sequential(nn.Linear(D, 2 * D), nn.GELU(), nn.Linear(2 * D, D))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class Tiny(nn.Module):
    """Embedding + positions, L pre-LN blocks, a final norm named ln_f, a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(V, D)
        self.pos_emb = nn.Parameter(0.1 * torch.randn(T, D))
        self.layers = nn.ModuleList(Block() for _ in range(L))
        self.ln_f = nn.LayerNorm(D)
        self.head = nn.Linear(D, C)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens) + self.pos_emb
        for block in self.layers:
            x = block(x)
        return self.head(self.ln_f(x).mean(dim=1))


def block_names(i: int) -> dict[str, bool]:
    """Parameter names of block i -> whether weight decay applies."""
    p = f"layers.{i}."
    return {p + "norm1.weight": False, p + "norm1.bias": False,
            p + "attn.in_proj_weight": True, p + "attn.in_proj_bias": False,
            p + "attn.out_proj.weight": True, p + "attn.out_proj.bias": False,
            p + "norm2.weight": False,
            p + "mlp.0.weight": True, p + "mlp.0.bias": False,
            p + "mlp.2.weight": True, p + "mlp.2.bias": False}


DECAYS = {"pos_emb": True, "embed.weight": True,
          **{k: v for i in range(L) for k, v in block_names(i).items()},
          "ln_f.weight": False, "ln_f.bias": False, "head.weight": True, "head.bias": False}


@pytest.fixture
def model() -> Tiny:
    torch.manual_seed(0)
    return Tiny()


def settings(groups, key):
    """{parameter name: group[key]} read from each group's param_names."""
    return {name: g[key] for g in groups for name in g["param_names"]}


def test_model_names_are_the_ones_listed(model):
    assert list(trainable_parameters(model)) == list(DECAYS)


def test_no_decay_groups_exact_assignment(model):
    groups = no_decay_groups(model, 0.1)
    assert [g["weight_decay"] for g in groups] == [0.1, 0.0]
    assert settings(groups, "weight_decay") == {n: 0.1 if d else 0.0 for n, d in DECAYS.items()}
    params = dict(model.named_parameters())
    for g in groups:  # names and tensors line up
        assert all(params[n] is p for n, p in zip(g["param_names"], g["params"]))


def test_no_decay_kinds(model):
    with_emb = settings(no_decay_groups(model, 0.1, ("bias", "norm", "embedding")), "weight_decay")
    assert with_emb["embed.weight"] == 0.0 and with_emb["pos_emb"] == 0.1  # by type, not name
    only_1d = settings(no_decay_groups(model, 0.1, ("1d",)), "weight_decay")
    assert only_1d == {n: 0.0 if p.ndim <= 1 else 0.1 for n, p in model.named_parameters()}
    assert only_1d == settings(no_decay_groups(model, 0.1), "weight_decay")  # same on this model


def test_norm_layers_found_by_type_whatever_their_names():
    net = nn.Sequential()
    net.add_module("conv", nn.Conv1d(2, 4, 3))
    net.add_module("bn", nn.BatchNorm1d(4))
    net.add_module("gn", nn.GroupNorm(2, 4))
    net.add_module("inorm", nn.InstanceNorm1d(4, affine=True))
    net.add_module("rms", nn.RMSNorm(4))
    net.add_module("scale", nn.LayerNorm(4, bias=False))
    wd = settings(no_decay_groups(net, 0.5, ("norm",)), "weight_decay")
    assert wd == {"conv.weight": 0.5, "conv.bias": 0.5, "bn.weight": 0.0, "bn.bias": 0.0,
                  "gn.weight": 0.0, "gn.bias": 0.0, "inorm.weight": 0.0, "inorm.bias": 0.0,
                  "rms.weight": 0.0, "scale.weight": 0.0}


def test_block_depth_default():
    torch.manual_seed(0)
    depth = block_depth(Tiny())
    assert [depth(n) for n in ("embed.weight", "pos_emb", "layers.0.norm1.weight",
                               "layers.2.mlp.2.bias", "ln_f.weight", "head.bias")] == [0, 0, 1, 3, 4, 4]
    with pytest.raises(ValueError, match="No numbered layers"):
        block_depth(nn.Linear(2, 2))


def test_llrd_rates_by_hand(model):
    groups = layerwise_lr_groups(model, 1e-3, 0.5)
    # depths 0..4 = embeddings, blocks 0..2, head: lr = 1e-3 * 0.5 ** (4 - depth)
    assert [g["lr"] for g in groups] == [6.25e-5, 1.25e-4, 2.5e-4, 5e-4, 1e-3]
    assert groups[0]["param_names"] == ["pos_emb", "embed.weight"]
    assert groups[4]["param_names"] == ["ln_f.weight", "ln_f.bias", "head.weight", "head.bias"]
    lrs = settings(groups, "lr")
    assert all(lrs[n] == 1e-3 * 0.5 ** (3 - i) for i in range(L) for n in block_names(i))
    assert "weight_decay" not in groups[0]  # left to the optimizer's default


def test_llrd_times_no_decay(model):
    groups = layerwise_lr_groups(model, 1e-3, 0.5, weight_decay=0.01)
    assert len(groups) == 9  # 5 depths, each split in two except the embeddings (no bias)
    lr, wd = settings(groups, "lr"), settings(groups, "weight_decay")
    assert lr == settings(layerwise_lr_groups(model, 1e-3, 0.5), "lr")
    assert wd == {n: 0.01 if d else 0.0 for n, d in DECAYS.items()}


def test_custom_layer_of_and_one_that_misses_parameters(model):
    # every block its own depth, everything else in one group at depth 0: still complete
    groups = layerwise_lr_groups(model, 1.0, 0.1, lambda n: int(n.split(".")[1]) + 1
                                 if n.startswith("layers.") else 0)
    assert [g["lr"] for g in groups] == pytest.approx([1e-3, 1e-2, 1e-1, 1.0], rel=1e-12)
    # a layer_of that only recognises blocks leaves embeddings and head out: check_groups names them
    only_blocks = lambda n: int(n.split(".")[1]) if n.startswith("layers.") else None  # noqa: E731
    with pytest.raises(ValueError) as info:
        layerwise_lr_groups(model, 1e-3, 0.8, only_blocks)
    message = str(info.value)
    assert "6 trainable parameter(s) in no group" in message
    for name in ("embed.weight", "pos_emb", "ln_f.weight", "ln_f.bias", "head.weight", "head.bias"):
        assert name in message
    with pytest.raises(ValueError,
                       match=r"Invalid layer_of\('pos_emb'\) value: -1 \(expected an integer >= 0\)"):
        layerwise_lr_groups(model, 1e-3, 0.8, lambda n: -1)


def test_duplicates_and_foreign_tensors_raise(model):
    params = dict(model.named_parameters())
    everything = list(params.values())
    check_groups([{"params": everything}], model)  # complete: no error
    with pytest.raises(ValueError, match=r"1 parameter\(s\) in more than one place: head.bias$"):
        check_groups([{"params": everything}, {"params": [params["head.bias"]]}], model)
    with pytest.raises(ValueError, match="in more than one place: pos_emb"):
        check_groups([{"params": everything + [params["pos_emb"]]}], model)
    with pytest.raises(ValueError, match="1 tensor"):
        check_groups([{"params": everything + [torch.zeros(2, requires_grad=True)]}], model)


def test_frozen_parameters_are_excluded(model):
    model.embed.requires_grad_(False)
    model.layers[0].requires_grad_(False)
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert len(frozen) == 1 + 11
    for groups in (no_decay_groups(model, 0.1), layerwise_lr_groups(model, 1e-3, 0.5),
                   backbone_head_groups(model, "head", 1e-4, 1e-3)):
        names = [n for g in groups for n in g["param_names"]]
        assert sorted(names) == sorted(set(DECAYS) - frozen)
    # depth 1 (layers.0) is empty; the rates still follow the depth, not the group index
    assert settings(layerwise_lr_groups(model, 1.0, 0.5), "lr")["layers.1.norm1.weight"] == 0.25


def test_backbone_head_by_module_and_by_prefix(model):
    by_module = backbone_head_groups(model, model.head, 1e-4, 1e-3)
    by_prefix = backbone_head_groups(model, "head", 1e-4, 1e-3)
    for groups in (by_module, by_prefix):
        assert [g["lr"] for g in groups] == [1e-4, 1e-3]
        assert groups[1]["param_names"] == ["head.weight", "head.bias"]
        assert len(groups[0]["params"]) == len(DECAYS) - 2
    split = backbone_head_groups(model, "layers.2", 1e-4, 1e-3, weight_decay=0.05)
    assert [(g["lr"], g["weight_decay"]) for g in split] == [
        (1e-4, 0.05), (1e-4, 0.0), (1e-3, 0.05), (1e-3, 0.0)]
    with pytest.raises(ValueError, match="Invalid head value: 'layer' \\(expected a submodule"):
        backbone_head_groups(model, "layer", 1e-4, 1e-3)
    with pytest.raises(ValueError, match="not parameters of the model"):
        backbone_head_groups(model, nn.Linear(D, C), 1e-4, 1e-3)


@pytest.mark.parametrize("call, message", [
    (lambda m: no_decay_groups(m, 0.1, ("bias", "norms")),
     r"Invalid no_decay value: \['norms'\] \(expected some of"),
    (lambda m: no_decay_groups(m, -0.1), "Invalid weight_decay value: -0.1"),
    (lambda m: layerwise_lr_groups(m, -1e-3, 0.8), "Invalid learning rate: -0.001"),
    (lambda m: layerwise_lr_groups(m, 1e-3, 0.0),
     r"Invalid decay value: 0.0 \(expected a number in \(0, 1\]\)"),
    (lambda m: layerwise_lr_groups(m, 1e-3, 1.5), r"Invalid decay value: 1.5"),
    (lambda m: backbone_head_groups(m, "head", -1.0, 1e-3), "Invalid backbone_lr value: -1.0"),
])
def test_errors(model, call, message):
    with pytest.raises(ValueError, match=message):
        call(model)


def test_describe_groups(model):
    text = describe_groups(layerwise_lr_groups(model, 1e-3, 0.5, weight_decay=0.01), model)
    lines = text.splitlines()
    assert lines[0].split()[:5] == ["group", "tensors", "numel", "lr", "weight_decay"]
    assert lines[1].split()[:5] == ["0", "2", str(V * D + T * D), "6.25e-05", "0.01"]
    handmade = [{"params": [model.head.weight], "lr": 0.1}]
    text = describe_groups(handmade, model)
    assert text.splitlines()[1].split()[:5] == ["0", "1", str(C * D), "0.1", "default"]
    assert text.splitlines()[-1].startswith(f"in no group ({len(DECAYS) - 1}): pos_emb, embed.weight")


def run(model, groups_of, optimizer_cls, steps=5, **kwargs):
    """Train a copy of ``model`` in float64 on fixed batches; return its parameters by name."""
    torch.manual_seed(1)
    net = Tiny().double()
    net.load_state_dict(model.state_dict())
    opt = optimizer_cls(groups_of(net), **kwargs)
    data = torch.Generator().manual_seed(2)
    for _ in range(steps):
        tokens = torch.randint(0, V, (16, T), generator=data)
        labels = torch.randint(0, C, (16,), generator=data)
        opt.zero_grad()
        nn.functional.cross_entropy(net(tokens), labels).backward()
        opt.step()
    return {n: p.detach().clone() for n, p in net.named_parameters()}


def run_fixed_grads(model, groups_of, optimizer_cls, steps=5, **kwargs):
    """Steps with gradients drawn independently of the parameters: each tensor's path then
    depends only on its own group's hyperparameters."""
    net = Tiny().double()
    net.load_state_dict(model.state_dict())
    opt = optimizer_cls(groups_of(net), **kwargs)
    draws = torch.Generator().manual_seed(3)
    for _ in range(steps):
        for p in net.parameters():
            p.grad = torch.randn(p.shape, generator=draws, dtype=p.dtype)
        opt.step()
    return {n: p.detach().clone() for n, p in net.named_parameters()}


@pytest.mark.parametrize("optimizer_cls", [torch.optim.AdamW, optedu.AdamW])
def test_weight_decay_zero_group_equals_undecayed_run(model, optimizer_cls):
    grouped = run_fixed_grads(model, lambda m: no_decay_groups(m, 0.5), optimizer_cls, lr=0.01)
    plain = run_fixed_grads(model, lambda m: m.parameters(), optimizer_cls, lr=0.01,
                            weight_decay=0.0)
    decayed = run_fixed_grads(model, lambda m: m.parameters(), optimizer_cls, lr=0.01,
                              weight_decay=0.5)
    for name, decays in DECAYS.items():
        twin = decayed if decays else plain
        other = plain if decays else decayed
        assert torch.equal(grouped[name], twin[name]), name
        assert not torch.equal(grouped[name], other[name]), name


@pytest.mark.parametrize("optimizer_cls", [torch.optim.AdamW, optedu.AdamW])
def test_llrd_first_step_moves_each_group_by_its_lr(model, optimizer_cls):
    # Adam's first step is lr * g / (|g| + eps): each coordinate moves by lr (for |g| >> eps)
    before = {n: p.detach().double().clone() for n, p in model.named_parameters()}
    after = run(model, lambda m: layerwise_lr_groups(m, 1e-2, 0.5), optimizer_cls, steps=1,
                weight_decay=0.0)
    lrs = settings(layerwise_lr_groups(model, 1e-2, 0.5), "lr")
    for name, lr in lrs.items():
        moved = (after[name] - before[name]).abs().max().item()
        assert moved == pytest.approx(lr, rel=1e-4), name


def test_torch_and_optedu_agree_on_builder_groups(model):
    def groups_of(m):
        return layerwise_lr_groups(m, 3e-3, 0.7, weight_decay=0.1)
    ours = run(model, groups_of, optedu.AdamW, steps=10)
    theirs = run(model, groups_of, torch.optim.AdamW, steps=10)
    for name in DECAYS:
        assert torch.equal(ours[name], theirs[name]), name  # bit-identical


def test_split_keeps_other_hyperparameters(model):
    groups = split_no_decay([{"params": list(model.parameters()), "lr": 0.3, "betas": (0.8, 0.9)}],
                            model, 0.2)
    assert [(g["lr"], g["betas"], g["weight_decay"]) for g in groups] == [
        (0.3, (0.8, 0.9), 0.2), (0.3, (0.8, 0.9), 0.0)]
    optedu.AdamW(groups)  # accepted as is
