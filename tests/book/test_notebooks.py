"""Static checks on the stored chapters, so that nbval never passes vacuously.

nbval compares a fresh run against the stored outputs; a cell stored *without* outputs is compared
against nothing. These tests require that every cell that prints, plots or glues has outputs,
that the outputs come from one fresh top-to-bottom run, that every figure has a caption and alt
text, that every number glued into prose exists, and that the table of contents and book/ agree.
"""

from __future__ import annotations

import ast
import json
import pathlib
import re

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(p for p in (ROOT / "book").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
IDS = [p.stem for p in NOTEBOOKS]
# The pages of the "Practice" part: not chapters (no derivation, exercises or citation of their
# own); each has a bar of its own below.
PRACTICE = {"casebook", "cheatsheet", "conventions", "conventions_newer", "drill_triage",
            "drill_estimates", "drill_choices"}
CHAPTERS = [p for p in NOTEBOOKS if p.stem not in PRACTICE]
GLUE_REF = re.compile(r"\{glue(?::\w+)?\}`([A-Za-z0-9_\-]+)")
OUTPUT_CALLS = {"print", "display", "glue", "show"}
# calls that return None: a cell may end with one and show nothing
QUIET_CALLS = {"compact_figures", "set_num_threads", "set_default_dtype", "setup"}


def _cells(path):
    """The notebook's cells, less the install cell that tools/launch.py adds when the book
    has a public repository (an IPython magic, hidden on the site)."""
    return [cell for cell in json.loads(path.read_text())["cells"]
            if "optedu-install" not in cell.get("metadata", {}).get("tags", [])]


def _source(cell) -> str:
    return "".join(cell["source"])


def _should_have_output(source: str) -> bool:
    """True if the cell prints, displays, glues, shows a figure, or ends in a bare expression."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in OUTPUT_CALLS:
                return True
    last = tree.body[-1] if tree.body else None
    ends_quietly = source.rstrip().endswith(";") or (
        isinstance(last, ast.Expr) and isinstance(last.value, ast.Call)
        and getattr(last.value.func, "attr", getattr(last.value.func, "id", "")) in QUIET_CALLS)
    return isinstance(last, ast.Expr) and not isinstance(last.value, ast.Constant) and not ends_quietly


def _toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [chapter["file"] for chapter in part["chapters"]]
    return files


def test_there_are_chapters():
    assert NOTEBOOKS, "book/ holds no notebooks"


def test_toc_and_book_folder_agree():
    listed = _toc_files()
    for entry in listed:
        assert any((ROOT / f"{entry}{ext}").exists() for ext in (".md", ".ipynb")), entry
    for nb in NOTEBOOKS:
        assert str(nb.relative_to(ROOT).with_suffix("")) in listed, f"{nb.name} is not in _toc.yml"


def test_which_cells_must_show_something():
    assert _should_have_output("x = 1\nx")
    assert _should_have_output("model(x)")
    assert _should_have_output("print(1)\nx = 2")
    assert not _should_have_output("x = 1")
    assert not _should_have_output("plt.plot(x);")
    assert not _should_have_output("torch.set_num_threads(1)\ncompact_figures()  # figures")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_cells_that_print_or_plot_have_stored_outputs(path):
    missing = [i for i, c in enumerate(_cells(path))
               if c["cell_type"] == "code" and _source(c).strip()
               and _should_have_output(_source(c)) and not c.get("outputs")]
    assert not missing, f"{path.name}: code cells {missing} should have stored outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_outputs_come_from_one_fresh_run(path):
    nb = json.loads(path.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    counts = [c["execution_count"] for c in nb["cells"]
              if c["cell_type"] == "code" and _source(c).strip()]
    assert counts == list(range(1, len(counts) + 1)), f"{path.name}: re-run with `make outputs`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_no_stored_errors(path):
    for i, cell in enumerate(_cells(path)):
        if "raises-exception" in cell.get("metadata", {}).get("tags", []):
            continue
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", f"{path.name}: cell {i} stored an error"
            if output.get("name") == "stderr":
                assert "Warning" not in output["text"], f"{path.name}: cell {i} stored a warning"


GRID_PLACE = re.compile(r"(?i)\b(?:top|middle|bottom|upper|lower) rows?\b"
                        r"|\b(?:top|bottom|upper|lower)[ -](?:left|right) (?:panel|path|plot)"
                        r"|\b(?:left|right|middle)[ -](?:hand )?(?:panel|column)s?\b"
                        r"|\b\w+ by \w+ grid\b"
                        # "Left: ...; right: ..." or "Right, on a log scale" opening a clause
                        r"|(?:^|[.;:!?]\s+)(?:left|right|middle)\s*[:,]")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_every_figure_has_a_caption_and_alt_text(path):
    for i, cell in enumerate(_cells(path)):
        if any("image/png" in o.get("data", {}) for o in cell.get("outputs", [])):
            meta = cell.get("metadata", {}).get("mystnb", {})
            assert meta.get("figure", {}).get("caption"), f"{path.name}: cell {i} has no caption"
            # A label numbers the figure. A figure folded away (a hide-cell cell, such as the
            # casebook's fixed runs) goes unnumbered, so the numbers a reader sees run 1, 2, 3.
            folded = "hide-cell" in cell.get("metadata", {}).get("tags", [])
            labelled = bool(meta.get("figure", {}).get("name"))
            assert labelled != folded, (f"{path.name}: cell {i} " + (
                "is folded: drop its label, it would take a number" if folded
                else "has no label"))
            alt = meta.get("image", {}).get("alt")
            assert alt, f"{path.name}: cell {i} has no alt text"
            # the phone drawing regrids a figure's panels (optedu/instruments/layouts.py), so
            # a grid's rows, columns and corners differ between the two screens; its reading
            # order does not
            place = GRID_PLACE.search(alt)
            assert not place, (f"{path.name}: cell {i}'s alt text says {place.group(0)!r}: "
                               "name the panel by its place in reading order")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_glued_numbers_exist(path):
    cells = _cells(path)
    glued = set()
    for cell in cells:
        for output in cell.get("outputs", []):
            glued.update(output.get("metadata", {}).get("scrapbook", {}).get("name", "").split())
    referenced = {key for c in cells if c["cell_type"] == "markdown"
                  for key in GLUE_REF.findall(_source(c))}
    assert referenced <= glued, f"{path.name}: glue keys never computed: {referenced - glued}"


def _figures(cells) -> int:
    return sum(any("image/png" in o.get("data", {}) for o in c.get("outputs", [])) for c in cells)


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_meets_the_bar(path):
    """The chapter shape every issue asks for: figures, exercises with solutions, interview
    questions with folded answers, citations, and an executed check against torch."""
    cells = _cells(path)
    markdown = "\n".join(_source(c) for c in cells if c["cell_type"] == "markdown")
    code = "\n".join(_source(c) for c in cells if c["cell_type"] == "code")
    exercises = len(re.findall(r"[`:]{3}\{exercise\}", markdown))
    solutions = len(re.findall(r"[`:]{3}\{solution(?:-start)?\}", markdown))
    questions = re.findall(r":::\{admonition\} Q\d+\..*\n:class: dropdown", markdown)
    assert _figures(cells) >= 2, f"{path.name}: fewer than two figures"
    assert exercises >= 3, f"{path.name}: {exercises} exercises, want at least 3"
    assert solutions >= exercises, f"{path.name}: an exercise without a solution"
    assert len(questions) >= 4, f"{path.name}: {len(questions)} folded interview questions, want 4"
    assert "{cite" in markdown, f"{path.name}: cites no paper"
    assert re.search(r"torch\.(optim|nn\.utils)", code) and re.search(r"^\s*assert ", code, re.M), \
        f"{path.name}: no executed comparison with torch that stops the notebook"


CASES = 16


@pytest.mark.skipif(not (ROOT / "book" / "casebook.ipynb").exists(), reason="not written yet")
def test_casebook_meets_its_bar():
    """Each case: a real broken run drawn (a captioned figure), the question, a folded diagnosis,
    and the fixed run checked by an assert; at least twelve cases."""
    cells = _cells(ROOT / "book" / "casebook.ipynb")
    markdown = "\n".join(_source(c) for c in cells if c["cell_type"] == "markdown")
    code = "\n".join(_source(c) for c in cells if c["cell_type"] == "code")
    cases = re.findall(r"^## Case \d+", markdown, re.M)
    diagnoses = re.findall(r":::\{admonition\} Diagnosis.*\n:class: dropdown", markdown)
    assert len(cases) >= CASES, f"{len(cases)} cases, want at least {CASES}"
    assert len(diagnoses) >= len(cases), "a case without a folded diagnosis"
    assert _figures(cells) >= len(cases), "a case without its figure"
    assert len(re.findall(r"^\s*assert ", code, re.M)) >= len(cases), "a fix nobody checked"


DRILLS = {"drill_triage": ("scenario", 22), "drill_estimates": ("estimate", 22),
          "drill_choices": ("choice", 20)}


@pytest.mark.parametrize("stem", sorted(DRILLS))
def test_drill_page_meets_its_bar(stem):
    """A drill page: at least its number of questions of its kind, in the bank's shape (themes,
    a spoken layer, the evidence), a third of them in follow-up chains, and its evidence
    computed on the page (glued numbers, asserted)."""
    from optedu.practice import quiz

    path = ROOT / "book" / f"{stem}.ipynb"
    kind, least = DRILLS[stem]
    questions = quiz.parse_notebook(path)
    problems = [f"Q{q.number}: {p}" for q in questions for p in quiz.lint(q)]
    assert not problems, f"{stem}: {problems[:5]}"
    assert sum(q.kind == kind for q in questions) >= least, f"{stem}: too few {kind} questions"
    chained = {q.number for q in questions if q.follows is not None} | {
        q.follows for q in questions if q.follows is not None}
    assert len(chained) >= len(questions) / 3, f"{stem}: {len(chained)} questions in chains"
    assert all(q.evidence.count("{glue") >= 1 for q in questions), f"{stem}: an answer " \
        "without a number computed on the page"
    code = "\n".join(_source(c) for c in _cells(path) if c["cell_type"] == "code")
    assert len(re.findall(r"^\s*assert ", code, re.M)) >= len(questions) // 2, \
        f"{stem}: its numbers are not checked"


@pytest.mark.skipif(not (ROOT / "book" / "cheatsheet.ipynb").exists(), reason="not written yet")
def test_cheatsheet_meets_its_bar():
    """A row for every optimizer class optedu exports, generated in the page, whose defaults
    and byte counts the page asserts."""
    import torch

    import optedu

    cells = _cells(ROOT / "book" / "cheatsheet.ipynb")
    html = "".join("".join(o["data"]["text/html"]) for c in cells for o in c.get("outputs", [])
                   if "text/html" in o.get("data", {}))
    code = "\n".join(_source(c) for c in cells if c["cell_type"] == "code")
    classes = [name for name in optedu.__all__ if name != "Optimizer"
               and isinstance(getattr(optedu, name), type)
               and issubclass(getattr(optedu, name), torch.optim.Optimizer)]
    missing = [name for name in classes if f"<b>{name}</b>" not in html]
    assert len(classes) >= 20 and not missing, (
        f"optimizers without a row in the stored cheat sheet: {missing}; store its outputs "
        f"again: make outputs NB=book/cheatsheet.ipynb")
    assert re.search(r"^\s*assert .*measured", code, re.M), "bytes not checked"
    assert re.search(r"^\s*assert default_mismatches", code, re.M), "defaults not checked"


@pytest.mark.parametrize("page", ["conventions", "conventions_newer"])
def test_conventions_ledger_meets_its_bar(page):
    """At least seven disagreements a page, each a section with an executed comparison
    (a code cell with output), optax run beside torch, sources cited, checks asserted."""
    cells = _cells(ROOT / "book" / f"{page}.ipynb")
    sections, current = [], None
    for cell in cells:
        if cell["cell_type"] == "markdown":
            heading = re.search(r"^## \d+\. ", _source(cell), re.M)
            if heading:
                current = {"runs": 0}
                sections.append(current)
        elif current is not None and cell.get("outputs"):
            current["runs"] += 1
    markdown = "\n".join(_source(c) for c in cells if c["cell_type"] == "markdown")
    code = "\n".join(_source(c) for c in cells if c["cell_type"] == "code")
    assert len(sections) >= 7, f"{len(sections)} numbered conventions, want at least 7"
    assert all(s["runs"] for s in sections), "a convention without an executed comparison"
    assert "optax" in code and "torch.optim" in code, "optax and torch not run side by side"
    assert len(re.findall(r"\{cite", markdown)) >= 7, "sources not cited"
    assert re.search(r"^\s*assert ", code, re.M), "nothing asserted"


CODE_WIDTH = 80


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_code_fits_the_page(path):
    """Code cells fit the website's column (about 80 characters) without a scroll bar."""
    wide = [(i, len(line)) for i, c in enumerate(_cells(path)) if c["cell_type"] == "code"
            for line in _source(c).splitlines() if len(line) > CODE_WIDTH]
    assert not wide, f"{path.name}: (cell, width) of lines over {CODE_WIDTH} columns: {wide[:8]}"


def _book_markdown() -> dict[str, str]:
    """Every page's Markdown: a chapter's Markdown cells, or a .md page, by file name."""
    texts = {p.name: "\n\n".join(_source(c) for c in _cells(p) if c["cell_type"] == "markdown")
             for p in NOTEBOOKS}
    texts.update({p.name: p.read_text() for p in (ROOT / "book").glob("*.md")})
    return texts


def test_cross_references_and_directives_parse():
    """Sphinx titles a bare {ref}`label` from the heading the label stands on; a label before
    a paragraph has none ('A title or caption not found'), so its reference must bring its own
    text, {ref}`text <label>`. A backtick fence whose info string holds a backtick is no fence
    (CommonMark), so ```{prf:algorithm} Adam, as `torch.optim.Adam` ... renders as a paragraph
    and a code block, with no warning from the build: a directive's title has no code spans.
    A bare {ref} to a heading with maths shows the heading's TeX as text in the link."""
    texts = _book_markdown()
    before = {}      # label -> the first line after its (label)= line
    for text in texts.values():
        for m in re.finditer(r"^\(([\w\-]+)\)=[ \t]*\n\s*(.*)", text, re.M):
            before[m.group(1)] = m.group(2)
    bad = []
    for name, text in texts.items():
        for label in re.findall(r"\{ref\}`([\w\-]+)`", text):
            if label in before and not before[label].startswith("#"):
                bad.append(f"{name}: {{ref}}`{label}` stands before a paragraph: "
                           f"write {{ref}}`text <{label}>`")
            elif label in before and "$" in before[label]:
                bad.append(f"{name}: {{ref}}`{label}` takes its text from a heading with "
                           f"maths, which a link shows as raw TeX: write {{ref}}`text <{label}>`")
        for line in re.findall(r"^ *```+\{[\w:\-]+\}.*`.*$", text, re.M):
            bad.append(f"{name}: a backtick in a directive's fence is no fence: {line[:60]}")
    assert not bad, "\n".join(bad)


LIST_MARKER = re.compile(r"[-+*]|\d+[.)]")


def _cut_inline_maths(text: str) -> list[str]:
    """Lines that start a Markdown list item while an inline $…$ is open. Wrapping prose can
    leave "+ \\epsilon)$" at the start of a line; CommonMark reads it as a new list (also
    inside an algorithm box or a proof), and the maths on both sides renders as text. Code
    fences and display maths ($$…$$, {math}) are skipped; a directive's body is prose."""
    found = []
    code = None          # the fence of the code block we are in
    directives = []      # the fences of the directives we are in
    open_maths = display = False
    for line in text.split("\n"):
        s = line.strip()
        if code:
            if s and s == s[0] * len(s) and s[0] == code[0] and len(s) >= len(code):
                code = None
            continue
        fence = re.match(r"(`{3,}|~{3,})(.*)", s)
        if fence:
            mark, info = fence.group(1), fence.group(2).strip()
            open_maths = False
            if not info and directives and mark[0] == directives[-1][0] \
                    and len(mark) >= len(directives[-1]):
                directives.pop()
            elif info.startswith("{") and not info.startswith(("{math}", "{code")):
                directives.append(mark)
            else:
                code = mark
            continue
        if not s:
            open_maths = False
            continue
        if s.count("$$") % 2:
            display = not display
            continue
        if display:
            continue
        words = s.split()
        if open_maths and LIST_MARKER.fullmatch(words[0]):
            found.append(s[:60])
        body = re.sub(r"`[^`]*`", "", s.replace(r"\$", "").replace("$$", ""))
        if body.count("$") % 2:
            open_maths = not open_maths
    return found


def test_inline_maths_is_not_cut_by_a_list_marker():
    bad = [f"{name}: {line}" for name, text in _book_markdown().items()
           for line in _cut_inline_maths(text)]
    assert not bad, "a line starts a list inside inline maths:\n" + "\n".join(bad)


def test_a_cut_in_inline_maths_is_found():
    assert _cut_inline_maths("the step $\\eta / (\\sqrt{v}\n+ \\epsilon)$ is bounded") == \
        ["+ \\epsilon)$ is bounded"]
    assert _cut_inline_maths("a list\n- $x$ one\n- $y$ two\n\n```\n$a\n+ b$\n```") == []
    assert _cut_inline_maths("```{prf:proof}\nSo $a = b\n+ c$ holds.\n```") == ["+ c$ holds."]
    assert _cut_inline_maths("$$\na\n+ b\n$$\n\n````{math}\n$a\n+ b\n````") == []


def _swallowed_lines(text: str) -> list[str]:
    """Prose lines that MyST reads as comments: a line whose first character after its
    indentation is ``%`` vanishes from the page (a list item's "  % of wall-clock..."
    took a glued number with it); fenced blocks aside."""
    found, fence = [], False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fence = not fence
        elif not fence and line[:1].isspace() and line.lstrip().startswith("%"):
            found.append(line.strip()[:60])
    return found


def test_no_prose_line_is_read_as_a_comment():
    bad = [f"{name}: {line}" for name, text in _book_markdown().items()
           for line in _swallowed_lines(text)]
    assert not bad, "an indented line starts with %, which MyST drops:\n" + "\n".join(bad)


def test_a_swallowed_line_is_found():
    assert _swallowed_lines("- under 2\n  % of wall-clock\n%% a real comment\n") == \
        ["% of wall-clock"]
    assert _swallowed_lines("```python\n  %timeit f()\n```") == []


def _control_characters(path: pathlib.Path) -> list[str]:
    """Control characters (other than newlines and tabs) in a notebook's cell sources: a
    ``"\\beta"`` written unescaped becomes a backspace and ``eta`` on the page."""
    found = []
    for index, cell in enumerate(json.loads(path.read_text())["cells"]):
        for char in "".join(cell["source"]):
            if ord(char) < 32 and char not in "\n\t":
                found.append(f"cell {index}: {char!r}")
    return found


@pytest.mark.parametrize("path", sorted((ROOT / "book").glob("*.ipynb")), ids=lambda p: p.stem)
def test_no_control_characters_in_cell_sources(path):
    assert not _control_characters(path)


#: an open code cell (no fold) is at most this many lines: what teaches on the page is short
OPEN_CODE_LINES = 8
#: a cell tagged `teach` stays open up to this many lines: a rule's first steps by hand, the
#: demonstration a chapter's "The code" section is built around
TEACH_LINES = 16
#: cells that stay open whatever their length: a rule's source, the sliders, the moving figures
ALWAYS_OPEN = re.compile(r"^\s*(show_source\(|landscapes\.explore\(|moving\.show\(|explore\()")
FOLDED = {"hide-input", "remove-input", "hide-cell", "remove-cell", "hide-output",
          "remove-output"}


def _long_open_cells(cells) -> list[tuple[int, int]]:
    """(cell, lines) of the code cells a reader would see open on the website that are longer
    than OPEN_CODE_LINES: not folded by a tag, not a rule's source or sliders, not inside an
    exercise's solution (a folded dropdown), or tagged `teach` and within TEACH_LINES."""
    found, in_solution = [], False
    for index, cell in enumerate(cells):
        source = _source(cell)
        if cell["cell_type"] == "markdown":
            for mark in re.finditer(r"\{solution-(start|end)\}", source):
                in_solution = mark.group(1) == "start"
            continue
        tags = set(cell.get("metadata", {}).get("tags", []))
        lines = len(source.rstrip("\n").splitlines())
        limit = TEACH_LINES if "teach" in tags else OPEN_CODE_LINES
        if (cell["cell_type"] == "code" and not in_solution and not tags & FOLDED
                and not ALWAYS_OPEN.match(source) and lines > limit):
            found.append((index, lines))
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_long_code_is_folded(path):
    """What checks or computes evidence folds behind its result (`hide-input`), the code one
    click away; what stays open is short (the site test tests/site/test_site_length.py measures
    the visible share)."""
    long_open = _long_open_cells(_cells(path))
    assert not long_open, (f"{path.name}: open code cells (cell, lines) over {OPEN_CODE_LINES} "
                           f"lines: tag them hide-input, or shorten them: {long_open}")


def test_an_open_long_cell_is_found():
    code = {"cell_type": "code", "metadata": {}, "source": "x = 1\n" * 9}
    solution = {"cell_type": "markdown", "metadata": {}, "source": "```{solution-start} e\n```"}
    end = {"cell_type": "markdown", "metadata": {}, "source": "```{solution-end}\n```"}
    assert _long_open_cells([code]) == [(0, 9)]
    assert _long_open_cells([solution, code, end]) == []
    assert _long_open_cells([dict(code, metadata={"tags": ["hide-input"]})]) == []
    assert _long_open_cells([dict(code, source="show_source(x)\n" * 9)]) == []
    assert _long_open_cells([dict(code, metadata={"tags": ["teach"]})]) == []
    assert _long_open_cells([dict(code, metadata={"tags": ["teach"]},
                                  source="x = 1\n" * 17)]) == [(0, 17)]
