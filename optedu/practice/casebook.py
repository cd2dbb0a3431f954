r"""Broken training runs, and their fixes, for the casebook.

One small training loop, :func:`train`, with a switch for each classic bug,
so that a case of the casebook is a few lines: build a model and an optimizer,
call :func:`train` twice (broken and fixed), draw both with
:func:`plot_symptoms`. Every run records what a practitioner would watch:

* the mini-batch loss of each optimizer step (the mean over its
  micro-batches when gradients are accumulated), and
* the total gradient norm :math:`\|g_t\|_2` seen by the optimizer, measured
  after backward and before clipping (with :func:`optedu.training.clip.get_total_norm`,
  as :class:`optedu.training.monitor.GradNormMonitor` does).

The data is scikit-learn's digits (8×8 images, 10 classes), scaled to
:math:`[0, 1]`; the models are small MLPs (:func:`mlp`), optionally with a
LayerNorm after each hidden layer. Everything is seeded: a run is a function
of its arguments.

The large-run cases bring their own loops and logs: :func:`train_on` trains on
the batches it is given (a ``DataLoader`` restored from a checkpoint, say) and
records the same two numbers; :func:`plot_signs` draws any statistics a run
logs per step (an attention logit, a data position) or per tensor (as bars).
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

import torch
import torch.nn.functional as F
from torch import nn

from optedu.training.clip import clip_grad_norm_, get_total_norm

__all__ = ["Run", "digits", "mlp", "full_loss", "train", "train_on",
           "plot_symptoms", "plot_signs", "sgd_restarts"]


@dataclass
class Run:
    """What one training run recorded, step by step (one entry per
    optimizer step)."""

    losses: list[float] = field(default_factory=list)
    norms: list[float] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)

    @property
    def diverged(self) -> bool:
        """True if a loss or a gradient norm became NaN or infinite."""
        return not all(map(math.isfinite, self.losses + self.norms))

    def tail(self, n: int = 20) -> float:
        """Mean loss of the last ``n`` steps (NaN if the run diverged)."""
        last = self.losses[-n:]
        return math.nan if self.diverged else sum(last) / len(last)


@lru_cache(maxsize=1)
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """The digits data set: inputs ``(1797, 64)`` in [0, 1] (float32) and
    labels ``(1797,)``.

    Read from the file scikit-learn ships (``load_digits`` reads the same
    file the same way; a test checks they agree) without importing
    scikit-learn, which costs more than a second of CPU.
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("the digits data comes with scikit-learn")
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    data = np.loadtxt(path, delimiter=",")
    x = torch.tensor(data[:, :-1] / 16.0, dtype=torch.float32)
    return x, torch.tensor(data[:, -1].astype(np.int64))


def mlp(seed: int = 0, width: int = 64, depth: int = 2,
        layer_norm: bool = False) -> nn.Sequential:
    """An MLP 64 → ``width`` (× ``depth`` hidden layers, ReLU) → 10, seeded;
    with ``layer_norm`` a LayerNorm follows each hidden linear layer."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    fan_in = 64
    for _ in range(depth):
        layers.append(nn.Linear(fan_in, width))
        if layer_norm:
            layers.append(nn.LayerNorm(width))
        layers.append(nn.ReLU())
        fan_in = width
    return nn.Sequential(*layers, nn.Linear(fan_in, 10))


@torch.no_grad()
def full_loss(model: nn.Module, loss_factor: float = 1.0) -> float:
    """Cross-entropy of ``model`` on the whole data set (times
    ``loss_factor``)."""
    x, y = digits()
    return loss_factor * F.cross_entropy(model(x.to(_dtype(model))), y).item()


def _dtype(model: nn.Module) -> torch.dtype:
    return next(model.parameters()).dtype


def train(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    steps: int,
    *,
    batch: int = 32,
    seed: int = 0,
    one_batch: bool = False,
    zero_grad: bool = True,
    accumulate: int = 1,
    divide_loss: bool = True,
    clip: float | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    scheduler_every: int = 1,
    scheduler_first: bool = False,
    loss_factor: float = 1.0,
    autocast: torch.dtype | None = None,
    scaler: torch.amp.GradScaler | None = None,
    run: Run | None = None,
) -> Run:
    """Train ``model`` for ``steps`` optimizer steps on digits mini-batches.

    Args:
        model, optimizer: what to train, and with what.
        steps: number of optimizer steps.
        batch: examples per optimizer step (split into ``accumulate``
            micro-batches).
        seed: seed of the mini-batch sampler (with replacement).
        one_batch: draw nothing: every step uses the first ``batch``
            examples (the test "can the loop overfit one batch?").
        zero_grad: call ``optimizer.zero_grad()`` before each step's
            backward passes (``False``: the bug, gradients pile up).
        accumulate: micro-batches whose gradients are summed per step.
        divide_loss: divide each micro-batch loss by ``accumulate`` before
            backward (``False``: the bug, the summed gradient is
            ``accumulate`` times the mean).
        clip: ``max_norm`` of :func:`optedu.training.clip.clip_grad_norm_`
            (``None``: no clipping).
        scheduler: an LR scheduler, stepped once every ``scheduler_every``
            optimizer steps (a scheduler built per step and stepped per epoch
            has ``scheduler_every`` = steps per epoch).
        scheduler_first: step the scheduler at the start of each period,
            before ``optimizer.step()`` (the bug; torch warns about it when
            the first ``scheduler.step()`` comes before the first
            ``optimizer.step()``).
        loss_factor: multiplies the loss (a loss on a smaller scale gives
            gradients on a smaller scale).
        autocast: run forward and backward under
            ``torch.autocast("cpu", dtype=autocast)`` (e.g.
            ``torch.float16``).
        scaler: a ``torch.amp.GradScaler("cpu")`` for loss scaling (the
            recorded norm is the unscaled one).
        run: a :class:`Run` to append to (to continue a run).

    Returns the :class:`Run`; the recorded loss is the unscaled mini-batch
    loss of each step, the norm is taken after backward, before clipping.
    """
    x, y = digits()
    x = x.to(_dtype(model))
    run = Run() if run is None else run
    sampler = torch.Generator().manual_seed(seed)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    every = list(model.parameters())  # the norm covers every tensor
    micro = batch // accumulate
    for t in range(steps):
        if zero_grad:
            optimizer.zero_grad()
        step_loss = 0.0
        for i in range(accumulate):
            idx = (torch.arange(i * micro, (i + 1) * micro) if one_batch else
                   torch.randint(0, len(x), (micro,), generator=sampler))
            with torch.autocast("cpu", dtype=autocast or torch.bfloat16,
                                enabled=autocast is not None):
                out = model(x[idx])
            loss = loss_factor * F.cross_entropy(out.float(), y[idx])
            step_loss += loss.item() / accumulate
            if divide_loss:
                loss = loss / accumulate
            (loss if scaler is None else scaler.scale(loss)).backward()
        if scaler is not None:
            scaler.unscale_(optimizer)
        run.losses.append(step_loss)
        run.norms.append(get_total_norm(
            [p.grad for p in every if p.grad is not None]).item())
        if clip is not None:
            clip_grad_norm_(params, clip)
        due = scheduler is not None and (t + 1) % scheduler_every == 0
        if scheduler is not None and scheduler_first and t % scheduler_every == 0:
            scheduler.step()                  # at the start of each period
            due = False
        run.lrs.append(optimizer.param_groups[0]["lr"])  # the rate used
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        if scheduler is not None and due and not scheduler_first:
            scheduler.step()
    return run


def train_on(model: nn.Module, optimizer: torch.optim.Optimizer,
             batches: Iterator, steps: int, *, run: Run | None = None) -> Run:
    """Train ``model`` for ``steps`` optimizer steps on the batches that
    ``batches`` yields, ``(inputs, labels, ...)`` tuples (e.g. from a
    ``DataLoader``; entries after the labels are ignored), recording the
    mini-batch loss and the gradient norm of each step as :func:`train`
    does (appended to ``run`` if given)."""
    if steps < 0:
        raise ValueError(f"Invalid steps: {steps}")
    run = Run() if run is None else run
    params = list(model.parameters())
    for _ in range(steps):
        x, y = next(batches)[:2]
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x.to(_dtype(model))).float(), y)
        loss.backward()
        run.losses.append(loss.item())
        run.norms.append(get_total_norm(
            [p.grad for p in params if p.grad is not None]).item())
        run.lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
    return run


def plot_signs(panels: dict[str, dict[str, Sequence[float] | Mapping[str, float]]],
               *, log: Sequence[str] = (), start: int = 1,
               marks: Sequence[float] = (),
               figsize: tuple[float, float] = (7.0, 2.8)):
    """One panel per entry of ``panels``, ``{y label: {run label: values}}``:
    the warning signs a run logs (a loss, an attention logit, a data
    position, a statistic per tensor).

    Args:
        panels: the panels, left to right. A run's values are either one
            number per step, drawn as a line against the step, or a mapping
            ``{name: value}`` (one number per tensor, say), drawn as bars
            grouped by name. A run label keeps its colour in every panel.
        log: the y labels of the panels drawn on a logarithmic axis.
        start: number of the first step.
        marks: steps marked by a dotted vertical line in every line panel
            (a resume, a change of data).

    Non-finite values are not drawn; a line whose values stop being finite
    is marked with a cross at its last finite value, labelled "diverged".
    Returns the figure.
    """
    import matplotlib.pyplot as plt

    unknown = sorted(set(log) - set(panels))
    if unknown:
        raise ValueError(f"Invalid log: {unknown} (not a panel)")
    fig, axes = plt.subplots(1, len(panels), figsize=figsize, squeeze=False)
    colours: dict[str, str] = {}
    for ax, (ylabel, series) in zip(axes[0], panels.items()):
        bars = {label: values for label, values in series.items()
                if isinstance(values, Mapping)}
        for k, label in enumerate(bars):
            names = list(bars[label])
            colour = colours.setdefault(label, f"C{len(colours)}")
            width = 0.8 / len(bars)
            ax.bar([i + (k - (len(bars) - 1) / 2) * width
                    for i in range(len(names))],
                   [bars[label][n] for n in names], width, color=colour,
                   label=label)
            ax.set_xticks(range(len(names)), names, fontsize=8, rotation=30,
                          ha="right")
        longest = 0
        for label, values in series.items():
            if isinstance(values, Mapping):
                continue
            values = [float(v) for v in values]
            longest = max(longest, len(values))
            shown = [v if math.isfinite(v) and (v > 0 or ylabel not in log)
                     else math.nan for v in values]
            colour = colours.setdefault(label, f"C{len(colours)}")
            ax.plot(range(start, start + len(values)), shown, lw=1,
                    color=colour, label=label)
            bad = [i for i, v in enumerate(values) if not math.isfinite(v)]
            good = ([i for i in range(bad[0]) if not math.isnan(shown[i])]
                    if bad else [])
            if good:
                ax.plot(start + good[-1], shown[good[-1]], "x", color=colour, ms=8)
                ax.annotate("diverged", (start + good[-1], shown[good[-1]]),
                            textcoords="offset points", xytext=(4, 6), fontsize=8)
        if longest:
            end = start + longest - 1
            pad = 0.03 * (end - start) + 0.5
            ax.set_xlim(start - pad, end + pad)
            for step in marks:
                ax.axvline(step, ls=":", lw=1, color="k")
            ax.set_xlabel("step")
        if ylabel in log:
            ax.set_yscale("log")
        ax.set_ylabel(ylabel)
        if len(series) > 1:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_symptoms(runs: dict[str, Run], *, threshold: float | None = None,
                  loss_log: bool = True, norm_log: bool = True,
                  start: int = 1,
                  figsize: tuple[float, float] = (7.0, 2.8)):
    """Two panels: the training loss and the gradient norm of each run
    against the step.

    Args:
        runs: ``{label: Run}``, drawn in order.
        threshold: draw a dashed horizontal line at this gradient norm (a
            clipping threshold), labelled ``max_norm``.
        loss_log: logarithmic loss axis (default ``True``).
        norm_log: logarithmic gradient-norm axis (default ``True``; zero
            norms are then not drawn).
        start: number of the first step (e.g. of a resumed run).

    Non-finite values are not drawn; a run whose loss became NaN or infinite
    is marked with a cross at its last finite loss, labelled "diverged".
    Returns the figure.
    """
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_norm) = plt.subplots(1, 2, figsize=figsize)
    for label, run in runs.items():
        steps = range(start, start + len(run.losses))
        loss = [v if math.isfinite(v) else math.nan for v in run.losses]
        norm = [v if math.isfinite(v) and (v > 0 or not norm_log)
                else math.nan for v in run.norms]
        line, = ax_loss.plot(steps, loss, lw=1, label=label)
        ax_norm.plot(steps, norm, lw=1, color=line.get_color(), label=label)
        if run.diverged:
            finite = [i for i, v in enumerate(loss) if not math.isnan(v)]
            if finite:
                ax_loss.plot(start + finite[-1], loss[finite[-1]], "x",
                             color=line.get_color(), ms=8)
                ax_loss.annotate("diverged", (start + finite[-1],
                                              loss[finite[-1]]),
                                 textcoords="offset points", xytext=(-40, 6),
                                 fontsize=8)
    if threshold is not None:
        ax_norm.axhline(threshold, ls="--", lw=1, color="k",
                        label="max_norm")
    if loss_log:
        ax_loss.set_yscale("log")
    if norm_log:
        ax_norm.set_yscale("log")
    ax_loss.set(xlabel="step", ylabel="training loss")
    ax_norm.set(xlabel="step", ylabel="gradient norm")
    if len(runs) > 1 or threshold is not None:
        ax_norm.legend(fontsize=8)
    fig.tight_layout()
    return fig


def sgd_restarts(model: nn.Module, optimizer: torch.optim.Optimizer,
                 cycles: int, cycle_steps: int, *, reset_state: bool,
                 seed: int = 0) -> Run:
    """Train with a cosine learning rate restarted every ``cycle_steps``
    steps (SGDR-style, from each group's ``initial_lr``, down to 0); with
    ``reset_state`` the optimizer's state (e.g. momentum buffers) is
    cleared at each restart."""
    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])
    run = Run()
    for c in range(cycles):
        if reset_state and c > 0:
            optimizer.state.clear()
        sched = torch.optim.lr_scheduler.LambdaLR(
            optimizer, _half_cosine(cycle_steps), last_epoch=-1)
        train(model, optimizer, cycle_steps, seed=seed + c, scheduler=sched,
              run=run)
    return run


def _half_cosine(n: int) -> Callable[[int], float]:
    return lambda s: 0.5 * (1 + math.cos(math.pi * min(s, n) / n))

