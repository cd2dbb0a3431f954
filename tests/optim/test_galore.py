"""optedu GaLoreAdamW against galore-torch 1.0's GaLoreAdamW: bit for bit over every option
(proj_type, update_proj_gap, scale, correct_bias, weight_decay), float32 and float64, one and
two groups, checkpoints both ways; then the paper's claim that the update between two
refreshes of the projector has rank at most ``rank``."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch

import _hf_stub  # transformers stand-in; see its docstring

pytestmark = pytest.mark.filterwarnings("ignore:This implementation of AdamW is deprecated:FutureWarning")
from optedu.optim.galore import GaLoreAdamW, GaLoreProjector  # noqa: E402 (after the stub)
from optimizers import FULL  # noqa: E402

RefGaLore = _hf_stub.load("galore_torch", "adamw").AdamW

STEPS = 25
SHAPES = [(6, 4), (4, 7), (4,), (7,)]   # one tall and one wide matrix, two biases


def _params(dtype):
    g = torch.Generator().manual_seed(0)
    return [torch.randn(s, generator=g, dtype=dtype).requires_grad_() for s in SHAPES]


def _loss(params, step):
    g = torch.Generator().manual_seed(100 + step)
    x = torch.randn(8, 6, generator=g, dtype=params[0].dtype)
    y = torch.randn(8, 7, generator=g, dtype=params[0].dtype)
    w1, w2, b1, b2 = params
    return ((torch.tanh(x @ w1 + b1) @ w2 + b2 - y) ** 2).mean()


def _groups(params, two, low):
    if two:   # a low-rank group and a plain AdamW group with another decay
        return [{"params": params[:2], **low}, {"params": params[2:], "weight_decay": 0.05}]
    return [{"params": params[:2], **low}]


def _train(params, opt, steps=STEPS, start=0):
    for t in range(start, start + steps):
        opt.zero_grad()
        _loss(params, t).backward()
        opt.step()
    return params


def _run(cls, dtype, two, low, **kwargs):
    params = _params(dtype)
    opt = cls(_groups(params, two, low), lr=0.01, **kwargs)
    return _train(params, opt), opt


def _same(a, b):
    (pa, oa), (pb, ob) = a, b
    for x, y in zip(pa, pb):
        assert torch.equal(x, y)
    for x, y in zip(pa, pb):
        assert (x in oa.state) == (y in ob.state)
        if x not in oa.state:
            continue
        sa, sb = oa.state[x], ob.state[y]
        assert sa["step"] == sb["step"]
        for key in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(sa[key], sb[key]), key
        if "projector" in sa:
            ma, mb = sa["projector"].ortho_matrix, sb["projector"].ortho_matrix
            for u, v in zip(ma if isinstance(ma, list) else [ma], mb if isinstance(mb, list) else [mb]):
                assert torch.equal(u, v)


def _low(proj_type="std", gap=4, scale=0.25):
    return {"rank": 2, "update_proj_gap": gap, "scale": scale, "proj_type": proj_type}


QUICK = [("std", 4, 0.25, True, 0.0, torch.float32, True),
         ("full", 3, 1.0, False, 0.1, torch.float64, False)]
ALL = list(itertools.product(["std", "reverse_std", "right", "left", "full"], [1, 4], [1.0, 0.25],
                             [True, False], [0.0, 0.1], [torch.float32, torch.float64],
                             [False, True]))


@pytest.mark.parametrize("proj_type,gap,scale,bias,wd,dtype,two", ALL if FULL else QUICK)
def test_bit_identical_to_galore_torch(proj_type, gap, scale, bias, wd, dtype, two):
    low = _low(proj_type, gap, scale)
    ours = _run(GaLoreAdamW, dtype, two, low, weight_decay=wd, correct_bias=bias)
    theirs = _run(RefGaLore, dtype, two, low, weight_decay=wd, correct_bias=bias)
    _same(ours, theirs)


@pytest.mark.parametrize("first,second", [(RefGaLore, GaLoreAdamW), (GaLoreAdamW, RefGaLore)])
def test_checkpoint_moves_both_ways(first, second):
    """10 steps with one package, its state_dict loaded into the other, 15 more: the same as 25
    steps with the second throughout (the projector object travels in the state)."""
    low = _low("std", 4, 0.25)
    params = _params(torch.float32)
    opt = first(_groups(params, True, low), lr=0.01, weight_decay=0.1)
    _train(params, opt, steps=10)
    moved = second(_groups(params, True, low), lr=0.01, weight_decay=0.1)
    moved.load_state_dict(copy.deepcopy(opt.state_dict()))
    _train(params, moved, steps=15, start=10)
    _same((params, moved), _run(second, torch.float32, True, low, weight_decay=0.1))


def test_update_between_refreshes_has_rank_at_most_r():
    """Zhao et al. (2024), Sec. 3: with the projector fixed, every step moves W within the
    r-dimensional row space of P, so the sum of T steps has rank <= r; a plain AdamW step of
    the same matrix has full rank."""
    params = _params(torch.float64)
    opt = GaLoreAdamW(_groups(params, False, _low("std", 10, 1.0)), lr=0.01)
    _train(params, opt, steps=1)                  # step 0 set the projector
    before = params[0].detach().clone()
    _train(params, opt, steps=8, start=1)         # steps 1..8 keep it
    moved = params[0].detach() - before
    assert torch.linalg.matrix_rank(moved, rtol=1e-9).item() == 2  # rounding of W: ~1e-16
    plain = _params(torch.float64)
    full = GaLoreAdamW([{"params": plain[:2]}], lr=0.01)
    start = plain[0].detach().clone()
    _train(plain, full, steps=9)
    assert torch.linalg.matrix_rank(plain[0].detach() - start, rtol=1e-9).item() == 4


@pytest.mark.parametrize("kwargs,message", [
    (dict(lr=-1.0), "Invalid learning rate: -1.0"),
    (dict(betas=(1.0, 0.9)), "Invalid beta parameter at index 0: 1.0"),
    (dict(eps=-1e-8), "Invalid epsilon value: -1e-08"),
    (dict(weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        GaLoreAdamW([torch.zeros(2, 2, requires_grad=True)], **kwargs)


@pytest.mark.parametrize("change,message", [
    (dict(rank=0), "Invalid rank value: 0"),
    (dict(update_proj_gap=0), "Invalid update_proj_gap value: 0"),
    (dict(proj_type="diagonal"), "Invalid proj_type value: diagonal"),
    (dict(scale=-1.0), "Invalid scale value: -1.0"),
])
def test_bad_group(change, message):
    with pytest.raises(ValueError, match=message):
        GaLoreAdamW([{"params": [torch.zeros(2, 2, requires_grad=True)], **{**_low(), **change}}])
    group = _low()
    del group["scale"]
    with pytest.raises(ValueError, match="Invalid scale value: None"):
        GaLoreAdamW([{"params": [torch.zeros(2, 2, requires_grad=True)], **group}])


def test_projector_has_galore_torch_attributes():
    ours = GaLoreProjector(2, update_proj_gap=3, scale=0.5, proj_type="left")
    theirs = _hf_stub.load("galore_torch", "galore_projector").GaLoreProjector(
        2, update_proj_gap=3, scale=0.5, proj_type="left")
    assert set(vars(theirs)) <= set(vars(ours))


@pytest.mark.parametrize("proj_type", ["std", "reverse_std", "right", "left", "full"])
def test_closed_form_state_shapes(proj_type):
    from optedu.optim.galore import state_shapes
    params = _params(torch.float32)
    group = _low(proj_type)
    opt = GaLoreAdamW(_groups(params, True, group), lr=0.01)
    _train(params, opt, steps=2)
    for p, g in zip(params, [group, group, {}, {}]):
        st = opt.state[p]
        got = {k: tuple(v.shape) for k, v in st.items() if isinstance(v, torch.Tensor)}
        if "projector" in st:
            m = st["projector"].ortho_matrix
            got["projector"] = ((sum(x.numel() for x in m),) if isinstance(m, list)
                                else tuple(m.shape))
        assert got == state_shapes(tuple(p.shape), g)
