"""Pages one can take in: how long each chapter is at desktop width, and how much of it is code.

A screen is 800 CSS px of page: a 1280 x 800 viewport, set exactly (Chrome's device metrics),
not a window whose height depends on the browser's frame. Measured on the article alone
(sidebars and footer left out), with every section laid out (the site lets the browser skip
sections off screen, which would make their heights estimates).

- No chapter is longer than ``MAX_SCREENS``.
- Visible code (cell inputs a reader sees without opening a fold) is at most ``MAX_CODE_MEDIAN``
  of a chapter's height in the median chapter, and at most ``MAX_CODE`` in any one: what checks
  or plumbs is folded behind its one-line result, what teaches (a rule's source, a short
  demonstration, the sliders) stays open.

Seen failing on the build of 54cfb79, before the chapters' checking cells were folded: median
visible code 28 %, 26 of 59 chapters over 25 screens (schedules 46.8). On the build of 12690e3,
with 725 long code cells folded: median visible code 6 % (at most 16 %, fast_step), median 19.3
screens, four chapters over 25 (``TOO_LONG``). Issue 51 brought them under: schedules split in
two (33.4 screens: 23.1 and 12.8), adam 29.0 to 24.7, adagrad 26.2 to 24.4, muon 25.1 to 24.5,
their tables folded behind the sentences that read them.
"""

from __future__ import annotations

import functools
import pathlib
import statistics

import pytest

import chromium
from test_site import open_page

BOOK = pathlib.Path(__file__).resolve().parents[2] / "book"
CHAPTERS = sorted(p.stem for p in BOOK.glob("*.ipynb"))
SCREEN = (1280, 800)
MAX_SCREENS = 25
MAX_CODE_MEDIAN = 0.20
MAX_CODE = 0.35
#: chapters still longer than MAX_SCREENS with every checking cell folded: none now. A chapter that
#: must wait to be cut or split goes here with its length; the test fails when it comes under the
#: budget, so that it leaves the list.
TOO_LONG: dict[str, float] = {}

MEASURE = """
const art = document.querySelector('article') || document.body;
for (const el of art.querySelectorAll('section')) el.style.contentVisibility = 'visible';
const height = art.getBoundingClientRect().height;
let code = 0;
for (const el of art.querySelectorAll('div.cell_input')) {
  if (el.closest('details:not([open])') || el.offsetParent === null) continue;
  code += el.getBoundingClientRect().height;
}
return [height, code];
"""


@functools.cache
def _lengths(base_url: str) -> dict[str, tuple[float, float]]:
    """chapter -> (screens, share of its height that is visible code), measured once per
    process: a module's fixture was set up again for the second test when the worker ran
    another module's test between the two (160 s each time here)."""
    laptop = chromium.driver(SCREEN[0], SCREEN[1] + 200)
    try:
        laptop.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": SCREEN[0], "height": SCREEN[1], "deviceScaleFactor": 1, "mobile": False})
        assert laptop.execute_script("return window.innerHeight") == SCREEN[1]
        out = {}
        for name in CHAPTERS:
            open_page(laptop, f"{base_url}/book/{name}.html")
            height, code = laptop.execute_script(MEASURE)
            out[name] = (height / SCREEN[1], code / height)
        return out
    finally:
        laptop.quit()


@pytest.fixture
def lengths(base_url) -> dict[str, tuple[float, float]]:
    return _lengths(base_url)


@pytest.mark.xdist_group("length")
def test_no_chapter_is_too_long(lengths):
    screens = {name: s for name, (s, _) in lengths.items()}
    longest = max(screens, key=screens.get)
    print(f"screens of {SCREEN[1]} px: median {statistics.median(screens.values()):.1f}, "
          f"longest {longest} {screens[longest]:.1f}, over {MAX_SCREENS}: "
          f"{sum(s > MAX_SCREENS for s in screens.values())} of {len(screens)}")
    over = {name: round(screens, 1) for name, (screens, _) in lengths.items()
            if screens > MAX_SCREENS and name not in TOO_LONG}
    assert not over, f"chapters longer than {MAX_SCREENS} screens of {SCREEN[1]} px: {over}"
    back = sorted(name for name in TOO_LONG if lengths[name][0] <= MAX_SCREENS)
    assert not back, f"now within {MAX_SCREENS} screens: take them off TOO_LONG: {back}"


@pytest.mark.xdist_group("length")
def test_visible_code_is_a_small_share(lengths):
    shares = {name: share for name, (_, share) in lengths.items()}
    median = statistics.median(shares.values())
    most = max(shares, key=shares.get)
    print(f"visible code: median {median:.0%}, most {most} {shares[most]:.0%}, 40 % or more: "
          f"{sum(s >= 0.4 for s in shares.values())} of {len(shares)}")
    assert median <= MAX_CODE_MEDIAN, f"median visible code {median:.0%} > {MAX_CODE_MEDIAN:.0%}"
    worst = {name: f"{share:.0%}" for name, share in shares.items() if share > MAX_CODE}
    assert not worst, f"chapters whose visible code is over {MAX_CODE:.0%}: {worst}"
