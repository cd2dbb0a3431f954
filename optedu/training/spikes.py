r"""Loss spikes: a detector, and the rollback-and-skip policy around any
training loop.

:class:`SpikeDetector` judges the loss :math:`L_t` and each layer's update
norm :math:`\|\Delta\theta^{(l)}_t\|` with
:class:`~optedu.training.monitor.GradNormMonitor`'s windowed rule: a value
spikes when it is non-finite or exceeds :math:`\rho` times the median of the
previous :math:`W` values (never including itself).

:class:`RollbackGuard` keeps the last good states in memory (model,
optimizer and scheduler ``state_dict``\ s, the detector and torch's random
generators, the CPU's and each GPU's, deep-copied, on the device the tensors live on) every ``every`` steps. On a spike it restores the
oldest kept state and skips every batch drawn since it — the batches that
caused the spike and the ones seen during it — then carries on with the next
batch, as PaLM's training did by hand (restart before the spike, skip the
batches around it; reported by Molybog et al., 2023). After
``max_rollbacks`` rollbacks in a row it raises: a spike that keeps coming back
is a setting to change (rate, :math:`\beta_2`, :math:`\epsilon`, clipping,
QK-normalisation), not bad luck. Rollbacks count as in a row until the run has
kept ``keep`` new states since the last one (``keep·every`` steps without a
flag): isolated spikes far apart never add up to the cap. :func:`train_with_rollback` is the loop
written with it.

:func:`qk_clip_` is MuonClip's QK-clip (Kimi Team, 2025) applied after any
optimizer's step: every head whose largest logit :math:`S_h` exceeds
:math:`\tau` has its query and key weights multiplied by
:math:`\sqrt{\gamma_h}`, :math:`\gamma_h = \tau / S_h`, so that its logits
shrink by :math:`\gamma_h`.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from torch import nn

from optedu.optim._validation import check_greater, check_integer
from .checkpoint import set_torch_rng_state, torch_rng_state
from .clip import clip_grad_norm_
from .layer_stats import UpdateRatios
from .monitor import GradNormMonitor


@dataclass(frozen=True)
class Spike:
    """One judged step: its index in the batch stream, whether the loss
    spiked, and the layers whose update norm did."""

    index: int
    loss: float
    loss_spiked: bool
    layers: tuple[str, ...] = ()

    @property
    def fired(self) -> bool:
        return self.loss_spiked or bool(self.layers)


class SpikeDetector:
    r"""Flag loss spikes and per-layer update-norm spikes with the windowed
    median rule of :class:`~optedu.training.monitor.GradNormMonitor` (one
    monitor for the loss, one per layer).

    Args:
        window: previous steps :math:`W` each median uses (default 50).
        loss_factor: :math:`\rho` for the loss (``> 1``, default 2).
        update_factor: :math:`\rho` for each layer's update norm (``> 1``,
            default 10); ``None`` watches the loss only.
        min_history: steps before the relative rules judge (default
            ``min(10, window)``); a non-finite value spikes from the start.
    """

    def __init__(self, window: int = 50, loss_factor: float = 2.0,
                 update_factor: float | None = 10.0,
                 min_history: int | None = None) -> None:
        check_integer("window", window, 1)
        check_greater("loss_factor", loss_factor, 1.0)
        if update_factor is not None:
            check_greater("update_factor", update_factor, 1.0)
        self.window, self.update_factor = window, update_factor
        self.min_history = min(10, window) if min_history is None else min_history
        self.loss = GradNormMonitor(window, loss_factor, min_history=self.min_history)
        self.updates: dict[str, GradNormMonitor] = {}

    def record(self, index: int, loss: float,
               update_norms: dict[str, float] | None = None) -> Spike:
        """Judge and store one step's loss and (optionally) update norms."""
        loss = float(loss)
        loss_spiked = self.loss.record_norm(loss).exploding
        layers = []
        if self.update_factor is not None and update_norms:
            for name, norm in update_norms.items():
                monitor = self.updates.setdefault(name, GradNormMonitor(
                    self.window, self.update_factor, min_history=self.min_history))
                if monitor.record_norm(norm).exploding:
                    layers.append(name)
        return Spike(index, loss, loss_spiked, tuple(layers))


@dataclass
class _State:
    position: int           # index of the first batch not yet trained on
    model: dict
    optimizer: dict
    scheduler: dict | None
    detector: SpikeDetector
    rng: dict               # torch's generators, CPU and each GPU


@dataclass
class RollbackReport:
    """What :class:`RollbackGuard` did: every judged step (the losses of the
    trajectory kept and of the steps undone), the spikes, the batches
    skipped, and the rollbacks."""

    steps: list[Spike] = field(default_factory=list)
    spikes: list[Spike] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    rollbacks: int = 0


class RollbackGuard:
    r"""Rollback-and-skip around a training loop.

    Args:
        model, optimizer: what is trained.
        scheduler: a learning-rate scheduler stepped once per batch, or
            ``None``.
        detector: a :class:`SpikeDetector` (default: its defaults).
        every: steps between kept states (default 10).
        keep: how many states are kept (default 2); a spike restores the
            oldest, between ``(keep-1)·every`` and ``keep·every`` steps back,
            so that a state taken while the trouble was already brewing is
            not the one restored.
        max_rollbacks: rollbacks in a row allowed before
            :class:`RuntimeError` (default 3); the count restarts once
            ``keep`` states have been kept since the last rollback.

    Use::

        guard = RollbackGuard(model, optimizer, scheduler)
        for i, batch in enumerate(batches):
            loss = loss_fn(model, batch); optimizer.zero_grad(); loss.backward()
            guard.before_step()
            optimizer.step(); scheduler.step()
            guard.after_step(i, loss)   # restores and returns the spike, or None
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer,
                 scheduler: Any = None, detector: SpikeDetector | None = None, *,
                 every: int = 10, keep: int = 2, max_rollbacks: int = 3) -> None:
        check_integer("every", every, 1)
        check_integer("keep", keep, 1)
        check_integer("max_rollbacks", max_rollbacks, 0)
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.detector = SpikeDetector() if detector is None else detector
        self.every, self.max_rollbacks = every, max_rollbacks
        self.report = RollbackReport()
        self._ratios = UpdateRatios(model)
        self._states: deque[_State] = deque(maxlen=keep)
        self._since = 0
        self._in_a_row = 0         # rollbacks since the run last kept `keep` new states
        self._kept_since = 0       # states kept since the last rollback
        self._states.append(self._capture(0))

    def _capture(self, position: int) -> _State:
        return _State(position, copy.deepcopy(self.model.state_dict()),
                      copy.deepcopy(self.optimizer.state_dict()),
                      None if self.scheduler is None
                      else copy.deepcopy(self.scheduler.state_dict()),
                      copy.deepcopy(self.detector), torch_rng_state())

    def _restore(self, state: _State) -> None:
        # deep copies again: load_state_dict may alias the tensors it is given
        self.model.load_state_dict(copy.deepcopy(state.model))
        self.optimizer.load_state_dict(copy.deepcopy(state.optimizer))
        if self.scheduler is not None:
            self.scheduler.load_state_dict(copy.deepcopy(state.scheduler))
        self.detector = copy.deepcopy(state.detector)
        set_torch_rng_state(state.rng)

    def before_step(self) -> None:
        """Call just before ``optimizer.step()`` (copies the parameters)."""
        self._ratios.before()

    def after_step(self, index: int, loss: float | torch.Tensor) -> Spike | None:
        """Judge the step just taken on batch ``index`` (its position in the
        stream) with loss ``loss``; on a spike restore the oldest kept state,
        record the skipped batches and return the spike."""
        if isinstance(loss, torch.Tensor):
            loss = loss.detach()
        judged = self.detector.record(index, float(loss), self._ratios.norms())
        self.report.steps.append(judged)
        if not judged.fired:
            self._since += 1
            if self._since == self.every:
                self._states.append(self._capture(index + 1))
                self._since = 0
                self._kept_since += 1
                if self._kept_since >= cast(int, self._states.maxlen):
                    self._in_a_row = 0                      # the trouble is behind
            return None
        self.report.spikes.append(judged)
        self.report.rollbacks += 1
        self._in_a_row += 1
        if self._in_a_row > self.max_rollbacks:
            raise RuntimeError(
                f"spike at batch {index} after {self.max_rollbacks} rollbacks in a row: "
                "the spikes come back, so change a setting (learning rate, beta2, eps, "
                "clipping, warmup, QK-norm) instead of skipping more data")
        state = self._states[0]
        self._restore(state)
        self._states.clear()
        self._states.append(state)
        self._since = self._kept_since = 0
        self.report.skipped.extend(i for i in range(state.position, index + 1)
                                   if i not in self.report.skipped)
        return judged


def train_with_rollback(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[Any],
    loss_fn: Callable[[nn.Module, Any], torch.Tensor],
    *,
    scheduler: Any = None,
    detector: SpikeDetector | None = None,
    every: int = 10,
    keep: int = 2,
    max_rollbacks: int = 3,
    max_norm: float | None = None,
) -> RollbackReport:
    """Train on every batch of ``batches`` with a :class:`RollbackGuard`:
    ``loss_fn(model, batch)`` gives the loss; gradients clipped to
    ``max_norm`` if given; ``scheduler`` stepped once per batch."""
    if max_norm is not None:
        check_greater("max_norm", max_norm)
    guard = RollbackGuard(model, optimizer, scheduler, detector, every=every, keep=keep,
                          max_rollbacks=max_rollbacks)
    for index, batch in enumerate(batches):
        loss = loss_fn(model, batch)
        optimizer.zero_grad()
        loss.backward()
        if max_norm is not None:
            clip_grad_norm_(model.parameters(), max_norm)
        guard.before_step()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        guard.after_step(index, loss.detach())
    return guard.report


@torch.no_grad()
def qk_clip_(module: nn.Module, maxima: torch.Tensor, tau: float) -> torch.Tensor:
    r"""MuonClip's QK-clip on a packed-QKV attention module (an ``nn.Linear``
    ``qkv`` with output :math:`[q\,|\,k\,|\,v]`, heads contiguous, and an
    integer ``heads``): for each head :math:`h` with largest logit
    :math:`S_h > \tau` (``maxima``, e.g. from
    :class:`~optedu.training.layer_stats.AttentionLogits`), multiply its
    query and key rows (weights and biases) by :math:`\sqrt{\gamma_h}`,
    :math:`\gamma_h = \min(1, \tau/S_h)`. Returns :math:`\gamma`. K2 takes
    :math:`S_h` as the largest signed logit of the forward pass before the
    step; :class:`~optedu.training.layer_stats.AttentionLogits` gives the
    largest absolute one, never smaller, so the clip fires at least as often.

    Kimi Team, *Kimi K2: Open Agentic Intelligence*, 2025 (it applies the
    clip per head after each Muon step; the rule does not depend on the
    optimizer).
    """
    check_greater("tau", tau)
    qkv, heads = getattr(module, "qkv", None), getattr(module, "heads", None)
    if not isinstance(qkv, nn.Linear) or not isinstance(heads, int):
        raise TypeError(f"Unsupported attention module: {type(module).__name__} "
                        "(expected a packed qkv nn.Linear and heads)")
    if maxima.shape != (heads,):
        raise ValueError(f"Invalid maxima: shape {tuple(maxima.shape)} (expected ({heads},))")
    gamma = torch.clamp(tau / maxima.double(), max=1.0)
    width = qkv.out_features // 3
    d = width // heads
    scale = gamma.sqrt().repeat_interleave(d).to(qkv.weight.dtype)   # √γ_h per row
    for part in (0, 1):                                              # q rows, k rows
        rows = slice(part * width, (part + 1) * width)
        qkv.weight[rows].mul_(scale[:, None])
        if qkv.bias is not None:
            qkv.bias[rows].mul_(scale)
    return gamma
