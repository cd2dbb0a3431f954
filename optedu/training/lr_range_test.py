r"""The learning-rate range test (Smith, 2017), as fastai's ``lr_find`` runs it.

Train for at most ``num_iter`` steps while the learning rate grows exponentially,

.. math::

    \eta_{g,i} = \eta_g \, r_i, \qquad r_i = s\,(e/s)^{i/(n-1)}, \qquad i = 0, \dots, n-1,

with :math:`\eta_g` each parameter group's own rate (the ramp multiplies it, so groups keep
their ratios; give every group rate 1 for absolute rates), :math:`s` = ``start_lr``,
:math:`e` = ``end_lr`` and :math:`n` = ``num_iter``. Step :math:`i` records the training loss
:math:`\ell_i` of its batch, measured before its update, and its smoothed value

.. math::

    m_i = \beta\, m_{i-1} + (1 - \beta)\,\ell_i, \quad m_{-1} = 0, \qquad
    \bar\ell_i = \frac{m_i}{1 - \beta^{i+1}}

(an exponential moving average with bias correction, fastai's ``AvgSmoothLoss``, :math:`\beta`
= 0.98). The test stops early once :math:`\bar\ell_i > d\,\min_{j \le i} \bar\ell_j` (``stop_factor``
:math:`d` = 4, fastai's rule) or the loss is not finite. Afterwards the model's parameters and
buffers, each optimizer's state and hyperparameters, every submodule's train/eval mode and
torch's CPU random generator are restored: the test leaves no trace (CUDA's, NumPy's and
Python's generators are not saved; a ``loss_fn`` that draws from them moves them on).

fastai's three suggestions (:func:`minimum`, :func:`steep`, :func:`valley`) read the smoothed
curve without its first tenth and its last five points, as ``lr_find`` passes it to them.

Differences from fastai: the exponent is :math:`i/(n-1)`, so the last step runs at ``end_lr``
(fastai's is :math:`i/n`, ending a step short of it); the rates are multipliers of the groups'
rates, not the absolute rates that fastai and torch-lr-finder set (both give every group the
same rate unless a list is passed). The test stops before the step that trips the rule (fastai
takes that step, then stops); the model is restored either way. torch-lr-finder's defaults
differ more: its ramp starts at the optimizer's rate, its smoothing is an average with weight
0.05 on the new loss without bias correction, and it stops at 5 times the best loss.

References: L. N. Smith, *Cyclical learning rates for training neural networks*, WACV 2017;
fastai's ``LRFinder`` and ``SuggestionMethod`` (Howard & Gugger, 2020).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from optedu.optim._validation import (check_greater, check_integer, check_interval,
                                      check_optimizer)

__all__ = ["RangeTest", "lr_range_test", "ramp", "smooth", "minimum", "steep", "valley",
           "SUGGESTIONS", "plot_range_test"]


def ramp(start_lr: float, end_lr: float, num_iter: int) -> list[float]:
    """The multipliers :math:`r_i = s (e/s)^{i/(n-1)}`, :math:`i = 0, \\dots, n-1`."""
    _check_ramp(start_lr, end_lr, num_iter)
    return [start_lr * (end_lr / start_lr) ** (i / (num_iter - 1)) for i in range(num_iter)]


def smooth(losses: Sequence[float], beta: float = 0.98) -> list[float]:
    """Bias-corrected exponential moving average of ``losses`` (fastai's ``AvgSmoothLoss``)."""
    check_interval("beta", beta, 0.0, 1.0)
    if beta == 1.0:
        raise ValueError(f"Invalid beta value: {beta} (expected a number in [0, 1))")
    m, out = 0.0, []
    for i, loss in enumerate(losses):
        m = beta * m + (1 - beta) * loss                  # m_i = β m_{i-1} + (1-β) ℓ_i
        out.append(m / (1 - beta ** (i + 1)))             # ℓ̄_i = m_i / (1 - β^{i+1})
    return out


def minimum(lrs: Sequence[float], losses: Sequence[float]) -> float:
    """A tenth of the rate at the lowest loss (fastai's ``minimum``)."""
    return float(lrs[int(np.argmin(losses))]) / 10


def steep(lrs: Sequence[float], losses: Sequence[float]) -> float:
    """The rate where the loss falls fastest per factor of rate: the most negative
    :math:`\\Delta \\bar\\ell / \\Delta \\log \\eta` (fastai's ``steep``), at the left end of
    that interval."""
    x, y = np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)
    slopes = np.diff(y) / np.diff(np.log(x))
    return float(x[int(np.argmin(slopes))])


def valley(lrs: Sequence[float], losses: Sequence[float]) -> float:
    """fastai's ``valley``: the longest run of points whose losses decrease (a longest
    decreasing subsequence, ending where it ends), and the rate about halfway down it
    (its start plus a third plus a sixth of its length)."""
    n = len(losses)
    longest = [1] * n              # longest decreasing subsequence ending at i
    start, end = 0, 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and longest[i] < longest[j] + 1:
                longest[i] = longest[j] + 1
            if longest[end] < longest[i]:
                end = i
                start = end - longest[end]
    third = (end - start) / 3
    return float(lrs[start + int(third) + int(third / 2)])


#: the suggestion rules by name
SUGGESTIONS: dict[str, Callable[[Sequence[float], Sequence[float]], float]] = {
    "minimum": minimum, "steep": steep, "valley": valley}


@dataclass
class RangeTest:
    """What a range test recorded.

    Attributes:
        lrs: the multiplier :math:`r_i` of every step run.
        losses: the training loss of each step's batch, before its update.
        smoothed: :math:`\\bar\\ell_i`.
        num_iter: the steps asked for (the curve is shorter if it stopped early).
        diverged: whether the stop rule ended it.
    """

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    num_iter: int
    diverged: bool
    stop_factor: float = field(default=4.0, repr=False)

    def curve(self) -> tuple[list[float], list[float]]:
        """The part of the smoothed curve the suggestions read: without the first
        ``num_iter // 10`` points and the last five (fastai's ``lr_find``)."""
        return self.lrs[self.num_iter // 10:-5], self.smoothed[self.num_iter // 10:-5]

    def suggest(self, rule: str = "valley") -> float:
        """The multiplier that ``rule`` (``"minimum"``, ``"steep"`` or ``"valley"``)
        suggests; ``nan`` if the curve is too short to read."""
        if rule not in SUGGESTIONS:
            raise ValueError(f"Invalid rule value: {rule!r} (expected one of "
                             f"{sorted(SUGGESTIONS)})")
        lrs, losses = self.curve()
        if len(lrs) < 2:
            return math.nan
        return SUGGESTIONS[rule](lrs, losses)

    def suggestions(self) -> dict[str, float]:
        return {rule: self.suggest(rule) for rule in SUGGESTIONS}

    @property
    def blow_up(self) -> float:
        """The multiplier of the last step run (where the stop rule fired, if it did)."""
        return self.lrs[-1]


def _check_ramp(start_lr: float, end_lr: float, num_iter: int) -> None:
    check_greater("start_lr", start_lr)
    check_greater("end_lr", end_lr, start_lr)
    check_integer("num_iter", num_iter, 2)


def lr_range_test(model: torch.nn.Module,
                  optimizers: torch.optim.Optimizer | Sequence[torch.optim.Optimizer],
                  loss_fn: Callable[[], torch.Tensor], *, start_lr: float = 1e-7,
                  end_lr: float = 10.0, num_iter: int = 100, beta: float = 0.98,
                  stop_factor: float = 4.0) -> RangeTest:
    """Run the range test on ``model`` with ``optimizers`` and restore both afterwards.

    Args:
        model: the module whose parameters the optimizers step (saved and restored).
        optimizers: one optimizer or several (Muon and AdamW side by side).
        loss_fn: ``() -> scalar tensor``, the training loss of the next batch; the test
            calls ``backward`` and steps.
        start_lr, end_lr: the first and last multiplier (fastai's 1e-7 and 10).
        num_iter: steps at most (fastai's 100).
        beta: smoothing of the loss (fastai's 0.98).
        stop_factor: stop once the smoothed loss exceeds this multiple of its minimum
            (fastai's 4).
    """
    _check_ramp(start_lr, end_lr, num_iter)
    check_interval("beta", beta, 0.0, 1.0)
    if beta == 1.0:
        raise ValueError(f"Invalid beta value: {beta} (expected a number in [0, 1))")
    check_greater("stop_factor", stop_factor, 1.0)
    optimizers = [optimizers] if isinstance(optimizers, torch.optim.Optimizer) \
        else list(optimizers)
    if not optimizers:
        raise ValueError("Invalid optimizers value: [] (expected at least one optimizer)")
    for o in optimizers:
        check_optimizer(o)
    saved_model = copy.deepcopy(model.state_dict())
    saved_optimizers = [copy.deepcopy(o.state_dict()) for o in optimizers]
    peaks = [[g["lr"] for g in o.param_groups] for o in optimizers]
    rng, modes = torch.get_rng_state(), [m.training for m in model.modules()]
    lrs, losses, smoothed = [], [], []
    m, best, diverged = 0.0, math.inf, False
    try:
        model.train()
        for i, r in enumerate(ramp(start_lr, end_lr, num_iter)):
            for o, group_peaks in zip(optimizers, peaks):
                for g, peak in zip(o.param_groups, group_peaks):
                    g["lr"] = peak * r                        # η_g,i = η_g · r_i
            for o in optimizers:
                o.zero_grad(set_to_none=True)
            loss = loss_fn()
            value = float(loss.detach())
            m = beta * m + (1 - beta) * value
            lrs.append(r)
            losses.append(value)
            smoothed.append(m / (1 - beta ** (i + 1)))
            best = min(best, smoothed[-1])
            if not math.isfinite(smoothed[-1]) or smoothed[-1] > stop_factor * best:
                diverged = True
                break
            loss.backward()
            for o in optimizers:
                o.step()
    finally:
        model.load_state_dict(saved_model)
        for o, state in zip(optimizers, saved_optimizers):
            o.load_state_dict(state)
        torch.set_rng_state(rng)
        for module, training in zip(model.modules(), modes):
            module.training = training
    return RangeTest(lrs, losses, smoothed, num_iter, diverged, stop_factor)


def plot_range_test(result: RangeTest, ax=None, *, scale: float = 1.0,
                    rules: Sequence[str] = tuple(SUGGESTIONS), label: str | None = None):
    """The smoothed loss against the rate (``scale`` times the multiplier; log axis), the raw
    losses faintly, and a marker at each suggestion of ``rules``. Returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.2))
    lrs = np.asarray(result.lrs) * scale
    line, = ax.plot(lrs, result.smoothed, label=label or "smoothed loss")
    ax.plot(lrs, result.losses, color=line.get_color(), alpha=0.25, lw=0.8)
    markers = {"minimum": "v", "steep": "o", "valley": "s"}
    for rule in rules:
        lr = result.suggest(rule)
        if math.isfinite(lr):
            k = int(np.argmin(np.abs(np.log(np.asarray(result.lrs)) - math.log(lr))))
            ax.plot(lr * scale, result.smoothed[k], markers.get(rule, "x"),
                    color=line.get_color(), mfc="white", label=f"{rule}: {lr * scale:.2g}")
    ax.set_xscale("log")
    finite = [v for v in result.smoothed if math.isfinite(v)]
    if finite:
        ax.set_ylim(min(finite) * 0.9 if min(finite) > 0 else None,
                    min(max(finite), result.stop_factor * min(finite)) * 1.1)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.legend(fontsize=8)
    return ax
