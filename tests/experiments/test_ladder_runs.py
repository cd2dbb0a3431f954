"""The ladder's protocol (optedu/experiments/ladder.py): the plan on made-up results (the rate
grid extended while the best is at an edge, refined, the decay extended upward, seeds and
AdamW's budgets at the best), the speed-up read off AdamW's curve, the device's stored file
against its plan, and the training loop's divergence stop."""

from __future__ import annotations

import json
import math

import pytest
import torch

from optedu.choosing import lm
from optedu.choosing.contestants import Training
from optedu.experiments import ladder
from optedu.instruments import store


def record(size, optimizer, k, d, final, steps=ladder.STEPS, seed=0):
    return {"size": size, "optimizer": optimizer, "rate": k, "decay": d, "steps": steps,
            "seed": seed, "final": final}


def complete(loss, size="S", optimizers=ladder.OPTIMIZERS, rounds=20):
    """Run the plan to its end on the made-up ``loss(optimizer, k, d, steps, seed)``."""
    stored = []
    for _ in range(rounds):
        todo = [j for j in ladder.plan(stored, (size,))
                if j.key not in {ladder.KEY.of(r) for r in stored}
                and j.optimizer in optimizers]
        if not todo:
            return stored
        stored += [record(size, j.optimizer, j.rate, j.decay,
                          loss(j.optimizer, j.rate, j.decay, j.steps, j.seed), j.steps, j.seed)
                   for j in todo]
    raise AssertionError("the plan did not end")


def bowl(best_k, best_d=1):
    return lambda opt, k, d, steps, seed: (1 + (k - best_k) ** 2 + 0.1 * abs(d - best_d)
                                           - 0.01 * math.log(steps))


def test_the_plan_starts_on_three_rates_per_optimizer():
    jobs = ladder.plan([], ("S",))
    assert sorted({j.rate for j in jobs}) == list(ladder.COARSE)
    assert len(jobs) == len(ladder.OPTIMIZERS) * len(ladder.COARSE)
    assert {(j.decay, j.steps, j.seed) for j in jobs} == {(1, ladder.STEPS, 0)}


@pytest.mark.parametrize("best_k", [-3, 0, 2.5])
def test_the_best_rate_ends_inside_the_grid_and_refined(best_k):
    stored = complete(bowl(best_k), optimizers=("adamw",))
    tried = sorted({r["rate"] for r in stored if (r["decay"], r["seed"]) == (1, 0)})
    chosen = ladder.best(stored, "S", "adamw")
    assert chosen is not None and chosen[0] == best_k
    assert tried[0] < best_k < tried[-1]                      # not at an edge
    halves = sorted(k for k in tried if not float(k).is_integer())
    assert len(halves) == 2 and halves[1] - halves[0] == 1      # refined around one point
    assert abs(best_k - sum(halves) / 2) <= 0.5


def test_an_edge_at_the_reach_is_kept_and_stops():
    stored = complete(bowl(-9), optimizers=("lion",))
    tried = {r["rate"] for r in stored if (r["decay"], r["seed"]) == (1, 0)}
    assert min(tried) == -ladder.REACH - 0.5 and ladder.best(stored, "S", "lion")[0] == -4.5


def test_the_decay_is_extended_upward_while_the_largest_is_best():
    stored = complete(bowl(0, best_d=30), optimizers=("muon",))
    keys = [j.key for j in ladder.plan(stored, ("S",))]
    assert len(keys) == len(set(keys))                          # each job planned once
    decays = sorted({r["decay"] for r in stored})
    assert decays == [0, 1, 3, 10, 30] and ladder.best(stored, "S", "muon") == (0, 30)
    stored = complete(bowl(0, best_d=0), optimizers=("muon",))
    assert sorted({r["decay"] for r in stored}) == [0, 1, 3]


def test_seeds_at_the_best_and_adamw_at_its_other_budgets():
    stored = complete(bowl(1))
    for opt in ladder.OPTIMIZERS:
        at_best = [r for r in stored if (r["optimizer"], r["rate"], r["decay"]) == (opt, 1, 1)]
        steps = {(r["steps"], r["seed"]) for r in at_best}
        budgets = ladder.BUDGETS if opt == "adamw" else ()
        assert steps == {(s, seed) for s in (ladder.STEPS, *budgets) for seed in ladder.SEEDS}


def test_the_speedup_is_read_off_adamw_s_curve():
    stored = [record("S", "adamw", 0, 1, loss, steps, seed)
              for seed in ladder.SEEDS
              for steps, loss in zip((256, 512, 1024, 2048), (2.0, 1.8, 1.6, 1.5))]
    # another optimizer at 1.7 (between AdamW's 512 and 1024: half-way in log tokens), 2.1
    # (worse than AdamW at half the tokens) and 1.4 (better than AdamW at four times)
    stored += [record("S", "lion", 0, 1, loss, seed=seed)
               for seed, loss in zip(ladder.SEEDS, (1.7, 2.1, 1.4))]
    got = ladder.speedups(stored, "S", "lion")
    assert got[0] == pytest.approx(math.sqrt(2), rel=1e-12)
    assert got[1:] == [0.0, math.inf]
    assert ladder.speedups(stored[:-1], "S", "lion") is None      # a seed missing
    assert ladder.speedups(stored, "S", "adamw") == pytest.approx([1.0] * 3)
    rising = [dict(r, final=2.5) if (r["optimizer"], r["steps"], r["seed"]) == ("adamw", 2048, 0)
              else r for r in stored]
    assert math.isnan(ladder.speedups(rising, "S", "lion")[0])     # AdamW's curve not falling


def test_two_settings_with_every_seed_are_refused():
    stored = [record("S", "lion", k, 1, 2.0, seed=seed) for k in (0, 1) for seed in ladder.SEEDS]
    with pytest.raises(ValueError, match="ran every seed at 2 settings"):
        ladder.best(stored, "S", "lion")


def test_a_run_whose_loss_is_not_finite_stops_at_the_next_evaluation():
    model = ladder.SIZES["S"].model(0)
    with torch.no_grad():
        model.head.weight[0, 0] = math.nan
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    out = lm.train(model, Training([opt], None), 64, 2, 0, lm.stdlib_source(), evals=8,
                   eval_windows=2, final_windows=2)
    assert out["diverged"] and out["final"] is None and out["steps_done"] % 8 == 0


def test_the_device_s_runs_are_in_its_plan():
    path = store.folder() / "ladder_h200.jsonl"
    records = store.load(path)
    assert records, f"no runs in {path}"
    keys = [ladder.KEY.of(r) for r in records]
    assert len(keys) == len(set(keys))
    planned = {j.key for j in ladder.plan(records, device="cuda")}
    assert set(keys) <= planned, sorted(set(keys) - planned, key=str)[:3]
    assert {r["device"] for r in records} == {"NVIDIA H200"}
    assert all(r["batch"] == ladder.batch(r["size"]) for r in records)
    meta = json.loads(path.with_suffix(".meta.json").read_text())
    assert meta["runs"] == len(records)
