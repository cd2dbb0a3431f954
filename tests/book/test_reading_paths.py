"""book/_ext/reading_paths.py: what the end of a chapter on a reading path shows."""

import importlib.util
from pathlib import Path

import pytest
from docutils import nodes

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("reading_paths", ROOT / "book/_ext/reading_paths.py")
reading_paths = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reading_paths)


@pytest.fixture(scope="module")
def book_map():
    return reading_paths.load_map(ROOT)


def _page(stem, book_map):
    return reading_paths.page_paths(stem, book_map, title=str.upper,
                                    href=lambda other: f"{other}.html",
                                    landing=lambda path: f"intro.html#{path[:5]}")


def test_a_chapter_on_two_paths_gets_both_with_its_neighbours(book_map):
    shown = _page("adam", book_map)
    assert [p["name"] for p in shown] == ["Learn the rules", "Prepare for interviews"]
    learn = shown[0]
    assert (learn["place"], learn["length"], learn["step"]) == (7, 11, None)
    assert learn["href"] == "intro.html#Learn"
    assert learn["previous"] == {"title": "RMSPROP", "href": "rmsprop.html"}
    assert learn["next"] == {"title": "ADAMW", "href": "adamw.html",
                             "time": book_map.reading_time("adamw")}
    assert shown[1]["previous"]["href"] == "cheatsheet.html"


def test_the_ends_of_a_path_have_no_neighbour_beyond_them(book_map):
    first, = _page("training_step", book_map)
    assert first["previous"] is None and first["next"]["href"] == "gradient_descent.html"
    last, = _page("schedules", book_map)
    assert last["next"] is None and last["previous"]["href"] == "preconditioners.html"
    assert _page("sparse_adam", book_map) == []


def test_a_step_of_a_path_is_named(book_map):
    tune, = _page("lr_finding", book_map)
    assert (tune["step"], tune["place"], tune["length"]) == ("Tune", 7, 18)
    assert tune["previous"]["href"] == "muon.html"  # across the steps' boundary


def test_anchors_of_the_landing_pages_sections():
    doc = nodes.document(None, None)
    for title, ids in (("Learn the rules", ["learn-the-rules"]), ("Untitled", [])):
        section = nodes.section(ids=ids)
        section += nodes.title(text=title)
        doc += section
    assert reading_paths.anchors(doc) == {"Learn the rules": "learn-the-rules"}
