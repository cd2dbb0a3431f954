"""book/_templates: the theme's templates less what every page loaded and none needed (the
1.5 MB icon script; the search index, 0.6 MB, for a search-as-you-type box the book turns off).
Each override must stay the pinned theme's own template less those lines, so a theme upgrade
that changes them fails here instead of silently dropping the theme's change."""

from __future__ import annotations

import importlib.util
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
# the installed theme's folder, found without importing it (Sphinx and docutils with it: 0.3 s
# of every worker's collection)
THEME = (pathlib.Path(importlib.util.find_spec("pydata_sphinx_theme").origin).parent
         / "theme" / "pydata_sphinx_theme")
OURS = ROOT / "book" / "_templates"


def _lines(text: str) -> list[str]:
    """The template's lines, without Jinja comments and blank lines."""
    text = re.sub(r"\{#.*?#\}", "", text, flags=re.S)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    return [line.strip() for line in text.splitlines() if line.strip()]


def test_the_macros_are_the_themes_without_the_icon_script():
    theirs = _lines((THEME / "static" / "webpack-macros.html").read_text())
    ours = _lines((OURS / "static" / "webpack-macros.html").read_text())
    dropped = [line for line in theirs if line not in ours]
    assert len(dropped) == 1 and "fontawesome.js" in dropped[0], dropped
    assert [line for line in theirs if line not in dropped] == ours


def test_the_page_head_is_the_themes_without_the_search_scripts():
    layout = (THEME / "layout.html").read_text()
    block = layout[layout.index("{%- block extrahead %}"):layout.index("{%- endblock extrahead %}")]
    theirs = _lines(block)
    ours = _lines((OURS / "layout.html").read_text())
    scripts = [line for line in theirs if line.startswith("<script")]
    assert [s.split("'")[1] for s in scripts] == [
        "_static/searchtools.js", "_static/language_data.js", "searchindex.js"]
    meta = [line for line in theirs if line.startswith("<meta") or line.startswith("{%- if")
            or line.startswith("{%- endif")]
    assert meta == [line for line in ours if line in meta]
    assert not any("search" in line for line in ours if line.startswith("<script"))
