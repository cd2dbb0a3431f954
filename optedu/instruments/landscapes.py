r"""Two-dimensional test surfaces, a trajectory runner and one way to draw them.

Every chapter of the book draws the same landscapes the same way, so trajectories of different
optimizers can be compared across chapters. A surface is a differentiable function of a tensor of
shape ``(2,)``; :func:`trajectory` runs any ``torch.optim``-compatible optimizer on it and records
the iterates.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from optedu.optim._validation import check_curvatures
from .display import minus_signs, num

OptimizerFactory = Callable[[Iterable[torch.Tensor]], torch.optim.Optimizer]


@dataclass(frozen=True)
class Surface:
    """A loss surface on the plane.

    Attributes:
        name: label for titles and legends.
        f: the loss, mapping a tensor of shape ``(..., 2)`` to a tensor of shape ``(...)``.
        minimum: a global minimiser, or ``None`` when the surface has none.
        bounds: ``((xmin, xmax), (ymin, ymax))``, the window drawn by default.
        start: a starting point that shows the surface's difficulty.
        log_levels: draw contours on a log scale (for surfaces with a wide range of values).
    """

    name: str
    f: Callable[[torch.Tensor], torch.Tensor]
    minimum: tuple[float, float] | None
    bounds: tuple[tuple[float, float], tuple[float, float]]
    start: tuple[float, float]
    log_levels: bool = False

    def __call__(self, xy: torch.Tensor) -> torch.Tensor:
        return self.f(xy)

    def grad(self, xy: Iterable[float]) -> np.ndarray:
        """The gradient at a point, by autograd, in float64."""
        point = torch.tensor(list(xy), dtype=torch.float64, requires_grad=True)
        (grad,) = torch.autograd.grad(self.f(point), point)
        return grad.numpy()

    def grid(self, n: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(X, Y, Z)`` on an ``n × n`` grid over ``bounds``, ready for ``contour``."""
        (x0, x1), (y0, y1) = self.bounds
        X, Y = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
        xy = torch.from_numpy(np.stack([X, Y], axis=-1))
        with torch.no_grad():
            Z = self.f(xy).numpy()
        return X, Y, Z


def quadratic(h1: float = 1.0, h2: float = 10.0, angle: float = 0.0) -> Surface:
    r"""The quadratic :math:`f(x) = \tfrac12 x^\top H x` with eigenvalues ``h1``, ``h2``.

    The eigenvectors are the axes rotated by ``angle`` (radians). With ``h1 < h2`` the condition
    number is :math:`\kappa = h_2/h_1` and the largest curvature :math:`L = h_2`.
    """
    check_curvatures(h1, h2)
    c, s = np.cos(angle), np.sin(angle)
    rotation = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    H = rotation @ torch.diag(torch.tensor([h1, h2], dtype=torch.float64)) @ rotation.T

    def f(xy: torch.Tensor) -> torch.Tensor:
        return 0.5 * torch.einsum("...i,ij,...j->...", xy, H.to(xy.dtype), xy)

    extent = 1.2 * max(1.0, np.sqrt(h2 / h1))
    return Surface(name=f"quadratic (κ = {h2 / h1:g})", f=f, minimum=(0.0, 0.0),
                   bounds=((-extent, extent), (-1.2 * 1.5, 1.2 * 1.5)),
                   start=(-0.9 * extent, 1.0))


def hessian(surface: Surface, xy: Iterable[float]) -> np.ndarray:
    """The 2×2 Hessian at a point, by autograd."""
    point = torch.tensor(list(xy), dtype=torch.float64)
    return torch.autograd.functional.hessian(surface.f, point).numpy()


def rosenbrock(a: float = 1.0, b: float = 100.0) -> Surface:
    r"""Rosenbrock's banana valley :math:`(a-x)^2 + b\,(y-x^2)^2`, minimum at :math:`(a, a^2)`."""

    def f(xy: torch.Tensor) -> torch.Tensor:
        x, y = xy[..., 0], xy[..., 1]
        return (a - x) ** 2 + b * (y - x**2) ** 2

    return Surface(name="Rosenbrock", f=f, minimum=(a, a**2),
                   bounds=((-2.0, 2.0), (-1.0, 3.0)), start=(-1.5, 2.0), log_levels=True)


def saddle() -> Surface:
    r"""A saddle at the origin with two minima: :math:`\tfrac12 x^2 - \tfrac12 y^2 + \tfrac14 y^4`.

    The origin is a critical point with Hessian ``diag(1, -1)``; the minima are :math:`(0, \pm 1)`.
    Starting exactly on the x-axis, gradient descent converges to the saddle; a tiny offset in
    ``y`` decides how long it lingers there.
    """

    def f(xy: torch.Tensor) -> torch.Tensor:
        x, y = xy[..., 0], xy[..., 1]
        return 0.5 * x**2 - 0.5 * y**2 + 0.25 * y**4

    return Surface(name="saddle", f=f, minimum=(0.0, 1.0),
                   bounds=((-2.0, 2.0), (-1.6, 1.6)), start=(-1.8, 1e-3))


def trajectory(surface: Surface, make_optimizer: OptimizerFactory, steps: int,
               start: Iterable[float] | None = None) -> np.ndarray:
    """Run an optimizer on ``surface`` from ``start`` and return the iterates, shape ``(steps+1, 2)``.

    ``make_optimizer`` receives the parameter list, e.g. ``lambda p: optedu.SGD(p, lr=0.1)``. The
    run is in float64; it stops early (the remaining rows are NaN) if the iterate becomes
    non-finite.
    """
    point = torch.tensor(list(surface.start if start is None else start), dtype=torch.float64,
                         requires_grad=True)
    optimizer = make_optimizer([point])
    path = np.full((steps + 1, 2), np.nan)
    path[0] = point.detach().numpy()
    for t in range(1, steps + 1):
        optimizer.zero_grad()
        surface.f(point).backward()
        optimizer.step()
        if not torch.isfinite(point).all():
            break
        path[t] = point.detach().numpy()
    return path


def losses(surface: Surface, path: np.ndarray) -> np.ndarray:
    """The loss at each row of a trajectory (NaN where the trajectory stopped)."""
    with torch.no_grad():
        return surface.f(torch.from_numpy(path)).numpy()


def plot_surface(surface: Surface, ax=None, levels: int = 30):
    """Draw the contours of ``surface`` (and its minimum) on ``ax``; return ``ax``."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4.5))
    X, Y, Z = surface.grid()
    if surface.log_levels:
        ax.contour(X, Y, np.log1p(Z - Z.min()), levels=levels, cmap="Greys", linewidths=0.7)
    else:
        ax.contour(X, Y, Z, levels=levels, cmap="Greys", linewidths=0.7)
    if surface.minimum is not None:
        ax.plot(*surface.minimum, marker="*", color="black", markersize=12, linestyle="none")
    ax.set_xlim(*surface.bounds[0])
    ax.set_ylim(*surface.bounds[1])
    ax.set_xlabel("$x$")
    ax.set_ylabel("$y$")
    ax.set_title(surface.name)
    return ax


def plot_trajectories(surface: Surface, paths: Mapping[str, np.ndarray], ax=None,
                      levels: int = 30):
    """Contours of ``surface`` with one labelled line per trajectory; return ``ax``."""
    ax = plot_surface(surface, ax=ax, levels=levels)
    for label, path in paths.items():
        ax.plot(path[:, 0], path[:, 1], marker="o", markersize=2.5, linewidth=1.2, label=label)
    ax.legend(loc="best", fontsize="small")
    return ax


def _live() -> bool:
    """Whether a reader's Jupyter kernel can show sliders (ipywidgets present, inside an
    IPython kernel, and not a batch run: run_notebooks, nbval and the tests set
    ``OPTEDU_STATIC``)."""
    if os.environ.get("OPTEDU_STATIC"):
        return False
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
        from ipykernel.zmqshell import ZMQInteractiveShell
    except ImportError:
        return False
    return isinstance(get_ipython(), ZMQInteractiveShell)  # Colab's shell too


def show_live(controls: Mapping[str, Any], draw: Callable[[dict[str, Any]], None]) -> None:
    """Show ipywidgets ``controls`` (name -> widget) above one output that
    ``draw(values)`` fills with a figure, redrawn whenever a control moves."""
    import ipywidgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    out = ipywidgets.Output()

    def redraw(_=None) -> None:
        with out:
            out.clear_output(wait=True)
            draw({name: c.value for name, c in controls.items()})
            plt.show()

    for control in controls.values():
        control.observe(redraw, names="value")
    display(ipywidgets.VBox([*controls.values(), out]))
    redraw()


def explore(surface: Surface, make_optimizer: Callable[..., OptimizerFactory],
            values: Mapping[str, Sequence[float]], steps: int, *,
            start: Iterable[float] | None = None, columns: int | None = None,
            live: bool | None = None) -> None:
    """Trajectories of one optimizer on ``surface`` as its hyperparameters vary.

    ``make_optimizer(**setting)`` returns an optimizer factory for one setting,
    e.g. ``lambda lr, momentum: lambda p: optedu.SGD(p, lr=lr,
    momentum=momentum)``; ``values`` lists the values of each hyperparameter.
    Every combination is run once, up front.

    In a reader's Jupyter kernel with ipywidgets, one panel is drawn with a
    slider per hyperparameter, redrawn as the sliders move. Elsewhere (the
    website, which has no kernel; nbval; scripts) the same runs are drawn as
    small multiples, one panel per combination, with the final loss in each
    title, ``columns`` to a row (default: one per value of the last
    hyperparameter, at most 4). ``live`` forces one or the other.
    """
    import itertools

    import matplotlib.pyplot as plt

    names = list(values)
    if not names or any(len(values[n]) == 0 for n in names):
        raise ValueError(f"Invalid values: {dict(values)} (each needs one value or more)")
    if steps < 1:
        raise ValueError(f"Invalid steps value: {steps}")
    combos = list(itertools.product(*(values[n] for n in names)))
    paths = {c: trajectory(surface, make_optimizer(**dict(zip(names, c))),
                           steps, start=start) for c in combos}

    def title(combo) -> str:
        setting = ", ".join(f"{n} {v}" if isinstance(v, bool) else f"{n} {v:g}"
                            for n, v in zip(names, combo))
        final = losses(surface, paths[combo])[-1]
        return minus_signs(f"{setting}\nloss {num(final, 3)}" if np.isfinite(final)
                           else f"{setting}\ndiverged")

    def draw(ax, combo) -> None:
        plot_surface(surface, ax=ax, levels=15)
        path = paths[combo]
        ax.plot(path[:, 0], path[:, 1], marker="o", markersize=2,
                linewidth=1.0, color="C0")
        ax.set_title(title(combo), fontsize="small")

    if live is None:
        live = _live()
    if live:
        import ipywidgets

        sliders = {n: ipywidgets.SelectionSlider(
            options=list(values[n]), value=values[n][len(values[n]) // 2],
            description=n, continuous_update=False) for n in names}
        show_live(sliders, lambda chosen: draw(plt.subplots(figsize=(5, 4))[1],
                                               tuple(chosen[n] for n in names)))
        return
    if columns is None:  # a grid: one column per value of the last hyperparameter
        columns = len(values[names[-1]]) if len(values[names[-1]]) <= 4 else 4
    rows = -(-len(combos) // columns)
    cols = min(columns, len(combos))
    fig, axes = plt.subplots(rows, cols, figsize=(2.3 * cols, 2.2 * rows),
                             squeeze=False, layout="constrained")
    for ax, combo in zip(axes.flat, combos):
        draw(ax, combo)
        ax.set_xlabel("$x$", fontsize="small")
        ax.set_ylabel("$y$", fontsize="small")
        ax.tick_params(labelsize="x-small")
    for ax in axes.flat[len(combos):]:
        ax.set_visible(False)
