"""The contestants: an optimizer, its schedule, one workload-agnostic search space, its defaults.

A contestant is what AlgoPerf calls a submission. Under the *external tuning* ruleset it
brings one search space, the same for every workload; the benchmark draws trials from it
(:mod:`.search`) and keeps the best trial per workload. Under the *self-tuning* ruleset it
runs with its ``defaults`` only, with the same step budget: the simplest self-tuning entry
(AlgoPerf's self-tuning submissions may adapt during training and get a longer budget).

Most search spaces here have the same shape: the peak learning rate ``lr``, the weight decay
``weight_decay`` and ``one_minus_beta1`` (1 − β₁, or 1 − momentum), each log-uniform over a
range of two to three decades around the values the literature and the libraries use for that
rule (RMSprop and Adadelta search their averaging constant instead of a momentum; Adagrad has
no third dimension). The calibration's best rates (:mod:`.calibrate`) lie inside these
ranges except twice, at the top: Nesterov momentum's 3 on the sigmoid autoencoder and AdamW's
0.1 on the CNN with BatchNorm. A schedule multiplies the peak learning rate: a linear warmup over 5 % of the steps, then
a cosine to zero (:func:`optedu.lr_scheduler.schedules.linear_warmup_cosine`). Schedule-free
AdamW takes its own warmup and no schedule: replacing the schedule is its point.

Adding one (the book's chapter "How to compare optimizers fairly" shows it end to end)::

    register(Contestant(
        name="my_adam", summary="...",
        space={"lr": (1e-4, 1e-1), "weight_decay": (1e-4, 1e-1),
               "one_minus_beta1": (0.02, 0.2)},
        defaults={"lr": 1e-3, "weight_decay": 1e-2, "one_minus_beta1": 0.1},
        build=lambda model, hp, head: [MyAdam(model.parameters(), lr=hp["lr"], ...)]))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from optedu.lr_scheduler.schedules import linear_warmup_cosine
from optedu.optim.adadelta import Adadelta
from optedu.optim.adafactor import Adafactor
from optedu.optim.adagrad import Adagrad
from optedu.optim.adam import Adam, AdamW
from optedu.optim.adamax import Adamax
from optedu.optim.catalogue import CATALOGUE
from optedu.optim.lamb import Lamb
from optedu.optim.lars import LARS
from optedu.optim.lion import Lion
from optedu.optim.muon import Muon
from optedu.optim.nadam import NAdam
from optedu.optim.radam import RAdam
from optedu.optim.rmsprop import RMSprop
from optedu.optim.schedule_free import AdamWScheduleFree, SGDScheduleFree
from optedu.optim.sgd import SGD
from optedu.precision.memory import state_bytes
from optedu.training.muon_groups import muon_adamw_groups

__all__ = ["Contestant", "CONTESTANTS", "EXCLUDED", "register", "get", "Training",
           "WARMUP_FRACTION"]

#: share of the step budget spent warming up, for every contestant
WARMUP_FRACTION = 0.05

Hyper = dict[str, float]
Space = dict[str, tuple[float, float]]
#: ``(model, hyper, head) -> optimizers``: how a contestant builds its optimizers
Build = Callable[[nn.Module, Hyper, str | None], list[torch.optim.Optimizer]]


@dataclass(frozen=True)
class Contestant:
    """One optimizer as it competes.

    Attributes:
        name: identifier (``"adamw"``).
        summary: one line for tables.
        space: hyperparameter -> ``(low, high)``, drawn log-uniformly.
        defaults: the hyperparameters of the self-tuning ruleset (a value for every key of
            ``space``), with ``source`` saying where they come from.
        build: ``(model, hyper, head) -> list of optimizers`` stepping every parameter of
            ``model`` once (Muon needs the model and its head to group its tensors).
        scheduled: whether the warmup-and-cosine schedule multiplies the learning rates.
        source: where the defaults and the search space come from.
    """

    name: str
    summary: str
    space: Space
    defaults: Hyper
    build: Build = field(repr=False)
    scheduled: bool = True
    source: str = ""

    def __post_init__(self) -> None:
        for key, (low, high) in self.space.items():
            if not 0 < low < high:
                raise ValueError(f"Invalid range for {key}: ({low}, {high})")
        if set(self.defaults) != set(self.space):
            raise ValueError(f"defaults of {self.name!r} must set exactly {sorted(self.space)},"
                             f" got {sorted(self.defaults)}")


class Training:
    """The optimizers of one run and the schedule that drives their learning rates.

    ``step(t)`` sets every group's learning rate to its peak times the schedule at step
    ``t`` (0-based), then steps every optimizer. ``eval()`` and ``train()`` switch
    schedule-free optimizers between the averaged point and the gradient point (a no-op for
    the others). A schedule that is not a function of the step (1cycle's momentum,
    ReduceLROnPlateau) subclasses it and moves the rates in ``after_step`` and
    ``after_eval``, which :func:`.trial.run` calls.
    """

    def __init__(self, optimizers: Sequence[torch.optim.Optimizer],
                 schedule: Callable[[int], float] | None) -> None:
        self.optimizers = list(optimizers)
        self.schedule = schedule
        self.peaks = [[g["lr"] for g in o.param_groups] for o in self.optimizers]
        self.train()

    def zero_grad(self) -> None:
        for o in self.optimizers:
            o.zero_grad(set_to_none=True)

    def step(self, t: int) -> None:
        if self.schedule is not None:
            factor = self.schedule(t)
            for o, peaks in zip(self.optimizers, self.peaks):
                for g, peak in zip(o.param_groups, peaks):
                    g["lr"] = peak * factor
        for o in self.optimizers:
            o.step()

    def after_step(self, t: int) -> None:
        """Called after step ``t``: where a scheduler that is not a function of the step
        (1cycle's momentum, a plateau's warmup) moves the rates; nothing here."""

    def after_eval(self, done: int, value: float) -> None:
        """Called with each finite validation value, measured after ``done`` steps (a
        ReduceLROnPlateau reads it); nothing here."""

    def eval(self) -> None:
        for o in self.optimizers:
            if hasattr(o, "eval"):
                o.eval()

    def train(self) -> None:
        for o in self.optimizers:
            if hasattr(o, "train"):
                o.train()

    def state_bytes(self) -> int:
        """Bytes of optimizer state (tensors in ``state``), all optimizers together."""
        return sum(sum(state_bytes(o).values()) for o in self.optimizers)


def schedule_for(steps: int) -> Callable[[int], float]:
    """Linear warmup over ``WARMUP_FRACTION`` of ``steps``, then a cosine to zero."""
    warmup = max(1, round(WARMUP_FRACTION * steps))
    return lambda t: linear_warmup_cosine(t, warmup_steps=warmup, total_steps=steps)


def _betas(hp: Hyper, beta2: float) -> tuple[float, float]:
    return (1.0 - hp["one_minus_beta1"], beta2)


ADAM_SPACE: Space = {"lr": (3e-4, 1e-1), "weight_decay": (1e-3, 1.0),
                     "one_minus_beta1": (0.02, 0.3)}
ADAM_DEFAULTS: Hyper = {"lr": 1e-3, "weight_decay": 1e-2, "one_minus_beta1": 0.1}

CONTESTANTS: dict[str, Contestant] = {}


def register(contestant: Contestant) -> Contestant:
    """Add ``contestant`` to the registry (a name may be registered once)."""
    if contestant.name in CONTESTANTS:
        raise ValueError(f"Duplicate contestant: {contestant.name!r}")
    CONTESTANTS[contestant.name] = contestant
    return contestant


def get(name: str) -> Contestant:
    """The contestant called ``name``."""
    try:
        return CONTESTANTS[name]
    except KeyError:
        raise ValueError(f"Invalid contestant: {name!r} (known: {sorted(CONTESTANTS)})") \
            from None


def _sgd(nesterov: bool) -> Callable[[nn.Module, Hyper, str | None], list]:
    return lambda model, hp, head: [SGD(model.parameters(), lr=hp["lr"],
                                        momentum=1.0 - hp["one_minus_beta1"],
                                        weight_decay=hp["weight_decay"], nesterov=nesterov)]


def _muon(model: nn.Module, hp: Hyper, head: str | None) -> list[torch.optim.Optimizer]:
    hidden, rest = muon_adamw_groups(model, head)
    optimizers: list[torch.optim.Optimizer] = []
    if hidden:
        optimizers.append(Muon(hidden, lr=hp["lr"], weight_decay=hp["weight_decay"],
                               momentum=1.0 - hp["one_minus_beta1"],
                               adjust_lr_fn="match_rms_adamw"))
    if rest:
        optimizers.append(AdamW(rest, lr=hp["lr"], weight_decay=hp["weight_decay"],
                                betas=_betas(hp, 0.999)))
    return optimizers


SGD_SPACE: Space = {"lr": (1e-3, 3.0), "weight_decay": (1e-6, 1e-2),
                    "one_minus_beta1": (0.02, 0.3)}
SGD_DEFAULTS: Hyper = {"lr": 1e-3, "weight_decay": 0.0, "one_minus_beta1": 0.1}
_TORCH = "torch.optim 2.13's defaults"

register(Contestant(
    "sgd_momentum", "SGD with heavy-ball momentum (coupled L2 weight decay)",
    SGD_SPACE, SGD_DEFAULTS, _sgd(False),
    source=f"{_TORCH} (lr 1e-3, no decay), momentum 0.9 as commonly used"))
register(Contestant(
    "nesterov", "SGD with Nesterov momentum (coupled L2 weight decay)",
    SGD_SPACE, SGD_DEFAULTS, _sgd(True),
    source=f"{_TORCH} (lr 1e-3, no decay), momentum 0.9 as commonly used"))
register(Contestant(
    "adam", "Adam with coupled L2 weight decay",
    {"lr": (3e-4, 1e-1), "weight_decay": (1e-6, 1e-2), "one_minus_beta1": (0.02, 0.3)},
    {"lr": 1e-3, "weight_decay": 0.0, "one_minus_beta1": 0.1},
    lambda model, hp, head: [Adam(model.parameters(), lr=hp["lr"], betas=_betas(hp, 0.999),
                                  weight_decay=hp["weight_decay"])],
    source=_TORCH))
register(Contestant(
    "adamw", "AdamW: Adam with decoupled weight decay",
    ADAM_SPACE, ADAM_DEFAULTS,
    lambda model, hp, head: [AdamW(model.parameters(), lr=hp["lr"], betas=_betas(hp, 0.999),
                                   weight_decay=hp["weight_decay"])],
    source=_TORCH))
register(Contestant(
    "nadamw", "NAdam with decoupled weight decay (AlgoPerf's baseline)",
    ADAM_SPACE, {**ADAM_DEFAULTS, "lr": 2e-3},
    lambda model, hp, head: [NAdam(model.parameters(), lr=hp["lr"], betas=_betas(hp, 0.999),
                                   weight_decay=hp["weight_decay"],
                                   decoupled_weight_decay=True)],
    source=f"{_TORCH} (NAdam's lr 2e-3); AdamW's decay 1e-2"))
register(Contestant(
    "radam", "RAdam with decoupled weight decay",
    ADAM_SPACE, ADAM_DEFAULTS,
    lambda model, hp, head: [RAdam(model.parameters(), lr=hp["lr"], betas=_betas(hp, 0.999),
                                   weight_decay=hp["weight_decay"],
                                   decoupled_weight_decay=True)],
    source=f"{_TORCH}; AdamW's decay 1e-2"))
register(Contestant(
    "adafactor", "Adafactor: factored second moments, relative step size",
    {"lr": (1e-3, 1e-1), "weight_decay": (1e-3, 1.0), "one_minus_beta1": (0.02, 0.3)},
    {"lr": 1e-2, "weight_decay": 1e-2, "one_minus_beta1": 0.1},
    # torch's Adafactor has no first moment: β₁ is not one of its arguments, so the third
    # dimension of its space is drawn and unused (the trials stay comparable in number)
    lambda model, hp, head: [Adafactor(model.parameters(), lr=hp["lr"],
                                       weight_decay=hp["weight_decay"])],
    source=f"{_TORCH} (lr 1e-2); decay 1e-2"))
register(Contestant(
    "lion", "Lion: the sign of an interpolated momentum",
    {"lr": (3e-5, 3e-3), "weight_decay": (1e-2, 10.0), "one_minus_beta1": (0.02, 0.3)},
    {"lr": 1e-4, "weight_decay": 1e-1, "one_minus_beta1": 0.1},
    lambda model, hp, head: [Lion(model.parameters(), lr=hp["lr"], betas=_betas(hp, 0.99),
                                  weight_decay=hp["weight_decay"])],
    source="Chen et al. 2023: lr 3-10 times below AdamW's, decay 3-10 times above"))
register(Contestant(
    "muon", "Muon for hidden matrices, AdamW for the rest (one rate: match_rms_adamw)",
    ADAM_SPACE, {"lr": 1e-3, "weight_decay": 0.1, "one_minus_beta1": 0.05},
    _muon,
    source=f"{_TORCH} for Muon (lr 1e-3, decay 0.1, momentum 0.95), shared with AdamW"))
register(Contestant(
    "lamb", "LAMB: Adam's direction scaled by a per-tensor trust ratio",
    {"lr": (1e-3, 1e-1), "weight_decay": (1e-3, 1.0), "one_minus_beta1": (0.02, 0.3)},
    {"lr": 1e-2, "weight_decay": 1e-2, "one_minus_beta1": 0.1},
    lambda model, hp, head: [Lamb(model.parameters(), lr=hp["lr"], betas=_betas(hp, 0.999),
                                  weight_decay=hp["weight_decay"])],
    source="optax.lamb's betas and eps; lr 1e-2, decay 1e-2 (no library default for lr)"))
register(Contestant(
    "schedule_free_adamw", "schedule-free AdamW (its own warmup, no schedule)",
    ADAM_SPACE, {"lr": 2.5e-3, "weight_decay": 1e-2, "one_minus_beta1": 0.1},
    lambda model, hp, head: [AdamWScheduleFree(model.parameters(), lr=hp["lr"],
                                               betas=_betas(hp, 0.999),
                                               weight_decay=hp["weight_decay"])],
    scheduled=False,
    source="the authors' package (lr 2.5e-3); decay 1e-2"))

L2_SPACE: Space = {"lr": (3e-4, 1e-1), "weight_decay": (1e-6, 1e-2)}

register(Contestant(
    "rmsprop", "RMSprop (coupled L2 weight decay, no momentum)",
    {**L2_SPACE, "lr": (1e-4, 1e-2), "one_minus_alpha": (1e-3, 0.1)},
    {"lr": 1e-2, "weight_decay": 0.0, "one_minus_alpha": 0.01},
    lambda model, hp, head: [RMSprop(model.parameters(), lr=hp["lr"],
                                     alpha=1.0 - hp["one_minus_alpha"],
                                     weight_decay=hp["weight_decay"])],
    source=_TORCH))
register(Contestant(
    "adagrad", "Adagrad (coupled L2 weight decay)",
    {**L2_SPACE, "lr": (1e-3, 0.3)},
    {"lr": 1e-2, "weight_decay": 0.0},
    lambda model, hp, head: [Adagrad(model.parameters(), lr=hp["lr"],
                                     weight_decay=hp["weight_decay"])],
    source=_TORCH))
register(Contestant(
    "adadelta", "Adadelta (coupled L2 weight decay)",
    {**L2_SPACE, "lr": (0.1, 10.0), "one_minus_rho": (0.01, 0.3)},
    {"lr": 1.0, "weight_decay": 0.0, "one_minus_rho": 0.1},
    lambda model, hp, head: [Adadelta(model.parameters(), lr=hp["lr"],
                                      rho=1.0 - hp["one_minus_rho"],
                                      weight_decay=hp["weight_decay"])],
    source=_TORCH))
register(Contestant(
    "adamax", "Adamax: Adam with an infinity-norm second moment (coupled L2 decay)",
    {**L2_SPACE, "one_minus_beta1": (0.02, 0.3)},
    {"lr": 2e-3, "weight_decay": 0.0, "one_minus_beta1": 0.1},
    lambda model, hp, head: [Adamax(model.parameters(), lr=hp["lr"], betas=_betas(hp, 0.999),
                                    weight_decay=hp["weight_decay"])],
    source=_TORCH))
register(Contestant(
    "lars", "LARS: momentum SGD with a per-tensor trust ratio",
    {"lr": (0.03, 10.0), "weight_decay": (1e-6, 1e-2), "one_minus_beta1": (0.02, 0.3)},
    {"lr": 1.0, "weight_decay": 0.0, "one_minus_beta1": 0.1},
    lambda model, hp, head: [LARS(model.parameters(), lr=hp["lr"],
                                  momentum=1.0 - hp["one_minus_beta1"],
                                  weight_decay=hp["weight_decay"])],
    source="optax.lars's momentum 0.9 and trust coefficient 0.001; lr 1 (no library default)"))
register(Contestant(
    "schedule_free_sgd", "schedule-free SGD (its own warmup, no schedule)",
    {"lr": (1e-2, 10.0), "weight_decay": (1e-6, 1e-2), "one_minus_beta1": (0.02, 0.3)},
    {"lr": 1.0, "weight_decay": 0.0, "one_minus_beta1": 0.1},
    lambda model, hp, head: [SGDScheduleFree(model.parameters(), lr=hp["lr"],
                                             momentum=1.0 - hp["one_minus_beta1"],
                                             weight_decay=hp["weight_decay"])],
    scheduled=False,
    source="the authors' package (lr 1.0, momentum 0.9)"))

#: optedu's optimizers that do not compete, and why (the catalogue's ``excluded``)
EXCLUDED: dict[str, str] = {rule.name: rule.excluded for rule in CATALOGUE if rule.excluded}


def training(contestant: Contestant, model: nn.Module, hyper: Hyper, *, steps: int,
             head: str | None) -> Training:
    """The optimizers of ``contestant`` on ``model`` with ``hyper``, and its schedule over
    ``steps`` (schedule-free AdamW gets its warmup as an argument instead)."""
    for key in contestant.space:
        if key not in hyper or not math.isfinite(hyper[key]):
            raise ValueError(f"Invalid hyperparameters for {contestant.name!r}: {hyper}")
    optimizers = contestant.build(model, hyper, head)
    if not contestant.scheduled:
        warmup = max(1, round(WARMUP_FRACTION * steps))
        for o in optimizers:
            for g in o.param_groups:
                if "warmup_steps" in g:
                    g["warmup_steps"] = warmup
        return Training(optimizers, None)
    return Training(optimizers, schedule_for(steps))


def describe(hyper: dict[str, Any]) -> str:
    """``lr 3.2e-03, weight_decay 1.0e-02, ...`` for logs."""
    return ", ".join(f"{k} {v:.1e}" for k, v in sorted(hyper.items()))
