"""Chapters take their plumbing from the chapter kit (optedu.instruments.chapter).

No chapter defines its own glue helper (a function that glues, under any name, or one that
takes ``glue`` as an argument or an alias), and every chapter's set-up is the kit's
``setup()``: one thread, default dtype and figures, written once for all.
"""

import ast
import functools
import json
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
GLUE_CALLS = {"glue", "glue_text", "glue_value", "glue_num"}


@functools.cache
def _parsed(source: str) -> ast.Module:
    """A chapter's code parsed once for both checks (23 ms a chapter)."""
    return ast.parse(source)


@functools.cache
def _code(path: pathlib.Path) -> str:
    """The notebook's code cells as one module, IPython's magics and shell lines left out."""
    cells = json.loads(path.read_text())["cells"]
    lines = []
    for cell in cells:
        if cell["cell_type"] == "code":
            lines += [line for line in "".join(cell["source"]).splitlines()
                      if not (line.startswith("%") or line.startswith("!")
                              and not line.startswith("!="))]
            lines.append("")
    return "\n".join(lines)


def _called(node: ast.AST) -> set[str]:
    names = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            func = sub.func
            names.add(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
    return names


def glue_helpers(source: str) -> list[str]:
    """The functions in ``source`` that glue, take glue as a default, or alias it."""
    found = []
    for node in ast.walk(_parsed(source)):
        if isinstance(node, (ast.FunctionDef, ast.Lambda)):
            name = getattr(node, "name", "<lambda>")
            defaults = node.args.defaults + node.args.kw_defaults
            aliases = [sub for sub in ast.walk(node) if isinstance(sub, ast.Name)
                       and sub.id in GLUE_CALLS and isinstance(sub.ctx, ast.Load)]
            if _called(node) & GLUE_CALLS or aliases or any(
                    isinstance(d, ast.Name) and d.id in GLUE_CALLS for d in defaults if d):
                found.append(f"{name} (line {node.lineno})")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_no_chapter_defines_a_glue_helper(path):
    helpers = glue_helpers(_code(path))
    assert not helpers, (f"{path.name} defines glue helpers {helpers}: use the chapter kit "
                         "(optedu.instruments.chapter: glue_text, glue_value, glue_num, prefixed)")


def preamble_calls(source: str) -> list[str]:
    """The set-up calls that setup() makes, made by hand: set_num_threads(1) and
    compact_figures(...) at the top level (a chapter may still set its thread count for a
    measurement, or its default dtype for a section)."""
    found = []
    for node in _parsed(source).body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            func = node.value.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name == "compact_figures" or name == "set_num_threads" \
                    and [ast.unparse(a) for a in node.value.args] == ["1"]:
                found.append(f"{name} (line {node.lineno})")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_the_set_up_is_the_kits(path):
    calls = preamble_calls(_code(path))
    assert not calls, f"{path.name} calls {calls} itself: its first cell calls setup()"


@pytest.mark.parametrize("source, expected", [
    ("def g(k, v):\n    glue(f'x_{k}', str(v), display=False)\n", ["g (line 1)"]),
    ("def put(k, v, record=glue):\n    record(k, v)\n", ["put (line 1)"]),
    ("def gtext(k, v):\n    t = glue\n    t(k, str(v), display=False)\n", ["gtext (line 1)"]),
    ("h = lambda k, v: glue_text(k, v)\n", ["<lambda> (line 1)"]),
    ("def science(x):\n    return x ** 2\n\nglue('y', science(2))\n", []),
])
def test_the_check_finds_each_form_of_glue_helper(source, expected):
    assert glue_helpers(source) == expected


def test_the_check_finds_a_hand_written_preamble():
    source = ("import torch\ntorch.set_num_threads(1)\ncompact_figures()\n"
              "def timed(n):\n    torch.set_num_threads(n)\n")
    assert preamble_calls(source) == ["set_num_threads (line 2)", "compact_figures (line 3)"]
