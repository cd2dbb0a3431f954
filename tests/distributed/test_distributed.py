"""optedu.distributed: the launcher, ZeRO-1, data parallelism and FSDP2 on 2 gloo processes.

Quick tier (no process is started): the partition rule, the ring cost model, the launcher's
argument checks and a port in use, and -- in this process, on a world of size 1 -- the
collective counter and ZeroOptimizer. Full tier: one launch of 2 processes runs every method
(by-hand all-reduce, DDP, ZeRO-1, torch's ZeroRedundancyOptimizer, FSDP2) with several
optimizers, checked against the single-process run on the whole batch (float64, relative
1e-12: the only difference is the order of the sums inside the batch) and against each other;
four more launches check that a rank raising, dying or hanging, or a port taken, ends with a
clear error in time.
"""

import socket
import time
import types

import pytest
import torch
import torch.distributed as dist

import optedu
from optedu.distributed import (LaunchTimeout, RankError, ZeroOptimizer, count_collectives,
                                launch, partition_sizes, ring_bytes_sent, totals,
                                zero_memory, zero_volume)
from optedu.distributed import launcher as launch_module
from optedu.distributed import runs
from optedu.distributed.runs import Job, compare, relative_difference


# --- the partition rule -------------------------------------------------------------------

def test_partition_by_hand():
    # the MLP 8-16-16-4: weights 128, 256, 64; biases 16, 16, 4. Largest first to the least
    # loaded rank: 256 -> 0; 128 -> 1; 64 -> 1 (192); then the biases all to rank 1 (228)
    assert partition_sizes([[128, 256, 64], [16, 16, 4]], 2) == [[1, 0, 1], [1, 1, 1]]


def test_partition_ties_go_to_the_lowest_rank_and_keep_order():
    assert partition_sizes([[5, 5, 5, 5]], 2) == [[0, 1, 0, 1]]
    assert partition_sizes([[3, 3, 3]], 3) == [[0, 1, 2]]


def test_partition_loads_carry_over_between_groups():
    # group 0 leaves rank 0 with 10, so group 1's first parameter goes to rank 1
    assert partition_sizes([[10], [4, 4]], 2) == [[0], [1, 1]]
    assert partition_sizes([[4, 4]], 2) == [[0, 1]]


def test_partition_one_rank_and_bad_world_size():
    assert partition_sizes([[3, 1], [2]], 1) == [[0, 0], [0]]
    with pytest.raises(ValueError, match="Invalid world_size value: 0"):
        partition_sizes([[1]], 0)


# --- the ring cost model --------------------------------------------------------------------

@pytest.mark.parametrize("op, factor", [("all_reduce", 2), ("all_gather", 1),
                                        ("reduce_scatter", 1), ("broadcast", 1),
                                        ("reduce", 1)])
def test_ring_bytes_sent(op, factor):
    for n in (1, 2, 4, 8):
        assert ring_bytes_sent(op, 1024, n) == factor * 1024 * (n - 1) / n


def test_zero_volume_per_stage():
    # Psi = 1000 bytes, n = 4: a share (n-1)/n Psi = 750
    assert zero_volume(0, 1000, 4) == {"all_reduce": 1500}
    assert zero_volume(1, 1000, 4) == {"all_reduce": 1500, "broadcast": 750}
    assert zero_volume(2, 1000, 4) == {"reduce_scatter": 750, "all_gather": 750}
    assert zero_volume(3, 1000, 4) == {"all_gather": 1500, "reduce_scatter": 750}


def test_zero_memory_per_stage():
    # the paper's 7.5B example, 64 ranks, mixed-precision Adam (K = 12): 120, 31.4, 16.6, 1.9 GB
    totals_gb = [sum(zero_memory(s, 7.5e9, 64).values()) / 1e9 for s in range(4)]
    assert [round(t, 1) for t in totals_gb] == [120.0, 31.4, 16.6, 1.9]
    # float64 Adam on one rank: every stage is the whole model, 8 + 8 + 16 bytes a parameter
    for stage in range(4):
        assert zero_memory(stage, 484, 1, param_bytes=8, grad_bytes=8,
                           state_bytes=16) == {"parameters": 3872, "gradients": 3872,
                                               "optimizer state": 7744}


@pytest.mark.parametrize("call, message", [
    (lambda: zero_memory(4, 8, 2), "Invalid stage value: 4"),
    (lambda: zero_memory(1, 8, 0), "Invalid world_size value: 0"),
    (lambda: ring_bytes_sent("all_to_all", 8, 2), "Invalid op value: 'all_to_all'"),
    (lambda: ring_bytes_sent("all_reduce", 8, 0), "Invalid world_size value: 0"),
    (lambda: zero_volume(4, 8, 2), "Invalid stage value: 4"),
    (lambda: zero_volume(1, 8, 0), "Invalid world_size value: 0"),
])
def test_cost_model_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- the launcher's checks (no process is started) -----------------------------------------

def test_launch_refuses_a_local_function():
    def local(rank, world_size):
        return rank
    with pytest.raises(TypeError, match="module-level function"):
        launch(local, 2)
    with pytest.raises(TypeError, match="module-level function"):
        launch(lambda rank, world_size: rank, 2)


def test_launch_refuses_a_notebook_function():
    # a function defined in a notebook cell lives in __main__: the children cannot import it
    cell = types.FunctionType(runs.all_reduce_rank.__code__, {}, "cell_function")
    cell.__module__, cell.__qualname__ = "__main__", "cell_function"
    with pytest.raises(TypeError, match="not __main__"):
        launch(cell, 2)


@pytest.mark.parametrize("kwargs, message", [
    (dict(world_size=0), "Invalid world_size value: 0"),
    (dict(timeout=0.0), "Invalid timeout value: 0.0"),
    (dict(port=70000), "Invalid port value: 70000"),
    (dict(retries=-1), "Invalid retries value: -1"),
    (dict(start_method="fork"), "Invalid start_method value: 'fork'"),
])
def test_launch_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        launch(runs.all_reduce_rank, **kwargs)


def test_launch_port_in_use_is_refused_at_once():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        start = time.monotonic()
        with pytest.raises(OSError, match=f"port {port} on 127.0.0.1 is in use"):
            launch(runs.all_reduce_rank, 2, port=port)
        assert time.monotonic() - start < 1.0


def test_the_cause_is_blamed_not_the_peer_that_lost_it():
    peer = {"type": "DistBackendError", "message": "Connection closed by peer"}
    own = {"type": "ValueError", "message": "bad"}
    # torch saw rank 0's communication error first; rank 1 raised its own error
    assert launch_module._cause(0, {0: peer, 1: own}, [1, 1]) == 1
    # rank 1 died without raising (os._exit): it is the cause
    assert launch_module._cause(0, {0: peer}, [1, 7]) == 1
    # gloo's own words for a lost peer (a RuntimeError) are a consequence too
    gloo = {"type": "RuntimeError", "message": "[gloo/transport/tcp/pair.cc:537] Read error "
            "[127.0.0.1]:5034: Connection reset by peer."}
    assert launch_module._cause(0, {0: gloo, 1: own}, [1, 1]) == 1
    assert launch_module._cause(1, {1: gloo}, [7, 1]) == 0
    # a rank our clean-up killed (SIGTERM, -15) is not blamed for one that exited first
    assert launch_module._cause(1, {}, [-15, 7]) == 1
    # only communication errors: the rank torch reported
    assert launch_module._cause(1, {0: peer, 1: peer}, [1, 1]) == 1


def test_free_port_is_bindable():
    port = launch_module.free_port()
    launch_module.check_port_free(port)  # raises if taken


def test_job_checks_its_method():
    with pytest.raises(ValueError, match="Invalid method value: 'zero2'"):
        Job("zero2", optedu.Adam)


@pytest.mark.parametrize("dtype, size", [(torch.float64, 8), (torch.float32, 4)])
def test_single_run_in_the_jobs_dtype_reports_bytes_held(dtype, size):
    before = torch.get_default_dtype()
    result = runs.train_single(Job("allreduce", optedu.Adam, dict(lr=0.01), dtype=dtype))
    assert torch.get_default_dtype() == before                   # restored
    assert all(p.dtype == dtype for p in result["params"])
    # 484 parameters, their gradients, two moments, one step counter per tensor (6)
    assert (result["param_bytes"], result["grad_bytes"]) == (484 * size, 484 * size)
    assert result["state_bytes"] == {"exp_avg": 484 * size, "exp_avg_sq": 484 * size,
                                     "step": 6 * size}


# --- a world of one, in this process ----------------------------------------------------------

@pytest.mark.filterwarnings("ignore:`torch.distributed.*` is deprecated:FutureWarning")
def test_count_collectives_bytes_and_restores(world_of_one):
    before = dist.all_reduce
    x = torch.zeros(10, dtype=torch.float64)              # 80 bytes
    out = torch.zeros(10, dtype=torch.float32)            # 40 bytes
    with count_collectives() as log:
        dist.all_reduce(x)
        dist.broadcast(x, src=0)
        dist.all_gather_into_tensor(out, out.clone())      # calls another collective inside
        dist.reduce_scatter_tensor(out[:10], out.clone())
        dist.all_gather([out.clone()], out)
    assert log == [("all_reduce", 80), ("broadcast", 80), ("all_gather", 40),
                   ("reduce_scatter", 40), ("all_gather", 40)]
    assert totals(log) == {"all_gather": 80, "all_reduce": 80, "broadcast": 80,
                           "reduce_scatter": 40}
    assert dist.all_reduce is before
    assert dist.distributed_c10d.all_reduce is before


def _mlp_and_grads():
    job = Job("zero", optedu.Adam)
    model = runs.make_model(job)
    x, y = runs.make_batch(job)
    return job, model, x, y


def test_zero_on_one_rank_is_the_inner_optimizer(world_of_one):
    job, model, x, y = _mlp_and_grads()
    twin = runs.make_model(job)
    zero = ZeroOptimizer(runs.groups(model, job), optedu.Adam, lr=0.01, amsgrad=True)
    plain = optedu.Adam(runs.groups(twin, job), lr=0.01, amsgrad=True)
    assert zero.owners == [[0, 0, 0], [0, 0, 0]]
    for _ in range(3):
        for m, opt in ((model, zero), (twin, plain)):
            opt.zero_grad()
            torch.nn.functional.mse_loss(m(x.double()), y.double()).backward()
            opt.step()
    for p, q in zip(model.parameters(), twin.parameters()):
        assert torch.equal(p, q)
    # the wrapper shows the inner optimizer's defaults, and passes a changed lr on
    assert zero.param_groups[0]["betas"] == (0.9, 0.999)
    zero.param_groups[1]["lr"] = 0.5
    zero.step()
    assert zero.optim.param_groups[1]["lr"] == 0.5


def test_zero_counts_one_all_reduce_and_one_broadcast_of_the_model(world_of_one):
    job, model, x, y = _mlp_and_grads()
    zero = ZeroOptimizer(runs.groups(model, job), torch.optim.SGD, lr=0.1)
    torch.nn.functional.mse_loss(model(x), y).backward()
    with count_collectives() as log:
        zero.step()
    psi = sum(p.numel() for p in model.parameters()) * 8
    assert totals(log) == {"all_reduce": psi, "broadcast": psi}


def test_zero_refuses_a_non_optimizer(world_of_one):
    with pytest.raises(TypeError, match="optimizer_class must be"):
        ZeroOptimizer([torch.zeros(2, requires_grad=True)], optedu.adam)
    with pytest.raises(ValueError, match="Invalid gradients value: 'sum'"):
        ZeroOptimizer([torch.zeros(2, requires_grad=True)], optedu.SGD, gradients="sum")


# --- 2 processes (full tier) -----------------------------------------------------------------

ADAM = dict(lr=0.01, betas=(0.9, 0.99), weight_decay=0.1)
OPTIMIZERS = {  # name: (class, kwargs, options of the bias group)
    "torch.Adam": (torch.optim.Adam, ADAM, dict(lr=0.02, weight_decay=0.0)),
    "optedu.Adam": (optedu.Adam, {**ADAM, "amsgrad": True}, dict(lr=0.02, weight_decay=0.0)),
    "optedu.SGD": (optedu.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
                   dict(lr=0.1, momentum=0.5)),
    "optedu.RMSprop": (optedu.RMSprop, dict(lr=0.01, alpha=0.9, momentum=0.5, centered=True),
                       dict(lr=0.005)),
}
OTHER = [("zero_reduce", "optedu.Adam"), ("zero_reduce", "optedu.SGD"),
         ("allreduce", "optedu.Adam"), ("ddp", "optedu.Adam"), ("ddp_hook", "optedu.Adam"),
         ("fsdp", "optedu.Adam"), ("fsdp", "optedu.AdamW")]


def _job(method, name):
    if name == "optedu.AdamW":
        return Job(method, optedu.AdamW, dict(lr=0.01, weight_decay=0.05), dict(lr=0.02))
    cls, kwargs, bias_group = OPTIMIZERS[name]
    return Job(method, cls, kwargs, bias_group)


KEYS = ([(m, name) for name in OPTIMIZERS for m in ("zero", "torch_zero")] + OTHER)


@pytest.fixture(scope="module")
def two_ranks():
    """Every job on 2 processes (one launch) beside its single-process run: compare()'s rows,
    and the raw results by key."""
    rows = compare([_job(*key) for key in KEYS], 2, timeout=180.0)
    ranks = {key: row["ranks"] for key, row in zip(KEYS, rows)}
    single = {key: row["single"] for key, row in zip(KEYS, rows)}
    return ranks, single, dict(zip(KEYS, rows))


@pytest.mark.full  # starts processes
def test_compare_rows(two_ranks):
    ranks, single, rows = two_ranks
    for key, row in rows.items():
        assert (row["method"], row["optimizer"]) == (key[0], key[1].split(".")[1])
        assert row["relative_difference"] == relative_difference(ranks[key][0]["params"],
                                                                 single[key]["params"])
        assert row["ranks_identical"]
        assert row["state_bytes"] == [sum(r["state_bytes"].values()) for r in ranks[key]]
        assert row["single_state_bytes"] == sum(single[key]["state_bytes"].values())
        assert row["comm"] == totals(ranks[key][0]["comm"])
        assert row["launch_seconds"] > 0


@pytest.mark.full  # starts processes
@pytest.mark.parametrize("key", KEYS, ids=["-".join(k) for k in KEYS])
def test_two_ranks_equal_the_single_process(two_ranks, key):
    ranks, single, _ = two_ranks
    r0, r1 = ranks[key]
    ref = single[key]
    assert relative_difference(r0["params"], ref["params"]) < 1e-12
    assert max(abs(a - b) / abs(b) for a, b in zip(r0["losses"], ref["losses"])) < 1e-12
    # both ranks end with the same whole model, bit for bit
    assert all(torch.equal(p, q) for p, q in zip(r0["params"], r1["params"]))
    # and the model moved: the check is not between two untouched copies
    start = list(runs.make_model(_job(*key)).parameters())
    assert relative_difference(ref["params"], start) > 1e-3


@pytest.mark.full  # starts processes
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_zero_equals_torch_zero_redundancy_optimizer(two_ranks, name):
    ranks, _, _ = two_ranks
    ours, theirs = ranks[("zero", name)], ranks[("torch_zero", name)]
    for mine, torchs in zip(ours, theirs):
        # the same averaged gradients ((g0 + g1)/2 and g0/2 + g1/2 are the same bits at n = 2)
        # and the same inner optimizer on the same shard: bit-identical
        assert all(torch.equal(p, q) for p, q in zip(mine["params"], torchs["params"]))
        assert mine["owners"] == torchs["owners"]
        assert mine["state_bytes"] == torchs["state_bytes"]


@pytest.mark.full  # starts processes
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_zero_state_is_split_between_the_ranks(two_ranks, name):
    ranks, single, _ = two_ranks
    r0, r1 = ranks[("zero", name)]
    whole = single[("zero", name)]["state_bytes"]
    buffers = [k for k in whole if k != "step"]
    assert buffers
    for key in whole:
        assert r0["state_bytes"].get(key, 0) + r1["state_bytes"].get(key, 0) == whole[key]
    # the 8-16-16-4 MLP splits 256 + 0 / 228 parameters (partition_sizes): 53% and 47%
    total = sum(whole[k] for k in buffers)
    assert sum(r0["state_bytes"][k] for k in buffers) == total * 256 // 484
    assert sum(r1["state_bytes"][k] for k in buffers) == total * 228 // 484


@pytest.mark.full  # starts processes
@pytest.mark.parametrize("name", ["optedu.Adam", "optedu.SGD"])
def test_zero_reducing_to_owners_equals_all_reducing(two_ranks, name):
    ranks, _, _ = two_ranks
    for ours, all_reduced in zip(ranks[("zero_reduce", name)], ranks[("zero", name)]):
        assert all(torch.equal(p, q) for p, q in zip(ours["params"], all_reduced["params"]))
        assert ours["state_bytes"] == all_reduced["state_bytes"]


@pytest.mark.full  # starts processes
def test_by_hand_all_reduce_equals_ddp(two_ranks):
    ranks, _, _ = two_ranks
    for method in ("ddp", "ddp_hook"):
        pairs = zip(ranks[("allreduce", "optedu.Adam")], ranks[(method, "optedu.Adam")])
        for ours, theirs in pairs:
            assert all(torch.equal(p, q) for p, q in zip(ours["params"], theirs["params"]))
            assert ours["losses"] == theirs["losses"]


@pytest.mark.full  # starts processes
@pytest.mark.parametrize("name", ["optedu.Adam", "optedu.AdamW"])
def test_fsdp_shards_the_state_in_halves(two_ranks, name):
    ranks, single, _ = two_ranks
    whole = single[("fsdp", name)]["state_bytes"]
    for r in ranks[("fsdp", name)]:
        assert r["state_bytes"]["exp_avg"] * 2 == whole["exp_avg"]
        assert r["state_bytes"]["exp_avg_sq"] * 2 == whole["exp_avg_sq"]


@pytest.mark.full  # starts processes
def test_bytes_communicated_per_step(two_ranks):
    ranks, _, _ = two_ranks
    psi = 484 * 8   # the MLP's parameters (and gradients), float64
    expected = {("allreduce", "optedu.Adam"): ({"all_reduce": psi}, 0),
                ("ddp_hook", "optedu.Adam"): ({"all_reduce": psi}, 0),
                ("zero", "optedu.Adam"): ({"all_reduce": psi, "broadcast": psi}, 1),
                # the paper's stage 1: reduce-scatter + all-gather, stage 2's volume
                ("zero_reduce", "optedu.Adam"): ({"reduce": psi, "broadcast": psi}, 2),
                ("torch_zero", "optedu.Adam"): ({"broadcast": psi}, None),  # DDP's: not seen
                ("ddp", "optedu.Adam"): ({}, None),                         # C++ reducer
                ("fsdp", "optedu.Adam"): ({"all_gather": 2 * psi, "reduce_scatter": psi}, 3)}
    for key, (volume, stage) in expected.items():
        for r in ranks[key]:
            assert totals(r["comm"]) == volume, key
            if stage is not None:
                sent = sorted(ring_bytes_sent(op, b, 2) for op, b in volume.items())
                assert sent == sorted(zero_volume(stage, psi, 2).values())


@pytest.mark.full  # starts processes
def test_fsdp_steps_rprop_and_adafactor_as_one_process():
    """Rprop (element-wise: it steps each shard's local piece, as DTensor refuses its masked
    in-place writes) and Adafactor (its column means and norms summed over the mesh) under
    FSDP2 end where the single process ends, to the rounding of the sums' order."""
    rows = compare([Job("fsdp", optedu.Rprop, dict(lr=0.01)),
                    Job("fsdp", optedu.Adafactor, dict(lr=0.01))], 2, timeout=120.0)
    for row in rows:
        assert row["relative_difference"] <= 1e-12, row["optimizer"]
        assert row["ranks_identical"]


@pytest.mark.full  # starts processes
def test_fsdp_refuses_a_rule_that_sums_over_every_parameter():
    """Prodigy's step size sums over all parameters: on shards it raises optedu's error,
    naming the rule, the shape and the placement, before any state exists."""
    with pytest.raises(RankError, match=r"Prodigy cannot step a sharded parameter \(shape "
                                        r"16×8, placement Shard\(0\) on a mesh of 2\)"):
        compare([Job("fsdp", optedu.Prodigy, dict(lr=1.0))], 2, timeout=120.0)


def test_zero_refuses_rules_that_sum_over_several_tensors():
    # each rank holds only the whole tensors it owns: a sum over the group is read in part;
    # refused when built, before any process group is needed
    for cls in (optedu.DoG, optedu.DAdaptSGD, optedu.Prodigy, optedu.LBFGS, torch.optim.LBFGS):
        with pytest.raises(ValueError, match=f"ZeroOptimizer cannot run {cls.__name__}: its "
                                             "step reads sums over several tensors"):
            ZeroOptimizer([torch.zeros(2, requires_grad=True)], cls, lr=0.1)


# --- failures end in time, with the rank named (full tier) ------------------------------------

@pytest.mark.full  # starts processes
def test_a_rank_that_raises_is_named():
    start = time.monotonic()
    with pytest.raises(RankError, match="rank 1 raised ValueError: a bad value on rank 1") as info:
        launch(runs.raise_on, 2, (1,), timeout=60.0)
    assert info.value.rank == 1
    assert "Traceback" in str(info.value)
    assert time.monotonic() - start < 60.0


@pytest.mark.full  # starts processes
def test_a_rank_that_dies_is_named():
    # with the spawn method too: fresh interpreters, the same error
    with pytest.raises(RankError, match=r"rank 0 died \(exit code 7\) without raising"):
        launch(runs.exit_on, 2, (0, 7), timeout=90.0, start_method="spawn")


@pytest.mark.full  # starts processes
def test_a_hanging_rank_is_killed_at_the_timeout():
    start = time.monotonic()
    with pytest.raises(LaunchTimeout, match=r"still running after 10 s") as info:
        launch(runs.hang_on, 2, (1, 600.0), timeout=10.0)
    elapsed = time.monotonic() - start
    # rank 0 returns at once and is gone, unless start-up alone took 10 s (a loaded machine)
    assert info.value.ranks in ([1], [0, 1])
    assert 10.0 <= elapsed < 20.0


@pytest.mark.full  # starts processes
def test_a_port_taken_after_it_was_picked_is_retried(monkeypatch):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        ports = iter([busy.getsockname()[1]])
        real = launch_module.free_port
        monkeypatch.setattr(launch_module, "free_port", lambda: next(ports, None) or real())
        assert launch(runs.all_reduce_rank, 2, timeout=60.0) == [1.0, 1.0]
        # without retries the taken port is an error that says so
        ports = iter([busy.getsockname()[1]])
        with pytest.raises(RankError, match="(?i)address already in use"):
            launch(runs.all_reduce_rank, 2, timeout=60.0, retries=0)
