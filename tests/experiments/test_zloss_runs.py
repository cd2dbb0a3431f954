"""The z-loss experiment (optedu.experiments.zloss): its plan, the loss it adds, and what the
stored runs show (tests/experiments/test_grids.py checks the stored runs complete and re-runs
a sample)."""

from __future__ import annotations

import pytest

from optedu.experiments import zloss as zr


def test_the_plan_and_bad_arguments():
    keys = [j.key for j in zr.jobs()]
    assert len(keys) == len(set(keys)) == len(zr.SETTINGS) * len(zr.SEEDS)
    assert zr.SETTINGS["high"] == (zr.HIGH, 0.0) and zr.SETTINGS["low"] == (zr.LOW, 0.0)
    with pytest.raises(ValueError, match="Invalid setting: 'adam'"):
        zr.train("adam", 0)


@pytest.mark.full
def test_zloss_moves_log_z_and_nothing_else_at_the_first_step():
    """The first logged values are taken before any step, so a run with and without z-loss
    agree there; after 30 steps the z-loss run's mean log Z is lower (alpha = 1e-3 pulls it
    towards 0)."""
    plain = zr.train("high", 0, steps=3 * zr.EVERY)
    pulled = zr.train("high, z=1e-3", 0, steps=3 * zr.EVERY)
    assert plain["log_z"][0] == pulled["log_z"][0]
    assert plain["loss"][0] == pulled["loss"][0]
    assert pulled["log_z"][-1] < plain["log_z"][-1]


def test_the_stored_runs_show_the_pull_and_the_sinking_level():
    by: dict[str, list[dict]] = {}
    for r in zr.read():
        by.setdefault(r["setting"], []).append(r)
    strong = max(r["log_z"][-1] for r in by["high, z=1e-3"])
    assert strong < min(r["log_z"][-1] for r in by["high"])
    # without z-loss the common level sinks at the high rate, through the head's bias
    assert all(r["bias_mean"][-1] < -1 for r in by["high"])
