"""Interview practice: the questions at the end of the chapters, drawn by topic and level.

The chapters are the single source of the questions. Each ends with folded admonitions::

    :::{admonition} Q1. Why does Adam need bias correction?
    :class: dropdown q-warmup

    The answer, in MyST, with numbers glued from the chapter's cells ...
    :::

An answer is what one says in about 30 seconds, then optionally ``**In two minutes.**`` (one
paragraph: the trade-off, and when the answer changes), ``**The evidence.**`` (runs, numbers),
optionally ``**Red flags.**`` and ``**Key points.**`` (a ``- `` list of the short claims a
marker credits; ``- A / B`` where either earns the point). :meth:`Question.at_length` gives it at
each of :data:`LENGTHS`.

:func:`parse_notebook` reads them from the notebooks (with the glued values the notebooks
store). ``tools/questions.py`` writes them into the question bank page (:func:`render_bank`)
and into ``optedu/practice/questions.json``, which ships with the package, so a practice session
(:class:`Quiz`) works from any folder, with or without the book beside it; a test keeps both
in step with the chapters::

    quiz = Quiz(topic="adam", level="deep", seed=0)
    quiz.ask()      # shows a question
    quiz.reveal()   # shows its model answer, numbers filled in

In a notebook the text is shown as Markdown; anywhere else (a terminal, a script) it is
printed as plain text, with the maths in Unicode (:func:`to_text`).
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import json
import random
import re
import time
from collections.abc import Callable, Iterable, Sequence
from importlib import resources
from pathlib import Path

from optedu.instruments.display import pasted

LEVELS = ("warm-up", "standard", "deep")
LEVEL_CLASSES = {"q-warmup": "warm-up", "q-standard": "standard", "q-deep": "deep"}

# Themes cut across chapters: a question carries one or more, as classes "t-<slug>".
THEMES = {
    "update-rules": "Update rules",
    "adaptive": "Adaptive methods",
    "schedules": "Schedules and warmup",
    "regularisation": "Regularisation and generalisation",
    "curvature": "Curvature and convergence",
    "debugging": "Stability and debugging",
    "precision": "Mixed precision and numerics",
    "memory": "Memory",
    "distributed": "Distributed training",
    "performance": "Performance",
    "large-models": "Large models",
    "tuning": "Choosing and tuning",
}
# What the question asks for, as a class "k-<kind>"; a question without one explains a
# concept. A scenario is a symptom to diagnose (a triage); a choice, a decision with its
# trade-offs; an estimate, a number to work out at a stated scale (memory, time, traffic).
KINDS = ("concept", "scenario", "choice", "estimate")
DETAIL_CLASS = "torch-detail"  # one framework's or paper's convention, not general knowledge
EVIDENCE = "**The evidence.**"  # starts the answer's second layer
# Ends the answer, after the evidence: what a weak answer says (the red flags an interviewer
# listens for), so a candidate can mark the mistakes as well as the points.
RED_FLAGS = "**Red flags.**"
# Between the spoken answer and the evidence: the two-minute answer, with the trade-off and
# when the answer changes (one paragraph of TWO_MINUTE_WORDS).
TWO_MINUTES = "**In two minutes.**"
# Last: the points a marker credits, one Markdown bullet each ("- "), a short claim;
# alternatives that earn the same credit on one line, "- A / B".
KEY_POINTS = "**Key points.**"
SPOKEN_SENTENCES = (3, 6)  # the spoken layer's length, in sentences
TWO_MINUTE_WORDS = (80, 300)  # what lint accepts (the format asks for 120 to 250)
KEY_POINT_WORDS = (3, 15)  # a key point's line at least, each of its alternatives at most
SHORTEST_POINT = 30  # characters: a shorter sentence ("No.") is no point on its own
# The answer's layers in their order; the spoken answer is the text before the first.
LAYERS = (TWO_MINUTES, EVIDENCE, RED_FLAGS, KEY_POINTS)
# The lengths an answer is shown at, and the mock slot (minutes) each fits.
LENGTHS = ("30 seconds", "two minutes", "deep")
SLOT_LENGTHS = {3: "30 seconds", 5: "two minutes", 7: "deep"}

_OPEN = re.compile(r"^:::\{admonition\} (?:Q(\d+)\. (.+)|(Diagnosis))$")
_CLASS = re.compile(r"^:class: (.+)$")
_CASE = re.compile(r"^## Case (\d+): (.+)$")
_FOLLOWS = re.compile(r"^follows-q(\d+)$")
_GLUE_ROLE = re.compile(r"\{glue(?::(\w+))?\}`([^`]+)`")
# a citation key written in brackets, [key2024] or [a2017,b2020], not a link [text](page):
# the page shows the bare key
_KEY = r"[a-z][a-z0-9_]*\d{4}[a-z0-9_]*"
_TEXT_CITE = re.compile(rf"\[{_KEY}(?:,\s*{_KEY})*\](?!\()")
_ROLE = re.compile(r"\{([\w:-]+)\}`([^`]+)`")
_RECORD = "application/papermill.record/"


@dataclasses.dataclass(frozen=True)
class Question:
    """One interview question as its chapter states it."""

    chapter: str  # the notebook's stem: "adam"
    chapter_title: str  # the notebook's first heading
    number: int  # Q<number> in the chapter (a casebook case: its number)
    title: str  # the question
    level: str  # one of LEVELS
    answer: str  # MyST source, as in the chapter
    # the chapter's glued values (text/plain), by key
    glued: dict[str, str] = dataclasses.field(compare=False, repr=False)
    themes: tuple[str, ...] = ()  # keys of THEMES
    kind: str = "concept"  # one of KINDS
    detail: bool = False  # a question about one framework's or paper's convention
    follows: int | None = None  # the question (number) this one follows up
    prompt: str = ""  # a scenario's set-up, shown before the question (MyST)
    # a case's figures as its page shows them: (alt text, PNG in base64), in order
    figures: tuple[tuple[str, str], ...] = dataclasses.field(default=(), compare=False,
                                                             repr=False)

    @property
    def glue_keys(self) -> list[str]:
        """The glued values the prompt, title and answer use, in order."""
        return [_split_glue(text)[0] for text in
                (t for _, t in _GLUE_ROLE.findall(self.prompt + self.title + self.answer))]

    def _layer(self, marker: str) -> str | None:
        """The text after ``marker`` up to the next layer's, or None where it is missing."""
        head, sep, tail = self.answer.partition(marker)
        if not sep:
            return None
        ends = [tail.find(m) for m in LAYERS if m != marker and m in tail]
        return tail[:min(ends)].strip() if ends else tail.strip()

    @property
    def spoken(self) -> str:
        """The answer one says aloud, in about 30 seconds: the text before the other layers."""
        ends = [self.answer.find(m) for m in LAYERS if m in self.answer]
        return self.answer[:min(ends)].strip() if ends else self.answer.strip()

    @property
    def two_minutes(self) -> str | None:
        """The two-minute paragraph (the trade-off, and when the answer changes): the text
        after :data:`TWO_MINUTES`, or None where the answer has none."""
        return self._layer(TWO_MINUTES)

    @property
    def evidence(self) -> str:
        """The runs and derivations behind the spoken answer, with its heading."""
        found = self._layer(EVIDENCE)
        return f"{EVIDENCE} {found}".strip() if found is not None else ""

    @property
    def red_flags(self) -> str | None:
        """What a weak answer says: the text after :data:`RED_FLAGS`, or None where the
        answer lists none."""
        return self._layer(RED_FLAGS)

    @property
    def key_points(self) -> list[tuple[str, ...]] | None:
        """The key points a marker credits, each as its alternatives (``- A / B`` gives
        ``("A", "B")``), or None where the answer lists none."""
        found = self._layer(KEY_POINTS)
        if found is None:
            return None
        return [tuple(_split_outside_maths(line[2:].strip(), " / "))
                for line in found.splitlines() if line.startswith("- ")]

    def at_length(self, length: str) -> str:
        """The answer at one of :data:`LENGTHS` (MyST, as in the chapter), labelled: the
        spoken answer; that and the two-minute paragraph; or those and the evidence (the deep
        answer). A question without a two-minute paragraph gives the spoken answer and the
        evidence for both longer lengths."""
        if length not in LENGTHS:
            raise ValueError(f"Invalid length: {length!r} (expected one of {LENGTHS})")
        parts = [self.spoken]
        if self.two_minutes is not None:
            parts = [f"**In 30 seconds.** {self.spoken}"]
            if length != LENGTHS[0]:
                parts.append(f"{TWO_MINUTES} {self.two_minutes}")
        if length == LENGTHS[2] or (length == LENGTHS[1] and self.two_minutes is None):
            parts.append(self.evidence)
        return "\n\n".join(part for part in parts if part)

    @property
    def short_answer(self) -> str:
        """The 30-second answer: the spoken answer (labelled where the question has a
        two-minute one)."""
        return self.at_length("30 seconds")

    @property
    def two_minute_answer(self) -> str | None:
        """The two-minute answer: the spoken answer and the two-minute paragraph, labelled;
        None where the question has no two-minute paragraph."""
        return None if self.two_minutes is None else self.at_length("two minutes")

    @property
    def deep_answer(self) -> str:
        """The deep answer: the spoken answer, the two-minute paragraph and the evidence."""
        return self.at_length("deep")

    @property
    def points(self) -> list[str]:
        """The key points a self-marking sheet lists, alternatives joined by "or"; where the
        answer lists none, the spoken answer's sentences, a fragment under
        :data:`SHORTEST_POINT` characters ("No.") joined to the sentence after it."""
        if self.key_points is not None:
            return [" *or* ".join(alternatives) for alternatives in self.key_points]
        return _whole_points(sentences(self.spoken))


def _whole_points(parts: list[str]) -> list[str]:
    """Sentences as key points: a fragment under :data:`SHORTEST_POINT` characters joins the
    next sentence (the last one joins the one before)."""
    points: list[str] = []
    carry = ""
    for part in parts:
        part = f"{carry} {part}".strip()
        carry = ""
        if len(part) < SHORTEST_POINT:
            carry = part
        else:
            points.append(part)
    if carry:
        if points:
            points[-1] = f"{points[-1]} {carry}"
        else:
            points.append(carry)
    return points


_MATHS = re.compile(r"\$\$.+?\$\$|\$.+?\$|`[^`]*`", re.S)
_SENTENCE_END = re.compile(r"(?<=[.!?])[\s]+(?=[A-Z\"*(`$\d\x00])")


def sentences(text: str) -> list[str]:
    """``text`` cut into sentences: at ".", "!" or "?" followed by a space and a capital,
    a digit, a quote, emphasis, maths or code; never inside maths or code."""
    hidden: list[str] = []

    def hide(match: re.Match) -> str:
        hidden.append(match.group(0))
        return f"\x00{len(hidden) - 1}\x00"

    masked = _MATHS.sub(hide, " ".join(text.split()))
    parts = [part for part in _SENTENCE_END.split(masked) if part.strip()]
    return [re.sub(r"\x00(\d+)\x00", lambda m: hidden[int(m.group(1))], part)
            for part in parts]


def _split_outside_maths(text: str, separator: str) -> list[str]:
    """``text`` split at ``separator``, never inside maths or code."""
    hidden: list[str] = []

    def hide(match: re.Match) -> str:
        hidden.append(match.group(0))
        return f"\x00{len(hidden) - 1}\x00"

    masked = _MATHS.sub(hide, text)
    return [re.sub(r"\x00(\d+)\x00", lambda m: hidden[int(m.group(1))], part).strip()
            for part in masked.split(separator) if part.strip()]


def _words(text: str) -> int:
    """Words in ``text``, a maths or code span counting as one."""
    return len(_MATHS.sub("x", text).split())


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


def _classes(where: str, line: str | None) -> dict:
    """The level, themes, kind, detail mark and follow-up read from a ':class:' line."""
    classes = _CLASS.match(line) if line is not None else None
    if classes is None or "dropdown" not in classes.group(1).split():
        raise ValueError(f"{where}: expected ':class: dropdown q-<level>'")
    tokens = classes.group(1).split()
    levels = [LEVEL_CLASSES[c] for c in tokens if c in LEVEL_CLASSES]
    if len(levels) != 1:
        raise ValueError(f"{where}: needs exactly one level class of "
                         f"{sorted(LEVEL_CLASSES)}")
    themes = tuple(c[2:] for c in tokens if c.startswith("t-"))
    unknown = [t for t in themes if t not in THEMES]
    if unknown:
        raise ValueError(f"{where}: invalid themes {unknown} (themes: {', '.join(THEMES)})")
    kinds = [c[2:] for c in tokens if c.startswith("k-")]
    if len(kinds) > 1 or any(k not in KINDS[1:] for k in kinds):
        raise ValueError(f"{where}: invalid kind classes {kinds} (at most one of "
                         f"{', '.join('k-' + k for k in KINDS[1:])})")
    follows = [int(m.group(1)) for m in map(_FOLLOWS.match, tokens) if m]
    return {"level": levels[0], "themes": themes, "kind": kinds[0] if kinds else "concept",
            "detail": DETAIL_CLASS in tokens, "follows": follows[0] if follows else None}


def parse_notebook(path: str | Path) -> list[Question]:
    """The interview questions of one chapter notebook, in order.

    A question is a folded admonition titled "Q<n>. <question>"; in the casebook, a case
    ("## Case <n>: <title>") is a scenario whose question is its set-up (the Markdown between
    the heading and its "Diagnosis" admonition) and whose answer is the diagnosis.
    """
    path = Path(path)
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    title, glued = _title(cells), _glued(cells)
    questions = []
    case: tuple[int, str] | None = None
    setup: list[str] = []
    figures: list[tuple[str, str]] = []
    for cell in cells:
        if cell["cell_type"] == "code" and case is not None:
            figures.extend(_figures(cell))
        if cell["cell_type"] != "markdown":
            continue
        lines = "".join(cell["source"]).splitlines()
        i = 0
        while i < len(lines):
            heading = _CASE.match(lines[i])
            if heading:
                case, setup, figures = (int(heading.group(1)), heading.group(2).strip()), [], []
                i += 1
                continue
            opened = _OPEN.match(lines[i])
            if not opened:
                if case is not None:
                    setup.append(lines[i])
                i += 1
                continue
            if opened.group(3):  # a casebook diagnosis
                if case is None:
                    raise ValueError(f"{path.name}: a Diagnosis outside a '## Case <n>:'")
                number, question = case[0], f"Case {case[0]}: {case[1]}"
                prompt = "\n".join(setup).strip()
            else:
                number, question = int(opened.group(1)), opened.group(2).strip()
                prompt = ""
            where = f"{path.name}, Q{number}"
            marks = _classes(where, lines[i + 1] if i + 1 < len(lines) else None)
            end = next((j for j in range(i + 2, len(lines)) if lines[j] == ":::"), None)
            if end is None:
                raise ValueError(f"{where}: no closing ':::'")
            answer = "\n".join(lines[i + 2:end]).strip()
            questions.append(Question(path.stem, title, number, question, marks["level"],
                                      answer, glued, marks["themes"], marks["kind"],
                                      marks["detail"], marks["follows"], prompt,
                                      tuple(figures) if prompt else ()))
            case, setup, figures = None, [], []
            i = end + 1
    return questions


def _figures(cell: dict) -> list[tuple[str, str]]:
    """A code cell's figure as its page shows it: (alt text, PNG in base64), or nothing."""
    alt = cell.get("metadata", {}).get("mystnb", {}).get("image", {}).get("alt")
    pngs = [output["data"]["image/png"] for output in cell.get("outputs", [])
            if "image/png" in output.get("data", {})]
    return [(alt, "".join(pngs[0]).strip())] if alt and pngs else []


def lint(question: Question) -> list[str]:
    """What keeps a question from the bank's shape: themes, a spoken layer of 3 to 6
    sentences with no number glued from a run, then the evidence, then (optionally) the red
    flags, not empty."""
    problems = []
    if not question.themes:
        problems.append("no theme (a class t-<theme>)")
    if EVIDENCE not in question.answer:
        problems.append(f"no evidence layer (a paragraph starting {EVIDENCE})")
    low, high = SPOKEN_SENTENCES
    n = len(sentences(question.spoken))
    if not low <= n <= high:
        problems.append(f"the spoken answer has {n} sentences, not {low} to {high}")
    if _GLUE_ROLE.search(question.spoken):
        problems.append("the spoken answer glues a number from a run (move it to the evidence)")
    for cite in _TEXT_CITE.findall(question.answer):
        problems.append(f"a citation written as text, {cite}: write {{cite:p}}`key`")
    if question.follows is not None and question.follows >= question.number:
        problems.append(f"follows Q{question.follows}, which does not come before it")
    if question.red_flags is not None:
        if not question.red_flags:
            problems.append(f"empty red flags (text after {RED_FLAGS})")
        if (question.answer.count(RED_FLAGS) > 1
                or question.answer.find(RED_FLAGS) < question.answer.find(EVIDENCE)):
            problems.append(f"{RED_FLAGS} must come once, after the evidence")
    return problems + _lint_layers(question)


def _lint_layers(question: Question) -> list[str]:
    """The two-minute paragraph's length and the key points' shape; the layers' order."""
    problems = []
    present = [m for m in LAYERS if m in question.answer]
    if any(question.answer.count(m) > 1 for m in present) or present != sorted(
            present, key=question.answer.index):
        problems.append("the layers must come once each, in the order "
                        + ", then ".join(LAYERS))
    two = question.two_minutes
    if two is not None:
        low, high = TWO_MINUTE_WORDS
        n = _words(two)
        if not low <= n <= high:
            problems.append(f"the two-minute answer has {n} words, not {low} to {high}")
        if "\n\n" in two:
            problems.append("the two-minute answer is more than one paragraph")
    if question.key_points is not None:
        found = question._layer(KEY_POINTS) or ""
        lines = [line for line in found.splitlines() if line.strip()]
        if not lines:
            problems.append(f"empty key points (a list after {KEY_POINTS})")
        low, high = KEY_POINT_WORDS
        for line in lines:
            if not line.startswith("- "):
                problems.append(f"a key point is not a '- ' list item: {line[:40]!r}")
                continue
            alternatives = _split_outside_maths(line[2:], " / ")
            longest = max((_words(a) for a in alternatives), default=0)
            if _words(line[2:]) < low or longest > high:
                problems.append(f"a key point of {longest} words, not {low} to {high} "
                                f"(a short claim, not a sentence): {line[2:42]!r}")
    return problems


BANK = "questions.json"  # the packaged questions, beside this module


def load(book: str | Path | None = None, chapters: Iterable[str] | None = None
         ) -> list[Question]:
    """Every interview question of the chapters in ``book`` (a folder of notebooks).

    Without ``book``, the questions that ship with optedu (``optedu/practice/questions.json``, written
    from the chapters by ``tools/questions.py``), whatever the current folder. ``chapters``
    (stems, in order) restricts and orders them; by default every chapter, in name order.
    """
    if book is None:
        return _packaged(chapters)
    folder = Path(book)
    if not folder.is_dir():
        raise ValueError(f"Invalid book folder: {folder} (not a directory)")
    if chapters is None:
        paths = sorted(folder.glob("*.ipynb"))
    else:
        paths = [folder / f"{stem}.ipynb" for stem in chapters]
    return [q for path in paths for q in parse_notebook(path)]


def to_json(questions: Sequence[Question]) -> str:
    """The questions as the packaged bank stores them: each with only the glued values its
    title and answer use."""
    rows = []
    for q in questions:
        row = dataclasses.asdict(q)
        row["glued"] = {key: q.glued[key] for key in dict.fromkeys(q.glue_keys)}
        rows.append(row)
    return json.dumps(rows, ensure_ascii=False, indent=1) + "\n"


def _packaged(chapters: Iterable[str] | None) -> list[Question]:
    bank = resources.files(__package__) / BANK
    questions = [Question(**(row | {"themes": tuple(row.get("themes", ())),
                                     "figures": tuple(map(tuple, row.get("figures", ())))}))
                 for row in json.loads(bank.read_text(encoding="utf-8"))]
    if chapters is None:
        return sorted(questions, key=lambda q: q.chapter)
    by_chapter: dict[str, list[Question]] = {}
    for q in questions:
        by_chapter.setdefault(q.chapter, []).append(q)
    unknown = [stem for stem in chapters if stem not in by_chapter]
    if unknown:
        raise ValueError(f"Invalid chapters: {unknown} (no questions; chapters: "
                         f"{', '.join(sorted(by_chapter))})")
    return [q for stem in chapters for q in by_chapter[stem]]


def _names(words: str, title: str) -> bool:
    """Whether ``title`` holds ``words`` as whole words: "mup" is not in "Why warmup works"."""
    found = re.search(rf"(?<!\w){re.escape(words)}(?!\w)", title.lower())
    return bool(words) and found is not None


def theme_of(words: str) -> str:
    """The theme named by ``words``: its key ("precision") or whole words of its title ("mixed
    precision")."""
    words = " ".join(words.lower().replace("-", " ").split())
    if words.replace(" ", "-") in THEMES:
        return words.replace(" ", "-")
    found = [key for key, title in THEMES.items() if _names(words, title)]
    if len(found) != 1:
        why = "matches " + ", ".join(found) if found else "no theme"
        raise ValueError(f"Invalid theme: {words!r} ({why}; themes: {', '.join(THEMES)})")
    return found[0]


def select(questions: Sequence[Question], topic: str | None = None,
           level: str | None = None, theme: str | None = None, details: bool = True,
           kind: str | None = None) -> list[Question]:
    """The questions of a topic (a chapter's stem, or whole words of its title), a level, a theme
    (:func:`theme_of`) and a kind; ``details=False`` leaves out the questions about one
    framework's conventions (:data:`DETAIL_CLASS`)."""
    if level is not None and level not in LEVELS:
        raise ValueError(f"Invalid level: {level!r} (expected one of {LEVELS})")
    if kind is not None and kind not in KINDS:
        raise ValueError(f"Invalid kind: {kind!r} (expected one of {KINDS})")
    key = theme_of(theme) if theme is not None else None
    chosen = [q for q in questions
              if (level is None or q.level == level) and (details or not q.detail)
              and (key is None or key in q.themes) and (kind is None or q.kind == kind)]
    if topic is not None:
        words = " ".join(topic.lower().split())
        chosen = [q for q in chosen if q.chapter == words or _names(words, q.chapter_title)]
        if not chosen and not any(q.chapter == words or _names(words, q.chapter_title)
                                  for q in questions):
            topics = sorted({q.chapter for q in questions})
            try:
                hint = f"; for the theme, theme={theme_of(topic)!r}"
            except ValueError:
                hint = ""
            raise ValueError(f"Invalid topic: {topic!r} (no questions{hint}; topics: "
                             f"{', '.join(topics)})")
    return chosen


# --- Rendering -------------------------------------------------------------------------------

_ROLE_WORDS = {"numref": "a figure", "prf:ref": "a proposition", "eq": "an equation",
               "ref": "a section"}


def _paste(glued: dict[str, str], text: str) -> str:
    key, spec = _split_glue(text)
    if key not in glued:
        raise KeyError(f"no glued value {key!r}")
    return pasted(glued[key], spec)


def to_markdown(question: Question, text: str | None = None) -> str:
    """``text`` (default: the answer) as plain Markdown for Jupyter: glued values filled in,
    cross-references replaced by words that say where the evidence is."""
    text = question.answer if text is None else text
    chapter = f"the chapter \u201c{question.chapter_title}\u201d"
    text = _GLUE_ROLE.sub(lambda m: _paste(question.glued, m.group(2)), text)

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


def labelled(question: Question) -> str:
    """The whole answer (MyST) with its lengths labelled: where the question has a two-minute
    paragraph, the spoken answer opens with "In 30 seconds"; the other layers carry their
    own headings."""
    if question.two_minutes is None:
        return question.answer
    return f"**In 30 seconds.** {question.answer}"


def label(question: Question) -> str:
    """The bank page's target name for a question: ``q-sparse-adam-3``."""
    return f"q-{question.chapter.replace('_', '-')}-{question.number}"


def name(question: Question) -> str:
    """How the question is called: "Q3", or "Case 8" for a casebook case."""
    return question.title.split(":")[0] if question.prompt else f"Q{question.number}"


def _classes_of(question: Question) -> str:
    level = next(c for c, name in LEVEL_CLASSES.items() if name == question.level)
    tokens = ["dropdown", level, *(f"t-{t}" for t in question.themes)]
    if question.kind != "concept":
        tokens.append(f"k-{question.kind}")
    if question.detail:
        tokens.append(DETAIL_CLASS)
    if question.follows is not None:
        tokens.append(f"follows-q{question.follows}")
    return " ".join(tokens)


def to_bank(question: Question, parent: Question | None = None) -> str:
    """The question as a folded admonition for the bank page, its glue read from its chapter;
    a casebook case as its set-up, then its folded diagnosis. A follow-up names ``parent``,
    the question it follows (by number where it is not given)."""
    def cross(match: re.Match) -> str:
        kind, text = match.groups()
        # MyST-NB reads a trailing ":spec" off a text role before the "path::" prefix, so
        # the text role needs its format spec written out; the other roles take none.
        key, spec = _split_glue(text)
        if kind == "text":
            return f"{{glue:text}}`{question.chapter}.ipynb::{key}:{spec}`"
        role = "glue" if kind is None else f"glue:{kind}"
        return f"{{{role}}}`{question.chapter}.ipynb::{key}`"

    answer = _GLUE_ROLE.sub(cross, labelled(question))
    source = (f"*From [{question.chapter_title}]({question.chapter}.ipynb), "
              f"{'case' if question.prompt else 'question'} {question.number}.*")
    title = _GLUE_ROLE.sub(cross, question.title)
    before = ""
    if question.follows is not None:
        # the heading names the question it follows ("Q2. Follow-up to Q1: when ..."), which
        # a line of its own above the box left standing between two questions
        title = _follows(title, question, parent)
    heading = f"Q{question.number}. {title}"
    if question.prompt:
        before = (f"**{question.title}.** {_GLUE_ROLE.sub(cross, question.prompt)}\n\n")
        heading = "Diagnosis"
    return (f"{before}:::{{admonition}} {heading}\n:class: {_classes_of(question)}\n"
            f":name: {label(question)}\n\n{answer}\n\n{source}\n:::")


def counts(questions: Sequence[Question]) -> dict[str, dict[str, int]]:
    """Number of questions per chapter stem and level."""
    table: dict[str, dict[str, int]] = {}
    for q in questions:
        row = table.setdefault(q.chapter, dict.fromkeys(LEVELS, 0))
        row[q.level] += 1
    return table


def _level_row(first: str, questions: Sequence[Question], bold: bool = False) -> str:
    cells = [sum(q.level == level for q in questions) for level in LEVELS]
    cells.append(len(questions))
    shown = [f"**{c}**" if bold else str(c) for c in cells]
    return f"| {first} | " + " | ".join(shown) + " |"


def _follows(title: str, question: Question, parent: Question | None) -> str:
    """A follow-up's title naming what it follows: 'Follow-up to Q1: and what ...'."""
    rest = re.sub(r"^Follow-up:\s*", "", title)
    return f"Follow-up to {name(parent) if parent else f'Q{question.follows}'}: {rest}"


def _link_text(question: Question, parent: Question | None = None) -> str:
    """A question's title as plain text for a link (maths in Unicode); a follow-up's names
    the question it follows."""
    text = to_text(to_markdown(question, question.title)).removeprefix(f"{name(question)}: ")
    if question.follows is not None:
        text = _follows(text, question, parent)
    return text.replace("<", "‹").replace(">", "›")


def render_themes(questions: Sequence[Question]) -> str:
    """The bank by theme: a count per theme and level, the kinds, then each theme's questions
    as a folded list of links to them."""
    header = "| theme | warm-up | standard | deep | all |\n|:--|--:|--:|--:|--:|"
    rows, folds = [], []
    by_number = {(q.chapter, q.number): q for q in questions}
    parent = lambda q: by_number.get((q.chapter, q.follows))  # noqa: E731
    for key, title in THEMES.items():
        mine = [q for q in questions if key in q.themes]
        rows.append(_level_row(f"[{title}](#theme-{key})", mine))
        links = "\n".join(f"- {{ref}}`{q.chapter_title}, {name(q)} <{label(q)}>`: "
                          f"{_link_text(q, parent(q))}"
                          + (" *(torch detail)*" if q.detail else "")
                          for q in mine)
        folds.append(f"(theme-{key})=\n:::{{admonition}} {title}: {len(mine)} questions\n"
                     f":class: dropdown\n\n{links}\n:::")
    rows.append(_level_row("**all**", questions, bold=True))
    kinds = ("| kind | questions |\n|:--|--:|\n" + "\n".join(
        f"| {kind} | {sum(q.kind == kind for q in questions)} |" for kind in KINDS)
        + f"\n| torch detail | {sum(q.detail for q in questions)} |"
        + f"\n| follow-up | {sum(q.follows is not None for q in questions)} |")
    return "\n\n".join(["\n".join([header, *rows]), kinds, *folds])


def render_bank(parts: Sequence[tuple[str, Sequence[str]]], book: str | Path) -> str:
    """The question bank (MyST): a count per topic and level, the bank by theme
    (:func:`render_themes`), then every chapter's questions under its part's heading.
    ``parts`` are (caption, chapter stems)."""
    sections, rows, everything = [], [], []
    for caption, stems in parts:
        questions = load(book, stems)
        if not questions:
            continue
        everything.extend(questions)
        sections.append(f"## {caption}")
        for stem in stems:
            chapter = [q for q in questions if q.chapter == stem]
            if not chapter:
                continue
            title = chapter[0].chapter_title
            rows.append(_level_row(f"[{title}]({stem}.ipynb)", chapter))
            sections.append(f"### {title}")
            number = {q.number: q for q in chapter}
            sections.extend(to_bank(q, None if q.follows is None else number.get(q.follows))
                            for q in chapter)
    header = ("| topic | warm-up | standard | deep | all |\n"
              "|:--|--:|--:|--:|--:|")
    rows.append(_level_row("**all**", everything, bold=True))
    table = (f":::{{admonition}} Questions per chapter and level ({len(rows) - 1} pages)\n"
             ":class: dropdown\n\n" + "\n".join([header, *rows]) + "\n:::")
    by_theme = "## By theme\n\n" + render_themes(everything)
    by_chapter = ("## By chapter\n\nThe questions follow, part by part, in the book's order; "
                  "each links back to its chapter.")
    return "\n\n".join([by_theme, by_chapter, table, *sections]) + "\n"


class Quiz:
    """Draw interview questions at random and reveal their answers.

    ``Quiz(topic="adam", level="standard", theme=None, details=True, kind=None, seed=0)``
    (filters as :func:`select`); ``ask()`` shows the next question, ``reveal()`` its answer.
    Every question is drawn once before any repeats. :meth:`mock` builds a mock interview.
    """

    def __init__(self, topic: str | None = None, level: str | None = None,
                 seed: int | None = None, book: str | Path | None = None, *,
                 theme: str | None = None, details: bool = True,
                 kind: str | None = None) -> None:
        self.bank = load(book)
        self.questions = select(self.bank, topic, level, theme, details, kind)
        if not self.questions:
            raise ValueError("No question matches these filters: "
                             f"topic={topic!r}, level={level!r}, theme={theme!r}, "
                             f"details={details!r}, kind={kind!r}")
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
        _show(question_text(q, self.bank))
        return q

    def reveal(self) -> str:
        """Show (and return) the answer to the current question, numbers filled in."""
        if self.current is None:
            raise RuntimeError("no question asked yet: call ask() first")
        text = to_markdown(self.current, labelled(self.current))
        _show(text)
        return text

    @classmethod
    def mock(cls, minutes: int = 30, theme: str | None = None, seed: int | None = None,
             details: bool = False, book: str | Path | None = None,
             record: str | Path | None = None) -> Mock:
        """A mock interview of about ``minutes``: a balanced set of main questions (levels
        in turn, the least asked themes and kinds first), each followed by a follow-up;
        torch details left out unless ``details``; with ``record``, a practice record kept
        in that file (due and weakest first). See :class:`Mock`."""
        return Mock(load(book), minutes, theme, seed, details, record)


def question_text(q: Question, bank: Sequence[Question] = ()) -> str:
    """A question as the quiz shows it: where it is from, its level, a follow-up's parent
    question, a scenario's set-up, then the question; a case's figures follow (as images in
    Jupyter; a terminal prints their descriptions, :func:`to_text`)."""
    head = f"**{q.chapter_title} · {q.level} · {name(q)}.**"
    if q.prompt:  # a case: its name is in the head already
        title = _title_text(q).removeprefix(f"{name(q)}: ")
        shown = "".join(f"\n\n![The figure: {alt.replace('[', '(').replace(']', ')')}]"
                        f"(data:image/png;base64,{png})" for alt, png in q.figures)
        return f"{head} {title}\n\n{to_markdown(q, q.prompt)}{shown}"
    parent = next((p for p in bank if p.chapter == q.chapter and p.number == q.follows),
                  None)
    context = ""
    if parent is not None:
        title = _title_text(parent).removeprefix(f"{name(parent)}: ")  # a case's title
        context = f"*(Following {name(parent)}: {title})*\n\n"
    return f"{context}{head} {_title_text(q)}"


# Minutes a candidate gets for a main question, by level, and for a follow-up.
MOCK_MINUTES = {"warm-up": 3, "standard": 5, "deep": 7}
FOLLOW_UP_MINUTES = 3
_LEVEL_TURNS = ("standard", "warm-up", "deep", "standard")
# Spaced repetition (Leitner's boxes): a question answered well (at least GOOD of its points)
# moves up a box, a weaker answer sends it back to the first; a question is due again after
# its box's days.
REVIEW_DAYS = (0, 1, 3, 7, 16, 35)
GOOD = 2 / 3


@dataclasses.dataclass(frozen=True)
class Turn:
    """One question of a mock interview, with its minutes; ``main`` is the main question a
    follow-up follows (None for a main question); ``own`` says whether the follow-up is the
    main question's own (a question marked ``follows-q<n>``) or a related question on its
    theme."""

    question: Question
    minutes: int
    main: Question | None = None
    own: bool = False


def key_of(q: Question) -> str:
    """A question's name in a practice record: ``"adam:3"``."""
    return f"{q.chapter}:{q.number}"


class Record:
    """What past practices scored, kept in a local JSON file between sessions: for each
    question (:func:`key_of`), every time it was marked: the day, the share of its points
    ticked, the seconds taken, the minutes allowed, and its themes.

    ``due(q, today)`` says whether spaced repetition asks ``q`` again (:data:`REVIEW_DAYS`);
    ``theme_scores()`` is the mean share per theme, weakest first.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.answers: dict[str, list[dict]] = {}
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text())
                answers = data["answers"]
                if not isinstance(answers, dict) or not all(
                        isinstance(v, list) and all({"day", "score"} <= set(e) for e in v)
                        for v in answers.values()):
                    raise TypeError("answers is not a map of lists of marked answers")
            except (ValueError, KeyError, TypeError) as error:
                raise ValueError(f"Invalid record: {str(self.path)!r} is not a practice "
                                 f"record ({error}); move it away to start a new one") from None
            self.answers = answers

    def add(self, q: Question, score: float, seconds: float | None, minutes: int,
            day: datetime.date) -> None:
        self.answers.setdefault(key_of(q), []).append(
            {"day": day.isoformat(), "score": round(score, 3),
             "seconds": None if seconds is None else round(seconds),
             "minutes": minutes, "themes": list(q.themes)})

    def box(self, q: Question) -> int:
        b = 0
        for entry in self.answers.get(key_of(q), []):
            b = min(b + 1, len(REVIEW_DAYS) - 1) if entry["score"] >= GOOD else 0
        return b

    def due(self, q: Question, today: datetime.date) -> bool:
        entries = self.answers.get(key_of(q))
        if not entries:
            return True
        last = datetime.date.fromisoformat(entries[-1]["day"])
        return (today - last).days >= REVIEW_DAYS[self.box(q)]

    def theme_scores(self) -> dict[str, float]:
        shares: dict[str, list[float]] = {}
        for entries in self.answers.values():
            for entry in entries:
                for theme in entry.get("themes", []):
                    shares.setdefault(theme, []).append(entry["score"])
        means = {t: sum(v) / len(v) for t, v in shares.items()}
        return dict(sorted(means.items(), key=lambda item: (item[1], item[0])))

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"answers": self.answers}, indent=1) + "\n")


def _follow_up(main: Question, pool: Sequence[Question], used: set,
               chains: Sequence[Question] = ()) -> tuple[Question, bool] | None:
    """The follow-up to ``main`` and whether it is its own: its own chain first (a question
    of ``chains``, or of ``pool``, marked ``follows-q<n>``: a theme filter keeps a question's
    chain), else the nearest question of its chapter sharing a theme, else one of another
    chapter on its first theme; at its level or deeper where there is one."""
    def fresh(q: Question) -> bool:
        return id(q) not in used and q is not main

    own = [q for q in (*chains, *pool) if q.chapter == main.chapter
           and q.follows == main.number and fresh(q)]
    if own:
        return own[0], True
    near = [q for q in pool if fresh(q) and q.follows is None and (
        q.chapter == main.chapter and set(q.themes) & set(main.themes)
        or main.themes and main.themes[0] in q.themes)]
    if not near:
        return None
    return min(near, key=lambda q: (given_away(q, main),
                                    LEVELS.index(q.level) < LEVELS.index(main.level),
                                    q.chapter == main.chapter,
                                    abs(q.number - main.number), q.chapter)), False


_STOP = frozenset("""about after against also because before being between could does doing
every their there these those under until what when where which while whose would your with
from into over than that this they them then were will have more most other same such only
just very some many much""".split())


@functools.lru_cache(maxsize=4096)
def _content_words(markdown: str) -> frozenset[str]:
    """The words of five letters or more of ``markdown`` as plain text, common ones left out
    (cached: a mock compares each main question's answer with many titles)."""
    text = to_text(markdown).lower()
    return frozenset(w for w in re.findall(r"[a-z][a-z-]{4,}", text) if w not in _STOP)


def given_away(q: Question, before: Question) -> bool:
    """Whether the answer to ``before``, shown just before, already holds ``q``'s question:
    most of the words of ``q``'s title (five letters or more, common words left out) occur
    in it. A related question that is given away is asked only when no other is left."""
    words = _content_words(q.title)
    said = _content_words(before.answer)
    return len(words) >= 2 and len(words & said) >= GIVEN_AWAY * len(words)


GIVEN_AWAY = 0.6  # the share of a title's words that, found in the answer before, give it away

# --- What a typed answer says: the points it seems to make, the red flags it repeats -------

MADE = 0.6  # the share of a key point's words an answer must hold to seem to make it
PRESSED = 1 / 3  # an answer seeming to make fewer than this share of the points is pressed
# what a typed answer offers as evidence: a number, a measurement, a run, a paper or a proof
_EVIDENCE = re.compile(r"\d|measur|\bran\b|\brun|paper|experiment|\bfound|\bshow|ablation"
                       r"|benchmark|report|proof|prove|deriv", re.IGNORECASE)
SAID = 0.8  # the share of a red flag's words a stretch of one sentence must hold, in order
_NEGATION = re.compile(r"\b(?:not|no|never|none|nothing|neither|nor|cannot|without)\b|n't\b")
_QUOTED = re.compile(r'"([^"]{6,}?)"|“([^”]{6,}?)”')
_SHORT_STOP = frozenset("""the and for are but not you its can has had was any all one out
who how why use used each per""".split())


def _stem_list(markdown: str) -> list[str]:
    """The words of ``markdown`` as plain text in order, three letters or more, common ones
    left out, each cut to a crude stem ("clipping", "clips" and "clipped" all read "clip")."""
    out = []
    for word in re.findall(r"[a-z0-9][a-z0-9-]{2,}", to_text(markdown).lower()):
        if word in _STOP or word in _SHORT_STOP:
            continue
        for suffix in ("ing", "ed", "es", "s"):
            if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                word = word[:-len(suffix)]
                break
        out.append(word.rstrip("e") if len(word) > 4 else word)
    return out


def made_points(q: Question, text: str) -> list[int]:
    """The key points (numbered as :meth:`Mock.reveal` shows them) whose words ``text``
    mostly holds, for any of a point's alternatives: a hint for marking, not a mark."""
    said = set(_stem_list(text))
    alternatives = q.key_points if q.key_points is not None else [(p,) for p in q.points]
    made = []
    for i, options in enumerate(alternatives, 1):
        for option in options:
            words = set(_stem_list(option))
            if words and len(words & said) >= MADE * len(words):
                made.append(i)
                break
    return made


def _repeats(claim: list[str], sentence: list[str]) -> bool:
    """Whether a stretch of ``sentence`` at most one word longer than ``claim`` holds
    :data:`SAID` of its words in its order."""
    best = 0
    for i, word in enumerate(sentence):
        if word not in claim:
            continue
        k, n = claim.index(word) + 1, 1
        for later in sentence[i + 1:i + len(claim) + 1]:
            if later in claim[k:]:
                k, n = claim.index(later, k) + 1, n + 1
        best = max(best, n)
    return best >= SAID * len(claim)


def pushback_claims(q: Question) -> list[str]:
    """The claims quoted in ``q``'s red flags that a typed answer can be checked against:
    three words or more, no numbers or mathematics (those a marker reads)."""
    claims = [a or b for a, b in _QUOTED.findall(q.red_flags or "")]
    return [c for c in claims if "$" not in c and not re.search(r"\d", c)
            and len(_stem_list(c)) >= 3]


def red_flags_said(q: Question, text: str) -> list[str]:
    """The claims quoted in ``q``'s red flags (what a weak answer says) that a sentence of
    ``text`` repeats: most of the claim's words in its order, and a negation where the claim
    has one (so "clipping does not fix exploding gradients" does not repeat "clipping fixes
    exploding gradients"). No answer of the bank's own repeats one of its red flags."""
    parts = [(_stem_list(s), bool(_NEGATION.search(s.lower()))) for s in sentences(text)]
    return [claim for claim in pushback_claims(q)
            if any(_repeats(_stem_list(claim), words)
                   and negated == bool(_NEGATION.search(claim.lower()))
                   for words, negated in parts)]


def _which(points: Sequence[int]) -> str:
    """"none", "point 2" or "points 1, 3 and 4"."""
    numbers = [str(i) for i in points]
    if len(numbers) < 2:
        return f"point {numbers[0]}" if numbers else "none"
    return f"points {', '.join(numbers[:-1])} and {numbers[-1]}"


def presses(q: Question, text: str, minutes: int) -> list[str]:
    """What an interviewer asks next of a typed answer to ``q`` in a slot of ``minutes``: for
    more, where its words seem to make fewer than :data:`PRESSED` of the key points; and how
    it knows, where a slot of five minutes or more is answered with no number, measurement,
    run, paper or proof. No answer of the bank's, at its slot's length, is pressed (a test
    reads them all). Empty for an empty answer."""
    if not text.strip():
        return []
    asked = []
    made, n = made_points(q, text), len(q.points)
    if len(made) < PRESSED * n:
        asked.append(f"by its words your answer makes {_which(made)} of the {n} key points "
                     "a full answer makes. What else decides it?")
    if minutes >= 5 and not _EVIDENCE.search(text):
        asked.append("how do you know? Name a number, a measurement, a run or a paper.")
    return asked


def _duration(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m} min {s:02d} s" if m else f"{s} s"


class Mock:
    """A mock interview drawn from the bank: ``Quiz.mock(minutes=30, theme=None, seed=0)``.

    Main questions take their level's minutes (:data:`MOCK_MINUTES`) and each is followed by
    a follow-up (:data:`FOLLOW_UP_MINUTES`): its own where it has one (kept under a theme
    filter), else a related question on its theme, named as such. Levels come in turn
    (standard, warm-up, deep, standard, ...); among a level's questions the draw prefers the
    themes and kinds asked least so far, so a session spreads over the bank.

    It runs like an interview: ``ask()`` shows a question and starts its clock; ``answer(
    text)`` stops it (keeping what you typed or noted) and says how long you took against the
    minutes allowed; ``reveal()`` shows the model answer (stopping the clock if it runs);
    ``mark(1, 3)`` ticks the key points you made, as the answer's points are numbered on the
    sheet; ``sheet()`` shows the marking sheet (``sheet("mock.md")`` also writes it, to print).

    With ``record="practice.json"`` the marks are kept in that file between practices
    (:class:`Record`): the next mock asks first the questions spaced repetition says are due
    and, among them, those of the themes you scored weakest on.
    """

    def __init__(self, bank: Sequence[Question], minutes: int = 30,
                 theme: str | None = None, seed: int | None = None,
                 details: bool = False, record: str | Path | None = None,
                 today: datetime.date | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        shortest = min(MOCK_MINUTES.values()) + FOLLOW_UP_MINUTES
        if not isinstance(minutes, (int, float)) or minutes < shortest:
            raise ValueError(f"Invalid minutes: {minutes!r} (at least {shortest}: one "
                             "question and its follow-up)")
        self.minutes, self.bank = minutes, list(bank)
        self.record = Record(record) if record is not None else None
        self.today = today or datetime.date.today()
        self._clock = clock
        pool = select(self.bank, theme=theme, details=details)
        if not pool:
            raise ValueError(f"No question for theme={theme!r}, details={details!r}")
        chains = select(self.bank, details=details)
        rng = random.Random(seed)
        mains = [q for q in pool if q.follows is None]
        rng.shuffle(mains)
        weakness: dict[str, float] = {}
        if self.record is not None:
            weakness = self.record.theme_scores()

        def rank(q: Question) -> tuple:
            weakest = min((weakness.get(t, 0.5) for t in q.themes), default=0.5)
            return (weakest, kind_count.get(q.kind, 0),
                    min((theme_count.get(t, 0) for t in q.themes), default=0))

        used: set = set()
        theme_count: dict[str, int] = {}
        kind_count: dict[str, int] = {}
        self.turns: list[Turn] = []
        left = minutes
        for turn in range(len(mains)):
            level = _LEVEL_TURNS[turn % len(_LEVEL_TURNS)]
            fits = [q for q in mains if id(q) not in used
                    and MOCK_MINUTES[q.level] + FOLLOW_UP_MINUTES <= left
                    and _follow_up(q, pool, used | {id(q)}, chains) is not None]
            if not fits:
                break
            if self.record is not None:  # what spaced repetition says is due, first
                fits = [q for q in fits if self.record.due(q, self.today)] or fits
            at_level = [q for q in fits if q.level == level] or fits
            main = min(at_level, key=rank)
            used.add(id(main))
            found = _follow_up(main, pool, used, chains)
            assert found is not None
            follow, own = found
            used.add(id(follow))
            for q in (main, follow):
                kind_count[q.kind] = kind_count.get(q.kind, 0) + 1
                for t in q.themes:
                    theme_count[t] = theme_count.get(t, 0) + 1
            self.turns += [Turn(main, MOCK_MINUTES[main.level]),
                           Turn(follow, FOLLOW_UP_MINUTES, main, own)]
            left -= MOCK_MINUTES[main.level] + FOLLOW_UP_MINUTES
        self._at = -1
        self._started: float | None = None
        self.seconds: dict[int, float] = {}
        self.answers: dict[int, str] = {}
        self.marks: dict[int, tuple[int, ...]] = {}
        self._saved: set[int] = set()
        self._pressed: set[int] = set()  # the turns the interviewer pushed back on
        self._more = "answer(more) adds to your answer, or reveal()"  # a terminal: its keys

    def __len__(self) -> int:
        return len(self.turns)

    @property
    def total_minutes(self) -> int:
        return sum(turn.minutes for turn in self.turns)

    def plan(self) -> str:
        """The interview's shape, questions hidden: turns, levels, themes and minutes."""
        mains = [t for t in self.turns if t.main is None]
        own = sum(t.own for t in self.turns)
        themes = sorted({THEMES[k] for t in self.turns for k in t.question.themes})
        record = ""
        if self.record is not None:
            record = f" Marks are kept in {self.record.path}."
            marked = sum(len(v) for v in self.record.answers.values())
            if marked:
                weakest = [THEMES.get(t, t) for t in list(self.record.theme_scores())[:2]]
                record += (f" Your record holds {marked} marked answers: questions due for "
                           "review come first, then your weakest themes ("
                           + ", ".join(weakest) + ").")
        n = len(mains)
        return (f"A mock interview of {self.total_minutes} minutes: {n} main "
                f"question{'s' if n != 1 else ''} "
                f"({', '.join(t.question.level for t in mains)}), each followed by its own "
                f"follow-up ({own}) or a related question ({n - own}). "
                f"Themes: {', '.join(themes)}.{record}")

    def _how(self) -> str:
        return (self.plan() + " ask() starts a question's clock; answer aloud or type it; "
                "answer(text) stops the clock, reveal() shows the model answer, mark(1, 3) "
                "ticks the points you made, sheet() marks the interview.")

    def _repr_markdown_(self) -> str:
        return self._how()

    def __repr__(self) -> str:
        return self._how()

    def _stop(self) -> float | None:
        """Stop the current question's clock (if it runs); its seconds so far."""
        if self._started is not None:
            self.seconds[self._at] = (self.seconds.get(self._at, 0.0)
                                      + self._clock() - self._started)
            self._started = None
        return self.seconds.get(self._at)

    def elapsed(self) -> float | None:
        """Seconds on the running clock of the question asked last, time before a push-back
        included (None when none runs)."""
        if self._started is None:
            return None
        return self.seconds.get(self._at, 0.0) + self._clock() - self._started

    def _time_line(self) -> str:
        seconds, minutes = self.seconds.get(self._at), self.turns[self._at].minutes
        if seconds is None:
            return ""
        over = seconds - 60 * minutes
        verdict = (f", **{_duration(over)} over** the {minutes} minutes" if over > 0
                   else f" of the {minutes} minutes")
        return f"*Time: {_duration(seconds)}{verdict}.*"

    def _current(self) -> Turn:
        if self._at < 0:
            raise RuntimeError("no question asked yet: call ask() first")
        return self.turns[self._at]

    def ask(self) -> Question:
        """Show the next turn's question and start its clock (a follow-up says whose)."""
        if self._at + 1 >= len(self.turns):
            raise RuntimeError("the interview is over: call sheet() to mark it")
        if self._at >= 0:
            self._stop()
        self._at += 1
        turn = self.turns[self._at]
        where = f"Question {self._at + 1} of {len(self.turns)}, {turn.minutes} min"
        if turn.main is not None:
            where += (f", a follow-up to {name(turn.main)}" if turn.own
                      else f", a related question after {name(turn.main)}")
        _show(f"*{where}.*\n\n" + question_text(turn.question, self.bank))
        self._started = self._clock()
        return turn.question

    @property
    def pressing(self) -> bool:
        """Whether the interviewer has pushed back on the answer to the question asked last
        and waits for more (its clock running again): answer again, or reveal()."""
        return self._at in self._pressed and self._started is not None

    def answer(self, text: str = "") -> str:
        """Stop the clock on the question asked last and keep your answer (typed, or notes of
        what you said); show (and return) the time taken against the minutes allowed.

        A typed answer is read as an interviewer listens, once a question: where it says
        what a weak answer says (a red flag's claim), seems to make few of the key points, or
        gives a five- or seven-minute slot no evidence (:func:`presses`), the interviewer
        pushes back and the clock runs again; ``answer(more)`` adds to the answer and stops
        it, ``reveal()`` goes on."""
        turn = self._current()
        if not isinstance(text, str):
            raise ValueError(f"Invalid text: {text!r} (your answer, as a string)")
        self._stop()
        if text.strip():  # after a push-back, what you add follows what you said
            before = self.answers.get(self._at) if self._at in self._pressed else None
            self.answers[self._at] = (f"{before}\n\n(after the push-back) {text.strip()}"
                                      if before else text.strip())
        line = self._time_line()
        if self._at in self._pressed:  # an interviewer pushes back once a question
            _show(line)
            return line
        said = red_flags_said(turn.question, text)
        asked = presses(turn.question, text, turn.minutes)
        if said:
            claims = "; ".join(f"“{claim}”" for claim in said)
            line += (f"\n\n*The interviewer pushes back:* your answer says {claims}, which is"
                     f" what a weak answer says. Is it right? Say why, or what it misses.")
        elif asked:
            line += "\n\n*The interviewer presses:* " + " And ".join(asked)
        if said or asked:
            self._pressed.add(self._at)
            self._started = self._clock()
            line += f" The clock runs again: {self._more}."
        _show(line)
        return line

    def reveal(self, length: str | None = None) -> str:
        """Stop the clock if it runs; show the time taken and the answer to the question
        asked last at the length its slot allows (:data:`SLOT_LENGTHS`: 3 minutes, the
        30-second answer; 5, the two-minute answer; 7, the deep answer), or at ``length``
        (one of :data:`LENGTHS`), saying which; then its red flags and its key points,
        numbered for :meth:`mark`. Returns the answer shown."""
        turn = self._current()
        q = turn.question
        if length is None:
            length = SLOT_LENGTHS.get(turn.minutes, LENGTHS[-1])
        text = to_markdown(q, q.at_length(length))  # raises on a bad length
        running = self._started is not None  # else answer() has shown the time already
        self._stop()
        points = "\n".join(f"{i}. {to_markdown(q, p)}" for i, p in enumerate(q.points, 1))
        flags = (f"*Red flags (what a weak answer says):* {to_markdown(q, q.red_flags)}"
                 if q.red_flags else "")
        typed = self.answers.get(self._at)
        hint = ""
        if typed:
            made = made_points(q, typed)
            hint = (f"*Your typed answer seems to make {_which(made)} of the"
                    f" {len(q.points)} points (by its words: tick only what it really"
                    f" makes).*")
        shown = "\n\n".join(part for part in (
            self._time_line() if running else "", _length_line(q, length, turn.minutes),
            text, flags, f"**Key points** (for mark()):\n\n{points}", hint) if part)
        _show(shown)
        return text

    def mark(self, *points: int) -> float:
        """Tick the key points your answer to the question asked last made (their numbers in
        :meth:`reveal`); ``mark()`` with none ticks none. Returns the share of points."""
        q = self._current().question
        n = len(q.points)
        for p in points:
            if isinstance(p, bool) or not isinstance(p, int) or not 1 <= p <= n:
                raise ValueError(f"Invalid point: {p!r} ({name(q)} has points 1 to {n})")
        self.marks[self._at] = tuple(sorted(set(points)))
        return len(self.marks[self._at]) / n

    def sheet(self, path: str | Path | None = None) -> str:
        """Show (and return) the marking sheet: for each question the time taken, your
        answer, and the key points a full answer makes (ticked where you marked them). With a
        record, the marked answers are saved to it; with ``path``, the sheet is also written
        there as Markdown (to print)."""
        if self._at >= 0:
            self._stop()
        blocks = []
        for i, turn in enumerate(self.turns):
            q = turn.question
            ticked = self.marks.get(i, ())
            points = "\n".join(f"- [{'x' if j in ticked else ' '}] {to_markdown(q, point)}"
                               for j, point in enumerate(q.points, 1))
            taken = (f", took {_duration(self.seconds[i])}" if i in self.seconds else "")
            said = "".join(f"\n> {line}" for line in self.answers.get(i, "").splitlines())
            said = f"\n{said}" if said else ""
            flags = (f"\n\n*Red flags (what a weak answer says):* "
                     f"{to_markdown(q, q.red_flags)}" if q.red_flags else "")
            blocks.append(f"**{i + 1}. {q.chapter_title}, {name(q)}** ({q.level}, "
                          f"{turn.minutes} min{taken}): {_title_text(q)}{said}\n\n{points}"
                          f"{flags}")
        total = sum(len(t.question.points) for t in self.turns)
        if self.marks:
            got = sum(len(v) for v in self.marks.values())
            of = sum(len(self.turns[i].question.points) for i in self.marks)
            n = len(self.marks)
            score = (f"**Score:** {got} of {of} points on {n} question"
                     f"{'s' if n > 1 else ''} marked")
        else:
            score = f"**Score:** points ticked out of {total}"
        text = ("\n\n".join(blocks) + f"\n\n{score}; re-read the evidence of every answer "
                "that scored under half.")
        if self.record is not None and self.marks:
            for i, ticked in self.marks.items():
                if i in self._saved:
                    continue
                turn = self.turns[i]
                self.record.add(turn.question, len(ticked) / len(turn.question.points),
                                self.seconds.get(i), turn.minutes, self.today)
                self._saved.add(i)
            self.record.save()
            text += f" Saved to {self.record.path}."
        if path is not None:
            Path(path).write_text(text + "\n")
        _show(text)
        return text


def _length_line(q: Question, length: str, minutes: int) -> str:
    """Which answer a mock shows, and how to see the others."""
    if q.two_minutes is None and length != LENGTHS[0]:
        shown = "the spoken answer and its evidence (no two-minute answer yet)"
    elif q.two_minutes is None:
        shown = "the spoken answer (its only length besides the evidence)"
    else:
        shown = {"30 seconds": "the 30-second answer", "two minutes": "the two-minute answer",
                 "deep": "the deep answer"}[length]
    more = "" if length == LENGTHS[-1] else "; reveal('deep') shows the evidence too"
    return f"*Shown: {shown}, for a {minutes}-minute question{more}.*"


def _title_text(q: Question) -> str:
    return to_markdown(q, q.title)


# --- Plain text for a terminal ---------------------------------------------------------------

_SYMBOLS = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "varepsilon": "ε",
    "eta": "η", "theta": "θ", "kappa": "κ", "lambda": "λ", "mu": "μ", "pi": "π", "rho": "ρ",
    "sigma": "σ", "tau": "τ", "phi": "φ", "chi": "χ", "psi": "ψ", "omega": "ω",
    "Delta": "Δ", "Sigma": "Σ", "Psi": "Ψ", "Phi": "Φ", "Omega": "Ω", "Gamma": "Γ",
    "Lambda": "Λ", "Theta": "Θ", "nabla": "∇", "sum": "Σ", "prod": "Π", "infty": "∞",
    "le": "≤", "leq": "≤", "ge": "≥", "geq": "≥", "ne": "≠", "neq": "≠", "ll": "≪",
    "gg": "≫", "approx": "≈", "sim": "~", "lesssim": "≲", "gtrsim": "≳", "pm": "±",
    "times": "×", "cdot": "·",
    "odot": "⊙", "to": "→", "leftarrow": "←", "rightarrow": "→", "mapsto": "↦", "otimes": "⊗",
    "lceil": "⌈", "rceil": "⌉", "top": "ᵀ", "star": "*",
    "dots": "…", "ldots": "…", "cdots": "⋯", "langle": "⟨", "rangle": "⟩", "|": "‖",
    "propto": "∝", "in": "∈", "partial": "∂", "ell": "ℓ", "lVert": "‖", "rVert": "‖",
    "lvert": "|", "rvert": "|",
    ",": " ", ";": " ", "!": "", " ": " ", "quad": "  ", "{": "{", "}": "}", "%": "%",
    "max": "max", "min": "min", "ln": "ln", "log": "log", "exp": "exp", "cos": "cos",
    "sin": "sin", "tanh": "tanh", "arg": "arg", "sign": "sign",
    "left": "", "right": "", "big": "", "Big": "", "bigl": "", "bigr": "", "Bigl": "",
    "Bigr": "",
}
_ACCENTS = {"hat": "\u0302", "bar": "\u0304", "tilde": "\u0303", "vec": "\u20d7",
            "dot": "\u0307"}
_FONTS = ("text", "mathrm", "operatorname", "mathbf", "mathbb", "mathcal", "boldsymbol",
          "textrm", "mathit", "textit", "textbf")
_SUP = str.maketrans("0123456789+-=()nTtki", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿᵀᵗᵏⁱ")
_SUB = str.maketrans("0123456789+-=()aeiklmnoprstx", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑᵢₖₗₘₙₒₚᵣₛₜₓ")


def _command(tex: str, i: int) -> re.Match[str]:
    """The command starting at the backslash ``tex[i]``: its name is ``group(1)``."""
    found = re.match(r"\\([A-Za-z]+|.)", tex[i:])
    if found is None:
        raise ValueError(f"Invalid TeX: {tex!r} (a lone backslash at {i})")
    return found


def _group(tex: str, i: int) -> tuple[str, int]:
    """The argument starting at ``tex[i]`` (a braced group or one character) and the index
    after it."""
    while i < len(tex) and tex[i] == " ":
        i += 1
    if i >= len(tex):
        return "", i
    if tex[i] != "{":
        if tex[i] == "\\":
            name = _command(tex, i).group(0)
            return name, i + len(name)
        return tex[i], i + 1
    depth = 0
    for j in range(i, len(tex)):
        depth += {"{": 1, "}": -1}.get(tex[j], 0)
        if depth == 0:
            return tex[i + 1:j], j + 1
    raise ValueError(f"unbalanced braces in {tex!r}")


def _script(body: str, table: dict, mark: str) -> str:
    """A sub- or superscript in Unicode where every character has one, else ``mark(body)``."""
    if all(ord(c) in table for c in body):
        return body.translate(table)
    return f"{mark}{body}" if len(body) == 1 else f"{mark}({body})"


def tex_to_text(tex: str) -> str:
    """Inline LaTeX as Unicode text: ``\\hat{v}_t`` -> ``v̂ₜ``, ``\\sqrt{x}`` -> ``√(x)``.

    Covers the commands the book's questions use; an unknown command raises ``ValueError``
    (a test converts every question, so a new command is caught)."""
    out, i = [], 0
    while i < len(tex):
        c = tex[i]
        if c == "\\":
            name = _command(tex, i).group(1)
            i += 1 + len(name)
            if name in _SYMBOLS:
                out.append(_SYMBOLS[name])
            elif name in ("frac", "tfrac", "dfrac"):
                num, i = _group(tex, i)
                den, i = _group(tex, i)
                num, den = tex_to_text(num), tex_to_text(den)
                wrap = (lambda x: x if re.fullmatch(r"[\w.√ₜ₀-₉⁰-⁹]+", x) else f"({x})")
                out.append(f"{wrap(num)}/{wrap(den)}")
            elif name == "sqrt":
                arg, i = _group(tex, i)
                arg = tex_to_text(arg)
                out.append(f"√{arg}" if len(arg) == 1 else f"√({arg})")
            elif name in _ACCENTS:
                arg, i = _group(tex, i)
                arg = tex_to_text(arg)
                out.append(arg + _ACCENTS[name] if len(arg) == 1 else f"{name}({arg})")
            elif name in _FONTS:
                arg, i = _group(tex, i)
                out.append(tex_to_text(arg) if not name.startswith("text") else arg)
            else:
                raise ValueError(f"Invalid LaTeX command for text: \\{name} in {tex!r}")
        elif c in "_^":
            arg, i = _group(tex, i + 1)
            arg = tex_to_text(arg)
            out.append(_script(arg, _SUB if c == "_" else _SUP, c))
        elif c in "{}":
            i += 1
        else:
            out.append(c)
            i += 1
    return re.sub(r" {2,}", " ", "".join(out))


def to_text(markdown: str) -> str:
    """Markdown (with ``$...$`` maths) as plain text for a terminal: maths in Unicode, emphasis
    and code marks removed, links as their text."""
    def maths(match: re.Match) -> str:
        return tex_to_text(match.group(1) or match.group(2))

    text = re.sub(r"\$\$(.+?)\$\$|\$(.+?)\$", maths, markdown, flags=re.S)
    text = re.sub(r"!\[([^\]]*)\]\(data:[^)]*\)", r"[\1]", text)  # a figure: its description
    text = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", text)       # [text](target)
    text = re.sub(r"\*\*(.+?)\*\*|__(.+?)__", lambda m: m.group(1) or m.group(2), text)
    text = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"\1", text)
    return text.replace("`", "")


def _show(markdown: str) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:  # pragma: no cover - optedu does not require IPython
        print(to_text(markdown))
        return
    # Markdown renders only in a notebook's kernel; a terminal IPython (or any other shell)
    # would print the object's repr, so it gets plain text
    if type(get_ipython()).__name__ == "ZMQInteractiveShell":
        display(Markdown(markdown))
    else:
        print(to_text(markdown))


# --- A mock interview in a terminal ----------------------------------------------------------

def _points_said(reply: str) -> tuple[int, ...] | None:
    try:
        return tuple(int(word) for word in reply.replace(",", " ").split())
    except ValueError:
        return None


def _clock_prompt(seconds: float, minutes: int) -> str:
    """The prompt of each line of a terminal answer: the clock so far against the minutes
    allowed, flagged once they are spent."""
    over = " OVER TIME" if seconds > 60 * minutes else ""
    return f"[{_duration(seconds)} of {minutes} min{over}] > "


def main(argv: Sequence[str] | None = None, read: Callable[[str], str] = input) -> int:
    """``python -m optedu.practice.quiz``: a mock interview in the terminal. Each question's
    clock runs while you type your answer (end it with an empty line; where the interviewer
    pushes back, type more, or an empty line goes on); then the model answer,
    its key points numbered; you give the numbers of the points you made; at the end, the
    marking sheet (and, with ``--record``, your marks kept for the next practice)."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m optedu.practice.quiz",
        description="A mock interview in the terminal, with a clock, marks and a record.")
    parser.add_argument("--minutes", type=int, default=30, help="length of the interview")
    parser.add_argument("--theme", help="one theme (a name or words of it: 'distributed')")
    parser.add_argument("--seed", type=int, help="the same seed deals the same interview")
    parser.add_argument("--details", action="store_true", help="include torch details")
    parser.add_argument("--record", help="a practice record to read and extend (JSON)")
    parser.add_argument("--sheet", help="write the marking sheet to this Markdown file")
    args = parser.parse_args(argv)
    mock = Quiz.mock(args.minutes, args.theme, args.seed, args.details, record=args.record)
    mock._more = "type more, or an empty line to go on"
    print(to_text(mock.plan()) + " Type your answer (or notes of what you say aloud); "
          "an empty line stops the clock.")
    try:
        for _ in mock.turns:
            q = mock.ask()
            lines = []
            minutes = mock.turns[mock._at].minutes
            while line := read(_clock_prompt(mock.elapsed() or 0.0, minutes)):
                lines.append(line)
            mock.answer("\n".join(lines))
            if mock.pressing:  # the interviewer pushed back: more, or an empty line
                lines = []
                while line := read(_clock_prompt(mock.elapsed() or 0.0, minutes)):
                    lines.append(line)
                mock.answer("\n".join(lines))
            mock.reveal()
            while True:
                said = _points_said(read(f"Points you made (1 to {len(q.points)}, "
                                         "e.g. 1 3; Enter for none): "))
                try:
                    if said is not None:
                        mock.mark(*said)
                        break
                except ValueError as error:
                    print(error)
                    continue
                print("Numbers only, please.")
    except (EOFError, KeyboardInterrupt):
        print("\nStopped: the sheet marks what was answered.")
    mock.sheet(args.sheet)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
