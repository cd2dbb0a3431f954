"""The cost experiment (optedu.experiments.cost): every catalogued rule's stored state bytes
equal its closed form (optedu.precision.memory, the catalogue's layouts), torch.optim's twins
keep the same bytes, the bytes re-run bit for bit, and a re-run step time lies within the
measured spread of the stored one (tests/experiments/test_grids.py checks the file complete
and re-runs a sample, times aside)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from optedu.experiments import cost
from optedu.instruments.reproducible import pin_cpu_kernels
from optedu.optim.catalogue import CATALOGUE


@pytest.fixture(scope="module")
def stored():
    rows = {(r["rule"], r["impl"]): r for r in cost.read()}
    missing = [(rule.name, impl) for rule in CATALOGUE for impl in cost.IMPLS[rule.name]
               if (rule.name, impl) not in rows]
    assert not missing, (f"experiments/cost.jsonl lacks {len(missing)} runs, e.g. {missing[:3]}: "
                         "make experiments-cost runs the missing ones (a new catalogue row)")
    return rows


def test_a_missing_run_is_named_with_its_make_target(monkeypatch):
    monkeypatch.setattr(cost, "read", lambda *a, **k: [])
    with pytest.raises(AssertionError, match="make experiments-cost"):
        stored.__wrapped__()


def test_every_rule_is_stored_with_its_closed_form(stored):
    for rule in CATALOGUE:
        own = stored[rule.name, "optedu"]
        assert own["state_bytes"] == own["closed_form"], rule.name
        assert own["bytes_per_param"] == sum(own["state_bytes"].values()) / own["elements"]
        for impl in ("torch-foreach", "torch-forloop"):
            if impl in cost.IMPLS[rule.name]:   # torch's twin keeps the same tensors
                assert stored[rule.name, impl]["state_bytes"] == own["state_bytes"], rule.name


def test_the_table_reads_every_rule(stored):
    rows = cost.table()
    assert [r["rule"] for r in rows] == [rule.name for rule in CATALOGUE]
    adamw = next(r for r in rows if r["rule"] == "AdamW")
    assert adamw["bytes_per_param"] == pytest.approx(8, abs=0.01)
    assert all(r["ratio_q1"] <= r["ratio"] <= r["ratio_q3"] for r in rows)


@pytest.mark.full  # builds and steps every rule three times (Shampoo's roots: seconds)
def test_the_bytes_reproduce_bit_for_bit(stored):
    from optedu.precision.memory import state_bytes
    for rule in CATALOGUE:
        assert state_bytes(cost.build(rule.name)) == stored[rule.name, "optedu"]["state_bytes"]


RERUN = """
import json, sys
from optedu.experiments import grid, runner
print(json.dumps(runner.rerun(grid.get("cost"), json.loads(sys.stdin.read()))))
"""


@pytest.mark.full  # times two rules again in a fresh pinned process (about 15 s)
def test_a_step_time_ratio_lies_within_the_measured_spread(stored):
    keys = [("Lion", "optedu"), ("Adam", "torch-foreach")]
    env = dict(os.environ)
    pin_cpu_kernels(env)
    out = subprocess.run([sys.executable, "-c", RERUN], input=json.dumps(keys), env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    for key, again in zip(keys, json.loads(out.stdout), strict=True):
        ratio = stored[key]["ratio"]
        assert ratio / cost.SPREAD <= again["ratio"] <= ratio * cost.SPREAD, (key, again)
