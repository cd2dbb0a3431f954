"""What a reader of the website sees, checked page by page in a real browser.

Every page: loads with no JavaScript error; shows its code cells unwrapped at 1280 px; has every
internal link and anchor resolve; has every equation typeset by MathJax (served by the site
itself, so this holds offline); has every figure loaded with alt text and every folded solution
and answer opening on click; fetches nothing from outside the site and at most 2 MB (gzipped, as
a web server sends it). The search page finds the chapters a reader would look for.

What the page looks like, at 1280 px and on a 390 px phone (Chrome's mobile emulation), measured
by tests/site/look.js: no badge, button or icon covers a title's text; every display equation is
at least as large as the body text; no formula is cut off by a box that hides its overflow;
the page never scrolls sideways; the blocks that scroll
sideways inside themselves stay within a budget per kind (SCROLL_BUDGET). Each of these checks is
shown to fail on a page broken on purpose (test_look_checks_catch_a_broken_page).
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
#: bytes a cold load of one page fetches before its own images, as a compressing web server
#: sends them (gzip); the uncompressed size is printed beside it
PAGE_BUDGET = 1.5e6

WAIT_FOR_MATHJAX = """
const done = arguments[arguments.length - 1];
const ready = () => window.MathJax && MathJax.startup && MathJax.startup.promise;
const start = Date.now();
(function poll() {
  if (ready()) { MathJax.startup.promise.then(() => done(true), () => done(false)); }
  // typeset when the site was built (tools/typeset.js): nothing to wait for
  else if (document.readyState === 'complete'
           && !document.querySelector('script[src*="mathjax"]')) { done(true); }
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


@functools.cache
def _parse(path: pathlib.Path) -> _Links:
    """The ids and links of the page at ``path``, parsed once per process: a page links to
    every chapter through the sidebar, and parsing each target again for each of its anchors
    cost 10 to 15 s a page."""
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
  // and MyST left unparsed in prose (a directive's fence that did not open)
  raw: ['\\\\(', '\\\\[', '\\\\begin', '$$', '```', ':label:', '{glue', '{ref}', '{numref}',
        '{prf:'].filter(s => text.includes(s))
      // a $ or a TeX command outside maths: inline maths cut open, e.g. by a wrapped line
      // that starts with '+ ' and so starts a list
      .concat((text.match(/\\$[^$]{0,30}|\\\\[A-Za-z]{2,}[^\\s]{0,20}/g) || []).slice(0, 3)),
  images: [...document.querySelectorAll('article img')].map(img => ({
      src: img.getAttribute('src'), alt: img.getAttribute('alt') || '',
      loaded: img.complete && img.naturalWidth > 0})),
  // code wraps instead of scrolling (optedu.css): a wrapped line is a line taller than the
  // shortest of its cell's (optedu.js puts each line in a span.optedu-line)
  wrappedCode: [...document.querySelectorAll('.cell_input pre')].filter(pre => {
      const heights = [...pre.querySelectorAll('.optedu-line')]
          .filter(line => line.textContent.trim()).map(line => line.offsetHeight);
      return pre.scrollWidth > pre.clientWidth + 1
          || Math.max(...heights) > 1.5 * Math.min(...heights);
  }).map(pre => pre.textContent.split('\\n')[0].slice(0, 60)),
  wideOutputs: [...document.querySelectorAll('.cell_output pre')]
      .filter(pre => pre.scrollWidth > pre.clientWidth + 1).length,
  urls: performance.getEntriesByType('navigation')
      .concat(performance.getEntriesByType('resource')).map(e => e.name),
};"""


LOOK = (pathlib.Path(__file__).parent / "look.js").read_text(encoding="utf-8")


@functools.cache
def desktop_visit(browser, base_url: str, page: str) -> dict:
    """One cold load of ``page`` (cache off) in the 1280 px window, what every desktop check
    reads: the page as it opens (VISIT, look.js, the console's errors); then its folds
    clicked open (``folds``, CLICK_FOLDS); then every fold opened, the figures as shown
    (``shown_images``, test_site_figure_text.py). One load instead of two or three."""
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
    browser.get_log("browser")  # forget the previous page's messages
    open_page(browser, f"{base_url}/{page}")
    seen = browser.execute_script(VISIT)
    seen["look"] = browser.execute_script(LOOK)
    seen["errors"] = [entry["message"] for entry in browser.get_log("browser")
                      if entry["level"] == "SEVERE"]
    seen["folds"] = browser.execute_script(CLICK_FOLDS)
    browser.execute_async_script(UNFOLD)
    seen["shown_images"] = browser.execute_async_script(IMAGES)
    browser.get("about:blank")  # unfolded: the next check loads its page afresh
    return seen


@pytest.mark.parametrize("page", BY_PAGE)
def test_page_loads_without_javascript_errors(browser, base_url, page):
    errors = desktop_visit(browser, base_url, page)["errors"]
    assert not errors, f"{page}: {errors[:5]}"


@pytest.mark.parametrize("page", BY_PAGE)
def test_every_equation_is_typeset(browser, base_url, page):
    seen = desktop_visit(browser, base_url, page)
    assert seen["untypeset"] == 0, \
        f"{page}: {seen['untypeset']} math elements without MathJax output"
    assert not seen["raw"], f"{page}: raw TeX or MyST left in the text: {seen['raw']}"


@pytest.mark.parametrize("page", BY_PAGE)
def test_every_figure_loads_and_has_alt_text(browser, base_url, page):
    images = desktop_visit(browser, base_url, page)["images"]
    bad = [i["src"] for i in images if not i["loaded"] or not i["alt"].strip()]
    assert not bad, f"{page}: images not loaded or without alt text: {bad}"


@pytest.mark.parametrize("page", BY_PAGE)
def test_code_fits_the_column_at_desktop_width(browser, base_url, page):
    """In a 1280 px window no code cell wraps or scrolls: code is written within 80 columns
    (printed outputs may scroll: their count is printed)."""
    seen = desktop_visit(browser, base_url, page)
    print(f"{page}: {seen['wideOutputs']} printed outputs scroll at 1280 px")
    assert not seen["wrappedCode"], \
        f"{page}: code cells with lines too long for 1280 px: {seen['wrappedCode'][:5]}"


@pytest.mark.parametrize("page", BY_PAGE)
def test_page_weight_within_budget_and_nothing_fetched_from_outside(browser, base_url, site,
                                                                     page):
    """Everything a cold load fetches comes from the site itself (the book works offline), and
    weighs at most 2 MB as a compressing web server sends it (gzip; images as they are)."""
    urls = desktop_visit(browser, base_url, page)["urls"]
    outside = [u for u in urls if not u.startswith(base_url)]
    assert not outside, f"{page} fetches from outside the site: {outside[:5]}"
    files = {site / urllib.parse.unquote(urllib.parse.urlparse(u).path).lstrip("/") for u in urls}
    files = {f for f in files if f.is_file() and f.parent.name != "_images"}
    sent = sum(len(gzip.compress(f.read_bytes(), 6)) for f in files)
    raw = sum(f.stat().st_size for f in files)
    print(f"{page}: {sent / 1e6:.2f} MB sent gzipped before its images "
          f"({raw / 1e6:.2f} MB uncompressed)")
    assert sent <= PAGE_BUDGET, f"{page}: {sent / 1e6:.2f} MB, over the 1.5 MB budget"
    scripts = [f.name for f in files if f.suffix == ".js"]
    assert not {"fontawesome.js", "searchindex.js", "tex-chtml.js"} & set(scripts), \
        f"{page} loads what the build leaves out (icons, search index, MathJax): {scripts}"


# Every folded block clicked where a reader clicks it, in one script (a Selenium round trip
# per button cost 9 s on a page with many answers): the toggle button or the summary is
# scrolled to the middle of the screen, must be what is under its own centre (nothing covers
# it, as Selenium's click requires), and is clicked; the block must change state. A chapter
# has at most about 40 folds; the question bank's 574 answers, all made by one template, are
# sampled: 60 of each kind spread over the page, the first and the last among them (a click
# there costs about 90 ms, the theme's menu handler searching the whole page).
CLICK_FOLDS = """
const article = document.querySelector('article') || document.body;
const spread = (all, most = 60) => all.length <= most ? all
    : Array.from({length: most}, (_, i) => all[Math.round(i * (all.length - 1) / (most - 1))]);
const onTop = el => {
  el.scrollIntoView({block: 'center'});
  const box = el.getBoundingClientRect();
  const hit = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
  return hit !== null && (hit === el || el.contains(hit));
};
const faults = [];
let toggles = 0, details = 0;
for (const button of spread([...document.querySelectorAll('button.toggle-button')])) {
  const fold = button.closest('.toggle');
  const before = fold.classList.contains('toggle-hidden');
  if (!onTop(button)) { faults.push('a toggle button is covered'); continue; }
  button.click();
  toggles += 1;
  if (!before || fold.classList.contains('toggle-hidden')) faults.push('a folded block did not open');
}
for (const block of spread([...article.querySelectorAll('details')])) {
  const summary = block.querySelector('summary');
  const before = block.open;
  if (!onTop(summary)) { faults.push('a summary is covered'); continue; }
  summary.click();
  details += 1;
  if (block.open === before) faults.push('a <details> block did not toggle');
}
return {toggles, details, faults};
"""


@pytest.mark.parametrize("page", BY_PAGE)
def test_folded_answers_open_on_click(browser, base_url, page):
    seen = desktop_visit(browser, base_url, page)["folds"]
    assert not seen["faults"], f"{page}: {sorted(set(seen['faults']))}"


@pytest.mark.xdist_group("book/adam.html")
def test_fold_check_catches_a_covered_and_a_dead_fold(browser, base_url):
    """CLICK_FOLDS fails on a page broken on purpose: a bar over the middle of the screen
    covers what is scrolled there, and a <details> whose summary does nothing."""
    page = "book/adam.html"
    open_page(browser, f"{base_url}/{page}")
    assert browser.execute_script(CLICK_FOLDS)["toggles"] > 0, f"{page} has no folds"
    open_page(browser, f"{base_url}/{page}")
    browser.execute_script("""
      const bar = document.createElement('div');
      bar.style.cssText = 'position:fixed;left:0;right:0;top:40%;height:20%;z-index:9999';
      document.body.appendChild(bar);""")
    covered = browser.execute_script(CLICK_FOLDS)["faults"]
    open_page(browser, f"{base_url}/{page}")
    browser.execute_script("""
      document.querySelectorAll('article summary').forEach(s =>
        s.addEventListener('click', e => e.preventDefault()));""")
    dead = browser.execute_script(CLICK_FOLDS)["faults"]
    browser.get("about:blank")  # the next check loads its page afresh
    assert "a toggle button is covered" in covered
    assert "a <details> block did not toggle" in dead


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
    # the page itself: "adam.html" is also the end of "sparse_adam.html"
    page = urllib.parse.urlparse(first).path.split("/")[-1]
    assert page == f"{chapter}.html", f"'{query}': first result {first}"


PHONE_JS = (pathlib.Path(__file__).parent / "phone.js").read_text(encoding="utf-8")

# Every fold opened (closed details elements, folded answers and solutions), as a reader who
# opens them sees them, and every section laid out; measured two frames later, once the page
# has answered (optedu.js re-measures a block that appears).
UNFOLD = """
const done = arguments[arguments.length - 1];
const article = document.querySelector('article') || document.body;
for (const el of article.querySelectorAll('section')) {
  if (getComputedStyle(el).contentVisibility === 'auto') el.style.contentVisibility = 'visible';
}
article.querySelectorAll('details').forEach(d => { d.open = true; });
article.querySelectorAll('.toggle-hidden').forEach(el => el.classList.remove('toggle-hidden'));
requestAnimationFrame(() => requestAnimationFrame(() => done(true)));
"""

# every image of the article once loaded, with the drawing the browser chose and its width
IMAGES = """
const done = arguments[arguments.length - 1];
const images = [...document.querySelectorAll('article img')];
const start = Date.now();
(function wait() {
  if (images.some(i => !i.complete) && Date.now() - start < 15000) return setTimeout(wait, 50);
  done(images.map(img => ({src: img.currentSrc || img.src,
                           shown: img.getBoundingClientRect().width,
                           alt: (img.alt || '').slice(0, 60)})));
})();
"""


@functools.cache
def phone_visit(phone, base_url: str, page: str) -> dict:
    """One load of ``page`` on the phone (390 x 844, mobile emulation), what every phone check
    reads: what look.js sees of the page as it opens (``look``); then, every fold opened,
    what phone.js sees (``text``) and the figures as shown (``images``,
    test_site_figure_text.py). One load instead of three: 5 s a page here."""
    open_page(phone, f"{base_url}/{page}")
    seen = {"look": phone.execute_script(LOOK)}
    phone.execute_async_script(UNFOLD)
    seen["text"] = phone.execute_script(PHONE_JS)
    seen["images"] = phone.execute_async_script(IMAGES)
    phone.get("about:blank")  # the page was unfolded: the next check loads its own afresh
    return seen


def _look(browser, phone, base_url, page, width):
    if width == "phone":
        return phone_visit(phone, base_url, page)["look"]
    return desktop_visit(browser, base_url, page)["look"]


WIDTHS = ["desktop", "phone"]

# Blocks that may scroll sideways inside themselves, per page and kind. Code wraps (0); a table
# too wide for its column is shown as stacked rows on a phone, where only a cell holding a
# formula longer than the screen scrolls (the cheat sheet has 4 such, one \text{...} each; 2
# at most on other pages); no other block scrolls. What may scroll: display equations that
# optedu.js cannot break into lines that fit (a long equation breaks before a relation or an
# operator outside brackets, first at a gap between formulas side by side, and a number too
# wide to sit beside its equation stands above it; what could be left is a row of an aligned
# table, or a bracket, root or fraction wider than the column). Every equation, the chapters'
# own and the docstrings that code cells print through show_source, is written in lines that
# fit a phone: none scrolls once laid out (test_site_phone.py, every fold opened), where 20 did
# on 16 pages before the docstrings were rewritten, 73 on 32 before the chapters' were and 171
# on 52 before the breaking. Counted here as the page opens, one may not be fitted yet (the
# browser lays out a section only near the screen; optedu.js fits an equation when it is laid
# out): 1 a page at most, where with none allowed 3 pages failed (adamax_nadam and lbfgs among
# them). And printed
# tables, whose aligned columns wrapping would scramble (2 to 14 a chapter on a phone, 0 or 1
# at 1280 px). A chapter over these numbers has a new wide block to look at.
# Inline formulas never scroll: a long one breaks after a relation or an operator
# (optedu.js; test_site_phone.py checks that none is cut at the screen's edge).
SCROLL_BUDGET = {
    "desktop": {"code": 0, "table": 1, "other": 0, "equation": 0, "formula": 0,
                "printed": 2},
    "phone": {"code": 0, "table": 4, "other": 0, "equation": 1, "formula": 0,
              "printed": 16},
}


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("page", BY_PAGE)
def test_page_never_scrolls_sideways(browser, phone, base_url, page, width):
    """The document is never wider than the screen. On the phone this is measured against
    the layout viewport (documentElement.clientWidth, 390 px): under mobile emulation Chrome
    widens window.innerWidth to the content, as a phone zooms out, so comparing with
    innerWidth never sees a page that is too wide."""
    look = _look(browser, phone, base_url, page, width)
    assert look["documentOverflow"] <= 0, \
        f"{page} at {width} width: the page scrolls {look['documentOverflow']} px sideways"


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("page", BY_PAGE)
def test_titles_are_not_covered(browser, phone, base_url, page, width):
    """No level badge, toggle button, header link or positioned icon covers the text of a
    heading, admonition title or caption (the rectangles of the title's text nodes against the
    decoration's box)."""
    look = _look(browser, phone, base_url, page, width)
    assert not look["overlaps"], f"{page} at {width} width: {look['overlaps'][:5]}"


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("page", BY_PAGE)
def test_equations_are_at_least_body_size(browser, phone, base_url, page, width):
    """Every display equation renders at a font size at least the body text's (a wide one
    scrolls in its box instead of shrinking)."""
    look = _look(browser, phone, base_url, page, width)
    sizes = look["equationFonts"]
    if sizes:
        print(f"{page} at {width} width: equations {min(sizes):.1f} px and up, "
              f"body {look['bodyFont']:.1f} px")
    assert look["smallEquations"] == 0, \
        f"{page} at {width} width: {look['smallEquations']} display equations smaller than " \
        f"the body text ({min(sizes):.1f} px < {look['bodyFont']:.1f} px)"


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("page", BY_PAGE)
def test_sideways_scrolling_blocks_within_budget(browser, phone, base_url, page, width):
    look = _look(browser, phone, base_url, page, width)
    counts = {kind: 0 for kind in SCROLL_BUDGET[width]}
    for block in look["scrolling"]:
        counts[block["kind"]] += 1
    print(f"{page} at {width} width: blocks that scroll sideways {counts}")
    over = {kind: [b["what"][:70] for b in look["scrolling"] if b["kind"] == kind][:3]
            for kind, n in counts.items() if n > SCROLL_BUDGET[width][kind]}
    assert not over, f"{page} at {width} width: {counts}, over {SCROLL_BUDGET[width]}: {over}"


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("page", BY_PAGE)
def test_no_formula_is_cut_off(browser, phone, base_url, page, width):
    """No typeset formula reaches past a box that hides its overflow: the theme's span.math
    did, and a phone showed the start of 81 inline formulas only."""
    look = _look(browser, phone, base_url, page, width)
    assert not look["clippedFormulas"], \
        f"{page} at {width} width: {len(look['clippedFormulas'])} formulas cut off: " \
        f"{look['clippedFormulas'][:3]}"


# Each check of look.js, shown to fail: a page is broken on purpose in the browser (the level
# badge drawn as the theme's positioned ::after, as optedu.css drew it until issue 23; display
# equations shrunk to 78%; a wide element in the text; code that does not wrap; inline
# formulas clipped as the theme clips them, unbroken) and look.js
# must report every breakage.
BREAK_PAGE = """
const style = document.createElement('style');
style.textContent = `
  html div.admonition.q-standard > .admonition-title::after {
    content: "standard"; margin-left: 0.6em; padding: 0 0.45em; border: 1px solid;
    font-size: 0.75em; font-weight: normal; }
  mjx-container[display="true"] { font-size: 78% !important; }
  article div.highlight pre { white-space: pre !important; }
  span.math { display: inline-flex !important; overflow: hidden !important; }
  mjx-math.optedu-breaks { display: inline-block !important; white-space: nowrap !important; }`;
document.head.appendChild(style);
document.querySelectorAll('.optedu-level').forEach(badge => badge.remove());
const wide = document.createElement('div');
wide.style.width = '2000px';
wide.textContent = 'a line as wide as two desktop screens';
// a paragraph of the page's own flow, not one inside a box that clips its overflow
[...document.querySelectorAll('article p')].find(p => !p.closest('.admonition')).after(wide);
const pre = document.querySelector('.cell_input div.highlight pre');
pre.prepend('x = "' + 'a'.repeat(200) + '"\\n');
"""


@pytest.mark.xdist_group("book/adam.html")
@pytest.mark.parametrize("width", WIDTHS)
def test_look_checks_catch_a_broken_page(browser, phone, base_url, width):
    page = "book/adam.html"
    driver = phone if width == "phone" else browser
    before = _look(browser, phone, base_url, page, width)
    open_page(driver, f"{base_url}/{page}")
    driver.execute_script(BREAK_PAGE)
    broken = driver.execute_script(LOOK)
    driver.get("about:blank")  # the next check loads its page afresh
    assert not before["overlaps"] and broken["overlaps"], "covered titles not seen"
    assert any("standard" in o for o in broken["overlaps"])
    assert before["smallEquations"] == 0 < broken["smallEquations"], "small equations not seen"
    assert before["documentOverflow"] <= 0 < broken["documentOverflow"], "a wide page not seen"
    assert not before["clippedFormulas"] and broken["clippedFormulas"], \
        "formulas cut off not seen"
    code = [b for b in broken["scrolling"] if b["kind"] == "code"]
    assert code and SCROLL_BUDGET[width]["code"] < len(code), "scrolling code not seen"


USABLE = """
const done = arguments[arguments.length - 1];
const finish = () => setTimeout(() => done(
    performance.getEntriesByType('navigation')[0].loadEventEnd / 1000), 0);
if (document.readyState === 'complete') finish(); else addEventListener('load', finish);
"""


#: the bank may take this much longer than the chapter it is measured against
BANK_OVER_CHAPTER = 1.25


def _usable_after(browser, base_url, slowdown: int) -> tuple[float, float, dict]:
    """The median time to the load event of the bank and of Adam's chapter, three cold
    loads of each in turn, the CPU slowed ``slowdown`` times."""
    browser.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
    browser.execute_cdp_cmd("Emulation.setCPUThrottlingRate", {"rate": slowdown})
    times: dict[str, list[float]] = {"questions": [], "adam": []}
    try:
        for _ in range(3):
            for page in times:
                browser.get("about:blank")
                browser.get(f"{base_url}/book/{page}.html")
                browser.set_script_timeout(120)
                times[page].append(browser.execute_async_script(USABLE))
    finally:
        browser.execute_cdp_cmd("Emulation.setCPUThrottlingRate", {"rate": 1})
        browser.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": False})
        browser.set_script_timeout(30)
    bank, chapter = (sorted(t)[1] for t in times.values())
    return bank, chapter, times


@pytest.mark.xdist_group("bank-load")
@pytest.mark.parametrize("slowdown", [1, 4], ids=["cpu", "cpu-4x-slower"])
def test_the_question_bank_is_usable_within_seconds(browser, base_url, slowdown):
    """The bank, 574 answers on one page, from navigation to its load event (laid out, folded,
    its equations typeset at build time), with the browser's cache off, as the CPU runs and
    slowed four times as a phone's is: the median of three loads no slower than
    ``BANK_OVER_CHAPTER`` times Adam's chapter, the longest chapter page, loaded in turn in
    the same browser. Measured against a page and not a number of seconds, since the machine
    that runs the tests is not always as fast, nor alone (on 2026-11-28 here, quiet: the bank
    1.67 s and 7.46 s, Adam 2.17 s and 9.53 s; the same bank took 2.15 s and 13.1 s beside a
    second worker of the tests). Before the build typeset the equations and the page laid out
    only what is near the screen, the bank took 7 s and 19 s."""
    bank, chapter, times = _usable_after(browser, base_url, slowdown)
    print(f"question bank usable after {bank:.2f} s, Adam's chapter after {chapter:.2f} s "
          f"(CPU {slowdown}x slower): {times}")
    assert bank <= BANK_OVER_CHAPTER * chapter, \
        f"the question bank took {bank:.2f} s, over {BANK_OVER_CHAPTER} x Adam's {chapter:.2f} s"


@pytest.mark.xdist_group("bank-load")
def test_the_bank_check_catches_a_page_laid_out_whole(browser, base_url):
    """With every section laid out at once (the site lets the browser skip sections off the
    screen), the bank is slow again and the check above fails: 7.9 s against Adam's 2.5 s."""
    script = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": """
      document.addEventListener('DOMContentLoaded', () => {
        const style = document.createElement('style');
        style.textContent = 'section { content-visibility: visible !important; }';
        document.head.appendChild(style);
      });"""})
    try:
        bank, chapter, _ = _usable_after(browser, base_url, 1)
    finally:
        browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument",
                                {"identifier": script["identifier"]})
    assert bank > BANK_OVER_CHAPTER * chapter, (bank, chapter)
