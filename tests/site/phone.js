// What a phone's reader sees of the text, measured on the page as laid out
// (tests/site/test_site_phone.py), after UNFOLD there has opened every fold.
// Returns {cutFormulas, badEquations, narrowText, scrolling, fadedFitting, needlessHints, screen,
// documentOverflow}.
const article = document.querySelector('article') || document.body;

const describe = el => (el.textContent || '').trim().replace(/\s+/g, ' ').slice(0, 60);
const screen = document.documentElement.clientWidth;
const scrolls = el => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);

// Blocks that scroll sideways inside themselves, by kind (as tests/site/look.js names them),
// each with whether it shows a hint that it does: a fade at the edge it can be scrolled
// towards (a mask image, optedu.css's optedu-scrolls).
const kind = el => el.matches('mjx-container') ? 'equation'
    : el.matches('span.math') ? 'formula'
    : el.closest('table') || el.querySelector('table') ? 'table'
    : el.closest('.cell_output') ? 'printed'
    : el.closest('div.highlight, pre') || el.querySelector('pre') ? 'code' : 'other';
const hinted = el => {
  const cs = getComputedStyle(el);
  return [cs.maskImage, cs.webkitMaskImage].some(m => m && m !== 'none');
};
// A table, printed or not, that hides more than 16 px also gets a line of text above it that
// says it scrolls (optedu.js's optedu-scroll-hint): a fade alone at a table's edge read as
// its end.
const TABULAR = 'pre.optedu-tabular, .pst-scrollable-table-container';
const texted = el => !!(el.previousElementSibling
    && el.previousElementSibling.classList.contains('optedu-scroll-hint'));
const scrolling = [...article.querySelectorAll('*')]
    .filter(el => el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1 && scrolls(el))
    .map(el => ({kind: kind(el), hinted: hinted(el), tabular: el.matches(TABULAR),
                 texted: texted(el), hidden: el.scrollWidth - el.clientWidth,
                 what: el.tagName + '.' + el.className + ' ' + describe(el)}));
// A line of text that says a table scrolls, above a table that fits or hides less than two
// characters (optedu.js's HIDDEN_FOR_TEXT, 16 px).
const needlessHints = [...article.querySelectorAll('.optedu-scroll-hint')]
    .filter(hint => { const box = hint.nextElementSibling;
                      return !box || box.scrollWidth - box.clientWidth <= 16; })
    .map(hint => describe(hint.nextElementSibling || hint));
// A box that fits shows no fade: the fade would hide the end of its text for nothing.
const fadedFitting = [...article.querySelectorAll('*')]
    .filter(el => el.clientWidth > 0 && el.scrollWidth <= el.clientWidth + 1 && hinted(el))
    .map(el => el.tagName + '.' + el.className + ' ' + describe(el));

// Inline formulas not wholly on the screen: the typeset maths reaches past the screen's right
// edge, or past a box that hides or scrolls what overflows it (a formula a reader must scroll
// to read is cut at the screen's edge as well). Formulas inside a table that scrolls are the
// table's.
const cutFormulas = [...article.querySelectorAll('mjx-container:not([display="true"]) > mjx-math')]
    .filter(math => {
      const r = math.getBoundingClientRect();
      if (!r.width) return false;  // not laid out (a hidden cell)
      if (r.right > screen + 1 || r.left < -1) return true;
      for (let box = math.parentElement; box && box !== document.body; box = box.parentElement) {
        const overflow = getComputedStyle(box).overflowX;
        if (overflow === 'visible') continue;
        if (box.matches('table, .pst-scrollable-table-container, .table-wrapper')
            || box.closest('table')) return false;
        const b = box.getBoundingClientRect();
        if (r.right > b.right + 1 || r.left < b.left - 1) return true;
      }
      return false;
    })
    .map(math => describe(math.closest('mjx-container').querySelector('mjx-assistive-mml')
        || math));

// An equation that optedu.js could not break into lines that fit (its breaks all inside
// brackets, roots or fractions, or a row of an aligned table still too wide) scrolls in its
// box: counted against test_site.py's budget. A line past the column of a box that does not
// scroll is cut off: a fault.
const SCROLLS = 'scrolls in its box, unbroken';
// Display equations not wholly in the column: the equation scrolls in its box, or a line of it
// (each piece optedu.js broke it into, or the whole formula) reaches past its box or the
// screen; or it is smaller than the body text; or a line covers its number (Sphinx's
// span.eqno beside it), or the number is off the screen.
const paragraph = [...article.querySelectorAll('p')].find(p =>
    !p.closest('.admonition, table, figure, .cell_output, aside, .sd-card')
    && p.textContent.trim().length > 40) || article;
const bodyFont = parseFloat(getComputedStyle(paragraph).fontSize);
const meets = (a, b) => a.width && b.width && a.left < b.right - 1 && b.left < a.right - 1
    && a.top < b.bottom - 1 && b.top < a.bottom - 1;
const badEquations = [...article.querySelectorAll('mjx-container[display="true"]')]
    .filter(box => box.getBoundingClientRect().width)
    .map(box => {
      const math = box.querySelector(':scope > mjx-math') || box;
      const column = box.getBoundingClientRect();
      const pieces = [...box.querySelectorAll('mjx-mrow.optedu-piece')];
      const lines = (pieces.length ? pieces : [math]).map(el => el.getBoundingClientRect());
      const right = Math.min(column.right, screen) + 1;
      const number = box.parentElement.querySelector(':scope > span.eqno');
      const place = number && number.getBoundingClientRect();
      const scrolls = box.scrollWidth > box.clientWidth + 1;
      const outside = lines.some(r => r.right > right || r.left < column.left - 1);
      const faults = [
        scrolls && SCROLLS,
        outside && !scrolls && 'outside its column',
        parseFloat(getComputedStyle(box).fontSize) < bodyFont - 0.01 && 'smaller than the text',
        place && (lines.some(r => meets(r, place)) || place.right > screen + 1
            || !place.width) && 'its number covered or off the screen',
      ].filter(Boolean);
      return {faults, what: describe(box.querySelector('mjx-assistive-mml') || box)};
    })
    .filter(eq => eq.faults.length)
    .map(eq => `${eq.faults.join(', ')}: ${eq.what}`);

// Blocks of prose narrower than MIN_CHARS characters of their own font: the width of the
// box that holds the text (its content box) over the mean width of a character of English
// prose in that font. Prose only: code, tables, maths and figures keep their own widths, and
// a title (a box's, with its icon and its fold button; a summary's one-line label) is a
// label, not a line that is read.
const MIN_CHARS = 35;
const SAMPLE = 'The step size sets how far each update moves the parameters, ' +
    'and momentum keeps part of the last step.';
const canvas = document.createElement('canvas').getContext('2d');
const charWidth = cs => {
  canvas.font = `${cs.fontStyle} ${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
  return canvas.measureText(SAMPLE).width / SAMPLE.length;
};
const narrowText = [...article.querySelectorAll(
    'p, li, dt, dd, figcaption, caption')]
    .filter(el => !el.closest('table, pre, .highlight, mjx-container, figure, .cell_output, '
        + '.optedu-interactive, nav, .admonition-title, summary'))
    .filter(el => [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim()))
    .map(el => {
      const cs = getComputedStyle(el);
      const width = el.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
      return {el, chars: width / charWidth(cs)};
    })
    .filter(({el, chars}) => el.clientWidth > 0 && chars < MIN_CHARS)
    .map(({el, chars}) => ({chars: Math.round(chars * 10) / 10,
                            what: el.tagName + ' ' + describe(el)}));

return {cutFormulas, badEquations, narrowText, scrolling, fadedFitting, needlessHints, screen,
        documentOverflow: document.documentElement.scrollWidth - screen};
