"""optedu.distributed.checkpoint: DCP checkpoints saved on 2 gloo ranks, loaded on 1, 2 and 3.

Full tier only (four launches): ZeRO-1 (optedu's ZeroOptimizer) and FSDP2 with optedu's Adam
and SGD save after 4 steps on 2 ranks; resumed on 2 ranks the run equals the uninterrupted one
bit for bit; on 1 and 3 ranks within 1e-14 relative (float64: the gradient's mean is summed in
another order, as the same run uninterrupted on 1 or 3 ranks shows), and the state the new
ranks hold just after the load is the saved state bit for bit; a model with another
output width and another optimizer class are refused with a ValueError naming the difference.
"""

import pytest
import torch

import optedu
from optedu.distributed.runs import Job


def _checkpoint():
    """optedu.distributed.checkpoint, imported where it is used: its import of
    torch.distributed.checkpoint (about 1 s) would otherwise cost every pytest worker."""
    from optedu.distributed import checkpoint

    return checkpoint


@pytest.fixture(scope="module")
def resharded():
    adam = dict(lr=0.01, weight_decay=0.01)
    jobs = {"zero Adam": Job("zero", optedu.Adam, adam, dict(lr=0.02), batch=48),
            "fsdp Adam": Job("fsdp", optedu.Adam, adam, dict(lr=0.02), batch=48),
            "fsdp SGD": Job("fsdp", optedu.SGD, dict(lr=0.05, momentum=0.9),
                            dict(lr=0.1), batch=48)}
    return _checkpoint().reshard(jobs, save_at=4, steps=8, foreign_optimizer=optedu.AdamW)


@pytest.mark.full  # starts processes
def test_every_rank_writes_a_file(resharded):
    for name, files in resharded["files"].items():
        assert [f for f, _ in files] == [".metadata", "__0_0.distcp", "__1_0.distcp"], name


@pytest.mark.full  # starts processes
def test_resumed_runs_equal_the_uninterrupted_run(resharded):
    rows = resharded["rows"]
    assert len(rows) == 9
    for row in rows:
        assert row["start"] == 4
        assert row["ranks_identical"], row["job"]
        assert row["state_identical"], row        # the load gives back what was saved
        if row["world"] == 2:
            assert row["identical"], row["job"]        # same ranks, same sums: bit for bit
        else:                                          # the mean summed in another order
            assert row["relative_difference"] <= 1e-14, row
            assert row["world_difference"] <= 1e-14, row
            assert row["loss_difference"] <= 1e-14, row
            assert row["same_world_difference"] <= 1e-14, row


@pytest.mark.full  # starts processes
def test_foreign_checkpoints_are_refused(resharded):
    for row in resharded["rows"]:
        assert row["model_error"].startswith("Invalid checkpoint: another model"), row
        assert "(4,), here (5,)" in row["model_error"]
        assert "another optimizer" in row["optimizer_error"]
        assert "resuming optedu.optim.adam.AdamW" in row["optimizer_error"]


def test_same_compares_parameters_and_every_state_entry_bit_for_bit():
    x = torch.tensor([1.0, 2.0], dtype=torch.float64)
    state = {"params": [x], "optim": {"0.weight/exp_avg": x, "0.weight/step": 3}}
    dcp = _checkpoint()
    assert dcp._same(state, dcp._gathered([state]))
    nudged = torch.nextafter(x, torch.tensor(3.0, dtype=torch.float64))
    for other in ({"params": [nudged], "optim": state["optim"]},
                  {"params": [x], "optim": {"0.weight/exp_avg": nudged, "0.weight/step": 3}},
                  {"params": [x], "optim": {"0.weight/exp_avg": x.float(), "0.weight/step": 3}},
                  {"params": [x], "optim": {"0.weight/exp_avg": x, "0.weight/step": 4}},
                  {"params": [x], "optim": {"0.weight/exp_avg": x}}):
        assert not dcp._same(state, other)
    halves = [{"params": [x], "optim": {"0.weight/exp_avg": x}},
              {"params": [x], "optim": {"0.weight/step": 3}}]
    assert dcp._same(state, dcp._gathered(halves))


def test_bad_arguments_are_refused_before_any_launch():
    job = Job("ddp", optedu.Adam, {}, batch=48)
    dcp = _checkpoint()
    with pytest.raises(ValueError, match="Invalid method value: 'ddp'"):
        dcp.reshard({"ddp": job}, save_at=2, steps=4)
    with pytest.raises(ValueError, match="Invalid save_at value: 4"):
        dcp.reshard({"zero": Job("zero", optedu.Adam, {}, batch=48)}, save_at=4, steps=4)
