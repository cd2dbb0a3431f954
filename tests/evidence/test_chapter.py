"""book/large_runs.ipynb, "What large runs found": every number its prose glues from the ledger
is the ledger's value.

The chapter's hidden cell keeps LEDGER_GLUE, a dict {glue key: (record id, field)}, and glues
each value unrounded ("1.2B", "5,625", "0.7784"). These tests read that dict from the notebook's
source and the glued texts from its stored outputs, parse each text back to a number and compare
it with the record; the ratios the prose derives from records are recomputed the same way. A
wrong value is caught once, on purpose.
"""

import ast
import json
import math
import re
from pathlib import Path

import pytest

from optedu import evidence

ROOT = Path(__file__).resolve().parents[2]
CHAPTER = ROOT / "book" / "large_runs.ipynb"
MAPPING = "LEDGER_GLUE"
UNITS = {"T": 1e12, "B": 1e9, "M": 1e6}
LEDGER_KEY = re.compile(r"\{glue:text\}`(lg_\w+)`")


def _cells():
    return json.loads(CHAPTER.read_text(encoding="utf-8"))["cells"]


def _source(cell):
    return "".join(cell["source"])


def mapping(cells):
    """The chapter's LEDGER_GLUE, read from its source without running it."""
    for cell in cells:
        if cell["cell_type"] != "code" or f"{MAPPING} = " not in _source(cell):
            continue
        for node in ast.parse(_source(cell)).body:
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == MAPPING:
                return ast.literal_eval(node.value)
    raise AssertionError(f"{CHAPTER.name}: no cell assigns {MAPPING}")


def glued(cells):
    """{glue key: the text the prose shows}, from the stored outputs."""
    out = {}
    for cell in cells:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name:
                text = next(v for k, v in output["data"].items() if k.endswith("text/plain"))
                out[name] = ast.literal_eval("".join(text) if isinstance(text, list) else text)
    return out


def parse(text):
    """'1.2B' -> 1.2e9, '5,625' -> 5625.0, '0.7784' -> 0.7784."""
    text = str(text).replace(",", "")
    if text[-1:] in UNITS:
        return float(text[:-1]) * UNITS[text[-1]]
    return float(text)


def ledger_value(record, field):
    part, name = field.split(".")
    finding = evidence.find(record)
    return finding.numbers[name] if part == "numbers" else getattr(getattr(finding, part), name)


def mismatches(keys, texts):
    """What differs between the glued texts and the ledger, one line per key."""
    bad = []
    for key, (record, field) in keys.items():
        if key not in texts:
            bad.append(f"{key}: never glued")
            continue
        want = ledger_value(record, field)
        if not math.isclose(parse(texts[key]), want, rel_tol=1e-9):
            bad.append(f"{key}: the prose shows {texts[key]!r}, {record} {field} is {want!r}")
    return bad


def derived():
    """The ratios the prose derives from records, as it shows them (two decimals)."""
    n = {i: evidence.find(i).numbers for i in (
        "nanogpt_track3_adam_vs_muon", "vyas2024_soap", "pagliardini2024_ademamix",
        "liu2025_muon_compute")}
    t3, soap = n["nanogpt_track3_adam_vs_muon"], n["vyas2024_soap"]
    ade, moon = n["pagliardini2024_ademamix"], n["liu2025_muon_compute"]
    return {
        "lgd_t3_x": t3["adam_steps"] / t3["muon_tuned_steps"],
        "lgd_soap_x": 1 / (1 - soap["fewer_iterations_vs_adamw_pct"] / 100),
        "lgd_soap_wall_x": 1 / (1 - soap["less_wallclock_vs_adamw_pct"] / 100),
        "lgd_ade_x": ade["adamw_tokens"] / ade["ademamix_tokens"],
        "lgd_moon_x": 100 / moon["flops_fraction_pct"],
    }


def test_every_ledger_number_in_the_prose_is_the_ledgers():
    cells = _cells()
    keys = mapping(cells)
    assert len(keys) >= 30, len(keys)
    assert not mismatches(keys, glued(cells))


def test_the_prose_uses_exactly_the_mapped_keys():
    """A number taken from the ledger goes through the mapping, and the mapping holds no key
    the prose has stopped using."""
    cells = _cells()
    used = {key for cell in cells if cell["cell_type"] == "markdown"
            for key in LEDGER_KEY.findall(_source(cell))}
    assert used == set(mapping(cells)), used ^ set(mapping(cells))


def test_the_derived_ratios_are_the_records_ratios():
    texts = glued(_cells())
    for key, value in derived().items():
        assert texts[key] == f"{value:.2f}", (key, texts[key], value)


def test_the_record_counts_are_the_ledgers():
    texts, findings = glued(_cells()), evidence.load()
    assert texts["lgd_n_records"] == len(findings)
    assert texts["lgd_n_checked"] == sum(f.checked for f in findings)


@pytest.mark.parametrize("text, value", [("1.2B", 1.2e9), ("162,354,816", 162354816),
                                         ("0.7784", 0.7784), ("5.7T", 5.7e12),
                                         ("190M", 1.9e8)])
def test_parse(text, value):
    assert math.isclose(parse(text), value, rel_tol=1e-12)


def test_a_wrong_value_is_caught():
    cells = _cells()
    keys, texts = mapping(cells), glued(cells)
    texts["lg_wen_large_x"] = "1.2"  # the ledger says 1.1
    del texts["lg_t3_sd"]
    bad = mismatches(keys, texts)
    assert bad == ["lg_wen_large_x: the prose shows '1.2', wen2025_speedup_by_size "
                   "numbers.speedup_1p2b_x is 1.1", "lg_t3_sd: never glued"], bad
