"""book/_ext/phone_figures.py: the phone drawing split out of each figure and offered to phones."""

import base64
import importlib.util
import json
from pathlib import Path

import pytest

from optedu.instruments import layouts

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("phone_figures", ROOT / "book/_ext/phone_figures.py")
phone_figures = importlib.util.module_from_spec(spec)
spec.loader.exec_module(phone_figures)
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))


def png(width: int, height: int = 100) -> bytes:
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + b"\x08\x03\0\0\0"
    return (b"\x89PNG\r\n\x1a\n" + layouts._chunk(b"IHDR", header)
            + layouts._chunk(b"IEND", b""))


PNG = png(1300)


def test_images_are_split_and_their_pages_wrapped_once(tmp_path):
    images = tmp_path / "_images"
    images.mkdir()
    measures = {"font_px": 11, "phone_width": 333}
    (images / "abc.png").write_bytes(layouts.with_phone(PNG, png(666), measures))
    (images / "low.png").write_bytes(layouts.with_phone(PNG, png(416), measures))  # scale 1.25
    (images / "plain.png").write_bytes(PNG)
    phones = phone_figures.split_images(images)
    assert phones == {"abc": 2, "low": 1.249}
    assert (images / "abc-phone.png").read_bytes() == png(666)
    assert layouts.PHONE_CHUNK not in (images / "abc.png").read_bytes()
    assert layouts.split((images / "abc.png").read_bytes())[2] == measures
    # a second build finds the split already done and the same phones
    assert phone_figures.split_images(images) == phones

    html = ('<p>x</p><img alt="A" src="../_images/abc.png" style="width: 690px;">'
            '<img alt="B" src="../_images/plain.png">')
    once = phone_figures.wrap(html, phones)
    assert once == ('<p>x</p><picture class="optedu-phone"><source media="screen and'
                    ' (max-width: 719.98px)" srcset="../_images/abc-phone.png 2x"><img alt="A"'
                    ' src="../_images/abc.png" style="width: 690px;"></picture>'
                    '<img alt="B" src="../_images/plain.png">')
    assert phone_figures.wrap(once, phones) == once


def _figure(stem, caption):
    return (f'<figure class="align-default" id="f-{stem}"><a><img alt="x" '
            f'src="../_images/{stem}.png"></a><figcaption><p>{caption}</p></figcaption>'
            f'</figure>')


def _images(tmp_path, figures):
    """An ``_images`` folder of ``stem: (laptop PNG, phone PNG, measures)``, split."""
    images = tmp_path / "_images"
    images.mkdir()
    for stem, (laptop, phone, measures) in figures.items():
        (images / f"{stem}.png").write_bytes(layouts.with_phone(laptop, phone, measures))
    return phone_figures.split_images(images), phone_figures.stacked(images)


def _measures(columns, phone_columns):
    return {"font_px": 11, "phone_width": 333, "columns": columns,
            "phone_columns": phone_columns}


def test_a_figure_is_stacked_when_its_phone_drawing_has_fewer_panel_columns(tmp_path):
    wide = png(1300, 500)
    phones, stacks = _images(tmp_path, {
        "two": (wide, png(666, 1400), _measures(2, 1)),
        # two flat panels, one above the other: not 1.5 times as tall for its width as the
        # laptop drawing (the old test by shape missed it)
        "flat": (wide, png(666, 380), _measures(2, 1)),
        # one panel, narrowed with its height kept: taller for its width, nothing stacked
        "one": (wide, png(666, 1400), _measures(1, 1)),
        # not one grid: only narrowed
        "drawn": (wide, png(666, 1400), _measures(None, None)),
        "small": (wide, png(666, 280), _measures(2, 2)),
    })
    assert stacks == {"two", "flat"}

    html = (_figure("two", "Left: the loss; right: the norm.") + _figure("small", "Left: a.")
            + _figure("two", "The loss against the step.")
            + _figure("one", "Left: the loss; right: the norm.")
            + _figure("flat", "Left: the loss. Right: the norm."))
    out = phone_figures.wrap(html, phones, stacks)
    assert out.count('class="optedu-stacked align-default"') == 2
    assert out.index("optedu-stacked") < out.index('id="f-small"')
    assert 'class="optedu-stacked align-default" id="f-flat"' in out
    assert phone_figures.wrap(out, phones, stacks) == out


@pytest.mark.parametrize("caption, marked", [
    # the forms the chapters' captions use to name a panel
    ("Left: the paths; right: the loss.", True),
    ("Left, SGD: the linear rule. Right, Adam: it runs away.", True),
    ("Left and middle: exact gradients. Right: mini-batches.", True),
    ("Training loss (left, log scale) and gradient norm (right) of each step.", True),
    ("Heavy ball (left column) and Nesterov (right column).", True),
    ("Right panel: seed 1 of three.", True),
    ("Iterates projected onto [−1, 1]; left at β₂ = 0.1, right at β₂ = 0.9.", True),
    ("The left-hand plot is the loss.", True),
    ("The top-left panel is the loss.", True),
    ("The loss is on the left.", True),
    # "left" and "right" that name no panel
    ("Diverged trials are left out.", False),
    ("Runs whose median seed misses the target are left out.", False),
    ("A sizeable share lies left of half float16's smallest subnormal.", False),
    ("Fusion moves the step to the right, under a higher roof.", False),
    ("The right end is not comparable with the rest.", False),
    ("Dashed orange (right axis): the momentum.", False),
    ("The state is left alone; what is left is the step.", False),
])
def test_a_stacked_figure_is_marked_when_its_caption_names_a_panel_by_its_side(
        tmp_path, caption, marked):
    phones, stacks = _images(tmp_path, {"two": (png(1300, 500), png(666, 1400),
                                                _measures(2, 1))})
    out = phone_figures.wrap(_figure("two", caption), phones, stacks)
    assert ("optedu-stacked" in out) == marked




@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_stored_phone_drawing_carries_its_panel_columns(path):
    """stacked() reads the panel columns from the measures: a figure stored before they were
    (or drawn some other way) would never be marked, silently. Re-run its chapter
    (``make outputs NB=book/X.ipynb``)."""
    missing = []
    for i, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
        for output in cell.get("outputs", []):
            data = output.get("data", {}).get("image/png")
            if data is None:
                continue
            _, phone, measures = layouts.split(base64.b64decode(data))
            if phone is not None and not {"columns", "phone_columns"} <= set(measures or {}):
                missing.append(i)
    assert not missing, f"{path.name}: cells {missing} store a phone drawing without its columns"
