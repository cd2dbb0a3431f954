"""Write the question bank from the chapters' interview questions: the page
book/questions.md and the packaged optedu/practice/questions.json that optedu.practice.quiz.Quiz reads.

The page's own prose is kept as it is, down to the MARKER line; everything below it is
generated: a count per topic and level, then every chapter's questions (optedu.practice.quiz reads them
from the notebooks, with their levels and glued numbers), in the order of _toc.yml. The JSON
holds the same questions, so a practice session needs neither the book nor a folder.

    python tools/questions.py          # rewrite book/questions.md and optedu/practice/questions.json
    python tools/questions.py --check  # exit 1 if either is out of date
    python tools/questions.py --lint [stem ...]  # questions not in the bank's shape
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from optedu.practice import quiz

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "book" / "questions.md"
BANK = ROOT / "optedu" / "practice" / quiz.BANK
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


def bank() -> str:
    """optedu/practice/questions.json: every chapter's questions, in the book's order."""
    stems = [stem for _, chapter_stems in parts() for stem in chapter_stems]
    return quiz.to_json(quiz.load(ROOT / "book", stems))


def lint(stems: list[str]) -> int:
    """Print each question's problems (quiz.lint); 1 if any."""
    if not stems:
        stems = [stem for _, chapter_stems in parts() for stem in chapter_stems]
    bad = 0
    for q in quiz.load(ROOT / "book", stems):
        for problem in quiz.lint(q):
            print(f"{q.chapter} Q{q.number}: {problem}")
            bad += 1
    print(f"{bad} problems")
    return 1 if bad else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    parser.add_argument("--lint", nargs="*", metavar="STEM",
                        help="list the questions (of these chapters) not in the bank's "
                             "shape: themes, a spoken layer, the evidence")
    args = parser.parse_args()
    if args.lint is not None:
        return lint(args.lint)
    page = render(PAGE.read_text(encoding="utf-8"))
    wanted = {PAGE: page, BANK: bank()}
    if args.check:
        stale = [path for path, text in wanted.items()
                 if not path.exists() or path.read_text(encoding="utf-8") != text]
        for path in stale:
            print(f"{path.relative_to(ROOT)} is out of date: run python tools/questions.py")
        return 1 if stale else 0
    for path, text in wanted.items():
        path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
