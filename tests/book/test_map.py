"""The intro's ways in and map of the book (tools/map.py): current, complete, correctly linked."""

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import map as book_map  # noqa: E402

LINK = re.compile(r"\]\((\w+)\.(?:ipynb|md)\)")


def _block(text: str, name: str) -> str:
    start, end = book_map.BLOCKS[name]
    return text.split(start)[1].split(end)[0]


@pytest.fixture(scope="module")
def intro():
    """The intro as stored and as tools/map.py renders it (0.8 s: every chapter's reading
    time), once for the tests that compare the two."""
    current = book_map.INTRO.read_text(encoding="utf-8")
    return current, book_map.render(current)


def test_intro_is_up_to_date(intro):
    current, rendered = intro
    assert rendered == current, "run python tools/map.py"


def test_every_chapter_is_on_the_map_once_in_reading_order():
    stems = [stem for _, _, chapter_stems in book_map.parts() for stem in chapter_stems]
    linked = LINK.findall(_block(book_map.INTRO.read_text(encoding="utf-8"), "map"))
    assert linked == stems


def test_a_missing_chapter_is_caught(intro):
    """The map test fails on a map that lost a chapter."""
    text = intro[1]
    broken = re.sub(r"\n  \d+\. \[Adam\]\(adam\.ipynb\)[^\n]*", "", text)
    assert broken != text
    stems = [stem for _, _, chapter_stems in book_map.parts() for stem in chapter_stems]
    assert LINK.findall(_block(broken, "map")) != stems


def test_paths_link_chapters_that_exist_with_their_numbers():
    paths = _block(book_map.INTRO.read_text(encoding="utf-8"), "paths")
    number = book_map.numbers()
    assert number["training_step"] == 1 and number["adam"] == 7
    for line in paths.splitlines():
        found = LINK.search(line)
        if found:
            assert (ROOT / "book").glob(f"{found.group(1)}.*")
            if found.group(1) in number:
                assert f"chapter {number[found.group(1)]}, " in line
    assert paths.count("### ") == 3


def test_a_path_naming_an_unknown_chapter_is_refused(monkeypatch):
    monkeypatch.setattr(book_map, "PATHS", [("Learn", "Who.", [(None, ["adam", "adamm"])])])
    with pytest.raises(ValueError, match=r"'Learn' names chapters not in _toc.yml: \['adamm'\]"):
        book_map.render_paths()


def test_reading_time_counts_prose_only():
    text = ("# Title\n\nFour words of prose.\n\n$$\na = b + c\n$$\n\nSee {numref}`fig-x` and "
            "[the page](other.ipynb).\n\n:::{admonition} Q1\n:class: dropdown\n\nTwo more.\n:::")
    # the title; the sentence; "See fig x and the page" (a bare reference reads as two
    # words, "Fig. 7.1"); the fold's body: its fence line and option are not prose
    assert book_map.prose_words(text) == 1 + 4 + 6 + 2


def test_the_map_renders_every_chapter_as_an_item_of_its_part():
    """CommonMark: a list numbered from 2 cannot interrupt a paragraph, so without the blank
    line after a part's caption its chapters ran on as one paragraph of text."""
    from markdown_it import MarkdownIt

    html = MarkdownIt("commonmark").render(book_map.render_map())
    items = re.findall(r"<li>\s*(?:<p>)?\s*<a href=\"([^\"]+)\"", html)
    stems = [stem for _, _, part in book_map.parts() for stem in part]
    assert [Path(item).stem for item in items] == stems
    assert html.count("<ol") == sum(numbered for _, numbered, _ in book_map.parts())


def test_stops_follow_each_path_in_its_order(monkeypatch):
    """A chapter's places on the paths (what its page's end shows): every step of a path in
    order, counted across steps, no neighbour before the first or after the last; a chapter on
    two paths has a place on each."""
    monkeypatch.setattr(book_map, "PATHS", [
        ("One", "Who.", [(None, ["a", "b", "c"])]),
        ("Two", "Who.", [("First", ["d", "b"]), ("Then", ["e"])])])
    S = book_map.Stop
    assert book_map.stops("a") == [S("One", None, 1, 3, None, "b")]
    assert book_map.stops("c") == [S("One", None, 3, 3, "b", None)]
    assert book_map.stops("b") == [S("One", None, 2, 3, "a", "c"),
                                   S("Two", "First", 2, 3, "d", "e")]
    assert book_map.stops("e") == [S("Two", "Then", 3, 3, "b", None)]
    assert book_map.stops("f") == []


def test_the_real_paths_have_stops_where_the_landing_page_lists_them():
    for heading, _, steps in book_map.PATHS:
        stems = [stem for _, chosen in steps for stem in chosen]
        walked = [next(s for s in book_map.stops(stem) if s.path == heading) for stem in stems]
        assert [s.place for s in walked] == list(range(1, len(stems) + 1))
        assert [s.next for s in walked] == stems[1:] + [None]
        assert [s.previous for s in walked] == [None] + stems[:-1]
    assert book_map.reading_time("questions") == "a bank to draw from"
    assert book_map.reading_time("adam").endswith("\u00a0min")


def test_a_path_that_leaves_chapters_out_says_which_it_takes():
    number = {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "x": 9}
    assert book_map._span(["a", "b", "c", "x"], number) == (
        " It reads chapters 1 to 3 in order, then 9; the map lists every chapter.")
    assert book_map._span(["a", "c", "e"], number) == (
        " It reads chapter 1, then 3 and 5; the map lists every chapter.")
    # every chapter from first to last, out of order, or not all numbered: nothing to say
    assert book_map._span(["b", "c", "d"], number) == ""
    assert book_map._span(["c", "a"], number) == ""
    assert book_map._span(["a", "questions"], number) == ""
    learn = book_map.PATHS[0][2][0][1]
    assert book_map._span(learn, book_map.numbers()).startswith(" It reads chapters 1 to 8")


def test_a_reading_time_never_ends_a_line_on_its_number():
    """Every reading time on the landing page and in the README holds its number and unit
    together ("15\u00a0min", "9\u00a0h 15\u00a0min"): with a plain space, "15" could end a line
    and "min" begin the next."""
    for path in (book_map.INTRO, book_map.README):
        text = path.read_text(encoding="utf-8")
        assert re.findall(r"\d+\u00a0min\b", text), path.name
        broken = re.findall(r"\d+ (?:min|h)\b", text)
        assert not broken, f"{path.name}: {broken[:3]}"


def test_the_first_lines_of_the_landing_page_link_every_path():
    """Before its first section, the landing page names the three paths, each linked to its
    heading's label with its reading time, so the first screen says where to begin."""
    text = book_map.INTRO.read_text(encoding="utf-8")
    first = text.split("\n## ")[0]
    for heading, _, _ in book_map.PATHS:
        label = book_map.path_label(heading)
        assert f"](#{label}) (" in first.replace("\n", " "), heading
        assert f"\n({label})=\n### {heading}\n" in text, heading
