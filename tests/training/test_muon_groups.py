"""optedu.training.muon_groups.muon_adamw_groups: hidden matrices to Muon, the rest
to AdamW."""

import pytest
import torch
from torch import nn

import optedu
from optedu.training.muon_groups import muon_adamw_groups


class Tiny(nn.Module):
    """Embedding, two blocks (linear, LayerNorm), a conv, a head."""

    def __init__(self, tie=False):
        super().__init__()
        self.embed = nn.Embedding(11, 8)
        self.blocks = nn.ModuleList(
            nn.ModuleDict(dict(fc=nn.Linear(8, 16), proj=nn.Linear(16, 8),
                               norm=nn.LayerNorm(8))) for _ in range(2))
        self.conv = nn.Conv1d(8, 8, 3, bias=False)
        self.head = nn.Linear(8, 11, bias=False)
        if tie:
            self.head.weight = self.embed.weight

    def forward(self, x):
        h = self.embed(x)                                   # (batch, 5, 8)
        for block in self.blocks:
            h = block["norm"](h + block["proj"](block["fc"](h).relu()))
        h = self.conv(h.transpose(1, 2)).transpose(1, 2)    # (batch, 3, 8)
        return self.head(h)


def names(groups):
    return [n for g in groups for n in g["param_names"]]


def test_the_rule_on_a_small_model():
    model = Tiny()
    muon, adamw = muon_adamw_groups(model, head=model.head)
    assert names(muon) == [f"blocks.{i}.{k}.weight" for i in (0, 1)
                           for k in ("fc", "proj")]
    assert set(names(adamw)) == {
        "embed.weight", "conv.weight", "head.weight",
        *(f"blocks.{i}.{k}.bias" for i in (0, 1) for k in ("fc", "proj")),
        *(f"blocks.{i}.norm.{k}" for i in (0, 1) for k in ("weight", "bias"))}
    assert len(muon) == 1 and len(adamw) == 1
    assert all(p.ndim == 2 for g in muon for p in g["params"])


def test_head_by_name_equals_head_by_module_and_none_keeps_it_in_muon():
    model = Tiny()
    by_module = muon_adamw_groups(model, head=model.head)
    by_name = muon_adamw_groups(model, head="head")
    assert names(by_module[0]) == names(by_name[0])
    assert names(by_module[1]) == names(by_name[1])
    muon, _ = muon_adamw_groups(model, head=None)
    assert names(muon)[-1] == "head.weight"


def test_the_head_must_be_named():
    with pytest.raises(TypeError, match="head"):
        muon_adamw_groups(Tiny())                  # no silent head in Muon


@pytest.mark.parametrize("head", [None, "head", "module"])
def test_a_tied_head_is_the_embedding_and_goes_to_adamw_once(head):
    model = Tiny(tie=True)
    head = model.head if head == "module" else head
    muon, adamw = muon_adamw_groups(model, head=head)
    assert "head.weight" not in names(muon) + names(adamw)   # one tensor
    assert names(adamw).count("embed.weight") == 1
    assert len(names(muon)) == 4


def test_a_frozen_head_can_be_named():
    model = Tiny()
    model.head.requires_grad_(False)
    for head in ("head", model.head):
        muon, adamw = muon_adamw_groups(model, head=head)
        assert "head.weight" not in names(muon) + names(adamw)


def test_adamw_decay_split_keeps_muon_whole():
    model = Tiny()
    muon, adamw = muon_adamw_groups(model, head="head",
                                    adamw_weight_decay=0.1)
    assert len(muon) == 1 and "weight_decay" not in muon[0]
    assert "_muon" not in str([sorted(g) for g in muon + adamw])
    decayed, undecayed = adamw
    assert decayed["weight_decay"] == 0.1 and undecayed["weight_decay"] == 0
    assert set(decayed["param_names"]) == {"embed.weight", "conv.weight",
                                           "head.weight"}
    assert all(n.endswith("bias") or ".norm." in n
               for n in undecayed["param_names"])
    muon, adamw = muon_adamw_groups(
        model, head="head", adamw_weight_decay=0.1,
        no_decay=("bias", "norm", "embedding"))
    assert "embed.weight" in adamw[1]["param_names"]


def test_frozen_parameters_are_left_out():
    model = Tiny()
    model.blocks[0]["fc"].requires_grad_(False)
    muon, adamw = muon_adamw_groups(model, head="head")
    assert "blocks.0.fc.weight" not in names(muon)
    assert "blocks.0.fc.bias" not in names(adamw)


@pytest.mark.parametrize("muon_cls", [optedu.Muon, torch.optim.Muon])
def test_the_groups_train_with_muon_and_adamw(muon_cls):
    torch.manual_seed(0)
    model = Tiny()
    muon, adamw = muon_adamw_groups(model, head=model.head,
                                    adamw_weight_decay=0.01)
    opts = [muon_cls(muon, lr=0.02), optedu.AdamW(adamw, lr=1e-2)]
    x = torch.randint(0, 11, (32, 5))
    y = torch.randint(0, 11, (32, 3))
    before = [p.detach().clone() for p in model.parameters()]
    losses = []
    for _ in range(30):
        loss = nn.functional.cross_entropy(model(x).flatten(0, 1),
                                           y.flatten())
        for opt in opts:
            opt.zero_grad()
        loss.backward()
        for opt in opts:
            opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
    assert all(not torch.equal(a, b)
               for a, b in zip(before, model.parameters()))


def test_torch_muon_refuses_what_the_builder_sends_to_adamw():
    model = Tiny()
    _, adamw = muon_adamw_groups(model, head="head")
    for p in adamw[0]["params"]:
        if p.ndim != 2:
            with pytest.raises(ValueError, match="only supports 2D"):
                torch.optim.Muon([p])


@pytest.mark.parametrize("head", ["nothing", 3, "foreign", "empty"])
def test_bad_head(head):
    """A name or a module that is not the model's raises, never guesses."""
    head = {"foreign": nn.Linear(8, 11),            # a copy, not the head
            "empty": nn.Identity()}.get(head, head)
    with pytest.raises(ValueError, match="head"):
        muon_adamw_groups(Tiny(), head=head)
