"""Calibrate the validation target of every workload of optedu.choosing and print the table.

Runs :func:`optedu.choosing.calibrate.calibrate` on each workload (31 runs each: three
baselines at eight learning rates, two more seeds at each one's best, AdamW at its defaults),
one process on one thread; about five minutes for all ten. The targets it prints are pasted
into ``optedu/choosing/workloads.py`` with the baseline and learning rate that set them.

    python tools/calibrate_targets.py                  # every workload
    python tools/calibrate_targets.py digits_logreg    # some
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import torch

from optedu.choosing import calibrate, workloads


def _steps(steps: list[int | None], budget: int) -> str:
    return "/".join("-" if s is None else f"{s / budget:.0%}" for s in steps)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="workloads (default: all)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    names = args.names or list(workloads.WORKLOADS)
    start = time.perf_counter()
    rows, lines = [], []
    for name in names:
        w = workloads.get(name)
        c = calibrate.calibrate(w)
        best = c["baselines"][c["setter"]]
        others = ", ".join(f"{b} {e['reached']}/3 at lr {e['lr']:.2g} (median {e['median']:.4g})"
                           for b, e in c["baselines"].items() if b != c["setter"])
        rows.append((w.name, w.metric, c["setter"], f"{c['setter_lr']:.2g}",
                     " ".join(f"{v:.4f}" for v in best["bests"]), f"{c['target']:.4g}",
                     _steps(best["steps"], w.steps), "yes" if c["defaults_reach"] else "no",
                     f"{c['baselines']['adamw']['seconds']:.2f}"))
        lines.append(f"{w.name}: target={c['target']!r}, "
                     f"target_setter=({c['setter']!r}, {c['setter_lr']!r})")
        lines.append(f"    others: {others}")
        print(f"{w.name}: done ({c['runs']} runs, {time.perf_counter() - start:.0f} s so far)",
              flush=True)
    header = ("workload", "metric", "best baseline", "lr", "best value, seeds 0 1 2", "target",
              "reached at (of budget)", "adamw defaults reach", "s/run (adamw)")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    print()
    for row in [header, *rows]:
        print("  ".join(str(v).ljust(width) for v, width in zip(row, widths)).rstrip())
    print("\nFor workloads.py:")
    print("\n".join(lines))
    print(f"\n{calibrate.RULE}\n{time.perf_counter() - start:.0f} s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
