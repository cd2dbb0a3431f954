"""The Shampoo experiment (optedu.experiments.shampoo): its plan, the grafted step (Adam's
length, Shampoo's direction), and the stored runs' steps and seeds
(tests/experiments/test_grids.py checks the stored runs complete and re-runs a sample)."""

from __future__ import annotations

import pytest
import torch

from optedu.experiments import shampoo as sr
from optedu.optim.adam import AdamW
from optedu.optim.shampoo import Shampoo


def test_the_plan():
    keys = [j.key for j in sr.jobs()]
    assert len(keys) == len(set(keys)) == sum(len(sr.RATES[o]) for o in sr.OPTIMIZERS) * 3
    assert len({len(r) for r in sr.RATES.values()}) == 1          # the same grid size
    with pytest.raises(ValueError, match="Invalid optimizer: 'sgd'"):
        sr.contestant("sgd")


def test_grafted_step_has_adams_length_and_shampoos_direction():
    torch.manual_seed(0)
    w = [torch.randn(4, 3, requires_grad=True), torch.randn(3, requires_grad=True)]
    copies = {name: [p.detach().clone().requires_grad_() for p in w]
              for name in ("adam", "shampoo")}
    grads = [torch.randn_like(p) for p in w]
    for params in (w, *copies.values()):
        for p, g in zip(params, grads):
            p.grad = g.clone()
    start = [p.detach().clone() for p in w]
    sr.grafted_step(AdamW(w, lr=0.01, weight_decay=0.0), Shampoo(w, lr=1.0))
    AdamW(copies["adam"], lr=0.01, weight_decay=0.0).step()
    Shampoo(copies["shampoo"], lr=1.0).step()
    for p, s, a, h in zip(w, start, copies["adam"], copies["shampoo"]):
        step, adam, sham = p.detach() - s, a.detach() - s, h.detach() - s
        torch.testing.assert_close(step.norm(), adam.norm())
        cosine = (step * sham).sum() / (step.norm() * sham.norm())
        torch.testing.assert_close(cosine, torch.tensor(1.0))


@pytest.fixture(scope="module")
def stored():
    return sr.read()


def test_the_stored_runs(stored):
    steps = {r["evals"][-1][0] for r in stored if not r["diverged"]}
    assert steps == {500}
    table = sr.finals(stored)
    assert all(set(v) == set(sr.SEEDS) for v in table.values())
