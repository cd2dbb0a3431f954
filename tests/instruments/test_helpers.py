"""The shared helpers the chapters rely on: the parity harness and the 2-D landscapes."""

import math

import numpy as np
import pytest
import torch

import optedu
from optedu.instruments import landscapes
from optedu.instruments.parity import compare, relative_difference, upper_bound


class _SlightlyWrongSGD(optedu.SGD):
    """SGD whose learning rate is off by one part in a million: parity must notice."""

    def update(self, param, grad, state, group):
        group = dict(group, lr=group["lr"] * (1 + 1e-6))
        super().update(param, grad, state, group)


class _ExtraStateSGD(optedu.SGD):
    def update(self, param, grad, state, group):
        super().update(param, grad, state, group)
        state["extra"] = torch.zeros(1)


def test_compare_detects_a_one_in_a_million_error():
    result = compare(_SlightlyWrongSGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9))
    assert not result.ok(1e-10)
    assert 1e-9 < result.worst < 1e-4


def test_compare_detects_different_state_keys():
    result = compare(_ExtraStateSGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9))
    assert not result.state_keys_match and not result.ok(1e-10)


def test_compare_checks_the_unused_parameter_stays_put():
    result = compare(optedu.SGD, torch.optim.SGD, dict(lr=0.1), with_unused=True)
    assert result.ok(0.0)


def test_relative_difference():
    a = torch.tensor([1.0, 2.0, float("nan")])
    assert relative_difference(a, a.clone()) == 0.0
    assert relative_difference(torch.tensor([1.0, 2.1]), torch.tensor([1.0, 2.0])) == pytest.approx(0.05)
    assert relative_difference(torch.tensor([1.0]), torch.tensor([0.0])) == math.inf
    assert relative_difference(torch.tensor([float("nan")]), torch.tensor([1.0])) == math.inf


@pytest.mark.parametrize("x, text", [(0.0, "0"), (2.3e-16, "< 1e-15"), (1e-15, "< 1e-14"),
                                     (0.04, "< 1e-1"), (math.inf, "inf")])
def test_upper_bound(x, text):
    assert upper_bound(x) == text


def test_quadratic_curvatures_and_gradient():
    q = landscapes.quadratic(1.0, 25.0, angle=0.3)
    eigenvalues = np.linalg.eigvalsh(landscapes.hessian(q, (0.4, -0.2)))
    assert np.allclose(eigenvalues, [1.0, 25.0])
    H = landscapes.hessian(q, (0.0, 0.0))
    assert np.allclose(q.grad((0.5, 1.0)), H @ np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="smallest=2.0, largest=1.0"):
        landscapes.quadratic(2.0, 1.0)


def test_surfaces_have_their_stated_minima():
    for surface in (landscapes.quadratic(), landscapes.rosenbrock(), landscapes.saddle()):
        assert np.allclose(surface.grad(surface.minimum), 0.0)
    saddle = landscapes.saddle()
    assert np.allclose(landscapes.hessian(saddle, (0.0, 0.0)), np.diag([1.0, -1.0]))


def test_trajectory_matches_a_hand_written_loop():
    q = landscapes.quadratic(1.0, 10.0)
    path = landscapes.trajectory(q, lambda p: optedu.SGD(p, lr=0.05), steps=20, start=(1.0, 1.0))
    x = np.array([1.0, 1.0])
    for t in range(1, 21):
        x = x - 0.05 * np.array([1.0, 10.0]) * x
        assert np.allclose(path[t], x, rtol=1e-12)
    assert np.allclose(landscapes.losses(q, path)[-1], 0.5 * (x[0] ** 2 + 10 * x[1] ** 2))


def test_trajectory_stops_when_it_diverges():
    q = landscapes.quadratic(1.0, 10.0)
    path = landscapes.trajectory(q, lambda p: optedu.SGD(p, lr=10.0), steps=2000)
    assert np.isnan(path[-1]).all() and np.isfinite(path[0]).all()


@pytest.mark.full  # 3000 steps
def test_adam_converges_on_rosenbrock():
    """A smoke test (never the proof): Adam walks Rosenbrock's valley to the minimum."""
    r = landscapes.rosenbrock()
    path = landscapes.trajectory(r, lambda p: optedu.Adam(p, lr=0.02), steps=3000)
    assert np.allclose(path[-1], r.minimum, atol=1e-2)


def test_plotting_draws_one_line_per_trajectory():
    import matplotlib.pyplot as plt

    q = landscapes.quadratic()
    paths = {name: landscapes.trajectory(q, lambda p, lr=lr: optedu.SGD(p, lr=lr), 10)
             for name, lr in [("a", 0.05), ("b", 0.1)]}
    ax = landscapes.plot_trajectories(q, paths)
    labels = [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert labels == ["a", "b"]
    plt.close("all")
