r"""Numbers written for people: ``2.6 × 10⁻⁶`` rather than Python's ``2.6e-06``.

The chapters print and glue many small numbers (differences from torch, rates, losses). These
helpers give them one look everywhere, with Unicode superscripts so they read the same in a
notebook, in a terminal and on the website.

>>> sci(2.6e-06)
'2.6 × 10⁻⁶'
>>> num(0.004213)
'0.0042'
>>> num(123456.0)
'1.2 × 10⁵'
>>> bound(3.2e-16)
'< 10⁻¹⁵'
"""

from __future__ import annotations

import ast
import math
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def power_of_ten(exponent: int) -> str:
    """``10`` raised to ``exponent``, written with superscripts: ``power_of_ten(-6) == '10⁻⁶'``."""
    return "10" + str(int(exponent)).translate(_SUPERSCRIPT)


def sci(x: float, digits: int = 2) -> str:
    """``x`` in scientific notation with ``digits`` significant digits: ``'2.6 × 10⁻⁶'``.

    Zero is ``'0'``; infinities and NaN are written as Python writes them. A mantissa of 1 is
    kept (``'1.0 × 10⁻³'``), so numbers of one table line up.
    """
    if digits < 1:
        raise ValueError(f"Invalid digits: {digits}")
    if x == 0 or not math.isfinite(x):
        return "0" if x == 0 else str(x)
    mantissa, exponent = f"{x:.{digits - 1}e}".split("e")
    return f"{mantissa} × {power_of_ten(int(exponent))}"


def num(x: float, digits: int = 2) -> str:
    """``x`` with ``digits`` significant digits, plainly when ``10⁻³ ≤ |x| < 10⁴``, else :func:`sci`.

    Plain numbers keep their significant digits and drop nothing in front of them:
    ``num(0.004213) == '0.0042'``, ``num(37.26) == '37'``, ``num(1234.5) == '1200'``.
    """
    if digits < 1:
        raise ValueError(f"Invalid digits: {digits}")
    if x == 0 or not math.isfinite(x):
        return "0" if x == 0 else str(x)
    if not 1e-3 <= abs(x) < 1e4:
        return sci(x, digits)
    exponent = math.floor(math.log10(abs(float(f"{x:.{digits - 1}e}"))))
    decimals = digits - 1 - exponent
    if decimals < 0:  # keep only the significant digits of a large number: 1234.5 -> 1200
        return f"{round(x, decimals):.0f}"
    return f"{round(x, decimals):.{decimals}f}"


def bound(x: float) -> str:
    """A non-negative difference as the power of ten just above it: ``'0'``, ``'< 10⁻¹⁵'``, ...

    Stable across machines where the difference itself is not (it moves in its last bits).
    """
    if x < 0:
        raise ValueError(f"Invalid difference: {x} (expected a value >= 0)")
    if x == 0.0:
        return "0"
    if not math.isfinite(x):
        return str(x)
    return f"< {power_of_ten(math.floor(math.log10(x)) + 1)}"


# The key prefix under which MyST-NB finds values glued with ``display=False``.
GLUE_PREFIX = "application/papermill.record/"


def pasted(text: str, spec: str = "") -> str:
    """What ``{glue:text}`key:spec``` shows for a value whose ``text/plain`` is ``text``.

    The website's rule (MyST-NB's ``format_plain_text``), which the reader copies and the
    question bank follow too: ``text`` is read as a Python literal where it is one (a glued
    string's quotes go; ``'0.40'`` stays ``0.40``), then formatted with ``spec``, whose last
    character picks the type (``s`` text, ``d`` integer, ``f``/``e``/``g``/``%`` float).
    An unquoted text that reads as another literal is changed by that reading: ``10,000``
    becomes ``(10, 0)``; :func:`glue` refuses to store such a string.

    >>> pasted("'10,000'"), pasted("0.0073"), pasted("0.123", ".1%"), pasted("10,000")
    ('10,000', '0.0073', '12.3%', '(10, 0)')
    """
    try:
        value: object = ast.literal_eval(text)
    except (SyntaxError, ValueError):
        value = text
    if not spec:
        return str(value)
    kind = spec[-1]
    if kind == "s":
        value = str(value)
    elif kind in "bcdoxX":
        value = int(value)  # type: ignore[call-overload]
    elif kind in "eEfFgGn%":
        value = float(value)  # type: ignore[arg-type]
    return format(value, spec)


#: a hyphen-minus written as a minus sign: before a digit, not after a letter, digit, point,
#: closing bracket or hyphen (``x-1``, ``3-5``, ``1e-3``, ``64-128`` are left alone)
_HYPHEN_MINUS = re.compile(r"(?<![\w.)\]}\-])-(?=\d)")


def minus_signs(text: str) -> str:
    """``text`` with each hyphen used as a minus sign written as one:
    ``minus_signs("-0.03 to -0.01 (x-1, 3-5)") == '−0.03 to −0.01 (x-1, 3-5)'``."""
    return _HYPHEN_MINUS.sub("\u2212", text)


def glue(name: str, variable: object, display: bool = True) -> None:
    """Store ``variable``'s display under ``name`` for the prose, as ``myst_nb.glue`` does.

    The same output, byte for byte (a test compares the two), without its import cost:
    ``myst_nb.glue`` imports nbformat, whose jsonschema builds a URI grammar at import, about
    3 s of CPU in every chapter's kernel. Hidden values (``display=False``) carry the prefix
    MyST-NB reads; shown ones are displayed as usual.

    A string must paste as itself (:func:`pasted`): one whose ``repr`` drops its quotes, so
    that the website would read ``10,000`` as the tuple ``(10, 0)``, is refused. In a string,
    a hyphen used as a minus sign (before a digit, not inside a word, a range or a number:
    ``-0.03``, ``(-2.4–-2.2)``) is stored as the minus sign, ``−`` (:func:`minus_signs`).
    """
    from IPython.core.formatters import format_display_data
    from IPython.display import display as show

    if isinstance(variable, str) and _HYPHEN_MINUS.search(variable):
        variable = minus_signs(variable)
    bundle, metadata = format_display_data(variable)
    text = bundle.get("text/plain")
    if isinstance(variable, str) and (text is None or pasted(text) != variable):
        raise ValueError(f"Invalid glued string for {name!r}: {str(variable)!r} would show as "
                         f"{pasted(text or '')!r} (its repr must be a quoted string)")
    prefix = "" if display else GLUE_PREFIX
    metadata["scrapbook"] = {"name": name, "mime_prefix": prefix}
    show({prefix + key: value for key, value in bundle.items()}, raw=True, metadata=metadata)
    if _shown is not None and name in _shown and text != _shown[name]:
        shown, now = pasted(_shown[name]), pasted(text or "")
        show({"text/markdown": f"⚠ The text above says **{shown}** for `{name}`; this run "
                               f"computed **{now}**.",
              "text/plain": f"The text above says {shown} for {name}; this run computed {now}."},
             raw=True)


# Reader copies of the chapters (tools/reader.py, for JupyterLab) write glued values into their
# prose. A cell after the title, before any code, hands those values to reader_values(); glue()
# then flags a value that a re-run computes differently, since the prose cannot follow. None:
# not a reader copy.
_shown: dict[str, str] | None = None


def reader_values(values: dict[str, str] | str | None) -> None:
    """Tell :func:`glue` which ``text/plain`` the prose shows for each key (``None``: no prose).

    ``values`` is the dict, or the path of a reader copy, which keeps it in its metadata
    (``optedu_reader.shown``, tools/reader.py): a copy saved under another name, or moved
    away from its folder, flags nothing. From then on, a ``glue(name, value)`` whose ``value``
    displays as other text than the prose's adds a visible note under its cell: "The text
    above says X for `name`; this run computed Y." What glue stores for the website is
    unchanged.
    """
    global _shown
    if isinstance(values, str):
        import json
        from pathlib import Path

        path = Path(values)
        meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {}) \
            if path.is_file() else {}
        shown = meta.get("optedu_reader", {}).get("shown")
        _shown = None if shown is None else dict(shown)
    else:
        _shown = None if values is None else dict(values)


def palette_png(fig: Figure, colors: int = 128, scale: float = 1) -> bytes | None:
    """``fig`` as IPython shows it (PNG, tight box), re-coded with a palette of ``colors``.

    Line plots hold few colours: a 128-colour palette (fast octree, no dithering) looks the
    same and takes about 30–40 % of the bytes, in about 10 ms a figure, which keeps a page of
    many figures within the site's budget. ``scale=2`` draws at twice the resolution (as IPython's
    "retina" does), for high-density screens. ``None`` for an empty figure, as IPython returns.
    """
    import io

    from IPython.core.pylabtools import print_figure
    from PIL import Image

    if not 2 <= colors <= 256:
        raise ValueError(f"Invalid colors: {colors} (expected 2 to 256)")
    _check_scale(scale)
    raw = print_figure(fig, "png", bbox_inches="tight", dpi=fig.dpi * scale)
    if raw is None:
        return None
    image = Image.open(io.BytesIO(raw)).convert("RGB")
    image = image.quantize(colors, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _check_scale(scale: float) -> None:
    if not 1 <= scale <= 3:
        raise ValueError(f"Invalid scale: {scale} (expected 1 to 3)")


def _screen_png(fig: Figure, colors: int, scale: float) -> tuple[bytes, dict] | None:
    """A palette PNG with the size to show it at (``scale`` pixels per CSS pixel), drawn no
    wider than the site's column, carrying its phone drawing, its smallest text and its panel
    columns on each screen (:mod:`~.layouts`; ``None`` for a figure that is not one grid)."""
    from . import layouts

    desktop = _fitted(fig, colors, scale, layouts.DESKTOP_PX)
    if desktop is None:
        return None
    data, width, height, font, columns = desktop
    measures: dict = {"width": width, "font_px": font, "columns": columns}
    phone = None
    if width > layouts.PHONE_PX:
        drawn = _fitted(fig, colors, scale, layouts.PHONE_PX)
        if drawn is not None:
            (phone, measures["phone_width"], _, measures["phone_font_px"],
             measures["phone_columns"]) = drawn
    return layouts.with_phone(data, phone, measures), {"width": width, "height": height}


def _fitted(fig: Figure, colors: int, scale: float,
            column_px: int) -> tuple[bytes, int, int, float | None, int | None] | None:
    """``fig`` drawn for a column ``column_px`` wide: PNG, CSS width and height, smallest text,
    panel columns (:func:`~.layouts.relaid`).

    A legend or label outside the axes widens the tight box past the column: the figure is
    drawn once more, narrower by the excess.
    """
    import io

    from PIL import Image

    from . import layouts

    target, tries = float(column_px), 3
    while True:
        with layouts.relaid(fig, target) as columns:
            data = palette_png(fig, colors, scale)
            font = layouts.smallest_text_px(fig)
        if data is None:
            return None
        width, height = Image.open(io.BytesIO(data)).size
        css_width, css_height = round(width / scale), round(height / scale)
        tries -= 1
        if css_width <= column_px or not tries:
            return (data, css_width, css_height, None if font is None else round(font, 2),
                    columns)
        target = max(0.8 * column_px, target - (css_width - column_px))


def compact_figures(colors: int = 128, scale: float = 2) -> None:
    """From now on, show this kernel's matplotlib figures through :func:`palette_png`.

    By default at twice the resolution, with the display size in the output's metadata
    (Jupyter and the website show it at the usual size, crisp on high-density screens); the
    palette keeps the bytes about where a plain PNG at the usual resolution is.

    Outside IPython it does nothing. A Jupyter kernel sets up its inline backend, and with it
    the PNG formatter, when the first figure is made: one is made and closed here first, so
    that set-up cannot replace this formatter afterwards.
    """
    import matplotlib.pyplot as plt
    from IPython import get_ipython
    from matplotlib.figure import Figure

    _check_scale(scale)
    shell = get_ipython()
    if shell is not None:
        plt.close(plt.figure())
        formatter = shell.display_formatter.formatters["image/png"]
        formatter.for_type(Figure, lambda fig: _screen_png(fig, colors, scale))
