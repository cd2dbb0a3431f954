"""Re-run chapter notebooks top to bottom in a fresh kernel and store their outputs.

    python tools/run_notebooks.py                 # every notebook under book/
    python tools/run_notebooks.py book/adam.ipynb  # just these

This is the only way outputs enter the repository: nobody edits notebook JSON by hand. Each
notebook runs with its own folder as the working directory, like `jupyter lab` and nbval do.
The wall time of every notebook is printed, and the command fails if one takes longer than the
budget (30 s by default, `--budget`), so slow chapters are caught when they are written.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

import nbformat
from nbclient import NotebookClient

from optedu.reproducible import pin_cpu_kernels

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Stored outputs are what the website shows: static figures, never live widgets
# (optedu.landscapes.explore reads this; the kernels inherit it).
os.environ["OPTEDU_STATIC"] = "1"
# The same digits on every x86-64 processor: torch's CPU kernels capped at AVX2, as nbval runs
# them (book/conftest.py).
pin_cpu_kernels()


def run(path: pathlib.Path, timeout: int) -> float:
    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    for cell in nb.cells:  # keep stored notebooks free of volatile execution metadata
        cell.metadata.pop("execution", None)
    # Store the outputs in the notebook as it is now, so that prose edited while it ran is
    # kept; if its code changed meanwhile, the outputs would be stale: refuse.
    current = nbformat.read(path, as_version=4)
    ran = [cell for cell in nb.cells if cell.cell_type == "code"]
    now = [cell for cell in current.cells if cell.cell_type == "code"]
    if [c.source for c in ran] != [c.source for c in now]:
        raise RuntimeError(f"{path}: code changed while it ran; run it again")
    for old, new in zip(ran, now):
        new.outputs, new.execution_count = old.outputs, old.execution_count
        new.metadata.pop("execution", None)
    current.metadata = nb.metadata
    nbformat.write(current, path)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=pathlib.Path)
    parser.add_argument("--budget", type=float, default=30.0, help="seconds allowed per notebook")
    parser.add_argument("--timeout", type=int, default=120, help="seconds allowed per cell")
    args = parser.parse_args()
    paths = args.notebooks or sorted((ROOT / "book").rglob("*.ipynb"))
    paths = [p for p in paths if ".ipynb_checkpoints" not in p.parts]
    slow = []
    for path in paths:
        elapsed = run(path.resolve(), args.timeout)
        flag = "" if elapsed <= args.budget else f"  over the {args.budget:g} s budget"
        print(f"{elapsed:6.1f} s  {path}{flag}", flush=True)
        if flag:
            slow.append(path)
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
