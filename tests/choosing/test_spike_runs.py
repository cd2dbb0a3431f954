"""The loss-spike experiment (optedu.choosing.spike_runs): its plan, the model's attention
seen by the logit hooks, QK-normalisation's bound, the stored runs complete, and a sample of
them reproduced exactly in a fresh pinned process."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch

from optedu.choosing import runner, spike_runs as sr
from optedu.instruments.reproducible import pin_cpu_kernels
from optedu.training.layer_stats import AttentionLogits

FULL = os.environ.get("OPTEDU_TESTS", "quick") == "full"


@pytest.fixture(scope="module")
def stored():
    records = runner.load(sr.PATH)
    assert records, f"{sr.PATH} holds no runs: make experiments-spikes"
    return records


def test_the_plan_and_bad_arguments():
    keys = [j.key for j in sr.jobs()]
    assert len(keys) == len(set(keys)) == len(sr.SETTINGS) * len(sr.SEEDS)
    assert sr.SETTINGS["baseline"] == {} and sr.SETTINGS["low-lr"] == {"lr": sr.LOW}
    with pytest.raises(ValueError, match="Invalid setting: 'adam'"):
        sr.train("adam", 0)
    with pytest.raises(ValueError, match="Invalid jobs: 2"):
        sr.main(["--jobs", "2"])


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


def test_the_stored_experiment_is_complete(stored):
    keys = [sr.key_of(r) for r in stored]
    assert len(keys) == len(set(keys)), "a run is stored twice"
    assert set(keys) == {j.key for j in sr.jobs()}
    for r in stored:
        names = {n for n, _ in sr.TinyLM(qk_norm=r["setting"] == "qk-norm")
                 .named_parameters()}
        assert r["steps"] == sr.STEPS
        assert len(r["loss"]) == len(r["logit"]) == len(r["grad_norm"]) == sr.STEPS
        assert set(r["ratio"]) == names
        assert all(len(v) == sr.STEPS for v in r["ratio"].values())
        assert all(v is not None
                   for v in r["loss"] + r["grad_norm"] + r["logit"] + [r["val_loss"]])
    meta = json.loads(sr.PATH.with_suffix(".meta.json").read_text())
    assert meta["runs"] == len(stored) and meta["versions"]["torch"].startswith("2.13.0")


RERUN = """
import json, sys
from optedu.choosing import spike_runs as sr
print(json.dumps([sr.execute(sr.Job(**job)) for job in json.loads(sys.stdin.read())]))
"""


@pytest.mark.skipif(not FULL, reason="full tier (make test): a fresh pinned process "
                    "re-runs two stored runs (about 10 s)")
def test_a_sample_of_stored_runs_reproduces(stored):
    sample = [r for r in stored if sr.key_of(r) in {("baseline", 0), ("qk-clip=30", 1)}]
    jobs = [{"setting": r["setting"], "seed": r["seed"]} for r in sample]
    env = dict(os.environ)
    pin_cpu_kernels(env)
    out = subprocess.run([sys.executable, "-c", RERUN], input=json.dumps(jobs), env=env,
                         capture_output=True, text=True, check=True, timeout=600)
    for r, again in zip(sample, json.loads(out.stdout)):
        for k in ("loss", "grad_norm", "logit", "ratio", "sqrt_v", "val_loss"):
            assert again[k] == r[k], (sr.key_of(r), k)
