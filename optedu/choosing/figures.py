"""Tables and figures of the part "Choosing an optimizer", kept out of its chapters' cells.

Each helper takes what the chapter computed (a :class:`.results.Results`, rankings, points of
a search) and returns rows, a number or a matplotlib figure; none reads files or runs
training. The figures follow the book's conventions (:mod:`optedu.instruments.display`
writes their numbers); the chapter shows them with ``plt.show()``.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from optedu.instruments.display import num

from . import profiles, workloads

__all__ = ["workload_rows", "format_rows", "best_values", "ranks", "largest_gap",
           "plot_rank_maps", "plot_search_points", "plot_profiles", "plot_seed_spread",
           "steps_spread", "plot_lr_curves", "plot_lr_wd"]


# --- tables -----------------------------------------------------------------------------------

def workload_rows() -> list[dict[str, Any]]:
    """One row per base workload of the registry, in its order: ``name``, ``model`` (the
    summary), ``params`` (trainable parameters of ``model(0)``), ``batch``, ``steps``,
    ``metric``, ``target``, ``variant`` (its held-out variants' names, joined by commas)."""
    rows = []
    for w in workloads.base_workloads():
        model = w.model(0)
        rows.append({"name": w.name, "model": w.summary,
                     "params": sum(p.numel() for p in model.parameters()),
                     "batch": w.batch_size, "steps": w.steps, "metric": w.metric,
                     "target": w.target,
                     "variant": ", ".join(v.name for v in workloads.held_out(w.name))})
    return rows


def format_rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[str],
                headers: Sequence[str] | None = None) -> str:
    """``rows`` as a plain-text table of ``columns`` (left-aligned text, right-aligned numbers;
    floats with 4 significant digits)."""
    headers = list(headers or columns)
    if len(headers) != len(columns):
        raise ValueError(f"Invalid headers: {len(headers)} for {len(columns)} columns")

    def text(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    cells = [[text(row[c]) for c in columns] for row in rows]
    numeric = [all(isinstance(row[c], (int, float)) for row in rows) for c in columns]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = []
    for values in [headers, *cells]:
        lines.append("  ".join(v.rjust(w) if right else v.ljust(w)
                               for v, w, right in zip(values, widths, numeric)).rstrip())
    return "\n".join(lines)


# --- rankings ---------------------------------------------------------------------------------

def best_values(results: Any, ruleset: str, names: Sequence[str] | None = None,
                loads: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    """``{workload: {contestant: value}}``: the median over seeds of the best validation value
    of the defaults (``"self"``) or of the best trial (``"external"``)."""
    names = list(names or results.contestants)
    loads = list(loads or results.base_workloads)
    return {w: {s: results.spread(s, w, ruleset)["median_best"] for s in names}
            for w in loads}


def ranks(values: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, int]]:
    """``{workload: {contestant: rank}}``, 1 for the lowest value; equal values share the
    best rank of their group (1, 2, 2, 4), so that a tie is never ordered by name."""
    out = {}
    for w, row in values.items():
        ordered = sorted(row.values())
        out[w] = {s: 1 + ordered.index(v) for s, v in row.items()}
    return out


# --- quasi-random search ----------------------------------------------------------------------

def largest_gap(points: Sequence[Sequence[float]]) -> float:
    """The largest stretch of one coordinate that no point probes: for each axis of
    ``points`` (in [0, 1)), the largest distance between neighbouring coordinates, the ends 0
    and 1 included, and the largest of these over the axes. If only one hyperparameter
    matters (the learning rate, often), it is the widest range of it that a search never
    tries (Bousquet et al., 2017, argue from such projections)."""
    if len(points) == 0:
        raise ValueError("largest_gap needs at least one point")
    gaps = []
    for axis in range(len(points[0])):
        values = sorted([0.0, 1.0, *(float(p[axis]) for p in points)])
        gaps.append(max(b - a for a, b in zip(values, values[1:])))
    return max(gaps)


def plot_search_points(draws: Mapping[str, Sequence[Sequence[float]]], space: Mapping[str, tuple],
                       axes: tuple[str, str] = ("lr", "weight_decay")) -> Any:
    """One panel per draw: its points (in [0, 1)², as :func:`.search.halton` gives them) mapped
    log-uniformly onto ``space``'s two ``axes``, each panel titled with its largest gap."""
    import matplotlib.pyplot as plt

    fig, panels = plt.subplots(1, len(draws), figsize=(3.3 * len(draws), 3.2),
                               sharex=True, sharey=True)
    panels = [panels] if len(draws) == 1 else list(panels)
    (x_low, x_high), (y_low, y_high) = space[axes[0]], space[axes[1]]
    for ax, (label, points) in zip(panels, draws.items()):
        xs = [x_low * (x_high / x_low) ** u for u, _ in points]
        ys = [y_low * (y_high / y_low) ** v for _, v in points]
        ax.scatter(xs, ys, s=18)
        for i, (x, y) in enumerate(zip(xs, ys)):
            if i < 5:
                ax.annotate(str(i), (x, y), textcoords="offset points", xytext=(3, 3),
                            fontsize=7)
        ax.set(xscale="log", yscale="log", xlim=(x_low, x_high), ylim=(y_low, y_high),
               xlabel=axes[0].replace("_", " "),
               title=f"{label}\nlargest gap {num(largest_gap(points), 2)}")
        ax.title.set_fontsize(9)
    panels[0].set_ylabel(axes[1].replace("_", " "))
    fig.tight_layout()
    return fig


# --- figures of the stored grid ---------------------------------------------------------------

def plot_rank_maps(maps: Mapping[str, Mapping[str, Mapping[str, int]]],
                   order: Sequence[str]) -> Any:
    """Side by side, one map per entry of ``maps`` (title -> ranks as :func:`ranks` gives
    them): rows the contestants in ``order``, columns the workloads, each cell its rank."""
    import matplotlib.pyplot as plt
    import numpy as np

    titles = list(maps)
    loads = list(next(iter(maps.values())))
    n = len(order)
    fig, panels = plt.subplots(1, len(maps), figsize=(3.4 * len(maps), 0.22 * n + 1.6),
                               sharey=True)
    panels = [panels] if len(maps) == 1 else list(panels)
    for ax, title in zip(panels, titles):
        grid = np.array([[maps[title][w][s] for w in loads] for s in order], dtype=float)
        ax.imshow(grid, cmap="viridis_r", vmin=1, vmax=n, aspect="auto")
        for i in range(n):
            for j in range(len(loads)):
                rank = int(grid[i, j])
                ax.text(j, i, str(rank), ha="center", va="center", fontsize=7,
                        color="black" if rank <= n / 2 else "white")
        ax.set_xticks(range(len(loads)), [w.removeprefix("digits_") for w in loads],
                      rotation=40, ha="right", fontsize=7)
        ax.set_title(title, fontsize=9)
    panels[0].set_yticks(range(n), order, fontsize=7)
    fig.tight_layout()
    return fig


def plot_profiles(curves: Mapping[str, Mapping[str, Mapping[str, float]]],
                  r_max: float = profiles.R_MAX, highlight: int = 5) -> Any:
    """One panel per ruleset (title -> ``{contestant: {workload: ratio}}``): each
    contestant's performance profile :math:`\\rho_s(\\tau)` from 1 to ``r_max``, the
    ``highlight`` best-scoring contestants in colour and named (if their score is above 0),
    the others in grey."""
    import matplotlib.pyplot as plt
    import numpy as np

    taus = np.concatenate([np.linspace(1.0, r_max, 601), [r_max]])
    fig, panels = plt.subplots(1, len(curves), figsize=(3.6 * len(curves), 3.4), sharey=True)
    panels = [panels] if len(curves) == 1 else list(panels)
    for ax, (title, ratios_of) in zip(panels, curves.items()):
        scores = {s: profiles.score(r, r_max) for s, r in ratios_of.items()}
        ranked = sorted(scores, key=lambda s: (-scores[s], s))
        for s in reversed(ranked):
            rho = profiles.profile(ratios_of[s], taus)
            top = s in ranked[:highlight] and scores[s] > 0
            ax.step(taus, rho, where="post", lw=1.6 if top else 0.8,
                    color=None if top else "0.75", zorder=3 if top else 1,
                    label=f"{s} ({num(scores[s], 2)})" if top else None)
        ax.set(xlim=(1, r_max), ylim=(-0.02, 1.02), xlabel="τ (times the fastest)",
               title=title)
        ax.title.set_fontsize(9)
        handles, labels = ax.get_legend_handles_labels()
        if handles:
            ax.legend(handles[::-1], labels[::-1], fontsize=7, loc="best")
    panels[0].set_ylabel("ρ(τ): share of workloads")
    fig.tight_layout(w_pad=2.5)
    return fig


def steps_spread(results: Any, contestant: str, workload: str) -> tuple[float, float, float]:
    """``(low, median, high)`` of the steps to the target over the seeds of the best trial
    (infinite for a seed that misses it)."""
    if not results.trials(contestant, workload):
        raise ValueError(f"Invalid pair: no runs of {contestant!r} on {workload!r}")
    reached = results.spread(contestant, workload)["reached"]
    return (min(reached), profiles.median_time(reached), max(reached))


def plot_seed_spread(results: Any, loads: Sequence[str], names: Sequence[str]) -> Any:
    """One panel per workload: each contestant's steps to the target over the seeds of its
    best trial (dot: median; bar: lowest to highest seed), as a share of the step budget;
    contestants whose median misses the target are left out of their panel."""
    import matplotlib.pyplot as plt

    fig, panels = plt.subplots(1, len(loads), figsize=(2.2 * len(loads), 0.2 * len(names) + 1.4),
                               sharey=True)
    panels = [panels] if len(loads) == 1 else list(panels)
    for ax, w in zip(panels, loads):
        budget = workloads.get(w).steps
        for i, s in enumerate(names):
            low, mid, high = steps_spread(results, s, w)
            if math.isinf(mid):
                continue
            high = budget if math.isinf(high) else high
            ax.plot([low / budget, high / budget], [i, i], color="0.4", lw=1.5)
            ax.plot(mid / budget, i, "o", ms=3.5, color="C0")
        ax.set(xlim=(0, 1.02), title=w.removeprefix("digits_"))
        ax.title.set_fontsize(8)
        ax.tick_params(labelsize=7)
    panels[0].set_yticks(range(len(names)), names, fontsize=7)
    panels[0].invert_yaxis()
    fig.supxlabel("steps to the target, share of the budget", fontsize=8)
    fig.tight_layout()
    return fig



# --- figures of the sweeps (chapter "What the benchmark found") -------------------------------

def plot_lr_curves(curves: Mapping[str, Mapping[str, tuple[Sequence[float],
                                                           Sequence[Sequence[float]]]]],
                   families: Mapping[str, Sequence[str]],
                   ceiling: Mapping[str, float]) -> Any:
    """A grid of panels, one row per family (title -> contestants), one column per workload
    of ``curves`` (``{workload: {contestant: (rates, values per rate, one per seed)}}``):
    the median over seeds of the final validation value against the learning rate, a band
    from the lowest to the highest seed; a run that diverged is drawn at the top edge (×).
    Each panel's vertical range runs from the workload's best value to ``ceiling[w]`` (its
    value at initialisation, say), the same in every row of a column.

    Each row opens with a cell that holds only its family's legend (titled with the family),
    and every panel is titled with its workload: a narrow screen regrids the cells
    (:func:`optedu.instruments.layouts.relaid`), so neither a legend inside a narrow panel
    nor a title over the first row alone would stay readable or in place."""
    import matplotlib.pyplot as plt
    import numpy as np

    loads = list(curves)
    fig, cells = plt.subplots(len(families), len(loads) + 1,
                              figsize=(2.3 * (len(loads) + 1), 2.1 * len(families) + 0.6),
                              sharex=False, squeeze=False)
    panels = [row[1:] for row in cells]
    for j, w in enumerate(loads):
        finite = [v for c in curves[w].values() for seeds in c[1] for v in seeds
                  if math.isfinite(v)]
        low, start = min(finite), ceiling[w]
        top = start + 0.05 * (start - low)
        for i, (family, names) in enumerate(families.items()):
            ax = panels[i][j]
            for k, name in enumerate(names):
                if name not in curves[w]:
                    continue
                rates, seeds_of = curves[w][name]
                runs = np.array([[min(v, top) for v in seeds] for seeds in seeds_of])
                mid = np.median(runs, axis=1)
                line, = ax.plot(rates, mid, lw=1.3, color=f"C{k}", label=name)
                ax.fill_between(rates, runs.min(axis=1), runs.max(axis=1),
                                color=line.get_color(), alpha=0.18, lw=0)
                gone = mid >= top
                ax.plot(np.array(rates)[gone], mid[gone], "x", ms=4, color=line.get_color())
            ax.axhline(workloads.get(w).target, color="0.3", lw=0.7, ls=":")
            ax.set(xscale="log", ylim=(low - 0.05 * (top - low), top))
            ax.tick_params(labelsize=7)
            ax.set_title(w.removeprefix("digits_"), fontsize=8)
    for row, (family, names) in zip(cells, families.items()):
        key = row[0]
        key.axis("off")
        handles: dict[str, Any] = {}
        for ax in row[1:]:
            for handle, label in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(label, handle)
        shown = [name for name in names if name in handles]
        title = textwrap.fill(family, 18, break_on_hyphens=False)
        key.legend([handles[n] for n in shown], shown, title=title, fontsize=7,
                   title_fontsize=8, loc="center", frameon=False)
    fig.supxlabel("peak learning rate (other hyperparameters at their defaults)", fontsize=8)
    fig.tight_layout()
    return fig


def plot_lr_wd(maps: Mapping[str, tuple[Sequence[float], Sequence[float],
                                        Sequence[Sequence[float]]]],
               labels: Mapping[str, str]) -> Any:
    """One heat map per entry of ``maps`` (title -> ``(rates, decays, values[rate][decay])``,
    the median final validation value): rows the learning rate, columns the decay (axis
    label from ``labels[title]``), a shared logarithmic colour scale from the best value to
    the worst finite one (a diverged cell takes the worst colour), the best cell of each map
    outlined."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import LogNorm
    from matplotlib.patches import Rectangle

    finite = [np.array(v, dtype=float)[np.isfinite(np.array(v, dtype=float))]
              for _, _, v in maps.values()]
    best = min(float(f.min()) for f in finite)
    worst = max(float(f.max()) for f in finite)
    fig, panels = plt.subplots(1, len(maps), figsize=(3.2 * len(maps), 3.3), sharey=True)
    panels = [panels] if len(maps) == 1 else list(panels)
    for ax, (title, (rates, decays, values)) in zip(panels, maps.items()):
        grid = np.array(values, dtype=float)
        shown = np.where(np.isfinite(grid), grid, worst)
        image = ax.imshow(shown, cmap="viridis_r", norm=LogNorm(best, worst), origin="lower",
                          aspect="auto")
        i, j = np.unravel_index(np.argmin(np.where(np.isfinite(grid), grid, np.inf)),
                                grid.shape)
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=1.6, color="red"))
        ax.set_xticks(range(0, len(decays), 2), [f"{d:.0e}" for d in decays[::2]],
                      rotation=45, fontsize=7)
        ax.set_xlabel(labels[title], fontsize=8)
        ax.set_title(title, fontsize=8.5)
    panels[0].set_yticks(range(len(rates)), [f"{r:.0e}" for r in rates], fontsize=7)
    panels[0].set_ylabel("peak learning rate", fontsize=8)
    bar = fig.colorbar(image, ax=panels, fraction=0.03, pad=0.02)
    bar.set_label("final validation loss (log scale)", fontsize=7)
    bar.ax.tick_params(labelsize=7)
    return fig
