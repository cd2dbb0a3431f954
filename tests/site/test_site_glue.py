"""Every glued value reads on the website as the notebook stored it.

A ``{glue:text}`` role pastes the ``text/plain`` a chapter's cell stored. The website reads that
text as a Python literal first (MyST-NB), so an unquoted ``10,000`` once showed as ``(10, 0)``
and ``0.40`` as ``0.4`` while the reader copies showed them right. Here each page's pasted
values, in the order the HTML shows them, are compared with what its sources glue, in the order
they glue it: a stored string is its text without quotes, any other value the text Python
printed for it, formatted by the role's spec (Sphinx's curly quotes read as straight ones).
Static: the HTML files, no browser.
"""

from __future__ import annotations

import ast
import html.parser
import json
import pathlib
import re

import pytest

BOOK = pathlib.Path(__file__).resolve().parents[2] / "book"
PREFIX = "application/papermill.record/"
ROLE = re.compile(r"\{glue:text\}`([^`]+)`")
SOURCES = sorted(p for p in BOOK.glob("*") if p.suffix in (".md", ".ipynb")
                 and ROLE.search(p.read_text(encoding="utf-8")))


def stored(notebook: pathlib.Path) -> dict[str, str]:
    """Key -> the text/plain a notebook's stored outputs glued under it (the last one)."""
    values = {}
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        for output in cell.get("outputs", []):
            scrap = output.get("metadata", {}).get("scrapbook")
            text = scrap and output["data"].get(scrap["mime_prefix"] + "text/plain")
            if text is not None:
                values[scrap["name"]] = "".join(text)
    return values


def intended(text: str, spec: str) -> str:
    """What the author meant a stored ``text/plain`` to read as, literal-reading aside."""
    try:
        value = ast.literal_eval(text)
    except (SyntaxError, ValueError):
        value = None
    shown = value if isinstance(value, str) and text[:1] in "'\"" else text
    if spec in ("", "s"):
        return shown
    return format(int(shown) if spec[-1] in "bcdoxX" else float(shown), spec)


def prose(source: pathlib.Path) -> list[str]:
    """The page's prose in order: markdown cells (not those removed from the page) and the
    captions of code cells' figures, or the whole file."""
    if source.suffix == ".md":
        return [source.read_text(encoding="utf-8")]
    texts = []
    for cell in json.loads(source.read_text(encoding="utf-8"))["cells"]:
        if "remove-cell" in cell.get("metadata", {}).get("tags", []):
            continue
        if cell["cell_type"] == "markdown":
            texts.append("".join(cell["source"]))
        elif cell["cell_type"] == "code":
            figure = cell["metadata"].get("mystnb", {}).get("figure", {})
            texts.append(figure.get("caption", ""))
    return texts


def expected(source: pathlib.Path) -> list[tuple[str, str]]:
    """(role, the text it should paste) for every glue role of ``source``, in order."""
    cache: dict[str, dict[str, str]] = {}
    found = []
    for text in prose(source):
        text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
        text = "\n".join(line for line in text.splitlines() if not line.startswith("%"))
        for role in ROLE.findall(text):
            doc, key = (role.split("::", 1) if "::" in role else (source.name, role))
            key, spec = key.rsplit(":", 1) if ":" in key else (key, "")
            if doc not in cache:
                cache[doc] = stored(BOOK / doc)
            assert key in cache[doc], f"{source.name}: {role}: nothing glued under {key!r}"
            found.append((role, intended(cache[doc][key], spec)))
    return found


class _Pasted(html.parser.HTMLParser):
    """The text of every ``span.pasted-text`` of a page, in order."""

    def __init__(self):
        super().__init__()
        self.values: list[str] = []
        self._depth = 0  # > 0 inside a pasted span

    def handle_starttag(self, tag, attrs):
        if self._depth:
            self._depth += tag == "span"
        elif tag == "span" and "pasted-text" in (dict(attrs).get("class") or "").split():
            self._depth = 1
            self.values.append("")

    def handle_endtag(self, tag):
        if self._depth and tag == "span":
            self._depth -= 1

    def handle_data(self, data):
        if self._depth:
            self.values[-1] += data


# Sphinx's smart quotes: typography, not another value
TYPOGRAPHY = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"'})


def rendered(page: pathlib.Path) -> list[str]:
    parser = _Pasted()
    parser.feed(page.read_text(encoding="utf-8"))
    return [value.translate(TYPOGRAPHY) for value in parser.values]


@pytest.mark.xdist_group("static")
@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_glued_values_read_as_stored(site, source):
    want = expected(source)
    got = rendered(site / "book" / f"{source.stem}.html")
    assert len(got) == len(want), (
        f"{source.name}: {len(want)} glue roles in the source, {len(got)} pasted values "
        f"on the page")
    wrong = [f"{role} reads {shown!r}, stored {meant!r}"
             for (role, meant), shown in zip(want, got) if shown != meant]
    assert not wrong, (f"{source.name}: {len(wrong)} of {len(want)} glued values read "
                       f"otherwise on the page: " + "; ".join(wrong[:8]))


def test_the_check_catches_a_value_read_as_a_literal():
    """An unquoted 10,000 is meant as 10,000 (the website once showed (10, 0)); a quoted one
    too; a spec formats the number."""
    assert intended("10,000", "") == "10,000"
    assert intended("'10,000'", "s") == "10,000"
    assert intended("0.40", "") == "0.40"
    assert intended("0.125", ".1%") == "12.5%"
