"""The language model in µP (optedu.choosing.lm.mu_gpt): its learning rates and decays are
``mup``'s, parameter by parameter; its initialisation is µP's; and the coordinate check on it
is flat in width, where the standard model, an Adam rate left undivided and a readout left in
the standard parametrisation each grow (the planted bugs the check must catch)."""

from __future__ import annotations

import math

import mup
import pytest
import torch
import torch.nn.functional as F

from optedu import AdamW
from optedu.choosing import lm
from optedu.training import mup as ours

WIDTHS = (48, 96, 192, 384)
LAYERS = ["embed", "blocks.0.attention.v", "blocks.0.attention.o", "blocks.1.mlp.down",
          "head"]


@pytest.mark.parametrize("width", [96, 192])
def test_rates_and_decays_are_mups(width):
    model, shapes = lm.mu_gpt(2, width)
    theirs, _ = lm.mu_gpt(2, width, readout=mup.MuReadout)
    lr, wd = 3e-3, 0.1
    mine = ours.mup_param_groups(model, shapes, "adam", lr=lr, weight_decay=wd)
    reference = mup.MuAdamW(theirs.parameters(), lr=lr, weight_decay=wd).param_groups

    def by_name(m, groups):
        name_of = {p: n for n, p in m.named_parameters()}
        return {name_of[p]: (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}

    assert by_name(model, mine) == by_name(theirs, reference)          # exact floats
    m = width / lm.MUP_BASE_WIDTH
    assert by_name(model, mine)["blocks.1.mlp.up.weight"] == (lr / m, wd * m)
    assert by_name(model, mine)["embed.weight"] == (lr, wd)
    assert by_name(model, mine)["head.weight"] == (lr, wd)


def test_a_tied_model_is_refused():
    with pytest.raises(ValueError, match="Invalid tie value: True"):
        lm.mu_gpt(2, 96, tie=True)


def test_the_initialisation_is_mups():
    model, _ = lm.mu_gpt(2, 192, seed=1)
    theirs, _ = lm.mu_gpt(2, 192, seed=1, readout=mup.MuReadout)
    x = torch.randint(0, lm.VOCAB, (2, 16))
    assert model.head.weight.abs().max() == 0 and float(model.head.width_mult) == 4.0
    assert all(b.attention.q.weight.abs().max() == 0 for b in model.blocks)
    # hidden matrices: deviation 0.02 / sqrt(m); the embedding keeps 0.02
    k = torch.cat([b.attention.k.weight.flatten() for b in model.blocks])
    assert k.std().item() == pytest.approx(0.02 / 2, rel=0.02)
    assert model.embed.weight.std().item() == pytest.approx(0.02, rel=0.02)
    model.head.weight.data.normal_()           # a readout that has learnt: divided by m
    theirs.head.weight.data.copy_(model.head.weight)
    assert torch.equal(model(x), theirs(x))
    # at the base width µP is the standard model: the same weights give the same outputs
    # (the readout's multiplier is 1), and every tensor has one rate
    base, shapes = lm.mu_gpt(2, lm.MUP_BASE_WIDTH)
    sp = lm.GPT(2, lm.MUP_BASE_WIDTH, lm.MUP_BASE_WIDTH // 16)
    base.load_state_dict(sp.state_dict())
    groups = ours.mup_param_groups(base, shapes, "adam", lr=1e-3)
    assert {g["lr"] for g in groups} == {1e-3}
    assert torch.equal(base(x), sp(x))         # at the base width µP is the standard model


def slopes(variant: str, lr: float = 1e-2, steps: int = 5) -> torch.Tensor:
    """The coordinate check's slopes (log mean |activation| against log width) over 5 steps
    of AdamW at ``lr``, 2 seeds, on 8 windows of 32 bytes: ``"mup"``; ``"sp"`` (the standard
    GPT); ``"undivided"`` (µP's model, one Adam rate for all); ``"sp_readout"`` (µP but a
    plain linear readout drawn with 0.02)."""
    data = lm.windows(lm.stdlib_source().train, 8, seed=3)[:, :33]

    def make_model(width: int) -> torch.nn.Module:
        if variant == "sp":
            return lm.GPT(2, width, width // 16)
        model, _ = lm.mu_gpt(2, width, seed=torch.initial_seed())
        if variant == "sp_readout":
            model.head = torch.nn.Linear(width, lm.VOCAB, bias=False)
            torch.nn.init.normal_(model.head.weight, std=0.02)
        return model

    def make_optimizer(model: torch.nn.Module) -> torch.optim.Optimizer:
        if variant in ("sp", "undivided"):
            return AdamW(model.parameters(), lr=lr, weight_decay=0.0)
        width = model.embed.weight.shape[1]
        shapes = ours.shapes_of(model, lm.GPT(2, 48, 3), lm.GPT(2, 96, 6))
        assert shapes == lm.mu_gpt(2, width)[1] or variant == "sp_readout"
        return AdamW(ours.mup_param_groups(model, shapes, "adam", lr=lr), weight_decay=0.0)

    def loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(out.reshape(-1, lm.VOCAB), y.reshape(-1))

    return ours.coord_check(make_model, WIDTHS, steps, make_optimizer=make_optimizer,
                            data=(data[:, :-1], data[:, 1:]), loss_fn=loss, layers=LAYERS,
                            seeds=2).slopes()


#: a slope below counts as flat: the check's noise (up to about 0.2 over other seeds and
#: batches), well under the bugs' growth
FLAT = 0.3


def test_the_coordinate_check_is_flat_under_mup():
    s = slopes("mup")
    assert torch.isnan(s[0, -1])           # the readout starts at zero: log 0
    s[0, -1] = 0.0
    assert s.abs().max() < FLAT, s


@pytest.mark.full
def test_the_standard_model_grows_with_width():
    s = slopes("sp")
    assert abs(s[0, 0]) < FLAT                 # the embedding: a lookup, flat
    assert (s[:, 1:4] > 0.4).all(), s          # the branches, already at initialisation
    assert (s[1:, -1] > 0.4).all(), s          # the logits, after the first step


def test_an_adam_rate_not_divided_by_the_width_is_caught():
    s = slopes("undivided")
    assert (s[2:, 1:4] > 0.7).all(), s         # the blocks' outputs grow like n or faster
    assert s[0, 1:4].abs().max() < FLAT


@pytest.mark.full
def test_a_readout_left_in_the_standard_parametrisation_is_caught():
    s = slopes("sp_readout")
    assert (s[:, -1] > 0.4).all(), s           # the logits grow like sqrt(n) and more
    assert s[:, :-1].max() < FLAT               # no block output grows (some shrink)
    assert not math.isnan(float(s[0, -1]))
