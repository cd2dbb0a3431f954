"""Every chapter on a reading path ends by continuing the path (book/_ext/reading_paths.py).

The landing page lists the paths (tools/map.py's PATHS); the theme's previous/next links follow
the table of contents instead. For every path and every page on it, the built page must show,
once: the path's name linking to its heading on the landing page, "chapter k of n", and links
to the previous and next pages on the path (none before the first, none after the last), each
reaching a page that exists and titled as that page is. A page on no path shows none.
"""

from __future__ import annotations

import html
import html.parser
import pathlib
import re
import sys
import urllib.parse

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import map as book_map  # noqa: E402

PATHS = [(heading, [stem for _, stems in steps for stem in stems])
         for heading, _, steps in book_map.PATHS]


class _Paths(html.parser.HTMLParser):
    """The page's ``nav.optedu-path`` blocks: label, and per paragraph its class, text and
    links (href, text); and every id and every heading's text by its section's id."""

    def __init__(self):
        super().__init__()
        self.navs: list[dict] = []
        self.ids: set[str] = set()
        self._nav: dict | None = None
        self._p: dict | None = None
        self._a: list | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "nav" and "optedu-path" in (attrs.get("class") or "").split():
            self._nav = {"label": attrs.get("aria-label", ""), "ps": []}
            self.navs.append(self._nav)
        elif self._nav is not None and tag == "p":
            self._p = {"class": attrs.get("class", ""), "text": "", "links": []}
            self._nav["ps"].append(self._p)
        elif self._p is not None and tag == "a":
            self._a = [attrs.get("href", ""), ""]
            self._p["links"].append(self._a)

    def handle_endtag(self, tag):
        if tag == "nav":
            self._nav = None
        elif tag == "p":
            self._p = None
        elif tag == "a":
            self._a = None

    def handle_data(self, data):
        if self._p is not None:
            self._p["text"] += data
        if self._a is not None:
            self._a[1] += data


def _parse(path: pathlib.Path) -> _Paths:
    parser = _Paths()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def _heading(page: pathlib.Path, anchor: str | None = None) -> str:
    """The text of the heading of the section with id ``anchor`` on ``page`` (without its
    "#" link); without ``anchor``, the page's title."""
    text = page.read_text(encoding="utf-8")
    # a label's target sits between a section and its heading: <span id="path-learn"></span>
    labels = r'(?:<span id="[^"]*"></span>\s*)*'
    found = (re.search(rf'<section id="{re.escape(anchor)}">\s*{labels}<h\d[^>]*>(.*?)</h\d>',
                       text, re.S)
             if anchor else re.search(r"<h1[^>]*>(.*?)</h1>", text, re.S))
    if not found:
        return ""
    title = re.sub(r'<a class="headerlink".*?</a>', "", found.group(1), flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", title)).strip()


def _target(page: pathlib.Path, href: str) -> tuple[pathlib.Path, str]:
    url = urllib.parse.urlparse(href)
    assert not url.scheme and not href.startswith("//"), f"{href}: not a link within the site"
    target = (page.parent / urllib.parse.unquote(url.path)).resolve() if url.path else page
    return target, url.fragment


def _one(ps: list[dict], kind: str) -> dict | None:
    found = [p for p in ps if f"optedu-path-{kind}" in p["class"].split()]
    assert len(found) <= 1, f"{len(found)} '{kind}' lines"
    return found[0] if found else None


@pytest.mark.xdist_group("static")
@pytest.mark.parametrize("heading, stems", PATHS, ids=[h.split(":")[0] for h, _ in PATHS])
def test_every_page_on_a_path_continues_it(site, heading, stems):
    intro = (site / "book" / "intro.html").resolve()
    wrong = []
    for k, stem in enumerate(stems):
        page = site / "book" / f"{stem}.html"
        navs = [n for n in _parse(page).navs if n["label"] == f"Reading path: {heading}"]
        if len(navs) != 1:
            wrong.append(f"{stem}: {len(navs)} blocks for this path")
            continue
        ps = navs[0]["ps"]
        where = _one(ps, "where")
        text = re.sub(r"\s+", " ", where["text"]) if where else ""
        if f"chapter {k + 1} of {len(stems)}" not in text:
            wrong.append(f"{stem}: says {text!r}, not chapter {k + 1} of {len(stems)}")
        back = [link for link in (where["links"] if where else []) if link[1] == heading]
        if len(back) != 1:
            wrong.append(f"{stem}: no link named {heading!r} back to the path")
        else:
            target, anchor = _target(page, back[0][0])
            if target != intro or _heading(intro, anchor) != heading:
                wrong.append(f"{stem}: the path's link {back[0][0]} is not its heading")
        for side, other in (("previous", stems[k - 1] if k else None),
                            ("next", stems[k + 1] if k + 1 < len(stems) else None)):
            line = _one(ps, side)
            if other is None:
                if line is not None:
                    wrong.append(f"{stem}: a {side} link at the path's end: {line['text']!r}")
                continue
            if line is None or len(line["links"]) != 1:
                wrong.append(f"{stem}: no {side} link (to {other})")
                continue
            href, title = line["links"][0]
            target, _ = _target(page, href)
            if target != (site / "book" / f"{other}.html").resolve() or not target.exists():
                wrong.append(f"{stem}: {side} links {href}, not {other}.html")
            elif title.strip() != _heading(target):
                wrong.append(f"{stem}: {side} link reads {title!r}, not {_heading(target)!r}")
            if side == "next" and f"({book_map.reading_time(other)})" not in line["text"]:
                wrong.append(f"{stem}: next link without its reading time: {line['text']!r}")
    assert not wrong, f"{heading}: " + "; ".join(wrong[:8])


@pytest.mark.xdist_group("static")
def test_pages_on_no_path_show_none(site):
    on_paths = {stem for _, stems in PATHS for stem in stems}
    pages = [p for p in (site / "book").glob("*.html") if p.stem not in on_paths]
    assert len(pages) >= 30
    shown = [p.stem for p in pages if _parse(p).navs]
    assert not shown, f"reading-path blocks on pages on no path: {shown}"


_EDGES = """
const edges = (e) => { const b = e.getBoundingClientRect(); return [b.left, b.right]; };
return {text: edges(document.querySelector('.bd-article section > p')),
        boxes: [...document.querySelectorAll('.optedu-path')].map(edges)};"""


@pytest.mark.xdist_group("book/drill_triage.html")
@pytest.mark.parametrize("screen", ["browser", "phone"])
def test_the_path_box_lines_up_with_the_text(request, base_url, screen):
    """The box sits in the article's footer, which the theme pads half as much as the article
    (optedu.css gives it the other half as its margin): its edges are the text column's, at
    1280 px and on a 390 px phone. Before, it stood 16 px (8 px on a phone) out on each side."""
    driver = request.getfixturevalue(screen)
    driver.get(f"{base_url}/book/drill_triage.html")
    seen = driver.execute_script(_EDGES)
    assert seen["boxes"], "no reading-path box on drill_triage"
    for box in seen["boxes"]:
        assert all(abs(a - b) <= 1 for a, b in zip(box, seen["text"])), \
            f"{screen}: the path box spans {box}, the text {seen['text']}"
