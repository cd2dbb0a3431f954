"""The moving figures' scripts, on the pages that have one.

A chapter asks for a moving figure with an empty ``<div class="optedu-interactive"
data-figure="NAME">`` in a Markdown cell (MyST passes raw HTML through to the page).
book/_static/interactive/rules.js (the book's rules) and figures.js (the figures) are added to
those pages only, so that the other pages weigh what they did.
"""

from __future__ import annotations

from typing import Any

MARK = 'class="optedu-interactive"'
SCRIPTS = ("interactive/rules.js", "interactive/figures.js")


def _page(app: Any, pagename: str, templatename: str, context: dict[str, Any],
          doctree: Any) -> None:
    if MARK in context.get("body", ""):
        for script in SCRIPTS:  # added to this page alone (Sphinx resets them per page)
            app.add_js_file(script, defer="defer")


def setup(app: Any) -> dict[str, bool]:
    app.connect("html-page-context", _page)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
