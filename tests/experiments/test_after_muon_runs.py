"""The "After Muon" experiment (optedu.experiments.after_muon): its plan, the optimizers each
contestant builds, and the stored runs' steps (tests/experiments/test_grids.py checks the stored
runs complete and re-runs a sample)."""

from __future__ import annotations

import pytest
import torch

from optedu.experiments import after_muon as am
from optedu.optim.adam import AdamW
from optedu.optim.muon import POLAR_EXPRESS, Muon
from optedu.optim.normuon import NorMuon


@pytest.fixture(scope="module")
def stored():
    return am.read()


def _model():
    return torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))


def test_the_plan():
    keys = [j.key for j in am.jobs()]
    assert len(keys) == len(set(keys))
    assert set(keys) == {(o, lr, s) for o in am.OPTIMIZERS for lr in am.RATES
                         for s in am.SEEDS}
    hp = {"lr": 1e-3, "weight_decay": 0.0}
    built = {name: [type(o) for o in am.contestant(name).build(_model(), hp, "2")]
             for name in am.OPTIMIZERS}
    assert built == {"adamw": [AdamW], "muon": [Muon, AdamW], "muon_pe": [Muon, AdamW],
                     "normuon": [NorMuon]}
    pe = am.contestant("muon_pe").build(_model(), hp, "2")[0]
    assert pe.param_groups[0]["ns_coefficients"] == POLAR_EXPRESS
    with pytest.raises(ValueError, match="Invalid optimizer: 'sgd'"):
        am.contestant("sgd")


def test_the_stored_runs(stored):
    for r in stored:
        assert r["workload"] == am.WORKLOAD and r["steps"] == 200
        assert r["evals"][-1][0] == 200
        assert all(v is not None for _, v in r["evals"]) or r["diverged"]
