"""optedu.instruments.moving: the website's moving figures in Jupyter, and the static figure
that stands for each moving figure in print, at the scene the page draws first.

The scenes are stated once in the package (``moving.SCENES``); these tests hold them equal to
book/_static/interactive/figures.js (each figure's ``values``, steps and start) and to the
settings of the chapters' small multiples (``landscapes.explore``) that stand for the other
four figures. Seen failing: Lion's rate in SCENES set to 0.06, adagrad's small multiples
without the page's rate 0.5, the range check removed, a log slider made linear.
"""

from __future__ import annotations

import ast
import json
import math
import pathlib
import re

import matplotlib.pyplot as plt
import numpy as np
import pytest

from optedu.instruments import landscapes, moving

# the figures whose controls the quick tier moves (the full tier moves every figure's; lion,
# schedules and clipping redraw longer runs: 2.4 s of the quick tier's minute)
QUICK = ("edge_of_stability", "muon")

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = (ROOT / "book" / "_static" / "interactive" / "figures.js").read_text(encoding="utf-8")
#: figure -> (its chapter, the id of the static figure that stands for it)
FALLBACKS = {
    "momentum": ("momentum", "fig-momentum-explore"),
    "adam": ("adam", "fig-adam-explore"),
    "schedules": ("schedules", "fig-schedules-explore"),
    "muon": ("muon", "fig-muon-explore"),
    "nesterov": ("nesterov", "fig-nesterov-explore"),
    "adagrad": ("adagrad", "fig-adagrad-explore"),
    "edge_of_stability": ("edge_of_stability", "fig-eos-explore"),
    "lion": ("lion", "fig-lion-explore"),
    "clipping": ("clipping", "fig-clipping-explore"),
}


def _block(name: str) -> str:
    """figures.js's definition of one figure, up to the next."""
    start = SCRIPT.index(f"FIGURES.{name} = {{")
    ends = [i for i in (SCRIPT.find("\n  FIGURES.", start + 1),
                        SCRIPT.find("\n  // Chapter", start + 1),
                        SCRIPT.find("\n  // --- mounting", start + 1)) if i > 0]
    return SCRIPT[start:min(ends)]


def _js_object(text: str) -> dict:
    """A flat JavaScript object literal of numbers, strings and booleans, as a dict."""
    return json.loads(re.sub(r"(\w+):", r'"\1":', text))


def script_scene(name: str) -> tuple[dict, int | None, tuple | None]:
    """The figure's default values, its steps and its start, as figures.js writes them."""
    block = _block(name)
    values = _js_object(re.search(r"values: (\{[^}]*\})", block).group(1))
    steps = re.search(r"const steps = (\d+)", block)
    scope = {"Math": type("M", (), {"sqrt": math.sqrt, "max": max}), **values}
    extent = re.search(r"extent = (.+?)(?=, \w+ = |;)", block)
    if extent:
        scope["extent"] = eval(extent.group(1), scope)  # noqa: S307 (the book's own script)
    start = re.search(r"start = (\[[^\]]*\])", block)
    return (values, int(steps.group(1)) if steps else None,
            tuple(eval(start.group(1), scope)) if start else None)  # noqa: S307


def script_controls(name: str) -> dict[str, tuple]:
    """control name -> (min, max) or its options, as figures.js writes them."""
    block = _block(name).split("controls: [", 1)[1].split("\n    ],", 1)[0]
    found = {}
    for spec in re.split(r"\n      \{", block):
        kind = re.search(r'type: "(\w+)"', spec)
        named = re.search(r'name: "(\w+)"', spec)
        if not named or (kind and kind.group(1) == "button"):
            continue
        if kind and kind.group(1) == "select":
            listed = re.search(r"options: (\w+)", spec)  # a list the script names
            if listed:
                spec = SCRIPT[SCRIPT.index(f"const {listed.group(1)} = "):].split(";", 1)[0]
            found[named.group(1)] = tuple(re.findall(r'\["(\w+)", "', spec))
        elif kind:
            found[named.group(1)] = kind.group(1)
        else:
            lo, hi = (float(re.search(rf"{k}: ([-\de.]+)", spec).group(1))
                      for k in ("min", "max"))
            found[named.group(1)] = (lo, hi)
    return found


@pytest.mark.parametrize("name", list(FALLBACKS))
def test_the_scenes_are_the_pages(name):
    values, steps, start = script_scene(name)
    scene = moving.SCENES[name]
    assert dict(scene.values) == values
    if steps is not None:
        assert scene.steps == steps
    if start is not None:
        assert scene.start == pytest.approx(start, rel=1e-15)


@pytest.mark.parametrize("name", list(moving.PANELS))
def test_the_controls_are_the_pages(name):
    ours = {}
    for c in moving.CONTROLS[name]:
        ours[c.name] = tuple(v for v, _ in c.options) if c.options else (c.low, c.high)
    assert ours == script_controls(name)


def _figure_cell(chapter: str, label: str) -> str:
    cells = json.loads((ROOT / "book" / f"{chapter}.ipynb").read_text(encoding="utf-8"))
    for cell in cells["cells"]:
        if cell.get("metadata", {}).get("mystnb", {}).get("figure", {}).get("name") == label:
            return "".join(cell["source"])
    raise AssertionError(f"{chapter}: no figure {label}")


def _constants(chapter: str) -> dict:
    """The chapter's constants (NAME = literal, or a tuple of them), by name."""
    found = {}
    cells = json.loads((ROOT / "book" / f"{chapter}.ipynb").read_text(encoding="utf-8"))
    for cell in cells["cells"]:
        if cell["cell_type"] != "code":
            continue
        try:
            tree = ast.parse("".join(cell["source"]))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
                pairs = (zip(target.elts, value.elts) if isinstance(target, ast.Tuple)
                         and isinstance(value, ast.Tuple) else [(target, value)])
                for t, v in pairs:
                    if isinstance(t, ast.Name) and t.id.isupper():
                        try:
                            found[t.id] = ast.literal_eval(v)
                        except ValueError:
                            pass
    return found


#: the figures drawn by landscapes.explore: JavaScript name -> the explore call's
#: (its name or a constant of the chapter), and the rest of the scene's settings, which the
#: page compares against (e.g. Adam without bias correction) and the small multiples leave out
EXPLORED = {
    "momentum": {"kappa": None, "lr": "lr", "mu": "μ"},
    "adam": {"lr": 0.1, "beta1": "β1", "beta2": "β2", "eps": None, "corrected": None},
    "nesterov": {"lr": "LR_BOWL", "mu": "μ", "nesterov": "nesterov"},
    "adagrad": {"lr": "lr", "G0": "G0", "alpha": None},
}


@pytest.mark.parametrize("name", list(EXPLORED))
def test_the_small_multiples_include_the_pages_scene(name):
    """One panel of the chapter's small multiples is the page's default scene: the same
    steps and, for each setting the figure varies, the page's default among its values."""
    chapter, label = FALLBACKS[name]
    source = _figure_cell(chapter, label)
    constants = _constants(chapter)
    call = next(n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Call)
                and getattr(n.func, "attr", "") == "explore")
    grid = ast.literal_eval(call.args[2])
    steps = next(k.value for k in call.keywords if k.arg == "steps")
    steps = constants[steps.id] if isinstance(steps, ast.Name) else ast.literal_eval(steps)
    scene = moving.SCENES[name]
    assert steps == scene.steps
    for setting, theirs in EXPLORED[name].items():
        if theirs is None:
            continue
        if isinstance(theirs, float):
            assert f"lr={theirs}" in source
        elif theirs in grid:
            assert scene.values[setting] in grid[theirs], (setting, grid[theirs])
        else:
            assert constants[theirs] == scene.values[setting], setting


@pytest.mark.parametrize("name", list(moving.PANELS))
def test_static_draws_the_pages_scene(name):
    plt.close("all")
    moving.show(name, live=False)
    fig = plt.gcf()
    panels = {"edge_of_stability": 3, "lion": 2, "muon": 2, "schedules": 3,
              "clipping": 3}[name]
    assert len(fig.axes) == panels
    for ax in fig.axes:
        assert ax.get_xlabel() and ax.get_ylabel() and ax.lines
    scene = moving.SCENES[name]
    if scene.start is not None:  # the path drawn starts at the scene's start, runs its steps
        lines = [ln for ln in fig.axes[0 if name != "schedules" else 1].lines
                 if len(ln.get_xdata()) == scene.steps + 1]
        assert lines and all(np.allclose([ln.get_xdata()[0], ln.get_ydata()[0]], scene.start)
                             for ln in lines)
    plt.close("all")


def test_the_sentences_say_the_scene():
    sentence = moving.edge_of_stability_panels(**moving.SCENES["edge_of_stability"].values)
    assert sentence.startswith("Gradient descent with η = 0.150 (2/η = 13.3) from u = 4.00")
    assert "at or below 2/η" in sentence
    assert "diverges at step" in moving.edge_of_stability_panels(lr=0.3, u0=5)
    muon = moving.muon_panels(ratio=0.1, angle=30, steps=0, coefficients="quintic")
    assert "after 0 Newton–Schulz steps" in muon and "singular values are 0.995 and 0.0995" \
        in muon
    plt.close("all")


def test_the_rules_are_optedus():
    """The lion figure's run is optedu's Lion, step for step, on the page's bowl."""
    import optedu

    scene, surface = moving.SCENES["lion"], landscapes.quadratic(1.0, 10.0)
    path, _ = moving.run(lambda p: optedu.Lion(p, lr=0.05, betas=(0.9, 0.99)),
                         moving._gradient(surface), surface, scene.start, scene.steps)
    ours = landscapes.trajectory(surface, lambda p: optedu.Lion(p, lr=0.05, betas=(0.9, 0.99)),
                                 scene.steps, start=scene.start)
    assert np.array_equal(path, ours)


def test_clipping_clips_as_optedu_does():
    """Unclipped, the page's opening rate leaves the valley within a few steps; clipped to
    τ = 100 it does not, and every step clipped is at most τη long."""
    sentence = moving.clipping_panels(**moving.SCENES["clipping"].values)
    assert "reaches loss" in sentence.split(";")[0] and "diverges at step" in sentence
    surface, scene = landscapes.rosenbrock(), moving.SCENES["clipping"]
    path, _ = moving.run(lambda p: __import__("optedu").SGD(p, lr=0.003), moving._gradient(
        surface), surface, scene.start, scene.steps, max_norm=100)
    steps = np.linalg.norm(np.diff(path, axis=0), axis=1)
    assert steps.max() <= 100 * 0.003 * (1 + 1e-12)
    plt.close("all")


def test_the_schedules_are_optedus():
    rates = moving.schedule_rates("wsd", 0.05, 300, 0.1, 0.1, 0.2)
    assert rates[0] == pytest.approx(0.05 / 31) and rates[100] == 0.05
    assert rates[-1] == pytest.approx(0.05 * (0.1 + 0.9 / 60))
    cycle = moving.schedule_rates("oneCycle", 0.05, 300, 0.1, 0.1, 0.2)
    assert max(cycle) == pytest.approx(0.05) and cycle[0] == pytest.approx(0.05 / 25)


def test_live_builds_one_widget_per_control(monkeypatch):
    ipywidgets = pytest.importorskip("ipywidgets")
    shown, drawn = [], []
    monkeypatch.setattr("IPython.display.display", shown.append)
    monkeypatch.setitem(moving.PANELS, "lion", lambda **values: drawn.append(values) or "")
    plt.close("all")
    moving.show("lion", live=True)
    (box,) = shown
    *controls, out = box.children
    assert isinstance(out, ipywidgets.Output)
    assert [c.description for c in controls] == [c.label for c in moving.CONTROLS["lion"]]
    assert [c.value for c in controls] == list(moving.SCENES["lion"].values.values())
    assert isinstance(controls[0], ipywidgets.Dropdown)
    assert isinstance(controls[1], ipywidgets.FloatLogSlider)
    assert controls[1].value == pytest.approx(0.05)
    assert drawn == [dict(moving.SCENES["lion"].values)]
    controls[1].value = 0.1  # moving a control redraws with the new value
    assert len(drawn) == 2 and drawn[1]["lr"] == pytest.approx(0.1)
    plt.close("all")


@pytest.mark.parametrize("name, values, message", [
    ("rosenbrock", {}, "Invalid figure"),
    ("lion", {"beta3": 0.9}, "Invalid setting: beta3"),
    ("lion", {"lr": 5.0}, "Invalid lr value: 5.0"),
    ("schedules", {"schedule": "step"}, "Invalid schedule value"),
])
def test_bad_input_is_refused(name, values, message):
    with pytest.raises(ValueError, match=message):
        moving.show(name, live=False, **values)


def _drawing() -> tuple:
    """Every line's data on the current figure, and the axes' limits."""
    fig = plt.gcf()
    return tuple((ax.get_xlim(), ax.get_ylim(),
                  tuple((tuple(np.round(ln.get_xdata(), 12)), tuple(np.round(ln.get_ydata(), 12)))
                        for ln in ax.lines)) for ax in fig.axes)


@pytest.mark.parametrize("name", [pytest.param(n, marks=[] if n in QUICK else pytest.mark.full)
                                  for n in moving.PANELS])
def test_every_control_changes_the_drawing(name, monkeypatch):
    """In a reader's kernel, moving any one control from the opening scene redraws the
    panels differently (the live path: the widgets show builds, moved one at a time).
    Seen failing with lion_panels ignoring its β₂."""
    pytest.importorskip("ipywidgets")
    shown, drawings = [], []
    monkeypatch.setattr("IPython.display.display", shown.append)
    monkeypatch.setattr(plt, "show", lambda *a, **k: (drawings.append(_drawing()),
                                                     plt.close("all")))
    plt.close("all")
    moving.show(name, live=True)
    (box,) = shown
    *controls, _ = box.children
    for control, spec in zip(controls, moving.CONTROLS[name]):
        old = control.value
        if spec.options:
            new = next(v for v, _ in reversed(spec.options) if v != old)
        else:
            new = spec.low if old != spec.low else spec.high
            if spec.log and not spec.whole:  # the log slider's middle, a rate that runs
                new = math.sqrt(spec.low * spec.high) if spec.log is True else 0.9999
        control.value = new
        assert drawings[-1] != drawings[0], f"{name}: moving {spec.name} changed nothing"
        control.value = old
        assert drawings[-1] == drawings[0]
    plt.close("all")


def test_the_sentences_are_the_pages():
    """The Jupyter sentence says what figures.js's text alternative says, in each case that
    the page's sentence distinguishes."""
    page = re.sub(r"[`\"]\s*\+\s*[`\"]", "", SCRIPT)  # the script's strings, joined
    lion = moving.lion_panels(rule="lion", lr=0.002, beta1=0.9, beta2=0.99, wd=0)
    assert "it is still on its way" in lion and "it is still on its way" in page
    assert "over its last 20 steps it stays within" in moving.lion_panels(
        **moving.SCENES["lion"].values)
    muon = moving.muon_panels(**moving.SCENES["muon"].values)
    tail = "Turning U turns the circles and leaves these numbers as they are"
    assert tail in muon and tail in page
    for values, why in [({}, "the noise sets a floor that only a smaller rate lowers"),
                        ({"schedule": "constant"}, "the same run"),
                        ({"rule": "adam", "lr": 0.01}, "here the schedule's lower rates slow "
                         "the descent more than they lower the")]:
        sentence = moving.schedules_panels(**{**moving.SCENES["schedules"].values, **values})
        assert f"({why}" in sentence and why in page
    assert "1 of its gradients was clipped" in moving.clipping_panels(lr=0.001, tau=100)
    assert '${clipped === 1 ? "was" : "were"} clipped' in page
    assert moving._num(math.inf) == "∞" and 'return "∞"' in SCRIPT  # a run cut short
    plt.close("all")


def _caption(chapter: str, figure: str) -> str:
    cells = json.loads((ROOT / "book" / f"{chapter}.ipynb").read_text(encoding="utf-8"))["cells"]
    (caption,) = [c["metadata"]["mystnb"]["figure"]["caption"] for c in cells
                  if c.get("metadata", {}).get("mystnb", {}).get("figure", {}).get("name")
                  == figure]
    return caption


def test_the_captions_state_the_scene():
    """The captions of the static figures type the scene's settings (a caption cannot glue):
    each is checked against SCENES here."""
    s = {name: scene.values for name, scene in moving.SCENES.items()}
    expected = {
        "edge_of_stability": [f"\\eta = {s['edge_of_stability']['lr']}",
                              f"{moving.SCENES['edge_of_stability'].steps} steps",
                              f"(u, v) = ({s['edge_of_stability']['u0']}, 0.1)"],
        "lion": [f"\\eta = {s['lion']['lr']}", f"\\beta_1 = {s['lion']['beta1']}",
                 f"\\beta_2 = {s['lion']['beta2']}", "no decay",
                 f"{moving.SCENES['lion'].steps} steps"],
        "muon": [f"diag}}(1, {s['muon']['ratio']})", f"rotated by {s['muon']['angle']}°",
                 "Five Newton–Schulz steps", "quintic"],
        "schedules": [f"peak rate {s['schedules']['lr']}", "warmup–stable–decay",
                      f"warmup {round(100 * s['schedules']['warmup'])}%",
                      f"last {round(100 * s['schedules']['decay'])}%",
                      f"to {s['schedules']['minRatio']} of the peak",
                      f"{moving.SCENES['schedules'].steps} steps", "\\mu = 0.9"],
        "clipping": [f"\\eta = {s['clipping']['lr']}", f"\\tau = {s['clipping']['tau']}",
                     f"{moving.SCENES['clipping'].steps} steps", "(-1.5, 2)"],
    }
    assert moving.SCENES["muon"].values["steps"] == 5
    assert moving.SCENES["clipping"].start == (-1.5, 2.0)
    for name, parts in expected.items():
        caption = _caption(*FALLBACKS[name])
        for part in parts:
            assert part in caption, f"{name}: {part!r} not in its caption"
