r"""Many processes: data parallelism, ZeRO-1 and FSDP2 on torch.distributed.

Everything runs on one machine's CPU: ``world_size`` processes joined by the
gloo backend on 127.0.0.1, started from a notebook by :func:`launch`.

* :mod:`~optedu.distributed.launcher`: :func:`launch` (spawn, rendezvous,
  results back, errors and timeouts), :class:`RankError`;
* :mod:`~optedu.distributed.data_parallel`: :func:`average_gradients`, the
  data-parallel rule written as one all-reduce;
* :mod:`~optedu.distributed.zero`: :class:`ZeroOptimizer` (ZeRO stage 1
  around any optimizer class), its partition rule :func:`partition_sizes`
  and the bytes per rank of each stage, :func:`zero_memory`;
* :mod:`~optedu.distributed.flat_zero`: :class:`FlatZeroOptimizer`, ZeRO
  stage 1 as the ZeRO paper and DeepSpeed cut it (each group one flat buffer,
  equal pieces through tensors), its partition :func:`flat_partition`, and
  clipping by the global norm on shards, :func:`clip_grad_norm_sharded_`;
* :mod:`~optedu.distributed.comm`: :func:`count_collectives` (bytes per
  collective, recorded), the ring cost model :func:`ring_bytes_sent` and
  :func:`zero_volume`;
* :mod:`~optedu.distributed.muon`: :class:`~optedu.distributed.muon.OwnerMuon`,
  Muon on FSDP2's shards with each matrix orthogonalised once, by its owner,
  and the runs that set it beside ``optedu.Muon``'s gathered design;
* :mod:`~optedu.distributed.runs`: the runs a chapter launches (DDP, the
  by-hand all-reduce, ZeRO-1 and torch's ZeroRedundancyOptimizer, FSDP2)
  and the single-process reference; :mod:`~optedu.distributed.flat_runs`: the
  runs that set the two ZeRO-1 designs (and FSDP2's clipping) side by side;
  :mod:`~optedu.distributed.dp_runs`: DDP with ``no_sync`` and micro-batches, and
  around a BatchNorm layer (the chapter on accumulation);
* :mod:`~optedu.distributed.sharded_rules`: every optedu optimizer under FSDP2
  on two processes against one process, :func:`classify` (element-wise,
  fixed, refused), stored in ``experiments/sharded_rules.json``;
* :mod:`~optedu.distributed.tensor_parallel`: Megatron's column- then
  row-parallel MLP block (:class:`~optedu.distributed.tensor_parallel.ColumnParallelLinear`,
  :class:`~optedu.distributed.tensor_parallel.RowParallelLinear`), optimizers on
  its shards, Muon gathered or block-wise;
* :mod:`~optedu.distributed.pipeline`: two or more stages on as many ranks,
  GPipe and 1F1B schedules, the bubble on a logical clock;
* :mod:`~optedu.distributed.activations`: a GPT layer's activation bytes by
  Korthikanti et al.'s count and measured by saved-tensor hooks, with
  activation checkpointing;
* :mod:`~optedu.distributed.diloco`: DiLoCo (Douillard et al., 2023): :math:`H` local
  steps per worker, the averaged outer gradient stepped by an outer Nesterov SGD; the run on
  every rank, its single-process simulation (equal bit for bit on two ranks) and the
  data-parallel baseline;
* :mod:`~optedu.distributed.checkpoint`: sharded checkpoints with
  torch.distributed.checkpoint for ZeRO-1 and FSDP2, keyed by parameter name,
  saved on N ranks and loaded on another number, :func:`reshard`.

Imports: :mod:`optedu.optim` (argument checks), :mod:`optedu.training` (clipping) and
:mod:`optedu.precision` (state bytes), and this folder.
"""

from .comm import count_collectives, ring_bytes_sent, totals, zero_volume
from .data_parallel import average_gradients
from .flat_zero import FlatZeroOptimizer, clip_grad_norm_sharded_, flat_partition
from .launcher import LaunchTimeout, RankError, free_port, launch
from .zero import ZeroOptimizer, partition_sizes, zero_memory

__all__ = [
    "launch", "RankError", "LaunchTimeout", "free_port", "average_gradients",
    "ZeroOptimizer", "partition_sizes", "zero_memory",
    "FlatZeroOptimizer", "flat_partition", "clip_grad_norm_sharded_",
    "count_collectives", "totals", "ring_bytes_sent", "zero_volume",
]
