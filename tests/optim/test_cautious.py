"""Cautious updates (Liang et al. 2024): the mask bit for bit against pytorch_optimizer
4.1.0's apply_cautious; cautious LaProp bit for bit against its LaProp(cautious=True);
CautiousLion against its Lion(cautious=True) and CautiousAdamW against its only cautious
AdamW, AdEMAMix(alpha=0, cautious=True), to measured bounds; then the first-order claim.

The authors' code, ``c_adamw.py`` of github.com/kyleliang919/C-Optim (commit 2c0517c, class
``AdamW``, per-tensor path ``foreach=False``; the default path runs an asynchronous batched
update not run here), is no package; it was run beside optedu's CautiousAdamW in a throw-away
script (not kept): 25 steps, two groups, shapes (6, 4), (5,), (3, 2, 2), betas (0.9, 0.999) and
(0.7, 0.9), ``weight_decay`` 0 and 0.1, ``eps`` 0 and 1e-6: 8 settings, float32 and float64. As
is they part by up to 6.3e-3 relative: the authors rescale the mask by ``1/max(mean, 1e-3)``
(timm's), optedu by ``n/(k+1)`` (pytorch_optimizer's). With the authors' rescale in optedu they
agree to 7.1e-7 (float32) and 1.8e-15 (float64) at ``eps=0``, and to 2.3e-6 at ``eps=1e-6``: the
authors add ``eps`` to ``sqrt(v)`` before the bias correction (transformers' AdamW), optedu
after (torch's AdamW). The authors' default ``eps`` is 1e-6 (optedu: torch's 1e-8).
"""

from __future__ import annotations


import pytest
import torch
from pytorch_optimizer import AdEMAMix, LaProp as RefLaProp, Lion as RefLion
from pytorch_optimizer.base.optimizer import BaseOptimizer

import optedu
from optedu.optim import cautious as module
from optedu.optim.cautious import CautiousAdamW, CautiousLion, cautious_mask
from optedu.optim.laprop import LaProp
from optimizers import FULL
import reference_harness as harness

SECOND = {"weight_decay": 0.3, "betas": (0.7, 0.9)}


def _run(make, dtype=torch.float64, two=False, steps=25, second=SECOND):
    params = harness.params(dtype)
    opt = make([{"params": params[:2]}, {"params": params[2:], **second}] if two else params)
    for t in range(steps):
        opt.zero_grad()
        harness.loss(params, t).backward()
        opt.step()
    return params, opt


def _worst_relative(a, b) -> float:
    return max(((x - y).abs() / y.abs().clamp_min(1.0)).max().item() for x, y in zip(a, b))


def test_mask_is_pytorch_optimizer_s():
    gen = torch.Generator().manual_seed(0)
    for dtype in (torch.float32, torch.float64):
        u, g = torch.randn(2, 50, 7, generator=gen, dtype=dtype)
        theirs = u.clone()
        BaseOptimizer.apply_cautious(theirs, g)
        assert torch.equal(u * cautious_mask(u, g), theirs)
    ones = torch.ones(4)
    assert torch.equal(cautious_mask(ones, ones), torch.full((4,), 0.8))   # n/(k+1) = 4/5
    assert torch.equal(cautious_mask(ones, -ones), torch.zeros(4))


def _cases(options):
    return harness.cases(options, every=7, full=FULL)


@pytest.mark.parametrize(("options", "dtype", "two"), _cases(dict(
    weight_decay=[0.0, 0.1], centered=[False, True], ams_bound=[False, True],
    maximize=[False, True])), ids=lambda x: str(x).replace("torch.", ""))
def test_laprop_bit_identical(options, dtype, two):
    kwargs = dict(lr=0.01, betas=(0.8, 0.99), eps=1e-8, steps_before_using_centered=5,
                  cautious=True, **options)
    a, ours = _run(lambda g: LaProp(g, **kwargs), dtype, two)
    b, theirs = _run(lambda g: RefLaProp(g, foreach=False, **kwargs), dtype, two)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    for p, q in zip(a, b):
        assert torch.equal(ours.state[p]["exp_avg"], theirs.state[q]["exp_avg"])
    plain, _ = _run(lambda g: LaProp(g, **{**kwargs, "cautious": False}), dtype, two)
    assert not all(torch.equal(x, y) for x, y in zip(a, plain))


@pytest.mark.parametrize(("options", "dtype", "two"), _cases(dict(
    weight_decay=[0.0, 0.1], lr=[1e-2, 1e-3])), ids=lambda x: str(x).replace("torch.", ""))
def test_lion_against_pytorch_optimizer(options, dtype, two):
    """Parameters bit for bit (the step is a sign, the same mask); exp_avg differs by
    lerp against multiply-add: measured 1.9e-16 (float64), 6.0e-8 (float32) after 25
    steps, under 2 ulps of 1; bound 4 ulps."""
    a, ours = _run(lambda g: CautiousLion(g, **options), dtype, two)
    b, theirs = _run(lambda g: RefLion(g, cautious=True, **options), dtype, two)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    ulp = torch.finfo(dtype).eps
    assert _worst_relative([ours.state[p]["exp_avg"] for p in a],
                           [theirs.state[q]["exp_avg"] for q in b]) <= 4 * ulp


@pytest.mark.parametrize(("options", "dtype", "two"), _cases(dict(
    weight_decay=[0.0, 0.1], lr=[1e-2, 1e-3])), ids=lambda x: str(x).replace("torch.", ""))
def test_adamw_against_pytorch_optimizer(options, dtype, two):
    """AdEMAMix(alpha=0, cautious=True) divides m by 1-beta1^t before the denominator, torch
    folds it into the rate; the slow momentum adds 0. Measured 2.4e-7 (float32), 1.1e-16
    (float64) relative after 25 steps, about 2 ulps; bound 16 ulps."""
    a, _ = _run(lambda g: CautiousAdamW(g, **options), dtype, two)
    b, _ = _run(lambda g: AdEMAMix(g, alpha=0.0, betas=(0.9, 0.999, 0.9999), cautious=True,
                                   weight_decouple=True, **options), dtype, two,
              second={**SECOND, "betas": (0.7, 0.9, 0.9999)})
    assert _worst_relative(a, b) <= 16 * torch.finfo(dtype).eps


def test_adamw_is_torch_s_where_the_mask_is_one(monkeypatch):
    """With the mask replaced by ones, CautiousAdamW is optedu's (= torch's) AdamW bit for
    bit, AMSGrad and maximize included: the rest of the step is AdamW's."""
    kwargs = dict(lr=0.01, weight_decay=0.1, amsgrad=True, maximize=True)
    monkeypatch.setattr(module, "cautious_mask", lambda u, g: torch.ones_like(u))
    a, _ = _run(lambda g: CautiousAdamW(g, **kwargs), two=True)
    b, _ = _run(lambda g: torch.optim.AdamW(g, foreach=False, **kwargs), two=True)
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_signatures_are_torch_s_and_lion_pytorch_s():
    import inspect
    assert (inspect.signature(CautiousAdamW.__init__).parameters.keys()
            == inspect.signature(optedu.AdamW.__init__).parameters.keys())
    assert (inspect.signature(CautiousLion.__init__).parameters.keys()
            == inspect.signature(optedu.Lion.__init__).parameters.keys())
    with pytest.raises(ValueError, match="Invalid foreach value: True"):
        CautiousAdamW(harness.params(torch.float64), foreach=True)


@pytest.mark.parametrize("cls", [CautiousAdamW, CautiousLion])
def test_first_order_never_increases_the_loss(cls):
    """<g, theta_t - theta_{t-1}> <= 0 for every step with the mask (without weight decay):
    to first order the cautious step never increases the batch loss it was computed on."""
    params = harness.params(torch.float64)
    opt = cls(params, lr=1e-2, weight_decay=0.0)
    for t in range(30):
        opt.zero_grad()
        harness.loss(params, t).backward()
        before = [p.detach().clone() for p in params]
        opt.step()
        inner = sum((p.grad * (p.detach() - b)).sum() for p, b in zip(params, before))
        assert inner <= 0


def test_the_mask_reads_the_whole_tensor_so_pieces_are_refused():
    """n/(k+1) counts over the whole tensor: a shard's mask would differ (see ._sharding)."""
    params = harness.params(torch.float64)
    for opt in (CautiousAdamW(params), CautiousLion(params), LaProp(params, cautious=True)):
        assert not opt.element_wise and "whole tensor" in opt.refuses_shards
    assert LaProp(params).element_wise and not LaProp(params).refuses_shards
    u, g = torch.tensor([1.0, 1.0, -1.0, 1.0]), torch.ones(4)
    halves = torch.cat([cautious_mask(u[:2], g[:2]), cautious_mask(u[2:], g[2:])])
    assert not torch.equal(halves, cautious_mask(u, g))


@pytest.mark.full
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("scale_in_float64", [False, True], ids=["as-is", "scale-f64"])
def test_heavyball_caution_where_the_rules_coincide(monkeypatch, dtype, scale_in_float64):
    """heavyball 3.2.1's AdamW(caution=True), eager (as experiments/cost.py runs it), a second
    reference: it masks the update where sign(g) and sign(u) differ and rescales by
    n / max(k, 1), timm's n / max(k, n/1000) whenever k >= 1 (so optedu runs with
    cautious_mask_mean). Where the rules coincide (lr a power of two: heavyball holds lr in
    float32; eps = 0: it takes max(sqrt(v), eps)), 25 steps, two decays, measured max relative
    difference 5.6e-8 (float32) and 1.8e-9 (float64): heavyball's n / k is a float32 scalar
    (an integer division). With that scale computed in the parameter's dtype: 1.7e-16."""
    import heavyball
    import heavyball.utils
    from optedu.practice.conventions import cautious_mask_mean
    monkeypatch.setattr(heavyball.utils, "compile_mode", None)
    monkeypatch.setattr(module, "cautious_mask", cautious_mask_mean)
    if scale_in_float64:
        def cautioning(g, update):
            mask = g.signbit() ^ update.signbit()
            kept = (mask.numel() - mask.sum()).clamp(min=1).to(update.dtype)
            return update.masked_fill(mask, 0).mul_(mask.numel() / kept)
        monkeypatch.setattr(heavyball.utils, "_compilable_cautioning", cautioning)
    shapes = [(6, 4), (5,), (3, 2, 2)]
    worst = 0.0
    for weight_decay in (0.0, 0.1):
        kw = dict(lr=2.0**-7, betas=(0.9, 0.999), eps=0.0, weight_decay=weight_decay)
        runs = []
        for make in (lambda ps: heavyball.AdamW(
                         ps, **kw, caution=True, compile_step=False,
                         storage_dtype="float64" if dtype == torch.float64 else "float32"),
                     lambda ps: CautiousAdamW(ps, **kw)):
            runs.append(harness.on_random_gradients(make, shapes, dtype, steps=25, shift=0.3))
        worst = max(worst, *(((a - b).abs().max() / b.abs().max()).item()
                             for a, b in zip(*runs)))
    bound = 2e-7 if dtype == torch.float32 else 1e-15 if scale_in_float64 else 5e-9
    assert worst <= bound
