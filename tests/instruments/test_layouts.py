"""optedu.instruments.layouts: a figure drawn for the column it is read in, its text measured."""

import io

import matplotlib
import numpy as np
import pytest

matplotlib.use("agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402

from optedu.instruments import display, layouts  # noqa: E402


def _row(panels=3, width=12.0, sharey=True, fontsize=None):
    fig, axes = plt.subplots(1, panels, figsize=(width, 3.6), sharey=sharey,
                             squeeze=False)
    axes = axes[0]
    x = np.linspace(0, 10, 50)
    for i, ax in enumerate(axes):
        ax.plot(x, np.sin(x + i), label="sin")
        ax.set_title(f"panel {i}")
        if fontsize:
            ax.tick_params(labelsize=fontsize)
    axes[-1].legend(fontsize=8)
    fig.tight_layout()
    return fig, axes


def _size(png):
    return Image.open(io.BytesIO(png)).size


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_a_wide_row_is_drawn_at_the_column_and_stacked_for_a_phone():
    fig, axes = _row()
    before = [ax.get_position().bounds for ax in axes]
    png, shown = display._screen_png(fig, 128, 2)
    desktop, phone, measures = layouts.split(png)
    assert shown["width"] <= layouts.DESKTOP_PX * 1.02  # was 12 in, about 1,150 px
    assert measures["phone_width"] <= layouts.PHONE_PX * 1.02
    width, height = _size(phone)
    assert height > 2.5 * width  # three panels, one above the other
    # the legend's 8 points at 100 dpi, at full size on both screens
    assert measures["font_px"] == measures["phone_font_px"] == pytest.approx(8 * 100 / 72, 0.01)
    # the figure itself is left as it was drawn
    assert [ax.get_position().bounds for ax in axes] == before
    assert tuple(fig.get_size_inches()) == (12.0, 3.6)


def test_sharey_labels_hidden_beside_the_first_panel_show_once_it_is_above():
    fig, axes = _row()
    assert layouts._left_labels_hidden(axes[1])
    with layouts.relaid(fig, layouts.PHONE_PX):
        fig.canvas.draw()
        assert all(t.get_visible() for t in axes[1].yaxis.get_ticklabels())
    assert layouts._left_labels_hidden(axes[1])


def test_a_figure_that_fits_is_drawn_as_it_is():
    fig, _ = _row(panels=2, width=5.0)
    plain = display.palette_png(fig, 128, 2)
    png, _ = display._screen_png(fig, 128, 2)
    desktop, phone, measures = layouts.split(png)
    assert desktop[:-12].startswith(plain[:-12][:1000]) and _size(desktop) == _size(plain)
    assert phone is not None and measures["width"] < layouts.DESKTOP_PX


@pytest.mark.parametrize("panels, most, columns", [(4, 3, 2), (3, 3, 3), (5, 3, 3), (6, 3, 3),
                                                    (7, 3, 3), (2, 1, 1), (4, 0, 1)])
def test_columns_leave_the_fewest_empty_cells(panels, most, columns):
    assert layouts._columns(panels, most) == columns


def test_the_smallest_text_counts_tick_labels_in_view_only():
    fig, axes = _row(panels=1, width=4.0, sharey=False, fontsize=5)
    fig.canvas.draw()
    assert layouts.smallest_text_px(fig) == pytest.approx(5 * 100 / 72)
    axes[0].tick_params(labelsize=12)
    axes[0].set_title("t", fontsize=12)
    axes[0].get_legend().remove()
    fig.canvas.draw()
    assert layouts.smallest_text_px(fig) == pytest.approx(12 * 100 / 72)


def test_chunks_round_trip_and_a_bad_png_is_refused():
    fig, _ = _row()
    plain = display.palette_png(fig, 128, 2)
    both = layouts.with_phone(plain, b"\x89PNG-phone", {"font_px": 11.1})
    desktop, phone, measures = layouts.split(both)
    assert phone == b"\x89PNG-phone" and measures == {"font_px": 11.1}
    assert Image.open(io.BytesIO(both)).size == _size(plain)  # readers ignore the chunk
    with pytest.raises(ValueError, match="signature"):
        list(layouts.chunks(b"GIF89a"))
    with pytest.raises(ValueError, match="IEND"):
        layouts.with_phone(plain[:-12], None, {})


def test_twins_move_with_their_panel_and_a_wide_legend_takes_fewer_columns():
    fig, axes = _row(sharey=False)
    twin = axes[1].twinx()
    twin.plot([0, 10], [5, 6], color="C1")
    names = ["torch", "torch-foreach", "torch-fused", "optedu", "optedu-foreach", "compiled"]
    legend = fig.legend([axes[0].lines[0]] * 6, names, loc="lower center", ncol=6)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    with layouts.relaid(fig, layouts.PHONE_PX):
        fig.canvas.draw()
        assert twin.get_subplotspec().num1 == axes[1].get_subplotspec().num1 == 1
        assert twin.get_position().bounds == pytest.approx(axes[1].get_position().bounds)
        renderer = fig.canvas.get_renderer()
        assert legend._ncols < 6
        assert legend.get_window_extent(renderer).width <= fig.get_figwidth() * fig.dpi
        lowest = min(ax.get_position().y0 for ax in axes)
        assert legend.get_window_extent(renderer).y1 / fig.bbox.height < lowest  # no overlap
    assert legend._ncols == 6


def test_a_label_wider_than_a_phone_is_wrapped_and_restored():
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.barh(range(3), [1, 2, 3])
    label = "GB for N = 7 × 10⁹ parameters (Adam, no activations, no buffers)"
    ax.set_xlabel(label)
    ax.set_ylabel("$y$ regime")
    fig.tight_layout()
    with layouts.relaid(fig, layouts.PHONE_PX):
        assert "\n" in ax.get_xlabel() and ax.get_xlabel().replace("\n", " ") == label
        assert fig.get_figheight() >= 3.6 * 0.99  # narrowed, not flattened
    assert ax.get_xlabel() == label
    png, _ = display._screen_png(fig, 128, 2)
    assert layouts.split(png)[2]["phone_width"] <= layouts.PHONE_PX * 1.02


def _zoo(titles, twins=()):
    """A 2 × 4 grid of small panels, as the schedules chapter draws its schedulers."""
    fig, axes = plt.subplots(2, 4, figsize=(7, 3.8), sharex=True)
    x = np.arange(100)
    for k, (ax, title) in enumerate(zip(axes.flat, titles)):
        ax.plot(x, np.cos(x / 10 + k))
        ax.set_title(title, fontsize=6.5)
        ax.tick_params(labelsize=6.5)
        if k in twins:
            twin = ax.twinx()
            twin.plot(x, 0.9 + 0.05 * np.sin(x / 7))
            twin.tick_params(labelsize=6.5)
    fig.tight_layout()
    return fig, axes


def test_a_name_longer_than_its_panel_is_never_cut_and_still_fits():
    name = "CosineAnnealingWarmRestarts"
    titles = ["CosineAnnealingLR (T=40)", name, "CyclicLR (triangular2)", "CyclicLR (exp_range)",
              "OneCycleLR (cos)", "SequentialLR (linear-cosine)", "a b", "c d"]
    fig, axes = _zoo(titles)
    axes.flat[1].title.set_fontsize(8)
    with layouts.relaid(fig, layouts.PHONE_PX):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        for ax, title in zip(axes.flat, titles):
            lines = ax.get_title().splitlines()
            assert " ".join(lines) == title  # broken between words only, hyphens kept
        title = axes.flat[1].title
        assert title.get_text() == name
        assert layouts.READABLE_PX * 72 / fig.dpi - 1e-9 <= title.get_fontsize() < 8  # smaller
        box = title.get_window_extent(renderer)
        assert 0 <= box.x0 and box.x1 <= fig.bbox.width  # on the figure
        neighbour = axes.flat[0].get_tightbbox(renderer)
        assert neighbour.x1 < box.x0  # clear of the panel on its left
        assert layouts.smallest_text_px(fig) >= layouts.READABLE_PX - 1e-9
    assert axes.flat[1].get_title() == name and axes.flat[1].title.get_fontsize() == 8


def test_a_twins_labels_keep_a_gutter_from_the_next_panel():
    titles = ["a", "b", "c", "d", "OneCycleLR (cos)", "SequentialLR (linear, cosine)", "e", "f"]
    fig, _ = _zoo(titles, twins=(2, 4))
    with layouts.relaid(fig, layouts.PHONE_PX):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        panels, _, cols = layouts._grid(fig)
        assert cols == 2
        spans = [(min(ax.get_tightbbox(renderer).x0 for ax in cell),
                  max(ax.get_tightbbox(renderer).x1 for ax in cell)) for cell in panels]
        gaps = [spans[k + 1][0] - spans[k][1] for k in range(0, len(spans), 2)]
        assert min(gaps) >= layouts.GUTTER_PX - 0.1, gaps


@pytest.mark.parametrize("title", [None, "runs"])
def test_a_reflowed_legend_is_as_tall_as_one_built_with_its_columns(title):
    """_reflow rebuilds the legend's box: without its title set again, an empty title kept a
    blank band above the entries (a reflowed legend was taller than one built so)."""
    def legend(ncols):
        fig, ax = plt.subplots(figsize=(6, 3))
        for i in range(4):
            ax.plot([0, 1], [i, i], label=f"run {i}")
        return fig, ax.legend(ncols=ncols, title=title, fontsize=8)

    fig, reflowed = legend(4)
    layouts._reflow(reflowed, 2)
    fig2, built = legend(2)
    renderer = fig.canvas.get_renderer()
    got = reflowed.get_window_extent(renderer).height
    want = built.get_window_extent(fig2.canvas.get_renderer()).height
    assert got == pytest.approx(want, abs=0.5)
    assert reflowed.get_title().get_text() == (title or "")


def _single():
    fig, ax = plt.subplots(figsize=(9.0, 3.0))
    ax.plot([0, 1], [1, 0])
    return fig


def _spanning():
    """Not one grid of single cells: a wide panel above two small ones."""
    fig = plt.figure(figsize=(9.0, 4.0))
    grid = fig.add_gridspec(2, 2)
    for spec in (grid[0, :], grid[1, 0], grid[1, 1]):
        fig.add_subplot(spec).plot([0, 1], [1, 0])
    return fig


@pytest.mark.parametrize("make, columns, phone_columns", [
    (lambda: _row()[0], 3, 1),        # a row of three, stacked on a phone
    (lambda: _row(panels=2, width=5.0)[0], 2, 1),  # fits the laptop's column as drawn
    (_single, 1, 1),                  # one panel: narrowed on a phone, nothing stacked
    (_spanning, None, None),          # not one grid: only narrowed, arranged as drawn
])
def test_the_measures_hold_the_panel_columns_on_each_screen(make, columns, phone_columns):
    measures = layouts.split(display._screen_png(make(), 128, 2)[0])[2]
    assert (measures["columns"], measures["phone_columns"]) == (columns, phone_columns)
