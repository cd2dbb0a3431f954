"""AdaGrad's comparison variant (optedu.optim.variants.adagrad): eps inside the root.

A first step by hand, and the identity that makes it torch's rule with a larger
starting sum and eps = 0.
"""

import torch

from optedu.optim.variants.adagrad import adagrad_eps_inside


def _grads(steps: int, n: int = 4, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    scales = torch.logspace(-3, 2, n, dtype=torch.float64)
    return torch.randn(steps, n, generator=gen, dtype=torch.float64) * scales


def _run_torch(grads: torch.Tensor, **kwargs) -> torch.Tensor:
    theta = torch.zeros(grads.shape[1], dtype=torch.float64,
                        requires_grad=True)
    opt = torch.optim.Adagrad([theta], **kwargs)
    for g in grads:
        theta.grad = g.clone()
        opt.step()
    return theta.detach()


def test_adagrad_eps_inside_is_torch_adagrad_with_a_larger_start():
    grads = _grads(100, seed=3)
    theta = torch.zeros(4, dtype=torch.float64)
    total = torch.full((4,), 0.1, dtype=torch.float64)
    for g in grads:
        adagrad_eps_inside(theta, g, total, lr=0.1, eps=1e-7)
    folded = _run_torch(grads, lr=0.1, initial_accumulator_value=0.1 + 1e-7,
                        eps=0.0)
    assert torch.allclose(theta, folded, rtol=1e-12, atol=1e-15)


def test_adagrad_eps_inside_first_step_by_hand():
    theta = torch.tensor([1.0], dtype=torch.float64)
    total = torch.zeros(1, dtype=torch.float64)
    grad = torch.tensor([2.0], dtype=torch.float64)
    adagrad_eps_inside(theta, grad, total, lr=0.1, eps=5.0)
    assert total.item() == 4.0
    assert abs(theta.item() - (1 - 0.1 * 2 / 3)) < 1e-15    # √(4 + 5) = 3
