"""optedu.training.mup against Microsoft's mup 1.0.0: shapes, per-parameter learning rates and
weight decays, initialisation, readout outputs and trajectories bit for bit, on an MLP and a
small transformer at the base width and 4x; then the coordinate check and the errors."""

from __future__ import annotations

import itertools

import mup
import pytest
import torch
from torch import nn

import optedu
from optedu.training import mup as ours
from optimizers import FULL

STEPS = 10


# --- the two models, built with either library's readout ----------------------------------------

class MLP(nn.Module):
    def __init__(self, width: int, readout=ours.MuReadout, **readout_kwargs):
        super().__init__()
        self.fc1 = nn.Linear(6, width)
        self.fc2 = nn.Linear(width, width)
        self.head = readout(width, 3, **readout_kwargs)

    def forward(self, x):
        return self.head(self.fc2(self.fc1(x).relu()).relu())


class Block(nn.Module):
    """Pre-norm attention + MLP, from nn.Linear. Attention scores q.k / d_head, as mup's
    examples write them (1/d, not 1/sqrt(d): under µP q and k become correlated during
    training, and q.k grows like d)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, 4 * width)
        self.fc2 = nn.Linear(4 * width, width)

    def forward(self, h):
        b, t, width = h.shape
        d = width // self.heads
        q, k, v = (z.view(b, t, self.heads, d).transpose(1, 2)
                   for z in self.qkv(self.norm1(h)).split(width, dim=-1))
        scores = q @ k.transpose(-2, -1) / d                       # µP: 1/d
        mask = torch.ones(t, t, dtype=torch.bool).tril()
        attn = scores.masked_fill(~mask, float("-inf")).softmax(-1) @ v
        h = h + self.proj(attn.transpose(1, 2).reshape(b, t, width))
        return h + self.fc2(self.fc1(self.norm2(h)).relu())


class Transformer(nn.Module):
    def __init__(self, width: int, readout=ours.MuReadout, vocab: int = 11, context: int = 5,
                 **readout_kwargs):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.pos = nn.Embedding(context, width)
        self.blocks = nn.ModuleList(Block(width, heads=2) for _ in range(2))
        self.norm = nn.LayerNorm(width)
        self.head = readout(width, vocab, **readout_kwargs)

    def forward(self, tokens):
        h = self.embed(tokens) + self.pos(torch.arange(tokens.shape[1]))
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h))


MODELS = {"mlp": (MLP, 16), "transformer": (Transformer, 8)}   # class, base width


def _data(name: str, step: int, dtype=torch.float32):
    g = torch.Generator().manual_seed(100 + step)
    if name == "mlp":
        return torch.randn(8, 6, generator=g, dtype=dtype), torch.randn(8, 3, generator=g,
                                                                         dtype=dtype)
    tokens = torch.randint(0, 11, (4, 5), generator=g)
    return tokens, torch.randint(0, 11, (4, 5), generator=g)


def _loss(name, model, step):
    x, y = _data(name, step, next(model.parameters()).dtype)
    out = model(x)
    if name == "mlp":
        return ((out - y) ** 2).mean()
    return nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))


def _pair(name: str, mult: int, seed: int = 0, dtype=torch.float32, **readout_kwargs):
    """(ours, theirs, our shapes): the same model at base width x ``mult``, the same seed,
    each after its library's set_base_shapes (base width, delta at twice the base)."""
    cls, base = MODELS[name]
    made = []
    for readout, set_shapes in ((ours.MuReadout, ours.set_base_shapes),
                                (mup.MuReadout, mup.set_base_shapes)):
        base_model = cls(base, readout, **readout_kwargs)
        delta_model = cls(2 * base, readout, **readout_kwargs)
        torch.manual_seed(seed)
        model = cls(base * mult, readout, **readout_kwargs).to(dtype)
        made.append((model, set_shapes(model, base_model, delta=delta_model)))
    (a, shapes), (b, _) = made
    return a, b, shapes


def _by_param(model, groups, keys=("lr", "weight_decay")):
    """{name: (hyper, ...)} from an optimizer's (or a builder's) groups."""
    name_of = {p: n for n, p in model.named_parameters()}
    return {name_of[p]: tuple(g[k] for k in keys) for g in groups for p in g["params"]}


def _user_groups(model, two: bool, kind: str = "adam"):
    """None (every parameter in one group) or two groups of the user's: the first block's or
    layer's tensors with their own lr, weight decay (and betas), the rest with the defaults."""
    if not two:
        return None
    first = [p for n, p in model.named_parameters() if n.startswith(("blocks.0", "fc1"))]
    rest = [p for n, p in model.named_parameters() if not n.startswith(("blocks.0", "fc1"))]
    own = {"lr": 0.03, "weight_decay": 0.2, **({"betas": (0.8, 0.9)} if kind == "adam" else {})}
    return [{"params": first, **own}, {"params": rest}]


def _their_groups(model, two: bool, kind: str):
    """The same, as mup takes them (a list of parameters for one group)."""
    return _user_groups(model, two, kind) or list(model.parameters())


# --- shapes ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "mult"), list(itertools.product(MODELS, (1, 4))))
def test_shapes_match_mup(name, mult):
    a, b, shapes = _pair(name, mult)
    for n, p in b.named_parameters():
        mine, theirs = shapes[n], p.infshape
        assert [d.base for d in mine.dims] == theirs.base_shape(), n
        assert [d.size for d in mine.dims] == theirs.shape(), n
        assert mine.n_width == theirs.ninf() and mine.mult == theirs.width_mult(), n
    kinds = {n: s.n_width for n, s in shapes.items()}
    assert kinds["head.weight"] == 1 and kinds["head.bias"] == 0
    if name == "transformer":
        assert kinds["blocks.0.qkv.weight"] == 2 and kinds["embed.weight"] == 1
        assert shapes["blocks.0.fc2.weight"].mult == mult      # fan-in 4n / 4n0


def test_shapes_without_delta_take_base_against_model():
    model, base = MLP(64), MLP(16)
    shapes = ours.shapes_of(model, base)
    assert shapes["fc2.weight"].dims == (ours.Dim(64, 16), ours.Dim(64, 16))
    assert shapes["fc1.weight"].dims == (ours.Dim(64, 16), ours.Dim(6))
    assert ours.shapes_of(model, {n: p.shape for n, p in base.named_parameters()}) == shapes


# --- learning rates and weight decays, parameter by parameter ----------------------------------

GROUP_CASES = list(itertools.product(MODELS, (1, 4), ("adam", "sgd"), (False, True)))


@pytest.mark.parametrize(("name", "mult", "kind", "two"), GROUP_CASES)
def test_learning_rates_and_decays_match_mup(name, mult, kind, two):
    a, b, shapes = _pair(name, mult)
    lr, wd = 0.01, 0.1
    groups = ours.mup_param_groups(a, shapes, kind, _user_groups(a, two, kind), lr=lr,
                                   weight_decay=wd)
    mu = mup.MuAdam if kind == "adam" else mup.MuSGD
    theirs = mu(_their_groups(b, two, kind), lr=lr, weight_decay=wd).param_groups
    keys = ("lr", "weight_decay", "betas") if kind == "adam" else ("lr", "weight_decay")
    mine = _by_param(a, [{**g, "betas": g.get("betas", (0.9, 0.999))} for g in groups], keys)
    assert mine == _by_param(b, theirs, keys)                 # exact floats
    assert len(groups) == len([g for g in theirs if g["params"]])
    assert all(g["param_names"] == [n for n, p in a.named_parameters()
                                    if any(p is q for q in g["params"])] for g in groups)
    # the rule, spelled out on two tensors
    hidden = "fc2.weight" if name == "mlp" else "blocks.1.fc1.weight"
    by_name = _by_param(a, groups)
    if kind == "adam":
        assert by_name[hidden] == (lr / mult, wd * mult)
        assert by_name["head.weight"] == (lr, wd)
    else:
        assert by_name[hidden] == (lr, wd)
        assert by_name["head.weight"] == (lr * mult, wd / mult)


def test_user_groups_are_kept_and_not_modified():
    a, _, shapes = _pair("transformer", 4)
    user = _user_groups(a, True)
    before = [dict(g) for g in user]
    groups = ours.mup_param_groups(a, shapes, "adam", user, lr=0.01)
    assert user == before
    first = [g for g in groups if "betas" in g]
    assert [g["lr"] for g in first] == [0.03 / 4, 0.03]     # blocks.0: its matrices, its vectors
    assert {g["weight_decay"] for g in groups if "betas" not in g} == {0.0}


# --- initialisation and outputs ----------------------------------------------------------------

@pytest.mark.parametrize(("name", "mult", "zero"), list(itertools.product(
    MODELS, (1, 4), (False, True))))
def test_initialisation_and_outputs_match_mup(name, mult, zero):
    a, b, _ = _pair(name, mult, readout_zero_init=zero, output_mult=2.0)
    for (n, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(p, q), n
    x, _ = _data(name, 0)
    assert torch.equal(a(x), b(x))
    assert a.head.width_mult == mult and a.head.output_mult == 2.0
    if not zero:      # the readout's weight was scaled by sqrt(m): constant variance in width
        torch.manual_seed(0)
        plain = MODELS[name][0](MODELS[name][1] * mult)
        assert torch.equal(a.head.weight, plain.head.weight * mult ** 0.5)


INITS = [("normal_", dict(std=0.02)), ("uniform_", dict(a=-0.1, b=0.1)),
         ("kaiming_normal_", dict(mode="fan_in")), ("kaiming_normal_", dict(mode="fan_out"))]


@pytest.mark.parametrize(("init", "kwargs"), INITS, ids=[f"{i}-{k}" for i, k in INITS])
@pytest.mark.parametrize("mult", (1, 4) if FULL else (4,))
def test_init_rules_match_mup_init(init, kwargs, mult):
    a, b, shapes = _pair("transformer", mult)
    for (n, p), q in zip(a.named_parameters(), b.parameters()):
        if p.ndim < 2 and init == "kaiming_normal_":
            continue
        torch.manual_seed(1)
        getattr(ours, init)(p, shapes[n], **kwargs)
        torch.manual_seed(1)
        getattr(mup, init)(q, **kwargs)
        assert torch.equal(p, q), n
    hidden = a.blocks[0].fc1.weight
    if init == "normal_":   # std 0.02 / sqrt(m) on hidden weights, 0.02 elsewhere
        assert abs(hidden.std().item() * mult ** 0.5 / 0.02 - 1) < 0.1


# --- trajectories, bit for bit -------------------------------------------------------------------

PAIRS = {   # ours (any optimizer on our groups), mup's, kind, kwargs
    "torch.AdamW": (torch.optim.AdamW, mup.MuAdamW, "adam", dict(lr=3e-3, weight_decay=0.1)),
    "torch.Adam": (torch.optim.Adam, mup.MuAdam, "adam", dict(lr=3e-3, weight_decay=0.01)),
    "torch.SGD": (torch.optim.SGD, mup.MuSGD, "sgd",
                  dict(lr=0.05, momentum=0.9, weight_decay=0.01)),
    "optedu.AdamW": (optedu.AdamW, mup.MuAdamW, "adam", dict(lr=3e-3, weight_decay=0.1)),
    "optedu.SGD": (optedu.SGD, mup.MuSGD, "sgd", dict(lr=0.05, momentum=0.9, nesterov=True,
                                                      weight_decay=0.01)),
}
# quick: every 7th of the 40 (7 is prime to 2 and 5: each pair, model, width and grouping)
TRAJECTORY_CASES = list(itertools.product(PAIRS, MODELS, (1, 4), (False, True)))


@pytest.mark.parametrize(("pair", "name", "mult", "two"),
                         TRAJECTORY_CASES if FULL else TRAJECTORY_CASES[::7])
def test_trajectories_bit_identical_to_mup(pair, name, mult, two):
    cls, mu, kind, kwargs = PAIRS[pair]
    dtype = torch.float64 if two else torch.float32
    a, b, shapes = _pair(name, mult, dtype=dtype)
    start = [p.detach().clone() for p in a.parameters()]
    groups = ours.mup_param_groups(a, shapes, kind, _user_groups(a, two, kind),
                                   lr=kwargs["lr"], weight_decay=kwargs["weight_decay"])
    opt_a = cls(groups, **kwargs)
    opt_b = mu(_their_groups(b, two, kind), **kwargs)
    for t in range(STEPS):
        for model, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            _loss(name, model, t).backward()
            opt.step()
    for (n, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(p, q), n
    assert all(not torch.equal(p, s) for p, s in zip(a.parameters(), start))


# --- the coordinate check -------------------------------------------------------------------------

WIDTHS = [64, 128, 256, 512, 1024] if FULL else [64, 256, 1024]
X = torch.randn(16, 8, generator=torch.Generator().manual_seed(0))
Y = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))


class Net(nn.Module):
    def __init__(self, width: int, readout: type[nn.Linear]):
        super().__init__()
        self.fc1 = nn.Linear(8, width)
        self.act1 = nn.ReLU()
        self.fc2 = nn.Linear(width, width)
        self.act2 = nn.ReLU()
        self.head = readout(width, 4)

    def forward(self, x):
        return self.head(self.act2(self.fc2(self.act1(self.fc1(x)))))


def _check(readout, mup_lr: bool, steps: int = 4, lr: float = 0.1):
    base, delta = Net(32, readout), Net(64, readout)

    def make_model(width):
        model = Net(width, readout)
        ours.set_base_shapes(model, base, delta, check_readout=False)
        return model

    def make_optimizer(model):
        if not mup_lr:
            return torch.optim.Adam(model.parameters(), lr=lr)
        shapes = ours.shapes_of(model, base, delta)
        return torch.optim.Adam(ours.mup_param_groups(model, shapes, "adam", lr=lr))

    return ours.coord_check(make_model, WIDTHS, steps, make_optimizer=make_optimizer,
                            data=(X, Y), layers=["act1", "act2", "head"],
                            seeds=3 if FULL else 1)


def test_coord_check_is_flat_under_mup():
    slopes = _check(ours.MuReadout, mup_lr=True).slopes()
    assert slopes.abs().max() < 0.2, slopes


def test_coord_check_readout_left_in_standard_parametrisation_blows_up():
    slopes = _check(nn.Linear, mup_lr=True).slopes()
    assert slopes[:, :2].abs().max() < 0.2, slopes               # the hidden layers are fine
    assert slopes[0, 2] < 0.2 and (slopes[1:, 2] > 0.7).all(), slopes   # the output ~ n


def test_coord_check_grows_with_width_in_standard_parametrisation():
    slopes = _check(nn.Linear, mup_lr=False).slopes()
    assert slopes[0].abs().max() < 0.2                           # at init, SP is fine too
    assert (slopes[1:, 1:] > 0.7).all(), slopes    # then every layer after the first grows


def test_plot_coord_check():
    result = _check(ours.MuReadout, mup_lr=True, steps=2)
    figure = ours.plot_coord_check(result, title="µP")
    assert len(figure.axes) == 3
    assert [len(line.get_xdata()) for line in figure.axes[0].lines] == [len(WIDTHS)] * 2
    assert figure.axes[0].get_xscale() == "log" == figure.axes[0].get_yscale()


# --- misuse and errors ----------------------------------------------------------------------------

def test_readout_needs_its_width_multiplier_and_one_rescale():
    model = MLP(32)
    with pytest.raises(RuntimeError, match="set_base_shapes"):
        model(torch.zeros(1, 6))
    ours.set_base_shapes(model, MLP(16), MLP(8))
    with pytest.raises(RuntimeError, match="rescaled before"):
        ours.set_base_shapes(model, MLP(16), MLP(8))
    ours.set_base_shapes(model, MLP(16), MLP(8), rescale_params=False)


def _bad(name):
    model = MLP(32)
    shapes = ours.shapes_of(model, MLP(16))
    cases = {
        "kind": lambda: ours.mup_param_groups(model, shapes, "lion", lr=0.1),
        "lr": lambda: ours.mup_param_groups(model, shapes, "adam", lr=-0.1),
        "weight_decay": lambda: ours.mup_param_groups(model, shapes, "sgd", lr=0.1,
                                                      weight_decay=-1.0),
        "groups": lambda: ours.mup_param_groups(model, shapes, "sgd",
                                                [{"params": [torch.zeros(2)]}], lr=0.1),
        "base": lambda: ours.shapes_of(model, nn.Linear(2, 2)),
        "delta": lambda: ours.shapes_of(model, MLP(16), {"fc1.weight": (3, 3)}),
        "model": lambda: ours.set_base_shapes(MLP(32, nn.Linear), MLP(16, nn.Linear)),
        "shape": lambda: ours.mup_param_groups(
            model, {**shapes, "fc1.bias": ours.Shape((ours.Dim(4, 2),) * 3)}, "adam", lr=0.1),
        "mean": lambda: ours.normal_(model.fc2.weight, shapes["fc2.weight"], mean=1.0),
        "a": lambda: ours.uniform_(model.fc2.weight, shapes["fc2.weight"], a=0.0),
        "mode": lambda: ours.kaiming_normal_(model.fc2.weight, shapes["fc2.weight"],
                                             mode="fan"),
        "widths": lambda: ours.coord_check(MLP, [16, 0], make_optimizer=None, data=(X, Y)),
        "steps": lambda: ours.coord_check(MLP, [16], 0, make_optimizer=None, data=(X, Y)),
        "layers": lambda: ours.coord_check(
            MLP, [16], make_optimizer=lambda m: torch.optim.SGD(m.parameters()),
            data=(X, Y), layers=["nope"]),
    }
    return cases[name]


BAD = {"kind": "'lion'", "lr": "-0.1", "weight_decay": "-1.0", "groups": r"shape \(2,\)",
       "base": "fc1.weight", "delta": "fc1.bias", "model": "'head'", "shape": "Shape",
       "mean": "1.0", "a": "0.0", "mode": "'fan'", "widths": r"\[16, 0\]", "steps": "0",
       "layers": "nope"}


@pytest.mark.parametrize("name", BAD)
def test_bad_arguments(name):
    label = "learning rate" if name == "lr" else f"{name} value"
    with pytest.raises(ValueError, match=rf"Invalid {label}: .*({BAD[name]})"):
        _bad(name)()


class TiedLM(nn.Module):
    def __init__(self, width: int, readout=ours.MuReadout):
        super().__init__()
        self.embed = nn.Embedding(11, width)
        self.head = readout(width, 11, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, tokens):
        return self.head(self.embed(tokens))


def test_tied_readout_keeps_the_embedding_table():
    """mup's MuReadout (MuSharedReadout too) rescales a shared table by sqrt(m)
    (mup/layer.py:51): the embedding's std grows with width. Ours leaves a tied table
    alone."""
    models = {}
    for readout, set_shapes in ((ours.MuReadout, ours.set_base_shapes),
                                (mup.MuReadout, mup.set_base_shapes)):
        torch.manual_seed(0)
        model = TiedLM(64, readout)
        before = model.embed.weight.detach().clone()
        set_shapes(model, TiedLM(8, readout), delta=TiedLM(16, readout))
        models[readout] = (model, before)
    model, before = models[ours.MuReadout]
    assert torch.equal(model.embed.weight, before) and model.head.width_mult == 8
    theirs, before = models[mup.MuReadout]
    assert torch.equal(theirs.embed.weight, before * 8 ** 0.5)
