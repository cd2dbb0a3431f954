"""The moving figures (book/_static/interactive/figures.js) as a reader uses them, in Chromium.

Each figure a chapter places (``<div class="optedu-interactive" data-figure=NAME>``): every
control changes what the panels draw and what the sentence under them says (its text
alternative); the keyboard reaches every control in order, with a visible focus ring, and moves
each; on a 390 px phone every control is a target at least 44 px square, the figure fits the
screen and its panels' text is at least 10 px; nothing is fetched from outside the site while
it is used (the book works offline); the two scripts stay within their weight and are loaded
by the pages with a figure alone; on paper the figure gives way to the chapter's static one,
which optedu drew in Python.

Each check was seen failing on a broken copy of the built site (the site's figures.js or
optedu.css edited, the test run on the copy): a control whose value the drawing ignores (the
momentum figure run at μ = 0.9 whatever the slider says: its sentence changed, no panel did), a
range made unfocusable (tabindex -1), range inputs 20 px tall, an image fetched from
https://example.org, figures.js padded past its budget, the print rule removed; and the
Lion chapter placing a figure of another name (test_every_placed_figure_is_tested).
"""

from __future__ import annotations

import gzip
import pathlib
import re

import pytest

from test_site import PAGE_BUDGET, open_page

BOOK = pathlib.Path(__file__).resolve().parents[2] / "book"
#: figure -> (its chapter, the id of the chapter's static figure that stands for it in print:
#: the scene the moving figure opens on, drawn by optedu.instruments.moving or, one panel of
#: its small multiples, by landscapes.explore; tests/instruments/test_moving.py holds both to
#: figures.js's defaults)
FIGURES = {
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
#: the two scripts, gzipped as a web server sends them (measured: rules.js 5.4 kB, figures.js
#: 10.4 kB with seven figures): room for a few more, 1.6 % of a page's budget
SCRIPT_BUDGET = 24_000

DRAWING = """
const root = document.querySelector(`.optedu-interactive[data-figure="${arguments[0]}"]`);
if (!root || !root.dataset.drawn) return null;
return [...root.querySelectorAll('svg.oi-panel')].map(s => s.innerHTML).join('')
    + '|' + root.querySelector('.oi-summary').textContent;
"""
CONTROLS = """
const root = document.querySelector(`.optedu-interactive[data-figure="${arguments[0]}"]`);
// a control the current setting does not use is disabled, and skipped
return [...root.querySelectorAll('.oi-control input, .oi-control select, .oi-control button')]
    .filter(el => !el.disabled);
"""


def placed() -> dict[str, str]:
    """figure -> chapter, as the chapters' sources place them."""
    found = {}
    for path in BOOK.glob("*.ipynb"):
        for name in re.findall(r'class=\\"optedu-interactive\\" data-figure=\\"(\w+)\\"',
                               path.read_text(encoding="utf-8")):
            found[name] = path.stem
    return found


def test_every_placed_figure_is_tested():
    assert placed() == {name: chapter for name, (chapter, _) in FIGURES.items()}


def _open(driver, base_url, name):
    open_page(driver, f"{base_url}/book/{FIGURES[name][0]}.html")
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 20).until(lambda d: d.execute_script(DRAWING, name))
    root = driver.find_element("css selector", f'.optedu-interactive[data-figure="{name}"]')
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", root)
    return root


def _move(driver, control) -> None:
    """Move one control as a reader's pointer would: a range to its other end, a check box
    clicked, a select to another option, a button pressed."""
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", control)
    kind = control.tag_name if control.tag_name != "input" else control.get_attribute("type")
    if kind == "range":
        at_max = driver.execute_script(
            "return Number(arguments[0].value) >= Number(arguments[0].max);", control)
        control.send_keys(Keys.HOME if at_max else Keys.END)
    elif kind == "select":
        select = Select(control)
        current = select.first_selected_option.get_attribute("value")
        other = next(o for o in select.options if o.get_attribute("value") != current)
        select.select_by_value(other.get_attribute("value"))
    else:
        control.click()


@pytest.mark.parametrize("name", list(FIGURES))
def test_every_control_changes_the_figure(browser, base_url, name):
    _open(browser, base_url, name)
    root = browser.find_element("css selector", f'.optedu-interactive[data-figure="{name}"]')
    assert root.get_attribute("role") == "group" and root.get_attribute("aria-labelledby")
    panels = root.find_elements("css selector", "svg.oi-panel")
    assert panels and all(p.get_attribute("role") == "img" and p.get_attribute("aria-label")
                          for p in panels)
    ids = [c.get_attribute("id") for c in browser.execute_script(CONTROLS, name)]
    assert len(ids) >= 2
    for i, label in enumerate(ids):
        if i:  # each control from the figure's first drawing, not from the others' moves
            _open(browser, base_url, name)
        control = browser.find_element("id", label)
        before = browser.execute_script(DRAWING, name)
        _move(browser, control)
        after = browser.execute_script(DRAWING, name)
        drawing, summary = after.rsplit("|", 1)
        assert drawing != before.rsplit("|", 1)[0], f"{name}: moving {label} changed no panel"
        assert summary != before.rsplit("|", 1)[1], \
            f"{name}: moving {label} left the text alternative as it was"
        assert drawing.count("<polyline") >= 2 and len(summary) > 60, (label, summary)
        assert "NaN" not in after and "undefined" not in after, (label, summary)


@pytest.mark.parametrize("name", list(FIGURES))
def test_the_keyboard_reaches_and_moves_every_control(browser, base_url, name):
    """Tab walks the controls in order, each shows a focus ring, and the arrow keys, the
    space bar or Enter change the figure."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    _open(browser, base_url, name)
    ids = [c.get_attribute("id") for c in browser.execute_script(CONTROLS, name)]
    # start from the figure's title, as a reader tabbing down the page reaches it
    browser.execute_script(
        "const t = document.getElementById(arguments[0]); t.tabIndex = -1; t.focus();",
        f"oi-{name}-title")
    for expected in ids:
        ActionChains(browser).send_keys(Keys.TAB).perform()
        active = browser.switch_to.active_element
        assert active.get_attribute("id") == expected, \
            f"{name}: Tab reached {active.get_attribute('id')!r}, not {expected!r}"
        ring = browser.execute_script(
            "const s = getComputedStyle(arguments[0]);"
            " return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2;", active)
        assert ring, f"{name}: {expected} shows no focus ring"
    for i, expected in enumerate(ids):  # each from the figure's first drawing
        if i:
            _open(browser, base_url, name)
        active = browser.find_element("id", expected)
        browser.execute_script("arguments[0].focus();", active)
        kind = active.tag_name if active.tag_name != "input" else active.get_attribute("type")
        key = {"range": Keys.ARROW_LEFT, "checkbox": Keys.SPACE,
               "select": Keys.ARROW_DOWN, "button": Keys.ENTER}[kind]
        before = browser.execute_script(DRAWING, name)
        ActionChains(browser).send_keys(key).perform()
        if browser.execute_script(DRAWING, name) == before and kind in ("range", "select"):
            ActionChains(browser).send_keys(  # at its end: the other way
                Keys.ARROW_RIGHT if kind == "range" else Keys.ARROW_UP).perform()
        assert browser.execute_script(DRAWING, name) != before, \
            f"{name}: the keyboard did not move {expected}"


TARGETS = """
const root = document.querySelector(`.optedu-interactive[data-figure="${arguments[0]}"]`);
const box = el => el.getBoundingClientRect();
const targets = [...root.querySelectorAll('.oi-control input, .oi-control select,'
                                          + ' .oi-control button')].map(el => {
  // a check box's target is its label, which toggles it
  const target = el.type === 'checkbox' ? el.closest('label') : el;
  const r = box(target);
  return {id: el.id, width: r.width, height: r.height};
});
const panel = root.querySelector('svg.oi-panel');
const tick = root.querySelector('svg.oi-panel .oi-tick');
return {targets, right: box(root).right, width: document.documentElement.clientWidth,
        overflow: root.scrollWidth - root.clientWidth,
        tickPx: parseFloat(getComputedStyle(tick).fontSize) * box(panel).width
                / panel.viewBox.baseVal.width};
"""


@pytest.mark.parametrize("name", list(FIGURES))
def test_usable_on_a_phone(phone, base_url, name):
    _open(phone, base_url, name)
    seen = phone.execute_script(TARGETS, name)
    small = [t for t in seen["targets"] if t["width"] < 44 or t["height"] < 44]
    assert not small, f"{name}: targets under 44 px at 390 px: {small}"
    assert seen["right"] <= seen["width"] and seen["overflow"] <= 0, seen
    assert seen["tickPx"] >= 10, f"{name}: the panels' ticks are {seen['tickPx']:.1f} px"
    checkbox = phone.find_elements(
        "css selector", f'.optedu-interactive[data-figure="{name}"] .oi-checkbox label')
    for label in checkbox:  # the label is a real target: tapping it toggles the box
        box = label.find_element("css selector", "input")
        was = box.is_selected()
        label.click()
        assert box.is_selected() != was


@pytest.mark.parametrize("name", list(FIGURES))
def test_works_offline(browser, base_url, name):
    """Nothing outside the site is fetched while the figure loads and is used, and no
    script error is logged."""
    browser.get_log("browser")
    _open(browser, base_url, name)
    for control in browser.execute_script(CONTROLS, name):
        if control.is_enabled():  # one may have disabled another
            _move(browser, control)
    urls = browser.execute_script(
        "return performance.getEntriesByType('navigation')"
        ".concat(performance.getEntriesByType('resource')).map(e => e.name);")
    outside = [u for u in urls if not u.startswith(base_url) and not u.startswith("data:")]
    assert not outside, f"{name}: fetched from outside the site: {outside[:5]}"
    assert any(u.split("?")[0].endswith("interactive/figures.js") for u in urls)
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors[:3]


def test_scripts_within_budget_and_only_where_used(site):
    sizes = {name: len(gzip.compress((site / "_static" / "interactive" / name).read_bytes(), 6))
             for name in ("rules.js", "figures.js")}
    print(f"gzipped: {sizes}")
    assert sum(sizes.values()) <= SCRIPT_BUDGET, sizes
    chapters = {chapter for chapter, _ in FIGURES.values()}
    for page in (site / "book").glob("*.html"):
        text = page.read_text(encoding="utf-8")
        loads = "interactive/figures.js" in text
        assert loads == (page.stem in chapters), f"{page.name} loads figures.js: {loads}"
        if loads:  # the page with its scripts, before its images, within the site's budget
            files = [site / "book" / page.name] + [
                (page.parent / src.split("?")[0]).resolve()
                for src in re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+\.(?:js|css)'
                                      r'(?:\?[^"]*)?)"', text)]
            sent = sum(len(gzip.compress(f.read_bytes(), 6)) for f in files if f.is_file())
            assert sent <= PAGE_BUDGET, f"{page.name}: {sent / 1e6:.2f} MB"


@pytest.mark.parametrize("name", list(FIGURES))
def test_print_shows_the_static_figure_instead(browser, base_url, name):
    """On paper (print media) the moving figure is gone and the chapter's static figure,
    drawn by optedu in Python, is there with its alt text."""
    _open(browser, base_url, name)
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        shown = browser.execute_script(
            "const root = document.querySelector(`.optedu-interactive[data-figure=\"${arguments[0]}\"]`);"
            " const fig = document.getElementById(arguments[1]);"
            " const img = fig && fig.querySelector('img');"
            " return [root.checkVisibility(), !!img && img.checkVisibility()"
            " && img.naturalWidth > 0 && img.alt.length > 20];", name, FIGURES[name][1])
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    assert shown == [False, True], f"{name}: moving figure shown, static figure shown: {shown}"
