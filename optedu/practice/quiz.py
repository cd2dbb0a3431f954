"""Interview practice: the questions at the end of the chapters, drawn by topic and level.

The chapters are the single source of the questions. Each ends with folded admonitions::

    :::{admonition} Q1. Why does Adam need bias correction?
    :class: dropdown q-warmup

    The answer, in MyST, with numbers glued from the chapter's cells ...
    :::

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
import json
import random
import re
from collections.abc import Iterable, Sequence
from importlib import resources
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
    questions = [Question(**row) for row in json.loads(bank.read_text(encoding="utf-8"))]
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
        _show(f"**{q.chapter_title} · {q.level} · Q{q.number}.** {_title_text(q)}")
        return q

    def reveal(self) -> str:
        """Show (and return) the answer to the current question, numbers filled in."""
        if self.current is None:
            raise RuntimeError("no question asked yet: call ask() first")
        text = to_markdown(self.current)
        _show(text)
        return text


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
    "odot": "⊙", "to": "→", "leftarrow": "←", "rightarrow": "→", "top": "ᵀ", "star": "*",
    "dots": "…", "ldots": "…", "cdots": "⋯", "langle": "⟨", "rangle": "⟩", "|": "‖",
    "propto": "∝", "in": "∈", "partial": "∂", "ell": "ℓ", "lVert": "‖", "rVert": "‖",
    "lvert": "|", "rvert": "|",
    ",": " ", ";": " ", "!": "", " ": " ", "quad": "  ", "{": "{", "}": "}", "%": "%",
    "max": "max", "min": "min", "ln": "ln", "log": "log", "exp": "exp", "cos": "cos",
    "sin": "sin", "arg": "arg", "sign": "sign",
    "left": "", "right": "", "big": "", "Big": "", "bigl": "", "bigr": "", "Bigl": "",
    "Bigr": "",
}
_ACCENTS = {"hat": "\u0302", "bar": "\u0304", "tilde": "\u0303", "vec": "\u20d7",
            "dot": "\u0307"}
_FONTS = ("text", "mathrm", "operatorname", "mathbf", "mathbb", "mathcal", "boldsymbol",
          "textrm", "mathit", "textit", "textbf")
_SUP = str.maketrans("0123456789+-=()nTtki", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿᵀᵗᵏⁱ")
_SUB = str.maketrans("0123456789+-=()aeiklmnoprstx", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑᵢₖₗₘₙₒₚᵣₛₜₓ")


def _group(tex: str, i: int) -> tuple[str, int]:
    """The argument starting at ``tex[i]`` (a braced group or one character) and the index
    after it."""
    while i < len(tex) and tex[i] == " ":
        i += 1
    if i >= len(tex):
        return "", i
    if tex[i] != "{":
        if tex[i] == "\\":
            name = re.match(r"\\([A-Za-z]+|.)", tex[i:]).group(0)
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
            name = re.match(r"\\([A-Za-z]+|.)", tex[i:]).group(1)
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
