"""Write the page "Claims in circulation, tested" (book/claims.md) from book/claims.yaml.

book/claims.yaml holds every claim of the four source documents that a chapter tests: which
document makes it, the claim in our words, the verdict, what is true (MyST, numbers glued from
the chapter) and the label of the run that decides it. The page's own prose is kept down to the
MARKER line; below it this tool writes a count of verdicts per source, then one folded entry per
claim, grouped by chapter in the order of _toc.yml, each chapter under the label
``claims-<chapter>`` that the chapter links to.

    python tools/claims.py          # rewrite book/claims.md
    python tools/claims.py --check  # exit 1 if it is out of date or the data is invalid
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "book" / "claims.md"
DATA = ROOT / "book" / "claims.yaml"
MARKER = "<!-- Generated below by tools/claims.py from book/claims.yaml: do not edit. -->"

SOURCES = ("the PyTorch interview page", "the deep-learning interview page",
           "the long lesson", "the tutorial")
VERDICTS = ("true", "true, with a caveat", "half true", "false", "not decided here")
FIELDS = {"source", "claim", "verdict", "truth", "run"}
LABEL = re.compile(r"^\(([A-Za-z0-9_\-]+)\)=\s*$", re.M)
GLUE = re.compile(r"\{glue(?::\w+)?\}`([A-Za-z0-9_\-]+)\.ipynb::([A-Za-z0-9_\-]+)")
# MyST-NB reads a trailing ":spec" off a text role before the "path::" prefix, so a text role
# that glues from another page needs its format spec written out (as optedu.practice.quiz does).
TEXT_ROLE = re.compile(r"(\{glue:text\}`[A-Za-z0-9_\-]+\.ipynb::[A-Za-z0-9_\-]+)`")


def chapters() -> list[str]:
    """Chapter stems in the book's order, from _toc.yml."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [Path(ch["file"]).name for part in toc["parts"] for ch in part["chapters"]
            if (ROOT / f"{ch['file']}.ipynb").exists()]


def _notebook(stem: str) -> tuple[str, set[str], str]:
    """(title, MyST labels, glue keys stored in outputs) of book/<stem>.ipynb."""
    cells = json.loads((ROOT / "book" / f"{stem}.ipynb").read_text())["cells"]
    markdown = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    title = re.search(r"^# (.+)$", markdown, re.M).group(1).strip()
    glued = {output.get("metadata", {}).get("scrapbook", {}).get("name", "")
             for cell in cells for output in cell.get("outputs", [])}
    return title, set(LABEL.findall(markdown)), glued - {""}


def sources_of(entry: dict) -> list[str]:
    source = entry["source"]
    return list(source) if isinstance(source, list) else [source]


def problems(data: dict) -> list[str]:
    """Everything wrong with the data: unknown chapters, fields, sources, verdicts, labels
    that the chapter lacks, glued keys that the chapter never stored."""
    found = []
    known = chapters()
    for stem, entries in data.items():
        if stem not in known:
            found.append(f"{stem}: not a chapter in _toc.yml")
            continue
        _, labels, glued = _notebook(stem)
        for i, entry in enumerate(entries, 1):
            where = f"{stem} claim {i}"
            if set(entry) != FIELDS:
                found.append(f"{where}: fields {sorted(entry)}, want {sorted(FIELDS)}")
                continue
            for source in sources_of(entry):
                if source not in SOURCES:
                    found.append(f"{where}: unknown source {source!r}")
            if entry["verdict"] not in VERDICTS:
                found.append(f"{where}: verdict {entry['verdict']!r}, want one of {VERDICTS}")
            if entry["run"] not in labels:
                found.append(f"{where}: book/{stem}.ipynb has no label ({entry['run']})=")
            for page, key in GLUE.findall(entry["truth"]):
                if page != stem:
                    found.append(f"{where}: glues {page}::{key}, not from its own chapter")
                elif key not in glued:
                    found.append(f"{where}: {key} is never glued in book/{stem}.ipynb")
    return found


def _glued(truth: str) -> str:
    return TEXT_ROLE.sub(r"\1:s`", truth.strip())


def _title(entry: dict) -> str:
    return f"{entry['claim'].strip()} ({' and '.join(sources_of(entry))})"


def render(current: str, data: dict) -> str:
    if MARKER not in current:
        raise SystemExit(f"{PAGE} has no marker line:\n{MARKER}")
    entries = [(stem, entry) for stem in chapters() for entry in data.get(stem, [])]
    lines = [MARKER, "", "| source | claims | " + " | ".join(VERDICTS) + " |",
             "|---|---:|" + "---:|" * len(VERDICTS)]
    for source in SOURCES:
        verdicts = Counter(e["verdict"] for _, e in entries if source in sources_of(e))
        lines.append(f"| {source} | {sum(verdicts.values())} | "
                     + " | ".join(str(verdicts[v]) for v in VERDICTS) + " |")
    total = Counter(e["verdict"] for _, e in entries)
    lines += [f"| **all** | **{len(entries)}** | "
              + " | ".join(f"**{total[v]}**" for v in VERDICTS) + " |", ""]
    for stem in chapters():
        if not data.get(stem):
            continue
        title, _, _ = _notebook(stem)
        lines += [f"(claims-{stem})=", f"## {title}", ""]
        for entry in data[stem]:
            where = "Discussed in" if entry["verdict"] == VERDICTS[-1] else "Decided by the run in"
            lines += [f":::{{admonition}} {_title(entry)}", ":class: dropdown claim", "",
                      f"**{entry['verdict'].capitalize()}.** {_glued(entry['truth'])}", "",
                      f"{where} {{ref}}`{title} <{entry['run']}>`.", ":::", ""]
    return current.split(MARKER)[0] + "\n".join(lines).rstrip() + "\n"


def load() -> dict:
    return yaml.safe_load(DATA.read_text(encoding="utf-8")) or {}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    args = parser.parse_args()
    data = load()
    found = problems(data)
    for problem in found:
        print(f"book/claims.yaml: {problem}")
    page = render(PAGE.read_text(encoding="utf-8"), data)
    if args.check:
        stale = PAGE.read_text(encoding="utf-8") != page
        if stale:
            print(f"{PAGE.relative_to(ROOT)} is out of date: run python tools/claims.py")
        return 1 if stale or found else 0
    PAGE.write_text(page, encoding="utf-8")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
