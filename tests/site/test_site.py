"""What a reader of the website sees, checked page by page in a real browser.

Every page: loads with no JavaScript error; shows its code cells without a horizontal scroll
bar at 1300 px; has every internal link and anchor resolve; has every equation typeset by
MathJax (served by the site itself, so this holds offline); has every figure loaded with alt
text and every folded solution and answer opening on click; on a 390 px phone screen, does not
scroll sideways, and no display equation does (only code, outputs and tables scroll in their
boxes); fetches nothing from outside the site and at most 2 MB (gzipped, as a web server sends
it). The search page finds the chapters a reader would look for.
"""

from __future__ import annotations

import functools
import gzip
import html.parser
import pathlib
import urllib.parse

import pytest

SITE_PAGES = sorted(p.name for p in (pathlib.Path(__file__).resolve().parents[2] / "book").glob("*")
                    if p.suffix in (".md", ".ipynb"))
PAGES = [f"book/{pathlib.Path(name).stem}.html" for name in SITE_PAGES]
# Each page's browser checks run in one xdist worker (--dist loadgroup), so it is loaded once.
BY_PAGE = [pytest.param(page, marks=pytest.mark.xdist_group(page)) for page in PAGES]
PAGE_BUDGET = 2 * 1024 * 1024  # bytes of everything a cold load of one page fetches

WAIT_FOR_MATHJAX = """
const done = arguments[arguments.length - 1];
const ready = () => window.MathJax && MathJax.startup && MathJax.startup.promise;
const start = Date.now();
(function poll() {
  if (ready()) { MathJax.startup.promise.then(() => done(true), () => done(false)); }
  else if (Date.now() - start > 20000) { done(document.querySelector('.math') === null); }
  else { setTimeout(poll, 50); }
})();
"""


def open_page(driver, url: str) -> None:
    driver.get(url)
    driver.set_script_timeout(30)
    assert driver.execute_async_script(WAIT_FOR_MATHJAX), f"MathJax did not finish on {url}"


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.hrefs.append(attrs["href"])


def _parse(path: pathlib.Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_every_chapter_has_a_page(site):
    missing = [p for p in PAGES if not (site / p).exists()]
    assert not missing, f"pages not built: {missing}"


@pytest.mark.parametrize("page", PAGES)
def test_internal_links_and_anchors_resolve(site, page):
    source = site / page
    broken = []
    for href in _parse(source).hrefs:
        url = urllib.parse.urlparse(href)
        if url.scheme or href.startswith("//") or href.startswith("mailto:"):
            continue
        target = (source.parent / urllib.parse.unquote(url.path)).resolve() if url.path else source
        if target.is_dir():
            target = target / "index.html"
        if not target.exists():
            broken.append(href)
        elif url.fragment and target.suffix == ".html" and url.fragment not in _parse(target).ids:
            broken.append(href)
    assert not broken, f"{page}: links that lead nowhere: {broken[:10]}"


VISIT = """
// prose only: code and printed outputs may show TeX as text
const article = document.querySelector('article').cloneNode(true);
article.querySelectorAll('pre, code, .highlight, .cell_output, mjx-container')
    .forEach(el => el.remove());
const text = article.textContent;
return {
  untypeset: [...document.querySelectorAll('.math, .amsmath')]
      .filter(el => !el.querySelector('mjx-container')).length,
  raw: ['\\\\(', '\\\\[', '\\\\begin', '$$'].filter(s => text.includes(s)),
  images: [...document.querySelectorAll('article img')].map(img => ({
      src: img.getAttribute('src'), alt: img.getAttribute('alt') || '',
      loaded: img.complete && img.naturalWidth > 0})),
  wideCode: [...document.querySelectorAll('.cell_input pre')]
      .filter(pre => pre.scrollWidth > pre.clientWidth + 1)
      .map(pre => pre.innerText.split('\\n')[0].slice(0, 60)),
  wideOutputs: [...document.querySelectorAll('.cell_output pre')]
      .filter(pre => pre.scrollWidth > pre.clientWidth + 1).length,
  urls: performance.getEntriesByType('navigation')
      .concat(performance.getEntriesByType('resource')).map(e => e.name),
};"""


@functools.cache
def _visit(browser, base_url: str, page: str) -> dict:
    """One cold load of ``page`` (cache off): what every desktop check reads. The page is
    left open in ``browser`` for the checks that click."""
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
    browser.get_log("browser")  # forget the previous page's messages
    open_page(browser, f"{base_url}/{page}")
    seen = browser.execute_script(VISIT)
    seen["errors"] = [entry["message"] for entry in browser.get_log("browser")
                      if entry["level"] == "SEVERE"]
    return seen


@pytest.mark.parametrize("page", BY_PAGE)
def test_page_loads_without_javascript_errors(browser, base_url, page):
    errors = _visit(browser, base_url, page)["errors"]
    assert not errors, f"{page}: {errors[:5]}"


@pytest.mark.parametrize("page", BY_PAGE)
def test_every_equation_is_typeset(browser, base_url, page):
    seen = _visit(browser, base_url, page)
    assert seen["untypeset"] == 0, \
        f"{page}: {seen['untypeset']} math elements without MathJax output"
    assert not seen["raw"], f"{page}: raw TeX left in the text: {seen['raw']}"


@pytest.mark.parametrize("page", BY_PAGE)
def test_every_figure_loads_and_has_alt_text(browser, base_url, page):
    images = _visit(browser, base_url, page)["images"]
    bad = [i["src"] for i in images if not i["loaded"] or not i["alt"].strip()]
    assert not bad, f"{page}: images not loaded or without alt text: {bad}"


@pytest.mark.parametrize("page", BY_PAGE)
def test_code_fits_the_column_at_desktop_width(browser, base_url, page):
    """In a 1300 px window no code cell scrolls sideways (printed outputs may: their count is
    printed)."""
    seen = _visit(browser, base_url, page)
    print(f"{page}: {seen['wideOutputs']} printed outputs scroll at 1300 px")
    assert not seen["wideCode"], f"{page}: code cells that scroll: {seen['wideCode'][:5]}"


@pytest.mark.parametrize("page", BY_PAGE)
def test_page_weight_within_budget_and_nothing_fetched_from_outside(browser, base_url, site,
                                                                     page):
    """Everything a cold load fetches comes from the site itself (the book works offline), and
    weighs at most 2 MB as a compressing web server sends it (gzip; images as they are)."""
    urls = _visit(browser, base_url, page)["urls"]
    outside = [u for u in urls if not u.startswith(base_url)]
    assert not outside, f"{page} fetches from outside the site: {outside[:5]}"
    files = {site / urllib.parse.unquote(urllib.parse.urlparse(u).path).lstrip("/") for u in urls}
    sent = sum(len(gzip.compress(f.read_bytes(), 6)) for f in files if f.is_file())
    raw = sum(f.stat().st_size for f in files if f.is_file())
    print(f"{page}: {sent / 1e6:.2f} MB sent gzipped ({raw / 1e6:.2f} MB uncompressed)")
    assert sent <= PAGE_BUDGET, f"{page}: {sent / 1e6:.2f} MB, over the 2 MB budget"


@pytest.mark.parametrize("page", BY_PAGE)
def test_folded_answers_open_on_click(browser, base_url, page):
    _visit(browser, base_url, page)
    if browser.current_url != f"{base_url}/{page}":
        open_page(browser, f"{base_url}/{page}")
    buttons = browser.find_elements("css selector", "button.toggle-button")
    for button in buttons:
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
        hidden_before = browser.execute_script(
            "return arguments[0].closest('.toggle').classList.contains('toggle-hidden');", button)
        button.click()
        hidden_after = browser.execute_script(
            "return arguments[0].closest('.toggle').classList.contains('toggle-hidden');", button)
        assert hidden_before and not hidden_after, f"{page}: a folded block did not open"
    details = browser.find_elements("css selector", "article details")
    for block in details:
        summary = block.find_element("css selector", "summary")
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", summary)
        was_open = block.get_attribute("open") is not None
        summary.click()
        assert (block.get_attribute("open") is not None) != was_open, \
            f"{page}: a <details> block did not toggle"


@pytest.mark.parametrize("query, chapter", [("bias correction", "adam"),
                                            ("Nesterov", "nesterov"),
                                            ("Adafactor", "adafactor"),
                                            ("gradient clipping", "clipping")])
def test_search_finds_the_chapter(browser, base_url, query, chapter):
    """The chapter comes first. For "Nesterov" the NAdam chapter has the word in a section
    title too; the site's scorer (book/search_scorer.js) ranks the page titled with it first."""
    browser.get(f"{base_url}/search.html?q={urllib.parse.quote(query)}")
    from selenium.webdriver.support.ui import WebDriverWait

    results = WebDriverWait(browser, 30).until(
        lambda d: d.find_elements("css selector", "#search-results ul.search li a"))
    first = results[0].get_attribute("href")
    assert f"{chapter}.html" in first, f"'{query}': first result {first}"


@pytest.mark.parametrize("page", BY_PAGE)
def test_page_fits_a_phone_screen(phone, base_url, page):
    """At 390 px the page never scrolls sideways, no display equation scrolls, and only
    boxes of code, printed outputs and tables may scroll inside themselves."""
    phone.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                          {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True})
    open_page(phone, f"{base_url}/{page}")
    result = phone.execute_script("""
        const allowed = 'pre, div.highlight, .cell_output, .output, '
            + 'mjx-container[display="true"], .pst-scrollable-table-container, table';
        const scrolls = [...document.querySelectorAll('article *')].filter(el =>
            el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0
            && ['auto', 'scroll'].includes(getComputedStyle(el).overflowX)
            && getComputedStyle(el).display !== 'inline');
        const other = scrolls.filter(el => !el.closest(allowed) && !el.querySelector(allowed));
        return {pageWide: document.documentElement.scrollWidth > window.innerWidth + 1,
                equations: scrolls.filter(el => el.matches('mjx-container')).length,
                other: other.slice(0, 5).map(el => el.tagName + '.' + el.className)};""")
    assert not result["pageWide"], f"{page}: the page is wider than a 390 px screen"
    assert result["equations"] == 0, \
        f"{page}: {result['equations']} display equations scroll at 390 px"
    assert not result["other"], f"{page}: blocks that scroll sideways: {result['other']}"
