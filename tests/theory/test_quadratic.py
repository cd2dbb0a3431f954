"""optedu.theory.quadratic's runner of SGD on a diagonal quadratic against the closed
forms."""

import numpy as np
import pytest

from optedu.theory import quadratic


def test_gradient_descent_multiplies_each_coordinate_by_one_minus_eta_h():
    h, lr, steps = np.array([1.0, 9.0, 19.0]), 0.1, 30
    path = quadratic.sgd_path(h, steps, lr=lr)
    expected = (1 - lr * h) ** np.arange(steps + 1)[:, None]
    np.testing.assert_allclose(path, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_follows_the_iteration_matrix(nesterov):
    h, lr, mu, steps = 4.0, 0.1, 0.8, 25
    path = quadratic.sgd_path([h], steps, lr=lr, momentum=mu, nesterov=nesterov)
    matrix = quadratic.iteration_matrix(h, lr=lr, momentum=mu,
                                        nesterov=nesterov)
    state = np.array([1.0, 0.0])    # torch's first step: M applied to b_0 = 0
    for t in range(1, steps + 1):
        state = matrix @ state
        assert path[t, 0] == pytest.approx(state[0], rel=1e-12, abs=1e-14)


def test_start_with_leading_axes_runs_independent_copies():
    start = np.array([[1.0, -2.0], [0.5, 3.0]])
    path = quadratic.sgd_path([1.0, 5.0], 10, lr=0.05, momentum=0.5,
                              start=start)
    assert path.shape == (11, 2, 2)
    alone = quadratic.sgd_path([1.0, 5.0], 10, lr=0.05, momentum=0.5,
                               start=start[1])
    np.testing.assert_array_equal(path[:, 1], alone)


def test_noise_is_seeded():
    a = quadratic.sgd_path([1.0], 50, lr=0.1, sigma=1.0, seed=3)
    b = quadratic.sgd_path([1.0], 50, lr=0.1, sigma=1.0, seed=3)
    c = quadratic.sgd_path([1.0], 50, lr=0.1, sigma=1.0, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("lr, mu", [(0.1, 0.0), (1.5, 0.0), (0.01, 0.9)])
def test_noise_floor_matches_the_stationary_variance(lr, mu):
    runs, steps, burn = 2000, 1500, 300
    path = quadratic.sgd_path([1.0], steps, lr=lr, momentum=mu, sigma=1.0,
                              start=np.zeros((runs, 1)))
    measured = (path[burn:] ** 2).mean()
    predicted = quadratic.stationary_variance(1.0, lr=lr, momentum=mu,
                                              nesterov=False)
    assert measured == pytest.approx(predicted, rel=0.03)
    if mu == 0:
        # ησ²/(h(2-ηh)) with h = σ = 1
        assert predicted == pytest.approx(lr / (2 - lr))
