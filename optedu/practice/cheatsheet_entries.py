r"""The cheat sheet's written content: one :class:`Entry` per optimizer class, the closed forms of
the schedules, and the settings the measured columns run with.

Each entry is read from the optimizer's row of :mod:`optedu.optim.catalogue` (its
:class:`~optedu.optim.catalogue.Sheet`: the update rule in one line of LaTeX, what the optimizer
is used for, one pitfall and the chapter section that demonstrates the pitfall), as are the
chapter that teaches it, its place in the family tree (:data:`LINEAGE`) and its reference package
(:data:`REFERENCES`). :mod:`optedu.practice.cheatsheet` renders these beside what it reads from
the package (arguments, defaults, state bytes); ``tests/test_layout.py`` fails while an exported
optimizer has no row or its row no sheet. Imports: :mod:`optedu.optim.catalogue`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from optedu.optim.catalogue import CATALOGUE, Rule, When

__all__ = ["Entry", "ENTRIES", "LINEAGE", "SCHEDULES", "SHAPES", "SETTINGS",
           "VARIANTS", "HIDDEN_ARGUMENTS", "REFERENCES"]


@dataclass(frozen=True)
class Entry:
    """The written part of one line of the cheat sheet.

    ``rule``: LaTeX, one line (symbols of the key: :math:`g_t` the gradient,
    :math:`m_t, v_t` Adam's averages, hats their bias corrections).
    ``section``: the heading, as written in the chapter, of the section
    that demonstrates the pitfall; ``where``: its chapter, if not
    ``chapter``. ``chapter``: the notebook stem of the chapter that teaches
    the class, the catalogue's (:attr:`optedu.optim.catalogue.Rule.chapter`),
    filled in by :data:`ENTRIES`.
    """

    rule: str
    use: str
    pitfall: str
    section: str
    where: str = ""
    chapter: str = ""

    @property
    def section_chapter(self) -> str:
        return self.where or self.chapter


# each rule's written line, from its catalogue row (optedu.optim.catalogue), with its chapter
ENTRIES: dict[str, Entry] = {
    rule.name: Entry(rule.sheet.formula, rule.sheet.use, rule.sheet.pitfall,
                     rule.sheet.section, rule.sheet.where, chapter=rule.chapter)
    for rule in CATALOGUE if rule.sheet is not None}

# The family tree, read from the catalogue: for each optimizer, the rule it changes ("" for a
# root) and what it changes, in one line. Read depth-first from the roots, it is the history of
# the field as a chain of fixes, each to a named weakness of its parent.
LINEAGE: dict[str, tuple[str, str]] = {rule.name: (rule.parent, rule.change)
                                       for rule in CATALOGUE}

# The closed forms of the schedules: torch's schedulers as optedu writes
# them (optedu.lr_scheduler; η₀ the initial rate, t the scheduler's step)
# and the multipliers f(s) of optedu.lr_scheduler.schedules.
SCHEDULES: dict[str, str] = {
    "LambdaLR": r"\eta_t=\eta_0\,\lambda(t)",
    "MultiplicativeLR": r"\eta_t=\eta_{t-1}\,\lambda(t)",
    "StepLR": r"\eta_t=\eta_0\gamma^{\lfloor t/k\rfloor}",
    "MultiStepLR": r"\eta_t=\eta_0\gamma^{|\{i:\,m_i\le t\}|}",
    "ConstantLR": r"\eta_t=\eta_0\,(f\text{ if }t<T\text{ else }1)",
    "LinearLR": r"\eta_t=\eta_0\big(f_0+(f_1-f_0)\min(t,T)/T\big)",
    "ExponentialLR": r"\eta_t=\eta_0\gamma^t",
    "PolynomialLR": r"\eta_t=\eta_0\big(1-\min(t,T)/T\big)^p",
    "CosineAnnealingLR":
        r"\eta_t=\eta_{\min}+\tfrac{1}{2}(\eta_0-\eta_{\min})"
        r"(1+\cos\tfrac{\pi t}{T})",
    "CosineAnnealingWarmRestarts":
        r"\text{cosine over }T_i=T_0T_{\mathrm{mult}}^i\text{, restarted}",
    "CyclicLR": r"\eta_b+(\eta_{\max}-\eta_b)\max(0,1-|x|),\ "
                r"x=\tfrac{t}{k}-1-2\lfloor\tfrac{t}{2k}\rfloor"
                r"\ \text{(triangular)}",
    "OneCycleLR": r"\tfrac{\eta_{\max}}{d}\nearrow\eta_{\max}\searrow"
                  r"\tfrac{\eta_{\max}}{d\,d_f}\ \text{(cosine)}",
    "SequentialLR": r"\text{scheduler }i+1\text{ from milestones}[i]"
                    r"\text{ on, counting from 0 again}",
    "ChainedScheduler": r"\text{every scheduler steps in turn; recursive "
                        r"ones multiply the rate}",
    "ReduceLROnPlateau": r"\eta\leftarrow\max(f\eta,\eta_{\min})"
                         r"\text{ once more "
                         r"than patience steps pass without gain}",
    "linear_warmup_cosine": r"f=\tfrac{s+1}{w+1},\text{ then }r+\tfrac{1}{2}"
                            r"(1-r)(1+\cos\pi\min(1,\tfrac{s-w}{T-w}))",
    "linear_warmup_linear_decay": r"f=\tfrac{s+1}{w+1},\text{ then }"
                                  r"\max(0,\tfrac{T-s}{T-w})",
    "inverse_sqrt": r"f=\min\big(\tfrac{s+1}{w+1},"
                    r"\sqrt{\tfrac{w+1}{s+1}}\big)",
    "warmup_stable_decay": r"f=\tfrac{s+1}{w+1},\ \text{then }1,\ \text{then }"
                           r"1-(1-r)\,\delta(p),\ p=\min(1,\tfrac{s-w-S}{D}),\ "
                           r"\delta\in\{p,\tfrac{1-\cos\pi p}{2},\sqrt{p},p^2\}",
    "get_wsd_schedule": r"f=\tfrac{s}{w},\ \text{then }1,\ \text{then }1-\delta(p)"
                        r"\text{ (cosine: }r+(1-r)(1-\delta)\text{)},\ \text{then }r",
}

# What the measurement runs on: a float32 linear layer of 512 × 256 with
# its bias (Muon and SparseAdam: the matrix alone). Arguments torch
# requires are given (their value does not change the state); L-BFGS keeps
# a short history so that one step fills it.
SHAPES: tuple[tuple[int, ...], ...] = ((512, 256), (512,))
SETTINGS: dict[str, dict[str, Any]] = {
    "LARS": {"lr": 1e-3}, "Lamb": {"lr": 1e-3}, "StableAdamW": {"lr": 1e-3},
    "CAME": {"lr": 1e-3},
    "LBFGS": {"history_size": 3, "max_iter": 9},
    # SAM holds its base's state: measured around SGD with momentum, the
    # paper's base (the name resolves to optedu's class)
    "SAM": {"base_optimizer": "SGD", "lr": 0.1, "momentum": 0.9},
}


def _switches(rule: Rule) -> dict[str, Any]:
    """The settings that switch on the buffers of ``rule``'s state written as a
    :class:`~optedu.optim.catalogue.When`, with their values in the first of its
    ``memory_settings`` that switches them all on (the completeness check of
    ``tests/test_layout.py`` requires one)."""
    if isinstance(rule.state, str):
        return {}
    settings = list(dict.fromkeys(k.setting for k in rule.state if isinstance(k, When)))
    for run in rule.memory_settings:
        if settings and all(run.get(name) for name in settings):
            return {name: run[name] for name in settings}
    return {}


# The switches that add state, measured as a second configuration: from each
# row's When buffers (SGD's momentum, Adam's amsgrad, ...).
VARIANTS: dict[str, dict[str, Any]] = {
    rule.name: switches for rule in CATALOGUE if (switches := _switches(rule))}
# Read and checked like every argument, but not printed (every class has
# them, or they choose an implementation, not the rule).
HIDDEN_ARGUMENTS = ("params", "maximize", "foreach", "fused", "triton", "gradient_release")

# The package each optimizer torch lacks is checked against in its chapter (module, class), from
# the catalogue; LARS and Lamb are compared with optax, whose functions name their arguments
# differently, and are left out.
REFERENCES: dict[str, tuple[str, str]] = {
    rule.name: rule.reference for rule in CATALOGUE if not rule.twin and rule.same_arguments}
