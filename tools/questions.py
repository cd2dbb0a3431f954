"""Write the question bank (book/questions.md) from the chapters' interview questions.

The page's own prose is kept as it is, down to the MARKER line; everything below it is
generated: a count per topic and level, then every chapter's questions (optedu.quiz reads them
from the notebooks, with their levels and glued numbers), in the order of _toc.yml.

    python tools/questions.py          # rewrite book/questions.md
    python tools/questions.py --check  # exit 1 if the page is out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from optedu import quiz

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "book" / "questions.md"
MARKER = "<!-- Generated below by tools/questions.py from the chapters: do not edit. -->"


def parts() -> list[tuple[str, list[str]]]:
    """(part caption, chapter stems) in the book's order, from _toc.yml."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [(part["caption"], [Path(ch["file"]).name for ch in part["chapters"]
                               if (ROOT / f"{ch['file']}.ipynb").exists()])
            for part in toc["parts"]]


def render(current: str) -> str:
    if MARKER not in current:
        raise SystemExit(f"{PAGE} has no marker line:\n{MARKER}")
    prose = current.split(MARKER)[0]
    return prose + MARKER + "\n\n" + quiz.render_bank(parts(), ROOT / "book")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    args = parser.parse_args()
    current = PAGE.read_text(encoding="utf-8")
    page = render(current)
    if args.check:
        if page != current:
            print(f"{PAGE.relative_to(ROOT)} is out of date: run python tools/questions.py")
            return 1
        return 0
    PAGE.write_text(page, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
