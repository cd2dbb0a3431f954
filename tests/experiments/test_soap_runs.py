"""The SOAP experiment (optedu.experiments.soap): its plan, the optimizer each contestant
builds, and the stored runs' steps (tests/experiments/test_grids.py checks the stored runs
complete and re-runs a sample)."""

from __future__ import annotations

import pytest

from optedu.experiments import soap as sr
from optedu.optim.adam import AdamW
from optedu.optim.soap import SOAP
from optedu.optim.variants.soap import SOAPEigh


@pytest.fixture(scope="module")
def stored():
    return sr.read()


def test_the_plan():
    keys = [j.key for j in sr.jobs()]
    assert len(keys) == len(set(keys))
    for lr in sr.RATES:                            # the same grid for both, three seeds
        for name, k in (("soap", sr.DEFAULT_K), ("adamw", None)):
            assert {s for o, r, kk, s in keys if (o, r, kk) == (name, lr, k)} == set(sr.SEEDS)
    for lr in sr.PERIOD_RATES:
        assert {(k, s) for o, r, k, s in keys if (o, r) == ("soap", lr)} >= {
            (k, s) for k in sr.PERIODS for s in sr.SEEDS}
        assert {(k, s) for o, r, k, s in keys if (o, r) == ("soap_eigh", lr)} == {
            (k, s) for k in sr.EIGH_PERIODS for s in sr.SEEDS}
    classes = {name: type(sr.contestant(name, 10).build(_model(), {"lr": 1e-3,
                                                                    "weight_decay": 0.0},
                                                           None)[0])
               for name in ("soap", "soap_eigh", "adamw")}
    assert classes == {"soap": SOAP, "soap_eigh": SOAPEigh, "adamw": AdamW}
    with pytest.raises(ValueError, match="Invalid optimizer: 'sgd'"):
        sr.contestant("sgd")


def _model():
    import torch
    return torch.nn.Linear(3, 2)


def test_the_stored_runs(stored):
    for r in stored:
        assert r["workload"] == sr.WORKLOAD and r["steps"] == 200
        assert r["evals"][-1][0] == 200 and not r["diverged"]
        assert all(v is not None for _, v in r["evals"])
