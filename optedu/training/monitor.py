r"""Watch gradient norms during training and flag explosions and vanishing
gradients.

After ``loss.backward()`` (and before clipping),
:meth:`GradNormMonitor.record` takes the total gradient norm :math:`N_t` and
one norm per parameter group, stores them, and judges :math:`N_t` against the
statistics of the previous :math:`W` steps :math:`N_{t-W}, \dots, N_{t-1}` —
never including :math:`N_t` itself, so a spike cannot raise the bar it is
judged against:

.. math::

    \text{explosion:}\quad & N_t > \rho\,\operatorname{median}_W
        \;\;\text{or}\;\; N_t > \mu_W + k\,\sigma_W
        \;\;\text{(if } k \text{ is set)} \\
        & \;\;\text{or}\;\; N_t \text{ is NaN or } \pm\infty \\
    \text{vanishing:}\quad & N_t < \epsilon
        \;\;\text{or}\;\; N_t < \operatorname{median}_W / \rho

with factor :math:`\rho > 1`, absolute floor :math:`\epsilon`, and the
window's mean :math:`\mu_W`, population standard deviation :math:`\sigma_W`
and median. The relative rules need at least ``min_history`` previous steps;
the NaN/inf and :math:`\epsilon` rules apply from the first step. Every finite
norm enters the window, flagged or not: the median shrugs off a single spike,
while a lasting change of scale becomes the new normal after about ``W/2``
steps. NaN and infinite norms are kept in :attr:`GradNormMonitor.history` but
not in the window.

A rule that compares :math:`N_t` with a mean that *includes* :math:`N_t` masks
itself (it can never fire when :math:`W \le \rho`); that rule is kept, for
comparison only, in :mod:`optedu.training.variants.monitor`.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from optedu.optim._validation import check_greater, check_integer, check_non_negative
from .clip import get_total_norm


@dataclass(frozen=True)
class WindowStats:
    """Mean, population standard deviation and median of a window of norms."""

    count: int
    mean: float
    std: float
    median: float


@dataclass(frozen=True)
class NormRecord:
    """One recorded step: the total norm, the per-group norms, the verdicts."""

    step: int
    total: float
    groups: tuple[float, ...]
    exploding: bool
    vanishing: bool


def window_stats(values: Sequence[float]) -> WindowStats:
    """Statistics of ``values`` (at least one): mean, population std
    (ddof 0), median."""
    if not values:
        raise ValueError("window_stats needs at least one value")
    return WindowStats(count=len(values), mean=statistics.fmean(values),
                       std=statistics.pstdev(values),
                       median=statistics.median(values))


def _param_groups(source: Any) -> list[list[torch.Tensor]]:
    """Parameter groups of an optimizer, a module (one group), a tensor or an
    iterable of tensors."""
    if isinstance(source, torch.optim.Optimizer):
        return [list(group["params"]) for group in source.param_groups]
    if isinstance(source, torch.nn.Module):
        return [list(source.parameters())]
    if isinstance(source, torch.Tensor):
        return [[source]]
    return [list(source)]


class GradNormMonitor:
    r"""Record gradient norms step by step; flag explosions and vanishing
    gradients.

    Args:
        window: number of previous steps :math:`W` the statistics use
            (``>= 1``, default 100).
        factor: :math:`\rho`, how many times the windowed median counts as an
            explosion, and how many times below it counts as vanishing
            (``> 1``, default 10).
        k: optional :math:`k` of the rule :math:`N_t > \mu_W + k\sigma_W`
            (``> 0``; default ``None``, off: on a nearly constant history
            :math:`\sigma_W \approx 0` and the rule fires on noise).
        min_history: previous steps needed before the relative rules judge
            (``1 <= min_history <= window``, default ``min(10, window)``).
        floor: :math:`\epsilon`, norms below it are vanishing (``>= 0``,
            default ``0``: off).
        norm_type: order of the norms (default 2), as in
            :func:`optedu.training.clip.get_total_norm`.

    Example::

        loss.backward()
        record = monitor.record(optimizer)  # or a module, or parameters
        if record.exploding: ...
        clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    """

    def __init__(
        self,
        window: int = 100,
        factor: float = 10.0,
        *,
        k: float | None = None,
        min_history: int | None = None,
        floor: float = 0.0,
        norm_type: float = 2.0,
    ) -> None:
        check_integer("window", window, 1)
        check_greater("factor", factor, 1.0)
        if k is not None:
            check_greater("k", k)
        if min_history is None:
            min_history = min(10, window)
        check_integer("min_history", min_history, 1, window)
        check_non_negative("floor", floor)
        self.window, self.factor, self.k = window, float(factor), k
        self.min_history, self.floor = min_history, float(floor)
        self.norm_type = norm_type
        self.history: list[NormRecord] = []
        self._recent: deque[float] = deque(maxlen=window)  # the last W totals

    # -- recording -----------------------------------------------------------
    def record(self, source: Any) -> NormRecord:
        """Measure the gradients of ``source`` (optimizer, module, tensor(s)),
        judge and store."""
        groups = _param_groups(source)
        group_norms = tuple(
            float(get_total_norm([p.grad for p in g if p.grad is not None],
                                 self.norm_type))
            for g in groups
        )
        total = float(get_total_norm(
            [p.grad for g in groups for p in g if p.grad is not None],
            self.norm_type))
        return self.record_norm(total, group_norms)

    def record_norm(self, total: float,
                    groups: Iterable[float] = ()) -> NormRecord:
        """Judge and store an already computed total norm (e.g. the value
        clip_grad_norm_ returns)."""
        total = float(total)
        exploding, vanishing = self.judge(total)
        record = NormRecord(step=len(self.history) + 1, total=total,
                            groups=tuple(float(x) for x in groups),
                            exploding=exploding, vanishing=vanishing)
        self.history.append(record)
        if math.isfinite(total):  # a NaN or inf would poison every statistic
            self._recent.append(total)
        return record

    def judge(self, total: float) -> tuple[bool, bool]:
        """(exploding, vanishing) for a norm against the current window;
        stores nothing."""
        if not math.isfinite(total):
            return True, False
        exploding = False
        vanishing = total < self.floor
        if len(self._recent) >= self.min_history:
            s = window_stats(list(self._recent))
            exploding = total > self.factor * s.median       # N_t > ρ median
            if self.k is not None:                           # N_t > μ + kσ
                exploding = exploding or total > s.mean + self.k * s.std
            vanishing = (vanishing
                         or total < s.median / self.factor)  # N_t < median/ρ
        return exploding, vanishing

    # -- reading -------------------------------------------------------------
    @property
    def totals(self) -> list[float]:
        """Total norm of every recorded step."""
        return [r.total for r in self.history]

    @property
    def explosions(self) -> list[int]:
        """Steps (1-based) flagged as exploding."""
        return [r.step for r in self.history if r.exploding]

    @property
    def vanishings(self) -> list[int]:
        """Steps (1-based) flagged as vanishing."""
        return [r.step for r in self.history if r.vanishing]

    def stats(self) -> WindowStats:
        """Statistics of the last ``window`` recorded steps, the latest
        included."""
        return window_stats(list(self._recent))
