"""Interview practice: the questions at the end of the chapters, drawn by topic and level.

The chapters are the single source of the questions. Each ends with folded admonitions::

    :::{admonition} Q1. Why does Adam need bias correction?
    :class: dropdown q-warmup

    The answer, in MyST, with numbers glued from the chapter's cells ...
    :::

:func:`load` reads them from the notebooks (with the glued values the notebooks store), so a
question and its answer cannot differ between a chapter, the question bank page
(:func:`render_bank`) and a practice session in Jupyter (:class:`Quiz`)::

    quiz = Quiz(topic="adam", level="deep", seed=0)
    quiz.ask()      # shows a question
    quiz.reveal()   # shows its model answer, numbers filled in
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

LEVELS = ("warm-up", "standard", "deep")
LEVEL_CLASSES = {"q-warmup": "warm-up", "q-standard": "standard", "q-deep": "deep"}

_OPEN = re.compile(r"^:::\{admonition\} Q(\d+)\. (.+)$")
_CLASS = re.compile(r"^:class: (.+)$")
_GLUE_ROLE = re.compile(r"\{glue(?::(\w+))?\}`([^`]+)`")
_ROLE = re.compile(r"\{([\w:-]+)\}`([^`]+)`")
_RECORD = "application/papermill.record/"


@dataclasses.dataclass(frozen=True)
class Question:
    """One interview question as its chapter states it."""

    chapter: str  # the notebook's stem: "adam"
    chapter_title: str  # the notebook's first heading
    number: int  # Q<number> in the chapter
    title: str  # the question
    level: str  # one of LEVELS
    answer: str  # MyST source, as in the chapter
    # the chapter's glued values (text/plain), by key
    glued: dict[str, str] = dataclasses.field(compare=False, repr=False)

    @property
    def glue_keys(self) -> list[str]:
        """The glued values the answer uses, in order."""
        return [_split_glue(text)[0] for _, text in _GLUE_ROLE.findall(self.answer)]


def _split_glue(text: str) -> tuple[str, str]:
    """``key`` or ``key:format`` -> (key, format spec); MyST-NB's reading of the role."""
    key, _, spec = text.partition(":")
    return key, spec or "s"


def _title(cells: Sequence[dict]) -> str:
    for cell in cells:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    raise ValueError("a chapter has no '# ' title")


def _glued(cells: Sequence[dict]) -> dict[str, str]:
    """Every value the notebook glued, as the text MyST-NB pastes (text/plain)."""
    values = {}
    for cell in cells:
        for output in cell.get("outputs", []):
            scrap = output.get("metadata", {}).get("scrapbook")
            if scrap is None:
                continue
            data = output["data"]
            text = data.get(scrap["mime_prefix"] + "text/plain")
            if text is not None:
                values[scrap["name"]] = "".join(text)
    return values


def parse_notebook(path: str | Path) -> list[Question]:
    """The interview questions of one chapter notebook, in order."""
    path = Path(path)
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    title, glued = _title(cells), _glued(cells)
    questions = []
    for cell in cells:
        if cell["cell_type"] != "markdown":
            continue
        lines = "".join(cell["source"]).splitlines()
        i = 0
        while i < len(lines):
            opened = _OPEN.match(lines[i])
            if not opened:
                i += 1
                continue
            number, question = int(opened.group(1)), opened.group(2).strip()
            classes = _CLASS.match(lines[i + 1]) if i + 1 < len(lines) else None
            where = f"{path.name}, Q{number}"
            if classes is None or "dropdown" not in classes.group(1).split():
                raise ValueError(f"{where}: expected ':class: dropdown q-<level>'")
            levels = [LEVEL_CLASSES[c] for c in classes.group(1).split()
                      if c in LEVEL_CLASSES]
            if len(levels) != 1:
                raise ValueError(f"{where}: needs exactly one level class of "
                                 f"{sorted(LEVEL_CLASSES)}")
            end = next((j for j in range(i + 2, len(lines)) if lines[j] == ":::"), None)
            if end is None:
                raise ValueError(f"{where}: no closing ':::'")
            answer = "\n".join(lines[i + 2:end]).strip()
            questions.append(Question(path.stem, title, number, question, levels[0],
                                      answer, glued))
            i = end + 1
    return questions


def load(book: str | Path | None = None, chapters: Iterable[str] | None = None
         ) -> list[Question]:
    """Every interview question of the chapters in ``book`` (a folder of notebooks).

    ``book`` defaults to the current folder if it holds notebooks (Jupyter started in the
    book's folder), else ``./book``. ``chapters`` (stems, in order) restricts and orders them;
    by default every notebook, in name order.
    """
    folder = _book_folder(book)
    if chapters is None:
        paths = sorted(folder.glob("*.ipynb"))
    else:
        paths = [folder / f"{stem}.ipynb" for stem in chapters]
    return [q for path in paths for q in parse_notebook(path)]


def _book_folder(book: str | Path | None) -> Path:
    if book is not None:
        folder = Path(book)
    elif any(Path.cwd().glob("*.ipynb")):
        folder = Path.cwd()
    else:
        folder = Path.cwd() / "book"
    if not folder.is_dir():
        raise ValueError(f"Invalid book folder: {folder} (not a directory)")
    return folder


def select(questions: Sequence[Question], topic: str | None = None,
           level: str | None = None) -> list[Question]:
    """The questions of a topic (a chapter's stem, or words of its title) and/or a level."""
    if level is not None and level not in LEVELS:
        raise ValueError(f"Invalid level: {level!r} (expected one of {LEVELS})")
    chosen = [q for q in questions if level is None or q.level == level]
    if topic is not None:
        words = topic.lower()
        chosen = [q for q in chosen
                  if q.chapter == words or words in q.chapter_title.lower()]
        if not chosen:
            topics = sorted({q.chapter for q in questions})
            raise ValueError(f"Invalid topic: {topic!r} (no questions; topics: "
                             f"{', '.join(topics)})")
    return chosen


# --- Rendering -------------------------------------------------------------------------------

_ROLE_WORDS = {"numref": "a figure", "prf:ref": "a proposition", "eq": "an equation",
               "ref": "a section"}


def _paste(glued: dict[str, str], text: str, kind: str | None) -> str:
    key, spec = _split_glue(text)
    if key not in glued:
        raise KeyError(f"no glued value {key!r}")
    value = glued[key]
    if spec == "s" or kind not in (None, "text"):
        return value
    try:
        return format(float(value), spec)
    except ValueError:
        return value


def to_markdown(question: Question, text: str | None = None) -> str:
    """``text`` (default: the answer) as plain Markdown for Jupyter: glued values filled in,
    cross-references replaced by words that say where the evidence is."""
    text = question.answer if text is None else text
    chapter = f"the {question.chapter_title} chapter"
    text = _GLUE_ROLE.sub(lambda m: _paste(question.glued, m.group(2), m.group(1)), text)

    def words(match: re.Match) -> str:
        role, body = match.groups()
        shown = re.match(r"(.+?)\s*<(.+)>$", body)
        if role.startswith("cite"):
            return f"[{body}]"
        if role == "doc":
            return shown.group(1) if shown else body
        if shown and role == "ref":
            return shown.group(1)
        return f"{_ROLE_WORDS.get(role, 'a passage')} of {chapter}"

    return _ROLE.sub(words, text)


def to_bank(question: Question) -> str:
    """The question as a folded admonition for the bank page, its glue read from its chapter."""
    def cross(match: re.Match) -> str:
        kind, text = match.groups()
        # MyST-NB reads a trailing ":spec" off a text role before the "path::" prefix, so
        # the text role needs its format spec written out; the other roles take none.
        key, spec = _split_glue(text)
        if kind == "text":
            return f"{{glue:text}}`{question.chapter}.ipynb::{key}:{spec}`"
        role = "glue" if kind is None else f"glue:{kind}"
        return f"{{{role}}}`{question.chapter}.ipynb::{key}`"

    answer = _GLUE_ROLE.sub(cross, question.answer)
    level = next(c for c, name in LEVEL_CLASSES.items() if name == question.level)
    return (f":::{{admonition}} Q{question.number}. {question.title}\n"
            f":class: dropdown {level}\n\n{answer}\n\n"
            f"*From [{question.chapter_title}]({question.chapter}.ipynb), "
            f"question {question.number}.*\n:::")


def counts(questions: Sequence[Question]) -> dict[str, dict[str, int]]:
    """Number of questions per chapter stem and level."""
    table: dict[str, dict[str, int]] = {}
    for q in questions:
        row = table.setdefault(q.chapter, dict.fromkeys(LEVELS, 0))
        row[q.level] += 1
    return table


def render_bank(parts: Sequence[tuple[str, Sequence[str]]], book: str | Path) -> str:
    """The question bank (MyST): a count per topic and level, then every chapter's
    questions under its part's heading. ``parts`` are (caption, chapter stems)."""
    sections, rows = [], []
    total = dict.fromkeys(LEVELS, 0)
    for caption, stems in parts:
        questions = load(book, stems)
        if not questions:
            continue
        sections.append(f"## {caption}")
        for stem in stems:
            chapter = [q for q in questions if q.chapter == stem]
            if not chapter:
                continue
            title = chapter[0].chapter_title
            row = counts(chapter)[stem]
            for level in LEVELS:
                total[level] += row[level]
            rows.append(f"| [{title}]({stem}.ipynb) | "
                        + " | ".join(str(row[level]) for level in LEVELS)
                        + f" | {len(chapter)} |")
            sections.append(f"### {title}")
            sections.extend(to_bank(q) for q in chapter)
    header = ("| topic | warm-up | standard | deep | all |\n"
              "|:--|--:|--:|--:|--:|")
    rows.append("| **all** | " + " | ".join(f"**{total[level]}**" for level in LEVELS)
                + f" | **{sum(total.values())}** |")
    table = "\n".join([header, *rows])
    return "\n\n".join([table, *sections]) + "\n"


class Quiz:
    """Draw interview questions at random (by topic and level) and reveal their answers.

    ``Quiz(topic="adam", level="standard", seed=0)``; ``ask()`` shows the next question,
    ``reveal()`` its answer. Every question is drawn once before any repeats.
    """

    def __init__(self, topic: str | None = None, level: str | None = None,
                 seed: int | None = None, book: str | Path | None = None) -> None:
        self.questions = select(load(book), topic, level)
        self._rng = random.Random(seed)
        self._queue: list[Question] = []
        self.current: Question | None = None

    def __len__(self) -> int:
        return len(self.questions)

    def next(self) -> Question:
        """The next question, without showing it."""
        if not self._queue:
            self._queue = self._rng.sample(self.questions, len(self.questions))
        self.current = self._queue.pop()
        return self.current

    def ask(self) -> Question:
        """Draw the next question and show it."""
        q = self.next()
        _show(f"**{q.chapter_title} · {q.level} · Q{q.number}.** {q.title}")
        return q

    def reveal(self) -> str:
        """Show (and return) the answer to the current question, numbers filled in."""
        if self.current is None:
            raise RuntimeError("no question asked yet: call ask() first")
        text = to_markdown(self.current)
        _show(text)
        return text


def _show(markdown: str) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:  # pragma: no cover - optedu does not require IPython
        print(markdown)
        return
    # Markdown renders only in a notebook's kernel; a terminal IPython (or any other shell)
    # would print the object's repr, so it gets the text
    if type(get_ipython()).__name__ == "ZMQInteractiveShell":
        display(Markdown(markdown))
    else:
        print(markdown)
