r"""Schedulers made of schedulers: one after another (``SequentialLR``) or all at once (chained)."""

from __future__ import annotations

import copy
from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

import torch

from optedu.optim._validation import invalid
from ._base import _TRANSIENT, LRScheduler
from .plateau import ReduceLROnPlateau

__all__ = ["SequentialLR", "ChainedScheduler"]


def _check_members(owner: str, schedulers: Sequence[Any], optimizer: torch.optim.Optimizer,
                   allowed: tuple[type, ...], what: str) -> None:
    if len(schedulers) < 1:
        raise ValueError(f"{owner} expects at least one scheduler, but got no scheduler.")
    scheduler: Any
    for i, scheduler in enumerate(schedulers):
        if isinstance(scheduler, (ReduceLROnPlateau, torch.optim.lr_scheduler.ReduceLROnPlateau)):
            raise ValueError(
                f"{owner} does not support `ReduceLROnPlateau` scheduler as it requires additional "
                "kwargs to be specified when calling `step`, but got one at index "
                f"{i} in the given schedulers sequence.")
        if not isinstance(scheduler, allowed):
            raise TypeError(f"{owner} at index {i} should be {what}, got {type(scheduler).__name__}")
        if getattr(scheduler, "optimizer", None) is not optimizer:
            raise ValueError(f"{owner} expects all schedulers to belong to the same optimizer, but "
                             f"got scheduler {type(scheduler).__name__} at index {i} with another "
                             "optimizer")


def _undo_initial_step(scheduler: Any) -> None:
    """Take back the step a scheduler made at construction (recursively through composites)."""
    if hasattr(scheduler, "_schedulers"):
        for inner in scheduler._schedulers:
            _undo_initial_step(inner)
    else:
        scheduler.last_epoch -= 1


class _Composite(LRScheduler):
    """State of a scheduler made of schedulers: its own attributes plus one dict per member."""

    _schedulers: list[Any]

    def state_dict(self) -> dict[str, Any]:
        state = {key: copy.deepcopy(value) for key, value in vars(self).items()
                 if key not in _TRANSIENT and key != "_schedulers"}
        state["_schedulers"] = [scheduler.state_dict() for scheduler in self._schedulers]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.__dict__.update({key: copy.deepcopy(value) for key, value in state_dict.items()
                              if key not in _TRANSIENT and key != "_schedulers"})
        for scheduler, state in zip(self._schedulers, state_dict["_schedulers"]):
            scheduler.load_state_dict(state)


class SequentialLR(_Composite):
    r"""Run ``schedulers[0]`` until ``milestones[0]``, then ``schedulers[1]``, and so on.

    At milestone :math:`m_i` the next scheduler starts from its step 0 (``last_epoch = 0``), at
    the rate its closed form gives there -- e.g. warmup with ``LinearLR`` for 5 steps, then
    ``CosineAnnealingLR`` from the full rate. Construction resets every group to
    ``initial_lr``, takes back the initial step each member made when it was built, and makes
    the initial step of the first one.

    Args:
        optimizer: the optimizer all members drive.
        schedulers: optedu schedulers, in order (no ``ReduceLROnPlateau``).
        milestones: steps at which to switch; one fewer than ``schedulers``, increasing.
        last_epoch: ``-1`` to start.

    Differences from torch: milestones must be increasing integers (torch searches them with
    ``bisect``, which silently misbehaves otherwise), and members must be optedu schedulers.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, schedulers: list[LRScheduler],
                 milestones: list[int], last_epoch: int = -1) -> None:
        _check_members(type(self).__name__, schedulers, optimizer, (LRScheduler,),
                       "an optedu scheduler")
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                "Sequential Schedulers expects number of schedulers provided to be one more than "
                f"the number of milestone points, but got number of schedulers {len(schedulers)} "
                f"and the number of milestones to be equal to {len(milestones)}")
        milestones = list(milestones)
        if (not all(isinstance(m, int) and not isinstance(m, bool) for m in milestones)
                or any(a >= b for a, b in zip(milestones, milestones[1:]))):
            raise invalid("milestones", milestones, "increasing integers")
        self._schedulers = list(schedulers)
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        for scheduler in self._schedulers:
            _undo_initial_step(scheduler)
        first = self._schedulers[bisect_right(self._milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    def step(self) -> None:
        self.last_epoch += 1
        index = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[index]
        if index > 0 and self._milestones[index - 1] == self.last_epoch:
            scheduler._restart()  # hand over: the next scheduler starts at its step 0
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()


class ChainedScheduler(_Composite):
    r"""Step several chainable schedulers together; their factors multiply.

    E.g. ``ExponentialLR`` and ``ConstantLR`` on one optimizer: each ``step()`` steps both, in
    order, each scaling the rate the previous one left. Nothing happens at construction.

    Args:
        schedulers: schedulers of one optimizer (optedu's or torch's; no ``ReduceLROnPlateau``).
        optimizer: that optimizer (default: the first scheduler's).
    """

    def __init__(self, schedulers: Sequence[Any],
                 optimizer: torch.optim.Optimizer | None = None) -> None:
        if len(schedulers) < 1:
            raise ValueError(f"{type(self).__name__} expects at least one scheduler to be chained, "
                             "but got no scheduler.")
        optimizer = optimizer or schedulers[0].optimizer
        _check_members(type(self).__name__, schedulers, optimizer,
                       (LRScheduler, torch.optim.lr_scheduler.LRScheduler), "a scheduler")
        self._schedulers = list(schedulers)
        self.optimizer = optimizer
        self._last_lr = self._current_lrs()

    def step(self) -> None:
        for scheduler in self._schedulers:
            scheduler.step()
        self._last_lr = self._current_lrs()
