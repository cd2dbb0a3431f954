"""The reading path a reader is on, continued at the end of each of its chapters.

The landing page (book/intro.md) offers reading paths, each an ordered list of chapters that
tools/map.py writes from its PATHS. The theme's previous/next links follow the table of
contents, not a path, so a reader who followed one lost it after its first chapter. Every page
that lies on a path now ends, above those links, with a block per path it is on: the path's
name (a link to the path on the landing page), "chapter k of n", and the chapters before and
after it on the path, the next with its reading time, all from tools/map.py.

The block is the template book/_templates/reading-paths.html, the theme's article footer
(``html_theme_options.article_footer_items`` in _config.yml); this extension gives it each
page's ``optedu_paths``. On a page on no path it renders empty, and the theme leaves the
footer out.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from docutils import nodes
from sphinx.errors import ExtensionError

TEMPLATE = "reading-paths.html"


def load_map(root: Path) -> ModuleType:
    """tools/map.py of the book at ``root``: the paths the landing page lists."""
    spec = importlib.util.spec_from_file_location("optedu_book_map", root / "tools" / "map.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def anchors(doctree: nodes.Node) -> dict[str, str]:
    """Section title -> the section's id, for every section of the landing page."""
    return {section[0].astext(): section["ids"][0] for section in doctree.findall(nodes.section)
            if section["ids"] and isinstance(section[0], nodes.title)}


def page_paths(stem: str, book_map: Any, title: Callable[[str], str],
               href: Callable[[str], str], landing: Callable[[str], str]) -> list[dict]:
    """What the template shows at the end of ``stem``'s page: one dict per path it is on.

    ``title(stem)`` and ``href(stem)``: a chapter's title and its link from this page;
    ``landing(path)``: the link to the path's heading on the landing page.
    """
    def chapter(other: str | None, timed: bool = False) -> dict | None:
        if other is None:
            return None
        found = {"title": title(other), "href": href(other)}
        if timed:
            found["time"] = book_map.reading_time(other)
        return found

    return [{"name": stop.path, "href": landing(stop.path), "step": stop.step,
             "place": stop.place, "length": stop.length,
             "previous": chapter(stop.previous), "next": chapter(stop.next, timed=True)}
            for stop in book_map.stops(stem)]


def _page_context(app: Any, pagename: str, templatename: str, context: dict,
                  doctree: Any) -> None:
    book_map, intro = app.builder.optedu_map, app.builder.optedu_intro
    folder = intro.rpartition("/")[0]
    if doctree is None or pagename.rpartition("/")[0] != folder:
        return
    stem = pagename.rpartition("/")[2]
    if not book_map.stops(stem):
        return
    if app.builder.optedu_anchors is None:
        app.builder.optedu_anchors = anchors(app.env.get_doctree(intro))
    found = app.builder.optedu_anchors
    pathto = context["pathto"]

    def landing(path: str) -> str:
        if path not in found:
            raise ExtensionError(f"reading_paths: no heading {path!r} on {intro} "
                                 "(run python tools/map.py)")
        return f"{pathto(intro)}#{found[path]}"

    context["optedu_paths"] = page_paths(
        stem, book_map, lambda other: app.env.titles[f"{folder}/{other}"].astext(),
        lambda other: pathto(f"{folder}/{other}"), landing)


def _builder_inited(app: Any) -> None:
    root = Path(app.srcdir)
    book_map = load_map(root)
    book_map.minutes = functools.cache(book_map.minutes)  # read each chapter once a build
    app.builder.optedu_map = book_map
    app.builder.optedu_intro = book_map.INTRO.relative_to(root).with_suffix("").as_posix()
    app.builder.optedu_anchors = None


def setup(app: Any) -> dict[str, bool]:
    app.connect("builder-inited", _builder_inited)
    # before the theme's own handler (priority 500), which drops footer templates that
    # render empty: it must see this page's paths
    app.connect("html-page-context", _page_context, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
