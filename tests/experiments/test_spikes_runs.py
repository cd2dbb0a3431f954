"""The loss-spike experiment (optedu.experiments.spikes): its plan, the model's attention seen
by the logit hooks, QK-normalisation's bound, and what the stored runs record
(tests/experiments/test_grids.py checks the stored runs complete and re-runs a sample)."""

from __future__ import annotations

import math

import pytest
import torch

from optedu.experiments import spikes as sr
from optedu.training.layer_stats import AttentionLogits


@pytest.fixture(scope="module")
def stored():
    return sr.read()


def test_the_plan_and_bad_arguments():
    keys = [j.key for j in sr.jobs()]
    assert len(keys) == len(set(keys)) == len(sr.SETTINGS) * len(sr.SEEDS)
    assert sr.SETTINGS["baseline"] == {} and sr.SETTINGS["low-lr"] == {"lr": sr.LOW}
    with pytest.raises(ValueError, match="Invalid setting: 'adam'"):
        sr.train("adam", 0)


def test_qk_norm_bounds_the_logits_whatever_the_weights():
    """A LayerNorm's output has norm sqrt(d) (gains 1, biases 0), so |q.k|/sqrt(d) <=
    sqrt(d): multiplying the projection by 100 moves the plain model's logits by 10^4 and
    leaves the QK-normalised model's under the bound."""
    x = torch.randint(sr.workloads.VOCAB, (2, 16))
    for qk_norm in (False, True):
        torch.manual_seed(0)
        model = sr.TinyLM(qk_norm=qk_norm)
        logits = AttentionLogits(model, causal=True)
        assert sorted(logits.last) == []
        model(x)
        before = logits.maxima()
        with torch.no_grad():
            for block in model.blocks:
                block.attn.qkv.weight.mul_(100)
        model(x)
        after = logits.maxima()
        if qk_norm:
            assert max(after.values()) <= math.sqrt(16) * (1 + 1e-5)
        else:      # the first block's input is unchanged: its logits scale by 100²
            assert after["blocks.0.attn"] == pytest.approx(
                1e4 * before["blocks.0.attn"], rel=1e-4)


def test_the_stored_runs(stored):
    for r in stored:
        names = {n for n, _ in sr.TinyLM(qk_norm=r["setting"] == "qk-norm")
                 .named_parameters()}
        assert r["steps"] == sr.STEPS
        assert len(r["loss"]) == len(r["logit"]) == len(r["grad_norm"]) == sr.STEPS
        assert set(r["ratio"]) == names
        assert all(len(v) == sr.STEPS for v in r["ratio"].values())
        assert all(v is not None
                   for v in r["loss"] + r["grad_norm"] + r["logit"] + [r["val_loss"]])
