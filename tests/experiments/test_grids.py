"""Every chapter's experiment (optedu.experiments), one test each: its declaration, its plan
(every key once), its stored file complete against its plan, and a sample of its stored runs re-
run bit for bit in a fresh process with the runner's settings (one thread, torch's CPU kernels
pinned)."""

from __future__ import annotations

import functools
import importlib
import json
import os
import random
import statistics
import subprocess
import sys

import pytest

from optedu.experiments import grid as grids
from optedu.instruments import store
from optedu.instruments.reproducible import pin_cpu_kernels

FULL = os.environ.get("OPTEDU_TESTS", "quick") == "full"
NAMES = grids.names()
#: what a re-run cannot reproduce: the wall time, and the fields a grid that times steps
#: names in its module's ``TIMING``
TIMING = ("seconds",)


@functools.cache
def stored(name: str) -> tuple[dict, ...]:
    grid = grids.get(name)
    records = store.load(grid.path())
    assert records, f"{grid.path()} holds no runs: make {grid.target}"
    return tuple(records)


def plan(name: str) -> list[grids.Job]:
    grid = grids.get(name)
    return grid.jobs(list(stored(name)), grid.path().parent)


def test_every_experiment_is_declared():
    assert len(NAMES) >= 16, NAMES
    for name in NAMES:
        grid = grids.get(name)
        assert grid.name == name and grid.file == f"{name}.jsonl", name
        assert grid.chapter and grid.about.endswith(".") and grid.minutes > 0, name
        assert grid.target == "experiments-" + name.replace("_", "-")
    with pytest.raises(ValueError, match="Invalid experiment: 'nope'"):
        grids.get("nope")


@pytest.mark.parametrize("name", NAMES)
def test_the_sample_is_drawn_from_the_stored_runs(name):
    grid, records = grids.get(name), sample(name)
    keys = [grid.key_of(r) for r in records]
    size = grid.sample if isinstance(grid.sample, int) else sum(grid.sample.values())
    assert len(keys) == len(set(keys)) == size >= 1, name


@pytest.mark.parametrize("name", NAMES)
def test_the_plan_has_each_key_once(name):
    grid, jobs = grids.get(name), plan(name)
    keys = [j.key for j in jobs]
    assert jobs and len(keys) == len(set(keys)), f"{name}: a job is planned twice"
    assert all(j.names == grid.job.names for j in jobs)


@pytest.mark.parametrize("name", NAMES)
def test_the_stored_file_is_complete(name):
    grid, records = grids.get(name), stored(name)
    keys = [grid.key_of(r) for r in records]
    twice = {k for k in keys if keys.count(k) > 1}
    assert not twice, f"{grid.file}: stored twice: {sorted(twice, key=str)[:3]}"
    planned = {j.key for j in plan(name)}
    missing, extra = planned - set(keys), set(keys) - planned
    assert not missing, (f"{grid.file} lacks {len(missing)} runs, e.g. "
                         f"{sorted(missing, key=str)[:3]}: make {grid.target}")
    assert not extra, f"{grid.file}: runs not in the plan: {sorted(extra, key=str)[:3]}"
    meta = json.loads(grid.path().with_suffix(".meta.json").read_text())
    assert meta["runs"] == len(records) and meta["versions"]["torch"].startswith("2.13.0")


def sample(name: str) -> list[dict]:
    """The stored runs to re-run, seeded, from the cheaper half of each value of the key's first
    field (each optimizer, each kind of run: the runs whose stored seconds are at most that
    kind's median, as the copied tests chose small batches, widths and budgets):
    ``grid.sample`` of them, one of each kind (a random subset of the kinds if there are more
    kinds than draws) and the rest drawn from all alike; or, where the grid gives a count per
    kind (kinds that differ in cost), that many of each."""
    grid, rng = grids.get(name), random.Random(0)
    groups: dict = {}
    for r in stored(name):
        groups.setdefault(r[grid.job.names[0]], []).append(r)
    for value, runs in groups.items():
        middle = statistics.median(r["seconds"] for r in runs)
        groups[value] = [r for r in runs if r["seconds"] <= middle]
    if not isinstance(grid.sample, int):
        return [r for value, n in grid.sample.items() for r in rng.sample(groups[value], n)]
    pools = [rng.sample(g, len(g)) for _, g in sorted(groups.items(), key=lambda kv: str(kv[0]))]
    if grid.sample < len(pools):
        pools = rng.sample(pools, grid.sample)
    out = [pool.pop() for pool in pools]
    rest = [r for pool in pools for r in pool]
    return out + rng.sample(rest, grid.sample - len(out))


RERUN = """
import json, sys
from optedu.experiments import grid, runner
name, keys = json.loads(sys.stdin.read())
print(json.dumps(runner.rerun(grid.get(name), keys)))
"""


def rerun(name: str, records: list[dict]) -> list[dict]:
    grid = grids.get(name)
    keys = [list(grid.key_of(r)) for r in records]
    env = dict(os.environ)
    pin_cpu_kernels(env)
    out = subprocess.run([sys.executable, "-c", RERUN], input=json.dumps([name, keys]),
                         env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def _same(stored_record: dict, again: dict, timing: tuple[str, ...] = ()) -> list[str]:
    """The fields that differ, timing aside."""
    fields = (set(stored_record) | set(again)) - set(TIMING) - set(timing)
    return sorted(k for k in fields if stored_record.get(k) != again.get(k))


@pytest.mark.full  # a fresh pinned process re-runs a sample of each experiment's stored runs
@pytest.mark.parametrize("name", NAMES)
def test_a_sample_of_stored_runs_reproduces(name):
    grid, records = grids.get(name), sample(name)
    timing = getattr(importlib.import_module(f"optedu.experiments.{name}"), "TIMING", ())
    for r, again in zip(records, rerun(name, records), strict=True):
        assert not _same(r, again, timing), (name, grid.key_of(r), _same(r, again, timing))
