"""optedu.practice.quiz: questions read from the chapters, the bank page, and practice in Jupyter."""

import importlib.util
import json
from pathlib import Path

import pytest

from optedu.practice import quiz

ROOT = Path(__file__).resolve().parents[2]
BOOK = ROOT / "book"


def _notebook(path: Path, markdown: list[str], glued: dict[str, str]) -> None:
    outputs = [{"output_type": "display_data", "data": {
        "application/papermill.record/text/plain": value},
        "metadata": {"scrapbook": {"name": key,
                                   "mime_prefix": "application/papermill.record/"}}}
        for key, value in glued.items()]
    cells = [{"cell_type": "markdown", "metadata": {}, "source": text} for text in markdown]
    cells.insert(1, {"cell_type": "code", "metadata": {}, "source": "glue(...)",
                     "outputs": outputs, "execution_count": 1})
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                                "nbformat_minor": 5}))


QUESTIONS = """## Interview questions

:::{admonition} Q1. Why bias correction?
:class: dropdown q-warmup

The first step is {glue:text}`first` times too long ({numref}`fig-bias`), see
{prf:ref}`prop-bias` and {cite:p}`kingma2015adam`.
:::

:::{admonition} Q2. What does torch do?
:class: dropdown q-deep

Rate {glue:text}`rate:.2f`, {ref}`the derivation <sec-derivation>`.
:::
"""


@pytest.fixture
def book(tmp_path):
    _notebook(tmp_path / "adam.ipynb", ["# Adam\n\nText.", QUESTIONS],
              {"first": "3.2", "rate": "0.12345"})
    _notebook(tmp_path / "sgd.ipynb", ["# SGD", "## Interview questions\n\n"
              ":::{admonition} Q1. What is a step?\n:class: dropdown q-standard\n\n"
              "Plain.\n:::"], {})
    return tmp_path


def test_questions_are_read_with_level_and_glued_values(book):
    questions = quiz.load(book)
    assert [(q.chapter, q.number, q.level) for q in questions] == [
        ("adam", 1, "warm-up"), ("adam", 2, "deep"), ("sgd", 1, "standard")]
    first = questions[0]
    assert first.chapter_title == "Adam" and first.title == "Why bias correction?"
    assert first.glue_keys == ["first"]
    assert questions[1].glue_keys == ["rate"]


def test_markdown_for_jupyter_fills_numbers_and_names_the_evidence(book):
    first, second, _ = quiz.load(book)
    text = quiz.to_markdown(first)
    assert "3.2 times too long (a figure of the Adam chapter)" in text
    assert "a proposition of the Adam chapter" in text and "[kingma2015adam]" in text
    assert "{" not in text and "`" not in text
    assert quiz.to_markdown(second) == "Rate 0.12, the derivation."


def test_bank_glues_from_the_chapter_and_links_back(book):
    page = quiz.render_bank([("Update rules", ["sgd", "adam"])], book)
    assert "{glue:text}`adam.ipynb::first:s`" in page
    assert "{glue:text}`adam.ipynb::rate:.2f`" in page
    assert ":class: dropdown q-deep" in page
    assert "*From [Adam](adam.ipynb), question 2.*" in page
    # the count table, then the part and chapters in the order given
    assert "| [SGD](sgd.ipynb) | 0 | 1 | 0 | 1 |" in page
    assert "| **all** | **1** | **1** | **1** | **3** |" in page
    assert page.index("### SGD") < page.index("### Adam")


def test_selection_by_topic_and_level(book):
    questions = quiz.load(book)
    assert [q.number for q in quiz.select(questions, topic="adam")] == [1, 2]
    assert [q.chapter for q in quiz.select(questions, level="standard")] == ["sgd"]
    with pytest.raises(ValueError, match=r"Invalid level: 'hard'"):
        quiz.select(questions, level="hard")
    with pytest.raises(ValueError, match=r"Invalid topic: 'lion' .*topics: adam, sgd"):
        quiz.select(questions, topic="lion")


def test_quiz_draws_every_question_once_then_repeats(book, capsys):
    drawn = quiz.Quiz(seed=3, book=book)
    first_round = [drawn.next() for _ in range(len(drawn))]
    assert len(set(first_round)) == 3
    again = quiz.Quiz(seed=3, book=book)
    assert [again.next() for _ in range(3)] == first_round  # reproducible with a seed
    with pytest.raises(RuntimeError, match="ask"):
        quiz.Quiz(book=book).reveal()
    one = quiz.Quiz(topic="sgd", book=book)
    one.ask()
    assert one.reveal() == "Plain."
    assert "SGD · standard · Q1. What is a step?" in capsys.readouterr().out  # plain text


def test_malformed_questions_are_named(tmp_path):
    _notebook(tmp_path / "x.ipynb", ["# X", ":::{admonition} Q3. No level\n"
              ":class: dropdown\n\nA.\n:::"], {})
    with pytest.raises(ValueError, match=r"x.ipynb, Q3: needs exactly one level"):
        quiz.load(tmp_path)
    with pytest.raises(ValueError, match="Invalid book folder"):
        quiz.load(tmp_path / "missing")


# --- The real book ----------------------------------------------------------------------------

def test_every_chapter_question_has_a_level_and_its_numbers():
    questions = quiz.load(BOOK)
    assert len(questions) >= 150
    for q in questions:
        missing = [key for key in q.glue_keys if key not in q.glued]
        assert not missing, f"{q.chapter} Q{q.number}: no glued value for {missing}"
        quiz.to_markdown(q)  # every role can be put in words
    numbers = {}
    for q in questions:
        numbers.setdefault(q.chapter, []).append(q.number)
    for chapter, seen in numbers.items():
        assert seen == list(range(1, len(seen) + 1)), f"{chapter}: questions {seen}"
    table = quiz.counts(questions)
    assert all(sum(row.values()) >= 4 for row in table.values())


def _tool():
    spec = importlib.util.spec_from_file_location("questions", ROOT / "tools/questions.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_the_bank_page_and_the_packaged_bank_are_up_to_date():
    tool = _tool()
    current = tool.PAGE.read_text(encoding="utf-8")
    assert tool.render(current) == current, "book/questions.md is out of date: run " \
        "python tools/questions.py"
    assert tool.bank() == tool.BANK.read_text(encoding="utf-8"), \
        "optedu/practice/questions.json is out of date: run python tools/questions.py"


def test_the_quiz_works_from_any_folder(tmp_path, monkeypatch, capsys):
    """Without a book argument the packaged questions are used: the same as the chapters',
    whatever the current folder (an empty one here)."""
    monkeypatch.chdir(tmp_path)
    packaged = quiz.load()
    assert sorted(packaged, key=lambda q: (q.chapter, q.number)) == \
        sorted(quiz.load(BOOK), key=lambda q: (q.chapter, q.number))
    assert [q.chapter for q in quiz.load(chapters=["momentum", "adam"])][0] == "momentum"
    q = quiz.Quiz(topic="adam", level="deep", seed=0)
    asked = q.ask()
    text = q.reveal()
    assert "adam" in asked.chapter_title.lower() and asked.level == "deep"
    assert "{glue" not in text and text.strip()
    with pytest.raises(ValueError, match=r"Invalid chapters: \['nope'\]"):
        quiz.load(chapters=["nope"])


def test_a_terminal_ipython_shell_gets_text_not_a_markdown_repr(book, capsys):
    """In a terminal IPython (an InteractiveShell, no notebook front end) the question is
    printed as text: display(Markdown(...)) would print '<IPython.core.display.Markdown ...>'."""
    from IPython.core.interactiveshell import InteractiveShell

    existed = InteractiveShell.initialized()
    InteractiveShell.instance()
    try:
        quiz.Quiz(topic="sgd", book=book).ask()
        out = capsys.readouterr().out
        assert "What is a step?" in out and "**" not in out
    finally:
        if not existed:
            InteractiveShell.clear_instance()


def test_plain_text_for_a_terminal():
    assert quiz.tex_to_text(r"\hat{v}_t") == "v\u0302ₜ"
    assert quiz.tex_to_text(r"\eta/\sqrt{\hat v_t} + \epsilon") == "η/√(v̂ₜ) + ε"
    assert quiz.tex_to_text(r"\tfrac{1}{1-\beta_2^t}") == "1/(1-β₂ᵗ)"
    assert quiz.tex_to_text(r"\|g\|_2 \le 10^{-3}") == "‖g‖₂ ≤ 10⁻³"
    assert quiz.tex_to_text(r"x_{\text{best}}") == "x_(best)"
    with pytest.raises(ValueError, match=r"\\oint"):
        quiz.tex_to_text(r"\oint f")
    assert quiz.to_text("**Adam · Q1.** Why $\\beta_1$? See [the box](adam.ipynb), "
                        "`lr` and *this*.") == "Adam · Q1. Why β₁? See the box, lr and this."


def test_every_question_reads_as_plain_text():
    """What a terminal prints: no Markdown marks, no LaTeX left, for every question."""
    for q in quiz.load():
        for text in (quiz.to_markdown(q, q.title), quiz.to_markdown(q)):
            plain = quiz.to_text(text)
            left = [mark for mark in ("$", "\\", "**", "`", "{glue") if mark in plain]
            assert not left, f"{q.chapter} Q{q.number}: {left} in {plain[:200]!r}"
