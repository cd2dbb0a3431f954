"""optedu.distributed.flat_zero: ZeRO-1 on flat buffers (the paper's and DeepSpeed's design).

Quick tier: the partition by hand and its invariants, and -- in this process, on a world of
size 1 -- FlatZeroOptimizer against its inner optimizer and the sharded clip against
optedu.clip_grad_norm_. Full tier: one launch of 2 processes runs both designs of ZeRO-1 and
the clipped flat design against the single process.
"""

import pytest
import torch
import torch.nn.functional as F

import optedu
from optedu.distributed import runs
from optedu.distributed.flat_runs import compare_designs, train_design
from optedu.distributed.flat_zero import (FlatZeroOptimizer, check_element_wise,
                                          clip_grad_norm_sharded_, flat_partition)
from optedu.distributed.runs import Job


def test_flat_partition_by_hand():
    assert flat_partition([6, 2], 2) == [[(0, 0, 4)], [(0, 4, 6), (1, 0, 2)]]
    # one huge matrix is cut evenly; the last piece holds the padding
    assert flat_partition([4096, 64, 128], 3) == [
        [(0, 0, 1430)], [(0, 1430, 2860)], [(0, 2860, 4096), (1, 0, 64), (2, 0, 128)]]


@pytest.mark.parametrize("numels, n", [([7], 1), ([7], 4), ([1, 2, 3, 100], 3),
                                       ([5, 5], 10), ([256, 16, 128, 16, 64, 4], 2)])
def test_flat_partition_covers_every_element_once_in_equal_pieces(numels, n):
    ranges = flat_partition(numels, n)
    assert len(ranges) == n
    seen = [[0] * k for k in numels]
    for pieces in ranges:
        for i, start, stop in pieces:
            for j in range(start, stop):
                seen[i][j] += 1
    assert all(c == 1 for row in seen for c in row)
    piece = -(-sum(numels) // n)
    held = [sum(stop - start for _, start, stop in pieces) for pieces in ranges]
    assert all(h <= piece for h in held) and sum(held) == sum(numels)


def test_flat_partition_bad_world_size():
    with pytest.raises(ValueError, match="Invalid world_size value: 0"):
        flat_partition([3], 0)


@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("max_norm", [None, 0.05])
def test_flat_zero_on_one_rank_is_the_inner_optimizer(world_of_one, max_norm):
    job = Job("zero", optedu.Adam, dict(lr=0.01), dict(lr=0.02), widths=(8, 16, 4))
    with runs.default_dtype(torch.float64):
        model, twin = runs.make_model(job), runs.make_model(job)
        flat = FlatZeroOptimizer(runs.groups(model, job), optedu.Adam, max_norm=max_norm,
                                 lr=0.01)
        flat.param_groups[1]["lr"] = 0.02         # reaches the inner group at the step
        plain = optedu.Adam(runs.groups(twin, job), lr=0.01)
        x, y = runs.make_batch(job)
        for _ in range(3):
            for m, opt in ((model, flat), (twin, plain)):
                opt.zero_grad()
                F.mse_loss(m(x), y).backward()
                if opt is plain and max_norm is not None:
                    norm = optedu.clip_grad_norm_(m.parameters(), max_norm)
                opt.step()
            if max_norm is not None:
                assert torch.allclose(flat.last_norm, norm.double(), rtol=1e-12, atol=0)
    for p, q in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-14)
    assert [len(g["params"]) for g in flat.optim.param_groups] == [1, 1]
    assert flat.optim.param_groups[1]["lr"] == 0.02


def test_sharded_clip_on_one_rank_equals_clip_grad_norm(world_of_one):
    torch.manual_seed(0)
    grads = [torch.randn(5, 3, dtype=torch.float64), torch.randn(7, dtype=torch.float64)]
    params = [torch.zeros_like(g, requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    expected = optedu.clip_grad_norm_(params, 0.5)
    pieces = [g.clone() for g in grads]
    total = clip_grad_norm_sharded_(pieces, 0.5)
    assert torch.allclose(total, expected, rtol=1e-15, atol=0)
    for p, g in zip(params, pieces):
        torch.testing.assert_close(g, p.grad, rtol=1e-15, atol=0)


def test_design_checks_its_arguments():
    job = Job("zero", optedu.Adam)
    with pytest.raises(ValueError, match="Invalid design value: 'rows'"):
        train_design(0, 1, "rows", job)
    with pytest.raises(ValueError, match="max_norm needs design='flat' or 'fsdp'"):
        train_design(0, 1, "tensors", job, 1.0)


@pytest.mark.full  # starts processes
def test_two_designs_on_two_ranks():
    widths = (16, 64, 64, 2)                   # one 64 x 64 matrix, 76 % of the model
    adam = Job("zero", optedu.Adam, dict(lr=0.01), widths=widths)
    lamb = Job("zero", optedu.Lamb, dict(lr=0.01), widths=widths)
    specs = [("tensors", adam, None), ("flat", adam, None), ("tensors", lamb, None),
             ("flat", adam, 0.1), ("fsdp", adam, 0.1)]
    rows = compare_designs(specs, 2, timeout=180.0)
    whole, flat, lamb_whole, clipped, fsdp_clipped = rows
    for row in (whole, flat, lamb_whole, clipped, fsdp_clipped):
        assert row["relative_difference"] <= 1e-12, row["design"]
    assert clipped["norm_difference"] <= 1e-12
    assert fsdp_clipped["norm_difference"] <= 1e-12     # torch's clip on DTensor gradients
    assert len(fsdp_clipped["ranks"][0]["norms"]) == adam.steps
    # the same moments; 6 step counters (one per tensor) against 2 per rank (one per piece)
    assert sum(whole["state_bytes"]) - 6 * 8 == sum(flat["state_bytes"]) - 4 * 8 == 5378 * 16
    assert flat["state_bytes"][0] == flat["state_bytes"][1]
    assert whole["state_bytes"][0] > 3 * whole["state_bytes"][1]
    assert flat["ranks"][0]["comm"] == {"all_gather": 5378 * 8, "reduce_scatter": 5378 * 8}


@pytest.mark.parametrize("cls", [optedu.Lamb, optedu.LARS, optedu.Adafactor, optedu.Muon,
                                 optedu.DoG, optedu.Adam8bit, torch.optim.Adafactor],
                         ids=lambda c: f"{c.__module__.split('.')[0]}.{c.__name__}")
def test_flat_pieces_refuse_rules_that_read_whole_tensors(cls):
    # refused when built, before any process group is needed: a flat piece would hand the
    # rule part of a tensor, or parts of several
    with pytest.raises(ValueError, match=f"FlatZeroOptimizer cannot run {cls.__name__}: "
                                         "its pieces are cut from one flat vector"):
        FlatZeroOptimizer([torch.zeros(2, 2, requires_grad=True)], cls, lr=0.01)


def test_flat_pieces_refuse_an_option_that_reads_whole_tensors():
    # LaProp is element-wise; its cautious mask is rescaled by a count over the whole tensor
    with pytest.raises(ValueError, match="FlatZeroOptimizer cannot run LaProp with lr=0.01, "
                                         "cautious=True: its pieces are cut"):
        FlatZeroOptimizer([torch.zeros(2, 2, requires_grad=True)], optedu.LaProp, lr=0.01,
                          cautious=True)


@pytest.mark.parametrize("cls", [optedu.Adam, optedu.SGD, optedu.Lion, optedu.Rprop,
                                 torch.optim.Adam, torch.optim.SGD],
                         ids=lambda c: f"{c.__module__.split('.')[0]}.{c.__name__}")
def test_flat_pieces_take_element_wise_rules(cls):
    check_element_wise(cls)
