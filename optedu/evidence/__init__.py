"""The evidence: what large runs found, one record per finding, read from its source.

``ledger.yaml`` (beside this module, shipped with the package) holds each finding a chapter
sets beside its small runs: the claim in a sentence, its numbers, the model and data it was
measured on, how the methods were tuned, the hardware, and the source with the table, figure
or section the numbers stand in. Its header lists the fields.

* :func:`load`: every record, checked, as frozen :class:`Finding` objects;
* :func:`find`: one record by its id; :func:`about`: the records bearing on a chapter;
* :func:`parse`: the checks :func:`load` makes, on rows given directly;
* :func:`check_topics`: every topic is a chapter stem. The package knows nothing of the book,
  so the caller passes the stems (tests/evidence/ reads them from book/).

Imports: nothing else of optedu.
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
import types
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any

LEDGER = "ledger.yaml"
FIELDS = ("id", "claim", "numbers", "model", "data", "tuning", "hardware", "source",
          "checked", "topics")
OPTIONAL = ("unchecked_because", "scale_unstated")
PARTS = {"model": ("name", "parameters"), "data": ("dataset", "tokens", "steps"),
         "source": ("authors", "year", "title", "id", "locator")}


@dataclasses.dataclass(frozen=True)
class Model:
    name: str
    parameters: float | None  # the largest model the claim covers


@dataclasses.dataclass(frozen=True)
class Data:
    dataset: str
    tokens: float | None
    steps: float | None


@dataclasses.dataclass(frozen=True)
class Source:
    authors: str
    year: int
    title: str
    id: str  # arXiv id or URL
    locator: str  # table, figure, section or file where the numbers stand


@dataclasses.dataclass(frozen=True)
class Finding:
    id: str
    claim: str
    numbers: Mapping[str, float]  # read-only; the unit is the name's last part
    model: Model
    data: Data
    tuning: str
    hardware: str | None
    source: Source
    checked: bool
    topics: tuple[str, ...]
    unchecked_because: str | None = None
    scale_unstated: str | None = None  # why parameters or tokens/steps are null


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _finding(row: Mapping[str, Any]) -> Finding:
    rid = row.get("id", "<no id>")

    def fail(field: str, why: str) -> None:
        raise ValueError(f"ledger record {rid!r}: {field} {why}")

    for field in FIELDS:
        if field not in row:
            fail(field, "is missing")
    for field in row:
        if field not in FIELDS + OPTIONAL:
            fail(field, "is not a field of the ledger")
    for part, keys in PARTS.items():
        if not isinstance(row[part], Mapping):
            fail(part, "is not a mapping")
        for key in keys:
            if key not in row[part]:
                fail(f"{part}.{key}", "is missing")
    if not isinstance(row["numbers"], Mapping):
        fail("numbers", "is not a mapping")
    for name, value in row["numbers"].items():
        if not _is_number(value):
            fail(f"numbers.{name}", f"is not a number: {value!r}")
    params, data = row["model"]["parameters"], row["data"]
    if params is not None and not (_is_number(params) and params > 0):
        fail("model.parameters", f"is not a positive number: {params!r}")
    for key in ("tokens", "steps"):
        if data[key] is not None and not (_is_number(data[key]) and data[key] > 0):
            fail(f"data.{key}", f"is not a positive number: {data[key]!r}")
    if (params is None or data["tokens"] is data["steps"] is None) \
            and not row.get("scale_unstated"):
        fail("scale_unstated", "is missing: the record gives no parameter count or no "
             "tokens or steps, and must say why")
    if not isinstance(row["source"]["year"], int) or isinstance(row["source"]["year"], bool):
        fail("source.year", f"is not a year: {row['source']['year']!r}")
    if not str(row["source"]["locator"] or "").strip():
        fail("source.locator", "is empty")
    if not isinstance(row["checked"], bool):
        fail("checked", f"is not true or false: {row['checked']!r}")
    if not row["checked"] and not row.get("unchecked_because"):
        fail("unchecked_because", "is missing: an unchecked record must say why")
    if not isinstance(row["topics"], list) or not all(isinstance(t, str) for t in row["topics"]):
        fail("topics", "is not a list of chapter stems")
    return Finding(
        id=rid, claim=row["claim"], numbers=types.MappingProxyType(dict(row["numbers"])),
        model=Model(**row["model"]), data=Data(**row["data"]), tuning=row["tuning"],
        hardware=row["hardware"], source=Source(**row["source"]), checked=row["checked"],
        topics=tuple(row["topics"]), unchecked_because=row.get("unchecked_because"),
        scale_unstated=row.get("scale_unstated"))


def parse(rows: Iterable[Mapping[str, Any]]) -> list[Finding]:
    """The records in ``rows`` (dicts as YAML reads them), checked; ``ValueError`` names the
    first bad record and field."""
    found: dict[str, Finding] = {}
    for row in rows:
        finding = _finding(row)
        if finding.id in found:
            raise ValueError(f"ledger record {finding.id!r}: id is a duplicate")
        found[finding.id] = finding
    return list(found.values())


@functools.cache
def _ledger() -> tuple[Finding, ...]:
    import yaml

    text = resources.files(__package__).joinpath(LEDGER).read_text(encoding="utf-8")
    return tuple(parse(yaml.safe_load(text)))


def load() -> list[Finding]:
    """Every record of the packaged ledger, in its order."""
    return list(_ledger())


def find(id: str) -> Finding:
    """The record ``id``; ``KeyError`` if the ledger has none."""
    for finding in _ledger():
        if finding.id == id:
            return finding
    raise KeyError(f"no ledger record {id!r}")


def about(topic: str) -> list[Finding]:
    """The records that bear on the chapter ``topic`` (a notebook's stem)."""
    return [finding for finding in _ledger() if topic in finding.topics]


def check_topics(findings: Iterable[Finding], chapters: Iterable[str]) -> None:
    """``ValueError`` naming the first record with a topic that is not in ``chapters``."""
    known = set(chapters)
    for finding in findings:
        unknown = sorted(set(finding.topics) - known)
        if unknown:
            raise ValueError(f"ledger record {finding.id!r}: topics {unknown} are not "
                             f"chapter stems")
