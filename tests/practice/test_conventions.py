"""The conventions ledger's forms (optedu.practice.conventions).

Each form is checked where it must equal torch's rule (after mapping the
hyperparameters) and where it must not (a learning-rate drop, a change of
beta, a large epsilon); a first step by hand for the epsilon-hat form. The
optax comparisons are FULL-only (jax's import costs about a second).
"""

import math
from functools import partial

import pytest
import torch

import optedu
from optedu.practice import conventions as cv

PROBLEM = cv.common_problem(steps=30)
CONST = [1e-2] * 30
DROP = [1e-2] * 15 + [1e-3] * 15
TIGHT = 1e-14


def torch_path(cls, lrs=CONST, **kwargs):
    return cv.run_torch(lambda p: cls(p, **kwargs), PROBLEM, lrs)


def test_problem_gradient_and_start():
    theta = torch.zeros(9, dtype=torch.float64)
    g = PROBLEM.grad(theta, 1)
    assert torch.equal(g, PROBLEM.scales * PROBLEM.noise[0])
    assert PROBLEM.start().tolist() == [1.0] * 9 and PROBLEM.steps == 30


def test_net_problem_gradient_is_autograds():
    net = cv.NetProblem(seed=1, steps=3)
    theta = net.start() + 0.1 * torch.randn(
        net.theta0.shape, dtype=torch.float64,
        generator=torch.Generator().manual_seed(0))
    w1, b1, w2, b2 = (p.requires_grad_() for p in
                      [q.clone() for q in net._unpack(theta)])
    idx = net.batches[1]
    out = torch.tanh(net.x[idx] @ w1 + b1) @ w2 + b2
    loss = torch.nn.functional.binary_cross_entropy_with_logits(
        out, net.y[idx])
    auto = torch.cat([g.reshape(-1) for g in
                      torch.autograd.grad(loss, [w1, b1, w2, b2])])
    assert torch.allclose(net.grad(theta, 2), auto, rtol=0, atol=1e-14)
    path = cv.run_torch(lambda p: torch.optim.SGD(p, lr=0.1), net, [0.1] * 3)
    assert path.shape == (4, net.theta0.numel())
    assert net.loss(path[-1]) < net.loss(path[0])


def test_eps_root_form_is_torch_adam_without_eps_root():
    form = partial(cv.adam_eps_root, eps=1e-8, eps_root=0.0)
    assert cv.gap(cv.run(form, PROBLEM, CONST),
                  torch_path(torch.optim.Adam, lr=1e-2)) < TIGHT


def test_eps_hat_first_step_by_hand():
    theta, g = torch.tensor([1.0], dtype=torch.float64), 1e-4
    cv.adam_eps_hat(theta, lambda x: torch.full_like(x, g), {}, 1, 0.1,
                    betas=(0.9, 0.999), eps=1e-5)
    eps_eff = cv.effective_eps(1e-5, 0.999, 1)          # ε̂/√(1-β2)
    assert abs(eps_eff - 1e-5 / math.sqrt(0.001)) < 1e-18
    assert abs(theta.item() - (1 - 0.1 * g / (g + eps_eff))) < 1e-15


def test_eps_hat_with_decay_is_torch_adamw_when_eps_is_zero():
    form = partial(cv.adam_eps_hat, eps=0.0, weight_decay=0.1)
    ref = torch_path(torch.optim.AdamW, DROP, lr=1e-2, eps=0.0,
                     weight_decay=0.1)
    assert cv.gap(cv.run(form, PROBLEM, DROP), ref) < TIGHT


def test_eps_hat_differs_from_torch_with_a_large_eps():
    form = partial(cv.adam_eps_hat, eps=1e-3)
    ref = torch_path(torch.optim.Adam, lr=1e-2, eps=1e-3)
    assert cv.gap(cv.run(form, PROBLEM, CONST), ref) > 1e-4


def test_paper_adamw_is_torch_with_decay_over_alpha():
    alpha, lam = 1e-2, 0.5
    mult = [0.5 * (1 + math.cos(math.pi * t / 30)) for t in range(30)]
    form = partial(cv.adamw_paper, alpha=alpha, weight_decay=lam)
    ref = torch_path(torch.optim.AdamW, [alpha * m for m in mult],
                     weight_decay=lam / alpha)
    assert cv.gap(cv.run(form, PROBLEM, mult), ref) < TIGHT
    fixed = partial(cv.adamw_paper, alpha=alpha, weight_decay=lam * 1e-2,
                    follow_schedule=False)
    assert cv.gap(cv.run(fixed, PROBLEM, mult), ref) > 1e-3


def test_adamax_eps_after_is_torch_when_eps_is_zero():
    form = partial(cv.adamax_eps_after, eps=0.0)
    ref = torch_path(torch.optim.Adamax, lr=1e-2, eps=0.0)
    assert cv.gap(cv.run(form, PROBLEM, CONST), ref) < TIGHT


@pytest.fixture
def float64_scalars():
    """torch keeps NAdam's mu_product in the default dtype."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.mark.parametrize("psi", [1.0, 4e-3])
def test_keras_nadam_is_torch_nadam_with_momentum_decay_psi(psi,
                                                            float64_scalars):
    form = partial(cv.nadam_keras, eps=1e-8, psi=psi)
    ref = torch_path(torch.optim.NAdam, lr=1e-2, momentum_decay=psi)
    assert cv.gap(cv.run(form, PROBLEM, CONST), ref) < TIGHT


def test_adagrad_inside_is_torch_started_at_g0_plus_eps():
    form = partial(cv.adagrad_eps_inside, eps=1e-7,
                   initial_accumulator_value=0.1)
    ref = torch_path(torch.optim.Adagrad, [1e-1] * 30, eps=0.0,
                     initial_accumulator_value=0.1 + 1e-7)
    assert cv.gap(cv.run(form, PROBLEM, [1e-1] * 30), ref) < TIGHT


@pytest.mark.parametrize("centered", [False, True])
def test_rmsprop_inside_is_torch_when_eps_is_zero(centered):
    form = partial(cv.rmsprop_eps_inside, alpha=0.9, eps=0.0,
                   centered=centered)
    ref = torch_path(torch.optim.RMSprop, lr=1e-2, alpha=0.9, eps=0.0,
                     centered=centered)
    assert cv.gap(cv.run(form, PROBLEM, CONST), ref) < TIGHT


def test_rmsprop_lr_in_buffer_equal_at_constant_rate_only():
    form = partial(cv.rmsprop_lr_in_buffer, momentum=0.9)
    for lrs, equal in [(CONST, True), (DROP, False)]:
        ref = torch_path(torch.optim.RMSprop, lrs, momentum=0.9)
        assert (cv.gap(cv.run(form, PROBLEM, lrs), ref) < TIGHT) == equal


def test_ema_is_torch_at_rescaled_rate_unless_beta_changes():
    beta = 0.9
    ref = torch_path(torch.optim.SGD, [lr * (1 - beta) for lr in DROP],
                     momentum=beta)
    ema = cv.run(partial(cv.ema_momentum, beta=beta), PROBLEM, DROP)
    assert cv.gap(ema, ref) < TIGHT
    betas = [0.5] * 15 + [0.9] * 15
    ema = cv.run(partial(cv.ema_momentum, beta=betas), PROBLEM, CONST)
    assert cv.gap(ema, torch_sgd_following(betas)) > 1e-3


def torch_sgd_following(betas, lr=1e-2):
    """torch's SGD with momentum β_t and rate η(1 - β_t) at every step."""
    return cv.run_torch(lambda p: torch.optim.SGD(p, lr=lr, momentum=0.5),
                        PROBLEM, [lr * (1 - b) for b in betas],
                        momentum=betas)


def test_ema_follows_torch_while_beta_is_constant():
    betas = [0.9] * 30
    ema = cv.run(partial(cv.ema_momentum, beta=betas), PROBLEM, CONST)
    assert cv.gap(ema, torch_sgd_following(betas)) < TIGHT


@pytest.mark.parametrize("form", [cv.velocity_momentum,
                                  cv.nesterov_velocity,
                                  cv.nesterov_lookahead])
def test_velocity_forms_equal_torch_at_constant_rate_only(form):
    nesterov = form is not cv.velocity_momentum
    f = partial(form, momentum=0.9)
    for lrs, equal in [(CONST, True), (DROP, False)]:
        ref = torch_path(torch.optim.SGD, lrs, momentum=0.9,
                         nesterov=nesterov)
        assert (cv.gap(cv.run(f, PROBLEM, lrs), ref) < TIGHT) == equal


def test_source_lines_reads_torch_adam():
    from torch.optim.adam import _single_tensor_adam
    lines = cv.source_lines(_single_tensor_adam, "bias_correction2_sqrt).")
    assert "denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt)" \
        ".add_(eps)" in lines


def test_source_lines_reads_torch_sgd_first_buffer():
    """The ledger prints the line that starts torch's buffer at g_1."""
    from torch.optim.sgd import _single_tensor_sgd
    lines = cv.source_lines(_single_tensor_sgd, "buf = grad.detach().clone()")
    assert lines == ["buf = grad.detach().clone()"]


@pytest.mark.full  # optax comparison
def test_optax_adam_and_adagrad_agree_with_the_forms():
    import jax
    x64 = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    import optax
    try:
        ref = torch_path(torch.optim.Adam, lr=1e-2)
        got = cv.run_optax(optax.adam, PROBLEM, CONST)
        assert cv.gap(got, ref) < TIGHT
        form = partial(cv.adagrad_eps_inside)
        got = cv.run_optax(optax.adagrad, PROBLEM, [1e-1] * 30)
        assert cv.gap(got, cv.run(form, PROBLEM, [1e-1] * 30)) < TIGHT
    finally:
        jax.config.update("jax_enable_x64", x64)   # leave jax as found


def test_shampoo_lambda_max_root_by_hand():
    stats = torch.diag(torch.tensor([4.0, 1.0], dtype=torch.float64))
    root = cv.shampoo_root_lambda_max(stats, 2, eps=0.25)   # + 0.25·4 I
    want = torch.diag(torch.tensor([5.0, 2.0], dtype=torch.float64) ** -0.5)
    assert torch.allclose(root, want, rtol=0, atol=1e-15)
    plain = cv.inverse_root(stats + 0.25 * torch.eye(2, dtype=torch.float64), 2)
    assert (root - plain).abs().max() > 0.05          # εI differs from ελ_max I


def test_psgd_coin_fits_is_a_seeded_coin():
    fits = cv.psgd_coin_fits(0.3, 100, torch.Generator().manual_seed(0))
    again = torch.rand(100, generator=torch.Generator().manual_seed(0)) < 0.3
    assert fits == again.tolist() and 10 < sum(fits) < 50
    assert all(cv.psgd_coin_fits(1.0, 5, torch.Generator().manual_seed(1)))


def test_timm_cautious_adamw_is_optedus_with_the_mean_rescale():
    """timm 1.0.31's AdamWLegacy(caution=True) against the rebuilt form, bit for bit over 30
    steps on the common problem (float64), with weight decay; the paper's rescale n/(k+1)
    (optedu's CautiousAdamW) is another run."""
    from optedu.instruments.references import reference_module
    timm_adamw = reference_module("timm.optim", "adamw").AdamWLegacy
    problem = cv.common_problem(steps=30, seed=1)
    lrs = [1e-2] * 30
    theirs = cv.run_torch(lambda p: timm_adamw(p, lr=1e-2, weight_decay=0.1, caution=True),
                          problem, lrs)
    ours = cv.run(partial(cv.cautious_adamw_timm, weight_decay=0.1), problem, lrs)
    assert torch.equal(ours, theirs)
    paper = cv.run_torch(lambda p: optedu.CautiousAdamW(p, lr=1e-2, weight_decay=0.1),
                         problem, lrs)
    assert cv.gap(paper, theirs) > 1e-3


def test_cautious_mask_mean_is_n_over_max_k_and_n_over_1000():
    grad = torch.ones(4000, dtype=torch.float64)
    for kept, factor in [(4000, 1.0), (1000, 4.0), (2, 1000.0), (0, 0.0)]:
        update = torch.full_like(grad, -1.0)
        update[:kept] = 1.0
        mask = cv.cautious_mask_mean(update, grad)
        assert torch.equal(mask[:kept], torch.full((kept,), factor, dtype=grad.dtype))
        assert not mask[kept:].any()


@pytest.mark.parametrize("call, message", [
    (lambda: cv.shampoo_root_lambda_max(torch.eye(2), 2, eps=-1.0),
     "Invalid eps: -1.0"),
    (lambda: cv.shampoo_root_lambda_max(torch.eye(2), 0), "Invalid power: 0"),
    (lambda: cv.psgd_coin_fits(0.0, 5, torch.Generator()), "Invalid prob: 0.0"),
    (lambda: cv.psgd_coin_fits(0.5, -1, torch.Generator()),
     "Invalid steps: -1"),
])
def test_newer_forms_refuse_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()
