"""The long lesson's name-matched layer-wise decay and no-decay rules, and ELECTRA's numbering,
against optedu.training.param_groups."""

import pytest
import torch
from torch import nn

from optedu.training.param_groups import block_depth, check_groups, layerwise_lr_groups
from optedu.training.variants.param_groups import (configure_layerwise_lr_decay, electra_layer_lrs,
                                          layerwise_lr_decay_by_name, no_decay_by_name,
                                          no_decay_by_ndim_or_name)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1 = nn.LayerNorm(2)
        self.fc = nn.Linear(2, 2)


class Gpt(nn.Module):
    """GPT-2-like names: embeddings, numbered blocks with ln_1, a final ln_f and a head."""

    def __init__(self, n_layers=3):
        super().__init__()
        self.wte = nn.Embedding(4, 2)
        self.layers = nn.ModuleList(Block() for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(2)
        self.head = nn.Linear(2, 3)


def lr_of(groups, model):
    name_of = {p: n for n, p in model.named_parameters()}
    return {name_of[p]: g["lr"] for g in groups for p in g["params"]}


def test_name_matched_llrd_leaves_embeddings_final_norm_and_head_in_no_group():
    model = Gpt()
    groups = layerwise_lr_decay_by_name(model, 1.0, n_layers=3, lr_decay=0.5)
    lrs = lr_of(groups, model)
    missing = {n for n, _ in model.named_parameters()} - set(lrs)
    assert missing == {"wte.weight", "ln_f.weight", "ln_f.bias", "head.weight", "head.bias"}
    # "layer 0" is the first block, and the top block gets lr_decay * base_lr, not base_lr
    assert lrs["layers.0.fc.weight"] == 0.5 ** 3
    assert lrs["layers.2.fc.weight"] == 0.5
    assert max(lrs.values()) == 0.5
    with pytest.raises(ValueError, match="5 trainable parameter"):
        check_groups(groups, model)


def test_name_matched_llrd_decays_gpt2_style_norm_weights():
    model = Gpt()
    decay_of = {}
    name_of = {p: n for n, p in model.named_parameters()}
    for g in layerwise_lr_decay_by_name(model, 1.0, n_layers=3, weight_decay=0.1):
        decay_of.update({name_of[p]: g["weight_decay"] for p in g["params"]})
    assert decay_of["layers.1.ln_1.weight"] == 0.1          # a LayerNorm scale, decayed
    assert decay_of["layers.1.ln_1.bias"] == 0.0
    assert not no_decay_by_name("ln_f.weight") and no_decay_by_name("encoder.LayerNorm.weight")
    assert no_decay_by_ndim_or_name("ln_f.weight", model.ln_f.weight)
    assert not no_decay_by_ndim_or_name("head.weight", model.head.weight)


def test_configure_returns_torch_adamw_that_never_moves_the_head():
    torch.manual_seed(0)
    model = Gpt()
    optimizer = configure_layerwise_lr_decay(model, 1e-2, n_layers=3)
    assert isinstance(optimizer, torch.optim.AdamW)
    head = model.head.weight.detach().clone()
    block = model.layers[2].fc.weight.detach().clone()
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    optimizer.step()
    assert torch.equal(model.head.weight, head)
    assert not torch.equal(model.layers[2].fc.weight, block)


def test_electra_layer_lrs_as_published():
    lrs = electra_layer_lrs(1.0, 0.8, n_layers=12)
    assert lrs["task_specific/"] == 1.0
    assert lrs["encoder/layer_11/"] == pytest.approx(0.8 ** 2)
    assert lrs["/embeddings/"] == pytest.approx(0.8 ** 14)


@pytest.mark.parametrize("n_layers", [1, 3, 12])
def test_head_gap_2_reproduces_electra_numbering(n_layers):
    model = Gpt(n_layers)
    ours = lr_of(layerwise_lr_groups(model, 1e-3, 0.8, head_gap=2), model)
    electra = electra_layer_lrs(1e-3, 0.8, n_layers)
    assert ours["head.weight"] == electra["task_specific/"]
    assert ours["wte.weight"] == electra["/embeddings/"]
    for i in range(n_layers):
        assert ours[f"layers.{i}.fc.weight"] == electra[f"encoder/layer_{i}/"]
    # the default numbering has no hole: the top block at γ η, the embeddings at γ^(L+1) η
    default = lr_of(layerwise_lr_groups(model, 1e-3, 0.8), model)
    assert default[f"layers.{n_layers - 1}.fc.weight"] == 1e-3 * 0.8
    assert default["wte.weight"] == 1e-3 * 0.8 ** (n_layers + 1)


def test_head_gap_is_checked():
    model = Gpt()
    with pytest.raises(ValueError, match="Invalid head_gap value: 0"):
        block_depth(model, head_gap=0)
    with pytest.raises(ValueError, match="default layer_of only"):
        layerwise_lr_groups(model, 1e-3, 0.8, lambda n: 0, head_gap=2)
