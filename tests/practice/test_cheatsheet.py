"""optedu.practice.cheatsheet: every exported optimizer has an entry, every entry
cites a real section of its chapter, defaults are read (and equal torch's),
bytes are measured (and equal the closed form)."""

import inspect
import pathlib

import pytest
import torch

import optedu
from optedu.practice import cheatsheet as C
from optedu.practice import cheatsheet_entries as E
from optedu import lr_scheduler
from optedu.lr_scheduler import schedules

BOOK = pathlib.Path(__file__).resolve().parents[2] / "book"

SMALL = ((8, 4), (8,))


@pytest.fixture(autouse=True)
def _float32_default():
    """torch's ``step`` counters take the default dtype; other modules
    change it at import."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    yield
    torch.set_default_dtype(previous)


def test_every_cited_section_is_a_heading_of_its_chapter():
    headings = {}
    for name, entry in E.ENTRIES.items():
        for chapter in (entry.chapter, entry.section_chapter):
            assert (BOOK / f"{chapter}.ipynb").exists(), (name, chapter)
        chapter = entry.section_chapter
        if chapter not in headings:
            headings[chapter] = C.chapter_headings(chapter, BOOK)
        assert entry.section in headings[chapter], (name, entry.section)


def test_every_optimizer_has_one_place_in_the_family_tree():
    """Each catalogue row once, after its parent (that every optimizer has a row and an entry
    is tests/test_layout.py's test_every_optimizer_has_every_piece's to say)."""
    order = C.family_order()
    assert sorted(name for name, _ in order) == sorted(E.LINEAGE)
    seen = set()
    for name, depth in order:                     # parents come first
        parent = E.LINEAGE[name][0]
        assert (parent == "") == (depth == 0), name
        assert parent == "" or parent in seen, name
        seen.add(name)
    for name, (_, idea) in E.LINEAGE.items():
        assert 30 <= len(idea) <= 130, name


def test_family_tree_is_balanced_html_with_a_link_per_optimizer():
    from html.parser import HTMLParser

    class Balance(HTMLParser):
        def __init__(self):
            super().__init__()
            self.stack, self.items = [], 0

        def handle_starttag(self, tag, attrs):
            if tag in ("ul", "li", "a", "b", "div"):
                self.stack.append(tag)
            self.items += tag == "li"

        def handle_endtag(self, tag):
            assert self.stack.pop() == tag

    page = C.family_tree()
    parser = Balance()
    parser.feed(page[page.index("<div"):])
    assert parser.stack == [] and parser.items == len(E.LINEAGE)
    for name, entry in E.ENTRIES.items():
        assert f'href="{entry.chapter}.html"><b>{name}</b>' in page
    assert C.family_order({"A": ("", ""), "C": ("A", ""), "B": ("", "")}) \
        == [("A", 0), ("C", 1), ("B", 0)]


def test_anchor_is_the_id_sphinx_gives_the_heading():
    # ids read from the built site (_build/html/book/*.html)
    assert C.anchor(r"torch's form, and where its $\epsilon$ sits") == \
        "torch-s-form-and-where-its-epsilon-sits"
    assert C.anchor(r"What $\epsilon$ does at the start") == \
        "what-epsilon-does-at-the-start"
    assert C.anchor("The train/eval switch") == "the-train-eval-switch"


def test_text_fields_are_short_and_written():
    for name, entry in E.ENTRIES.items():
        assert entry.rule and len(entry.rule) <= 170, name
        assert 20 <= len(entry.use) <= 120, name
        assert 40 <= len(entry.pitfall) <= 160, name


@pytest.mark.parametrize("name", sorted(C.optimizer_classes()))
def test_defaults_equal_torchs(name):
    cls = C.optimizer_classes()[name]
    theirs = getattr(torch.optim, name, None)
    if theirs is None:
        pytest.skip("torch.optim has no such class")
    assert C.default_mismatches(cls, theirs) == {}


@pytest.mark.parametrize("name", ["Lion", "SGDScheduleFree",
                                  "AdamWScheduleFree"])
def test_defaults_equal_the_reference_packages(name):
    ours = C.optimizer_classes()[name]
    assert C.shared_mismatches(ours, C.reference(name)) == {}
    assert C.checked_against(name) == E.REFERENCES[name][0]


@pytest.mark.full  # importing bitsandbytes takes seconds
@pytest.mark.parametrize("name", ["Adam8bit", "AdamW8bit"])
def test_8bit_defaults_equal_bitsandbytes(name):
    ours = C.optimizer_classes()[name]
    assert C.shared_mismatches(ours, C.reference(name)) == {}


def test_a_mismatch_is_reported():
    def ours(params, lr=0.1, extra=1):
        pass

    def theirs(params, lr=0.01):
        pass

    found = C.default_mismatches(ours, theirs)
    assert found["lr"] == (0.1, 0.01) and set(found) == {"lr", "extra"}

    def quarter(params, clip=lambda s: s ** 0.25):
        pass

    def half(params, clip=lambda s: s ** 0.5):
        pass

    def also_quarter(params, clip=lambda step: step ** 0.25):
        pass

    assert set(C.default_mismatches(quarter, half)) == {"clip"}
    assert C.default_mismatches(quarter, also_quarter) == {}
    assert C.shared_mismatches(ours, theirs) == {"lr": (0.1, 0.01)}


def test_scheduler_defaults_equal_torchs():
    rows = C.scheduler_rows()
    checked = [r for r in rows if r["torch"] is not None]
    assert len(checked) >= 15
    for row in checked:
        assert C.default_mismatches(row["obj"], row["torch"]) == {}, row


def test_every_schedule_has_a_formula():
    names = {n for n in lr_scheduler.__all__
             if n not in ("LRScheduler", "ChainableLR", "Trace", "trace")}
    names |= {n for n in schedules.__all__ if n != "plot_schedules"}
    assert names == set(E.SCHEDULES)


def test_measured_bytes_equal_the_closed_form():
    rows = C.optimizer_rows(SMALL)
    for row in rows:
        for measured in (row["default"], row["variant"]):
            if measured is not None:
                assert measured.measured == measured.predicted, row["name"]
    by_name = {r["name"]: r for r in rows}
    assert by_name["SGD"]["default"].measured == {}
    assert by_name["SGD"]["variant"].per_element == 4.0
    assert set(by_name["Adam"]["default"].measured) == {
        "exp_avg", "exp_avg_sq", "step"}


def test_8bit_state_is_measured_when_quantised():
    got = C.measure("Adam8bit", SMALL, min_8bit_size=16, block_size=8)
    assert got.measured == got.predicted
    assert "exp_avg_indices" in got.measured


def test_literal_is_exact_and_short():
    assert C.literal(1e-08) == "10⁻⁸" and C.literal(1000000.0) == "10⁶"
    assert C.literal(0.3333333333333333) == "1/3"
    assert C.literal(0.001) == "0.001" and C.literal(2.0) == "2"
    assert C.literal((None, 0.001)) == "(None, 0.001)"
    assert C.literal(False) == "False" and C.literal("min") == "'min'"
    assert C.literal(-4.775) == "-4.775" and C.literal(0) == "0"


def test_tables_render_every_row():
    rows = C.optimizer_rows(SMALL)
    page = C.optimizer_table(rows)
    assert page.count("<tr>") == len(rows) + 1
    for name, entry in E.ENTRIES.items():
        assert f"<b>{name}</b>" in page
        assert f'href="{entry.section_chapter}.html#' in page
    assert "@media print" in page and r"\(" in page
    sched = C.scheduler_table(C.scheduler_rows())
    assert sched.count("<tr>") == len(E.SCHEDULES) + 1
    assert "<code>gamma=<wbr>0.1</code>" in sched       # StepLR, read
    assert "params" not in C._arguments_html(optedu.Adam)
    assert inspect.signature(optedu.Adam).parameters["lr"].default == 0.001


@pytest.mark.full  # measures every class's state once more (about 5 s)
def test_the_cost_column_reads_the_stored_table():
    from optedu.experiments import cost
    from optedu.instruments.display import num
    rows = C.optimizer_rows(SMALL)
    table = {r["rule"]: r for r in cost.table()}
    page = C.optimizer_table(rows, table)
    assert "Mix: B/param, step" in page and page.count("<tr>") == len(rows) + 1
    for row in rows:      # every class's bytes and ratio, as stored
        got = table[row["name"]]
        assert f'{got["bytes_per_param"]:.1f}<br>×{num(got["ratio"])}' in page, row["name"]


def test_tables_are_typeset_by_mathjax_in_the_book():
    # MyST marks a page's section mathjax_ignore; _config.yml's
    # processHtmlClass names mathjax_process, so the tables must carry it.
    for page in (C.optimizer_table(C.optimizer_rows(SMALL)),
                 C.scheduler_table(C.scheduler_rows())):
        div = page.index('<div class="optedu-sheet mathjax_process">')
        assert page.index(r"\(") > div


def test_recursive_schedulers_are_marked():
    rows = {r["name"]: r for r in C.scheduler_rows()}
    for name in ("StepLR", "CosineAnnealingLR", "MultiplicativeLR"):
        assert rows[name]["recursive"], name
    for name in ("LambdaLR", "OneCycleLR", "CyclicLR", "inverse_sqrt"):
        assert not rows[name]["recursive"], name
    table = C.scheduler_table(list(rows.values()))
    assert table.count("lr_scheduler; recursive") == sum(
        r["recursive"] for r in rows.values())


def test_every_formula_parses_as_tex():
    # matplotlib's mathtext, with the few MathJax commands it lacks mapped to
    # near equivalents: catches unbalanced braces and misspelt commands.
    import re

    from matplotlib.mathtext import MathTextParser
    parser = MathTextParser("agg")
    subs = [(r"\tfrac", r"\frac"), (r"\text", r"\mathrm"), (r"\Big", ""),
            (r"\big", ""), (r"\mathrel{-}=", "-="), (r"\nearrow", r"\uparrow"),
            (r"\searrow", r"\downarrow"), (r"\arg\min", r"\mathrm{argmin}")]
    formulas = {n: e.rule for n, e in E.ENTRIES.items()} | E.SCHEDULES
    for name, tex in formulas.items():
        for old, new in subs:
            tex = tex.replace(old, new)
        tex = re.sub(r"\\le(?![a-z])", r"\\leq", tex)
        parser.parse(f"${tex}$", dpi=72)          # raises on invalid TeX
