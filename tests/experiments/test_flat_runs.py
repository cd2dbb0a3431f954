"""The flat-minima experiment (optedu.experiments.flat): what the stored runs record, and the
pieces the chapter reads behave as documented (tests/experiments/test_grids.py checks the stored
runs complete and re-runs a sample)."""

from __future__ import annotations

import math

import pytest
import torch

from optedu.experiments import flat as flat_runs

MEASURED = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc",
            "sharpness", "trace", "trace_se", "lanczos")


@pytest.fixture(scope="module")
def stored():
    return flat_runs.read()


def test_the_stored_runs(stored):
    """Every run the grid asks for is stored once, with its gradients counted and every
    measurement present (a run that diverged has none)."""
    for r in stored:
        job = flat_runs.KEY(*flat_runs.KEY.of(r))
        assert r["gradients"] == flat_runs.gradients(job)
        if not r["diverged"]:
            assert all(r[k] is not None for k in MEASURED), flat_runs.KEY.of(r)


def test_rescaling_keeps_the_function_and_moves_the_parameters():
    model = flat_runs.network(0)
    other = flat_runs.rescale(model, 0, 4.0)
    x = torch.rand(8, 64)
    assert torch.allclose(model(x), other(x), rtol=1e-5, atol=1e-6)
    assert torch.equal(other[0].weight, 4.0 * model[0].weight)
    assert torch.equal(other[2].weight, model[2].weight / 4.0)
    assert torch.equal(other[4].weight, model[4].weight)      # the others are untouched
    with pytest.raises(ValueError, match="Invalid alpha"):
        flat_runs.rescale(model, 0, -1.0)
    with pytest.raises(ValueError, match="Invalid layer"):
        flat_runs.rescale(model, 2, 2.0)                      # no layer after the last


@pytest.mark.parametrize("args, word", [
    (("lion", "none", 0.0, 0.1, 10, 0), "base"),
    (("adam", "gsam", 0.05, 0.1, 10, 0), "variant"),
    (("adam", "none", 0.05, 0.1, 10, 0), "rho"),
    (("adam", "sam", 0.0, 0.1, 10, 0), "rho"),
    (("adam", "sam", 0.05, -0.1, 10, 0), "lr"),
    (("adam", "sam", 0.05, 0.1, 0, 0), "steps"),
])
def test_bad_jobs_raise(args, word):
    with pytest.raises(ValueError, match=f"Invalid {word}"):
        flat_runs.KEY(*args)


def test_sam_evaluates_two_gradients_per_step(monkeypatch):
    """SAM's closure is called once per step: two forward passes where the base makes one."""
    calls = []
    real = flat_runs.network

    def counted(seed):
        model = real(seed)
        model.register_forward_hook(lambda *_: calls.append(1))
        return model
    monkeypatch.setattr(flat_runs, "network", counted)
    x, y = torch.rand(flat_runs.N_TRAIN, 64), torch.randint(10, (flat_runs.N_TRAIN,))
    data, counts = flat_runs.Data(x, y, x, y, x, y), {}
    for variant, rho in (("none", 0.0), ("sam", 0.05), ("asam", 0.5)):
        job = flat_runs.KEY("sgd_momentum", variant, rho, 0.01, 3, 0)
        calls.clear()
        flat_runs.train(job, data)
        counts[variant] = len(calls)
        assert counts[variant] == flat_runs.gradients(job)
    assert counts == {"none": 3, "sam": 6, "asam": 6}


def _record(lr, seed, val, diverged=False):
    return {"base": "adam", "variant": "none", "rho": 0.0, "lr": lr, "steps": flat_runs.STEPS,
            "seed": seed, "val_loss": None if diverged else val, "diverged": diverged,
            "train_loss": val / 10, "test_loss": val, "test_acc": 0.9, "sharpness": 1.0,
            "trace": 2.0, "gradients": flat_runs.STEPS}


def test_tuned_picks_the_lowest_mean_validation_loss():
    records = [_record(0.001, 0, 0.30), _record(0.001, 1, 0.10),     # mean 0.20
               _record(0.003, 0, 0.18), _record(0.003, 1, 0.24),     # mean 0.21
               _record(0.01, 0, 0.01), _record(0.01, 1, 0.0, True)]  # one seed diverged
    assert flat_runs.tuned(records, "adam", "none", 0.0) == 0.001
    got = flat_runs.summary(records, "adam", "none", 0.0)
    assert got["lr"] == 0.001 and got["seeds"] == [0, 1] and got["val_loss"] == [0.30, 0.10]
    tie = [_record(0.003, 0, 0.2), _record(0.001, 0, 0.2)]
    assert flat_runs.tuned(tie, "adam", "none", 0.0) == 0.001        # the smaller on a tie
    with pytest.raises(ValueError, match="Invalid setting"):
        flat_runs.tuned(records, "adam", "sam", 0.05)
    assert math.isinf(flat_runs._score([0.1, None]))


def test_chosen_picks_the_radius_as_the_rate():
    def sam(rho, lr, val):
        return {**_record(lr, 0, val), "variant": "sam", "rho": rho}
    records = [sam(0.05, 0.001, 0.3), sam(0.05, 0.003, 0.2),   # 0.05 at its best: 0.2
               sam(0.1, 0.001, 0.15), sam(0.1, 0.003, 0.4)]    # 0.1 at its best: 0.15
    got = flat_runs.chosen(records, "adam", "sam")
    assert (got["rho"], got["lr"], got["val_loss"]) == (0.1, 0.001, [0.15])
    with pytest.raises(ValueError, match="Invalid setting"):
        flat_runs.chosen(records, "adam", "asam")
