r"""The website's moving figures in Jupyter, drawn by optedu's rules.

The book's site runs its moving figures in the page (book/_static/interactive/figures.js, on
rules tested equal to optedu's). Five of them are here: the edge of stability, Lion, Muon's
Newton–Schulz step, a schedule times a rule, and clipping. Here are the same figures, the same problem,
start, steps and controls, run by optedu's classes in float64. In a reader's Jupyter kernel
with ipywidgets each control is a widget and the panels are redrawn as it moves; elsewhere
(the website, nbval, scripts: :func:`.landscapes._live`) one static figure shows the
default scene, the same that the page draws first, and stands for the moving figure in print
and for readers without scripts.

:data:`SCENES` states each figure's default scene once (the tests compare it with
figures.js, and with the small multiples of the chapters whose figure is
:func:`.landscapes.explore`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from optedu.lr_scheduler.cyclic import OneCycleLR
from optedu.lr_scheduler.schedules import linear_warmup_cosine, warmup_stable_decay
from optedu.optim.adam import Adam
from optedu.optim.lion import Lion
from optedu.optim.muon import NS_COEFFICIENTS, zeropower_via_newtonschulz
from optedu.optim.sgd import SGD
from optedu.training.clip import clip_grad_norm_
from . import landscapes
from .display import num

GREY = "#8a8a8a"


@dataclass(frozen=True)
class Control:
    """One control of a figure, as figures.js has it: a range from ``low`` to ``high``
    (``log``: over the logarithm; ``"1-"``: over that of one minus the value, for a β₂), a
    whole number (``whole``), or one of ``options`` (value, label)."""

    name: str
    label: str
    low: float = 0.0
    high: float = 1.0
    log: bool | str = False
    whole: bool = False
    options: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Scene:
    """A figure's default scene: its settings (the controls' values), the steps it runs and
    the start (``None`` where the figure has none)."""

    values: Mapping[str, Any]
    steps: int
    start: tuple[float, float] | None


#: figure -> its default scene, as figures.js draws it first
SCENES = {
    "momentum": Scene({"kappa": 100, "lr": 0.019, "mu": 0.9}, 150, (-0.9 * 12.0, 1.0)),
    "adam": Scene({"lr": 0.1, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "corrected": True},
                  200, (-1.5, 2.0)),
    "nesterov": Scene({"lr": 0.09, "mu": 0.9, "nesterov": True}, 200,
                      (-0.9 * 1.2 * math.sqrt(10), 1.0)),
    "adagrad": Scene({"lr": 0.5, "G0": 0, "alpha": 0.99}, 300, (-10.8, 1.0)),
    "schedules": Scene({"schedule": "wsd", "rule": "heavyBall", "lr": 0.05, "warmup": 0.1,
                        "minRatio": 0.1, "decay": 0.2}, 300, (-3.0, 1.5)),
    "muon": Scene({"ratio": 0.1, "angle": 30, "steps": 5, "coefficients": "quintic"}, 5, None),
    "edge_of_stability": Scene({"lr": 0.15, "u0": 4}, 200, (4.0, 0.1)),
    "lion": Scene({"rule": "lion", "lr": 0.05, "beta1": 0.9, "beta2": 0.99, "wd": 0}, 200,
                  (-0.9 * 1.2 * math.sqrt(10), 1.0)),
    "clipping": Scene({"lr": 0.003, "tau": 100}, 300, (-1.5, 2.0)),
}

#: figure -> its controls (the four figures of this module)
CONTROLS = {
    "edge_of_stability": (
        Control("lr", "learning rate η", 0.01, 0.3, log=True),
        Control("u0", "start u₀ (v₀ = 0.1)", 1, 5)),
    "lion": (
        Control("rule", "rule", options=(("lion", "Lion"),
                                         ("signDescent", "sign descent (Lion with β₁ = 0)"))),
        Control("lr", "learning rate η", 1e-3, 0.5, log=True),
        Control("beta1", "β₁ (the step's blend)", 0, 0.99),
        Control("beta2", "β₂ (the momentum kept)", 0.9, 0.9999, log="1-"),
        Control("wd", "weight decay λ", 0, 2)),
    "muon": (
        Control("ratio", "σ₂/σ₁ of the update", 1e-3, 1, log=True),
        Control("angle", "rotation of U (degrees)", 0, 180, whole=True),
        Control("steps", "Newton–Schulz steps k", 0, 5, whole=True),
        Control("coefficients", "polynomial", options=(("quintic", "quintic, torch's default"),
                                                       ("cubic", "classic cubic")))),
    "schedules": (
        Control("schedule", "schedule", options=(
            ("wsd", "warmup–stable–decay"), ("warmupCosine", "warmup + cosine"),
            ("oneCycle", "1cycle"), ("constant", "constant"))),
        Control("rule", "rule", options=(("heavyBall", "heavy ball (μ = 0.9)"),
                                         ("adam", "Adam"))),
        Control("lr", "peak rate η", 1e-3, 0.3, log=True),
        Control("warmup", "warmup (share of the steps)", 0, 0.5),
        Control("minRatio", "final rate / peak", 0, 1),
        Control("decay", "decay (share of the steps)", 0.05, 0.8)),
    "clipping": (
        Control("lr", "learning rate η", 1e-4, 0.01, log=True),
        Control("tau", "threshold τ", 0.1, 1000, log=True)),
}


# --- the problems, in float64 as the page computes them ---------------------------------------

def _normal(seed: int) -> Callable[[], float]:
    """The page's seeded normal deviates: mulberry32's uniforms, twelve summed, less 6."""
    state = seed & 0xFFFFFFFF

    def imul(a: int, b: int) -> int:
        return (a * b) & 0xFFFFFFFF

    def uniform() -> float:
        nonlocal state
        state = (state + 0x6D2B79F5) & 0xFFFFFFFF
        t = imul(state ^ (state >> 15), state | 1)
        t = (t ^ ((t + imul(t ^ (t >> 7), t | 61)) & 0xFFFFFFFF)) & 0xFFFFFFFF
        return ((t ^ (t >> 14)) & 0xFFFFFFFF) / 4294967296

    return lambda: sum(uniform() for _ in range(12)) - 6


def _bowl(kappa: float) -> landscapes.Surface:
    return landscapes.quadratic(1.0, float(kappa))


def _noisy(kappa: float = 10.0, sigma: float = 0.5, seed: int = 0):
    """½(x² + κy²) and a gradient with seeded noise of deviation σ (a fresh stream per call)."""
    normal = _normal(seed)
    return lambda x, y: (x + sigma * normal(), kappa * y + sigma * normal())


def _product() -> landscapes.Surface:
    def f(uv: torch.Tensor) -> torch.Tensor:
        return 0.5 * (uv[..., 0] * uv[..., 1] - 1) ** 2

    return landscapes.Surface(name="(uv − 1)²/2", f=f, minimum=None,
                              bounds=((-5.5, 5.5), (-3.0, 3.0)), start=(4.0, 0.1),
                              log_levels=True)


def sharpness(u: float, v: float) -> float:
    """The top eigenvalue of the Hessian of (uv − 1)²/2 at (u, v)."""
    a, c, b = v * v, u * u, 2 * u * v - 1
    return (a + c + math.sqrt((a - c) ** 2 + 4 * b * b)) / 2


def run(make: Callable[[list[torch.Tensor]], torch.optim.Optimizer], grad, loss, start,
        steps: int, rates: Sequence[float] | None = None,
        max_norm: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``steps`` steps of an optimizer from ``start`` on gradients ``grad(x, y)``, at the
    rates ``rates`` if given, each gradient clipped to norm ``max_norm`` if given; the
    iterates and losses, cut where the run leaves the surface (a loss not finite or above
    10⁶ times the first), as the page cuts them."""
    x = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    optimizer = make([x])
    points = [tuple(start)]
    for t in range(steps):
        if rates is not None:
            optimizer.param_groups[0]["lr"] = rates[t]
        x.grad = torch.tensor(grad(*x.tolist()), dtype=torch.float64)
        if max_norm is not None:
            clip_grad_norm_([x], max_norm)
        optimizer.step()
        points.append(tuple(x.tolist()))
    path = np.array(points)
    with torch.no_grad():
        values = loss(torch.from_numpy(path)).numpy()
    limit = 1e6 * max(1.0, values[0])
    bad = np.flatnonzero(~np.isfinite(values) | (values > limit))
    if bad.size:
        path, values = path[:bad[0]], values[:bad[0]]
    return path, values


def _gradient(surface: landscapes.Surface):
    return lambda x, y: tuple(surface.grad((x, y)))


def _num(x: float) -> str:
    """A number as figures.js's ``num`` words it where it can be infinite (a run cut short)."""
    return num(x, 3) if math.isfinite(x) else "∞"


def _ending(values: np.ndarray, steps: int) -> str:
    return (f"diverges at step {len(values)}" if len(values) <= steps
            else f"reaches loss {num(values[-1], 3)} after {steps} steps")


# --- drawing --------------------------------------------------------------------------------

def _panels(n: int):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, n, figsize=(3.4 * n, 3.0), layout="constrained")
    return fig, list(axes)


def _path(ax, path: np.ndarray, colour: str, **kw) -> None:
    ax.plot(path[:, 0], path[:, 1], color=colour, linewidth=kw.pop("linewidth", 1.3), **kw)
    ax.plot(*path[0], "o", color=colour, markersize=4)


def _curves(ax, series, ylabel: str, log: bool = True, xlabel: str = "step") -> None:
    for ys, style in series:
        ax.plot(np.arange(len(ys)), ys, **style)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def _check(name: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The figure's defaults updated by ``values``, each checked against its control."""
    settings = dict(SCENES[name].values)
    controls = {c.name: c for c in CONTROLS[name]}
    for key, value in values.items():
        if key not in controls:
            raise ValueError(f"Invalid setting: {key} (the {name} figure has "
                             f"{', '.join(controls)})")
        c = controls[key]
        if c.options:
            if value not in dict(c.options):
                raise ValueError(f"Invalid {key} value: {value!r}")
        elif not c.low <= value <= c.high:
            raise ValueError(f"Invalid {key} value: {value} (from {c.low} to {c.high})")
        settings[key] = value
    return settings


def edge_of_stability_panels(lr: float, u0: float) -> str:
    """Gradient descent on (uv − 1)²/2 from (u₀, 0.1): the path over the loss, the sharpness
    against 2/η, the loss. Returns the figure's sentence."""
    steps, surface = SCENES["edge_of_stability"].steps, _product()
    path, values = run(lambda p: SGD(p, lr=lr), _gradient(surface), surface,
                       (u0, 0.1), steps)
    sharp = [sharpness(u, v) for u, v in path]
    _, (ax_path, ax_sharp, ax_loss) = _panels(3)
    landscapes.plot_surface(surface, ax=ax_path, levels=20)
    for a, b in ((0.18, 5.5), (-5.5, -0.18)):           # the minima, uv = 1
        u = np.linspace(a, b, 60)
        ax_path.plot(u, 1 / u, ":", color="#444", linewidth=1)
    _path(ax_path, path, "C0")
    ax_path.set(xlabel="$u$", ylabel="$v$", title="the path; minima on $uv = 1$")
    _curves(ax_sharp, [(sharp, {"color": "C0", "linewidth": 2})], "sharpness", log=False)
    ax_sharp.axhline(2 / lr, color=GREY, linestyle="--", label="2/η")
    ax_sharp.set_ylim(0, 1.1 * max(2 / lr, *sharp))
    ax_sharp.legend(fontsize="small")
    ax_sharp.set_title("sharpness against 2/η")
    _curves(ax_loss, [(values, {"color": "C0"})], "loss")
    ax_loss.set_title("the loss")
    end = sharp[-1]
    settled = (f" at a minimum of sharpness {num(end, 3)}, "
               f"{'at or below' if end <= 2 / lr else 'above'} 2/η."
               if len(values) > steps else ".")
    return (f"Gradient descent with η = {num(lr, 3)} (2/η = {num(2 / lr, 3)}) from "
            f"u = {u0:.2f}, v = 0.1, where the sharpness is {num(sharp[0], 3)}: it "
            f"{_ending(values, steps)}{settled}")


def lion_panels(rule: str, lr: float, beta1: float, beta2: float, wd: float) -> str:
    """Lion (or sign descent) against Adam at the same rate on ½(x² + 10y²)."""
    scene, surface = SCENES["lion"], _bowl(10)
    betas = (beta1, beta2) if rule == "lion" else (0.0, 0.99)
    a_path, a_loss = run(lambda p: Lion(p, lr=lr, betas=betas, weight_decay=wd),
                         _gradient(surface), surface, scene.start, scene.steps)
    b_path, b_loss = run(lambda p: Adam(p, lr=lr), _gradient(surface), surface,
                         scene.start, scene.steps)
    name = (f"Lion (β₁ = {beta1:.2f}, β₂ = {beta2:.4g})" if rule == "lion"
            else "Sign descent")
    _side_by_side(surface, (a_path, a_loss), (b_path, b_loss), name, "Adam, same η")
    last = np.abs(a_path[-20:]).sum(axis=1)
    tail = last.max() if len(a_loss) > scene.steps else math.inf
    # still on its way: |x| + |y| fell at every one of the last 20 steps (as figures.js says)
    arriving = len(a_loss) > scene.steps and bool(np.all(np.diff(last) < 0))
    where = (f"it is still on its way, {num(last[-1], 3)} from the minimum in |x| + |y| "
             f"({num(last[-1] / lr, 3)} η)" if arriving
             else f"over its last 20 steps it stays within {_num(tail)} of the minimum in "
                  f"|x| + |y| ({_num(tail / lr)} η)")
    return (f"{name} with η = {num(lr, 3)} and λ = {wd:.2f} {_ending(a_loss, scene.steps)}; "
            f"{where}. Adam at the same η {_ending(b_loss, scene.steps)}.")


def _side_by_side(surface, ours, other, label: str, other_label: str, panels: int = 2):
    """Two runs over ``surface`` and their losses: the rule as set, and another in grey;
    returns the figure (``panels`` wide, the others left for the caller)."""
    fig, (ax_path, ax_loss, *_) = _panels(panels)
    landscapes.plot_surface(surface, ax=ax_path, levels=20)
    _path(ax_path, other[0], GREY, linestyle="--", label=other_label)
    _path(ax_path, ours[0], "C0", label=label)
    ax_path.legend(fontsize="x-small", loc="lower right")
    _curves(ax_loss, [(other[1], {"color": GREY, "linestyle": "--"}),
                      (ours[1], {"color": "C0", "linewidth": 2})], "loss")
    ax_loss.set_title("the loss")
    return fig


def _rotation(a: float) -> np.ndarray:
    return np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])


def muon_panels(ratio: float, angle: float, steps: int, coefficients: str) -> str:
    """Newton–Schulz on G = U diag(1, r) Vᵀ: the image of the unit circle under X₀ and Xₖ,
    and the singular values and the distance to UVᵀ against the step."""
    U, V = _rotation(math.radians(angle)), _rotation(math.radians(20))
    G, polar = U @ np.diag([1.0, ratio]) @ V.T, U @ V.T
    coef = NS_COEFFICIENTS if coefficients == "quintic" else (1.5, -0.5, 0.0)
    X = [zeropower_via_newtonschulz(torch.from_numpy(G), ns_coefficients=coef, ns_steps=k,
                                    dtype=torch.float64).numpy() for k in range(6)]
    sv = np.array([np.linalg.svd(x, compute_uv=False) for x in X])
    gap = [np.linalg.norm(x - polar) for x in X]
    _, (ax_circle, ax_values) = _panels(2)
    t = np.linspace(0, 2 * math.pi, 97)
    ring = np.stack([np.cos(t), np.sin(t)])
    ax_circle.plot(*ring, ":", color="#444", linewidth=1)
    ax_circle.plot(*(X[0] @ ring), "--", color=GREY, label="$X_0 = G/\\|G\\|$")
    ax_circle.plot(*(X[steps] @ ring), color="C0", linewidth=2, label=f"$X_{steps}$")
    ax_circle.set(xlim=(-1.6, 1.6), ylim=(-1.2, 1.2), aspect="equal",
                  xlabel="first coordinate", ylabel="second",
                  title="the unit circle through $X_0$ and $X_k$")
    ax_circle.legend(fontsize="x-small", loc="lower right")
    k = np.arange(6)
    ax_values.plot(k, sv[:, 0], "o-", color="C1", label="σ₁")
    ax_values.plot(k, sv[:, 1], "o-", color="C2", label="σ₂")
    ax_values.plot(k, gap, "o--", color="C3", label="‖Xₖ − UVᵀ‖")
    ax_values.axvline(steps, color=GREY, linewidth=0.8)
    ax_values.axhline(1, color=GREY, linewidth=0.8)
    ax_values.set_yscale("log")
    ax_values.set(xlabel="Newton–Schulz step", ylabel="singular value, distance",
                  title="against the step")
    ax_values.legend(fontsize="x-small")
    s1, s2 = sv[steps]
    return (f"An update with σ₂/σ₁ = {num(ratio, 3)}, U rotated by {round(angle)}°, after "
            f"{steps} Newton–Schulz step{'' if steps == 1 else 's'} of the {coefficients}: "
            f"its singular values are {num(float(s1), 3)} and {num(float(s2), 3)} (orthogonal: 1 and 1), "
            f"and it is {num(float(gap[steps]), 3)} from UVᵀ in the Frobenius norm. Turning U turns "
            "the circles and leaves these numbers as they are: each step acts on the singular "
            "values alone.")


def _round(x: float) -> int:
    return math.floor(x + 0.5)                             # JavaScript's Math.round


def schedule_rates(schedule: str, lr: float, steps: int, warmup: float, minRatio: float,
                   decay: float) -> list[float]:
    """The rate at each step under one of the figure's schedules, by optedu's schedules."""
    w, d = _round(warmup * steps), _round(decay * steps)
    if schedule == "constant":
        return [lr] * steps
    if schedule == "warmupCosine":
        return [lr * linear_warmup_cosine(t, warmup_steps=w, total_steps=steps,
                                          min_ratio=minRatio) for t in range(steps)]
    if schedule == "wsd":
        return [lr * warmup_stable_decay(t, warmup_steps=w, stable_steps=max(0, steps - w - d),
                                         decay_steps=d, min_ratio=minRatio)
                for t in range(steps)]
    opt = SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = OneCycleLR(opt, max_lr=lr, total_steps=steps,
                                               pct_start=max(warmup, 0.02),
                                               cycle_momentum=False)
    rates = []
    for t in range(steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        if t < steps - 1:
            scheduler.step()
    return rates


def schedules_panels(schedule: str, rule: str, lr: float, warmup: float, minRatio: float,
                     decay: float) -> str:
    """Heavy ball or Adam on the noisy quadratic under a schedule, against the constant peak
    rate: the rate, the paths, the loss (a mean over 15 steps)."""
    scene = SCENES["schedules"]
    steps, surface = scene.steps, dataclasses.replace(
        _bowl(10), name="noisy ½(x² + 10y²)", bounds=((-3.5, 3.5), (-2.0, 2.0)))
    rates = schedule_rates(schedule, lr, steps, warmup, minRatio, decay)
    make = ((lambda p: SGD(p, lr=lr, momentum=0.9)) if rule == "heavyBall"
            else (lambda p: Adam(p, lr=lr)))
    a_path, a_loss = run(make, _noisy(), surface, scene.start, steps, rates)
    b_path, b_loss = run(make, _noisy(), surface, scene.start, steps)
    _, (ax_rate, ax_path, ax_loss) = _panels(3)
    ax_rate.plot([lr] * steps, "--", color=GREY)
    ax_rate.plot(rates, color="C0", linewidth=2)
    ax_rate.set(ylim=(0, 1.05 * lr), xlabel="step", ylabel="rate $\\eta_t$",
                title="the rate")
    landscapes.plot_surface(surface, ax=ax_path, levels=15)
    _path(ax_path, b_path, GREY, linestyle="--", linewidth=1, label="constant peak rate")
    _path(ax_path, a_path, "C0", label="scheduled")

    def smooth(ys):
        return [np.mean(ys[max(0, i - 14):i + 1]) for i in range(len(ys))]

    _curves(ax_loss, [(smooth(b_loss), {"color": GREY, "linestyle": "--"}),
                      (smooth(a_loss), {"color": "C0", "linewidth": 2})],
            "loss, mean of 15 steps")
    ax_loss.set_title("the loss")
    # above the loss's tail, which falls from the top left: on the bowl it hid a path's swing
    ax_loss.legend(*ax_path.get_legend_handles_labels(), fontsize="x-small",
                   loc="upper right")

    def tail(ys):
        return np.mean(ys[-30:]) if len(ys) > steps else math.inf

    name = dict(CONTROLS["schedules"][0].options)[schedule]
    shares = {"wsd": f", warmup {_round(100 * warmup)}%, decay {_round(100 * decay)}% "
                     f"to {minRatio:.2f} of the peak",
              "warmupCosine": f", warmup {_round(100 * warmup)}%, to {minRatio:.2f} "
                              "of the peak",
              "oneCycle": f", rising over {_round(100 * max(warmup, 0.02))}%",
              "constant": ""}[schedule]
    # why the two differ: the noise floor, or a run still short of it (as figures.js says)
    why = ("the same run" if schedule == "constant"
           else "the same to three digits" if num(tail(a_loss), 3) == num(tail(b_loss), 3)
           else "the noise sets a floor that only a smaller rate lowers"
           if tail(a_loss) < tail(b_loss)
           else "here the schedule's lower rates slow the descent more than they lower the "
                "noise floor")
    return (f"{'Adam' if rule == 'adam' else 'Heavy ball'} at peak rate {num(lr, 3)} under "
            f"{name}{shares}, {_ending(a_loss, steps)}; its mean loss over the last 30 steps "
            f"is {_num(tail(a_loss))}, against {_num(tail(b_loss))} at the constant peak "
            f"rate ({why}).")


def clipping_panels(lr: float, tau: float) -> str:
    """Gradient descent on Rosenbrock's valley, each gradient clipped to norm τ, against the
    same without clipping: the paths, the losses, the gradient's norm against τ."""
    scene, surface = SCENES["clipping"], landscapes.rosenbrock()
    grad = _gradient(surface)
    ours = run(lambda p: SGD(p, lr=lr), grad, surface, scene.start, scene.steps,
               max_norm=tau)
    other = run(lambda p: SGD(p, lr=lr), grad, surface, scene.start, scene.steps)
    fig = _side_by_side(surface, ours, other, f"clipped to τ = {num(tau, 3)}",
                        "not clipped, same η", panels=3)
    norms = [[float(np.hypot(*grad(*q))) for q in path] for path, _ in (other, ours)]
    ax = fig.axes[2]
    _curves(ax, [(norms[0], {"color": GREY, "linestyle": "--"}),
                 (norms[1], {"color": "C0", "linewidth": 2})], "‖g‖ before clipping")
    ax.axhline(tau, color=GREY, linewidth=0.8)
    ax.set_title("the gradient's norm; τ")
    clipped = sum(n > tau for n in norms[1][:scene.steps])
    return (f"Gradient descent with η = {num(lr, 3)}, each gradient clipped to norm "
            f"τ = {num(tau, 3)}, {_ending(ours[1], scene.steps)}; {clipped} of its gradients "
            f"{'was' if clipped == 1 else 'were'} clipped. Not clipped, at the same η, it {_ending(other[1], scene.steps)}.")


PANELS: dict[str, Callable[..., str]] = {
    "edge_of_stability": edge_of_stability_panels, "lion": lion_panels, "muon": muon_panels,
    "schedules": schedules_panels, "clipping": clipping_panels}


def _widget(control: Control, value: Any):
    import ipywidgets

    style = {"description_width": "initial"}
    layout = ipywidgets.Layout(width="420px")
    common = {"description": control.label, "value": value, "continuous_update": False,
              "style": style, "layout": layout}
    if control.options:
        return ipywidgets.Dropdown(options=[(text, v) for v, text in control.options],
                                   value=value, description=control.label, style=style,
                                   layout=layout)
    if control.whole:
        return ipywidgets.IntSlider(min=int(control.low), max=int(control.high), **common)
    if control.log == "1-":  # a β₂: the slider runs over 1 − 10⁻ˢ
        options = sorted({0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9999, value})
        return ipywidgets.SelectionSlider(options=options, **common)
    if control.log:
        return ipywidgets.FloatLogSlider(min=math.log10(control.low),
                                         max=math.log10(control.high), step=0.01, **common)
    return ipywidgets.FloatSlider(min=control.low, max=control.high,
                                  step=(control.high - control.low) / 100, **common)


def show(name: str, *, live: bool | None = None, **values: Any) -> None:
    """Draw the moving figure ``name`` (one of :data:`PANELS`) at its default scene, or with
    ``values`` changed.

    In a reader's Jupyter kernel with ipywidgets (``live``, by default
    :func:`.landscapes._live`), one widget per control above the panels, which are redrawn
    with their sentence (the website's text alternative) as a control moves.
    """
    if name not in PANELS:
        raise ValueError(f"Invalid figure: {name!r} (one of {', '.join(PANELS)})")
    settings = _check(name, values)
    if live is None:
        live = landscapes._live()
    if not live:
        PANELS[name](**settings)
        return
    widgets = {c.name: _widget(c, settings[c.name]) for c in CONTROLS[name]}
    landscapes.show_live(widgets, lambda chosen: print(PANELS[name](**chosen)))
