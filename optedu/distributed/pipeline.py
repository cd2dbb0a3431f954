r"""Pipeline parallelism: consecutive layers on consecutive ranks, micro-batches
flowing through.

Rank :math:`r` of :math:`p` holds stage :math:`r`, a run of consecutive
layers. A global batch is cut into :math:`m` micro-batches; a stage receives
a micro-batch's activations from the stage before (``recv``), runs its
layers, and sends the result on (``send``); in the backward pass the
gradient of each stage's input travels back the same way. Every stage adds
the micro-batches' gradients into ``.grad`` and, after the last one, its
optimizer steps once: one step per global batch, as in one process.

Two schedules (:func:`schedule`): **GPipe** (Huang et al., 2019) runs every
forward, then every backward, so a stage holds the activations of all
:math:`m` micro-batches; **1F1B** (PipeDream-Flush, Narayanan et al., 2021)
starts each backward as soon as it can, so stage :math:`r` holds at most
:math:`p - r` of them. Both leave the same bubble: with a forward costing
:math:`t_f` and a backward :math:`t_b`, a step takes
:math:`(m + p - 1)(t_f + t_b)` of which each stage works
:math:`m(t_f + t_b)`, an idle fraction :math:`(p-1)/(m+p-1)`.

The run measures that fraction on a logical clock: every operation lasts
:data:`T_FORWARD` or :data:`T_BACKWARD` ticks, a message carries the tick at
which its operation ended, and an operation starts when both its stage and
its input are ready. The ticks are what the schedule's dependencies allow,
whatever the machine's real speed.

Imports: :mod:`optedu.optim` and this folder.
"""

from __future__ import annotations

import copy
from typing import Any, cast

import torch
import torch.distributed as dist
from torch import nn

from optedu.optim.adam import AdamW

T_FORWARD = 1     # ticks of one micro-batch's forward pass on one stage
T_BACKWARD = 2    # and of its backward pass (about twice the forward)
SCHEDULES = ("gpipe", "1f1b")


def schedule(kind: str, stage: int, stages: int, micro: int) -> list[tuple[str, int]]:
    """The operations of one stage in order: ``("F", i)`` and ``("B", i)``
    for micro-batch ``i``.

    >>> schedule("1f1b", 0, 2, 3)
    [('F', 0), ('F', 1), ('B', 0), ('F', 2), ('B', 1), ('B', 2)]
    """
    if kind == "gpipe":
        return [("F", i) for i in range(micro)] + [("B", i) for i in range(micro)]
    if kind != "1f1b":
        raise ValueError(f"Invalid schedule value: {kind!r} (expected one of {SCHEDULES})")
    warm = min(stages - stage - 1, micro)                  # forwards before the first B
    ops = [("F", i) for i in range(warm)]
    for i in range(micro - warm):                          # steady state: one F, one B
        ops += [("F", warm + i), ("B", i)]
    return ops + [("B", i) for i in range(micro - warm, micro)]


def bubble_fraction(stages: int, micro: int) -> float:
    r"""The idle fraction of a GPipe or 1F1B step, :math:`(p-1)/(m+p-1)`."""
    return (stages - 1) / (micro + stages - 1)


def model(widths: tuple[int, ...] = (8, 16, 16, 16, 4), seed: int = 0,
          dtype: torch.dtype = torch.float64) -> nn.Sequential:
    """A tanh MLP, ``Linear → Tanh`` per layer (none after the last)."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers).to(dtype)


def stage_of(full: nn.Sequential, stage: int, stages: int) -> nn.Sequential:
    """Stage ``stage``'s layers: the linear layers shared out in order, each
    with the activation after it."""
    blocks: list[list[nn.Module]] = []
    for layer in full:
        if isinstance(layer, nn.Linear):
            blocks.append([layer])
        else:
            blocks[-1].append(layer)
    per, extra = divmod(len(blocks), stages)
    start = stage * per + min(stage, extra)
    mine = blocks[start:start + per + (stage < extra)]
    return copy.deepcopy(nn.Sequential(*[m for block in mine for m in block]))


def data(widths: tuple[int, ...], n: int = 32, seed: int = 1,
         dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """A global batch of inputs and regression targets."""
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(n, widths[0], generator=gen, dtype=dtype),
            torch.randn(n, widths[-1], generator=gen, dtype=dtype))


def _send(t: torch.Tensor, tick: float, dst: int, pending: list[Any]) -> None:
    """Send ``t`` with the tick at which it was ready, without waiting."""
    msg = torch.cat([t.detach().flatten(), t.new_tensor([tick])])
    pending.append(dist.isend(msg, dst))


def _recv(shape: tuple[int, ...], src: int, dtype: torch.dtype) -> tuple[torch.Tensor, float]:
    numel = 1
    for s in shape:
        numel *= s
    msg = torch.empty(numel + 1, dtype=dtype)
    dist.recv(msg, src)
    return msg[:-1].view(shape).clone(), float(msg[-1])


def pipeline_run(rank: int, world_size: int, kind: str = "gpipe", micro: int = 4,
                 steps: int = 2, widths: tuple[int, ...] = (8, 16, 16, 16, 4),
                 lr: float = 0.01, seed: int = 0) -> dict[str, Any]:
    """Train this rank's stage for ``steps`` global batches of ``micro``
    micro-batches under schedule ``kind``. Returns the stage's gradients after
    the first batch's backward passes, its parameters after the last step,
    the busy ticks, the last tick and the timeline ``(op, micro-batch, start
    tick)`` of the first step, the most micro-batches
    whose activations it held at once, and the bytes it sent."""
    x, y = data(widths)
    stage = stage_of(model(widths, seed), rank, world_size)
    opt = AdamW(stage.parameters(), lr=lr, weight_decay=0.1)
    first, last = rank == 0, rank == world_size - 1
    xs, ys = x.chunk(micro), y.chunk(micro)
    d_in = cast(nn.Linear, stage[0]).in_features
    out: dict[str, Any] = {"sent_bytes": 0, "peak_held": 0}
    for step in range(steps):
        clock, busy = 0.0, 0.0
        timeline: list[tuple[str, int, float]] = []
        held: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        pending: list[Any] = []
        opt.zero_grad()
        for op, i in schedule(kind, rank, world_size, micro):
            if op == "F":
                if first:
                    inp, ready = xs[i], 0.0
                else:
                    inp, ready = _recv((len(xs[i]), d_in), rank - 1, x.dtype)
                    inp.requires_grad_()
                start = max(clock, ready)
                outp = stage(inp)
                if last:                                   # the loss of micro-batch i
                    outp = ((outp - ys[i]) ** 2).mean() / micro
                else:
                    _send(outp, start + T_FORWARD, rank + 1, pending)
                    out["sent_bytes"] += outp.numel() * outp.element_size()
                timeline.append(("F", i, start))
                held[i] = (inp, outp)
                out["peak_held"] = max(out["peak_held"], len(held))
                clock, busy = start + T_FORWARD, busy + T_FORWARD
            else:
                inp, outp = held.pop(i)
                if last:
                    grad, ready = None, 0.0
                else:
                    grad, ready = _recv(tuple(outp.shape), rank + 1, x.dtype)
                start = max(clock, ready)
                timeline.append(("B", i, start))
                outp.backward(grad)                        # adds into .grad
                if not first:
                    g = cast(torch.Tensor, inp.grad)
                    _send(g, start + T_BACKWARD, rank - 1, pending)
                    out["sent_bytes"] += g.numel() * g.element_size()
                clock, busy = start + T_BACKWARD, busy + T_BACKWARD
        for work in pending:
            work.wait()
        if step == 0:
            out["grads"] = [cast(torch.Tensor, p.grad).clone() for p in stage.parameters()]
            out["busy"], out["end"], out["timeline"] = busy, clock, timeline
        opt.step()                                         # once per global batch
    out["params"] = [p.detach().clone() for p in stage.parameters()]
    return out


def single_run(micro: int = 4, steps: int = 2,
               widths: tuple[int, ...] = (8, 16, 16, 16, 4), lr: float = 0.01,
               seed: int = 0, optimizer: type[torch.optim.Optimizer] = AdamW
               ) -> dict[str, Any]:
    """The same steps in one process: the micro-batches' gradients added in
    the same order, one step per global batch of ``optimizer`` (optedu's
    AdamW, or another class with its arguments, such as torch's)."""
    x, y = data(widths)
    net = model(widths, seed)
    opt = optimizer(net.parameters(), lr=lr, weight_decay=0.1)  # type: ignore[call-arg]
    out: dict[str, Any] = {}
    for step in range(steps):
        opt.zero_grad()
        for xi, yi in zip(x.chunk(micro), y.chunk(micro)):
            (((net(xi) - yi) ** 2).mean() / micro).backward()
        if step == 0:
            out["grads"] = [cast(torch.Tensor, p.grad).clone() for p in net.parameters()]
        opt.step()
    out["params"] = [p.detach().clone() for p in net.parameters()]
    return out


MICRO = (1, 2, 4, 8)   # the micro-batch counts the chapter runs


def chapter_runs(rank: int, world_size: int) -> dict[str, Any]:
    """Everything the chapter launches, in one launch (process start-up is the
    cost): the tensor-parallel block and both schedules at each of
    :data:`MICRO`."""
    from .tensor_parallel import tp_run
    return {"tp": tp_run(rank, world_size),
            "pp": {(kind, m): pipeline_run(rank, world_size, kind, m)
                   for kind in SCHEDULES for m in MICRO}}
