"""tools/reader.py: the chapters' MyST as the Markdown + HTML JupyterLab renders (``make lab``),
and glue's note when a re-run computes another value than the prose shows."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import re
import sys

import pytest

from optedu.instruments.display import GLUE_PREFIX
from optimizers import FULL

ROOT = pathlib.Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("reader", ROOT / "tools" / "reader.py")
reader = importlib.util.module_from_spec(_spec)
sys.modules["reader"] = reader  # dataclasses look their module up
_spec.loader.exec_module(reader)

# What JupyterLab would show raw if the converter missed it.
RAW = ("{glue", "{numref", "{cite", "{eq}", "{ref}", "{doc}", "{prf:", "{math}", ":::{", "```{")
LABEL_LINE = re.compile(r"^\([^()\s]+\)=\s*$", re.M)


def raw_myst(nb: dict) -> list[str]:
    """Each Markdown cell's leftover MyST: ``'cell 3: {numref'``."""
    found = []
    for k, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "markdown":
            text = reader._source(cell)
            found += [f"cell {k}: {raw}" for raw in RAW if raw in text]
            found += [f"cell {k}: label" for _ in LABEL_LINE.findall(text)]
    return found


def md(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def code(text: str, outputs=(), **metadata) -> dict:
    return {"cell_type": "code", "execution_count": 1, "metadata": metadata,
            "outputs": list(outputs), "source": text}


def glued(name: str, text: str) -> dict:
    """A stored output of ``glue(name, value, display=False)`` whose text/plain is ``text``
    (a number's as Python prints it; a string's quoted)."""
    prefix = GLUE_PREFIX
    return {"output_type": "display_data", "data": {prefix + "text/plain": text},
            "metadata": {"scrapbook": {"name": name, "mime_prefix": prefix}}}


def notebook(*cells) -> dict:
    return {"cells": list(cells), "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


TOC = """\
format: jb-book
root: intro
parts:
  - caption: Numbered
    numbered: true
    chapters:
      - file: book/one
      - file: book/two
  - caption: Practice
    chapters:
      - file: book/bank
      - file: book/questions
      - file: book/sheet
"""

BIB = r"""
@inproceedings{kingma2015, author = {Kingma, Diederik P. and Ba, Jimmy},
  title = {Adam}, booktitle = {ICLR}, year = {2015}}
@article{reddi2018, author = {Reddi, Sashank J. and Kale, Satyen and Kumar, Sanjiv},
  title = {On the Convergence of Adam}, journal = {ICLR}, year = {2018}}
@misc{paszke2019, author = {Paszke, Adam and others}, title = {PyTorch}, year = {2019}}
@misc{goyal, author = {Goyal, Priya and Doll{\'a}r, Piotr}, title = {Large}, year = {2017}}
"""

FIGURE = {"mystnb": {"figure": {"caption": "Loss against {glue:text}`lr`.", "name": "fig-two-a"},
                     "image": {"alt": "a plot"}}}


def write_book(tmp_path, two_cells, one_cells=None, bank_cells=None, page="# Questions\n"
               ) -> reader.Book:
    book = tmp_path / "book"
    book.mkdir()
    (tmp_path / "_toc.yml").write_text(TOC)
    (tmp_path / "_config.yml").write_text('title: "A small book"\n')
    (book / "references.bib").write_text(BIB)
    (book / "intro.md").write_text("# Intro\n")
    (book / "questions.md").write_text(page)
    one = one_cells or [md("(chap-one)=\n# First chapter")]
    (book / "one.ipynb").write_text(json.dumps(notebook(*one)))
    (book / "two.ipynb").write_text(json.dumps(notebook(*two_cells)))
    (book / "bank.ipynb").write_text(json.dumps(notebook(*(bank_cells or [md("# Bank")]))))
    (book / "sheet.ipynb").write_text(json.dumps(notebook(
        md("# Sheet"), code("plot()"),
        code("plot()", **{"mystnb": {"figure": {"caption": "c", "name": "fig-sheet"}}}),
        md("See {numref}`fig-sheet`."))))
    return reader.Book(book)


def convert(tmp_path, *cells, **kw) -> tuple[dict, list[str]]:
    """The reader copy of chapter two (chapter 2) made of ``cells``; its Markdown texts."""
    book = write_book(tmp_path, list(cells), **kw)
    nb = reader.reader_notebook(book, "two")
    return nb, [c["source"] for c in nb["cells"] if c["cell_type"] == "markdown"]


# -- each construct ---------------------------------------------------------------------------

def test_glue_text_and_format_take_the_stored_value(tmp_path):
    nb, texts = convert(tmp_path, code("glue(...)", [glued("lr", "0.125"), glued("name", "Adam")]),
                        md("Rate {glue:text}`lr`, {glue:text}`lr:.1f` and {glue}`name`."))
    assert texts == ["Rate 0.125, 0.1 and Adam."]


def test_glued_text_reads_as_on_the_website(tmp_path):
    """A string's quotes go and its text stays (10,000 is no tuple, 0.40 keeps its zero); an
    unquoted number is read as MyST-NB reads it."""
    nb, texts = convert(tmp_path, code("glue(...)", [glued("n", "'10,000'"),
                                                     glued("r", "'0.40'"), glued("x", "0.40")]),
                        md("{glue:text}`n`, {glue:text}`r` and {glue:text}`x`."))
    assert texts == ["10,000, 0.40 and 0.4."]


def test_glue_from_another_chapter_and_a_missing_value(tmp_path):
    one = [md("# One"), code("glue()", [glued("steps", "44")])]
    _, texts = convert(tmp_path, md("{glue:text}`one.ipynb::steps` and {glue:text}`gone`."),
                       one_cells=one)
    assert texts == ["44 and **[gone: not in the stored outputs]**."]


def test_figures_equations_and_propositions_are_numbered_per_chapter(tmp_path):
    cells = [md("(chap-two)=\n# Two\n\n$$\na = b\n$$ (eq-a)\n\n$$\nc\n$$\n\n$$ d $$ (eq-d)"),
             code("plot()", [glued("lr", "0.5")], **FIGURE),
             md("```{prf:proposition} Bias\n:label: two-prop\n\nTrue.\n```\n\n"
                "```{prf:proof}\nBecause. $\\square$\n```"),
             md("{numref}`fig-two-a`, {eq}`eq-d`, {prf:ref}`two-prop`, "
                "{numref}`Figure %s <fig-two-a>`.")]
    nb, texts = convert(tmp_path, *cells)
    assert "$$\na = b \\tag{2.1}\n$$" in texts[0] and "$$ d \\tag{2.2}\n$$" in texts[0]
    assert "c\n$$" in texts[0] and "\\tag{2.3}" not in texts[0]
    assert texts[1] == "**Fig. 2.1.** Loss against 0.5."    # the caption follows its figure
    assert "<b>Proposition 2.1 (Bias).</b>" in texts[2] and "Because. $\\square$" in texts[2]
    assert "∎" not in texts[2]                              # the proof's own square suffices
    assert texts[3] == "Fig. 2.1, Eq. 2.2, Proposition 2.1, Figure 2.1."


def test_unnumbered_pages_share_one_count_in_toc_order(tmp_path):
    """As Sphinx's numfig: outside numbered parts, figures count on from page to page."""
    bank = [md("# Bank"), code("plot()", **{"mystnb": {"figure": {"caption": "b", "name": "b"}}}),
            code("plot()", **{"mystnb": {"figure": {"caption": "unnamed: no number"}}})]
    book = write_book(tmp_path, [md("# Two")], bank_cells=bank)
    assert book.labels["fig-sheet"].text == "Fig. 2"
    texts = [c["source"] for c in reader.reader_notebook(book, "bank")["cells"]
             if c["cell_type"] == "markdown"]
    assert texts[1:3] == ["**Fig. 1.** b", "unnamed: no number"]
    texts = [c["source"] for c in reader.reader_notebook(book, "sheet")["cells"]
             if c["cell_type"] == "markdown"]
    assert texts[-1] == "See Fig. 2."


def test_citations_as_the_website_writes_them(tmp_path):
    _, texts = convert(tmp_path, md("{cite:p}`kingma2015` {cite:t}`reddi2018` "
                                    "{cite:p}`paszke2019,goyal`"))
    assert texts[0] == ("[Kingma and Ba, 2015] Reddi et al. [2018] "
                        "[Paszke and others, 2019, Goyal and Dollár, 2017]")
    assert texts[-1].startswith("## Works cited\n\n- Diederik P. Kingma and Jimmy Ba. Adam. *ICLR*, 2015.\n"
                                     "- Sashank J. Reddi, Satyen Kale and Sanjiv Kumar.")


def test_labels_dropped_refs_and_docs_become_titles_and_links(tmp_path):
    one = [md("(chap-one)=\n# First chapter\n\n(one-sec)=\n## The `lr` *matters*")]
    _, texts = convert(
        tmp_path, md("(chap-two)=\n# Two\n\n(two-sec)=\n## Local part\n\nText."),
        md("{ref}`chap-one`, {ref}`one-sec`, {ref}`here <two-sec>`, {doc}`one`."),
        one_cells=one)
    assert texts[0] == "# Two\n\n## Local part\n\nText."
    assert texts[1] == ("[First chapter](<01_one.ipynb#First-chapter>), "
                        "[The `lr` *matters*](<01_one.ipynb#The-lr-matters>), "
                        "[here](<#Local-part>), [First chapter](<01_one.ipynb>).")


def test_dropdowns_fold_and_interview_questions_keep_their_level(tmp_path):
    _, texts = convert(tmp_path, md(
        ":::{admonition} Q1. Why `lr`?\n:class: dropdown q-deep\n\nBecause $x$.\n:::\n\n"
        ":::{admonition} Plain note\n\nSeen.\n:::\n\n```{note}\nA note.\n```"))
    text = texts[0]
    details = text[text.index("<details"):text.index("</details>")]
    assert " open" not in details.split(">")[0]
    assert "<summary" in details and "Q1. Why <code>lr</code>?" in details
    assert ">deep</span></summary>\n\nBecause $x$.\n\n" in details   # blank lines: Markdown
    assert "<b>Plain note</b></p>\n\nSeen." in text and "<b>Note</b></p>\n\nA note." in text
    assert text.count("<details") == 1


def test_exercises_and_solutions(tmp_path):
    _, texts = convert(
        tmp_path,
        md("```{exercise}\n:label: two-ex-1\n\nCompute.\n```\n\n"
           "```{solution} two-ex-1\n:class: dropdown\n\nDone.\n```"),
        md("```{exercise} Named\n:label: two-ex-2\n\nAgain.\n```"))
    assert "<b>Exercise 2.1</b></p>\n\nCompute." in texts[0]
    assert "<summary" in texts[0] and "<b>Solution to Exercise 2.1</b>" in texts[0]
    assert "Done.\n\n</details>" in texts[0]
    assert "<b>Exercise 2.2 (Named)</b>" in texts[1]


def test_a_solution_over_several_cells_folds_its_code(tmp_path):
    nb, texts = convert(
        tmp_path,
        md("```{exercise}\n:label: two-ex-1\n\nCompute.\n```\n\n"
           "```{solution-start} two-ex-1\n:class: dropdown\n```\n\nFirst part."),
        code("answer()"),
        md("```{solution-end}\n```\n\nAfter the solution."),
        code("later()"))
    assert texts[0].startswith("<div") and "</div>\n\n<details" in texts[0]
    assert "First part.\n\n*Its code is in the folded cells below.*" in texts[0]
    assert texts[1] == "After the solution."
    answer, later = [c for c in nb["cells"] if c["cell_type"] == "code"][1:]
    assert answer["metadata"]["jupyter"] == {"source_hidden": True, "outputs_hidden": True}
    assert "jupyter" not in later["metadata"]


def test_math_directive_and_code_fences_kept_verbatim(tmp_path):
    _, texts = convert(tmp_path, md(
        "```{math}\n:label: eq-m\nx = 1\n```\n\n```python\nprint('{glue:text}`k`')\n```\n\n"
        "{eq}`eq-m`"))
    assert texts[0] == ("$$\nx = 1 \\tag{2.1}\n$$\n\n```python\nprint('{glue:text}`k`')\n```"
                        "\n\nEq. 2.1")


def test_an_unknown_directive_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown directive {mystery}"):
        convert(tmp_path, md("```{mystery}\nx\n```"))


def test_hidden_cells_are_collapsed_and_code_is_kept(tmp_path):
    cells = [code("glue()", [glued("a", "1")], tags=["remove-input"]),
             code("show()", tags=["hide-input"]), code("print(1)", tags=["hide-output"]),
             code("x = 1", tags=["remove-cell"]), code("y = 2")]
    nb, _ = convert(tmp_path, *cells, md("{glue:text}`a`"))
    got = [c["metadata"].get("jupyter") for c in nb["cells"][1:6]]
    assert got == [{"source_hidden": True}, {"source_hidden": True}, {"outputs_hidden": True},
                   {"source_hidden": True, "outputs_hidden": True}, None]
    assert [c["source"] for c in nb["cells"][1:6]] == [c["source"] for c in cells]
    assert nb["cells"][1]["outputs"] == cells[0]["outputs"]


def test_the_cell_after_the_title_hands_the_prose_values_to_glue(tmp_path):
    nb, _ = convert(tmp_path, md("# Two"),
                    code("glue()", [glued("a", "1.5"), glued("unused", "7")]),
                    md("{glue:text}`a:.0f` and {glue:text}`a`."))
    title, values = nb["cells"][:2]
    assert title["source"] == "# Two"
    assert values["metadata"]["jupyter"] == {"source_hidden": True}
    # the stored text/plain, only for keys the prose shows, in the copy's metadata
    assert nb["metadata"]["optedu_reader"]["shown"] == {"a": "1.5"}
    code_lines = [x for x in values["source"].splitlines() if not x.startswith("#")]
    assert code_lines == ["from optedu.instruments.display import reader_values",
                          "reader_values('02_two.ipynb')"]


def test_reader_values_reads_a_copy_s_metadata(tmp_path, shown):
    """The cell names its copy; a copy saved under another name flags nothing."""
    display, _ = shown
    copy = tmp_path / "07_adam.ipynb"
    copy.write_text(json.dumps({"cells": [], "metadata": {
        "optedu_reader": {"source": "book/adam.ipynb", "shown": {"loss": "'0.65'"}}}}))
    display.reader_values(str(copy))
    assert display._shown == {"loss": "'0.65'"}
    display.reader_values(str(tmp_path / "renamed.ipynb"))
    assert display._shown is None


def test_the_values_cell_opens_no_chapter_but_precedes_its_code(tmp_path):
    """The title opens the copy; the values reach glue() before any cell runs."""
    def kinds(nb):
        return ["values" if "reader_values(" in c["source"] else c["cell_type"]
                for c in nb["cells"]]

    (tmp_path / "a").mkdir()
    nb, _ = convert(tmp_path / "a", md("# Two\n\nAt a glance."), md("More."), code("glue()"))
    assert kinds(nb) == ["markdown", "values", "markdown", "code"]
    (tmp_path / "b").mkdir()   # a code cell before the title (an install cell): it moves up
    nb, _ = convert(tmp_path / "b", code("install()"), md("# Two"), code("glue()"))
    assert kinds(nb) == ["markdown", "values", "code", "code"]
    assert nb["cells"][0]["source"] == "# Two" and nb["cells"][2]["source"] == "install()"
    (tmp_path / "c").mkdir()
    nb, _ = convert(tmp_path / "c", code("glue()"), md("Text, no title."))
    assert kinds(nb) == ["values", "code", "markdown"]


# -- the copies as a set: names in reading order, the index, pages, stale copies -------------

def test_copies_are_numbered_in_reading_order(tmp_path):
    """A chapter's name carries the book's number, zero-padded, so that JupyterLab's
    alphabetical list is the reading order; the pages of unnumbered parts count on after."""
    book = write_book(tmp_path, [md("# Two")])
    assert {doc: book.filename(doc) for doc in book.copies} == {
        "one": "01_one.ipynb", "two": "02_two.ipynb", "bank": "03_bank.ipynb",
        "questions": "04_questions.ipynb", "sheet": "05_sheet.ipynb"}
    out = tmp_path / "_reader"
    assert reader.main(["--book", str(book.folder), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.glob("*.ipynb")) == [
        "00_index.ipynb", "01_one.ipynb", "02_two.ipynb", "03_bank.ipynb",
        "04_questions.ipynb", "05_sheet.ipynb"]


def test_links_between_copies_use_the_numbered_names(tmp_path):
    one = [md("(chap-one)=\n# First chapter")]
    _, texts = convert(tmp_path, md(
        "{doc}`one`, {ref}`chap-one`, [the bank](bank.ipynb), "
        "[a section](<questions.md#Foundations>), [the intro](intro.md), `[x](one.ipynb)`."),
        one_cells=one)
    assert texts[0] == ("[First chapter](<01_one.ipynb>), "
                        "[First chapter](<01_one.ipynb#First-chapter>), "
                        "[the bank](<03_bank.ipynb>), "
                        "[a section](<04_questions.ipynb#Foundations>), "
                        "the intro, `[x](one.ipynb)`.")   # no copy of the intro: no link


def test_the_index_lists_every_part_and_links_every_copy(tmp_path):
    book = write_book(tmp_path, [md("# Two")], bank_cells=[md("# The `bank`")])
    out = tmp_path / "_reader"
    reader.main(["--book", str(book.folder), "--out", str(out)])
    nb = json.loads((out / "00_index.ipynb").read_text())
    (cell,) = nb["cells"]
    text = cell["source"]
    assert cell["cell_type"] == "markdown" and text.startswith("# A small book\n\n")
    order = ["## Numbered", "1. [First chapter](<01_one.ipynb>)", "2. [Two](<02_two.ipynb>)",
             "## Practice", "- [The `bank`](<03_bank.ipynb>)",
             "- [Questions](<04_questions.ipynb>)", "- [Sheet](<05_sheet.ipynb>)"]
    assert [text.index(line) for line in order] == sorted(text.index(line) for line in order)
    links = re.findall(r"\]\(<([^>]+)>\)", text)
    assert set(links) == {book.filename(doc) for doc in book.copies}
    assert text.index("[Questions](<04_questions.ipynb>)") < text.index("## Numbered")
    assert nb["metadata"]["kernelspec"]["name"] == "python3"   # JupyterLab asks for none


@pytest.fixture(scope="module")
def book():
    """The real book, read once for the module's tests (0.35 s); reader_notebook copies what
    it converts, so a test leaves it as it found it."""
    return reader.Book()


def test_the_index_of_the_book_opens_on_three_ways_in_with_reading_times(book):
    """As the intro does (tools/map.py): each path's chapters linked to their copies, each
    with its reading time; then every part, every chapter with its reading time."""
    text = reader.index_notebook(book)["cells"][0]["source"]
    ways = ["## Three ways in", "### Learn the rules", "### Practise: choose, tune, debug a run",
            "### Prepare for interviews", "## Foundations"]
    assert [text.index(w) for w in ways] == sorted(text.index(w) for w in ways)
    adam = book.filename("adam")
    assert re.search(rf"\d\. \[Adam[^\]]*\]\(<{adam}>\) \(chapter \d+, \d+\u00a0min\)", text)
    chapters = re.findall(r"^\d+\. \[.*$", text[text.index("## Foundations"):], re.M)
    assert len(chapters) == len(book.chapters)
    assert all(re.search(r", \d+\u00a0min$", line) for line in chapters), chapters[:3]
    links = set(re.findall(r"\]\(<([^>]+)>\)", text))
    assert links == {book.filename(doc) for doc in book.copies}


def test_a_copy_on_a_reading_path_ends_by_continuing_it(book):
    """As the website's chapters do (book/_ext/reading_paths.py): the last cell of a copy on a
    path names each path it is on, linked to its heading in the index, with the copy's place
    and the copies before and after it; the ends of a path have no link beyond them."""
    index = reader.index_notebook(book)["cells"][0]["source"]
    headings = {reader._heading_id(h) for h in re.findall(r"^### (.+)$", index, re.M)}
    book_map = reader._map_tool()
    for heading, _, steps in book_map.PATHS:
        stems = [stem for _, chosen in steps for stem in chosen]
        for k in (0, 1, len(stems) - 1):
            stem = stems[k]
            last = reader.reader_notebook(book, stem)["cells"][-1]
            assert last["cell_type"] == "markdown", stem
            block = next(b for b in last["source"].split("\n\n") if f"[{heading}]" in b)
            assert f"chapter {k + 1} of {len(stems)}" in block, block
            anchor = re.search(rf"\[{re.escape(heading)}\]\(<00_index\.ipynb#([^>]+)>\)", block)
            assert anchor and anchor.group(1) in headings, block
            before = re.search(r"Previous: \[[^\]]+\]\(<([^>]+)>\)", block)
            after = re.search(r"Next: \[[^\]]+\]\(<([^>]+)>\) \(\d+\u00a0min\)", block)
            assert (before.group(1) if before else None) == (
                book.filename(stems[k - 1]) if k else None), block
            assert (after.group(1) if after else None) == (
                book.filename(stems[k + 1]) if k + 1 < len(stems) else None), block
    assert reader.path_text(book, "sparse_adam") == ""


def test_a_page_of_the_book_becomes_a_reader_notebook(tmp_path):
    page = ("(bank)=\n# Questions\n\nIntro {glue:text}`one.ipynb::steps`.\n\n"
            "## Foundations\n\n### One\n\n"
            ":::{admonition} Q1. Why?\n:class: dropdown q-warmup\n:name: q-one-1\n\n"
            "Because.\n:::\n\n```python\n# not a heading\n```\n\n"
            "## By theme\n\n- {ref}`One, Q1 <q-one-1>`; {doc}`one`\n")
    one = [md("# First chapter"), code("glue()", [glued("steps", "44")])]
    book = write_book(tmp_path, [md("# Two")], one_cells=one, page=page)
    nb = reader.reader_notebook(book, "questions")
    texts = [c["source"] for c in nb["cells"]]
    assert [c["cell_type"] for c in nb["cells"]] == ["markdown"] * 4   # a cell per section
    assert texts[0] == "# Questions\n\nIntro 44."
    assert texts[1] == "## Foundations"
    assert texts[2].startswith("### One\n\n<details") and ">warm-up</span>" in texts[2]
    assert texts[2].endswith("```python\n# not a heading\n```")
    assert texts[3] == "## By theme\n\n- [One, Q1](<#One>); [First chapter](<01_one.ipynb>)"
    assert not raw_myst(nb) and not book.missing["questions"]
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


def test_copies_of_an_earlier_run_go_and_other_notebooks_stay(tmp_path):
    """A copy under a name this run does not write (an un-numbered name of an earlier version,
    a chapter that moved) is removed, even when the rest is up to date; a notebook the reader
    made stays, and a run for named chapters removes nothing."""
    book = write_book(tmp_path, [md("# Two")])
    out = tmp_path / "_reader"
    args = ["--book", str(book.folder), "--out", str(out)]
    reader.main(args)
    old = notebook(code("# Reader copy of book/two.ipynb, written by tools/reader.py: edits here"
                        " are\n# overwritten.\nreader_values({})"), md("# Two"))
    (out / "two.ipynb").write_text(json.dumps(old))
    (out / "07_two.ipynb").write_text((out / "02_two.ipynb").read_text())
    (out / "mine.ipynb").write_text(json.dumps(notebook(code("x = 1"))))
    reader.main([*args, str(book.folder / "one.ipynb")])
    assert (out / "two.ipynb").exists() and (out / "07_two.ipynb").exists()
    reader.main(args)
    assert sorted(p.name for p in out.glob("*.ipynb")) == [
        "00_index.ipynb", "01_one.ipynb", "02_two.ipynb", "03_bank.ipynb",
        "04_questions.ipynb", "05_sheet.ipynb", "mine.ipynb"]


# -- the book ---------------------------------------------------------------------------------

# one test per chapter (read from book/ at collection), so the workers share them
CHAPTERS = sorted(p.stem for p in (ROOT / "book").glob("*.ipynb"))
PAGES = ["questions", "claims"]   # the pages with reader copies


def test_the_chapters_are_the_books(book):
    assert set(book.notebooks) <= set(CHAPTERS) and "adam" in book.notebooks


@pytest.mark.parametrize("doc", CHAPTERS + PAGES)
def test_every_chapter_converts_with_no_myst_left(book, doc):
    if doc not in book.notebooks and doc not in PAGES:
        pytest.skip("not in the table of contents")
    nb = reader.reader_notebook(book, doc)
    if FULL:  # nbformat's schema check imports jsonschema: seconds, once per worker
        import nbformat
        nbformat.validate(nbformat.from_dict(nb))
    assert not raw_myst(nb)[:5]


def test_the_check_finds_raw_myst_in_an_original_chapter(book):
    """The check above can fail: on the stored chapter (not converted) it finds MyST."""
    found = raw_myst(book.notebooks["adam"])
    assert {"cell 0: {cite", "cell 0: label"} <= set(found)
    assert any("{glue" in f for f in found) and any(":::{" in f for f in found)


def test_the_books_numbers_are_the_websites(book):
    """Numbers as the built site shows them (checked against _build/html once; kept here)."""
    assert book.chapters["adam"] == 7 and "conventions" not in book.chapters
    assert book.labels["fig-adam-problem"].text == "Fig. 7.1"
    assert book.labels["eq-adam-m"].text == "7.1"
    assert book.labels["adam-prop-bias"].text == "Proposition 7.1"
    assert book.labels["adam-ex-1"].text == "Exercise 7.1"
    assert book.bib["paszke2019"][:2] == ("Paszke and others", "2019")


def test_the_books_copies_sort_in_reading_order(book):
    names = [book.filename(doc) for doc in book.copies]
    assert book.filename("training_step") == "01_training_step.ipynb"
    assert book.filename("adam") == "07_adam.ipynb"
    assert names == sorted(names) and len(set(names)) == len(names)
    assert set(CHAPTERS + PAGES) <= set(book.copies)
    assert [doc for doc in book.order if doc in book.copies] == book.copies


def test_copies_sit_beside_book_and_are_regenerated_when_older(tmp_path):
    """The copies sit at book/'s depth (chapters find bench/ from their working folder)."""
    assert reader.OUT.parent == reader.BOOK.parent
    book = write_book(tmp_path, [md("# Two")])
    out = tmp_path / "_reader"
    args = ["--book", str(book.folder), "--out", str(out)]
    assert reader.main(args) == 0 and len(list(out.glob("*.ipynb"))) == 6   # 5 and the index
    stamp = (out / "02_two.ipynb").stat().st_mtime
    assert reader.main(args) == 0 and (out / "02_two.ipynb").stat().st_mtime == stamp
    import os
    os.utime(book.folder / "two.ipynb", (stamp + 10, stamp + 10))
    assert reader.main(args) == 0 and (out / "02_two.ipynb").stat().st_mtime > stamp


# -- staleness: glue in a reader copy -----------------------------------------------------------


@pytest.fixture
def shown(monkeypatch):
    import IPython.display

    from optedu.instruments import display

    calls = []
    monkeypatch.setattr(IPython.display, "display", lambda *a, **k: calls.append((a, k)))
    yield display, calls
    display.reader_values(None)


def test_glue_flags_a_value_the_prose_does_not_show(shown):
    display, calls = shown
    display.reader_values({"loss": "'0.65'"})
    display.glue("loss", "0.70", display=False)
    assert len(calls) == 2
    note = calls[1][0][0]
    assert note["text/plain"] == "The text above says 0.65 for loss; this run computed 0.70."
    assert "**0.65**" in note["text/markdown"] and "**0.70**" in note["text/markdown"]


def test_glue_is_silent_when_the_value_is_the_prose_s(shown):
    display, calls = shown
    display.reader_values({"loss": "'0.65'"})
    display.glue("loss", "0.65", display=False)
    display.glue("other", "1", display=False)    # not in the prose: nothing to compare
    assert len(calls) == 2


def test_glue_outside_a_reader_copy_is_unchanged(shown):
    display, calls = shown
    display.glue("loss", "0.70", display=False)
    display.reader_values({"loss": "'0.65'"})
    display.reader_values(None)
    display.glue("loss", "0.70", display=False)
    assert len(calls) == 2 and calls[0] == calls[1]
    (bundle,), kwargs = calls[0]
    assert bundle == {GLUE_PREFIX + "text/plain": "'0.70'"}
    assert kwargs == {"raw": True, "metadata": {"scrapbook": {
        "name": "loss", "mime_prefix": GLUE_PREFIX}}}


@pytest.mark.full  # starts a Jupyter kernel (a few seconds)
def test_a_reader_copy_run_in_a_kernel_flags_a_changed_value(tmp_path):
    """End to end: a copy whose prose shows 0.5, re-run where the cell now computes 0.25."""
    import nbformat
    from nbclient import NotebookClient

    cell = code("from optedu.instruments.display import glue\n"
                "glue('lr', str(1 / 4), display=False)", [glued("lr", "'0.5'")])
    nb, _ = convert(tmp_path, cell, md("The rate is {glue:text}`lr`."))
    # the copy as it lies in _reader/: its values cell reads them from the file it names
    values = next(c["source"] for c in nb["cells"] if "reader_values(" in c["source"])
    name = re.search(r"reader_values\('([^']+)'\)", values).group(1)
    folder = tmp_path / "_reader"
    folder.mkdir()
    (folder / name).write_text(json.dumps(nb))
    nb = nbformat.read(folder / name, as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=120,
                   resources={"metadata": {"path": str(folder)}}).execute()
    shown = [o["data"]["text/plain"] for o in nb.cells[1].outputs if "text/plain" in o["data"]]
    assert shown == ["The text above says 0.5 for lr; this run computed 0.25."]
