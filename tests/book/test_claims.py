"""The page "Claims in circulation, tested": its data is valid, the page is up to date, and
every chapter's link to it lands on a section that exists."""

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import claims  # noqa: E402

LINK = re.compile(r"<(claims-[A-Za-z0-9_]+)>`|\{ref\}`(claims-[A-Za-z0-9_]+)`")


def test_data_is_valid():
    assert claims.problems(claims.load()) == []


def test_page_is_up_to_date():
    current = claims.PAGE.read_text(encoding="utf-8")
    assert claims.render(current, claims.load()) == current, "run python tools/claims.py"


def test_chapter_links_land_on_a_section():
    data = claims.load()
    sections = {f"claims-{stem}" for stem, entries in data.items() if entries}
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        for cell in cells:
            for link in LINK.findall("".join(cell["source"])):
                target = link[0] or link[1]
                assert target in sections, f"{path.name} links to {target}, which has no claims"


@pytest.mark.parametrize("change, message", [
    ({"source": "a blog"}, "unknown source 'a blog'"),
    ({"verdict": "mostly"}, "verdict 'mostly'"),
    ({"run": "no-such-label"}, "has no label (no-such-label)="),
    ({"truth": "It is {glue:text}`adam.ipynb::never_glued_key`."}, "never_glued_key is never glued"),
    ({"truth": "It is {glue:text}`adamw.ipynb::x`."}, "not from its own chapter"),
])
def test_problems_are_found(change, message):
    """The check can fail: each kind of bad entry is reported by name."""
    good = {"source": "the long lesson", "claim": "c", "verdict": "false", "truth": "t",
            "run": "chap-adam"}
    assert claims.problems({"adam": [good]}) == []
    found = claims.problems({"adam": [{**good, **change}]})
    assert len(found) == 1 and message in found[0], found


def test_an_unknown_chapter_and_missing_field_are_found():
    assert "not a chapter" in claims.problems({"nochapter": []})[0]
    assert "fields" in claims.problems({"adam": [{"claim": "c"}]})[0]


def test_entry_renders_folded_with_its_verdict_and_link():
    entry = {"source": ["the tutorial", "the long lesson"], "claim": "Adam needs no tuning.",
             "verdict": "half true",
             "truth": "Its default rate often works ({glue:text}`adam.ipynb::k`).",
             "run": "chap-adam"}
    page = claims.render(f"# T\n\n{claims.MARKER}\n", {"adam": [entry]})
    assert "(claims-adam)=\n## Adam" in page
    assert (":::{admonition} Adam needs no tuning. (the tutorial and the long lesson)\n"
            ":class: dropdown claim") in page
    # another page's text glue needs its format spec written out, or MyST-NB misreads the key
    assert "**Half true.** Its default rate often works ({glue:text}`adam.ipynb::k:s`)." in page
    assert "Decided by the run in {ref}`Adam <chap-adam>`." in page
    assert "| the tutorial | 1 | 0 | 0 | 1 | 0 | 0 |" in page


SOURCE_NAMES = re.compile(r"\b(?:the long lesson|interview page|the tutorial)\b", re.I)
MOST_MENTIONS = 2  # a chapter names the documents at most twice; the claims page has the rest


def _source_mentions(markdown: str) -> int:
    return len(SOURCE_NAMES.findall(markdown))


def test_the_mention_count_catches_an_audit():
    audit = ("The long lesson says X. The tutorial says Y. The PyTorch interview page says Z; "
             "the long lesson is wrong.")
    assert _source_mentions(audit) == 4 > MOST_MENTIONS
    assert _source_mentions("A tutorial-style walk through, an interview of the author.") == 0


@pytest.mark.parametrize("path", sorted((ROOT / "book").glob("*.ipynb")), ids=lambda p: p.stem)
def test_chapters_leave_the_audit_to_the_claims_page(path):
    """A chapter keeps the runs that decide the sources' claims and teaches their point in its
    own terms; naming the documents claim by claim belongs on the claims page."""
    cells = json.loads(path.read_text())["cells"]
    markdown = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert _source_mentions(markdown) <= MOST_MENTIONS, \
        f"{path.name} names the source documents {_source_mentions(markdown)} times"
