"""optedu.distributed.dp_runs: DDP with no_sync accumulation and with BatchNorm.

Quick tier: the single-process references only. Full tier: one launch of 2 gloo processes;
accumulation with and without no_sync equals the single process on the whole batch, no_sync
all-reduces once per step instead of once per micro-batch, and BatchNorm under DDP differs."""

import pytest
import torch

from optedu.distributed import launch
from optedu.distributed.dp_runs import bn_model, dp_extras, single_extras, JOB


def relative(a, b):
    return (max(float((u - v).abs().max()) for u, v in zip(a, b))
            / max(float(v.abs().max()) for v in b))


def test_bn_model_inserts_batchnorm_after_the_first_layer():
    model = bn_model(JOB)
    assert isinstance(model[1], torch.nn.BatchNorm1d)
    assert model[1].num_features == model[0].out_features


def test_single_extras_is_deterministic_and_keeps_the_default_dtype():
    before = torch.get_default_dtype()
    first, second = single_extras(steps=1), single_extras(steps=1)
    assert torch.get_default_dtype() == before
    for key in ("plain", "batchnorm"):
        assert all(torch.equal(p, q) for p, q in zip(first[key], second[key]))


@pytest.mark.full  # starts processes
def test_ddp_accumulation_and_batchnorm():
    ranks = launch(dp_extras, 2, timeout=120.0)
    single = single_extras()
    for name in ("sync", "no_sync"):
        assert relative(ranks[0][name]["params"], single["plain"]) < 1e-12
    step = ranks[0]["no_sync"]["comm"][-1]
    assert step[0] == {} and list(step[1]) == ["all_reduce"]
    assert all(list(c) == ["all_reduce"] for c in ranks[0]["sync"]["comm"][-1])
    assert relative(ranks[0]["batchnorm"]["params"], single["batchnorm"]) > 1e-4
    assert "sync_batchnorm" in ranks[0]
    assert all(torch.equal(p, q) for p, q in zip(ranks[0]["batchnorm"]["params"],
                                                  ranks[1]["batchnorm"]["params"]))
