"""Reader copies of the chapters for JupyterLab (``make lab``): the website's text, still runnable.

JupyterLab renders a Markdown cell as CommonMark, so the MyST of the chapters (glued numbers,
cross-references, citations, directives) would show as raw source. This writes a copy of every
``book/*.ipynb``, and of the question bank and the claims page (``book/questions.md``,
``book/claims.md``, a Markdown cell per section), into ``_reader/`` (beside ``book/``, at the
same depth, so paths the chapters resolve from the working folder still work) in which each
Markdown cell is plain Markdown and the HTML JupyterLab's sanitizer keeps:

- ``{glue:text}`key``` (also ``key:format``, ``{glue}``, ``{glue:md}`` and ``other.ipynb::key``)
  becomes the value stored in the notebook's outputs;
- ``{numref}``, ``{eq}``, ``{prf:ref}`` become "Fig. 7.1", "Eq. 7.1", "Proposition 7.1",
  numbered per chapter in document order as the website's Sphinx (numfig) numbers them;
  ``{ref}`` and ``{doc}`` become the target's title (a link when it is another chapter);
  links to a chapter or page, written so or plain (``[text](adam.ipynb)``), go to its copy;
- ``{cite:p}`` / ``{cite:t}`` become "[Kingma and Ba, 2015]" / "Kingma and Ba [2015]" from
  ``book/references.bib``, and each copy ends with the references it cites;
- labels ``(x)=`` are dropped; labelled equations get their number as ``\\tag``;
- admonitions become framed blocks, dropdown admonitions and solutions closed
  ``<details>`` (interview questions keep their level), exercises and ``{prf:*}`` framed blocks
  titled "Exercise 7.1", "Proposition 7.1 (title)"; figure captions follow their figure cell.

Code cells keep their source and stored outputs. Cells the website hides (``remove-input``,
``hide-input``, ...) are collapsed (``metadata.jupyter.source_hidden`` / ``outputs_hidden``).
The values the prose shows are kept in the copy's metadata (``optedu_reader.shown``); a
collapsed cell of two lines after the title's, before any code, hands them to
``optedu.instruments.display.reader_values`` by naming the copy: when a re-run glues another
value, ``glue`` says so under the cell (the prose is not updated).

The copies are named in reading order, ``07_adam.ipynb`` for chapter 7 (the pages of unnumbered
parts count on after the chapters: ``52_questions.ipynb``), so that JupyterLab's alphabetical
list is the table of contents; ``00_index.ipynb`` lists the parts and links every copy. A run
that writes every copy removes the copies in ``_reader/`` under other names (an earlier
version's un-numbered names, a chapter that moved); other notebooks there stay.

    python tools/reader.py                 # every copy and the index, when a source is newer
    python tools/reader.py --force         # every copy and the index
    python tools/reader.py book/adam.ipynb --out /tmp/copies     # writes 07_adam.ipynb
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
import html
import json
import pathlib
import re
import sys

from optedu.instruments.display import pasted

ROOT = pathlib.Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
OUT = ROOT / "_reader"

ADMONITIONS = {  # type: (frame colour, default title)
    "admonition": ("#5c7080", ""), "note": ("#2f6fb0", "Note"), "tip": ("#2e8540", "Tip"),
    "hint": ("#2e8540", "Hint"), "important": ("#2e8540", "Important"),
    "seealso": ("#2f6fb0", "See also"), "attention": ("#c77c02", "Attention"),
    "caution": ("#c77c02", "Caution"), "warning": ("#c77c02", "Warning"),
    "danger": ("#b3261e", "Danger"), "error": ("#b3261e", "Error"),
}
LEVELS = {"q-warmup": "warm-up", "q-standard": "standard", "q-deep": "deep"}
HIDE_SOURCE = {"remove-input", "hide-input", "remove-cell", "hide-cell"}
HIDE_OUTPUTS = {"remove-output", "hide-output", "remove-cell", "hide-cell"}
# The pages (book/*.md) with reader copies. The root page and the bibliography have none: the
# index notebook takes the root's place, and each copy ends with the works it cites.
PAGES = ("questions", "claims")
INDEX = "00_index.ipynb"
#: notebook metadata of a copy: {"source": "book/adam.ipynb", "shown": {glue key: text/plain}}
MARK = "optedu_reader"


def kernel() -> dict:
    """The kernel metadata of every copy. A notebook without a kernel makes JupyterLab ask for
    one; when the kernel connects, JupyterLab writes its name and what it reports of its
    language into the notebook, and marks the notebook unsaved if either differs. So the copy
    carries them as ipykernel in this environment says them (a chapter's own metadata says
    "Python 3", and the Python that ran it), and a reader who only reads is not asked to save.
    """
    try:  # imported here: 0.3 s that only writing copies needs
        from ipykernel.ipkernel import IPythonKernel
        language = copy.deepcopy(IPythonKernel.language_info)
    except ImportError:  # no Jupyter here: JupyterLab will fill it in
        language = {"name": "python"}
    return {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                           "name": "python3"},
            "language_info": language}


FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|:{3,}|~{3,})(?P<info>.*)$")
DIRECTIVE = re.compile(r"^\{(?P<name>[\w:-]+)\}\s*(?P<arg>.*)$")
ROLE = re.compile(r"\{(?P<name>[a-z][\w:-]*)\}`(?P<content>[^`]+)`")
LABEL = re.compile(r"^\((?P<label>[^()\s]+)\)=\s*$")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
EQUATION = re.compile(r"\$\$(?P<body>.+?)\$\$[ \t]*\((?P<label>[^()\s]+)\)[ \t]*$",
                      re.S | re.M)
EXPLICIT = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.S)
# A Markdown link to a page of the book, [text](adam.ipynb#anchor) or with <...>; code spans are
# matched first so that a link written inside one stays as it is.
LINK = re.compile(r"(?P<code>`+)(?:.*?)(?P=code)|\[(?P<text>[^\[\]]*)\]\((?P<lt><)?"
                  r"(?P<stem>[\w-]+)\.(?:ipynb|md)(?P<anchor>#[^()<>\s]*)?(?(lt)>)\)")


# -- blocks: a Markdown text as plain text and (nested) directives ---------------------------

@dataclasses.dataclass
class Directive:
    name: str
    arg: str
    options: dict
    body: str


def parse(text: str) -> list[str | Directive]:
    """``text`` split into plain stretches and directives (``` or ::: fences with ``{name}``).

    Plain code fences are kept verbatim inside the plain stretches; a directive's body is
    parsed again where it is used. An unclosed fence runs to the end, as in MyST.
    """
    lines = text.split("\n")
    out: list[str | Directive] = []
    plain: list[str] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            plain.append(lines[i])
            i += 1
            continue
        fence, info = m["fence"], m["info"].strip()
        end = i + 1
        while end < len(lines):
            close = FENCE.match(lines[end])
            if (close and close["fence"][0] == fence[0] and len(close["fence"]) >= len(fence)
                    and not close["info"].strip()):
                break
            end += 1
        d = DIRECTIVE.match(info)
        if not d:  # a code fence: verbatim
            plain.extend(lines[i:end + 1])
            i = end + 1
            continue
        body = lines[i + 1:end]
        options: dict[str, str] = {}
        if body and body[0].strip() == "---":  # YAML options block
            close = next((k for k in range(1, len(body)) if body[k].strip() == "---"), None)
            if close is not None:
                for line in body[1:close]:
                    key, _, value = line.partition(":")
                    options[key.strip()] = value.strip()
                body = body[close + 1:]
        while body and re.match(r"^:[\w-]+:", body[0]):
            key, _, value = body[0][1:].partition(":")
            options[key] = value.strip()
            body = body[1:]
        if plain:
            out.append("\n".join(plain))
            plain = []
        out.append(Directive(d["name"], d["arg"].strip(), options, "\n".join(body).strip("\n")))
        i = end + 1
    if plain:
        out.append("\n".join(plain))
    return out


# -- the book: numbers, titles and values every reference needs ------------------------------

@dataclasses.dataclass
class Target:
    doc: str          # notebook (or page) stem
    kind: str         # section, figure, equation, exercise, prf:<type>
    text: str         # what a reference shows: "Fig. 7.1", a title, ...
    title: str = ""   # a figure's caption, a directive's title
    section: str = ""  # a named admonition's heading, where a link to it goes


class Book:
    """Every chapter of ``book``: chapter numbers (``_toc.yml``), labels, glued values, citations,
    and the names of the reader copies."""

    def __init__(self, book: pathlib.Path = BOOK, toc: pathlib.Path | None = None,
                 bib: pathlib.Path | None = None):
        self.folder = pathlib.Path(book)
        self.notebooks = {p.stem: json.loads(p.read_text()) for p in
                          sorted(self.folder.glob("*.ipynb"))}
        # A page (book/*.md) as a notebook of Markdown cells, one per section.
        self.pages = {p.stem: _page_notebook(p.read_text()) for p in
                      sorted(self.folder.glob("*.md"))}
        toc = toc if toc is not None else self.folder.parent / "_toc.yml"
        self.order, self.chapters, self.parts = _toc(toc)
        self.title = _title(self.folder.parent / "_config.yml")
        self.names = copy_names(self.order, self.chapters, _copied(self.folder))
        self.copies = list(self.names)  # the docs with reader copies, in reading order
        bib = bib if bib is not None else self.folder / "references.bib"
        self.bib = _bibliography(bib) if pathlib.Path(bib).exists() else {}
        self.labels: dict[str, Target] = {}
        self.titles: dict[str, str] = {}
        self.figures: dict[str, dict[int, str]] = {}  # doc -> cell index -> "Fig. 7.1"
        # Sphinx numbers per chapter in numbered parts ("Fig. 7.1"); the pages of unnumbered
        # parts share one count, in the order of the table of contents ("Fig. 25").
        unnumbered: dict[str, int] = {}
        for stem in [*self.order, *sorted(set(self.notebooks) | set(self.pages))]:
            if stem in self.titles:
                continue
            counts = {} if stem in self.chapters else unnumbered
            if stem in self.notebooks:
                self._index(stem, self.notebooks[stem]["cells"], counts)
            elif stem in self.pages:
                self._index(stem, self.pages[stem]["cells"], counts)
            self.titles.setdefault(stem, stem)
        self._glued: dict[str, dict[str, dict]] = {}
        self.missing: dict[str, list[str]] = {}  # doc -> glue keys its prose has no value for

    def number(self, doc: str, n: int) -> str:
        chapter = self.chapters.get(doc)
        return f"{chapter}.{n}" if chapter is not None else str(n)

    def filename(self, doc: str) -> str:
        """The name of ``doc``'s reader copy: ``07_adam.ipynb``."""
        return self.names[doc]

    def source(self, doc: str) -> dict:
        """``doc`` as a notebook: a chapter, or a page's sections as Markdown cells."""
        return self.notebooks[doc] if doc in self.notebooks else self.pages[doc]

    def _index(self, doc: str, cells: list[dict], counts: dict[str, int]) -> None:
        """Labels of ``doc`` numbered in document order (``counts``: the numbers so far)."""

        def count(kind: str) -> str:
            counts[kind] = counts.get(kind, 0) + 1
            return self.number(doc, counts[kind])

        section = ""  # the heading the text walked so far sits under

        def walk(blocks: list) -> None:
            nonlocal section
            for block in blocks:
                if isinstance(block, Directive):
                    kind = block.name
                    if "name" in block.options:  # e.g. a question of the bank, for {ref}
                        title = _plain_title(block.arg)
                        self.labels[block.options["name"]] = Target(
                            doc, kind, title or block.options["name"], title, section)
                    if kind.startswith("prf:") and kind != "prf:proof":
                        n = count(kind)
                        name = kind[4:].capitalize()
                        if "label" in block.options:
                            self.labels[block.options["label"]] = Target(
                                doc, kind, f"{name} {n}", block.arg)
                    elif kind == "exercise":
                        n = count(kind)
                        if "label" in block.options:
                            self.labels[block.options["label"]] = Target(
                                doc, kind, f"Exercise {n}", block.arg)
                    elif kind == "math" and "label" in block.options:
                        n = count("equation")
                        self.labels[block.options["label"]] = Target(doc, "equation", n)
                    walk(parse(block.body))
                    continue
                lines = block.split("\n")
                for k, line in enumerate(lines):
                    m = LABEL.match(line)
                    if m:
                        following = next((x for x in lines[k + 1:] if x.strip()), "")
                        h = HEADING.match(following)
                        title = _plain_title(h[2]) if h else m["label"]
                        self.labels[m["label"]] = Target(doc, "section", title, title)
                    h = HEADING.match(line)
                    if h:
                        section = _plain_title(h[2])
                    if h and len(h[1]) == 1 and doc not in self.titles:
                        self.titles[doc] = _plain_title(h[2])
                for m in EQUATION.finditer(block):
                    self.labels[m["label"]] = Target(doc, "equation", count("equation"))

        for index, cell in enumerate(cells):
            if cell["cell_type"] == "markdown":
                walk(parse(_source(cell)))
            elif cell["cell_type"] == "code":
                figure = cell.get("metadata", {}).get("mystnb", {}).get("figure")
                if figure and figure.get("caption"):
                    # Sphinx numbers only figures with an id: a named one. Unnamed, the
                    # caption shows without a number (e.g. a figure folded away).
                    shown = ""
                    if figure.get("name"):
                        shown = f"Fig. {count('figure')}"
                        self.labels[figure["name"]] = Target(doc, "figure", shown,
                                                             figure["caption"])
                    self.figures.setdefault(doc, {})[index] = shown

    def glued(self, doc: str) -> dict[str, dict]:
        """Key -> the MIME bundle glued under it in ``doc``'s stored outputs (the last one)."""
        if doc not in self._glued:
            values: dict[str, dict] = {}
            for cell in self.notebooks.get(doc, {"cells": []})["cells"]:
                for output in cell.get("outputs", []):
                    scrap = output.get("metadata", {}).get("scrapbook")
                    if scrap and "data" in output:
                        prefix = scrap.get("mime_prefix", "")
                        values[scrap["name"]] = {k[len(prefix):]: v for k, v in
                                                 output["data"].items() if k.startswith(prefix)}
            self._glued[doc] = values
        return self._glued[doc]


def _source(cell: dict) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def _heading_id(title: str) -> str:
    """The id JupyterLab gives a heading: its rendered text, spaces as hyphens."""
    text = re.sub(r"`([^`]*)`", r"\1", title)
    text = re.sub(r"(\*\*|__|\*|_)(\S(?:.*?\S)?)\1", r"\2", text)
    return text.replace(" ", "-")


def _plain_title(title: str) -> str:
    return re.sub(ROLE, lambda m: m["content"], title).strip()


def _toc(toc: pathlib.Path) -> tuple[list[str], dict[str, int], list[tuple[str, list[str]]]]:
    """The stems in reading order; the chapter numbers: the chapters of numbered parts, counted
    on across parts (the root page and unnumbered parts have none); the parts as (caption,
    stems)."""
    import yaml

    if not pathlib.Path(toc).exists():
        return [], {}, []
    data = yaml.safe_load(pathlib.Path(toc).read_text())
    order = [pathlib.Path(data["root"]).stem] if "root" in data else []
    numbers: dict[str, int] = {}
    parts = []
    for part in data.get("parts", []):
        stems = [pathlib.Path(chapter["file"]).stem for chapter in part.get("chapters", [])]
        for stem in stems:
            order.append(stem)
            if part.get("numbered"):
                numbers[stem] = len(numbers) + 1
        parts.append((part.get("caption", ""), stems))
    return order, numbers, parts


def _title(config: pathlib.Path) -> str:
    """The book's title, from ``_config.yml`` ("" without one)."""
    import yaml

    if not pathlib.Path(config).exists():
        return ""
    return str((yaml.safe_load(pathlib.Path(config).read_text()) or {}).get("title", ""))


def _copied(book: pathlib.Path) -> set[str]:
    """The docs of ``book`` that get reader copies: every notebook, and the :data:`PAGES`."""
    return ({p.stem for p in book.glob("*.ipynb")}
            | {p for p in PAGES if (book / f"{p}.md").exists()})


def copy_names(order: list[str], chapters: dict[str, int], docs: set[str]) -> dict[str, str]:
    """Doc -> the name of its reader copy, in reading order: ``07_adam.ipynb``.

    A chapter's name starts with its number in the book; the pages of unnumbered parts count on
    after the last chapter, in reading order (in this book those parts come last, so that the
    alphabetical order of the names is the reading order). Numbers are zero-padded to one width
    (JupyterLab sorts names as text); a notebook outside the table of contents keeps its name.
    """
    listed = [d for d in dict.fromkeys(order) if d in docs]
    numbers, last = {}, max(chapters.values(), default=0)
    for doc in listed:
        if doc not in chapters:
            last += 1
        numbers[doc] = chapters.get(doc, last)
    width = max(2, len(str(max(numbers.values(), default=0))))
    names = {doc: f"{n:0{width}d}_{doc}.ipynb" for doc, n in numbers.items()}
    names.update({doc: f"{doc}.ipynb" for doc in sorted(docs - set(names))})
    return names


def _page_notebook(text: str) -> dict:
    """A MyST page as a notebook: a Markdown cell per section (headings of level 1 to 3, each
    with the labels just above it), so that JupyterLab's table of contents and folding work."""
    cells: list[list[str]] = [[]]
    fence = None
    for line in text.split("\n"):
        m = FENCE.match(line)
        if fence is None and m:
            fence = m["fence"]
        elif fence is not None:
            if m and m["fence"][0] == fence[0] and len(m["fence"]) >= len(fence) \
                    and not m["info"].strip():
                fence = None
        else:
            h = HEADING.match(line)
            if h and len(h[1]) <= 3:
                head = cells[-1]
                k = len(head)
                while k and (not head[k - 1].strip() or LABEL.match(head[k - 1])):
                    k -= 1
                cells[-1], new = head[:k], [x for x in head[k:] if x.strip()]
                cells.append(new)
        cells[-1].append(line)
    sources = ["\n".join(c).strip("\n") for c in cells]
    return {"cells": [_markdown_cell(s) for s in sources if s.strip()],
            "metadata": kernel(), "nbformat": 4, "nbformat_minor": 5}


def _bibliography(path: pathlib.Path) -> dict[str, tuple[str, str, str]]:
    """Key -> (authors, year, full reference) as sphinxcontrib-bibtex's author_year style."""
    import codecs

    import latexcodec  # noqa: F401  (registers the "ulatex" codec; pybtex's own is far slower)
    from pybtex.database import parse_file

    def latex(s: str) -> str:
        return codecs.decode(s, "ulatex").replace("{", "").replace("}", "")

    entries = {}
    for key, entry in parse_file(str(path)).entries.items():
        people = entry.persons.get("author") or entry.persons.get("editor") or []
        last = [latex(" ".join(p.prelast_names + p.last_names)) for p in people]
        # As the website: "and others" counts as a second author ("Paszke and others").
        if not last:
            authors = latex(entry.fields.get("organization", key))
        elif len(last) <= 2:
            authors = " and ".join(last)
        else:
            authors = f"{last[0]} et al."
        year = entry.fields.get("year", "n.d.")
        names = [latex(" ".join(p.first_names + p.middle_names + p.prelast_names
                                + p.last_names)) for p in people]
        full_names = (", ".join(names[:-1]) + " and " + names[-1]) if len(names) > 1 else \
            "".join(names) or authors
        title = latex(entry.fields.get("title", ""))
        where = latex(entry.fields.get("journal", entry.fields.get("booktitle", "")))
        url = entry.fields.get("url", "")
        full = f"{full_names}. {title}." + (f" *{where}*," if where else "") + f" {year}."
        if url:
            full += f" <{url}>"
        entries[key] = (authors, year, full)
    return entries


# -- Markdown: one cell of MyST to CommonMark + HTML -----------------------------------------

class Converter:
    """Converts the Markdown cells of one notebook ``doc`` of ``book``."""

    def __init__(self, book: Book, doc: str):
        self.book, self.doc = book, doc
        self.cited: list[str] = []
        self.missing: list[str] = []  # glue keys with no stored value
        self.log: list[tuple[str, str, str]] = []  # (role, content, what it became)
        self.shown: dict[str, str] = {}  # glue key -> the text/plain the prose was written from

    # roles --------------------------------------------------------------------------------
    def roles(self, text: str) -> str:
        """Every role of ``text`` replaced, outside code spans and maths."""
        return ROLE.sub(self._role, text)

    def links(self, text: str) -> str:
        """Markdown links to the book's pages pointed at their reader copies (text alone for a
        page without one); links inside code spans are left as they are."""
        def relink(m: re.Match) -> str:
            if m["code"]:
                return m[0]
            return self.link(m["text"], m["stem"], anchor=m["anchor"] or "", always=True)

        return LINK.sub(relink, text)

    def _role(self, m: re.Match) -> str:
        shown = self._shown_role(m["name"], " ".join(m["content"].split()))
        self.log.append((m["name"], m["content"], shown))
        return shown

    def _shown_role(self, name: str, content: str) -> str:
        if name.startswith("glue"):
            return self.glue(name, content)
        if name in ("numref", "eq", "prf:ref", "ref", "doc"):
            return self.reference(name, content)
        if name in ("cite:p", "cite:t", "cite"):
            return self.cite(name, content)
        if name == "math":
            return f"${content}$"
        if name in ("term", "abbr", "sub", "sup"):
            return content
        raise ValueError(f"{self.doc}: unknown role {{{name}}}`{content}`")

    def glue(self, name: str, content: str) -> str:
        doc, key = self.doc, content
        if "::" in key:
            doc, key = key.split("::", 1)
            doc = pathlib.Path(doc).stem
        key, _, spec = key.partition(":")
        bundle = self.book.glued(doc).get(key)
        if bundle is None:  # e.g. a chapter being edited, whose outputs are not yet stored
            self.missing.append(content)
            return f"**[{key}: not in the stored outputs]**"
        if doc == self.doc and "text/plain" in bundle:
            self.shown[key] = bundle["text/plain"]
        if name == "glue:md" and "text/markdown" in bundle:
            return bundle["text/markdown"].strip()
        return pasted(bundle.get("text/plain", ""), spec)

    def reference(self, name: str, content: str) -> str:
        m = EXPLICIT.match(content)
        text, label = (m["text"], m["target"]) if m else (None, content)
        if name == "doc":
            stem = pathlib.Path(label).stem
            return self.link(text or self.book.titles.get(stem, stem), stem)
        target = self.book.labels.get(label)
        if target is None:
            raise ValueError(f"{self.doc}: no target for {{{name}}}`{content}`")
        if name == "numref" and text:
            shown = text.replace("%s", target.text.split()[-1]).replace("{number}",
                                                                          target.text.split()[-1])
        elif name == "eq":
            shown = f"Eq. {target.text}"
        elif name == "ref" and target.kind != "section":
            shown = text or (target.title or target.text)
        else:
            shown = text or target.text
        if name == "ref" and target.kind == "section":
            return self.link(shown, target.doc, target.title)
        if name == "ref" and target.section:  # a named admonition: its section's heading
            return self.link(shown, target.doc, target.section)
        return self.link(shown, target.doc) if target.doc != self.doc else shown

    def link(self, text: str, doc: str, heading: str | None = None, anchor: str = "",
             always: bool = False) -> str:
        """``text`` linked to ``doc``'s reader copy (at ``heading``, or a given ``anchor``);
        ``text`` alone where ``doc`` has no copy, or is this one and no place is given
        (``always``: link anyway)."""
        anchor = "#" + _heading_id(heading) if heading else anchor
        if doc == self.doc and (anchor or not always):
            return f"[{text}](<{anchor}>)" if anchor else text
        if doc in self.book.names:
            return f"[{text}](<{self.book.filename(doc)}{anchor}>)"
        return text

    def cite(self, name: str, content: str) -> str:
        keys = [k.strip() for k in content.split(",")]
        for key in keys:
            if key not in self.book.bib:
                raise ValueError(f"{self.doc}: {key!r} is not in references.bib")
            if key not in self.cited:
                self.cited.append(key)
        if name == "cite:t":
            return ", ".join(f"{self.book.bib[k][0]} [{self.book.bib[k][1]}]" for k in keys)
        return "[" + ", ".join(f"{self.book.bib[k][0]}, {self.book.bib[k][1]}" for k in keys) + "]"

    # blocks -------------------------------------------------------------------------------
    def markdown(self, text: str) -> str:
        """One Markdown cell's text (or a directive's body) as CommonMark + HTML."""
        parts = []
        for block in parse(text):
            parts.append(self.directive(block) if isinstance(block, Directive)
                         else self.plain(block))
        return "\n\n".join(p.strip("\n") for p in parts if p.strip())

    def plain(self, text: str) -> str:
        """Roles replaced and labels dropped, outside code fences (kept verbatim)."""
        text = EQUATION.sub(self._tag, text)
        out, prose, code = [], [], None
        for line in text.split("\n"):
            fence = FENCE.match(line)
            if code is None and fence:
                out.append(self.roles(self.links("\n".join(prose))))
                prose, code = [], fence["fence"]
                out.append(line)
            elif code is not None:
                if fence and fence["fence"][0] == code[0] and len(fence["fence"]) >= len(code):
                    code = None
                out.append(line)
            elif not LABEL.match(line):
                prose.append(line)
        out.append(self.roles(self.links("\n".join(prose))))
        return "\n".join(x for x in out if x)

    def _tag(self, m: re.Match) -> str:
        target = self.book.labels[m["label"]]
        return f"$${m['body'].rstrip()} \\tag{{{target.text}}}\n$$"

    def directive(self, d: Directive) -> str:
        classes = d.options.get("class", "").split()
        if d.name in ADMONITIONS:
            colour, default = ADMONITIONS[d.name]
            title = d.arg or default
            level = next((LEVELS[c] for c in classes if c in LEVELS), None)
            if "dropdown" in classes:
                return self.details(title, self.markdown(d.body), level)
            return self.frame(title, self.markdown(d.body), colour)
        if d.name == "exercise":
            target = self._labelled(d, "Exercise")
            title = target + (f" ({d.arg})" if d.arg else "")
            return self.frame(title, self.markdown(d.body), "#2f6fb0")
        if d.name == "solution":
            return self.details(self.solution_title(d.arg), self.markdown(d.body))
        if d.name.startswith("prf:"):
            if d.name == "prf:proof":
                body = self.markdown(d.body)
                if not re.search(r"(\\square|\\blacksquare|∎|□)\$?\.?\s*$", body):
                    body += " ∎"
                return self.frame("Proof.", body, "#5c7080", italic=True)
            name = self._labelled(d, d.name[4:].capitalize())
            title = name + (f" ({d.arg})" if d.arg else "") + "."
            return self.frame(title, self.markdown(d.body), "#6a3d9a")
        if d.name == "math":
            body = d.body.strip()
            if "label" in d.options:
                body += f" \\tag{{{self.book.labels[d.options['label']].text}}}"
            return f"$$\n{body}\n$$"
        if d.name in ("solution-start", "solution-end"):
            raise ValueError(f"{self.doc}: {{{d.name}}} is handled per cell")
        raise ValueError(f"{self.doc}: unknown directive {{{d.name}}}")

    def _labelled(self, d: Directive, name: str) -> str:
        label = d.options.get("label")
        if label in self.book.labels:
            return self.book.labels[label].text
        return name

    def solution_title(self, label: str) -> str:
        target = self.book.labels.get(label.strip())
        return f"Solution to {target.text}" if target else "Solution"

    # HTML frames the sanitizer keeps: tags and inline styles, no classes of its own ----------
    def title_html(self, title: str) -> str:
        """A title's inline Markdown as HTML (inside HTML, Markdown is not parsed)."""
        title = self.roles(title)
        parts = re.split(r"(\$[^$]+\$|`[^`]+`)", title)
        out = []
        for part in parts:
            if part.startswith("$") and part.endswith("$") and len(part) > 1:
                out.append(part)  # MathJax typesets it in place
            elif part.startswith("`") and part.endswith("`") and len(part) > 1:
                out.append(f"<code>{html.escape(part[1:-1])}</code>")
            else:
                part = html.escape(part, quote=False)
                part = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", part)
                part = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<i>\1</i>", part)
                out.append(part)
        return "".join(out)

    def details(self, title: str, body: str, level: str | None = None) -> str:
        badge = (f' <span style="font-size: 0.8em; font-weight: normal; padding: 0 0.4em; '
                 f'border: 1px solid #999; border-radius: 0.6em">{level}</span>' if level else "")
        return (f'<details style="border: 1px solid #bbb; border-radius: 4px; '
                f'padding: 0.2em 0.8em; margin: 0.6em 0">\n'
                f'<summary style="cursor: pointer"><b>{self.title_html(title)}</b>{badge}'
                f"</summary>\n\n{body}\n\n</details>")

    def frame(self, title: str, body: str, colour: str, italic: bool = False) -> str:
        heading = self.title_html(title)
        heading = f"<i>{heading}</i>" if italic else f"<b>{heading}</b>"
        return (f'<div style="border-left: 4px solid {colour}; padding: 0.1em 0.8em; '
                f'margin: 0.6em 0; background: rgba(127, 127, 127, 0.06)">\n'
                f"<p>{heading}</p>\n\n{body}\n\n</div>")


# -- a notebook ------------------------------------------------------------------------------

def reader_notebook(book: Book, doc: str) -> dict:
    """The reader copy of ``book``'s notebook or page ``doc`` (a new nbformat dict)."""
    nb = copy.deepcopy(book.source(doc))
    conv = Converter(book, doc)
    cells = []
    solution: str | None = None  # the summary of the solution a span of cells belongs to
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "markdown":
            cell["source"], solution = _markdown(conv, _source(cell), solution,
                                                 nb["cells"][index + 1:])
            cells.append(cell)
            continue
        if cell["cell_type"] == "code":
            tags = set(cell.get("metadata", {}).get("tags", []))
            jupyter = {}
            if tags & HIDE_SOURCE or solution is not None:
                jupyter["source_hidden"] = True
            if tags & HIDE_OUTPUTS or solution is not None:
                jupyter["outputs_hidden"] = True
                # JupyterLab keeps the old name of the same flag in step, and adding it
                # on opening would mark the copy unsaved
                cell["metadata"]["collapsed"] = True
            if jupyter:
                cell["metadata"].setdefault("jupyter", {}).update(jupyter)
        cells.append(cell)
        figure = book.figures.get(doc, {}).get(index)
        if figure is not None:
            caption = conv.markdown(cell["metadata"]["mystnb"]["figure"]["caption"])
            cells.append(_markdown_cell(f"**{figure}.** {caption}" if figure else caption))
    if conv.cited:
        refs = "\n".join(f"- {conv.book.bib[k][2]}" for k in conv.cited)
        cells.append(_markdown_cell(f"## Works cited\n\n{refs}"))
    onward = path_text(book, doc)
    if onward:
        cells.append(_markdown_cell(onward))
    source = f"book/{doc}.ipynb" if doc in book.notebooks else f"book/{doc}.md"
    if any(cell["cell_type"] == "code" for cell in cells):
        values = _code_cell(
            f"# Reader copy of {source}, written by tools/reader.py: edits here are\n"
            f"# overwritten. The values its prose shows are in its metadata: glue()\n"
            f"# flags a re-run that computes another one.\n"
            f"from optedu.instruments.display import reader_values\n"
            f"reader_values({book.filename(doc)!r})")
        # The title's cell first (moving a Markdown cell changes no run: an install cell may
        # come before it), the values right after it, before any code: glue() knows them
        # when a cell glues.
        title = next((k for k, c in enumerate(cells) if c["cell_type"] == "markdown"), None)
        if title is not None and any(len(h[1]) == 1 for h in
                                     map(HEADING.match, _source(cells[title]).split("\n")) if h):
            cells.insert(0, cells.pop(title))
            cells.insert(1, values)
        else:
            cells.insert(0, values)
    nb["cells"] = cells
    nb["metadata"] = {**nb.get("metadata", {}), **kernel(),
                      MARK: {"source": source}}
    if any(cell["cell_type"] == "code" for cell in cells):
        nb["metadata"][MARK]["shown"] = dict(conv.shown)
    if (nb.get("nbformat"), nb.get("nbformat_minor", 0)) >= (4, 5):
        for k, cell in enumerate(nb["cells"]):  # the cells the copy adds need ids
            cell.setdefault("id", f"reader-{k}")
    book.missing[doc] = conv.missing
    return nb


@functools.cache
def _map_tool():
    """tools/map.py: the reading paths and reading times of the intro and the README."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("book_map",
                                                  pathlib.Path(__file__).with_name("map.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _reading_time(book: Book, book_map, doc: str) -> str:
    """``doc``'s reading time as the index and the website give it: '25 min', or what a
    reference page is."""
    cells = book.source(doc)["cells"]
    prose = "\n\n".join(_source(c) for c in cells if c["cell_type"] == "markdown")
    return book_map.REFERENCE.get(doc) or f"{book_map.minutes_of(prose)}{book_map.NBSP}min"


def path_text(book: Book, doc: str) -> str:
    """The copy's last cell where ``doc`` lies on reading paths (tools/map.py's, which the
    index and the website list): for each path, its name linking to it in the index, the
    copy's place on it, and links to the copies before and after it, the next with its
    reading time. "" for a doc on no path, and for a path whose chapters the book lacks."""
    book_map = _map_tool()
    blocks = []
    for stop in book_map.stops(doc):
        stems = {stem for heading, _, steps in book_map.PATHS if heading == stop.path
                 for _, chosen in steps for stem in chosen}
        if not stems <= set(book.names):
            continue
        step = f" ({stop.step})" if stop.step else ""
        lines = [f"**Reading path [{stop.path}](<{INDEX}#{_heading_id(stop.path)}>)**: "
                 f"chapter {stop.place} of {stop.length}{step}"]
        if stop.previous:
            lines.append(f"Previous: [{book.titles[stop.previous]}]"
                         f"(<{book.filename(stop.previous)}>)")
        if stop.next:
            lines.append(f"Next: [{book.titles[stop.next]}](<{book.filename(stop.next)}>) "
                         f"({_reading_time(book, book_map, stop.next)})")
        else:
            lines.append("The last chapter of this path.")
        blocks.append("  \n".join(lines))
    return "\n\n".join(blocks)


def index_notebook(book: Book) -> dict:
    """The index of the reader copies: the three reading paths (where the book has their
    chapters), then the book's parts, their chapters numbered, linked, with reading times."""
    book_map = _map_tool()

    def link(doc: str) -> str:
        return f"[{book.titles.get(doc, doc)}](<{book.filename(doc)}>)"

    def line(doc: str) -> str:
        return f"{link(doc)}, {_reading_time(book, book_map, doc)}"

    root = book.titles.get(book.order[0], "") if book.order else ""
    practice = [link(doc) for doc in PAGES if doc in book.names]
    text = [f"# {book.title or root or 'Reader copies'}",
            "The chapters in reading order, as on the website and runnable: open one and run it "
            "top to bottom (Run > Run All Cells). Edits here are overwritten; the sources are in "
            "`book/`."]
    if practice:
        text.append("To practise for interviews: " + " and ".join(practice) + ".")
    stems = {stem for _, _, steps in book_map.PATHS for _, chosen in steps for stem in chosen}
    if stems <= set(book.names):  # the book itself, not a part of it
        text.append("## Three ways in\n\n" + book_map.render_paths(
            level="###", target=book.filename).strip())
    listed = set()
    for caption, stems in book.parts:
        docs = [doc for doc in stems if doc in book.names]
        if docs:
            text.append(f"## {caption}\n\n" + "\n".join(
                f"{book.chapters[doc]}. {line(doc)}" if doc in book.chapters else f"- {line(doc)}"
                for doc in docs))
            listed.update(docs)
    others = [doc for doc in book.copies if doc not in listed]
    if others:
        text.append("## Outside the table of contents\n\n"
                    + "\n".join(f"- {line(doc)}" for doc in others))
    nb = {"cells": [_markdown_cell("\n\n".join(text))],
          "metadata": {**kernel(), MARK: {"source": "_toc.yml"}},
          "nbformat": 4, "nbformat_minor": 5}
    nb["cells"][0]["id"] = "reader-index"
    return nb


def _markdown(conv: Converter, text: str, solution: str | None, rest: list[dict]
              ) -> tuple[str, str | None]:
    """A Markdown cell converted, and the solution whose span of cells goes on past it.

    A solution that ``{solution-start}`` opens and ``{solution-end}`` closes cells later folds
    its Markdown into ``<details>`` in each cell; its code cells are folded by the caller.
    """
    out: list[str] = []
    start = 0 if solution is not None else None  # where this cell's part of the solution begins
    title = f"{solution} (continued)" if solution is not None else None
    for block in parse(text):
        if isinstance(block, Directive) and block.name == "solution-start":
            solution, start = conv.solution_title(block.arg), len(out)
            title = solution
        elif isinstance(block, Directive) and block.name == "solution-end":
            if start is not None and len(out) > start:
                out[start:] = [conv.details(title, "\n\n".join(out[start:]))]
            solution = start = None
        else:
            text = conv.directive(block) if isinstance(block, Directive) else conv.plain(block)
            if text.strip():
                out.append(text.strip("\n"))
    if solution is not None and start is not None and len(out) > start:
        span = []
        for cell in rest:
            if cell["cell_type"] == "markdown" and "{solution-end}" in _source(cell):
                break
            span.append(cell["cell_type"])
        more = "\n\n*Its code is in the folded cells below.*" if "code" in span else ""
        out[start:] = [conv.details(title, "\n\n".join(out[start:]) + more)]
    return "\n\n".join(out), solution


def _markdown_cell(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def _code_cell(text: str) -> dict:
    return {"cell_type": "code", "execution_count": None, "outputs": [], "source": text,
            "metadata": {"tags": ["remove-input"], "jupyter": {"source_hidden": True}}}


def _written_here(path: pathlib.Path) -> bool:
    """Whether the notebook at ``path`` is a reader copy: its metadata says so, or (a copy
    written before there was that metadata) its first cell says "# Reader copy of book/..."."""
    try:
        nb = json.loads(path.read_text())
        cells = nb.get("cells") or [{}]
        return MARK in nb.get("metadata", {}) or (
            cells[0].get("cell_type") == "code"
            and _source(cells[0]).startswith("# Reader copy of book/"))
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return False


def _out_of_date(sources: list[pathlib.Path], copies: list[pathlib.Path]) -> bool:
    if not all(c.exists() for c in copies):
        return True
    newest = max(p.stat().st_mtime for p in sources if p.exists())
    return newest > min(c.stat().st_mtime for c in copies)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", type=pathlib.Path,
                        help="chapters or pages to copy (default: every book/*.ipynb, the "
                             f"pages {', '.join(PAGES)} and the index {INDEX})")
    parser.add_argument("--book", type=pathlib.Path, default=BOOK)
    parser.add_argument("--out", type=pathlib.Path, default=OUT)
    parser.add_argument("--force", action="store_true", help="write even if up to date")
    args = parser.parse_args(argv)
    order, chapters, _ = _toc(args.book.parent / "_toc.yml")
    names = copy_names(order, chapters, _copied(args.book))
    stems = [p.stem for p in args.notebooks] or list(names)
    unknown = [s for s in stems if s not in names]
    if unknown:
        parser.error(f"no chapter or page with a reader copy: {', '.join(unknown)}")
    copies = [args.out / names[s] for s in stems]
    # A copy under a name this run does not write (the un-numbered names of earlier runs, a
    # chapter since moved) goes when every copy is written; other notebooks stay.
    stale = [] if args.notebooks else [
        p for p in sorted(args.out.glob("*.ipynb"))
        if p.name not in {*names.values(), INDEX} and _written_here(p)]
    # Any chapter can change another's numbers or titles: one newer source renews them all.
    sources = [*args.book.glob("*.ipynb"), *args.book.glob("*.md"), args.book / "references.bib",
               args.book.parent / "_toc.yml", args.book.parent / "_config.yml",
               pathlib.Path(__file__), ROOT / "optedu" / "instruments" / "display.py"]
    index = [] if args.notebooks else [args.out / INDEX]
    if not args.force and not stale and not _out_of_date(sources, copies + index):
        print(f"reader copies in {args.out} are up to date")
        return 0
    for path in stale:
        path.unlink()
        print(f"removed {path} (no longer a copy's name)")
    book = Book(args.book)
    args.out.mkdir(parents=True, exist_ok=True)
    for stem, path in zip(stems, copies):
        nb = reader_notebook(book, stem)
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        if book.missing[stem]:
            print(f"warning: {stem}: no stored value for {', '.join(book.missing[stem])} "
                  "(shown as such; run the chapter: make outputs)", file=sys.stderr)
    for path in index:
        path.write_text(json.dumps(index_notebook(book), indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {len(copies)} reader copies" + (f" and {INDEX}" if index else "")
          + f" to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
