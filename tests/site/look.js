// What a reader sees, measured on the page as laid out (tests/site/test_site.py: LOOK).
// Returns {overlaps, bodyFont, equationFonts, smallEquations, scrolling, clippedFormulas,
// documentOverflow}.
const article = document.querySelector('article') || document.body;
// The bank lays out only the sections near the screen (content-visibility: auto); measure
// every section as it is laid out when a reader scrolls to it.
for (const el of article.querySelectorAll('section')) {
  if (getComputedStyle(el).contentVisibility === 'auto') el.style.contentVisibility = 'visible';
}

const overlap = (a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > 1
    && Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 1;
const shown = r => r.width > 0 && r.height > 0;
const describe = el => (el.textContent || '').trim().replace(/\s+/g, ' ').slice(0, 50);

// Boxes drawn inside a title beside its text: level badges, buttons, header links, and
// positioned pseudo-elements with content (the theme's icon; a badge drawn as ::after).
const DECORATION = '.optedu-level, button, a.headerlink';
const canvas = document.createElement('canvas').getContext('2d');

function pseudoBoxes(el) {
  const boxes = [];
  const own = getComputedStyle(el);
  const at = el.getBoundingClientRect();
  for (const pseudo of ['::before', '::after']) {
    const cs = getComputedStyle(el, pseudo);
    const content = cs.content;
    if (!content || ['none', 'normal', '""'].includes(content) || cs.display === 'none'
        || !['absolute', 'fixed'].includes(cs.position) || own.position === 'static') continue;
    // A pseudo-element has no rectangle of its own: its place from the computed offsets,
    // its size the larger of its box and its text (the text overflows a narrow box).
    const px = v => parseFloat(v) || 0;
    canvas.font = `${cs.fontStyle} ${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
    const text = content.replace(/^"|"$/g, '');
    const width = Math.max(px(cs.width), canvas.measureText(text).width
        + px(cs.paddingLeft) + px(cs.paddingRight) + px(cs.borderLeftWidth) + px(cs.borderRightWidth));
    const height = Math.max(px(cs.height), px(cs.lineHeight) || 1.2 * px(cs.fontSize));
    const left = cs.left !== 'auto'
        ? at.left + px(own.borderLeftWidth) + px(cs.left) + px(cs.marginLeft)
        : at.right - px(own.borderRightWidth) - px(cs.right) - px(cs.marginRight) - width;
    const top = cs.top !== 'auto'
        ? at.top + px(own.borderTopWidth) + px(cs.top) + px(cs.marginTop)
        : at.bottom - px(own.borderBottomWidth) - px(cs.bottom) - height;
    if (width > 0 && height > 0) {
      boxes.push({what: `${pseudo} ${content.slice(0, 20)}`,
                  rect: {left, top, right: left + width, bottom: top + height}});
    }
  }
  return boxes;
}

function textRects(title) {
  const rects = [];
  const walker = document.createTreeWalker(title, NodeFilter.SHOW_TEXT);
  for (let node; (node = walker.nextNode());) {
    if (!node.textContent.trim() || node.parentElement.closest(DECORATION)) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    rects.push(...[...range.getClientRects()].filter(shown));
  }
  return rects;
}

const overlaps = [];
const titles = article.querySelectorAll(
    'h1, h2, h3, h4, h5, h6, .admonition-title, figcaption, caption, p.rubric');
for (const title of titles) {
  const text = textRects(title);
  const decorations = [...title.querySelectorAll(DECORATION)]
      .filter(el => getComputedStyle(el).visibility === 'visible')  // drawn (not on hover only)
      .flatMap(el => [...el.getClientRects()].filter(shown).map(rect => ({what: el.tagName + '.'
          + el.className + ' ' + describe(el), rect})))
      .concat(pseudoBoxes(title));
  for (const {what, rect} of decorations) {
    if (text.some(t => overlap(t, rect))) {
      overlaps.push(`"${describe(title)}" under ${what}`);
    }
  }
}

// Body text: the first plain paragraph of the page's prose.
const paragraph = [...article.querySelectorAll('p')].find(p =>
    !p.closest('.admonition, table, figure, .cell_output, aside, .sd-card')
    && p.textContent.trim().length > 40) || article;
const bodyFont = parseFloat(getComputedStyle(paragraph).fontSize);
const equationFonts = [...article.querySelectorAll('mjx-container[display="true"]')]
    .map(el => parseFloat(getComputedStyle(el).fontSize));

// Blocks that scroll sideways inside themselves, by kind.
const kind = el => el.matches('mjx-container') ? 'equation'
    : el.matches('span.math') ? 'formula'
    : el.closest('table') || el.querySelector('table') ? 'table'
    : el.closest('.cell_output') ? 'printed'
    : el.closest('div.highlight, pre') || el.querySelector('pre') ? 'code' : 'other';
const scrolling = [...article.querySelectorAll('*')]
    .filter(el => el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1
        && ['auto', 'scroll'].includes(getComputedStyle(el).overflowX))
    .map(el => ({kind: kind(el), excess: el.scrollWidth - el.clientWidth,
                 what: el.tagName + '.' + el.className + ' ' + describe(el)}));

// Formulas cut off: the typeset maths (mjx-math) reaches past an ancestor that hides what
// overflows it, so the reader sees only the start of the formula. Inside a box that scrolls,
// what counts from there on is that box (its content can be scrolled to).
const clippedFormulas = [...article.querySelectorAll('mjx-container > mjx-math')]
    .filter(math => {
      let r = math.getBoundingClientRect();
      for (let box = math.parentElement; box && box !== article.parentElement;
           box = box.parentElement) {
        const overflow = getComputedStyle(box).overflowX;
        const b = box.getBoundingClientRect();
        if (['hidden', 'clip'].includes(overflow)
            && (r.right > b.right + 1 || r.left < b.left - 1)) return true;
        if (['auto', 'scroll'].includes(overflow)) r = b;
      }
      return false;
    })
    .map(math => describe(math.closest('mjx-container')));

return {overlaps, bodyFont, equationFonts,
        smallEquations: equationFonts.filter(size => size < bodyFont - 0.01).length,
        scrolling, clippedFormulas,
        documentOverflow: document.documentElement.scrollWidth
            - document.documentElement.clientWidth};
