"""Re-run chapter notebooks top to bottom in a fresh kernel and store their outputs.

    python tools/run_notebooks.py                 # every notebook under book/
    python tools/run_notebooks.py book/adam.ipynb  # just these
    python tools/run_notebooks.py --unpinned --check --jobs 2   # as a reader runs them

This is the only way outputs enter the repository: nobody edits notebook JSON by hand. Each
notebook runs with its own folder as the working directory, like `jupyter lab` and nbval do.
The wall time of every notebook is printed, and the command fails if one takes longer than the
budget (30 s by default, `--budget`), so slow chapters are caught when they are written.

Outputs are computed with torch's CPU kernels capped at AVX2 (optedu.instruments.reproducible), as nbval
checks them. A reader's Jupyter has no cap: on a processor with AVX-512, torch runs other
kernels, whose results differ in their last bits. `--check` runs the notebooks and stores
nothing: it fails if a cell raises (one tagged raises-exception aside), naming the notebook, the
cell and the error, and compares no output. With `--unpinned` the kernels start without the
cap, its three variables removed from their environment even where the caller set them, so an
assertion that holds with one family of kernels and not with the reader's fails here. On a
processor where the cap selects no other kernel (no instruction set beyond AVX2, or not x86-64)
that run would repeat nbval's, and `--unpinned` runs nothing unless given `--always`.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from optedu.instruments.reproducible import CPU_KERNELS, cap_changes_kernels, pin_cpu_kernels

# nbformat and nbclient are imported where a notebook is read or run: their import builds
# jsonschema's URI grammar, seconds of CPU that kernel_env and the quick tests need not pay

ROOT = pathlib.Path(__file__).resolve().parent.parent


def kernel_env(unpinned: bool = False, environ=None) -> dict[str, str]:
    """The environment a notebook's kernel starts with: ``environ`` (default ``os.environ``),
    with static figures (stored outputs are what the website shows; optedu.instruments.landscapes.explore
    reads OPTEDU_STATIC) and torch's CPU kernels capped at AVX2, as nbval runs them
    (book/conftest.py); ``unpinned``: with the cap's variables removed, as a reader's Jupyter
    runs them."""
    env = dict(os.environ if environ is None else environ, OPTEDU_STATIC="1")
    if unpinned:
        for name in CPU_KERNELS:
            env.pop(name, None)
        # and the capped processes' own Inductor cache (pin_cpu_kernels)
        if env.get("TORCHINDUCTOR_CACHE_DIR", "").endswith(
                "_" + CPU_KERNELS["ATEN_CPU_CAPABILITY"]):
            env.pop("TORCHINDUCTOR_CACHE_DIR")
    else:
        pin_cpu_kernels(env)
    return env


def _did_not_start(error: Exception) -> bool:
    """True if the kernel died before it ran anything: jupyter_client picks free ports and
    hands them to the kernel, and a kernel started at the same moment (``--jobs 2``) can take
    one first; the kernel then exits with "Address already in use"."""
    return "before replying to kernel_info" in str(error)


def execute(nb, path: pathlib.Path, timeout: int, env: dict[str, str]) -> float:
    """Run ``nb`` (read from ``path``) top to bottom in a fresh kernel started with ``env``,
    filling in its outputs; returns the wall time. Raises CellExecutionError. A kernel that
    dies before it runs anything (a port taken meanwhile) is started once more, on new
    ports; a kernel that dies later is never retried."""
    from nbclient import NotebookClient

    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    start = time.perf_counter()
    for attempt in (1, 2):
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}})
        try:
            client.execute(env=env)
        except RuntimeError as error:
            if attempt == 2 or not _did_not_start(error):
                raise
            print(f"{path.name}: the kernel did not start ({error}); starting another",
                  file=sys.stderr, flush=True)
            continue
        return time.perf_counter() - start


def coalesced(outputs: list) -> list:
    """``outputs`` with each run of printed text to one stream joined into one output, as
    Jupyter shows it: how a cell's prints are split depends on the kernel's timing."""
    merged: list = []
    for output in outputs:
        last = merged[-1] if merged else None
        if (last is not None and output.output_type == "stream" == last.output_type
                and output.name == last.name):
            last.text += output.text
        else:
            merged.append(output)
    return merged


def run(path: pathlib.Path, timeout: int) -> float:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    elapsed = execute(nb, path, timeout, kernel_env())
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
        new.outputs, new.execution_count = coalesced(old.outputs), old.execution_count
        new.metadata.pop("execution", None)
    current.metadata = nb.metadata
    nbformat.write(current, path)
    return elapsed


def check(path: pathlib.Path, timeout: int, env: dict[str, str]) -> tuple[float, str | None]:
    """Run the notebook at ``path`` and store nothing; returns its wall time and, if a cell
    raised, which cell (its number among all cells, from 1, and its id), the line and the
    error."""
    import nbformat
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    try:
        execute(nb, path, timeout, env)
    except CellExecutionError as error:
        where = next(((i, c) for i, c in enumerate(nb.cells, 1) if c.cell_type == "code"
                      and "raises-exception" not in c.metadata.get("tags", [])
                      and any(o.output_type == "error" for o in c.get("outputs", []))), None)
        plain = re.sub(r"\x1b\[[0-9;]*m", "", error.traceback)
        line = next((s.strip() for s in plain.splitlines() if re.match(r"-+> *\d+", s)), "")
        cell = f"cell {where[0]} (id {where[1].get('id')})" if where else "a cell"
        return time.perf_counter() - start, f"{cell}: {line}\n    {error.ename}: {error.evalue}"
    except Exception as error:  # the kernel died, or a cell ran past --timeout
        return time.perf_counter() - start, f"{type(error).__name__}: {error}"
    return time.perf_counter() - start, None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=pathlib.Path)
    parser.add_argument("--budget", type=float, default=30.0, help="seconds allowed per notebook")
    parser.add_argument("--timeout", type=int, default=120, help="seconds allowed per cell")
    parser.add_argument("--check", action="store_true",
                        help="store nothing; fail if a cell raises (outputs not compared)")
    parser.add_argument("--unpinned", action="store_true",
                        help="torch's CPU kernels not capped at AVX2, as in a reader's Jupyter"
                             " (with --check only: such outputs are never stored)")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks run at a time (--check)")
    parser.add_argument("--always", action="store_true",
                        help="with --unpinned: run even where the cap changes no kernel")
    args = parser.parse_args()
    if args.unpinned and not args.check:
        parser.error("--unpinned needs --check: stored outputs are computed with the cap")
    paths = args.notebooks or sorted((ROOT / "book").rglob("*.ipynb"))
    paths = [p.resolve() for p in paths if ".ipynb_checkpoints" not in p.parts]
    if args.unpinned and not cap_changes_kernels() and not args.always:
        print("the AVX2 cap selects no other kernel on this processor: the chapters would run "
              "as nbval ran them (make test); nothing to check (--always runs them anyway)")
        return 0
    if args.check:
        return check_all(paths, args.timeout, kernel_env(args.unpinned), args.jobs)
    slow = []
    for path in paths:
        elapsed = run(path, args.timeout)
        flag = "" if elapsed <= args.budget else f"  over the {args.budget:g} s budget"
        print(f"{elapsed:6.1f} s  {path}{flag}", flush=True)
        if flag:
            slow.append(path)
    return 1 if slow else 0


def check_all(paths, timeout: int, env: dict[str, str], jobs: int) -> int:
    kernels = ", ".join(f"{k}={env[k]}" for k in CPU_KERNELS if k in env) or "not capped"
    print(f"checking {len(paths)} notebooks, {jobs} at a time; CPU kernels: {kernels}",
          flush=True)
    start = time.perf_counter()
    failed = []
    with ProcessPoolExecutor(max(1, jobs)) as pool:
        futures = [pool.submit(check, path, timeout, env) for path in paths]
        for path, future in zip(paths, futures):
            elapsed, error = future.result()
            name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
            print(f"{elapsed:6.1f} s  {'FAIL' if error else 'ok  '}  {name}", flush=True)
            if error:
                print(f"    {error}", flush=True)
                failed.append(f"{name}, {error}")
    print(f"{len(paths) - len(failed)} of {len(paths)} notebooks ran without error in "
          f"{time.perf_counter() - start:.0f} s", flush=True)
    for failure in failed:
        print(f"FAILED {failure}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
