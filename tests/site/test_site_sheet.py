"""The cheat sheet's formulas read at the size of the book's: in a 1280 px window and on a
390 px phone, every formula in the page's tables is drawn at least as large as the median
inline formula of the page's prose; and in the window, where the tables keep the widths of their
columns, no cell's content runs past its cell.

The tables' text is 0.75 of the body's (optedu.practice.cheatsheet's CSS), and MathJax sizes a
formula from the text around it. On the build before the fix every rule in the tables was drawn
at 15.3 px (an x-height of 6.7 px) beside 20.4 px (9.0 px) in the prose, at both widths.
"""

from __future__ import annotations

import pytest

from test_site import open_page

PAGE = "book/cheatsheet.html"
#: MathJax's TeX fonts: the x-height in em
X_HEIGHT = 0.442

# The size each formula is drawn at: the height of a 1 em box placed inside it, as the browser
# lays it out (after every font size and any transform on the way), in CSS px.
SIZES = """
const drawn = m => {
  const probe = document.createElement('span');
  probe.style.cssText = 'display: inline-block; width: 0; height: 1em; margin: 0; '
      + 'padding: 0; border: 0';
  m.appendChild(probe);
  const px = probe.getBoundingClientRect().height;
  probe.remove();
  return px;
};
const shown = selector => [...document.querySelectorAll(selector)]
    .filter(m => m.getBoundingClientRect().width > 0).map(drawn);
return {
  table: shown('article table mjx-container'),
  prose: shown('article p mjx-container:not([display="true"])'),
  overflowing: [...document.querySelectorAll('article table :is(td, th)')]
      .filter(cell => cell.scrollWidth > cell.clientWidth + 1)
      .map(cell => cell.textContent.trim().slice(0, 40)),
};"""


def _measure(driver, base_url: str) -> dict:
    open_page(driver, f"{base_url}/{PAGE}")
    sizes = driver.execute_script(SIZES)
    driver.get("about:blank")
    return sizes


@pytest.mark.parametrize("width", ["browser", "phone"])
def test_table_formulas_are_as_large_as_the_prose(request, base_url, width):
    sizes = _measure(request.getfixturevalue(width), base_url)
    table, prose = sizes["table"], sorted(sizes["prose"])
    assert len(table) > 100 and prose, f"{PAGE}: {len(table)} formulas in tables, " \
        f"{len(prose)} in prose: the page's layout changed"
    body = prose[len(prose) // 2]
    small = min(table)
    print(f"{PAGE} ({width}): formulas in tables at {small:.1f} px and up "
          f"(x-height {X_HEIGHT * small:.1f} px), in prose {body:.1f} px "
          f"({X_HEIGHT * body:.1f} px)")
    assert small >= 0.99 * body, \
        f"{PAGE} ({width}): {sum(s < 0.99 * body for s in table)} of {len(table)} formulas " \
        f"in tables at {small:.1f} px (x-height {X_HEIGHT * small:.1f} px), under the " \
        f"prose's {body:.1f} px ({X_HEIGHT * body:.1f} px)"


def test_table_cells_hold_their_content_at_1280_px(browser, base_url):
    """The cheat sheet's CSS fixes its columns' widths (the theme would size them by content);
    a name or formula wider than its column would then run into the next one."""
    overflowing = _measure(browser, base_url)["overflowing"]
    assert not overflowing, f"{PAGE}: {len(overflowing)} cells too narrow: {overflowing[:3]}"
