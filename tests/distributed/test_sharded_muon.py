"""Muon on FSDP2's shards: optedu's Muon (each matrix gathered on every rank) and OwnerMuon
(each matrix orthogonalised once, by its owner).

Quick tier (no process is started): on plain tensors the gather is a no-op and OwnerMuon is
Muon. Full tier: one launch of 2 processes runs both designs and AdamW on an MLP under FSDP2
(Muon on the weights, AdamW on the biases) beside the single process, and checks

* the numbers: both designs equal, bit for bit, the single process whose gradient averages the
  two ranks' halves of the batch (the division by 2 is exact, so FSDP2's averaged gradient is
  that one), and each other; against the whole-batch gradient they differ only as much as the
  two single-process runs differ from each other (the gradient's float32 rounding, which the
  bfloat16 iteration either absorbs or, at a rounding boundary, amplifies);
* the bytes of the optimizer step: one all-gather of each matrix in bfloat16 (gathered), one
  gather and one scatter (owner), nothing (AdamW);
* the memory per rank: the momentum's half, and the whole matrices held at once.
"""

import pytest
import torch

import optedu
from optedu.distributed import ring_bytes_sent
from optedu.distributed.muon import MuonRun, OwnerMuon, compare, train_single
from optedu.optim._sharding import gather_matrix, local_rows


WIDTHS = (8, 32, 32, 32, 4)
UNEVEN = (7, 33, 5, 3)                       # 33, 5 and 3 rows: pieces of unequal size


def matrices(widths):
    return [(b, a) for a, b in zip(widths[:-1], widths[1:])]   # (out, in)


# --- quick tier ------------------------------------------------------------------------------

def test_plain_tensors_pass_through_the_gather():
    t = torch.randn(5, 3)
    assert gather_matrix(t) is t and gather_matrix(t, torch.bfloat16) is t
    assert local_rows(t, t) is t


def test_owner_muon_is_muon_on_plain_tensors():
    torch.manual_seed(0)
    params = [torch.randn(6, 4, requires_grad=True), torch.randn(3, 5, requires_grad=True)]
    twins = [p.detach().clone().requires_grad_() for p in params]
    opts = [OwnerMuon(params, lr=0.05), optedu.Muon(twins, lr=0.05)]
    assert opts[0].owners == [0, 0]          # one process owns everything
    for _ in range(2):
        grads = [torch.randn_like(p) for p in params]
        for ps, opt in zip((params, twins), opts):
            for p, g in zip(ps, grads):
                p.grad = g.clone()
            opt.step()
    assert all(torch.equal(p, q) for p, q in zip(params, twins))


def test_bad_design_is_refused():
    with pytest.raises(ValueError, match="Invalid design value: 'fsdp'"):
        MuonRun("fsdp")


# --- full tier: one launch -------------------------------------------------------------------

OURS = ("gathered", "owner", "adamw")
RUNS = ([MuonRun(d) for d in OURS] + [MuonRun(d, seed=3) for d in OURS]
        + [MuonRun(d, widths=UNEVEN) for d in ("gathered", "owner")] + [MuonRun("torch")])


@pytest.fixture(scope="module")
def rows():
    torch.set_num_threads(1)                 # as each rank runs
    return dict(zip([(r.design, r.seed, r.widths) for r in RUNS], compare(RUNS)))


@pytest.mark.full  # starts processes
def test_every_run_equals_the_single_process_with_the_ranks_gradient(rows):
    for key, row in rows.items():
        assert row["ranks_identical"], key
        if key[0] != "torch":
            assert row["split_difference"] == 0.0, key


@pytest.mark.full  # starts processes
def test_equal_to_torch_muon_in_one_process(rows):
    # optedu's sharded Muon = torch.optim.Muon in one process on the ranks' gradient
    reference = train_single(MuonRun("torch"), 2)["params"]
    assert all(torch.equal(p, q) for p, q in zip(
        reference, rows[("gathered", 0, WIDTHS)]["ranks"][0]["params"]))
    # torch.optim.Muon on the shards (DTensor's own operations) is not; nothing is counted
    assert rows[("torch", 0, WIDTHS)]["split_difference"] > 0
    assert rows[("torch", 0, WIDTHS)]["step_comm"] == {}


@pytest.mark.full  # starts processes
def test_both_designs_give_the_same_bits(rows):
    for seed, widths in ((0, WIDTHS), (3, WIDTHS), (0, UNEVEN)):
        a = rows[("gathered", seed, widths)]["ranks"][0]["params"]
        b = rows[("owner", seed, widths)]["ranks"][0]["params"]
        assert all(torch.equal(p, q) for p, q in zip(a, b)), (seed, widths)


@pytest.mark.full  # starts processes
def test_against_the_whole_batch_only_the_gradients_rounding(rows):
    for key, row in rows.items():
        if key[0] != "torch":
            assert row["relative_difference"] == row["floor"], key
    # AdamW carries the gradient's float32 rounding (1.7e-7 measured, seed 0); Muon's bfloat16
    # iteration absorbs it or, where it straddles a bfloat16 boundary, amplifies it (0 or 1.6e-2
    # measured, depending on the seed and the CPU's kernels): no bound on it is asserted
    assert rows[("adamw", 0, WIDTHS)]["floor"] < 1e-5


@pytest.mark.full  # starts processes
def test_bytes_of_the_optimizer_step(rows):
    bf16 = 2 * sum(a * b for a, b in matrices(WIDTHS))        # every matrix in bfloat16
    gathered, owner = rows[("gathered", 0, WIDTHS)], rows[("owner", 0, WIDTHS)]
    assert gathered["step_comm"] == {"all_gather": bf16}
    assert owner["step_comm"] == {"gather": bf16, "scatter": bf16}
    assert rows[("adamw", 0, WIDTHS)]["step_comm"] == {}
    # at 2 ranks the ring model gives both the same bytes sent: Psi / 2
    assert gathered["step_sent"] == owner["step_sent"] == bf16 / 2
    assert ring_bytes_sent("gather", bf16, 2) == bf16 / 4
    # FSDP2's own passes are the same for every design
    assert gathered["pass_comm"] == owner["pass_comm"] == rows[("adamw", 0, WIDTHS)][
        "pass_comm"]


@pytest.mark.full  # starts processes
def test_memory_per_rank(rows):
    sizes = [a * b for a, b in matrices(WIDTHS)]
    for design in ("gathered", "owner"):
        row = rows[(design, 0, WIDTHS)]
        assert row["state_bytes"] == [4 * sum(sizes) // 2] * 2   # half the float32 momentum
        assert row["single_state_bytes"] == 4 * sum(sizes)
    owner = rows[("owner", 0, WIDTHS)]
    assert owner["owners"] == [0, 1, 0, 1]                       # round-robin
    held = [4 * sum(s for s, o in zip(sizes, owner["owners"]) if o == r) for r in (0, 1)]
    assert owner["buffer_bytes"] == held       # bfloat16 input and output of owned matrices
    assert rows[("gathered", 0, WIDTHS)]["buffer_bytes"] == [4 * max(sizes)] * 2
