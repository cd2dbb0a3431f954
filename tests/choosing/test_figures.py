"""The chapter's tables and figures (optedu.choosing.figures) return what they claim."""

from __future__ import annotations

import math
import random

import matplotlib
import pytest

from optedu.choosing import figures, profiles, search, workloads
from optedu.choosing.results import Results

matplotlib.use("Agg")


def test_workload_rows_are_the_registry():
    rows = figures.workload_rows()
    bases = workloads.base_workloads()
    assert [r["name"] for r in rows] == [w.name for w in bases]
    for row, w in zip(rows, bases):
        assert (row["batch"], row["steps"], row["metric"], row["target"], row["model"]) == \
            (w.batch_size, w.steps, w.metric, w.target, w.summary)
        assert row["params"] == sum(p.numel() for p in w.model(0).parameters())
        assert row["variant"] == ", ".join(v.name for v in workloads.held_out(w.name))
        assert row["variant"]


def test_format_rows_aligns_columns():
    text = figures.format_rows([{"a": "x", "b": 1.23456}, {"a": "long", "b": 10}],
                               ["a", "b"], ["name", "value"])
    lines = text.splitlines()
    assert lines == ["name  value", "x     1.235", "long     10"]
    with pytest.raises(ValueError, match="Invalid headers"):
        figures.format_rows([], ["a"], ["x", "y"])


def test_ranks_share_ties():
    assert figures.ranks({"w": {"b": 0.2, "a": 0.2, "c": 0.1, "d": math.inf}}) == \
        {"w": {"c": 1, "a": 2, "b": 2, "d": 4}}
    assert figures.ranks({"w": {"a": math.inf, "b": math.inf}}) == {"w": {"a": 1, "b": 1}}


def test_largest_gap():
    assert figures.largest_gap([[0.5, 0.5]]) == 0.5
    assert figures.largest_gap([[0.25, 0.1], [0.75, 0.9]]) == pytest.approx(0.8)
    with pytest.raises(ValueError):
        figures.largest_gap([])
    # twenty Halton points probe every stretch wider than the gap of most random draws
    halton = figures.largest_gap(search.halton(20, 2, seed=0))
    rng = random.Random(0)
    draws = [figures.largest_gap([[rng.random(), rng.random()] for _ in range(20)])
             for _ in range(20)]
    assert sum(d > halton for d in draws) >= 18


def _record(ruleset, workload, contestant, trial, seed, reached, share):
    """A stored run whose curve first reaches the target at step ``reached`` (``None``:
    never), its best value ``share`` times the target."""
    target = workloads.get(workload).target
    best = share * target if reached is not None else target + share
    evals = [[5, target + 1.0], [reached or 300, best]]
    return {"ruleset": ruleset, "workload": workload, "contestant": contestant,
            "trial": trial, "seed": seed, "reached": reached, "evals": evals, "hyper": {}}


@pytest.fixture
def grid():
    """Two contestants on digits_logreg and its variant: two trials, three seeds of the best,
    defaults on three seeds."""
    records = []
    for w in ("digits_logreg", "digits_logreg_raw"):
        for s, (fast, share) in {"a": (40, 0.5), "b": (80, 0.8)}.items():
            records.append(_record("external", w, s, 0, 0, fast, share))
            records.append(_record("external", w, s, 1, 0, None, share))
            records += [_record("external", w, s, 0, seed, fast + 10 * seed, share)
                        for seed in (1, 2)]
            records += [_record("self", w, s, None, seed, None if s == "b" else 100, share)
                        for seed in (0, 1, 2)]
    return Results(records)


def test_best_values_and_seed_spread(grid):
    target = workloads.get("digits_logreg").target
    assert figures.best_values(grid, "external") == \
        {"digits_logreg": {"a": 0.5 * target, "b": 0.8 * target}}
    assert figures.steps_spread(grid, "a", "digits_logreg") == (40, 50, 60)
    with pytest.raises(ValueError, match="Invalid pair"):
        figures.steps_spread(grid, "nobody", "digits_logreg")


def test_figures_draw(grid):
    import matplotlib.pyplot as plt

    ranks = figures.ranks(figures.best_values(grid, "external"))
    fig = figures.plot_rank_maps({"one": ranks, "two": ranks}, ["a", "b"])
    assert len(fig.axes) == 2 and fig.axes[0].get_title() == "one"
    ratios = profiles.ratios(grid.times("external", n=1, studies=1))
    fig2 = figures.plot_profiles({"external": ratios}, highlight=1)
    labels = fig2.axes[0].get_legend_handles_labels()[1]
    assert labels == [f"a ({profiles.score(ratios['a']):.0f}.0)"]
    fig3 = figures.plot_search_points({"h": search.halton(5, 2)},
                                      {"lr": (1e-4, 1e-1), "weight_decay": (1e-3, 1.0)})
    assert "largest gap" in fig3.axes[0].get_title()
    fig4 = figures.plot_seed_spread(grid, ["digits_logreg"], ["a", "b"])
    assert len(fig4.axes) == 1
    plt.close("all")


def test_times_by_seed_and_by_study(grid):
    assert grid.seed_time("a", "digits_logreg", 2) == 60
    assert grid.seed_time("b", "digits_logreg", 1, "self") == math.inf
    with pytest.raises(ValueError, match="Invalid seed: 7"):
        grid.seed_time("a", "digits_logreg", 7)
    assert grid.study_time("a", "digits_logreg", 0, n=1) == 40
    assert grid.study_time("a", "digits_logreg", 1, n=1) == math.inf
    assert grid.study_time("a", "digits_logreg", 0, n=2) == 40
    with pytest.raises(ValueError, match=r"Invalid study: 1 \(1 studies of 2\)"):
        grid.study_time("a", "digits_logreg", 1, n=2)
    # the seed-0 study of all trials is the external time with one study of them all
    assert grid.scores_from(lambda s, w: grid.seed_time(s, w, 0)) == \
        grid.scores("external", n=2, studies=1)
    # the held-out rule: a time that misses the variant voids the base workload
    slow = grid.times_from(lambda s, w: math.inf if w.endswith("_raw") else 10.0)
    assert slow == {"a": {"digits_logreg": math.inf}, "b": {"digits_logreg": math.inf}}
    free = grid.times_from(lambda s, w: math.inf if w.endswith("_raw") else 10.0,
                           held_out=False)
    assert free == {"a": {"digits_logreg": 10.0}, "b": {"digits_logreg": 10.0}}


def test_sweep_figures_draw():
    import matplotlib.pyplot as plt

    rates = [1e-3, 1e-2, 1e-1]
    curves = {"digits_logreg": {"a": (rates, [[1.0, 1.1, 1.2], [0.3, 0.3, 0.4],
                                              [math.inf] * 3]),
                                "b": (rates, [[0.9, 0.9, 0.9], [0.5, 0.6, 0.7],
                                              [0.8, 0.9, math.inf]])}}
    fig = figures.plot_lr_curves(curves, {"one": ["a"], "two": ["b", "missing"]},
                                 {"digits_logreg": 2.3})
    # each row: a cell holding its family's legend, then one panel per workload
    key, panel, key2, panel2 = fig.axes
    assert not key.axison and key.get_legend().get_title().get_text() == "one"
    assert [t.get_text() for t in key2.get_legend().texts] == ["b"]   # "missing" not drawn
    assert panel.get_title() == panel2.get_title() == "logreg"        # every panel titled
    assert panel.get_ylim()[1] == pytest.approx(2.3 + 0.05 * (2.3 - 0.3))
    # the diverged rate is drawn at the top edge, with a cross
    marks = [line for line in panel.get_lines() if line.get_marker() == "x"]
    assert [list(m.get_xdata()) for m in marks] == [[1e-1]]
    grid = [[0.5, 0.4], [0.3, math.inf]]
    fig2 = figures.plot_lr_wd({"m": ([1e-3, 1e-2], [1e-2, 1e-1], grid)}, {"m": "decay"})
    assert fig2.axes[0].get_xlabel() == "decay"
    outlined = [p for p in fig2.axes[0].patches]
    assert len(outlined) == 1 and outlined[0].get_xy() == (-0.5, 0.5)   # row 1, column 0
    plt.close("all")


def test_a_study_is_its_own_consecutive_trials():
    records = [_record("external", "digits_logreg", "a", i, 0, t, 0.5)
               for i, t in enumerate([50, 20, 30, 60])]
    four = Results(records)
    assert [four.study_time("a", "digits_logreg", k, n=2) for k in (0, 1)] == [20, 30]
    assert [four.study_time("a", "digits_logreg", k, n=1) for k in range(4)] == \
        [50, 20, 30, 60]
