r"""optedu's code as a chapter shows it: the docstring as text, its maths typeset, then the code.

``print(inspect.getsource(f))`` shows a reader the raw reStructuredText of the docstring
(``.. math::``, ``:math:`\eta```, ````x````). :func:`show_source` shows the same source as
Markdown instead: the docstring converted (:func:`docstring_markdown`), then the function's
code, without the docstring, as a Python block. Jupyter and the website render it; the plain
text (the exact source) stays in the output for anything that cannot.

>>> print(docstring_markdown("Step ``x`` by :math:`\\eta`."))
Step `x` by $\eta$.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
import types
from collections.abc import Callable

# what ``inspect.getsource`` reads: a module, a class, a function or a method
Shown = types.ModuleType | type | Callable[..., object]

_ROLE = re.compile(r":(?:func|class|meth|data|attr|mod|obj|exc):`~?([^`]+)`")
_MATH_ROLE = re.compile(r":math:`([^`]+)`")
_LITERAL = re.compile(r"``(.+?)``")
_SECTION = re.compile(r"^(Args|Arguments|Parameters|Returns|Yields|Raises|Example|Examples|"
                      r"Note|Notes|Attributes):\s*$")
# an argument, or several that share their text ("start_lr, end_lr: ...")
_ITEM = re.compile(r"^(\*?\*?[\w.]+(?:, \*?\*?[\w.]+)*)(\s*\([^)]*\))?:\s*(.*)$")


def _inline(text: str) -> str:
    """reST inline markup as Markdown: ``x`` -> `x`, :math:`x` -> $x$, :func:`f` -> `f`."""
    text = _MATH_ROLE.sub(lambda m: f"${m.group(1)}$", text)
    text = _ROLE.sub(lambda m: f"`{m.group(1)}`", text)
    return _LITERAL.sub(lambda m: f"`{m.group(1)}`", text)


def _blocks(lines: list[str]) -> list[tuple[int, list[str]]]:
    """Split into (indent, lines) runs separated by blank lines; blank lines inside an indented
    block (a maths or literal block) stay with it."""
    out: list[tuple[int, list[str]]] = []
    current: list[str] = []
    for line in lines + [""]:
        if line.strip():
            current.append(line)
        elif current:
            out.append((len(current[0]) - len(current[0].lstrip()), current))
            current = []
    return out


def _maths(body: list[str]) -> str:
    tex = textwrap.dedent("\n".join(body)).strip()
    if "&" in tex or "\\\\" in tex:
        tex = "\\begin{aligned}\n" + tex + "\n\\end{aligned}"
    return "$$\n" + tex + "\n$$"


def docstring_markdown(doc: str) -> str:
    """A reStructuredText docstring (optedu's style) as Markdown with ``$`` maths.

    Handles ``.. math::`` blocks (aligned when they have ``&`` or ``\\\\``), literal blocks
    after ``::``, doctest lines, Google-style sections (``Args:``, ``Returns:``) as bold
    headings with a list of items, and the inline roles ``:math:``, ``:func:`` and friends.
    """
    lines = inspect.cleandoc(doc).splitlines()
    blocks = _blocks(lines)
    out: list[str] = []
    i = 0
    while i < len(blocks):
        indent, block = blocks[i]
        first = block[0].strip()
        if first.startswith(".. math::"):
            body = block[1:]
            while not body and i + 1 < len(blocks) and blocks[i + 1][0] > indent:
                i += 1
                body = blocks[i][1]
            out.append(_maths(body))
        elif first.startswith(">>>"):
            out.append("```python\n" + textwrap.dedent("\n".join(block)) + "\n```")
        elif _SECTION.match(first) and indent == 0:
            out.append(f"**{first[:-1]}**")
            items = block[1:]
            while i + 1 < len(blocks) and blocks[i + 1][0] > indent:
                i += 1
                items += blocks[i][1]
            out.append(_items(textwrap.dedent("\n".join(items)).splitlines()))
        elif indent > 0 and out and out[-1].endswith("::"):
            out[-1] = out[-1][:-1]  # "text::" introduces a literal block: keep one colon
            out.append("```\n" + textwrap.dedent("\n".join(block)) + "\n```")
        else:
            text = " ".join(line.strip() for line in block)
            out.append(_inline(text))
        i += 1
    return "\n\n".join(out)


def _items(lines: list[str]) -> str:
    """A section's items (``name: text`` with indented continuations) as a Markdown list;
    text without a name (a Returns: paragraph) as one item."""
    items: list[str] = []
    for line in lines:
        if not line.strip():
            continue
        named = _ITEM.match(line) if not line.startswith(" ") else None
        if named:
            name, kind, text = named.groups()
            items.append(f"- `{name}`{kind or ''}: {text}")
        elif items:
            items[-1] += " " + line.strip()
        else:
            items.append("- " + line.strip())
    return "\n".join(_inline(item) for item in items)


def split_source(obj: Shown) -> tuple[str, str | None]:
    """``obj``'s source without its docstring, and the docstring (or ``None``)."""
    source = textwrap.dedent(inspect.getsource(obj))
    tree = ast.parse(source)
    node = tree.body[0]
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return source.rstrip("\n"), None
    doc = ast.get_docstring(node, clean=False)
    if doc is None:
        return source.rstrip("\n"), None
    first = node.body[0]
    lines = source.splitlines()
    kept = lines[:first.lineno - 1] + lines[first.end_lineno:]
    return "\n".join(kept).rstrip("\n"), doc


class Source:
    """What :func:`show_source` displays: Markdown for Jupyter and the website, the exact
    source as plain text."""

    def __init__(self, obj: Shown) -> None:
        self.name = getattr(obj, "__qualname__", repr(obj))
        self.text = textwrap.dedent(inspect.getsource(obj)).rstrip("\n")
        self.code, doc = split_source(obj)
        self.doc = None if doc is None else docstring_markdown(doc)

    def markdown(self) -> str:
        code = f"```python\n{self.code}\n```"
        return code if self.doc is None else f"{self.doc}\n\n{code}"

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def __repr__(self) -> str:
        return self.text


def show_source(obj: Shown) -> None:
    """Display ``obj``'s source in a notebook: its docstring as text, then its code. Outside
    IPython, print the source."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - optedu does not require IPython
        print(Source(obj).text)
        return
    if get_ipython() is None:
        print(Source(obj).text)
        return
    display(Source(obj))
