"""The benchmark's machinery: quasi-random search, AlgoPerf's scoring, the contestants, the
resumable runner and a user's optimizer added by a plugin file."""

from __future__ import annotations

import dataclasses
import json
import math
import textwrap

import pytest
import torch
from torch import nn

from optedu.choosing import contestants, profiles, runner, search, trial, workloads
from optedu.choosing.results import Results
from optedu.instruments import store
from optedu.lr_scheduler.schedules import linear_warmup_cosine

# --- search -----------------------------------------------------------------------------------


def test_radical_inverse_mirrors_the_digits():
    assert search.radical_inverse(6, 2) == 0.375      # 110₂ -> 0.011₂
    assert search.radical_inverse(5, 3) == pytest.approx(7 / 9)  # 12₃ -> 0.21₃
    assert search.radical_inverse(0, 5) == 0.0


def _largest_gap(values):
    """The widest stretch of [0, 1) (read as a circle) without a point."""
    c = sorted(values)
    return max([b - a for a, b in zip(c, c[1:])] + [1 - c[-1] + c[0]])


def test_halton_prefixes_agree_and_cover_the_box():
    long, short = search.halton(20, 3), search.halton(5, 3)
    assert long[:5] == short
    assert search.halton(3, 2, seed=1) != search.halton(3, 2, seed=0)
    for points in (short, long):
        n = len(points)
        for d in range(3):
            assert all(0 <= p[d] < 1 for p in points)
            # even cover: no gap wider than 2.5 / n in any coordinate
            assert _largest_gap([p[d] for p in points]) < 2.5 / n
    # independent uniform draws leave wider gaps: the check can fail
    rng = __import__("random").Random(0)
    assert _largest_gap([rng.random() for _ in range(20)]) > 2.5 / 20


def test_trials_are_log_uniform_inside_the_space():
    space = contestants.get("adamw").space
    hypers = search.trials(space, 20)
    for name, (low, high) in space.items():
        values = [h[name] for h in hypers]
        assert all(low <= v <= high for v in values)
        # log-uniform: about as many points below the geometric middle as above it
        middle = math.sqrt(low * high)
        assert 7 <= sum(v < middle for v in values) <= 13
    assert search.trials(space, 20) == hypers  # fixed seed


@pytest.mark.parametrize("call, message", [
    (lambda: search.halton(3, 11), "Invalid dims: 11"),
    (lambda: search.halton(-1, 2), "Invalid n: -1"),
    (lambda: search.radical_inverse(-2, 2), "Invalid index: -2"),
])
def test_search_rejects_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- scoring ----------------------------------------------------------------------------------

def test_median_time_counts_misses_as_infinite():
    assert profiles.median_time([300, None, 100]) == 300
    assert profiles.median_time([300, None, None]) == math.inf
    assert profiles.median_time([100, 200]) == 150


def test_external_time_is_the_median_of_each_studys_fastest_trial():
    trials = [None, 400, 300, None, None, None, 200, None, None]
    # studies of 3: fastest 300, none, 200 -> median 300
    assert profiles.external_time(trials, 3, 3) == 300
    assert profiles.external_time(trials, 9, 1) == 200
    with pytest.raises(ValueError, match="Invalid studies: 4 of 3"):
        profiles.external_time(trials, 3, 4)


def test_score_is_the_area_under_the_profile():
    times = {"a": {"w1": 100, "w2": 400, "w3": math.inf},
             "b": {"w1": 200, "w2": 100, "w3": math.inf},
             "c": {"w1": 500, "w2": 150, "w3": 50}}
    ratios = profiles.ratios(times)
    assert ratios["a"] == {"w1": 1.0, "w2": 4.0, "w3": math.inf}
    assert ratios["c"]["w1"] == 5.0
    taus = [1 + 3 * (i + 0.5) / 30000 for i in range(30000)]   # midpoint rule on [1, 4]
    for s in times:
        area = sum(profiles.profile(ratios[s], taus)) / len(taus)
        assert profiles.score(ratios[s]) == pytest.approx(area, abs=1e-4)
    assert profiles.score({"w": 1.0}) == 1.0 and profiles.score({"w": 4.5}) == 0.0
    # a workload nobody solves counts against everyone
    assert profiles.ratios({"a": {"w": math.inf}, "b": {"w": math.inf}}) == \
        {"a": {"w": math.inf}, "b": {"w": math.inf}}


# --- contestants ------------------------------------------------------------------------------

class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(4, 6)
        self.hidden = nn.Linear(6, 6)
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        return self.head(torch.relu(self.hidden(torch.relu(self.embed(x)))))


@pytest.mark.parametrize("name", sorted(contestants.CONTESTANTS))
def test_every_contestant_steps_every_parameter_once(name):
    c = contestants.get(name)
    assert set(c.defaults) == set(c.space) and c.source
    torch.manual_seed(0)
    model = Tiny()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = contestants.training(c, model, c.defaults, steps=10, head="head")
    owned = [id(p) for o in opt.optimizers for g in o.param_groups for p in g["params"]]
    assert sorted(owned) == sorted(id(p) for p in model.parameters())
    model(torch.randn(8, 4)).square().mean().backward()
    opt.step(0)
    opt.eval()
    moved = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
    assert moved == list(before), f"{name} left {set(before) - set(moved)} unchanged"
    assert opt.state_bytes() > 0


def test_the_schedule_drives_every_group():
    model = Tiny()
    c = contestants.get("muon")   # two optimizers
    opt = contestants.training(c, model, c.defaults, steps=100, head="head")
    for t in (0, 4, 5, 50, 99):
        model(torch.randn(8, 4)).square().mean().backward()
        opt.step(t)
        opt.zero_grad()
        factor = linear_warmup_cosine(t, warmup_steps=5, total_steps=100)
        for o, peaks in zip(opt.optimizers, opt.peaks):
            assert [g["lr"] for g in o.param_groups] == [p * factor for p in peaks]


def test_schedule_free_gets_its_warmup_and_no_schedule():
    c = contestants.get("schedule_free_adamw")
    opt = contestants.training(c, Tiny(), c.defaults, steps=200, head="head")
    assert opt.schedule is None
    assert opt.optimizers[0].param_groups[0]["warmup_steps"] == 10


def test_contestants_reject_bad_input():
    with pytest.raises(ValueError, match="Invalid contestant: 'nope'"):
        contestants.get("nope")
    with pytest.raises(ValueError, match="Duplicate contestant: 'adamw'"):
        contestants.register(contestants.get("adamw"))
    with pytest.raises(ValueError, match=r"Invalid range for lr: \(0.1, 0.01\)"):
        contestants.Contestant("x", "", {"lr": (0.1, 0.01)}, {"lr": 0.05}, lambda *a: [])
    with pytest.raises(ValueError, match="defaults of 'x' must set exactly"):
        contestants.Contestant("x", "", {"lr": (0.01, 0.1)}, {}, lambda *a: [])
    c = contestants.get("adamw")
    with pytest.raises(ValueError, match="Invalid hyperparameters for 'adamw'"):
        contestants.training(c, Tiny(), {"lr": 1e-3}, steps=10, head="head")


# --- runner -----------------------------------------------------------------------------------

TINY = """
import dataclasses
from optedu.choosing import contestants, workloads
from optedu.optim.sgd import SGD

base = workloads.get("digits_logreg")
workloads._register(dataclasses.replace(base, name="tiny", steps=12, eval_every=4,
                                         target=2.0))
contestants.register(contestants.Contestant(
    "plain_sgd", "SGD without momentum", {"lr": (0.01, 1.0)}, {"lr": 0.1},
    lambda model, hp, head: [SGD(model.parameters(), lr=hp["lr"])], source="a test"))
"""


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A 12-step workload and a contestant registered by a plugin file (undone afterwards)."""
    plugin = tmp_path / "plugin.py"
    plugin.write_text(textwrap.dedent(TINY))
    monkeypatch.setattr(workloads, "WORKLOADS", dict(workloads.WORKLOADS))
    monkeypatch.setattr(contestants, "CONTESTANTS", dict(contestants.CONTESTANTS))
    monkeypatch.setattr(runner, "_PLUGINS", set())
    runner.load_plugin(str(plugin))
    return plugin


def _grid(**kw):
    return runner.Grid("test", trials=4, final_seeds=(1, 2), self_seeds=(0, 1),
                       contestants=("plain_sgd", "adamw"), workloads=("tiny",), **kw)


def test_the_grid_runs_resumes_and_reruns_the_best_trial(tiny, tmp_path):
    out = tmp_path / "results-test.jsonl"
    meta = runner.run_grid(_grid(), out, workers=1, plugins=[str(tiny)])
    records = store.load(out)
    # 2 contestants x (4 trials + 2 self seeds + 2 reruns of the best trial)
    assert len(records) == meta["runs"] == 16
    keys = {runner.key_of(r) for r in records}
    assert len(keys) == 16
    for name in ("plain_sgd", "adamw"):
        trials = [r for r in records if r["contestant"] == name and r["ruleset"] == "external"
                  and r["seed"] == 0]
        best = runner.best_trial(sorted(trials, key=lambda r: r["trial"]))
        reruns = [r for r in records if r["contestant"] == name and r["seed"] > 0
                  and r["ruleset"] == "external"]
        assert {r["trial"] for r in reruns} == {best}
        assert all(r["hyper"] == trials[best]["hyper"] for r in reruns)
    assert json.loads(out.with_suffix(".meta.json").read_text())["versions"]["torch"]
    # interrupted: the last line cut in half and three runs lost; the rest is not run again
    lines = out.read_text().splitlines()
    out.write_text("\n".join(lines[:12]) + "\n" + lines[12][:20])
    again = runner.run_grid(_grid(), out, workers=1, plugins=[str(tiny)])
    assert again["ran_now"] == 4 and again["runs"] == 16
    redone = store.load(out)
    assert {runner.key_of(r): r["evals"] for r in redone} == \
        {runner.key_of(r): r["evals"] for r in records}


@pytest.mark.full  # starts two processes (9 s)
def test_a_plugin_runs_in_worker_processes(tiny, tmp_path):
    """Two spawned workers import the plugin file and give the same runs as one process."""
    grid = dataclasses.replace(_grid(), final_seeds=(), self_seeds=(0,))
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    runner.run_grid(grid, one, workers=1, plugins=[str(tiny)])
    runner.run_grid(grid, two, workers=2, plugins=[str(tiny)])
    evals = [{runner.key_of(r): r["evals"] for r in store.load(p)} for p in (one, two)]
    assert evals[0] == evals[1] and len(evals[0]) == 10


def test_results_apply_the_held_out_rule(tiny, tmp_path):
    base = workloads.get("tiny")
    workloads._register(dataclasses.replace(base, name="tiny_variant", base="tiny",
                                            target=-1.0))   # a target nobody reaches
    grid = dataclasses.replace(_grid(), workloads=("tiny", "tiny_variant"), final_seeds=())
    out = tmp_path / "results-test.jsonl"
    runner.run_grid(grid, out, workers=1, plugins=[str(tiny)])
    results = Results(store.load(out))
    plain = results.times("external", n=4, studies=1, held_out=False)
    guarded = results.times("external", n=4, studies=1)
    assert math.isfinite(plain["adamw"]["tiny"])
    assert guarded["adamw"]["tiny"] == math.inf


def test_a_run_stops_when_the_loss_diverges():
    c = contestants.get("sgd_momentum")
    w = dataclasses.replace(workloads.get("digits_logreg"), steps=40, eval_every=10)
    run = trial.run(w, c, {"lr": 1e38, "weight_decay": 0.0, "one_minus_beta1": 0.1}, 0)
    assert run.diverged and run.steps < 40 and run.reached is None
    assert run.evals[-1][1] == math.inf


def test_a_run_stops_when_the_step_s_linear_algebra_fails():
    """Shampoo's SVD of statistics gone non-finite raises before the loss does: that run
    diverged too, it is not a crash of the grid."""
    class Broken(contestants.Training):
        def step(self, t):
            if t == 3:
                torch.linalg.svd(torch.full((2, 2), math.nan))  # raises LinAlgError
            super().step(t)

    c = contestants.get("sgd_momentum")
    w = dataclasses.replace(workloads.get("digits_logreg"), steps=40, eval_every=10)
    hyper = {"lr": 0.1, "weight_decay": 0.0, "one_minus_beta1": 0.1}
    run = trial.run(w, c, hyper, 0,
                    schedule=lambda opts, steps: Broken(opts, None))
    assert run.diverged and run.steps == 3 and run.evals[-1] == (3, math.inf)


def test_runner_rejects_bad_input(tmp_path):
    with pytest.raises(SystemExit):
        runner.main(["--jobs", "0", "--out", str(tmp_path)])
    with pytest.raises(ValueError, match="Invalid contestant: 'nope'"):
        runner.main(["--quick", "--only", "nope", "--out", str(tmp_path)])


def test_results_refuse_a_grid_with_gaps():
    from optedu.choosing import results

    def record(trial):
        return {"ruleset": "external", "workload": "digits_logreg", "contestant": "adamw",
                "trial": trial, "seed": 0, "evals": [[10, 1.0]]}

    whole = results.Results([record(0), record(1), record(2)])
    assert [r["trial"] for r in whole.trials("adamw", "digits_logreg")] == [0, 1, 2]
    gappy = results.Results([record(0), record(2)])
    with pytest.raises(ValueError, match=r"Invalid grid: the trials of 'adamw' on "
                                         r"'digits_logreg' \(seed 0\) have gaps"):
        gappy.trials("adamw", "digits_logreg")
