"""optedu APOLLO against apollo-torch 1.0.3's APOLLOAdamW: its random projection is drawn from a
seeded torch.Generator (the parameter's position, then a seed chain), so it can be seeded
alike and is compared bit for bit over the options (random and SVD projectors, channel and
tensor scaling, the four projection sides, scale_front, the norm-growth limiter, the refresh
gap, scale, correct_bias, weight decay), float32 and float64, one and two groups, checkpoints
both ways; then the paper's claim that the update is the raw gradient scaled per channel."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch

import _hf_stub  # transformers stand-in; see its docstring
from optedu.optim.apollo import APOLLO, RandomProjector
from optimizers import FULL

RefAPOLLO = _hf_stub.load("apollo_torch", "apollo").AdamW

STEPS = 25
SHAPES = [(6, 4), (4, 7), (4,), (7,)]


def _params(dtype):
    g = torch.Generator().manual_seed(0)
    return [torch.randn(s, generator=g, dtype=dtype).requires_grad_() for s in SHAPES]


def _loss(params, step):
    g = torch.Generator().manual_seed(100 + step)
    x = torch.randn(8, 6, generator=g, dtype=params[0].dtype)
    y = torch.randn(8, 7, generator=g, dtype=params[0].dtype)
    w1, w2, b1, b2 = params
    return ((torch.tanh(x @ w1 + b1) @ w2 + b2 - y) ** 2).mean()


def _low(proj="random", scale_type="channel", proj_type="std", gap=4, scale=1.0):
    return {"rank": 2, "proj": proj, "scale_type": scale_type, "proj_type": proj_type,
            "update_proj_gap": gap, "scale": scale}


def _groups(params, two, low):
    if two:
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
    return _train(params, cls(_groups(params, two, low), lr=0.01, **kwargs)), None


def _run_opt(cls, dtype, two, low, **kwargs):
    params = _params(dtype)
    opt = cls(_groups(params, two, low), lr=0.01, **kwargs)
    return _train(params, opt), opt


def _same(a, b):
    (pa, oa), (pb, ob) = a, b
    for x, y in zip(pa, pb):
        assert torch.equal(x, y)
        sa, sb = oa.state.get(x, {}), ob.state.get(y, {})
        assert sa.keys() == sb.keys()
        for key in sa:
            if key == "projector":
                assert torch.equal(sa[key].ortho_matrix, sb[key].ortho_matrix)
                assert getattr(sa[key], "seed", None) == getattr(sb[key], "seed", None)
            elif isinstance(sa[key], torch.Tensor):
                assert torch.equal(sa[key], sb[key]), key
            else:
                assert sa[key] == sb[key], key


SETTINGS = [("channel", "std"), ("tensor", "std"), ("tensor", "reverse_std"),
            ("tensor", "left"), ("tensor", "right")]
ALL = list(itertools.product(["random", "svd"], SETTINGS, [False, True], [False, True],
                             [1, 4], [torch.float32, torch.float64], [False, True]))
QUICK = [("random", ("channel", "std"), False, False, 4, torch.float32, True),
         ("random", ("tensor", "reverse_std"), True, True, 1, torch.float64, False)]


@pytest.mark.parametrize("proj,setting,front,no_nl,gap,dtype,two", ALL if FULL else QUICK)
def test_bit_identical_to_apollo_torch(proj, setting, front, no_nl, gap, dtype, two):
    """scale 128 (APOLLO-Mini's) with the tensor scaling, 1 with the channel one; the refresh
    gap 1 runs without bias correction and with weight decay."""
    scale_type, proj_type = setting
    low = _low(proj, scale_type, proj_type, gap, 128.0 if scale_type == "tensor" else 1.0)
    kwargs = dict(scale_front=front, disable_nl=no_nl, correct_bias=gap != 1,
                  weight_decay=0.1 if gap == 1 else 0.0)
    _same(_run_opt(APOLLO, dtype, two, low, **kwargs), _run_opt(RefAPOLLO, dtype, two, low, **kwargs))


@pytest.mark.parametrize("first,second", [(RefAPOLLO, APOLLO), (APOLLO, RefAPOLLO)])
def test_checkpoint_moves_both_ways(first, second):
    low = _low()
    params = _params(torch.float32)
    opt = first(_groups(params, True, low), lr=0.01, weight_decay=0.1)
    _train(params, opt, steps=10)
    moved = second(_groups(params, True, low), lr=0.01, weight_decay=0.1)
    moved.load_state_dict(copy.deepcopy(opt.state_dict()))
    _train(params, moved, steps=15, start=10)
    _same((params, moved), _run_opt(second, torch.float32, True, low, weight_decay=0.1))


def test_update_is_the_gradient_scaled_per_channel():
    """Zhu et al. (2025), Sec. 3: the update is G scaled by one factor per row (channel), so
    each row of the step is parallel to the row of the gradient."""
    params = _params(torch.float64)
    opt = APOLLO(_groups(params, False, _low()), lr=0.01)
    _train(params, opt, steps=3)
    before = params[0].detach().clone()
    opt.zero_grad()
    _loss(params, 3).backward()
    opt.step()
    step, grad = params[0].detach() - before, params[0].grad
    ratio = step / grad
    torch.testing.assert_close(ratio, ratio[:, :1].expand_as(ratio), rtol=1e-9, atol=0)
    assert (ratio < 0).all()                  # every row moves against its gradient


def test_projection_is_seeded_by_position():
    """The reference seeds each matrix's Gaussian with its 1-based position: a projector
    built with seed 1 draws the first matrix's."""
    params = _params(torch.float32)
    opt = APOLLO(_groups(params, True, _low()), lr=0.01)
    assert [opt.state[p]["seed"] for p in params] == [1, 2, 3, 4]
    _train(params, opt, steps=1)
    fresh = RandomProjector(2, seed=1)
    fresh.project(params[0].grad, 0)
    assert torch.equal(fresh.ortho_matrix, opt.state[params[0]]["projector"].ortho_matrix)


@pytest.mark.parametrize("change,message", [
    (dict(proj="gaussian"), "Invalid proj value: gaussian"),
    (dict(scale_type="row"), "Invalid scale_type value: row"),
    (dict(proj_type="full"), "Invalid proj_type value: full"),
    (dict(rank=0), "Invalid rank value: 0"),
])
def test_bad_group(change, message):
    with pytest.raises(ValueError, match=message):
        APOLLO([{"params": [torch.zeros(2, 2, requires_grad=True)], **{**_low(), **change}}])
    with pytest.raises(ValueError, match="Invalid learning rate: -1.0"):
        APOLLO([torch.zeros(2, 2, requires_grad=True)], lr=-1.0)


@pytest.mark.parametrize("proj", ["random", "svd"])
def test_closed_form_state_shapes(proj):
    from optedu.optim.apollo import state_shapes
    params = _params(torch.float32)
    group = {**_low(proj), "rank": 5}            # above a side: the Gaussian is not capped
    opt = APOLLO(_groups(params, True, {**group, "scale_type": "tensor"}), lr=0.01)
    _train(params, opt, steps=2)
    for p, g in zip(params, [group, group, {}, {}]):
        st = opt.state[p]
        got = {k: tuple(v.shape) for k, v in st.items() if isinstance(v, torch.Tensor)}
        if "projector" in st:
            got["projector"] = tuple(st["projector"].ortho_matrix.shape)
        assert got == state_shapes(tuple(p.shape), g)
