"""Numbers as the chapters print them: superscript powers of ten, significant digits, bounds."""

import math

import pytest

from optedu.instruments.display import (GLUE_PREFIX, bound, glue, num, pasted, power_of_ten,
                                        sci)


@pytest.mark.parametrize("x, expected", [
    (2.6e-06, "2.6 × 10⁻⁶"), (1e-3, "1.0 × 10⁻³"), (-4.2e5, "-4.2 × 10⁵"), (0.0, "0"),
    (math.inf, "inf"), (9.96e-7, "1.0 × 10⁻⁶"),
])
def test_sci(x, expected):
    assert sci(x) == expected


@pytest.mark.parametrize("x, digits, expected", [
    (0.004213, 2, "0.0042"), (37.26, 2, "37"), (37.26, 3, "37.3"), (1234.5, 2, "1200"),
    (0.1, 2, "0.10"), (9.99, 2, "10"), (0.000999, 2, "1.0 × 10⁻³"), (12345.0, 2, "1.2 × 10⁴"),
    (-0.0042, 2, "-0.0042"),
])
def test_num(x, digits, expected):
    assert num(x, digits) == expected


@pytest.mark.parametrize("x, expected", [
    (0.0, "0"), (3.2e-16, "< 10⁻¹⁵"), (1e-15, "< 10⁻¹⁴"), (0.5, "< 10⁰"),
])
def test_bound(x, expected):
    assert bound(x) == expected


def test_power_of_ten_uses_superscripts():
    assert power_of_ten(-12) == "10⁻¹²" and power_of_ten(3) == "10³"


@pytest.mark.parametrize("call", [lambda: sci(1.0, 0), lambda: num(1.0, 0), lambda: bound(-1.0)])
def test_bad_input_is_refused(call):
    with pytest.raises(ValueError):
        call()


@pytest.mark.full  # imports myst_nb (3 s of CPU)
@pytest.mark.parametrize("display", [True, False])
@pytest.mark.parametrize("value", [0.25, "2.6 × 10⁻⁶", [1, 2]])
def test_glue_outputs_what_myst_nb_glue_outputs(monkeypatch, value, display):
    """optedu's glue sends the display call myst_nb's sends, so the site reads it the same."""
    import IPython.display
    from myst_nb.ext import glue as myst_glue

    calls = []
    monkeypatch.setattr(IPython.display, "display", lambda *a, **k: calls.append((a, k)))
    monkeypatch.setattr(myst_glue, "ipy_display", lambda *a, **k: calls.append((a, k)))
    glue("key", value, display=display)
    myst_glue.glue("key", value, display=display)
    assert len(calls) == 2 and calls[0] == calls[1]
    assert calls[0][1]["metadata"]["scrapbook"]["name"] == "key"
    assert GLUE_PREFIX == myst_glue.GLUE_PREFIX


def test_palette_png_is_smaller_and_looks_the_same():
    """The palette copy has the default PNG's size in pixels, its pixels stay within two levels
    of 255 on average (fewer than 1 in 200 move by more than 32), and it takes well under
    the default's bytes."""
    import io

    import matplotlib.pyplot as plt
    import numpy as np
    from IPython.core.pylabtools import print_figure
    from PIL import Image

    from optedu.instruments.display import palette_png

    fig, ax = plt.subplots(figsize=(6, 2.5))
    x = np.linspace(0, 10, 400)
    for k in range(3):
        ax.plot(x, np.sin(x * (k + 1)), label=f"k = {k}")
    ax.set_xlabel("step")
    ax.legend()
    default, compact = print_figure(fig, "png", bbox_inches="tight"), palette_png(fig)
    plt.close(fig)
    a = np.asarray(Image.open(io.BytesIO(default)).convert("RGB"), dtype=int)
    b = np.asarray(Image.open(io.BytesIO(compact)).convert("RGB"), dtype=int)
    assert a.shape == b.shape
    error = np.abs(a - b).max(axis=2)
    assert error.mean() < 2.0 and (error > 32).mean() < 0.005
    assert len(compact) < 0.7 * len(default)
    with pytest.raises(ValueError, match="colors"):
        palette_png(fig, colors=1)
    with pytest.raises(ValueError, match="Invalid scale: 4"):
        palette_png(fig, scale=4)


def test_screen_png_is_twice_the_pixels_shown_at_the_usual_size():
    import io

    import matplotlib.pyplot as plt
    from PIL import Image

    from optedu.instruments.display import _screen_png, palette_png

    fig, ax = plt.subplots(figsize=(4, 2))
    ax.plot([0, 1], [1, 0])
    usual = Image.open(io.BytesIO(palette_png(fig))).size
    data, shown = _screen_png(fig, 128, 2)
    plt.close(fig)
    width, height = Image.open(io.BytesIO(data)).size
    assert abs(width - 2 * usual[0]) <= 2 and abs(height - 2 * usual[1]) <= 2
    assert shown == {"width": round(width / 2), "height": round(height / 2)}


@pytest.mark.full  # starts a Jupyter kernel (a few seconds)
def test_compact_figures_holds_in_a_real_kernel():
    """In a kernel, figures drawn after compact_figures() come out as palette PNGs (the
    kernel's own figure set-up, at the first figure, must not undo it)."""
    import base64
    import io

    import nbformat
    from nbclient import NotebookClient
    from PIL import Image

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
                    "import matplotlib.pyplot as plt\n"
                    "from optedu.instruments.display import compact_figures\ncompact_figures()"),
                nbformat.v4.new_code_cell("plt.plot([0, 1], [1, 0]);")]
    NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    [out] = [o for o in nb.cells[1].outputs if "image/png" in o.get("data", {})]
    image = Image.open(io.BytesIO(base64.b64decode(out["data"]["image/png"])))
    assert image.mode == "P"
    assert out["metadata"]["image/png"]["width"] == image.size[0] // 2


PASTES = [("'10,000'", "s"), ("10,000", "s"), ("'0.40'", ""), ("0.40", "s"), ("0.125", ".1%"),
          ("'0.125'", ".2f"), ("44", "d"), ("'2.6 × 10⁻⁶'", "s"), ("< 10⁻¹²", "s"),
          ("[1, 2]", "s"), ("True", "")]


@pytest.mark.full  # imports myst_nb (3 s of CPU)
@pytest.mark.parametrize("text, spec", PASTES)
def test_pasted_is_what_the_website_shows(text, spec):
    """The reader copies and the question bank paste a glued value by the website's rule."""
    from myst_nb.core.variables import format_plain_text

    assert pasted(text, spec) == format_plain_text(text, spec or "s")


@pytest.mark.parametrize("value", ["10,000", "0.40", "2.3, 1.5, 1.6", "< 10⁻¹²", "Adam"])
def test_a_glued_string_pastes_as_itself(monkeypatch, value):
    import IPython.display

    calls = []
    monkeypatch.setattr(IPython.display, "display", lambda *a, **k: calls.append(a))
    glue("key", value, display=False)
    (bundle,), = calls
    assert pasted(bundle[GLUE_PREFIX + "text/plain"]) == value


def test_a_string_that_would_paste_as_another_value_is_refused(monkeypatch):
    """A str whose repr drops its quotes: the website would read 10,000 as (10, 0)."""
    import IPython.display

    class Bare(str):
        def __repr__(self):
            return str(self)

    monkeypatch.setattr(IPython.display, "display", lambda *a, **k: None)
    with pytest.raises(ValueError, match=r"'n': '10,000' would show as '\(10, 0\)'"):
        glue("n", Bare("10,000"), display=False)
    glue("word", Bare("Adam"), display=False)  # reads as itself: accepted


def test_a_glued_hyphen_before_a_digit_becomes_a_minus_sign_and_nothing_else_does():
    from optedu.instruments.display import minus_signs

    assert minus_signs("-0.03 to -0.01, +0.2") == "−0.03 to −0.01, +0.2"
    assert minus_signs("-2.32 (-2.44–-2.23)") == "−2.32 (−2.44–−2.23)"
    for kept in ("3-5", "x-1", "1e-3", "64-128-10", "--lr-2", "GPT-2", "−1"):
        assert minus_signs(kept) == kept
