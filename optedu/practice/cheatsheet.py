r"""The cheat sheet: one line per optimizer, generated from the package.

Two kinds of content, kept apart:

* **Written** (data in this file, one :class:`Entry` per optimizer class):
  the update rule in one line of LaTeX, what the optimizer is used for, one
  pitfall, the chapter that teaches it and the chapter section that
  demonstrates the pitfall. Tests check that every optimizer class optedu
  exports has an entry, that no entry names a class that does not exist, and
  that every cited section is a heading of its chapter.
* **Generated**: the arguments and their defaults, read from the class's
  signature with :mod:`inspect` (and checked against ``torch.optim``'s class
  of the same name where torch has one, :func:`default_mismatches`); the
  state tensors and bytes per parameter, measured by stepping the optimizer
  with :func:`optedu.precision.memory.stepped` and :func:`optedu.precision.memory.state_bytes`,
  set beside :func:`optedu.precision.memory.predicted_state_bytes`.

:func:`optimizer_table` and :func:`scheduler_table` render both as compact,
print-friendly HTML tables (MathJax typesets the ``\(...\)`` maths: the
tables carry the class ``mathjax_process``, without which MathJax skips an
HTML output in a MyST page, whose sections are ``mathjax_ignore``).

>>> sorted(ENTRIES) == sorted(optimizer_classes())
True
>>> literal(1e-08), literal(1 / 3), literal((0.9, 0.999))
('10⁻⁸', '1/3', '(0.9, 0.999)')
"""

from __future__ import annotations

import html
import inspect
import json
import math
import pathlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import torch

from optedu.instruments.display import power_of_ten
from optedu.precision.memory import predicted_state_bytes, state_bytes, stepped

__all__ = [
    "Entry", "ENTRIES", "SCHEDULES", "SHAPES", "SETTINGS", "VARIANTS",
    "HIDDEN_ARGUMENTS", "Measured", "optimizer_classes", "arguments",
    "REFERENCES", "torch_class", "default_mismatches", "shared_mismatches",
    "reference", "checked_against", "literal", "anchor",
    "chapter_headings", "measure", "optimizer_rows", "optimizer_table",
    "scheduler_classes", "recursive", "scheduler_rows", "scheduler_table",
    "CSS",
]


@dataclass(frozen=True)
class Entry:
    """The written part of one line of the cheat sheet.

    ``rule``: LaTeX, one line (symbols of the key: :math:`g_t` the gradient,
    :math:`m_t, v_t` Adam's averages, hats their bias corrections).
    ``chapter``: the notebook stem of the chapter that teaches the class.
    ``section``: the heading, as written in the chapter, of the section
    that demonstrates the pitfall; ``where``: its chapter, if not
    ``chapter``.
    """

    rule: str
    use: str
    pitfall: str
    chapter: str
    section: str
    where: str = ""

    @property
    def section_chapter(self) -> str:
        return self.where or self.chapter


_ADAM_STEP = r"\eta\frac{\hat m_t}{\sqrt{\hat v_t}+\epsilon}"
_SF = (r"y_t=(1-\beta)z_t+\beta x_t,\ z_{t+1}=z_t-\gamma_t GRAD"
       r",\ x_{t+1}=(1-c_{t+1})x_t+c_{t+1}z_{t+1}")
_8BIT = (r"m_t,v_t\text{ kept as }c_{q}a_b,\ "
         r"q=\arg\min_k|x/a_b-c_k|;\ ")

ENTRIES: dict[str, Entry] = {
    "SGD": Entry(
        r"b_t=\mu b_{t-1}+(1-\tau)g_t\ (b_1=g_1),\ "
        r"\theta_t=\theta_{t-1}-\eta b_t",
        "The baseline; with momentum and a step or cosine schedule, the "
        "classic recipe for vision models.",
        "torch's buffer is a sum, not an average: along a steady gradient "
        "the step tends to ηg/(1−μ), so a rate tuned for the EMA form "
        "must be multiplied by 1−μ.",
        "gradient_descent", "Three ways to write momentum", "momentum"),
    "Adagrad": Entry(
        r"G_t=G_{t-1}+g_t^2,\ \theta_t=\theta_{t-1}"
        r"-\frac{\eta\,g_t}{\sqrt{G_t}+\epsilon}",
        "Rare, badly scaled features (sparse inputs), convex problems.",
        "The sum only grows: on a moving target the rate shrinks after "
        "every change and never comes back.",
        "adagrad", "A moving target: where the rate dies"),
    "RMSprop": Entry(
        r"v_t=\alpha v_{t-1}+(1-\alpha)g_t^2,\ \theta_t=\theta_{t-1}"
        r"-\frac{\eta\,g_t}{\sqrt{v_t}+\epsilon}",
        "AdaGrad that forgets: gradients whose size changes during "
        "training.",
        "No bias correction: with v₀ = 0 the first steps are longer than "
        "η, the first one η/√(1−α).",
        "rmsprop", "The rule"),
    "Adam": Entry(
        r"\theta_t=\theta_{t-1}-" + _ADAM_STEP,
        "The default for most networks: steps of about η whatever the "
        "scale of the loss.",
        "weight_decay is L2: λθ joins g and is divided by √v̂, so weights "
        "with large gradients are hardly decayed. Use AdamW.",
        "adam", "Adam + L2 leaves the weights with large gradients undecayed", "adamw"),
    "AdamW": Entry(
        r"\theta_t=(1-\eta\lambda)\theta_{t-1}-" + _ADAM_STEP,
        "Transformers and most large models: Adam with the decay taken out "
        "of the gradient (not divided by √v̂).",
        "The decay per step is ηλ: a schedule, or a new learning rate, "
        "changes the decay too.",
        "adamw", "What a `weight_decay` number means"),
    "Adam8bit": Entry(
        _8BIT + r"\text{Adam step}",
        "Adam's state in about a quarter of the memory, for large "
        "tensors (bitsandbytes' block-wise layout).",
        "A linear code rounds the small entries of v to 0, and Adam then "
        "divides by ε: steps of η m̂/ε. Keep v in the dynamic code, better "
        "no_zero.",
        "memory", "8-bit Adam: memory against drift"),
    "AdamW8bit": Entry(
        _8BIT + r"\text{AdamW step}",
        "AdamW's state in about a quarter of the memory, for large "
        "tensors.",
        "Tensors under min_8bit_size elements (biases, small layers) keep "
        "float32 state, so a model of small tensors saves less.",
        "memory", "8-bit Adam: memory against drift"),
    "Adadelta": Entry(
        r"\Delta_t=\frac{\sqrt{u_{t-1}+\epsilon}}{\sqrt{v_t+\epsilon}}g_t,"
        r"\ \theta_t=\theta_{t-1}-\eta\Delta_t",
        "Steps in the units of θ. Sold as needing no rate, but ε then sets "
        "the step size, as a rate does.",
        "ε sets the start: the first step is about √(ε/(1−ρ)) whatever "
        "the gradient, then steps grow like √t.",
        "adadelta", r"What $\epsilon$ does at the start"),
    "Adamax": Entry(
        r"u_t=\max(\beta_2u_{t-1},|g_t|+\epsilon),\ \theta_t=\theta_{t-1}"
        r"-\frac{\eta\,m_t}{(1-\beta_1^t)u_t}",
        "Adam in the ∞-norm: the divisor is a decaying maximum of |g|, "
        "not an RMS.",
        "torch puts ε inside the max, Keras after it, the paper nowhere: "
        "the forms part when gradients near ε.",
        "adamax_nadam", r"torch's form, and where its $\epsilon$ sits"),
    "NAdam": Entry(
        r"\theta_t=\theta_{t-1}-\frac{\eta}{\sqrt{\hat v_t}+\epsilon}"
        r"\Big(\frac{(1-\mu_t)g_t}{1-\Pi_t}"
        r"+\frac{\mu_{t+1}m_t}{1-\Pi_{t+1}}\Big)",
        "Adam with Nesterov's look-ahead in the first moment.",
        "Dozat's schedule: μₜ starts at β₁/2 and nears β₁ only over a "
        "long run, so short runs use less momentum than betas says.",
        "adamax_nadam", "Dozat's momentum schedule"),
    "RAdam": Entry(
        r"\theta_t=\theta_{t-1}-\eta\hat m_t r_t\frac{\sqrt{1-\beta_2^t}}"
        r"{\sqrt{v_t}+\epsilon}\text{ if }\rho_t>5,\ "
        r"\theta_t=\theta_{t-1}-\eta\hat m_t\text{ else}",
        "Adam with a warmup built in: once ρₜ > 5, rₜ < 1 (from the variance "
        "of the adaptive rate) shortens the steps.",
        "While ρₜ ≤ 5 the steps are un-adapted, η m̂ₜ: they scale with "
        "the gradient, so large gradients give large first steps.",
        "radam", r"The switch at $\rho_t > 5$: what torch does before it"),
    "SparseAdam": Entry(
        r"i\in S_t:\ \theta_{t,i}\mathrel{-}=\eta"
        r"\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}"
        r"\frac{m_{t,i}}{\sqrt{v_{t,i}}+\epsilon}",
        "Embedding tables with sparse=True: only the rows in the batch "
        "are read and written.",
        "Bias correction counts the tensor's steps, not the row's: a "
        "rarely seen row takes steps of several η for the same gradient.",
        "sparse_adam", "A row seen rarely: the global bias correction"),
    "Lion": Entry(
        r"\theta_t=(1-\eta\lambda)\theta_{t-1}-\eta\,\mathrm{sign}"
        r"(\beta_1m_{t-1}+(1-\beta_1)g_t),\ m_t=\beta_2m_{t-1}"
        r"+(1-\beta_2)g_t",
        "AdamW's job with one state buffer instead of two.",
        "Every coordinate moves by ±η: with AdamW's rate the steps are "
        "far too long; take a smaller η and a larger λ (keep ηλ).",
        "lion", "Learning rate and decay against AdamW's"),
    "LARS": Entry(
        r"u_t=g_t+\lambda\theta,\ b_t=\mu b_{t-1}+\eta c"
        r"\frac{\|\theta\|}{\|u_t\|+\epsilon}u_t,\ \theta_t=\theta_{t-1}-b_t",
        "Large-batch SGD: each tensor moves by the same fraction of its "
        "norm.",
        "A zero-initialised bias has no trust ratio (ρ = 1): its first "
        "step is the raw η u, huge at LARS's large rates.",
        "lamb_lars", "Which tensors are excluded, and why"),
    "Lamb": Entry(
        r"u_t=\frac{\hat m_t}{\sqrt{\hat v_t}+\epsilon}+\lambda\theta,\ "
        r"\theta_t=\theta_{t-1}-\eta\frac{\|\theta\|}{\|u_t\|}u_t",
        "Large-batch Adam: a trust ratio per tensor on AdamW's direction.",
        "Each step changes a tensor by at most η‖θ‖: a tensor near zero "
        "(a bias) can grow only by a factor 1+η a step.",
        "lamb_lars", "Which tensors are excluded, and why"),
    "SGDScheduleFree": Entry(
        _SF.replace("GRAD", r"\nabla f(y_t)"),
        "SGD without a decay schedule or a fixed end: evaluate the "
        "average x.",
        "The parameters hold y while training: without optimizer.eval() "
        "you evaluate or save y, not the average x.",
        "schedule_free", "The train/eval switch"),
    "AdamWScheduleFree": Entry(
        _SF.replace("GRAD", r"\frac{\nabla f(y_t)}{\sqrt{\hat v_t}+\epsilon}"),
        "AdamW without a decay schedule or a fixed end (decay at y, "
        "through z).",
        "BatchNorm's running statistics are collected at y: after eval(), "
        "recompute them at x with a few forward passes.",
        "schedule_free", "BatchNorm: statistics collected at the wrong point"),
    "Adafactor": Entry(
        r"\hat V_t=\frac{r_tc_t}{\bar r_t},\ U_t=\frac{G_t}{\sqrt{\hat V_t}},"
        r"\ \theta_t=(1-\eta\lambda)\theta_{t-1}-\frac{\alpha_t U_t}"
        r"{\max(1,\mathrm{RMS}(U_t)/d)}",
        "Training when memory binds: a matrix's second moment kept as a "
        "row and a column.",
        "torch's version has no first moment, and in float32 its ε₁ floor "
        "binds for small gradients: updates too long, then clipped.",
        "adafactor", "What torch 2.13 chose"),
    "Muon": Entry(
        r"B_t=\mu B_{t-1}+(1-\mu)G_t,\ O_t=\mathrm{NS}_k(G_t+\mu(B_t-G_t)),"
        r"\ \theta_t=(1-\eta\lambda)\theta_{t-1}-\eta'O_t,\ "
        r"\eta'=\eta\sqrt{\max(1,\text{rows}/\text{cols})}",
        "The hidden weight matrices of a network, beside AdamW for the "
        "rest.",
        "2-D parameters only (others raise), and embeddings and the "
        "output head belong to AdamW: split with muon_adamw_groups.",
        "muon", "Muon for hidden matrices, AdamW for the rest"),
    "Rprop": Entry(
        r"\Delta_t=\mathrm{clip}(\eta_\pm\Delta_{t-1},\Delta_{\min},"
        r"\Delta_{\max}),\ \theta_t=\theta_{t-1}-\Delta_t\,"
        r"\mathrm{sign}(g_t)\ (g_t:=0\text{ after a sign flip})",
        "Small full-batch problems; blind to the scale of the loss.",
        "Breaks with mini-batches: near a minimum the signs flip at "
        "random, and the sign of an average is not the average of signs.",
        "rprop", "Why Rprop breaks with mini-batches"),
    "ASGD": Entry(
        r"\theta_t=(1-\lambda\eta_t)\theta_{t-1}-\eta_tg_t,\ "
        r"a_t=a_{t-1}+\mu_t(\theta_t-a_{t-1}),\ "
        r"\eta_t=\frac{\eta}{(1+\lambda\eta(t-1))^\alpha},\ "
        r"\mu_t=\frac{1}{\max(1,t-1-t_0)}",
        "Noisy convex problems: the average beats the last iterate's "
        "noise floor.",
        "The parameters stay the SGD iterates; the average is "
        "state['ax'], a plain copy of θ until step t0 + 2 (see t0's default).",
        "asgd", "torch's ASGD"),
    "LBFGS": Entry(
        r"\theta_{k+1}=\theta_k-t_kH_kg_k,\ H_kg_k\text{ by two loops "
        r"over the last }m\text{ pairs }(s_i,y_i)",
        "Deterministic, smooth, full-batch losses of modest size "
        "(logistic regression, style transfer).",
        "Mini-batches break the curvature pairs (y from two different "
        "losses); without a line search the chapter's run blew up.",
        "lbfgs", "Why L-BFGS is rare in deep learning"),
}

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
    "warmup_stable_decay": r"f=\tfrac{s+1}{w+1},\text{ then }1,\text{ then }"
                           r"1-(1-r)\min(1,\tfrac{s-w-S}{D})",
}

# What the measurement runs on: a float32 linear layer of 512 × 256 with
# its bias (Muon and SparseAdam: the matrix alone). Arguments torch
# requires are given (their value does not change the state); L-BFGS keeps
# a short history so that one step fills it.
SHAPES: tuple[tuple[int, ...], ...] = ((512, 256), (512,))
SETTINGS: dict[str, dict[str, Any]] = {
    "LARS": {"lr": 1e-3}, "Lamb": {"lr": 1e-3},
    "LBFGS": {"history_size": 3, "max_iter": 9},
}
# The switches that add state, measured as a second configuration.
VARIANTS: dict[str, dict[str, Any]] = {
    "SGD": {"momentum": 0.9}, "Adam": {"amsgrad": True},
    "AdamW": {"amsgrad": True}, "RMSprop": {"momentum": 0.9, "centered": True},
}
# Read and checked like every argument, but not printed (every class has
# them, or they choose an implementation, not the rule).
HIDDEN_ARGUMENTS = ("params", "maximize", "foreach")

# The package each optimizer torch lacks is checked against in its chapter
# (module, class); LARS and Lamb are compared with optax, whose functions
# name their arguments differently.
REFERENCES: dict[str, tuple[str, str]] = {
    "Lion": ("lion_pytorch", "Lion"),
    "SGDScheduleFree": ("schedulefree", "SGDScheduleFree"),
    "AdamWScheduleFree": ("schedulefree", "AdamWScheduleFree"),
    "Adam8bit": ("bitsandbytes.optim", "Adam8bit"),
    "AdamW8bit": ("bitsandbytes.optim", "AdamW8bit"),
}

ROOT = pathlib.Path(__file__).resolve().parents[2] / "book"


def optimizer_classes() -> dict[str, type]:
    """Every optimizer class in ``optedu.__all__`` (not the base class)."""
    import optedu
    classes = {name: getattr(optedu, name) for name in optedu.__all__}
    return {name: cls for name, cls in sorted(classes.items())
            if isinstance(cls, type)
            and issubclass(cls, torch.optim.Optimizer)
            and cls is not optedu.Optimizer}


def arguments(cls: Any) -> dict[str, Any]:
    """The arguments of ``cls`` by name, with their defaults read from its
    signature (``inspect.Parameter.empty`` where there is none)."""
    return {name: p.default
            for name, p in inspect.signature(cls).parameters.items()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def torch_class(name: str) -> Any:
    """``torch.optim.<name>`` or ``torch.optim.lr_scheduler.<name>``, else
    ``None``."""
    return (getattr(torch.optim, name, None)
            or getattr(torch.optim.lr_scheduler, name, None))


def default_mismatches(ours: Any, theirs: Any) -> dict[str, tuple[Any, Any]]:
    """Arguments of ``ours`` that ``theirs`` lacks or defaults otherwise,
    as ``{name: (ours' default, theirs')}``; empty when they agree."""
    mine, other = arguments(ours), arguments(theirs)
    missing = object()
    return {name: (value, other.get(name, missing))
            for name, value in mine.items()
            if other.get(name, missing) != value}


def shared_mismatches(ours: Any, theirs: Any) -> dict[str, tuple[Any, Any]]:
    """Like :func:`default_mismatches`, over the arguments both have (for a
    reference package that names a few arguments of its own)."""
    other = arguments(theirs)
    found = default_mismatches(ours, theirs)
    return {name: pair for name, pair in found.items()
            if name in other}


def reference(name: str) -> Any:
    """The class optedu's ``name`` is checked against: ``torch.optim``'s,
    else the package's of :data:`REFERENCES` (imported now), else ``None``."""
    if hasattr(torch.optim, name):
        return getattr(torch.optim, name)
    if name not in REFERENCES:
        return None
    import importlib
    module, attr = REFERENCES[name]
    return getattr(importlib.import_module(module), attr)


def checked_against(name: str) -> str:
    """Where ``name``'s defaults come from: ``torch.optim``, the reference
    package's name, or ``optedu`` (no reference with the same arguments)."""
    if hasattr(torch.optim, name):
        return "torch.optim"
    return REFERENCES.get(name, ("optedu",))[0].split(".")[0]


def literal(value: Any) -> str:
    """A default written exactly and briefly: powers of ten with
    superscripts (``10⁻⁸``), simple fractions (``1/3``), tuples element by
    element, ``None``/booleans/strings as Python writes them."""
    if isinstance(value, (tuple, list)):
        inner = ", ".join(literal(v) for v in value)
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return repr(value)
    if value == 0 or not math.isfinite(value):
        return repr(value).removesuffix(".0")
    exponent = round(math.log10(abs(value)))
    if abs(exponent) >= 4 and value == 10.0**exponent:
        return power_of_ten(exponent)
    text = repr(value).removesuffix(".0")
    if len(text) > 8:                       # 0.3333333333333333
        fraction = Fraction(value).limit_denominator(100)
        if float(fraction) == value:
            return f"{fraction.numerator}/{fraction.denominator}"
    return text


def anchor(heading: str) -> str:
    """The HTML id Sphinx gives a section with this MyST heading
    (``"What $\\epsilon$ does"`` → ``"what-epsilon-does"``)."""
    from docutils.nodes import make_id
    return make_id(heading.replace("$", "").replace("\\", ""))


def chapter_headings(chapter: str, root: pathlib.Path = ROOT) -> list[str]:
    """The MyST headings (any level) of ``root/<chapter>.ipynb``."""
    cells = json.loads((root / f"{chapter}.ipynb").read_text())["cells"]
    text = "\n".join("".join(c["source"]) for c in cells
                     if c["cell_type"] == "markdown")
    return re.findall(r"^#+ (.+?)\s*$", text, re.M)


@dataclass
class Measured:
    """One optimizer's state after one step: bytes by key, measured and
    from the closed form, and the parameter elements it covers."""

    measured: dict[str, int]
    predicted: dict[str, int]
    elements: int
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def per_element(self) -> float:
        return sum(self.measured.values()) / self.elements


def measure(name: str, shapes: Sequence[Sequence[int]] = SHAPES,
            **settings: Any) -> Measured:
    """Step ``optedu.<name>`` once with :func:`optedu.precision.memory.stepped` on
    float32 tensors of ``shapes`` (the first alone for Muon and
    SparseAdam) and read its state's bytes."""
    cls = optimizer_classes()[name]
    if name in ("Muon", "SparseAdam"):
        shapes = shapes[:1]
    settings = {**SETTINGS.get(name, {}), **settings}
    opt = stepped(cls, tuple(tuple(s) for s in shapes), **settings)
    elements = sum(p.numel() for g in opt.param_groups for p in g["params"])
    return Measured(state_bytes(opt), predicted_state_bytes(opt), elements,
                    settings)


def _math(tex: str) -> str:
    r"""Inline maths for MathJax, cut at the top-level ``,\ `` separators
    into pieces the browser can wrap between (MathJax 3 does not break
    lines inside one formula)."""
    pieces, depth, start = [], 0, 0
    for k, char in enumerate(tex):
        depth += {"{": 1, "}": -1, "(": 1, ")": -1}.get(char, 0)
        if depth == 0 and tex.startswith(r",\ ", k):
            pieces.append(tex[start:k])
            start = k + 3
    pieces.append(tex[start:])
    return ", ".join(r'<span class="nowrap">\(' + html.escape(p, quote=False)
                     + r"\)</span>" for p in pieces)


def _code(text: str) -> str:
    return f"<code>{html.escape(text)}</code>"


def _arguments_html(cls: Any) -> str:
    items = []
    for name, value in arguments(cls).items():
        if name in HIDDEN_ARGUMENTS:
            continue
        shown = name if value is inspect.Parameter.empty \
            else f"{name}={literal(value)}"
        items.append(_code(shown))
    return ", ".join(items)


def _bytes(x: float) -> str:
    return f"{x:.3f}"


def optimizer_rows(shapes: Sequence[Sequence[int]] = SHAPES
                   ) -> list[dict[str, Any]]:
    """One row per optimizer class: its entry, its arguments, the torch
    class it is checked against, and the measurements (defaults, and the
    :data:`VARIANTS` switch if any)."""
    rows = []
    for name, cls in optimizer_classes().items():
        rows.append({
            "name": name, "cls": cls, "entry": ENTRIES[name],
            "torch": getattr(torch.optim, name, None),
            "default": measure(name, shapes),
            "variant": (measure(name, shapes, **VARIANTS[name])
                        if name in VARIANTS else None),
        })
    return rows


CSS = """<style>
.optedu-sheet {overflow-x: auto}
.optedu-sheet table {border-collapse: collapse; font-size: 0.75em;
  line-height: 1.3; width: 100%; min-width: 48em; table-layout: fixed}
.optedu-sheet th, .optedu-sheet td {border: 1px solid #bbb;
  padding: 2px 4px; vertical-align: top; text-align: left}
.optedu-sheet th {font-weight: bold}
.optedu-sheet td.num {text-align: right; white-space: nowrap}
.optedu-sheet .nowrap {white-space: nowrap}
.optedu-sheet .note {font-size: 0.85em; opacity: 0.8}
.optedu-sheet code {font-size: 0.95em; white-space: normal;
  word-break: break-word; padding: 0; border: 0}
@page {size: landscape; margin: 10mm}
@media print {
  div.cell.tag_full-width {width: 100% !important; max-width: 100% !important}
  .optedu-sheet {overflow: visible}
  .optedu-sheet table {font-size: 6.5pt; min-width: 0}
  .optedu-sheet tr {break-inside: avoid}
  .optedu-sheet a {color: inherit; text-decoration: none}
}
</style>"""


def _table(head: Sequence[str], widths: Sequence[int],
           body: list[list[str]]) -> str:
    cols = "".join(f'<col style="width: {w}%">' for w in widths)
    cells = "".join(f"<th>{h}</th>" for h in head)
    lines = [f"<table><colgroup>{cols}</colgroup>"
             f"<thead><tr>{cells}</tr></thead><tbody>"]
    for row in body:
        lines.append("<tr>" + "".join(row) + "</tr>")
    lines.append("</tbody></table>")
    # mathjax_process: MyST marks each page's section mathjax_ignore, and
    # MathJax typesets inside it only classes of processHtmlClass.
    return (CSS + '<div class="optedu-sheet mathjax_process">'
            + "\n".join(lines) + "</div>")


def _state_html(row: Mapping[str, Any]) -> tuple[str, str]:
    keys = ", ".join(_code(k) for k in row["default"].measured) or "none"
    per = _bytes(row["default"].per_element)
    variant = row["variant"]
    if variant is not None:
        extra = [k for k in variant.measured
                 if k not in row["default"].measured]
        switch = ", ".join(f"{k}={literal(v)}" for k, v in
                           VARIANTS[row["name"]].items())
        keys += f"; {_code(switch)}: + " + ", ".join(_code(k) for k in extra)
        per += f"<br>({_bytes(variant.per_element)})"
    return keys, per


def _note(text: str) -> str:
    return f'<span class="note">{text}</span>'


def optimizer_table(rows: list[dict[str, Any]]) -> str:
    """The optimizer cheat sheet as an HTML table, one row per class."""
    body = []
    for row in rows:
        entry: Entry = row["entry"]
        keys, per = _state_html(row)
        title = html.escape(re.sub(r"[$\\`]", "", entry.section))
        link = (f'<a href="{entry.section_chapter}.html#'
                f'{anchor(entry.section)}">§ {title}</a>')
        body.append([
            f'<td><a href="{entry.chapter}.html"><b>{row["name"]}</b></a>'
            f"<br>{_note(checked_against(row['name']))}</td>",
            f"<td>{_math(entry.rule)}<br>"
            f"{_note('state tensors: ' + keys)}</td>",
            f'<td class="num">{per}</td>',
            f"<td>{_arguments_html(row['cls'])}</td>",
            f"<td>{html.escape(entry.use)}<br><b>Pitfall:</b> "
            f"{html.escape(entry.pitfall)} {_note(link)}</td>",
        ])
    head = ["Optimizer", "Update rule; state tensors", "B/param",
            "Arguments = defaults", "Used for; one pitfall (where shown)"]
    return _table(head, (11, 33, 7, 22, 27), body)


def scheduler_classes() -> dict[str, Any]:
    """optedu's schedulers (``optedu.lr_scheduler``, torch's API) and
    schedule functions (``optedu.lr_scheduler.schedules``), by name."""
    from optedu import lr_scheduler
    from optedu.lr_scheduler import schedules
    found = {}
    for module in (lr_scheduler, schedules):
        for name in module.__all__:
            obj = getattr(module, name)
            if name in SCHEDULES:
                found[name] = obj
    return found


def recursive(obj: Any) -> bool:
    """Whether the scheduler moves the *current* rate by a factor
    (:class:`optedu.lr_scheduler.ChainableLR`, torch's recursive form):
    its closed form then holds only while nothing else changes the rate."""
    from optedu.lr_scheduler import ChainableLR
    return isinstance(obj, type) and issubclass(obj, ChainableLR)


def scheduler_rows() -> list[dict[str, Any]]:
    return [{"name": name, "obj": obj, "formula": SCHEDULES[name],
             "torch": torch_class(name) if isinstance(obj, type) else None,
             "recursive": recursive(obj)}
            for name, obj in scheduler_classes().items()]


def scheduler_table(rows: list[dict[str, Any]]) -> str:
    """The schedulers as an HTML table: name, closed form, arguments."""
    body = []
    for row in rows:
        hidden = ("optimizer", "last_epoch", "step")
        args = [(n, v) for n, v in arguments(row["obj"]).items()
                if n not in hidden]
        shown = ", ".join(_code(n if v is inspect.Parameter.empty
                                else f"{n}={literal(v)}") for n, v in args)
        where = ("torch.optim.lr_scheduler" if row["torch"] is not None
                 else "optedu.lr_scheduler.schedules")
        if row["recursive"]:
            where += "; recursive"
        body.append([f"<td><b>{row['name']}</b><br>{_note(where)}</td>",
                     f"<td>{_math(row['formula'])}</td>", f"<td>{shown}</td>"])
    return _table(["Schedule", "Formula", "Arguments = defaults"],
                  (22, 45, 33), body)
