"""The learning-rate-free experiment (optedu.experiments.lrfree): what the stored runs record,
and the pieces the chapter reads behave as documented (tests/experiments/test_grids.py checks
the stored runs complete and re-runs a sample)."""

from __future__ import annotations

import math

import pytest
import torch

from optedu.experiments import lrfree as lf

MEASURED = tuple(f"{split}_{m}" for split in ("train", "val", "test") for m in ("loss", "acc"))


@pytest.fixture(scope="module")
def stored():
    return lf.read()


def test_the_stored_runs(stored):
    """Every run the grid asks for is stored once, with its whole curve and every final
    measurement (the averaged model's too for DoG and LDoG); none diverged."""
    points = list(range(1, lf.EARLY + 1)) + [
        t for t in range(lf.EVERY, lf.STEPS + 1, lf.EVERY) if t > lf.EARLY]
    for r in stored:
        assert not r["diverged"], lf.KEY.of(r)
        assert r["curve"]["step"] == points, lf.KEY.of(r)
        assert all(len(v) == len(points) for v in r["curve"].values()), lf.KEY.of(r)
        extra = tuple("avg_" + k for k in MEASURED) if "dog" in r["optimizer"] else ()
        assert all(r[k] is not None for k in MEASURED + extra), lf.KEY.of(r)


@pytest.mark.parametrize("args, word", [
    (("adam", "constant", 1.0, 1e-6, 0), "optimizer"),
    (("prodigy", "linear", 1.0, 1e-6, 0), "schedule"),
    (("prodigy", "constant", 0.0, 1e-6, 0), "lr"),
    (("prodigy", "constant", 1.0, 0.0, 0), "d0"),
    (("adamw", "constant", 1e-3, 1e-6, 0), "d0"),
    (("dog", "constant", 1.0, -1e-6, 0), "d0"),
])
def test_bad_jobs_raise(args, word):
    with pytest.raises(ValueError, match=f"Invalid {word}"):
        lf.KEY(*args)


def test_the_schedules():
    """Warmup reaches the peak at step W-1; cosine starts at the peak, halves at mid-way and
    ends near zero; the constant schedule is 1 everywhere."""
    T, W = 100, 10
    assert [lf.multiplier("warmup_constant", t, T, W) for t in (0, 4, 9, 50, 99)] == \
        [0.1, 0.5, 1.0, 1.0, 1.0]
    assert lf.multiplier("cosine", 0, T, W) == 1.0
    assert lf.multiplier("cosine", 50, T, W) == pytest.approx(0.5)
    assert lf.multiplier("warmup_cosine", W, T, W) == 1.0
    assert lf.multiplier("warmup_cosine", W + 45, T, W) == pytest.approx(0.5)
    assert 0 < lf.multiplier("cosine", T - 1, T, W) < 1e-3
    assert all(lf.multiplier("constant", t, T, W) == 1.0 for t in range(T))
    with pytest.raises(ValueError, match="Invalid t"):
        lf.multiplier("cosine", T, T, W)
    with pytest.raises(ValueError, match="Invalid schedule"):
        lf.multiplier("linear", 0, T, W)


def test_the_schedule_reaches_the_optimizer(monkeypatch):
    """The lr each optimizer steps with is the base lr times the schedule; schedule-free
    AdamW is left to its own warmup."""
    seen = []
    real = lf.optimizer

    def spying(job, params):
        opt = real(job, params)
        opt.register_step_pre_hook(lambda o, *_: seen.append(o.param_groups[0]["lr"]))
        return opt
    monkeypatch.setattr(lf, "optimizer", spying)
    x, y = torch.rand(lf.N_TRAIN, 64), torch.randint(10, (lf.N_TRAIN,))
    data = lf.Data(x, y, x, y, x, y)
    lf.train(lf.KEY("prodigy", "warmup_cosine", 0.5, 1e-6, 0), data, steps=3)
    assert seen == [0.5 * lf.multiplier("warmup_cosine", t) for t in range(3)]
    seen.clear()
    lf.train(lf.KEY("sf_adamw", "warmup_constant", 0.01, 0.0, 0), data, steps=3)
    assert seen == [0.01] * 3


def test_the_estimate_read_from_each_rule():
    """``estimate`` reads d and the step it gives from each package's group: d * lr for the
    Adam-type rules, d * lr / |g0| for D-Adaptation's SGD, DoG's rbar and eta."""
    x, y = torch.rand(lf.BATCH, 64), torch.randint(10, (lf.BATCH,))
    for name in ("prodigy", "dadapt_adam", "dadapt_sgd", "dog", "ldog", "adamw"):
        model = lf.network(0)
        job = lf.KEY(name, "constant", 1e-3 if name == "adamw" else 0.5,
                     0.0 if name == "adamw" else 1e-6, 0)
        opt = lf.optimizer(job, model.parameters())
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        d, step = lf.estimate(opt)
        group = opt.param_groups[0]
        if name in ("prodigy", "dadapt_adam"):
            assert (d, step) == (group["d"], group["d"] * 0.5)
        elif name == "dadapt_sgd":
            assert step == pytest.approx(group["d"] * 0.5 / group["g0_norm"], rel=1e-12)
        elif name in ("dog", "ldog"):
            assert d == pytest.approx(float(group["rbar"].norm()))
            assert step == pytest.approx(max(float(e) for e in group["eta"]))
        else:
            assert math.isnan(d) and step == 1e-3


def _record(optimizer, schedule, lr, seed, val):
    return {"optimizer": optimizer, "schedule": schedule, "lr": lr, "d0": 0.0, "seed": seed,
            "val_loss": val, "diverged": False}


def test_tuned_and_select():
    records = [_record("adamw", "constant", 1e-3, 0, 0.30),
               _record("adamw", "constant", 1e-3, 1, 0.10),     # mean 0.20
               _record("adamw", "constant", 3e-3, 0, 0.18),
               _record("adamw", "constant", 3e-3, 1, 0.24),     # mean 0.21
               _record("adamw", "cosine", 3e-3, 0, 0.05)]
    assert lf.tuned(records, "adamw", "constant") == 1e-3
    assert lf.tuned(records, "adamw", "cosine") == 3e-3
    runs = lf.select(records, "adamw", "constant", lr=1e-3)
    assert [r["seed"] for r in runs] == [0, 1]
    with pytest.raises(ValueError, match="Invalid setting"):
        lf.tuned(records, "sf_adamw", "constant")
    with pytest.raises(ValueError, match="Invalid lr"):
        lf.select(records, "adamw")                              # a grid needs its rate
    with pytest.raises(ValueError, match="Invalid setting"):
        lf.select(records, "prodigy")
    tie = [_record("adamw", "constant", 3e-3, 0, 0.2), _record("adamw", "constant", 1e-3, 0, 0.2)]
    assert lf.tuned(tie, "adamw", "constant") == 1e-3              # the smaller on a tie
