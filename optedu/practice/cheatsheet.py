r"""The cheat sheet: one line per optimizer, generated from the package.

Two kinds of content, kept apart:

* **Written** (each optimizer's row of :mod:`optedu.optim.catalogue`, its
  :class:`~optedu.optim.catalogue.Sheet`, read as one
  :class:`~optedu.practice.cheatsheet_entries.Entry` per optimizer class):
  the update rule in one line of LaTeX, what the optimizer is used for, one
  pitfall, the chapter that teaches it and the chapter section that
  demonstrates the pitfall. Tests check that every optimizer class optedu
  exports has a row with its line, that no row names a class that does not
  exist, and that every cited section is a heading of its chapter.
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

from optedu.instruments.display import num, power_of_ten
from optedu.instruments.references import WITHOUT_INIT, reference_module
from optedu.optim.catalogue import RULES
from optedu.precision.memory import predicted_state_bytes, state_bytes, stepped

from .cheatsheet_entries import (ENTRIES, HIDDEN_ARGUMENTS, LINEAGE, REFERENCES, SCHEDULES,
                                 SETTINGS, SHAPES, VARIANTS, Entry)

__all__ = [
    "Measured", "optimizer_classes", "arguments", "torch_class", "default_mismatches", "shared_mismatches",
    "reference", "checked_against", "literal", "anchor",
    "chapter_headings", "measure", "optimizer_rows", "optimizer_table",
    "family_order", "family_tree",
    "scheduler_classes", "recursive", "scheduler_rows", "scheduler_table",
    "CSS",
]


def optimizer_classes() -> dict[str, type]:
    """Every optimizer class in ``optedu.__all__`` (not the base class)."""
    import optedu
    classes = {name: getattr(optedu, name) for name in optedu.__all__}
    return {name: cls for name, cls in sorted(classes.items(), key=lambda kv: kv[0].lower())
            if isinstance(cls, type)
            and issubclass(cls, torch.optim.Optimizer)
            and cls is not optedu.Optimizer}


def arguments(cls: Any) -> dict[str, Any]:
    """The arguments of ``cls`` by name, with their defaults read from its
    signature (``inspect.Parameter.empty`` where there is none)."""
    return {name: p.default
            for name, p in inspect.signature(cls).parameters.items()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


# arguments that choose how a rule is computed, not what it computes: optedu's
# Lion and Muon take ``fused`` where their references have no such switch
PATH_SWITCHES = frozenset({"foreach", "fused"})


def torch_class(name: str) -> Any:
    """``torch.optim.<name>`` or ``torch.optim.lr_scheduler.<name>``, else
    ``None``."""
    return (getattr(torch.optim, name, None)
            or getattr(torch.optim.lr_scheduler, name, None))


# where a default is a function of the step (ADOPT's clip_lambda), it agrees
# with another that returns the same floats at these steps
_PROBE_STEPS = (1.0, 2.0, 3.0, 10.0, 1000.0)


def _same_default(a: Any, b: Any) -> bool:
    if callable(a) and callable(b) and not isinstance(a, type):
        try:
            return all(a(s) == b(s) for s in _PROBE_STEPS)
        except Exception:   # not a function of one number: compare as objects
            return a is b
    return bool(a == b)


def default_mismatches(ours: Any, theirs: Any) -> dict[str, tuple[Any, Any]]:
    """Arguments of ``ours`` that ``theirs`` lacks or defaults otherwise,
    as ``{name: (ours' default, theirs')}``; empty when they agree. Two
    functions of the step agree when they give the same values at steps
    1, 2, 3, 10 and 1000."""
    mine, other = arguments(ours), arguments(theirs)
    missing = object()
    return {name: (value, other.get(name, missing))
            for name, value in mine.items()
            if name not in PATH_SWITCHES
            and not _same_default(value, other.get(name, missing))}


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
    package, _, rest = module.partition(".")
    if package in WITHOUT_INIT:   # galore-torch, apollo-torch: see .references
        return getattr(reference_module(package, rest), attr)
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
    if callable(value) and hasattr(value, "__name__"):   # not its address
        return value.__name__
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


def chapter_headings(chapter: str, book: pathlib.Path) -> list[str]:
    """The MyST headings (any level) of ``book/<chapter>.ipynb``: the caller names the folder
    of chapters (the package does not assume the repository around it)."""
    cells = json.loads((book / f"{chapter}.ipynb").read_text())["cells"]
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
    if isinstance(settings.get("base_optimizer"), str):   # SAM's base, by name
        settings["base_optimizer"] = optimizer_classes()[settings["base_optimizer"]]
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
    return ", ".join(r'<span class="nowrap formula">\('
                     + html.escape(p, quote=False) + r"\)</span>"
                     for p in pieces)


def _code(text: str) -> str:
    """``text`` as code that a narrow column breaks after a ``_``, ``=`` or ``,`` (a
    ``<wbr>``) before it breaks inside a word: ``decoupled_weight_decay=`` | ``False``, not
    ``...=Fa`` | ``lse``."""
    escaped = html.escape(text)
    for mark in ("_", "=", ","):
        escaped = escaped.replace(mark, mark + "<wbr>")
    return f"<code>{escaped}</code>"


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
    :data:`VARIANTS` switch if any). A class without its entry or its
    catalogue row (:mod:`optedu.optim.catalogue`) has no row:
    ``tests/test_layout.py`` names what it lacks."""
    rows = []
    for name, cls in optimizer_classes().items():
        if name not in ENTRIES or name not in RULES:
            continue
        rows.append({
            "name": name, "cls": cls, "entry": ENTRIES[name],
            "torch": getattr(torch.optim, name, None),
            "default": measure(name, shapes),
            "variant": (measure(name, shapes, **VARIANTS[name])
                        if name in VARIANTS else None),
        })
    return rows


# The table's text is --small of the body's. MathJax sizes a formula from the
# text around it, so a formula (.formula) is set back to the body's size: the
# rules read as large as in the chapters (tests/site/test_site_sheet.py).
# On paper the whole table is 6.5 pt, formulas included. The columns keep the
# widths of their <col>: the theme lays out a cell output's tables by their
# content (.bd-content div.output table), which let the widest formulas take
# the arguments' column; the rule below outranks it. On a phone optedu.css
# stacks the table and lays it out by content again.
CSS = """<style>
.optedu-sheet {overflow-x: auto}
.optedu-sheet table {border-collapse: collapse; --small: 0.75;
  font-size: calc(var(--small) * 1em); line-height: 1.3; width: 100%;
  min-width: 48em}
.bd-content div.output .optedu-sheet table {table-layout: fixed}
.optedu-sheet table .formula {font-size: calc(1em / var(--small))}
.optedu-sheet th, .optedu-sheet td {border: 1px solid #bbb;
  padding: 2px 4px; vertical-align: top; text-align: left}
.optedu-sheet th {font-weight: bold}
.optedu-sheet td.num {text-align: right; white-space: nowrap}
.optedu-sheet .nowrap {white-space: nowrap}
.optedu-sheet .note {font-size: 0.85em; opacity: 0.8}
.optedu-tree {font-size: 0.85em; line-height: 1.35}
.optedu-tree ul {margin: 0; padding-left: 1.4em}
.optedu-sheet code {font-size: 0.95em; white-space: normal;
  word-break: break-word; padding: 0; border: 0}
@page {size: landscape; margin: 10mm}
@media print {
  div.cell.tag_full-width {width: 100% !important; max-width: 100% !important}
  .optedu-sheet {overflow: visible}
  .optedu-sheet table {font-size: 6.5pt; --small: 1; min-width: 0}
  .optedu-sheet tr {break-inside: avoid}
  .optedu-sheet a {color: inherit; text-decoration: none}
}
</style>"""


def _table(head: Sequence[str], widths: Sequence[float],
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


def _cost_html(cost: Mapping[str, Any] | None) -> str:
    if cost is None:
        return '<td class="num">–</td>'
    return (f'<td class="num">{cost["bytes_per_param"]:.1f}<br>'
            f'×{num(cost["ratio"])}</td>')


def optimizer_table(rows: list[dict[str, Any]],
                    cost: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """The optimizer cheat sheet as an HTML table, one row per class; with ``cost`` (rows of
    :func:`optedu.experiments.cost.table` by rule), a column of the state's bytes per
    parameter on the cost experiment's shapes and the step's time as a multiple of AdamW's."""
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
        if cost is not None:
            body[-1].insert(3, _cost_html(cost.get(row["name"])))
    head = ["Optimizer", "Update rule; state tensors", "B/param",
            "Arguments = defaults", "Used for; one pitfall (where shown)"]
    if cost is None:
        return _table(head, (11, 33, 7, 22, 27), body)
    head.insert(3, "Mix: B/param, step")
    return _table(head, (12, 31.5, 7, 7, 19.5, 23), body)


def family_order(lineage: Mapping[str, tuple[str, str]] = LINEAGE
                 ) -> list[tuple[str, int]]:
    """The optimizers of ``lineage`` depth-first from its roots, each with
    its depth; children in the order the mapping lists them.

    >>> family_order({"A": ("", ""), "C": ("A", ""), "B": ("", "")})
    [('A', 0), ('C', 1), ('B', 0)]
    """
    children: dict[str, list[str]] = {}
    for name, (parent, _) in lineage.items():
        children.setdefault(parent, []).append(name)
    order: list[tuple[str, int]] = []

    def visit(name: str, depth: int) -> None:
        order.append((name, depth))
        for child in children.get(name, []):
            visit(child, depth + 1)

    for root in children.get("", []):
        visit(root, 0)
    return order


def family_tree(lineage: Mapping[str, tuple[str, str]] = LINEAGE) -> str:
    """The family tree as nested HTML lists: each optimizer, linked to its
    chapter, under the rule it changes, with what it changes."""
    lines, depth = ["<ul>"], 0
    for name, level in family_order(lineage):
        while depth > level:
            lines.append("</ul></li>")
            depth -= 1
        if level > depth:
            lines[-1] = lines[-1].removesuffix("</li>") + "<ul>"
            depth = level
        chapter = RULES[name].chapter
        lines.append(f'<li><a href="{chapter}.html"><b>{name}</b></a>: '
                     f"{html.escape(lineage[name][1])}</li>")
    lines.append("</ul></li>" * depth + "</ul>")
    return (CSS + '<div class="optedu-sheet optedu-tree">'
            + "\n".join(lines) + "</div>")


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
                  (24, 43, 33), body)
