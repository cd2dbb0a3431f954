"""A chapter's experiment as data: its grid of jobs, its stored file, its chapter.

A grid is declared once, in its own module of this folder, as ``GRID = Grid(...)``:

* ``name``: the module's name; ``make experiments-NAME`` runs it (``_`` written ``-``);
* ``chapter``, ``about`` (what it runs, one sentence) and ``minutes`` (on one core of a
  shared 2-core machine): the help text (``make experiments-list``);
* ``file``: the stored file in the data folder (:func:`optedu.instruments.store.folder`);
* ``job``: the key of a run (:class:`Key`: field names, in order), which is also the key of
  its stored record;
* ``jobs(stored, folder)``: every job, given the records stored so far (a grid whose later
  runs depend on earlier results, such as re-runs at the best rate, returns more jobs as
  results arrive) and the data folder;
* ``execute(job)``: the run, returning its record (what is stored); most are written as
  ``@timed`` functions (:func:`timed`: one thread, the run's seconds added last);
* ``sample``: how many stored runs the test re-runs in a fresh process, or how many of each
  value of the key's first field (``{"scan": 6, "trace": 1}``) where the kinds differ in cost.

:mod:`.runner` executes and resumes any grid; the test re-runs a sample of each.
"""

from __future__ import annotations

import functools
import importlib
import pathlib
import pkgutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from optedu.instruments import store
from optedu.instruments.reproducible import one_thread

__all__ = ["Job", "Key", "Grid", "names", "get", "timed"]


@dataclass(frozen=True)
class Job:
    """One run: the values of its key, by the grid's field names (``job.lr``), and inputs
    that are not part of the key (``job.hyper``: a draw's hyperparameters)."""

    names: tuple[str, ...]
    key: tuple
    inputs: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        names = object.__getattribute__(self, "names")
        if name in names:
            return object.__getattribute__(self, "key")[names.index(name)]
        inputs = object.__getattribute__(self, "inputs")
        if name in inputs:
            return inputs[name]
        raise AttributeError(f"{type(self).__name__} has no field {name!r} (fields: {names})")

    def asdict(self) -> dict[str, Any]:
        """The key as ``{field: value}``."""
        return dict(zip(self.names, self.key))


class Key:
    """The key of a grid's runs: field names in order. Called with the values (by position
    or name), it makes a :class:`Job`; ``check(job)``, if given, refuses bad values."""

    def __init__(self, *names: str, check: Callable[[Job], None] | None = None) -> None:
        if len(set(names)) != len(names) or not names:
            raise ValueError(f"Invalid key: {names}")
        self.names = names
        self.check = check

    def __call__(self, *values: Any, inputs: Mapping[str, Any] | None = None,
                 **named: Any) -> Job:
        if len(values) > len(self.names):
            raise TypeError(f"too many values for the key {self.names}: {values}")
        given = dict(zip(self.names, values))
        for name, value in named.items():
            if name not in self.names or name in given:
                raise TypeError(f"Invalid field: {name!r} (key {self.names})")
            given[name] = value
        missing = [n for n in self.names if n not in given]
        if missing:
            raise TypeError(f"missing values for the key {self.names}: {missing}")
        job = Job(self.names, tuple(given[n] for n in self.names), dict(inputs or {}))
        if self.check is not None:
            self.check(job)
        return job

    def of(self, record: Mapping[str, Any]) -> tuple:
        """The key of a stored record."""
        return tuple(record[n] for n in self.names)


@dataclass(frozen=True)
class Grid:
    """A chapter's experiment (see the module's docstring for each field)."""

    name: str
    chapter: str
    about: str
    minutes: float
    file: str
    job: Key
    jobs: Callable[[Sequence[dict[str, Any]], pathlib.Path | None], list[Job]]
    execute: Callable[[Job], dict[str, Any]]
    sample: int | Mapping[str, int] = 4

    @property
    def target(self) -> str:
        """The ``make`` target that runs it."""
        return "experiments-" + self.name.replace("_", "-")

    def key_of(self, record: Mapping[str, Any]) -> tuple:
        return self.job.of(record)

    def path(self, folder: pathlib.Path | str | None = None) -> pathlib.Path:
        """The stored file in ``folder`` (default: :func:`optedu.instruments.store.folder`)."""
        return store.folder(folder) / self.file

    def read(self, folder: pathlib.Path | str | None = None) -> list[dict[str, Any]]:
        """The stored runs; a clear error naming the ``make`` target when there are none."""
        return store.read_stored(self.path(folder), self.target)


#: modules of this folder that are the framework, not experiments
_FRAMEWORK = {"grid", "runner"}


def names() -> list[str]:
    """Every experiment of this folder, by name (its module)."""
    here = pathlib.Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)])
                  if not m.name.startswith("_") and m.name not in _FRAMEWORK)


def get(name: str) -> Grid:
    """The grid declared by the module ``name`` (``-`` read as ``_``)."""
    name = name.replace("-", "_")
    if name not in names():
        raise ValueError(f"Invalid experiment: {name!r} (known: {', '.join(names())})")
    grid = importlib.import_module(f"{__package__}.{name}").GRID
    if grid.name != name:
        raise ValueError(f"Invalid grid: module {name} declares {grid.name!r}")
    return grid



def timed(execute: Callable[[Job], dict[str, Any]]) -> Callable[[Job], dict[str, Any]]:
    """``execute`` run on one thread (:func:`~optedu.instruments.reproducible.one_thread`),
    its record given ``seconds`` (the run's wall time, to the millisecond) as its last field."""

    @functools.wraps(execute)
    def run(job: Job) -> dict[str, Any]:
        with one_thread():
            start = time.perf_counter()
            record = execute(job)
            record["seconds"] = round(time.perf_counter() - start, 3)
            return record

    return run
