"""A figure laid out for the width it is read at: the site's column on a laptop and on a phone.

A chapter draws its figures at the size that suits JupyterLab, often three panels side by side
about 700 px wide. The website's text column is narrower (:data:`DESKTOP_PX` at 1280 px,
:data:`PHONE_PX` on a 390 px phone), and a browser fits a wider image by shrinking it, its text
with it: a 10-point tick label becomes 7 px on a phone, which no one reads. So each figure is
drawn again at the column's width, its panels regridded into fewer columns (one on a phone)
with their shape kept, and its text keeps its size (:func:`relaid`). The figure's smallest text
is measured (:func:`smallest_text_px`) and written into the PNG with the phone drawing
(:func:`with_phone`), as are its panel columns on each screen (fewer on the phone: its panels
are stacked, and a caption's "left" and "right" read top to bottom), from which the site serves
each screen its own drawing (``book/_ext/phone_figures.py``) and the browser tests check the
text at reading size.
"""

from __future__ import annotations

import contextlib
import json
import math
import struct
import textwrap
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.legend import Legend

#: the width of the site's text column, in CSS px, in a 1280 px window and on a 390 px phone
#: (measured in Chromium on the built site: ``article`` less its padding)
DESKTOP_PX = 672
PHONE_PX = 342
#: the narrowest panel worth keeping beside another when a figure is regridded, in CSS px
PANEL_MIN_PX = 200
#: ... and of small multiples (a grid of several rows and columns), read at a glance
SMALL_MULTIPLE_MIN_PX = 160
#: the smallest text a reader should meet, in CSS px
READABLE_PX = 9.0
#: the least white between two panels side by side, their twins' labels and titles included,
#: in CSS px
GUTTER_PX = 8.0

#: PNG chunks: the phone drawing (private, ancillary, safe to copy) and the measures (tEXt)
PHONE_CHUNK = b"phOn"
MEASURES_KEY = "optedu-figure"


def smallest_text_px(fig: Figure) -> float | None:
    """The smallest font of the text ``fig`` draws, in CSS px at the figure's own size.

    Counts every visible, non-empty text: titles, labels, tick labels, legends, annotations.
    ``None`` for a figure without text.
    """
    from matplotlib.text import Text

    sizes = [float(t.get_fontsize()) for t in fig.findobj(Text)
             if t.get_visible() and t.get_text().strip() and _drawn(t)]
    return min(sizes) * fig.dpi / 72 if sizes else None


def _drawn(text) -> bool:
    """False for the tick labels matplotlib keeps but does not draw (outside the view)."""
    axis = getattr(text, "axes", None)
    if axis is None:
        return True
    ticks = [*axis.xaxis.get_ticklabels(), *axis.yaxis.get_ticklabels()]
    if not any(text is t for t in ticks):
        return True
    x, y = text.get_position()
    lo_x, hi_x = sorted(axis.get_xlim())
    lo_y, hi_y = sorted(axis.get_ylim())
    inside_x = lo_x - 1e-9 * abs(hi_x - lo_x) <= x <= hi_x + 1e-9 * abs(hi_x - lo_x)
    inside_y = lo_y - 1e-9 * abs(hi_y - lo_y) <= y <= hi_y + 1e-9 * abs(hi_y - lo_y)
    return inside_x if any(text is t for t in axis.xaxis.get_ticklabels()) else inside_y


def _grid(fig: Figure) -> tuple[list[list[Axes]], int, int] | None:
    """The figure's panels in reading order with their grid's shape, where they form one
    grid of single cells (``plt.subplots``); ``None`` otherwise (left as drawn). A panel is
    the axes of one cell, its twins (``twinx``) with it."""
    visible = [ax for ax in fig.axes if ax.get_visible()]
    specs = [ax.get_subplotspec() for ax in visible]
    if not specs or specs[0] is None:
        return None
    gridspec = specs[0].get_gridspec()
    cells: dict[int, list[Axes]] = {}
    for ax, spec in zip(visible, specs):
        if spec is None or spec.get_gridspec() is not gridspec or spec.num1 != spec.num2:
            return None
        cells.setdefault(spec.num1, []).append(ax)
    for axes in cells.values():
        first = axes[0]
        if any(first not in (*ax.get_shared_x_axes().get_siblings(ax),
                             *ax.get_shared_y_axes().get_siblings(ax)) for ax in axes[1:]):
            return None  # two unrelated axes in one cell: an inset, not a twin
    rows, cols = gridspec.get_geometry()
    return [cells[k] for k in sorted(cells)], rows, cols


@contextlib.contextmanager
def relaid(fig: Figure, width_px: float) -> Iterator[int | None]:
    """``fig`` drawn ``width_px`` CSS px wide while the block runs, then as it was; the block
    gets the number of panel columns drawn (``None`` for a figure that is not one grid).

    A figure no wider is left alone. A wider grid of panels is regridded into as many columns
    as fit panels of :data:`PANEL_MIN_PX` (one on a phone; :data:`SMALL_MULTIPLE_MIN_PX` for a
    grid of several rows and columns, two on a phone), each panel keeping its shape; the
    figure is then ``width_px`` wide and as tall as its rows. Text keeps its size in points.
    A figure that is not one grid of single cells is only narrowed, keeping its shape: its
    panels, however many, sit as they did on every screen, and its columns are ``None``.
    """
    from matplotlib.gridspec import GridSpec

    width_in, height_in = fig.get_size_inches()
    target_in = width_px / fig.dpi
    grid = _grid(fig)
    if width_in * fig.dpi <= width_px * 1.02:
        yield None if grid is None else min(grid[2], len(grid[0]))
        return
    saved_engine = fig.get_layout_engine()
    saved = [(ax, ax.get_subplotspec(), ax.get_position(original=True)) for ax in fig.axes]
    hidden_left = [ax for ax in fig.axes if _left_labels_hidden(ax)]
    legends: list[Legend] = [*fig.legends,
                             *(lg for lg in (ax.get_legend() for ax in fig.axes) if lg)]
    columns = [getattr(legend, "_ncols", 1) for legend in legends]
    labels = [[t.get_text() for t in legend.texts] for legend in legends]
    titles = _titles(fig)
    wording = [t.get_text() for t in titles]
    sizes = [t.get_fontsize() for t in titles]
    try:
        drawn = None
        if grid is None:  # narrowed; its own layout, if any, runs at the draw
            fig.set_size_inches(target_in, _height(height_in, width_in, target_in))
            _wrap(fig, titles)
            if saved_engine is None:
                _fit_legends(fig, legends)
                _tight(fig, _legend_room(fig))
        else:
            panels, rows, cols = grid
            smallest = PANEL_MIN_PX if min(rows, cols) == 1 else SMALL_MULTIPLE_MIN_PX
            new_cols = _columns(len(panels), min(cols, math.floor(width_px / smallest)))
            new_rows = math.ceil(len(panels) / new_cols)
            panel = _height(height_in / rows, width_in / cols, target_in / new_cols)
            fig.set_size_inches(target_in, panel * new_rows)
            layout = GridSpec(new_rows, new_cols, figure=fig)
            for k, cell in enumerate(panels):
                for ax in cell:
                    ax.set_subplotspec(layout[k // new_cols, k % new_cols])
                if k % new_cols == 0 and cell[0] in hidden_left:
                    cell[0].yaxis.set_tick_params(labelleft=True)
            # the figure's own engine would keep the old grid's spacing: lay the new one out
            with contextlib.suppress(RuntimeError):  # a colorbar ties it to its engine
                fig.set_layout_engine("none")
            _wrap(fig, titles)
            _fit_legends(fig, legends)
            _tight(fig, _legend_room(fig))
            _widen_gutters(fig, panels, new_cols)
            drawn = new_cols
        if grid is None:
            _fit_legends(fig, legends)
        yield drawn
    finally:
        if fig.get_layout_engine() is not saved_engine:
            fig.set_layout_engine(saved_engine if saved_engine is not None else "none")
        fig.set_size_inches(width_in, height_in)
        for ax, spec, position in saved:
            if spec is not None:
                ax.set_subplotspec(spec)
            ax.set_position(position)
        for ax in hidden_left:
            ax.yaxis.set_tick_params(labelleft=False)
        for text, words, size in zip(titles, wording, sizes):
            text.set_text(words)
            text.set_fontsize(size)
        for legend, ncols, texts in zip(legends, columns, labels):
            for text, label in zip(legend.texts, texts):
                text.set_text(label)
            if getattr(legend, "_ncols", ncols) != ncols:
                _reflow(legend, ncols)


def _height(height: float, width: float, narrower: float) -> float:
    """A panel's height once ``narrower`` wide: as tall as it was where that keeps it no
    taller than 1.3 times its width, never flatter than its old shape (text keeps its size,
    so a panel narrowed with its shape would leave its bars and curves no room)."""
    return max(height * narrower / width, min(height, 1.3 * narrower))


def _tight(fig: Figure, rect: tuple[float, float, float, float] = (0, 0, 1, 1)) -> None:
    """``tight_layout`` within ``rect`` without its warning where it cannot fit everything
    (the draw goes on, and the browser tests measure what it drew)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fig.tight_layout(rect=rect)


def _titles(fig: Figure) -> list:
    """The horizontal lines of text a panel cannot shrink: titles and x labels, the
    figure's own title and x label."""
    texts = [getattr(fig, name, None) for name in ("_suptitle", "_supxlabel")]
    for ax in fig.axes:
        texts += [getattr(ax, name, None) for name in ("title", "_left_title", "_right_title")]
        texts.append(ax.xaxis.label)
    # mathematics is left whole: a line break inside $...$ would not typeset
    return [t for t in texts if t is not None and t.get_text() and "$" not in t.get_text()]


def _wrap(fig: Figure, texts: list) -> None:
    """Each of ``texts`` wider than the panel it labels (the figure, for the figure's own)
    broken into lines that fit, between words only: a name is never cut (a reader would read
    ``CosineAnnealingWar`` / ``mRestarts`` as two words) nor split at its hyphens (``GPT-2``,
    ``torch-fused``). A word longer than its panel stands on its own line, in a smaller font
    where that makes it fit, never under :data:`READABLE_PX`."""
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]  # Agg, as drawn
    smallest = READABLE_PX * 72 / fig.dpi  # points
    for text in texts:
        ax = getattr(text, "axes", None)
        room = (ax.get_window_extent(renderer).width if ax is not None
                else fig.get_figwidth() * fig.dpi) * 1.1
        room = min(room, 0.98 * fig.get_figwidth() * fig.dpi)
        wide = text.get_window_extent(renderer).width
        if wide <= room:
            continue
        line = text.get_text()
        chars = max(12, int(max(map(len, line.splitlines())) * room / wide))
        text.set_text(_fill(line, chars))
        wide = text.get_window_extent(renderer).width
        size = text.get_fontsize()
        if wide > room and size > smallest:  # a word longer than the panel
            text.set_fontsize(max(smallest, size * room / wide))


def _fill(text: str, chars: int) -> str:
    """``text`` in lines of at most ``chars`` characters, broken between words only."""
    return textwrap.fill(text, chars, break_long_words=False, break_on_hyphens=False)


def _widen_gutters(fig: Figure, cells: list, cols: int) -> None:
    """More space between the columns where two panels side by side come closer than
    :data:`GUTTER_PX` (``tight_layout`` spaces the columns by the axes' own labels and can
    let a twin's tick labels on the right touch the next panel's, or its title)."""
    if cols < 2:
        return
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]  # Agg, as drawn
    for _ in range(4):
        boxes = [[ax.get_tightbbox(renderer) for ax in cell] for cell in cells]
        spans = [(min(b.x0 for b in bb), max(b.x1 for b in bb)) for bb in boxes]
        gaps = [spans[k + 1][0] - spans[k][1] for k in range(len(cells) - 1)
                if k % cols != cols - 1]
        deficit = GUTTER_PX - min(gaps, default=GUTTER_PX)  # figure px are CSS px
        if deficit <= 0:
            return
        params = fig.subplotpars
        axes_px = cells[0][0].get_window_extent(renderer).width
        fig.subplots_adjust(wspace=params.wspace + 1.1 * deficit / axes_px)


def _fit_legends(fig: Figure, legends: list) -> None:
    """Fewer columns for each legend wider than the figure (a row of six entries under two
    panels does not fit under one)."""
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]  # Agg, as drawn
    width = fig.get_figwidth() * fig.dpi
    for legend in legends:
        ncols = getattr(legend, "_ncols", 1)
        while ncols > 1 and legend.get_window_extent(renderer).width > 0.98 * width:
            ncols -= 1
            _reflow(legend, ncols)
        wide = legend.get_window_extent(renderer).width
        if ncols == 1 and wide > 0.98 * width:  # one column still too wide: wrap its labels
            longest = max((len(t.get_text()) for t in legend.texts), default=0)
            chars = max(12, int(longest * 0.9 * width / wide))
            for text in legend.texts:
                text.set_text(_fill(text.get_text(), chars))


def _reflow(legend, ncols: int) -> None:
    """``legend`` laid out again in ``ncols`` columns (``set_ncols`` alone changes nothing
    once a legend is built: matplotlib packs its box when it is made)."""
    legend.set_ncols(ncols)
    handles = list(legend.legend_handles)
    labels = [text.get_text() for text in legend.texts]
    title = legend.get_title()
    words, font = title.get_text(), title.get_fontproperties()
    legend._init_legend_box(handles, labels, True)
    # the rebuilt box holds a new, empty title that would keep a blank band: set it again
    legend.set_title(words, prop=font)
    legend._set_loc(legend._loc)  # the new box placed where the old one was
    legend.stale = True


def _legend_room(fig: Figure) -> tuple[float, float, float, float]:
    """The part of the figure the panels may take: the figure's own legends (``fig.legend``)
    keep the band they sit in, at the bottom or at the top."""
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]  # Agg, as drawn
    height = fig.get_figheight() * fig.dpi
    bottom, top = 0.0, 1.0
    for legend in fig.legends:
        box = legend.get_window_extent(renderer)
        share = (box.height + 4) / height
        if box.y0 + box.height / 2 < height / 2:
            bottom = max(bottom, share)
        else:
            top = min(top, 1 - share)
    return 0.0, bottom, 1.0, top


def _columns(panels: int, most: int) -> int:
    """The columns for ``panels`` in at most ``most`` columns: the fewest rows, then the rows
    as even as they can be (4 panels in at most 3 columns are 2 × 2, 5 are 3 + 2)."""
    rows = math.ceil(panels / max(1, most))
    return math.ceil(panels / rows)


def _left_labels_hidden(ax) -> bool:
    """The y tick labels hidden by ``sharey`` (a panel right of the first), not by choice."""
    shared = ax.get_shared_y_axes().get_siblings(ax)
    return len(shared) > 1 and ax.yaxis.get_tick_params().get("labelleft") is False


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def chunks(png: bytes) -> Iterator[tuple[bytes, bytes]]:
    """``(type, data)`` of each chunk of a PNG."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("Invalid png: it does not start with the PNG signature")
    at = 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at:at + 4])
        yield png[at + 4:at + 8], png[at + 8:at + 8 + length]
        at += 12 + length


def with_phone(desktop: bytes, phone: bytes | None, measures: dict) -> bytes:
    """The desktop PNG carrying ``measures`` (JSON in a tEXt chunk) and the phone PNG."""
    body = desktop[:-12]  # IEND, always last and empty
    if desktop[-8:-4] != b"IEND":
        raise ValueError("Invalid png: it does not end with IEND")
    text = MEASURES_KEY.encode("latin-1") + b"\0" + json.dumps(
        measures, sort_keys=True).encode("ascii")
    extra = _chunk(b"tEXt", text) + (_chunk(PHONE_CHUNK, phone) if phone else b"")
    return body + extra + desktop[-12:]


def split(png: bytes) -> tuple[bytes, bytes | None, dict | None]:
    """The desktop PNG without the phone drawing, the phone PNG (or ``None``), the measures."""
    desktop, phone, measures = [png[:8]], None, None
    for kind, data in chunks(png):
        if kind == PHONE_CHUNK:
            phone = data
            continue
        if kind == b"tEXt" and data.startswith(MEASURES_KEY.encode("latin-1") + b"\0"):
            measures = json.loads(data.split(b"\0", 1)[1])
        desktop.append(_chunk(kind, data))
    return b"".join(desktop), phone, measures
