"""The AdamW chapter's comparison variants (optedu.optim.variants.adamw).

When each is the same rule as torch's, when it is not, and the exact size of
the difference of decaying after the Adam step.
"""

import torch

from optedu.optim.variants.adamw import (AdamWDecayAfterStep, DecoupledSGD,
                                   FixedDecaySGD)


def _grads(steps: int = 30, n: int = 5, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    scales = torch.logspace(-3, 2, n, dtype=torch.float64)
    noise = torch.randn(steps, n, generator=gen, dtype=torch.float64)
    return noise * scales


def _run(make, grads, lrs=None) -> torch.Tensor:
    theta = torch.ones(grads.shape[1], dtype=torch.float64,
                       requires_grad=True)
    opt = make([theta])
    for t, g in enumerate(grads):
        if lrs is not None:
            opt.param_groups[0]["lr"] = lrs[t]
        theta.grad = g.clone()
        opt.step()
    return theta.detach()


def _torch_sgd(**kwargs):
    return lambda p: torch.optim.SGD(p, lr=0.1, weight_decay=0.5, **kwargs)


def test_decoupled_sgd_is_torch_l2_without_momentum_under_any_schedule():
    grads = _grads()
    lrs = [0.05 * (1 + t % 3) for t in range(len(grads))]
    ours = _run(lambda p: DecoupledSGD(p, lr=0.1, weight_decay=0.5),
                grads, lrs)
    ref = _run(_torch_sgd(), grads, lrs)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-14)


def test_decoupled_sgd_differs_from_torch_l2_with_momentum():
    grads = _grads()
    ours = _run(lambda p: DecoupledSGD(p, lr=0.1, momentum=0.9,
                                       weight_decay=0.5), grads)
    ref = _run(_torch_sgd(momentum=0.9), grads)
    assert (ours - ref).abs().max() > 1e-2


def test_fixed_decay_matches_only_a_constant_learning_rate():
    grads = _grads()
    fixed = lambda p: FixedDecaySGD(p, lr=0.1, weight_decay=0.05)  # noqa: E731
    same = _run(fixed, grads)
    ref = _run(_torch_sgd(), grads)
    torch.testing.assert_close(same, ref, rtol=1e-12, atol=1e-14)
    lrs = [0.1 / (1 + t) for t in range(len(grads))]
    moved = _run(fixed, grads, lrs)
    ref = _run(_torch_sgd(), grads, lrs)
    assert (moved - ref).abs().max() > 1e-2


def test_decay_after_step_is_decay_then_step_plus_lr_squared_lambda_u():
    lr, lam = 0.1, 0.3
    theta = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    grad = torch.tensor([0.5, 2.0, -1e-3], dtype=torch.float64)
    makers = {
        "after": lambda p: AdamWDecayAfterStep(p, lr=lr, weight_decay=lam),
        "before": lambda p: torch.optim.AdamW(p, lr=lr, weight_decay=lam),
        "none": lambda p: torch.optim.Adam(p, lr=lr),
    }
    results = {}
    for name, make in makers.items():
        p = theta.clone().requires_grad_()
        opt = make([p])
        p.grad = grad.clone()
        opt.step()
        results[name] = p.detach()
    u = (theta - results["none"]) / lr    # first step: u = g/(|g| + eps)
    torch.testing.assert_close(results["after"] - results["before"],
                               lr**2 * lam * u, rtol=1e-10, atol=1e-15)


def test_decay_after_step_with_zero_gradients_is_torch_adamw():
    grads = torch.zeros(20, 3, dtype=torch.float64)
    ours = _run(lambda p: AdamWDecayAfterStep(p, lr=0.1, weight_decay=0.2),
                grads)
    ref = _run(lambda p: torch.optim.AdamW(p, lr=0.1, weight_decay=0.2),
               grads)
    torch.testing.assert_close(ours, ref, rtol=0, atol=0)
