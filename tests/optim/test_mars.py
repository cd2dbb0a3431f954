"""optedu MARS as its authors define it: ``MARS/optimizers/mars.py`` of github.com/AGI-Arena/MARS
(commit 4831e28, the file last changed in 09c37ae), which is no package, so the tests name the
lines they check and compute what those lines specify by hand (the Newton-Schulz iteration and
the signature are stated in full). Then pytorch_optimizer.MARS 4.1.0:
bit for bit, or within a measured bound, where its definition and the authors' agree, and the
closed form of where they part."""

from __future__ import annotations

import inspect
import math
import re

import pytest
import torch
from pytorch_optimizer import MARS as Reference

import optedu
from optedu.optim.muon import zeropower_via_newtonschulz
from optedu.optim.mars import MARS
import reference_harness as harness

F64 = torch.float64
B1, B2 = 0.8, 0.99                 # betas of the corrected tensors
B1D = (0.85, 0.9)                  # betas_1d
LR, LR_1D, WD, WD_1D, GAMMA = 0.01, 0.02, 0.1, 0.05, 0.5
KW = dict(lr=LR, lr_1d=LR_1D, betas=(B1, B2), betas_1d=B1D, weight_decay=WD,
          weight_decay_1d=WD_1D, gamma=GAMMA)


def _tensor(shape, seed, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(shape, generator=g, dtype=F64)


def _two_steps(shapes, grads, **kwargs):
    """Parameters from seeds 0, 1, ... stepped by MARS on the given gradients, one list per
    step; the parameters after each step and the optimizer."""
    params = [_tensor(s, i).requires_grad_() for i, s in enumerate(shapes)]
    opt = MARS(params, **kwargs)
    path = [[p.detach().clone() for p in params]]
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = g.clone()
        opt.step()
        path.append([p.detach().clone() for p in params])
    return path, opt


def _adamw_by_hand(theta, g1, g2, lr, betas, eps, decay):
    """Two steps of mars.py's AdamW arithmetic (lines 25-33, 42-51) on c_1 = g1, c_2 = g2:
    theta - lr (decay theta + m_hat / (sqrt(v_hat) + eps)), eps after the correction."""
    b1, b2 = betas
    m, v, out = torch.zeros_like(theta), torch.zeros_like(theta), [theta]
    for t, c in enumerate((g1, g2), start=1):
        m = b1 * m + (1 - b1) * c
        v = b2 * v + (1 - b2) * c * c
        u = (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps)
        out.append(out[-1] - lr * (decay * out[-1] + u))
    return out


def _corrected(g1, g2, gamma=GAMMA, beta1=B1):
    """mars.py lines 19-22: c_t = g_t + gamma beta1/(1-beta1) (g_t - g_{t-1}), g_0 = 0,
    divided by its norm when that exceeds 1."""
    out, last = [], torch.zeros_like(g1)
    for g in (g1, g2):
        c = g + gamma * beta1 / (1 - beta1) * (g - last)
        out.append(c / c.norm() if c.norm() > 1 else c)
        last = g
    return out


def test_a_matrix_first_two_steps_with_eps_after_the_bias_correction():
    """mars.py lines 19-33: on a 2-D tensor the corrected gradient feeds Adam's moments, and
    line 32, denom = (sqrt(v) / sqrt(1 - beta2^t) + eps) (1 - beta1^t), puts eps after the
    correction: the first step is c / (|c| + eps). eps = 0.1 makes the placement visible (at
    step 1 eps before the correction would act as eps / sqrt(1 - beta2) = 1.0)."""
    g1, g2 = _tensor((3, 4), 10, 0.05), _tensor((3, 4), 11, 0.05)
    c1, c2 = _corrected(g1, g2)
    assert c1.norm() < 1 and c2.norm() < 1          # unclipped: the closed form below holds
    path, _ = _two_steps([(3, 4)], [[g1], [g2]], eps=0.1, **KW)
    theta = path[0][0]
    assert torch.allclose(path[1][0], theta - LR * (WD * theta + c1 / (c1.abs() + 0.1)),
                          rtol=1e-13, atol=0)
    by_hand = _adamw_by_hand(theta, c1, c2, LR, (B1, B2), 0.1, WD)
    for t in (1, 2):
        assert torch.allclose(path[t][0], by_hand[t], rtol=1e-13, atol=0)


@pytest.mark.parametrize("shape", [(2, 3, 2, 2), (5,), ()], ids=["4-D", "1-D", "0-D"])
def test_every_tensor_but_a_matrix_takes_the_adamw_path(shape):
    """mars.py line 192, is_grad_2d = len(grad.shape) == 2, and line 18, correct only
    `optimize_1d or is_grad_2d`: a convolution kernel, a bias and a scalar take lines 41-52,
    AdamW on g_t itself with lr * lr_1d_factor (line 82: lr_1d / lr), betas_1d and
    weight_decay_1d; with optimize_1d=True they are corrected like a matrix."""
    g1, g2 = _tensor(shape, 20, 0.05), _tensor(shape, 21, 0.05)
    path, opt = _two_steps([shape], [[g1], [g2]], eps=1e-3, **KW)
    lr_1d = LR * (LR_1D / LR)
    by_hand = _adamw_by_hand(path[0][0], g1, g2, lr_1d, B1D, 1e-3, WD_1D)
    for t in (1, 2):
        assert torch.allclose(path[t][0], by_hand[t], rtol=1e-13, atol=0)
    corrected, _ = _two_steps([shape], [[g1], [g2]], eps=1e-3, optimize_1d=True, **KW)
    c1, c2 = _corrected(g1, g2)
    by_hand = _adamw_by_hand(path[0][0], c1, c2, LR, (B1, B2), 1e-3, WD)
    assert torch.allclose(corrected[2][0], by_hand[2], rtol=1e-13, atol=0)


def test_the_adamw_path_is_torch_adamw():
    """Lines 41-52 are AdamW: theta - eta (lambda theta + m_hat / (sqrt(v_hat) + eps)) is
    torch's (1 - eta lambda) theta - eta m_hat / (sqrt(v_hat) + eps), in another rounding
    order: an ulp or two a step that nothing contracts, so over 30 steps within 16 ulps of
    the largest entry (about 2 sqrt(30), a random walk's reach; measured 3.4)."""
    ours = torch.ones(6, dtype=F64, requires_grad=True)
    theirs = torch.ones(6, dtype=F64, requires_grad=True)
    mars = MARS([ours], lr=0.5, lr_1d=0.01, betas_1d=(0.9, 0.99), weight_decay_1d=0.1)
    adamw = optedu.AdamW([theirs], lr=0.01, betas=(0.9, 0.99), weight_decay=0.1)
    for t in range(30):
        ours.grad = _tensor(6, 100 + t)
        theirs.grad = ours.grad.clone()
        mars.step()
        adamw.step()
    assert (ours - theirs).abs().max() <= 16 * torch.finfo(F64).eps * theirs.abs().max()
    assert not torch.equal(ours, torch.ones(6, dtype=F64))


def test_the_correction_its_gamma_factor_and_its_clip():
    """Lines 19-23: m_t = beta1 m_{t-1} + (1 - beta1) c_t with the corrected c_t, divided by
    its norm when that exceeds 1, so a large gradient leaves |m_1| = 1 - beta1; line 216: the
    next step's g_{t-1} is this step's gradient."""
    g1, g2 = _tensor((3, 4), 30, 0.02), _tensor((3, 4), 31, 0.02)
    path, opt = _two_steps([(3, 4)], [[g1], [g2]], **KW)
    m1 = (1 - B1) * (1 + GAMMA * B1 / (1 - B1)) * g1
    c1, c2 = _corrected(g1, g2)
    state = opt.state[next(iter(opt.state))]
    assert torch.allclose(state["exp_avg"], B1 * m1 + (1 - B1) * c2, rtol=1e-14, atol=0)
    assert torch.equal(state["last_grad"], g2)
    big = _tensor((3, 4), 32, 10.0)
    _, opt = _two_steps([(3, 4)], [[big]], **KW)
    m = opt.state[next(iter(opt.state))]["exp_avg"]
    assert math.isclose(m.norm().item(), 1 - B1, rel_tol=1e-14)
    assert torch.allclose(m, (1 - B1) * big / big.norm(), rtol=1e-14, atol=0)


def test_last_grad_is_a_copy():
    """Line 216 keeps the gradient tensor itself (state['last_grad'] = grad): a gradient
    written in place, as zero_grad(set_to_none=False) and backward do, would overwrite it and
    cancel the next correction. Here it is a copy: the second step still corrects by g_1."""
    w = _tensor((3, 4), 35).requires_grad_()
    opt = MARS([w], **KW)
    g1, g2 = _tensor((3, 4), 36, 0.02), _tensor((3, 4), 37, 0.02)
    w.grad = g1.clone()
    opt.step()
    w.grad.copy_(g2)                        # the same tensor, written in place
    m1 = opt.state[w]["exp_avg"].clone()
    opt.step()
    c2 = g2 + GAMMA * B1 / (1 - B1) * (g2 - g1)
    assert torch.allclose(opt.state[w]["exp_avg"], B1 * m1 + (1 - B1) * c2, rtol=1e-14, atol=0)


def test_gamma_one_is_storm_and_gamma_zero_is_adamw():
    """m_t = beta m + (1-beta) c_t with c_t = g_t + gamma beta/(1-beta) (g_t - g_{t-1}) is, at
    gamma = 1, STORM's d_t = g_t + beta (d_{t-1} - g_{t-1}) (Cutkosky and Orabona 2019), its
    old gradient taken from the last batch (MARS-approx); at gamma = 0 with no clipping, the
    2-D step is AdamW's on g, eps after the correction as torch's (line 32)."""
    beta = 0.9
    x = torch.zeros(3, dtype=F64, requires_grad=True)
    opt = MARS([x], lr=1e-3, betas=(beta, 0.99), gamma=1.0, optimize_1d=True)
    d, last = torch.zeros(3, dtype=F64), torch.zeros(3, dtype=F64)
    for t in range(10):
        g = _tensor(3, 40 + t, 0.01)
        x.grad = g.clone()
        opt.step()
        d, last = g + beta * (d - last), g           # STORM, with d_0 = 0 and g_0 = 0
        assert torch.allclose(opt.state[x]["exp_avg"], d, rtol=1e-12, atol=0)
    w = torch.ones(2, 2, dtype=F64, requires_grad=True)
    v = torch.ones(2, 2, dtype=F64, requires_grad=True)
    ours = MARS([w], lr=1e-2, betas=(0.9, 0.99), gamma=0.0, eps=1e-3)
    adam = optedu.AdamW([v], lr=1e-2, betas=(0.9, 0.99), eps=1e-3, weight_decay=0.0)
    for t in range(5):
        w.grad = torch.full_like(w, 0.1 * (t + 1))
        v.grad = w.grad.clone()
        ours.step()
        adam.step()
    assert torch.allclose(w, v, rtol=0, atol=1e-15)


def test_the_lion_form():
    """Lines 34-35: mars-lion steps theta - lr (wd theta + sign(m_t)), no bias correction; its
    1-D tensors still take the AdamW path (line 18); exp_avg_sq is allocated (line 173) and
    stays zero."""
    g1, g2 = _tensor((3, 4), 50, 0.05), _tensor((3, 4), 51, 0.05)
    b1, b2 = _tensor(4, 52, 0.05), _tensor(4, 53, 0.05)
    path, opt = _two_steps([(3, 4), (4,)], [[g1, b1], [g2, b2]], mars_type="mars-lion",
                           eps=1e-3, **KW)
    c1, c2 = _corrected(g1, g2)
    m2 = B1 * (1 - B1) * c1 + (1 - B1) * c2
    theta1 = path[1][0]
    assert torch.equal(path[2][0], theta1 - LR * (WD * theta1 + m2.sign()))
    by_hand = _adamw_by_hand(path[0][1], b1, b2, LR_1D, B1D, 1e-3, WD_1D)
    assert torch.allclose(path[2][1], by_hand[2], rtol=1e-13, atol=0)
    assert all(not s["exp_avg_sq"].any() for p, s in opt.state.items() if p.ndim == 2)


def test_the_shampoo_form():
    """Line 38: mars-shampoo steps a matrix by -lr (NS(m_t / (1 - beta1)) sqrt(max(1, rows /
    cols)) + wd theta) (here NS is Muon's, eps its floor, as optedu computes it: the
    iteration itself is set beside the authors' in
    test_the_newton_schulz_iteration_is_the_authors); line 24: a corrected tensor that is
    not 2-D takes the AdamW form."""
    shapes = [(6, 3), (3, 6), (4,)]
    grads = [_tensor(s, 60 + i, 0.05) for i, s in enumerate(shapes)]
    path, opt = _two_steps(shapes, [grads], mars_type="mars-shampoo", optimize_1d=True,
                           eps=1e-3, **KW)
    for i, shape in enumerate(shapes[:2]):
        c1 = _corrected(grads[i], grads[i])[0]
        m1 = torch.zeros_like(c1).add_(c1, alpha=1 - B1)
        ortho = zeropower_via_newtonschulz(m1.mul(1 / (1 - B1)), eps=1e-3).to(F64)
        theta = path[0][i]
        step = ortho * max(1.0, shape[0] / shape[1]) ** 0.5 + WD * theta
        assert torch.allclose(path[1][i], theta - LR * step, rtol=1e-6, atol=1e-9)
    c1 = _corrected(grads[2], grads[2])[0]
    by_hand = _adamw_by_hand(path[0][2], c1, c1, LR, (B1, B2), 1e-3, WD)
    assert torch.allclose(path[1][2], by_hand[1], rtol=1e-13, atol=0)


def test_amsgrad_divides_by_the_running_maximum():
    """Lines 28-30 and 46-48: with amsgrad, denom = (sqrt(max_t v) / sqrt(1 - beta2^t) + eps)
    (1 - beta1^t), max_t v the running maximum of v. A large first gradient, then small ones,
    make v fall while its maximum stays, so the closed form below differs from the one
    without the maximum (a class that ignores max_exp_avg_sq fails it), on a matrix (gamma =
    0, unclipped: c_t = g_t) and on a bias (the AdamW path)."""
    for shape, lr, (b1, b2), decay, extra in (((3, 4), LR, (B1, B2), WD, dict(gamma=0.0)),
                                              ((4,), LR_1D, B1D, WD_1D, {})):
        grads = [_tensor(shape, 120 + t, 0.3 if t == 0 else 0.01) for t in range(4)]
        kw = {**KW, **extra, "amsgrad": True, "eps": 1e-3}
        path, opt = _two_steps([shape], [[g] for g in grads], **kw)
        theta = path[0][0]
        m, v, top = (torch.zeros(shape, dtype=F64) for _ in range(3))
        for t, g in enumerate(grads, start=1):
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            top = torch.maximum(top, v)
            u = (m / (1 - b1**t)) / ((top / (1 - b2**t)).sqrt() + 1e-3)
            theta = theta - lr * (decay * theta + u)
            assert torch.allclose(path[t][0], theta, rtol=1e-13, atol=0), (shape, t)
        state = opt.state[next(iter(opt.state))]
        assert torch.equal(state["max_exp_avg_sq"], top)
        assert (top > v).all()                          # the maximum is not v
        plain, _ = _two_steps([shape], [[g] for g in grads], **{**kw, "amsgrad": False})
        assert not torch.allclose(plain[4][0], theta, rtol=1e-6, atol=0)


def _authors_newton_schulz(M, steps=5, eps=1e-7, dtype=torch.bfloat16):
    """mars.py lines 221-233, NewtonSchulz, written out (their dtype is bfloat16; ``dtype``
    lets the same iteration run in float64): X_0 = M / (|M|_F + eps), the norm taken in M's
    dtype and eps added; a tall M transposed first and back at the end; five steps of
    X <- a X + b (X X^T) X + c (X X^T)(X X^T) X with (a, b, c) = (3.4445, -4.7750, 2.0315);
    the result in M's dtype."""
    a, b, c = 3.4445, -4.7750, 2.0315
    X = M.to(dtype) / (M.norm() + eps)
    if M.size(0) > M.size(1):
        X = X.T
    for _ in range(steps):
        A = X @ X.T
        B = A @ X
        X = a * X + b * B + c * A @ B
    if M.size(0) > M.size(1):
        X = X.T
    return X.to(M.dtype)


@pytest.mark.parametrize("shape", [(6, 3), (3, 6)], ids=["tall", "wide"])
def test_the_newton_schulz_iteration_is_the_authors(shape):
    """optedu's Shampoo form calls Muon's iteration with eps as a floor under the norm
    (max(|M|, eps)); the authors' adds eps (|M| + eps) and takes the norm in M's dtype, not in
    bfloat16. Run in float64 the two agree but for that eps: within 1e-7 at eps = 1e-8 on a
    matrix of norm about 4 (measured 1.1e-8 tall, 2.5e-9 wide), within 1e-14 at eps = 0
    (measured 2.3e-15). In bfloat16, as both run it, they differ by a few bfloat16 roundings
    (bfloat16's resolution is 7.8e-3): by between 0.01 and 0.1 (measured 0.037 tall, 0.031
    wide). A wrong coefficient or one step fewer fails the first check; the transposition
    changes only the cost and the rounding (each step maps every singular value sigma to
    a sigma + b sigma^3 + c sigma^5 from either side)."""
    M = _tensor(shape, 60)
    ours = zeropower_via_newtonschulz(M.clone(), eps=1e-8, dtype=F64)
    assert (ours - _authors_newton_schulz(M, eps=1e-8, dtype=F64)).abs().max() <= 1e-7
    ours = zeropower_via_newtonschulz(M.clone(), eps=0.0, dtype=F64)
    assert (ours - _authors_newton_schulz(M, eps=0.0, dtype=F64)).abs().max() <= 1e-14
    bf16 = zeropower_via_newtonschulz(M.clone(), eps=1e-8).to(F64)
    assert 0.01 < (bf16 - _authors_newton_schulz(M, eps=1e-8)).abs().max() < 0.1


def test_the_signature_is_the_authors():
    """Lines 56-57: the authors' MARS.__init__, its parameters' names, order and defaults."""
    authors = [("params", inspect.Parameter.empty), ("lr", 3e-3), ("betas", (0.95, 0.99)),
               ("eps", 1e-8), ("weight_decay", 0.0), ("amsgrad", False), ("gamma", 0.025),
               ("is_approx", True), ("mars_type", "mars-adamw"), ("optimize_1d", False),
               ("lr_1d", 3e-3), ("betas_1d", (0.9, 0.95)), ("weight_decay_1d", 0.1)]
    ours = list(inspect.signature(MARS.__init__).parameters.values())[1:]
    assert [(p.name, p.default) for p in ours] == authors


def test_a_group_s_lr_1d_is_refused():
    """The rate of a group's other tensors is its lr_1d_factor (line 82 keeps lr_1d / lr from
    the constructor); an lr_1d in a group would be ignored, so it is refused, at construction
    and in add_param_group, while a group's lr_1d_factor is used."""
    w, b = _tensor((2, 2), 130).requires_grad_(), _tensor(2, 131).requires_grad_()
    message = ("Invalid lr_1d value: 0.5 (expected no lr_1d in a parameter group; set its "
               "lr_1d_factor, lr_1d / lr)")
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        MARS([{"params": [w], "lr_1d": 0.5}])
    opt = MARS([w])
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        opt.add_param_group({"params": [b], "lr_1d": 0.5})
    opt.add_param_group({"params": [b], "lr_1d_factor": 2.0})
    before = b.detach().clone()
    b.grad = _tensor(2, 132, 0.05)
    opt.step()
    expected = before - 2 * 3e-3 * (0.1 * before + b.grad / (b.grad.abs() + 1e-8))
    assert torch.allclose(b, expected, rtol=1e-12, atol=0)


def test_several_groups():
    """Lines 160 and 181 read lr, weight_decay, betas and amsgrad from each group; line 82
    fixes lr_1d_factor = lr_1d / lr from the constructor's lr, so a group's 1-D tensors step
    at its own lr times that factor (line 51). The first step is c / (|c| + eps) on every
    tensor, which only the rates and decays tell apart."""
    w1, b1, w2, b2 = (_tensor(s, 70 + i).requires_grad_()
                      for i, s in enumerate([(3, 4), (4,), (4, 2), (2,)]))
    second = dict(lr=0.004, betas=(0.5, 0.9), weight_decay=0.3, amsgrad=True)
    opt = MARS([{"params": [w1, b1]}, {"params": [w2, b2], **second}], eps=0.1, **KW)
    before = [p.detach().clone() for p in (w1, b1, w2, b2)]
    grads = [_tensor(p.shape, 80 + i, 0.05) for i, p in enumerate((w1, b1, w2, b2))]
    for p, g in zip((w1, b1, w2, b2), grads):
        p.grad = g.clone()
    opt.step()
    beta1 = {0: B1, 2: 0.5}                   # the corrected tensors' groups' beta1
    for i, (p, rate, decay) in enumerate([(w1, LR, WD), (b1, LR_1D, WD_1D),
                                          (w2, 0.004, 0.3), (b2, 0.004 * LR_1D / LR, WD_1D)]):
        c = grads[i] * (1 + GAMMA * beta1[i] / (1 - beta1[i])) if i in beta1 else grads[i]
        assert c.norm() < 1                                    # unclipped
        expected = before[i] - rate * (decay * before[i] + c / (c.abs() + 0.1))
        assert torch.allclose(p, expected, rtol=1e-13, atol=0), i
    assert [sorted(opt.state[p]) for p in (w1, w2)] == [
        ["exp_avg", "exp_avg_sq", "last_grad", "step"],
        ["exp_avg", "exp_avg_sq", "last_grad", "max_exp_avg_sq", "step"]]


def test_the_exact_form_keeps_last_grad_for_the_caller():
    """Lines 86-109 and 215-216: with is_approx=False the step leaves last_grad alone (zero at
    the first step, line 170); update_previous_grad keeps p.grad as previous_grad and
    update_last_grad copies it into last_grad for the next step."""
    w = _tensor((2, 3), 90).requires_grad_()
    opt = MARS([w], is_approx=False, **KW)
    old = _tensor((2, 3), 91, 0.05)
    w.grad = old.clone()
    opt.update_previous_grad()
    w.grad = _tensor((2, 3), 92, 0.05)
    opt.step()
    assert not opt.state[w]["last_grad"].any()
    opt.update_last_grad()
    assert torch.equal(opt.state[w]["last_grad"], old)
    assert sorted(opt.state[w]) == ["exp_avg", "exp_avg_sq", "last_grad", "previous_grad", "step"]


def test_state_step_and_a_missing_gradient():
    """Lines 154 and 187-191: a parameter without a gradient is skipped and each parameter's
    step is a Python int that counts its own steps."""
    w, b = _tensor((2, 2), 93).requires_grad_(), _tensor(2, 94).requires_grad_()
    opt = MARS([w, b])
    for t in range(3):
        w.grad = _tensor((2, 2), 95 + t, 0.05)
        b.grad = _tensor(2, 98, 0.05) if t == 2 else None
        opt.step()
    assert opt.state[w]["step"] == 3 and opt.state[b]["step"] == 1
    assert isinstance(opt.state[w]["step"], int)


def test_defaults_are_the_authors():
    """Lines 56-57, the signature of the authors' MARS; lr_1d is kept as lr_1d / lr (line
    82), the factor a group's lr is multiplied by."""
    assert MARS(harness.params(F64)).defaults == dict(
        lr=3e-3, betas=(0.95, 0.99), eps=1e-8, weight_decay=0.0, amsgrad=False, gamma=0.025,
        is_approx=True, mars_type="mars-adamw", optimize_1d=False, lr_1d_factor=1.0,
        betas_1d=(0.9, 0.95), weight_decay_1d=0.1)


# --- pytorch_optimizer.MARS 4.1.0: where its definition and the authors' agree, and where not ---

SHAPES = [(4, 5), (5,), (3, 2, 2, 2), (5, 3), (3,)]


def _race(make, dtype, steps=25):
    """``steps`` seeded steps of two groups (the second with its own lr and betas) over a
    matrix, a bias and a 4-D kernel, then a matrix and a bias; every fourth gradient large
    enough to be clipped."""
    params = [_tensor(s, i).to(dtype).requires_grad_() for i, s in enumerate(SHAPES)]
    opt = make([{"params": params[:3]}, {"params": params[3:], "lr": 0.005, "betas": (0.7, 0.9)}])
    for t in range(steps):
        for i, p in enumerate(params):
            p.grad = _tensor(p.shape, 1000 * t + i, 1.0 if t % 4 == 0 else 0.05).to(dtype)
        opt.step()
    return params, opt


AGREE = dict(lr=0.01, betas=(0.8, 0.99), gamma=0.5, optimize_1d=True, weight_decay=0.0)


@pytest.mark.parametrize("dtype", [torch.float32, F64], ids=["float32", "float64"])
def test_the_lion_form_is_pytorch_optimizer_s_bit_for_bit(dtype):
    """With optimize_1d=True both correct every tensor (theirs: rank >= 2 or optimize_1d;
    the authors': rank == 2 or optimize_1d), and the Lion form has no eps and no bias
    correction; with weight_decay=0 the two decays (theirs (1 - lr wd) theta, the authors'
    theta - lr (wd theta + u)) multiply by exactly 1. The parameters agree bit for bit, on
    the 4-D kernel too; the momenta (their lerp, the authors' multiply-add) within
    1/(1 - beta1) = 5 ulps of the largest entry, one ulp a step summed geometrically
    (measured 0.9)."""
    a, ours = _race(lambda g: MARS(g, mars_type="mars-lion", **AGREE), dtype)
    b, theirs = _race(lambda g: Reference(g, mars_type="lion", foreach=False, **AGREE), dtype)
    assert harness.same(a, b)
    for p, q in zip(a, b):
        m, n = ours.state[p]["exp_avg"], theirs.state[q]["exp_avg"]
        assert (m - n).abs().max() <= 5 * torch.finfo(dtype).eps * n.abs().max()
    assert not harness.same(a, [_tensor(s, i).to(dtype) for i, s in enumerate(SHAPES)])


def test_the_adamw_form_agrees_with_pytorch_optimizer_s_without_eps():
    """With eps=0 the placement of eps cannot matter; what is left is their floor under v,
    sqrt(v + 1e-15), and the order of operations (divide by sqrt(1 - beta2^t) or multiply by
    its inverse; lerp or multiply-add). In float64 the floor is the whole difference: within
    1e-9 of each tensor's move after 25 steps (measured 3.3e-10; with 1e-15 added under
    optedu's root the two were measured 0.35 ulps apart). That is far below float32's
    resolution (6e-8), so in float32 only the rounding order remains: within 2 ulps of each
    tensor's largest entry (measured 0.75)."""
    start = [_tensor(s, i) for i, s in enumerate(SHAPES)]
    for dtype, bound in ((F64, None), (torch.float32, 2)):
        a, _ = _race(lambda g: MARS(g, eps=0.0, **AGREE), dtype)
        b, _ = _race(lambda g: Reference(g, eps=0.0, foreach=False, **AGREE), dtype)
        for p, q, s in zip(a, b, start):
            if bound is None:
                assert (p - q).abs().max() <= 1e-9 * (q.detach() - s).abs().max()
            else:
                assert (p - q).abs().max() <= bound * torch.finfo(dtype).eps * q.abs().max()


def test_where_pytorch_optimizer_s_definition_parts():
    """Its first step on a matrix is c / ((sqrt(v + 1e-15) + eps) / sqrt(1 - beta2)), v =
    (1 - beta2) c^2: eps before the correction, so eps / sqrt(1 - beta2^t) after it; the
    authors' is c / (|c| + eps). Its 4-D
    kernel is corrected; the authors' takes the AdamW path with lr_1d."""
    c = _tensor((3, 4), 110, 0.05)
    kw = dict(lr=0.01, betas=(0.9, 0.99), gamma=0.0, eps=1e-3, weight_decay=0.0)
    ours, _ = _two_steps([(3, 4)], [[c]], **kw)
    theirs = _tensor((3, 4), 0).requires_grad_()
    theirs.grad = c.clone()
    Reference([theirs], foreach=False, **kw).step()
    theta = ours[0][0]
    assert torch.allclose(ours[1][0], theta - 0.01 * c / (c.abs() + 1e-3), rtol=1e-13, atol=0)
    denom = ((0.01 * c * c + 1e-15).sqrt() + 1e-3) / math.sqrt(0.01)
    assert torch.allclose(theirs, theta - 0.01 * c / denom, rtol=1e-13, atol=0)
    kernel = _tensor((2, 3, 2, 2), 111, 0.05)
    ours, _ = _two_steps([(2, 3, 2, 2)], [[kernel]], lr_1d=0.5, **kw)
    theirs = _tensor((2, 3, 2, 2), 0).requires_grad_()
    theirs.grad = kernel.clone()
    Reference([theirs], foreach=False, lr_1d=0.5, **kw).step()
    moved, moved_theirs = (ours[1][0] - ours[0][0]).abs().max(), (theirs - ours[0][0]).abs().max()
    assert moved > 10 * moved_theirs          # the authors' kernel steps at lr_1d = 0.5


def test_grad_none_and_sparse_and_complex():
    params = harness.params(F64)
    unused = torch.ones(3, dtype=F64, requires_grad=True)
    _, opt = harness.train(params, MARS([*params, unused]), steps=2)
    assert torch.equal(unused, torch.ones(3, dtype=F64)) and unused not in opt.state
    emb = torch.zeros(4, 2, requires_grad=True)
    emb.grad = torch.zeros(4, 2).to_sparse()
    with pytest.raises(RuntimeError, match="MARS does not support sparse gradients"):
        MARS([emb]).step()
    z = torch.zeros(2, 2, dtype=torch.complex64, requires_grad=True)
    z.grad = torch.ones_like(z)
    with pytest.raises(RuntimeError, match="MARS does not support complex parameters"):
        MARS([z]).step()


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=-0.1), "Invalid learning rate: -0.1 (expected a number > 0)"),
    (dict(lr=0.0), "Invalid learning rate: 0.0 (expected a number > 0)"),
    (dict(eps=-1e-8), "Invalid epsilon value: -1e-08"),
    (dict(betas=(1.0, 0.99)), "Invalid beta parameter at index 0: 1.0"),
    (dict(weight_decay=-0.01), "Invalid weight_decay value: -0.01"),
    (dict(gamma=-0.01), "Invalid gamma value: -0.01"),
    (dict(lr_1d=-0.1), "Invalid lr_1d value: -0.1"),
    (dict(betas_1d=(0.9, -0.1)),
     "Invalid betas_1d value: (0.9, -0.1) (expected two numbers in [0, 1))"),
    (dict(weight_decay_1d=-0.01), "Invalid weight_decay_1d value: -0.01"),
    (dict(mars_type="adamw"), "Invalid mars_type value: adamw "
                              "(expected 'mars-adamw', 'mars-lion' or 'mars-shampoo')"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        MARS(harness.params(F64), **kwargs)


def test_state_dict_round_trip():
    harness.resume(lambda g: MARS(g, amsgrad=True, **KW),
                   lambda g: MARS(g, amsgrad=True, **KW), {"lr": 0.005})


def test_pieces_are_refused():
    """The clip reads the norm of the whole tensor (see ._sharding)."""
    assert not MARS.element_wise and "whole tensor" in MARS.refuses_shards
