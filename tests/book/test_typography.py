"""What the chapters' prose shows a reader: a minus sign where a number is negative, and one
way of writing a percentage.

The prose is the chapters' markdown and their figures' captions and alt texts, less what is
not prose (code fences and spans, mathematics, roles such as ``{numref}`...```), plus the
strings glued into it (as the last run stored them). A hyphen before a digit that does not
follow a letter, digit, point, bracket or hyphen (``-1.5``, ``(-2.4–-2.2)``) is a minus sign
written with the hyphen key; ranges and names (``3-5``, ``x-1``, ``1e-3``, ``GPT-2``) are
left alone. A percentage is written ``16%``, as the chapters glue their numbers.
"""

from __future__ import annotations

import json
import pathlib
import re

import pytest

from optedu.instruments.display import _HYPHEN_MINUS

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
NOT_PROSE = re.compile(r"```.*?```|~~~.*?~~~|\$\$.*?\$\$|\$[^$]+\$|\{[\w:-]+\}`[^`]*`|`[^`]*`",
                       re.S)
SPACED_PERCENT = re.compile(r"\d %")
GLUE_PREFIX = "application/papermill.record/"


def prose(cells) -> list[tuple[str, str]]:
    """(where, text) for each piece of prose: markdown cells, captions, alt texts, glued
    strings, with what is not prose cut out of the first three."""
    pieces = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "markdown":
            pieces.append((f"cell {i}", NOT_PROSE.sub(" ", "".join(cell["source"]))))
        meta = cell.get("metadata", {}).get("mystnb", {})
        for part, key in (("figure", "caption"), ("image", "alt")):
            text = meta.get(part, {}).get(key)
            if text:
                pieces.append((f"cell {i} {key}", NOT_PROSE.sub(" ", text)))
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            text = output.get("data", {}).get(GLUE_PREFIX + "text/plain")
            if name and isinstance(text, str) and text[:1] in "'\"":
                pieces.append((f"glued {name}", text))
    return pieces


def _offences(pattern, pieces) -> list[str]:
    return [f"{where}: …{text[max(0, m.start() - 30):m.end() + 10]!r}…"
            for where, text in pieces for m in pattern.finditer(text)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_a_negative_number_in_prose_has_a_minus_sign(path):
    pieces = prose(json.loads(path.read_text())["cells"])
    assert not _offences(_HYPHEN_MINUS, pieces)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_a_percentage_is_written_without_a_space(path):
    pieces = prose(json.loads(path.read_text())["cells"])
    assert not _offences(SPACED_PERCENT, pieces)


def test_what_is_not_prose_is_left_out():
    cells = [{"cell_type": "markdown", "source": [
        "from $(-1.5, 2)$, `lr=-1` and {numref}`fig-x-1`:\n", "```\nx = -1\n```\n3-5, GPT-2"]}]
    assert not _offences(_HYPHEN_MINUS, prose(cells))
    cells[0]["source"].append(" from (-1.5, 2), 10 %")
    assert len(_offences(_HYPHEN_MINUS, prose(cells))) == 1
    assert len(_offences(SPACED_PERCENT, prose(cells))) == 1
