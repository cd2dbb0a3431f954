"""optedu.SAM against pytorch_optimizer.SAM 4.1.0, bit for bit: every combination of its
options, float32 and float64, one and two groups, with SGD and AdamW as base (optedu's base in
ours, torch.optim's in theirs), and with every optedu optimizer that has a torch twin as base;
then its protocol, state, checkpoints and errors."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
from pytorch_optimizer import SAM as Reference

import optedu
from optedu.optim.sam import centralize, perturbation_norm
from optimizers import FULL, PAIRS
import reference_harness as harness

STEPS = 6


def _run(cls, base, kwargs, *, dtype=torch.float64, two=False, second=None, steps=STEPS):
    """Params, optimizer and the losses step() returned, after `steps` SAM steps."""
    params = harness.params(dtype)
    opt = cls(harness.groups(params, two, second or {}), base, **kwargs)
    returned = []
    for t in range(steps):
        opt.zero_grad()
        harness.loss(params, t).backward()

        def closure():
            opt.zero_grad()
            loss = harness.loss(params, t)
            loss.backward()
            return loss

        returned.append(opt.step(closure))
    return params, opt, returned


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


def _same_state(ours, theirs) -> None:
    """The same state keys and tensors, parameter by parameter."""
    for p, q in zip(ours.param_groups[0]["params"], theirs.param_groups[0]["params"]):
        s, r = ours.state[p], theirs.state[q]
        assert sorted(s) == sorted(r)
        for key in s:
            assert torch.equal(torch.as_tensor(s[key]), torch.as_tensor(r[key])), key


OPTIONS = dict(rho=[0.05, 0.5], adaptive=[False, True], use_gc=[False, True],
               foreach=[None, False, True])
BASES = {
    "SGD": (optedu.SGD, torch.optim.SGD,
            [dict(lr=0.1), dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)]),
    "AdamW": (optedu.AdamW, torch.optim.AdamW,
              [dict(lr=1e-2), dict(lr=1e-2, amsgrad=True, weight_decay=0.1)]),
}
SECOND = {"rho": 0.2, "adaptive": True, "lr": 0.03}


def _cases():
    keys = list(OPTIONS)
    combos = [dict(zip(keys, v)) for v in itertools.product(*OPTIONS.values())]
    cases = [(base, k, c, dtype, two)
             for base in BASES for k in range(2) for c in combos
             for dtype in (torch.float32, torch.float64) for two in (False, True)]
    # a quick pytest: every 7th of the 384 (7 is prime to each factor: every value of each
    # option, base, setting, dtype and group count comes up)
    return cases if FULL else cases[::7]


@pytest.mark.parametrize(("base", "setting", "options", "dtype", "two"), _cases(),
                         ids=lambda x: str(x).replace("torch.", ""))
def test_bit_identical_to_pytorch_optimizer(base, setting, options, dtype, two):
    ours_base, their_base, settings = BASES[base]
    kwargs = {**settings[setting], **options}
    a, ours, got = _run(optedu.SAM, ours_base, kwargs, dtype=dtype, two=two, second=SECOND)
    b, theirs, _ = _run(Reference, their_base, kwargs, dtype=dtype, two=two, second=SECOND)
    assert _same(a, b)
    _same_state(ours, theirs)
    assert not _same(a, harness.params(dtype))       # the parameters moved
    assert all(isinstance(x, torch.Tensor) and x.dtype == dtype for x in got)


def _twin_cases():
    skip = {"LBFGS", "SparseAdam"}   # a closure of its own; sparse gradients
    return [pytest.param(p, id=p.ours.__name__) for p in PAIRS
            if p.ours.__name__ not in skip and not p.matrices_only]


@pytest.mark.parametrize("pair", _twin_cases())
def test_around_every_optimizer_with_a_torch_twin(pair):
    """SAM around any optedu rule steps as the reference does around torch's twin."""
    settings = pair.settings[0] if pair.settings else {}
    a, ours, _ = _run(optedu.SAM, pair.ours, dict(settings), steps=4)
    b, theirs, _ = _run(Reference, pair.theirs, dict(settings), steps=4)
    assert _same(a, b), pair.ours.__name__
    _same_state(ours, theirs)


def test_around_muon_on_matrices():
    g = torch.Generator().manual_seed(0)
    runs = []
    for ours, base in ((optedu.SAM, optedu.Muon), (Reference, torch.optim.Muon)):
        torch.manual_seed(0)
        w = [torch.randn(4, 3, generator=torch.Generator().manual_seed(1)).requires_grad_(),
             torch.randn(3, 5, generator=torch.Generator().manual_seed(2)).requires_grad_()]
        opt = ours(w, base, lr=0.02)
        x = torch.randn(6, 4, generator=g.manual_seed(3))
        for _ in range(3):
            opt.zero_grad()
            (x @ w[0] @ w[1]).pow(2).mean().backward()

            def closure():
                opt.zero_grad()
                loss = (x @ w[0] @ w[1]).pow(2).mean()
                loss.backward()
                return loss
            opt.step(closure)
        runs.append(w)
    assert _same(*runs)


def test_the_step_is_the_paper_s():
    """One step by hand: w' = w - lr * grad L(w + rho g / ||g||), for plain SGD; the
    adaptive step scales by w^2 and measures the norm of |w| g."""
    for adaptive in (False, True):
        params = harness.params(torch.float64)
        w0 = [p.detach().clone() for p in params]
        g = torch.autograd.grad(harness.loss(params, 0), params)
        scaled = [gi * wi.abs() for gi, wi in zip(g, w0)] if adaptive else g
        norm = torch.sqrt(sum((s**2).sum() for s in scaled))
        eps = [(wi**2 if adaptive else 1) * gi * 0.05 / norm for gi, wi in zip(g, w0)]
        moved = [(wi + e).requires_grad_() for wi, e in zip(w0, eps)]
        g2 = torch.autograd.grad(harness.loss(moved, 0), moved)
        expected = [wi - 0.1 * gi for wi, gi in zip(w0, g2)]
        got, _, _ = _run(optedu.SAM, optedu.SGD, dict(lr=0.1, adaptive=adaptive), steps=1)
        for x, y in zip(got, expected):
            torch.testing.assert_close(x.detach(), y, rtol=0, atol=1e-6)


def test_the_norm_is_global_and_accumulated_in_float32():
    """One norm over all groups; float64 norms are squared and summed in float32, as the
    reference does (so the scale is rounded to float32 even for float64 parameters)."""
    params = harness.params(torch.float64)
    for p in params:
        p.grad = torch.full_like(p, 1 / 3)
    groups = [{"params": params[:2]}, {"params": params[2:], "adaptive": True}]
    norm = perturbation_norm(groups)
    exact = torch.sqrt(sum((p.grad**2).sum() for p in params[:2])
                       + sum(((p.grad * p.abs())**2).sum() for p in params[2:]))
    assert norm.dtype == torch.float32
    assert torch.equal(norm, exact.float()) or \
        abs(norm.item() - exact.item()) <= 2 * torch.finfo(torch.float32).eps * exact.item()
    assert abs(norm.item() - exact.item()) > 0      # float32, not float64


def test_centralize_removes_the_mean_of_matrices_only():
    m = torch.arange(6.0).reshape(2, 3)
    centralize(m)
    assert torch.equal(m, torch.tensor([[-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]]))
    v = torch.arange(3.0)
    centralize(v)
    assert torch.equal(v, torch.arange(3.0))


def test_two_steps_by_hand_equal_step_with_closure():
    """first_step, backward at the perturbed point, second_step: the same as step(closure)."""
    a, _, _ = _run(optedu.SAM, optedu.SGD, dict(lr=0.1, momentum=0.9), steps=3)
    params = harness.params(torch.float64)
    opt = optedu.SAM(params, optedu.SGD, lr=0.1, momentum=0.9)
    for t in range(3):
        opt.zero_grad()
        harness.loss(params, t).backward()
        opt.first_step(zero_grad=True)
        assert all("old_p" in opt.state[p] for p in params)   # w kept while perturbed
        harness.loss(params, t).backward()
        opt.second_step(zero_grad=True)
        assert all("old_p" not in opt.state[p] for p in params)
    assert _same(a, params)


def test_returns_the_perturbed_loss_and_shares_groups_and_state():
    params = harness.params(torch.float64)
    opt = optedu.SAM(params, optedu.AdamW, rho=0.1, lr=1e-2)
    opt.zero_grad()
    at_w = harness.loss(params, 0)
    at_w.backward()
    seen = []

    def closure():
        opt.zero_grad()
        loss = harness.loss(params, 0)
        loss.backward()
        seen.append(loss)
        return loss

    returned = opt.step(closure)
    assert returned is seen[0] and returned.item() > at_w.item()   # uphill by design
    assert opt.param_groups is opt.base_optimizer.param_groups
    assert opt.state is opt.base_optimizer.state
    assert sorted(opt.state[params[0]]) == ["exp_avg", "exp_avg_sq", "step"]
    assert {"rho", "adaptive", "lr", "betas"} <= set(opt.param_groups[0])


def test_a_scheduler_drives_the_base_rate():
    params = harness.params(torch.float64)
    opt = optedu.SAM(params, optedu.SGD, lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    harness.loss(params, 0).backward()
    opt.step(lambda: harness.loss(params, 0))
    sched.step()
    assert opt.base_optimizer.param_groups[0]["lr"] == 0.05


def test_a_checkpoint_resumes_bit_for_bit():
    full, _, _ = _run(optedu.SAM, optedu.AdamW, dict(lr=1e-2), steps=6)
    params, opt, _ = _run(optedu.SAM, optedu.AdamW, dict(lr=1e-2), steps=3)
    saved = copy.deepcopy(opt.state_dict())
    fresh = [p.detach().clone().requires_grad_() for p in params]
    resumed = optedu.SAM(fresh, optedu.AdamW, lr=1e-2)
    resumed.load_state_dict(saved)
    assert resumed.base_optimizer.state is resumed.state
    for t in range(3, 6):
        resumed.zero_grad()
        harness.loss(fresh, t).backward()

        def closure():
            resumed.zero_grad()
            loss = harness.loss(fresh, t)
            loss.backward()
            return loss
        resumed.step(closure)
    assert _same(full, fresh)


def test_bad_input_is_refused_by_name():
    params = harness.params(torch.float32)
    with pytest.raises(ValueError, match="Invalid rho value: -0.1"):
        optedu.SAM(params, optedu.SGD, rho=-0.1, lr=0.1)
    with pytest.raises(ValueError, match="Invalid perturb_eps value: -1"):
        optedu.SAM(params, optedu.SGD, perturb_eps=-1, lr=0.1)
    with pytest.raises(ValueError, match="Invalid base_optimizer value: 'SGD'"):
        optedu.SAM(params, "SGD", lr=0.1)
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):   # the base's check
        optedu.SAM(params, optedu.SGD, lr=-1)
    opt = optedu.SAM(params, optedu.SGD, lr=0.1)
    with pytest.raises(ValueError, match="Invalid closure value: None"):
        opt.step()
    # no gradient at w: the reference silently takes a plain base step; optedu refuses
    with pytest.raises(RuntimeError, match="no parameter has a gradient"):
        opt.step(lambda: harness.loss(params, 0))
