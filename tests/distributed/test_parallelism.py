"""Tensor and pipeline parallelism on two gloo processes, and a layer's activation memory.

Quick tier (no process is started): the pipeline schedules and their bubble, Korthikanti et
al.'s activation count against the saved tensors of a bfloat16 GPT layer (every term, plus the
LayerNorms' statistics the formula leaves out), checkpointing's bytes and FLOPs, and the
arguments refused. Full tier: one launch of the chapter's runs, checking

* tensor parallelism: the loss, the parameter gradients and the input gradient equal one
  process to k·u times the largest value (k the hidden width summed in two halves, u float64's
  unit roundoff): the size of the textbook bound of a reordered sum, (k-1)·u·Σ|terms| per
  order, as a yardstick, not a proof. One all-reduce of the activations forward and one
  backward; AdamW on the shards equal to one process to k·u and silent; Muon gathered equal
  to Muon to 1e-14 (measured, not derived), Muon block-wise not;
* pipeline parallelism: both schedules at m = 1, 2, 4, 8 equal one process bit for bit
  (gradients after the first batch, parameters after two steps), the bubble (p-1)/(m+p-1)
  exactly on the logical clock, GPipe holding m micro-batches and 1F1B at most p - r.
"""

from fractions import Fraction

import pytest
import torch

from optedu.distributed import activations as act
from optedu.distributed import launch
from optedu.distributed import pipeline as pp
from optedu.distributed import tensor_parallel as tp
from optedu.distributed.runs import relative_difference

U64 = torch.finfo(torch.float64).eps / 2


# --- quick tier ------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", pp.SCHEDULES)
@pytest.mark.parametrize("stages, micro", [(2, 1), (2, 4), (3, 5), (4, 2)])
def test_schedules_run_each_micro_batch_once_backward_after_forward(kind, stages, micro):
    for stage in range(stages):
        ops = pp.schedule(kind, stage, stages, micro)
        assert sorted(ops) == sorted([("F", i) for i in range(micro)]
                                     + [("B", i) for i in range(micro)])
        assert all(ops.index(("F", i)) < ops.index(("B", i)) for i in range(micro))
        held = peak = 0
        for op, _ in ops:
            held += 1 if op == "F" else -1
            peak = max(peak, held)
        assert peak == (micro if kind == "gpipe" else min(micro, stages - stage))


def test_bubble_formula():
    assert [pp.bubble_fraction(2, m) for m in (1, 3)] == [0.5, 0.25]
    assert pp.bubble_fraction(4, 5) == 3 / 8


def test_refusals_name_the_value():
    with pytest.raises(ValueError, match="Invalid schedule value: 'zb'"):
        pp.schedule("zb", 0, 2, 2)
    with pytest.raises(ValueError, match="Invalid world_size value: 3"):
        tp.shard(torch.zeros(4, 2), 0, 0, 3)
    with pytest.raises(ValueError, match="Invalid recompute value: 'some'"):
        act.layer_bytes(8, 1, 8, 2, recompute="some")
    with pytest.raises(ValueError, match="Invalid mode value: 'half'"):
        tp.muon_tp_update(torch.zeros(2, 2), 0, "half", 0, 1)


def test_layer_bytes_is_korthikanti_et_al_table_2():
    s, b, h, a, t = 2048, 1, 12288, 96, 8
    sbh, core = s * b * h, 5 * a * s / h
    assert act.layer_bytes(s, b, h, a)["total"] == pytest.approx(sbh * (34 + core), rel=1e-15)
    assert act.layer_bytes(s, b, h, a, t)["total"] == pytest.approx(
        sbh * (10 + 24 / t + core / t), rel=1e-15)
    assert act.layer_bytes(s, b, h, a, t, sequence_parallel=True)["total"] == pytest.approx(
        sbh * (34 + core) / t, rel=1e-15)
    assert act.layer_bytes(s, b, h, a, t, True, "selective")["total"] == pytest.approx(
        sbh * 34 / t, rel=1e-15)
    assert act.layer_bytes(s, b, h, a, recompute="full")["total"] == 2 * sbh


S, B, H, A = 8, 2, 16, 2


def block(**kwargs):
    torch.manual_seed(0)
    return act.Block(H, A, **kwargs).to(torch.bfloat16)


def test_saved_tensors_are_the_formula_plus_layernorm_statistics():
    blk = block()
    x = torch.randn(S, B, H, dtype=torch.bfloat16, requires_grad=True)
    measured = act.saved_bytes(lambda: blk(x), exclude=blk)
    stats = 2 * 2 * S * B * 2          # two LayerNorms: mean and rstd, bfloat16, per token
    assert measured["total"] == act.layer_bytes(S, B, H, A)["total"] + stats
    masks = sum(n for _, dtype, n in measured["tensors"] if dtype == torch.bool)
    assert masks == 2 * S * B * H + A * S * S * B       # 1-byte masks: sbh twice, as²b


@pytest.mark.full  # the FLOP counter's first use costs about 3 s
def test_checkpointing_keeps_the_input_and_recomputes_one_forward():
    blk, sel = block(), block(checkpoint_core=True)
    x = torch.randn(S, B, H, dtype=torch.bfloat16, requires_grad=True)
    full = act.saved_bytes(lambda: torch.utils.checkpoint.checkpoint(
        blk, x, use_reentrant=True), exclude=blk)
    assert full["total"] == 2 * S * B * H
    selective = act.saved_bytes(lambda: sel(x), exclude=sel)
    stats = 2 * 2 * S * B * 2
    assert selective["total"] == act.layer_bytes(S, B, H, A, recompute="selective")["total"] \
        + stats
    plain, again = act.recompute_flops(blk, x), act.recompute_flops(blk, x, full=True)
    assert plain["backward"] == 2 * plain["forward"]
    assert again["backward"] == plain["backward"] + plain["forward"]


# --- full tier: one launch -------------------------------------------------------------------

@pytest.fixture(scope="module")
def runs():
    return launch(pp.chapter_runs, 2, timeout=120.0)


@pytest.mark.full  # starts processes
def test_tensor_parallel_block_equals_one_process(runs):
    tps = [r["tp"] for r in runs]
    one = tp.single_run()
    k = 2 * tps[0]["grads"][0].shape[0]                   # the hidden width
    grads = tp.assemble([r["grads"] for r in tps]) + [tps[0]["input_grad"]]
    assert relative_difference(grads, one["grads"] + [one["input_grad"]]) <= k * U64
    assert abs(float(tps[0]["loss"] - one["loss"])) <= k * U64 * float(one["loss"])
    assert torch.equal(tps[0]["loss"], tps[1]["loss"])
    activations = 16 * 16 * 8                              # the block's float64 output
    assert tps[0]["forward_bytes"] == {"all_reduce": activations}
    assert tps[0]["pass_bytes"] == {"all_reduce": 2 * activations}


@pytest.mark.full  # starts processes
def test_optimizers_on_tensor_parallel_shards(runs):
    tps = [r["tp"] for r in runs]
    one = tp.single_run()
    k = 2 * tps[0]["grads"][0].shape[0]
    assert relative_difference(tp.assemble([r["adamw"] for r in tps]), one["adamw"]) <= k * U64
    assert tps[0]["adamw_step_bytes"] == {}
    for mode, close in (("whole", True), ("block", False)):
        weights = [torch.cat([r[f"muon_{mode}"][0] for r in tps], 0),
                   torch.cat([r[f"muon_{mode}"][1] for r in tps], 1)]
        gap = relative_difference(weights, one["muon"])
        assert (gap <= 1e-14) if close else (gap > 1e-3)
    matrices = (32 * 16 + 16 * 32) * 8
    assert tps[0]["muon_whole_step_bytes"] == {"all_gather": matrices}
    assert tps[0]["muon_block_step_bytes"] == {}


@pytest.mark.full  # starts processes
@pytest.mark.parametrize("kind", pp.SCHEDULES)
@pytest.mark.parametrize("micro", pp.MICRO)
def test_pipeline_equals_one_process_with_the_bubble_of_the_formula(runs, kind, micro):
    mine = [r["pp"][(kind, micro)] for r in runs]
    single = pp.single_run(micro)
    for got, want in ((mine[0]["grads"] + mine[1]["grads"], single["grads"]),
                      (mine[0]["params"] + mine[1]["params"], single["params"])):
        assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
    span = max(m["end"] for m in mine)
    assert all(m["busy"] == micro * (pp.T_FORWARD + pp.T_BACKWARD) for m in mine)
    assert Fraction(int(span - mine[0]["busy"]), int(span)) == Fraction(1, micro + 1)
    held = [m["peak_held"] for m in mine]
    assert held == ([micro, micro] if kind == "gpipe" else [min(micro, 2), 1])
