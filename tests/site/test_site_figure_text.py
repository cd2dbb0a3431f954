"""The text of every figure at reading size, in a 1280 px window and on a 390 px phone.

optedu draws each figure for the site's column and again, panels stacked, for a phone's
(optedu.instruments.layouts), and writes into the PNG the size of its smallest text;
book/_ext/phone_figures.py serves a phone its own drawing. Here every figure of every page,
every fold opened, is measured as the browser shows it: its smallest text, scaled by the width
the image is shown at over the width it was drawn for, must be at least READABLE_PX CSS px.
A figure without the measure (drawn some other way) is named.

On the build before this (figures drawn once, about 700 px wide, for JupyterLab): a phone showed
78 % of the figures at under 60 % of their width, their legends at about 5 px, and the widest
figure on a laptop at 53 % (the folklore chapter's tick labels at about 5 px). The check was
seen failing on this site with the phone drawings' ``<source>`` taken out of its pages.
"""

from __future__ import annotations

import functools
import urllib.parse

import pytest

from optedu.instruments import layouts
from test_site import BY_PAGE, desktop_visit, phone_visit

READABLE_PX = layouts.READABLE_PX

@functools.cache
def _measures(site, name: str) -> dict | None:
    return layouts.split((site / "_images" / name).read_bytes())[2]


def _smallest_text(images: list[dict], site, phone: bool) -> tuple[list, list]:
    """(too small, not measured) for each figure as the browser shows it."""
    small, unmeasured = [], []
    for image in images:
        path = urllib.parse.urlparse(image["src"]).path
        if "/_images/" not in path or not path.endswith(".png") or image["shown"] == 0:
            continue
        name = path.rsplit("/", 1)[1]
        drawn_for_phone = name.endswith("-phone.png")
        measures = _measures(site, name.replace("-phone.png", ".png"))
        if measures is None or measures.get("font_px") is None:
            unmeasured.append(image["alt"] or name)
            continue
        if phone and "phone_font_px" in measures and not drawn_for_phone:
            small.append(f"{image['alt']!r}: the phone drawing was not served")
            continue
        font, width = ((measures["phone_font_px"], measures["phone_width"]) if drawn_for_phone
                       else (measures["font_px"], measures["width"]))
        shown = font * min(1.0, image["shown"] / width)
        if shown < READABLE_PX:
            small.append(f"{image['alt']!r}: {shown:.1f} px (drawn {width} px wide,"
                         f" shown {image['shown']:.0f})")
    return small, unmeasured


@pytest.mark.parametrize("page", BY_PAGE)
def test_figure_text_is_readable_at_1280_px(browser, site, base_url, page):
    shown = desktop_visit(browser, base_url, page)["shown_images"]
    small, unmeasured = _smallest_text(shown, site, phone=False)
    assert not unmeasured, f"{page}: figures without their text measured: {unmeasured[:3]}"
    assert not small, f"{page} at 1280 px: {len(small)} figures' text too small: {small[:3]}"


@pytest.mark.parametrize("page", BY_PAGE)
def test_figure_text_is_readable_on_a_phone(phone, site, base_url, page):
    shown = phone_visit(phone, base_url, page)["images"]
    small, unmeasured = _smallest_text(shown, site, phone=True)
    assert not unmeasured, f"{page}: figures without their text measured: {unmeasured[:3]}"
    assert not small, f"{page} at 390 px: {len(small)} figures' text too small: {small[:3]}"
