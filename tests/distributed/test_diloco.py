"""optedu.distributed.diloco: DiLoCo's outer step, its single-process simulation, and the
two-process run equal to it bit for bit (full tier: it starts processes).

Quick tier: the outer gradient's sign, plain averaging (outer rate 1, no momentum) as the mean
of the workers' weights, one worker with an outer SGD as Lookahead (a measured bound), and the
argument checks."""

import pytest
import torch

from optedu.distributed import launch
from optedu.distributed.diloco import (OuterOptimizer, ToyTask, both_rank,
                                       data_parallel_single, diloco_single, inner_steps,
                                       outer_gradient)
from optedu.training.lookahead import Lookahead

AVERAGE = {"lr": 1.0, "momentum": 0.0, "nesterov": False}


def test_the_outer_gradient_points_from_the_worker_back_to_the_global_weights():
    g, p = [torch.tensor([1.0, 2.0])], [torch.tensor([0.5, 3.0])]
    assert torch.equal(outer_gradient(g, p)[0], torch.tensor([0.5, -1.0]))
    outer = OuterOptimizer(g, **AVERAGE)
    outer.step(outer_gradient(outer.params, p))          # θ − 1·(θ − θ_m) = θ_m
    assert torch.equal(outer.params[0], p[0])


def test_plain_averaging_puts_the_mean_of_the_workers_weights_in_the_global_model():
    task, H = ToyTask(), 4
    out = diloco_single(task, 2, H, 1, AVERAGE)
    workers = []
    for m in range(2):                                   # the two workers, by hand
        model = task.model()
        inner_steps(task, model, task.inner(model), task.batches(m), H)
        workers.append([p.detach() for p in model.parameters()])
    for got, a, b in zip(out["params"], *workers):
        assert torch.allclose(got, (a + b) / 2, rtol=0, atol=1e-15)   # float64 rounding
        assert not torch.equal(a, b)


@pytest.mark.parametrize("alpha", [0.3, 0.5, 0.8])
@pytest.mark.parametrize("dtype, bound", [(torch.float64, 2e-15), (torch.float32, 5e-7)])
def test_one_worker_with_an_outer_sgd_is_lookahead(dtype, bound, alpha):
    """θ ← φ − α(φ − θ_H) (the outer SGD) and Lookahead's lerp, θ_H + (1−α)(φ − θ_H), are one
    rule rounded differently (one rounding per synchronisation, carried by the steps after
    it): the largest relative gap measured after 6 rounds of 5 steps is 4.3e-16 in float64
    (α = 0.3) and 7.2e-8 in float32 (α = 0.8), 0 at α = 0.5; the bounds are about 9 and 4
    units in the last place."""
    task, H, rounds = ToyTask(dtype), 5, 6
    out = diloco_single(task, 1, H, rounds, {"lr": alpha, "momentum": 0.0, "nesterov": False})
    model = task.model()
    opt = Lookahead(task.inner(model), k=H, alpha=alpha)
    inner_steps(task, model, opt, task.batches(0), H * rounds)
    gap = max(float((a - b.detach()).abs().max() / b.detach().abs().max())
              for a, b in zip(out["params"], model.parameters()))
    assert gap < bound
    plain = diloco_single(task, 1, H, rounds, AVERAGE)   # α = 1: no pull-back at all
    assert max(float((a - b.detach()).abs().max()) for a, b in zip(plain["params"],
                                                            model.parameters())) > 1e-3


def test_the_simulation_is_deterministic_and_communicates_once_per_round():
    a, b = diloco_single(ToyTask(), 2, 3, 2), diloco_single(ToyTask(), 2, 3, 2)
    assert all(torch.equal(p, q) for p, q in zip(a["params"], b["params"]))
    assert a["allreduces"] == 2 * 4 and len(a["evals"]) == 2
    dp = data_parallel_single(ToyTask(), 2, 6, 3)
    assert dp["allreduces"] == 6 * 4 and len(dp["evals"]) == 2


@pytest.mark.parametrize("kwargs, message", [
    ({"H": 0}, "Invalid H value: 0"), ({"rounds": 1.5}, "Invalid rounds value: 1.5"),
    ({"world_size": 0}, "Invalid world_size value: 0")])
def test_bad_arguments_are_refused_by_name(kwargs, message):
    args = {"world_size": 2, "H": 2, "rounds": 1} | kwargs
    with pytest.raises(ValueError, match=message):
        diloco_single(ToyTask(), **args)


@pytest.mark.full  # starts processes
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_two_processes_equal_the_simulation_bit_for_bit(dtype):
    task = ToyTask(dtype)
    ranks = launch(both_rank, 2, (task, 3, 3), timeout=120.0)
    single = {"diloco": diloco_single(task, 2, 3, 3), "dp": data_parallel_single(task, 2, 9, 3)}
    for name in ("diloco", "dp"):
        for r in ranks:
            assert all(torch.equal(p, q) for p, q in zip(r[name]["params"],
                                                          single[name]["params"])), name
            assert r[name]["evals"] == single[name]["evals"]
            assert r[name]["allreduces"] == single[name]["allreduces"]
