"""One training run: a workload, a contestant, its hyperparameters and a seed, from the initial
weights to the validation curve and the number of steps it took to reach the target.

A run is deterministic on a given machine: the seed fixes the initial weights and the batch
order, torch runs on one thread, and nothing else is random. ``tests/choosing`` re-runs a
sample of the stored runs and compares their curves.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from optedu.instruments.reproducible import one_thread

from .contestants import Contestant, Hyper, Training, training
from .workloads import Workload

__all__ = ["Run", "run", "steps_to_target"]


@dataclass
class Run:
    """What one training run produced.

    Attributes:
        workload, contestant: names.
        hyper: the hyperparameters it ran with.
        seed: initial weights and batch order.
        steps: the step budget it ran (or the step at which it diverged).
        evals: ``[(step, validation metric), ...]``, every ``eval_every`` steps and at the end.
        train_loss: ``[(step, mean training loss of the batches since the last eval), ...]``.
        reached: the first evaluated step at which the metric was at or below the target, or
            ``None``.
        diverged: the training loss became NaN or infinite, or the step's linear algebra
            failed on non-finite statistics (Shampoo's SVD): the run stops there.
        state_bytes: bytes of optimizer state after the run.
        seconds: wall time of the run (measured, not compared: a shared machine's noise).
    """

    workload: str
    contestant: str
    hyper: Hyper
    seed: int
    steps: int
    evals: list[tuple[int, float]] = field(default_factory=list)
    train_loss: list[tuple[int, float]] = field(default_factory=list)
    reached: int | None = None
    diverged: bool = False
    state_bytes: int = 0
    seconds: float = 0.0

    @property
    def best(self) -> float:
        """The lowest validation metric measured (``inf`` if none or diverged before any)."""
        values = [v for _, v in self.evals if math.isfinite(v)]
        return min(values) if values else math.inf

    @property
    def final(self) -> float:
        return self.evals[-1][1] if self.evals else math.inf

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Run":
        data = dict(data)
        data["evals"] = [tuple(e) for e in data["evals"]]
        data["train_loss"] = [tuple(e) for e in data["train_loss"]]
        return cls(**data)


def steps_to_target(evals: list[tuple[int, float]], target: float) -> int | None:
    """The first evaluated step whose metric is at or below ``target``, else ``None``."""
    for step, value in evals:
        if value <= target:
            return step
    return None


def run(workload: Workload, contestant: Contestant, hyper: Hyper, seed: int, *,
        steps: int | None = None, target: float | None = None,
        schedule: Callable[[list[torch.optim.Optimizer], int], Training] | None = None
        ) -> Run:
    """Train ``workload``'s model from ``seed`` with ``contestant`` at ``hyper``.

    ``steps`` shortens the budget (the schedule still spans ``steps``); ``target`` overrides
    the workload's (calibration uses both). ``schedule(optimizers, steps)`` replaces the
    contestant's schedule: it returns the :class:`.contestants.Training` that drives the
    rates of ``contestant.build``'s optimizers (the chapters' experiments on warmup, 1cycle
    and ReduceLROnPlateau).
    """
    steps = workload.steps if steps is None else steps
    target = workload.target if target is None else target
    with one_thread():
        start = time.perf_counter()
        model = workload.model(seed)
        if schedule is None:
            opt = training(contestant, model, hyper, steps=steps, head=workload.head)
        else:
            opt = schedule(contestant.build(model, dict(hyper), workload.head), steps)
        result = Run(workload.name, contestant.name, dict(hyper), seed, steps)
        batches = workload.batches(seed)
        since, count = 0.0, 0
        for t in range(steps):
            x, y = next(batches)
            loss = workload.loss(model, x, y)
            if not torch.isfinite(loss):
                result.diverged, result.steps = True, t
                result.evals.append((t, math.inf))
                break
            opt.zero_grad()
            loss.backward()
            try:
                opt.step(t)
            except torch.linalg.LinAlgError:  # a root of statistics gone non-finite
                result.diverged, result.steps = True, t
                result.evals.append((t, math.inf))
                break
            opt.after_step(t)
            since, count = since + float(loss.detach()), count + 1
            done = t + 1
            if done % workload.eval_every == 0 or done == steps:
                opt.eval()
                value = workload.evaluate(model)
                opt.train()
                result.evals.append((done, value if math.isfinite(value) else math.inf))
                result.train_loss.append((done, since / count))
                since, count = 0.0, 0
                if math.isfinite(value):
                    opt.after_eval(done, value)
        result.reached = steps_to_target(result.evals, target)
        result.state_bytes = opt.state_bytes()
        result.seconds = time.perf_counter() - start
        return result
