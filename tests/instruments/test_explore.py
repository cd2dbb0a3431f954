"""optedu.instruments.landscapes.explore: small multiples for the website, sliders in a reader's Jupyter."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

import optedu
from optedu.instruments import landscapes
from optedu.instruments.display import num


def sgd(lr, momentum):
    return lambda p: optedu.SGD(p, lr=lr, momentum=momentum)


VALUES = {"lr": [0.01, 0.05, 0.1], "momentum": [0.0, 0.9]}


def test_static_draws_one_panel_per_setting_with_its_final_loss():
    plt.close("all")
    surface = landscapes.quadratic(1.0, 10.0)
    landscapes.explore(surface, sgd, VALUES, steps=30, live=False, columns=4)
    fig = plt.gcf()
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert len(shown) == 6 and len(fig.axes) == 8  # 2 rows of 4, two left empty
    titles = [ax.get_title() for ax in shown]
    assert titles[0].startswith("lr 0.01, momentum 0") and titles[-1].startswith(
        "lr 0.1, momentum 0.9")
    # each title's loss is the loss where that run ends
    path = landscapes.trajectory(surface, sgd(0.05, 0.9), 30)
    final = landscapes.losses(surface, path)[-1]
    assert titles[3] == f"lr 0.05, momentum 0.9\nloss {num(final, 3)}"
    for ax in shown:
        assert ax.get_xlabel() and ax.get_ylabel()
    plt.close("all")


def test_static_marks_a_diverged_run():
    plt.close("all")
    surface = landscapes.quadratic(1.0, 10.0)
    landscapes.explore(surface, sgd, {"lr": [0.5], "momentum": [0.0]}, steps=400,
                       live=False)
    assert plt.gcf().axes[0].get_title().endswith("diverged")
    plt.close("all")


def test_live_builds_one_slider_per_hyperparameter(monkeypatch):
    ipywidgets = pytest.importorskip("ipywidgets")
    shown = []
    monkeypatch.setattr("IPython.display.display", shown.append)
    plt.close("all")
    landscapes.explore(landscapes.quadratic(1.0, 10.0), sgd, VALUES, steps=20, live=True)
    (box,) = shown
    sliders = [w for w in box.children if isinstance(w, ipywidgets.SelectionSlider)]
    assert [s.description for s in sliders] == ["lr", "momentum"]
    assert [list(s.options) for s in sliders] == [VALUES["lr"], VALUES["momentum"]]
    assert sliders[0].value == 0.05  # starts in the middle of the values
    plt.close("all")


def test_batch_runs_are_static(monkeypatch):
    monkeypatch.setenv("OPTEDU_STATIC", "1")
    assert not landscapes._live()
    monkeypatch.delenv("OPTEDU_STATIC")
    assert not landscapes._live()  # no IPython kernel under pytest


@pytest.mark.parametrize("values, steps", [({}, 10), ({"lr": []}, 10),
                                           ({"lr": [0.1]}, 0)])
def test_bad_input_is_refused(values, steps):
    with pytest.raises(ValueError, match="values|steps"):
        landscapes.explore(landscapes.quadratic(), lambda lr: None, values, steps,
                           live=False)


def test_paths_are_finite_where_they_converge():
    path = landscapes.trajectory(landscapes.quadratic(1.0, 10.0), sgd(0.05, 0.9), 30)
    assert np.isfinite(path).all()


def test_static_titles_write_a_negative_loss_with_a_minus_sign():
    plt.close("all")
    surface = landscapes.saddle()
    landscapes.explore(surface, sgd, {"lr": [0.01], "momentum": [0.9]}, steps=200,
                       live=False)
    title = plt.gcf().axes[0].get_title()
    final = landscapes.losses(surface, landscapes.trajectory(surface, sgd(0.01, 0.9), 200))[-1]
    assert final < 0 and title.endswith("loss \u2212" + num(-final, 3)), title
    assert "-" not in title
    plt.close("all")
