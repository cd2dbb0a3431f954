"""The record store: runs kept as JSON lines in a data folder, with their meta data beside them.

Every stored experiment of the book (the benchmark's grids in :mod:`optedu.choosing`, the
chapters' grids in :mod:`optedu.experiments`) is a file ``NAME.jsonl`` of one JSON object per
run, appended as each run ends, and ``NAME.meta.json`` beside it (the machine, versions,
commit and each invocation that ran something).

The data folder is passed in; :func:`folder` is the one place that resolves the default:

1. the environment variable ``OPTEDU_EXPERIMENTS``, if set;
2. otherwise ``experiments/`` of the repository that holds the current directory: the
   nearest directory, from the current one up, with both ``pyproject.toml`` and
   ``experiments/`` (so ``make`` and the tests, run from the repository's root, and the
   chapters, run from ``book/``, all find the same folder).

The package never locates data from its own files' paths.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import platform
import subprocess
import sys
import time
from typing import Any

__all__ = ["ENV", "folder", "load", "repair", "append", "read_stored", "rounded",
           "write_meta", "machine", "progress"]

#: the environment variable that names the data folder
ENV = "OPTEDU_EXPERIMENTS"


def folder(path: str | os.PathLike | None = None) -> pathlib.Path:
    """The data folder: ``path`` if given, else ``$OPTEDU_EXPERIMENTS``, else the
    ``experiments/`` folder of the repository around the current directory."""
    if path is not None:
        return pathlib.Path(path)
    if os.environ.get(ENV):
        return pathlib.Path(os.environ[ENV])
    here = pathlib.Path.cwd().resolve()
    for where in (here, *here.parents):
        if (where / "pyproject.toml").is_file() and (where / "experiments").is_dir():
            return where / "experiments"
    raise ValueError(f"Invalid data folder: no experiments/ in {here} or above it "
                     f"(set {ENV} or pass the folder)")


def repair(path: pathlib.Path) -> None:
    """Drop a last line cut off by an interruption, so that new records start on a line of
    their own."""
    if path.exists():
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            path.write_bytes(data[:data.rfind(b"\n") + 1])


def load(path: pathlib.Path) -> list[dict[str, Any]]:
    """The records stored at ``path`` (a missing file holds none); a line cut off by an
    interruption is dropped."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def append(sink, record: dict[str, Any]) -> None:
    """Write ``record`` as one compact JSON line to the open file ``sink`` and flush it."""
    sink.write(json.dumps(record, separators=(",", ":")) + "\n")
    sink.flush()


def read_stored(path: pathlib.Path, target: str) -> list[dict[str, Any]]:
    """The records stored in ``path``; a clear error naming the ``make`` target that writes
    them when there are none."""
    records = load(path)
    if not records:
        raise ValueError(f"Invalid path: no runs stored in {path} (make {target})")
    return records


def rounded(x: float | None) -> float | None:
    """Six significant digits for storage; ``None`` for infinity or NaN (JSON has none)."""
    if x is None or not math.isfinite(x):
        return None
    return float(f"{x:.6g}")


def write_meta(out: pathlib.Path, name: str, ran: int, seconds: float, wall: float,
               workers: int) -> dict[str, Any]:
    """Write ``out``'s meta data beside it (``.meta.json``): the runs stored, this
    invocation's (appended to the earlier ones that ran something), machine, versions and
    commit; returns it."""
    records = load(out)
    where = machine(out.parent)
    session = {"started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(wall)),
               "ran": ran, "seconds": round(seconds, 1), "workers": workers,
               "commit": where.pop("commit")}
    path = out.with_suffix(".meta.json")
    sessions = json.loads(path.read_text()).get("sessions", []) if path.exists() else []
    if session["ran"] or not sessions:
        sessions.append(session)   # a resumed grid lists every invocation that ran something
    meta = {"grid": name, "runs": len(records), "ran_now": ran,
            "seconds_now": session["seconds"],
            "seconds_of_runs": round(sum(r["seconds"] for r in records), 1),
            "sessions": sessions, **where}
    path.write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def machine(where: pathlib.Path | None = None) -> dict[str, Any]:
    """The machine, versions and commit a grid ran on; the commit is that of the git
    repository holding ``where`` (the data folder; default the current directory)."""
    from importlib.metadata import version

    import numpy
    import torch
    cwd = pathlib.Path.cwd() if where is None else where
    cpu = platform.processor() or platform.machine()
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        root = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=cwd,
                              capture_output=True, text=True, check=True).stdout.strip()
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, check=True).stdout.strip()
        # changed code, not data (questions.json): what a run executes
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no",
                                     "--", ":(glob)optedu/**/*.py"], cwd=root,
                                    capture_output=True, text=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = "unknown", False
    return {"machine": {"cpu": cpu, "cores": os.cpu_count(), "system": platform.system(),
                        "kernels": os.environ.get("ATEN_CPU_CAPABILITY", "default")},
            "versions": {"python": platform.python_version(), "torch": torch.__version__,
                         "numpy": numpy.__version__, "optedu": _version(version)},
            "commit": commit + ("+changes" if dirty else "")}


def _version(version: Any) -> str:
    try:
        return version("optedu")
    except Exception:  # noqa: BLE001 - run from a checkout that is not installed
        return "not installed"


def progress(done: int, total: int, start: float, stream=None) -> None:
    """A progress bar on ``stream`` (default standard error): ``done`` of ``total`` runs since
    ``start`` (:func:`time.monotonic`), redrawn on a terminal, every 5 % otherwise."""
    stream = sys.stderr if stream is None else stream
    elapsed = time.monotonic() - start
    left = elapsed / done * (total - done) if done else 0.0
    bar = "#" * int(30 * done / max(total, 1))
    line = (f"[{bar:<30}] {done}/{total} runs, {elapsed / 60:.1f} min, "
            f"about {left / 60:.1f} min left")
    if stream.isatty():
        stream.write("\r" + line)
        if done == total:
            stream.write("\n")
    elif done == total or done % max(1, total // 20) == 0:
        stream.write(line + "\n")
    stream.flush()
