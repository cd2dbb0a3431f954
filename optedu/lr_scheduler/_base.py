r"""What every learning-rate scheduler shares: the step counter, the optimizer's
groups, the state.

A scheduler owns one number per parameter group, ``group["lr"]``, and rewrites
it each time ``step()`` is called. Two kinds exist:

* **closed-form** schedulers compute the new rate from the group's starting rate
  (``base_lrs``) and the step count alone (``LambdaLR``, ``CyclicLR``,
  ``OneCycleLR``, ...);
* **chainable** schedulers (:class:`ChainableLR`) compute it from the *current*
  ``group["lr"]``, multiplying it by a factor. Two chainable schedulers on one
  optimizer compose: their factors multiply (``ChainedScheduler``).

Conventions are torch 2.13's, so that sequences, checkpoints and error messages
agree:

* ``last_epoch`` counts ``step()`` calls; the constructor already makes one (the
  *initial step*), so a fresh scheduler has ``last_epoch == 0`` and has written
  the rate for step 0.
* The constructor stores each group's starting rate as ``group["initial_lr"]``
  (if absent) and copies them into ``base_lrs``. Passing ``last_epoch >= 0``
  resumes: ``initial_lr`` must then already be in every group.
* ``state_dict()`` holds every attribute but the optimizer, under torch's names,
  so a torch scheduler's state loads into the optedu one and back.
"""

from __future__ import annotations

import copy
import types
import warnings
import weakref
from collections.abc import Sequence
from typing import Any

import torch

from optedu.optim._validation import check_optimizer

__all__ = ["LRScheduler", "ChainableLR"]

# attributes that describe the running Python object, not the schedule
# (never in state_dict)
_TRANSIENT = frozenset({"optimizer", "_step_hook", "_optimizer_stepped",
                        "_is_initial", "_get_lr_called_within_step"})

ORDER_WARNING = (
    "Detected call of `lr_scheduler.step()` before `optimizer.step()`. "
    "Call them in the opposite order: `optimizer.step()` before "
    "`lr_scheduler.step()`. Otherwise the first value of the learning rate "
    "schedule is skipped."
)


def _function_state(fn: Any) -> dict[str, Any] | None:
    """How torch checkpoints a user function: a plain function or lambda is not
    saved (``None``); a callable *object* is saved as a copy of its
    ``__dict__``."""
    if fn is None or isinstance(fn, types.FunctionType):
        return None
    return copy.deepcopy(vars(fn))


def per_group(name: str, optimizer: torch.optim.Optimizer,
              value: Any) -> list[Any]:
    """``value`` for every parameter group: a list as given (right length), or
    one value repeated."""
    n = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{name} must have the same length as "
                             f"optimizer.param_groups. {name} has "
                             f"{len(value)} values, param_groups has {n}.")
        return list(value)
    return [value] * n


class LRScheduler:
    """Base class: a subclass says, in :meth:`get_lr`, what the rates are at
    ``last_epoch``.

    :meth:`step` advances ``last_epoch`` by one and writes :meth:`get_lr`'s
    rates into the optimizer's groups. Call it *after* ``optimizer.step()``; the
    first call warns otherwise, as torch does, because the rate of step 0 would
    then never be used.

    Attributes:
        optimizer: the optimizer whose ``param_groups`` are rewritten.
        base_lrs: each group's ``initial_lr``.
        last_epoch: number of ``step()`` calls, the initial step included, minus
            one.
    """

    # attributes holding user functions (one, or a list), checkpointed as
    # torch does
    _functions: tuple[str, ...] = ()

    def __init__(self, optimizer: torch.optim.Optimizer,
                 last_epoch: int = -1) -> None:
        self.optimizer = check_optimizer(optimizer)
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"param 'initial_lr' is not specified in "
                                   f"param_groups[{i}] when resuming "
                                   "scheduler with last_epoch >= 0.")
        self.base_lrs: list[float] = [group["initial_lr"]
                                      for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._watch_optimizer()
        self._initial_step()

    # -- the schedule ---------------------------------------------------------
    def get_lr(self) -> list[float]:
        """The learning rate of every group at ``last_epoch`` (called by
        :meth:`step`)."""
        raise NotImplementedError

    def closed_form_lr(self) -> list[float] | None:
        """The rates at ``last_epoch`` computed from ``base_lrs`` alone, or
        ``None`` if the class has no closed form. ``SequentialLR`` uses it when
        it hands over to this scheduler."""
        return None

    def step(self) -> None:
        """Advance one step and write the new rates into the optimizer."""
        if self._step_count == 1:
            self._check_order()
        self._step_count += 1
        self.last_epoch += 1
        self._write(self.get_lr())

    def get_last_lr(self) -> list[float]:
        """The learning rates this scheduler wrote last, one per group."""
        return list(self._last_lr)

    # -- plumbing -------------------------------------------------------------
    def _initial_step(self) -> None:
        """The step made by the constructor (``last_epoch`` -1 → 0);
        ``_is_initial`` marks it."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def _restart(self) -> None:
        """Jump to ``last_epoch = 0`` (how ``SequentialLR`` switches to this
        scheduler)."""
        self.last_epoch = 0
        lrs = self.closed_form_lr()
        self._write(lrs if lrs is not None else self.get_lr())

    def _write(self, lrs: Sequence[float]) -> None:
        groups = self.optimizer.param_groups
        if len(lrs) != len(groups):
            raise ValueError(f"{type(self).__name__} computed {len(lrs)} "
                             f"learning rates for {len(groups)} parameter "
                             "groups")
        for group, lr in zip(groups, lrs):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in groups]

    def _current_lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def _watch_optimizer(self) -> None:
        """Note whether ``optimizer.step()`` runs before our first ``step()`` (a
        step hook)."""
        self._optimizer_stepped = False
        me = weakref.ref(self)

        def hook(optimizer: Any, args: Any, kwargs: Any) -> None:
            scheduler = me()
            if scheduler is not None:
                scheduler._optimizer_stepped = True

        self._step_hook: Any = self.optimizer.register_step_post_hook(hook)

    def _check_order(self) -> None:
        if not getattr(self, "_optimizer_stepped", True):
            warnings.warn(ORDER_WARNING, UserWarning, stacklevel=3)
        hook = getattr(self, "_step_hook", None)
        if hook is not None:  # one check is all torch makes; stop listening
            hook.remove()
            self._step_hook = None

    # -- checkpoints ----------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimizer, under torch's attribute names.

        User functions are saved as torch saves them: nothing for a plain
        function or lambda (the code that builds the scheduler rebuilds it), the
        ``__dict__`` of a callable object.
        """
        state = {key: copy.deepcopy(value) for key, value in vars(self).items()
                 if key not in _TRANSIENT and key not in self._functions}
        for name in self._functions:
            value = getattr(self, name)
            state[name] = ([_function_state(fn) for fn in value]
                           if isinstance(value, list)
                           else _function_state(value))
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict` (ours or torch's scheduler of
        the same class)."""
        self.__dict__.update({key: copy.deepcopy(value)
                              for key, value in state_dict.items()
                              if key not in _TRANSIENT
                              and key not in self._functions})
        for name in self._functions:
            value, saved = getattr(self, name), state_dict.get(name)
            pairs = (list(zip(value, saved or []))
                     if isinstance(value, list) else [(value, saved)])
            for fn, attributes in pairs:
                if attributes is not None:
                    vars(fn).update(copy.deepcopy(attributes))

    def __repr__(self) -> str:
        # composites of torch's kind have no last_epoch
        last_epoch = getattr(self, "last_epoch", None)
        return (f"{type(self).__name__}(last_epoch={last_epoch}, "
                f"lrs={self._last_lr})")


class ChainableLR(LRScheduler):
    """A scheduler that moves each group's *current* rate, ``group["lr"]``, by a
    factor.

    Because it reads the rate it finds rather than recomputing it from
    ``base_lrs``, a change made by someone else -- another chainable scheduler,
    or a hand edit of ``group["lr"]`` -- is kept and carried forward.
    ``torch.optim.lr_scheduler`` computes these schedules the same way, so
    optedu does too, to produce the same numbers; :meth:`closed_form_lr` gives
    the formula from ``base_lrs``.
    """

    def _scaled(self, factor: float) -> list[float]:
        """Every group's current rate times ``factor``."""
        return [group["lr"] * factor for group in self.optimizer.param_groups]
