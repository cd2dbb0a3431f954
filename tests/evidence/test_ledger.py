"""optedu.evidence: the ledger of large-run findings, its checks, and each check failing once.

The good ledger: enough records, most of them read in their sources, every one with a source
that points into it and a scale, topics that are chapters of book/. The bad rows: each check
of optedu.evidence raises ValueError naming the record and the field.
"""

import copy
import re
import tomllib
from pathlib import Path

import pytest

from optedu import evidence

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = sorted(path.stem for path in (ROOT / "book").glob("*.ipynb"))
# where in a source its numbers stand: a table, figure, section, the abstract, a file
LOCATOR = re.compile(r"(?i)\b(table|figure|section|abstract|results history)\b|\.(md|py)\b")


def test_the_ledger_is_large_enough_and_mostly_checked():
    findings = evidence.load()
    assert len(findings) >= 25, len(findings)
    assert sum(f.checked for f in findings) >= 20, [f.id for f in findings if not f.checked]


def test_every_record_has_a_source_that_points_into_it():
    for f in evidence.load():
        s = f.source
        assert s.authors.strip() and s.title.strip() and s.id.strip(), f.id
        assert 1950 < s.year < 2100, (f.id, s.year)
        assert re.match(r"arXiv:\d{4}\.\d{4,5}$|https?://", s.id), (f.id, s.id)
        assert LOCATOR.search(s.locator), f"{f.id}: locator {s.locator!r} names no table, " \
            "figure, section, abstract or file"


def test_every_record_has_a_scale():
    """Parameters and tokens or steps, or, where the source gives none, the reason why."""
    for f in evidence.load():
        has_size = f.model.parameters is not None and f.model.parameters > 0
        has_length = any(n is not None and n > 0 for n in (f.data.tokens, f.data.steps))
        assert (has_size and has_length) or (f.scale_unstated or "").strip(), f.id
        assert f.model.name.strip() and f.data.dataset.strip(), f.id


def test_unchecked_records_say_why():
    for f in evidence.load():
        assert f.checked or (f.unchecked_because or "").strip(), f.id


def test_ids_are_unique_slugs():
    ids = [f.id for f in evidence.load()]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z0-9_]+", i) for i in ids), ids


def test_topics_are_chapters_of_the_book():
    assert "muon" in CHAPTERS  # the stems were read
    evidence.check_topics(evidence.load(), CHAPTERS)
    assert all(f.topics for f in evidence.load())


def test_find_and_about():
    wen = evidence.find("wen2025_speedup_by_size")
    assert wen.numbers["speedup_0p1b_x"] == 1.4 and wen.numbers["speedup_1p2b_x"] == 1.1
    assert wen in evidence.about("results")
    assert all("edge_of_stability" in f.topics for f in evidence.about("edge_of_stability"))
    with pytest.raises(KeyError, match="no ledger record 'nope'"):
        evidence.find("nope")
    with pytest.raises(TypeError):
        wen.numbers["speedup_0p1b_x"] = 2.0  # read-only


def test_the_ledger_ships_with_the_package():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "evidence/ledger.yaml" in config["tool"]["setuptools"]["package-data"]["optedu"]
    assert any(d.lower().startswith("pyyaml") for d in config["project"]["dependencies"])


# --- each check, failing once ---------------------------------------------------------------

GOOD = {
    "id": "good", "claim": "A claim.", "numbers": {"speedup_x": 1.4},
    "model": {"name": "a model", "parameters": 1.2e9},
    "data": {"dataset": "a dataset", "tokens": 2.4e10, "steps": None},
    "tuning": "Tuned.", "hardware": None,
    "source": {"authors": "A. Author", "year": 2025, "title": "A title",
               "id": "arXiv:2509.02046", "locator": "Table 1"},
    "checked": True, "topics": ["muon"],
}


def _set(row, path, value):
    *parents, last = path.split(".")
    for key in parents:
        row = row[key]
    if value is _DROP:
        del row[last]
    else:
        row[last] = value


_DROP = object()
BAD = [  # (field path, bad value, what the message says)
    ("claim", _DROP, "claim is missing"),
    ("source.locator", _DROP, "source.locator is missing"),
    ("model.parameters", _DROP, "model.parameters is missing"),
    ("source.locator", " ", "source.locator is empty"),
    ("numbers.speedup_x", "1.4x", "numbers.speedup_x is not a number"),
    ("numbers.speedup_x", True, "numbers.speedup_x is not a number"),
    ("numbers", [1.4], "numbers is not a mapping"),
    ("model.parameters", 0, "model.parameters is not a positive number"),
    ("model.parameters", -1.2e9, "model.parameters is not a positive number"),
    ("model.parameters", "1.2B", "model.parameters is not a positive number"),
    ("data.tokens", -1, "data.tokens is not a positive number"),
    ("model.parameters", None, "scale_unstated is missing"),
    ("data.tokens", None, "scale_unstated is missing"),
    ("source.year", "2025", "source.year is not a year"),
    ("checked", "yes", "checked is not true or false"),
    ("checked", False, "unchecked_because is missing"),
    ("topics", "muon", "topics is not a list"),
    ("claims", "A typo.", "claims is not a field"),
]


def test_a_good_row_passes():
    (finding,) = evidence.parse([copy.deepcopy(GOOD)])
    assert finding.model.parameters == 1.2e9 and finding.topics == ("muon",)
    row = copy.deepcopy(GOOD) | {"checked": False, "unchecked_because": "not read"}
    row["model"]["parameters"] = None
    row["scale_unstated"] = "the source gives no size"
    assert not evidence.parse([row])[0].checked


@pytest.mark.parametrize("path, value, message", BAD, ids=[b[2] for b in BAD])
def test_a_bad_row_is_refused(path, value, message):
    row = copy.deepcopy(GOOD)
    _set(row, path, value)
    with pytest.raises(ValueError, match=re.escape(f"ledger record 'good': {message}")):
        evidence.parse([row])


def test_a_duplicate_id_is_refused():
    with pytest.raises(ValueError, match="ledger record 'good': id is a duplicate"):
        evidence.parse([copy.deepcopy(GOOD), copy.deepcopy(GOOD)])


def test_a_topic_that_is_no_chapter_is_refused():
    row = copy.deepcopy(GOOD) | {"topics": ["muon", "nope"]}
    with pytest.raises(ValueError, match=re.escape("ledger record 'good': topics ['nope']")):
        evidence.check_topics(evidence.parse([row]), CHAPTERS)
