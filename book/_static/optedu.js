/* optedu's small additions to the theme's pages; their styles are in optedu.css. Each one
   improves a page that already reads without JavaScript:
   - interview questions get their level badge (with their kind and a torch-detail mark) as
     a real element after the title's text
     (without JavaScript, optedu.css draws it as the title's ::after instead);
   - code and printed text wrap with a hanging indent: each line becomes a span whose wrapped
     continuation starts 4 columns right of the line's own indentation (the text, and so what
     the copy button copies, is unchanged); printed tables (columns aligned with runs of
     spaces) are left as they are, to scroll in their box;
   - a table gets every cell labelled with its column's header; on a narrow screen, one that
     does not fit its column is shown as stacked rows (without JavaScript it scrolls in its
     box);
   - an inline formula with a relation or a binary operator at its top level is cut into
     pieces after each of them (where TeX breaks inline maths; outside brackets where the
     pieces then fit the line) and between the words of a text in it, so that a formula
     longer than what is left of a line goes on on the next one instead of running off the
     screen; a formula stays on one line with the punctuation that follows it;
   - a block that scrolls sideways (a wide equation, table, printed table or code) is marked
     optedu-scrolls, and optedu-more-left / optedu-more-right while more of it is hidden on
     that side: optedu.css fades that edge; a printed table or a table that scrolls by more than
     two characters also gets a line of text above it, "Scroll sideways for the other
     columns", while it does;
   - printing opens the closed details elements (hidden cell inputs and outputs) where CSS
     cannot (optedu.css prints every other fold open), and closes them again afterwards. */
(function () {
  "use strict";
  document.documentElement.classList.add("optedu-js");

  const LEVELS = {"q-warmup": "warm-up", "q-standard": "standard", "q-deep": "deep"};

  // What the badge adds after the level: the question's kind and the torch-detail mark.
  const MARKS = {"k-scenario": "scenario", "k-choice": "choice", "k-estimate": "estimate",
                 "torch-detail": "torch detail"};

  function levelBadges() {
    for (const [cls, label] of Object.entries(LEVELS)) {
      for (const title of document.querySelectorAll(`div.admonition.${cls} > .admonition-title`)) {
        if (title.querySelector(".optedu-level")) continue;
        const box = title.parentElement.classList;
        const marks = Object.keys(MARKS).filter(mark => box.contains(mark)).map(m => MARKS[m]);
        const badge = document.createElement("span");
        badge.className = "optedu-level";
        badge.textContent = [label, ...marks].join(" · ");
        title.insertBefore(badge, title.querySelector("button.toggle-button"));
      }
    }
  }

  // A printed table: at least two lines with a run of 2+ spaces between two words
  // (a run before a '#' is a code comment's, not a column's).
  function isTabular(text) {
    return text.split("\n").filter(line => /\S {2,}(?=[^\s#])/.test(line.trim())).length >= 2;
  }

  function hangingIndent(pre) {
    // Only flat markup (Pygments' and ANSI colour spans): a span holding spans is left alone.
    if ([...pre.children].some(child => child.children.length)) return;
    const lines = [[]];
    for (const node of [...pre.childNodes]) {
      node.textContent.split("\n").forEach((part, i) => {
        if (i) lines.push([]);
        if (part) lines[lines.length - 1].push([part, node.nodeType === 1 ? node : null]);
      });
    }
    const out = document.createDocumentFragment();
    lines.forEach((parts, i) => {
      const line = document.createElement("span");
      line.className = "optedu-line";
      const text = parts.map(p => p[0]).join("");
      line.style.setProperty("--indent", text.length - text.trimStart().length);
      for (const [part, element] of parts) {
        if (element) {
          const copy = element.cloneNode(false);
          copy.textContent = part;
          line.appendChild(copy);
        } else {
          line.appendChild(document.createTextNode(part));
        }
      }
      if (i < lines.length - 1) line.appendChild(document.createTextNode("\n"));
      out.appendChild(line);
    });
    pre.replaceChildren(out);
  }

  function wrapCode() {
    for (const pre of document.querySelectorAll("article div.highlight pre, article .cell_output pre")) {
      if (pre.classList.contains("optedu-wrap") || pre.classList.contains("optedu-tabular")) continue;
      if (pre.closest(".cell_output") && isTabular(pre.textContent)) {
        pre.classList.add("optedu-tabular");
        continue;
      }
      pre.classList.add("optedu-wrap");
      hangingIndent(pre);
    }
  }

  function labelTables() {
    for (const table of document.querySelectorAll("article table")) {
      if (table.classList.contains("optedu-labelled") || table.closest("pre, mjx-container")) continue;
      const head = table.tHead && table.tHead.rows.length === 1 ? table.tHead.rows[0] : null;
      const cells = table.querySelectorAll("td, th");
      if (!head || head.cells.length < 3
          || [...cells].some(cell => cell.colSpan > 1 || cell.rowSpan > 1)) continue;
      const labels = [...head.cells].map(cell => cell.textContent.trim());
      for (const body of table.tBodies) {
        for (const row of body.rows) {
          [...row.cells].forEach((cell, i) => { if (labels[i]) cell.dataset.label = labels[i]; });
        }
      }
      table.classList.add("optedu-labelled");
    }
  }

  // Stacked on a narrow screen (a phone, a small tablet) where the table is wider than the
  // box it sits in (measured unstacked); on a wider screen a table keeps its grid.

  // A table that fits once its cells are packed tighter (optedu-compact) keeps its grid.
  const NARROW = window.matchMedia("(max-width: 767.98px)");
  const overflows = table => table.offsetWidth > table.parentElement.clientWidth + 1;

  function stackTables() {
    for (const table of document.querySelectorAll("table.optedu-labelled")) {
      table.classList.remove("optedu-stacked", "optedu-compact");
      if (!NARROW.matches || !overflows(table)) continue;
      table.classList.add("optedu-compact");
      if (overflows(table)) {
        table.classList.replace("optedu-compact", "optedu-stacked");
      }
    }
  }

  // MathJax's CommonHTML marks the left space of a relation with space="4" and of a binary
  // operator with space="3" (a unary minus has none): a line may break after either outside
  // brackets, and between the words of a text in the formula (\text{...}, its spaces
  // mjx-c20).
  const SPACE = "mjx-c20";
  const endsWord = el => el.tagName === "MJX-MTEXT" && el.lastElementChild
      && el.lastElementChild.classList.contains(SPACE);
  const breaksAfter = el => (el.tagName === "MJX-MO" && ["3", "4"].includes(el.getAttribute("space")))
      || endsWord(el);

  // (, [, \{, ⟨ and their closing brackets
  const OPEN = /\bmjx-c(28|5B|7B|27E8)\b/;
  const CLOSE = /\bmjx-c(29|5D|7D|27E9)\b/;

  // A text at the formula's top level, cut into one mjx-mtext per word (each with its space).
  function splitWords(mtext) {
    const words = [];
    let word = null;
    for (const c of [...mtext.children]) {
      if (!word) { word = mtext.cloneNode(false); words.push(word); }
      word.appendChild(c);
      if (c.classList.contains(SPACE)) word = null;
    }
    if (words.length > 1) mtext.replaceWith(...words);
  }

  // The bracket a top-level child is, or sits on (a bracket with a power, ")^2").
  const bracket = child => {
    let base = /^MJX-MSU[BP]/.test(child.tagName) ? child.firstElementChild : child;
    // a sized bracket (\big( ... \Big)) sits alone in a TeXAtom
    if (base && base.tagName === "MJX-TEXATOM" && base.children.length === 1) {
      base = base.firstElementChild;
    }
    return base && base.tagName === "MJX-MO" && base.children.length === 1
      ? base.firstElementChild.className : "";
  };

  // The formula's top-level children in pieces, each ending where a line may break; with
  // ``outside``, only outside brackets (null where the brackets do not pair up).
  function cut(math, outside) {
    const pieces = [[]];
    let depth = 0;
    for (const child of [...math.children]) {
      pieces[pieces.length - 1].push(child);
      const c = outside ? bracket(child) : "";
      if (OPEN.test(c)) depth += 1;
      else if (CLOSE.test(c)) depth -= 1;
      else if (!depth && breaksAfter(child)) pieces.push([]);
      if (depth < 0) return null;
    }
    return depth ? null : pieces;
  }

  function group(math, pieces) {
    for (const piece of pieces) {
      const box = document.createElement("mjx-mrow");
      box.className = "optedu-piece";
      piece[0].before(box);
      box.append(...piece);
    }
  }

  function breakFormulas() {
    for (const math of document.querySelectorAll(
        "article mjx-container:not([display='true']) > mjx-math:not(.optedu-breaks)")) {
      // under 12 glyphs a formula fits any line here (the line breaks before it)
      if (math.getElementsByTagName("mjx-c").length < 12) continue;
      for (const child of [...math.children]) {
        if (child.tagName === "MJX-MTEXT" && child.querySelector(`:scope > .${SPACE}`)) splitWords(child);
      }
      const inside = cut(math, false);
      if (!inside[inside.length - 1].length) inside.pop();
      if (inside.length < 2) continue;  // nowhere to break
      const outside = cut(math, true);
      if (outside && !outside[outside.length - 1].length) outside.pop();
      const pieces = outside || inside;
      group(math, pieces);
      math.classList.add("optedu-breaks");
      // measured once laid out only where a piece may be wider than a line: 16 glyphs and
      // more (no layout is forced for the short ones, on the question bank's folded pages)
      if (outside && pieces.some(piece => piece.reduce(
          (n, el) => n + el.getElementsByTagName("mjx-c").length, 0) >= 16)) {
        math.classList.add("optedu-outside");
      }
    }
  }

  // A formula and the punctuation that follows it (or the bracket that opens before it) stay
  // on one line: ", λ = 0.01" began a line after a formula that ended the one before.
  const AFTER = /^[,.;:!?)\]’”]+/;
  const BEFORE = /[(\[‘“]+$/;

  function gluePunctuation() {
    for (const span of document.querySelectorAll("article span.math:not(.optedu-glued)")) {
      span.classList.add("optedu-glued");
      const next = span.nextSibling;
      const prev = span.previousSibling;
      const after = next && next.nodeType === 3 && next.textContent.match(AFTER);
      const before = prev && prev.nodeType === 3 && prev.textContent.match(BEFORE);
      if (!after && !before) continue;
      const glue = document.createElement("span");
      glue.className = "optedu-nobreak";
      span.before(glue);
      if (before) glue.append(prev.splitText(prev.length - before[0].length));
      glue.append(span);
      if (after) {
        next.splitText(after[0].length);
        glue.append(next);
      }
    }
  }

  // Laid out: a formula cut outside its brackets only, with a piece wider than its line,
  // is cut inside them as well. Each is measured when the browser first lays it out (an
  // observer's first call: a fold opened, a section of the question bank scrolled to), so
  // that loading a page lays out nothing more than it did; and all again when the screen
  // turns.
  const LINE = "p, li, dd, dt, td, th, figcaption, div, section";

  function refit(math) {
    if (!math.classList.contains("optedu-outside")) return;
    const line = math.closest(LINE);
    const style = getComputedStyle(line);
    const room = line.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const widths = [...math.children].map(piece => piece.getBoundingClientRect().width);
    if (!room || !widths.some(width => width > room)) return;
    for (const piece of [...math.children]) piece.replaceWith(...piece.childNodes);
    const pieces = cut(math, false);
    if (!pieces[pieces.length - 1].length) pieces.pop();
    group(math, pieces);
    math.classList.remove("optedu-outside");
  }

  // The block that holds a formula is watched (an inline box has no size to observe).
  const fitter = "ResizeObserver" in window
    ? new ResizeObserver(entries => {
      for (const entry of entries) {
        if (!entry.contentRect.width) continue;
        fitter.unobserve(entry.target);  // changed after this call, not during it
        const maths = entry.target.querySelectorAll("mjx-math.optedu-outside");
        requestAnimationFrame(() => maths.forEach(refit));
      }
    })
    : null;

  function refitFormulas(all) {
    for (const math of document.querySelectorAll("mjx-math.optedu-outside")) {
      if (fitter && !all) fitter.observe(math.closest(LINE)); else refit(math);
    }
  }

  // A display equation wider than its column breaks as TeX breaks a long display: before a
  // relation at the top level of a row (the formula, or a cell of an aligned environment),
  // outside brackets; and where a piece between two relations is still wider than the column,
  // before a binary operator too. Nothing inside a fraction, a root, a bracket or a matrix
  // breaks; the equation keeps its size, and the number (Sphinx's span.eqno beside it) keeps
  // its place, or stands above it where the line beside it is too short. An equation that fits is left as MathJax typeset it. Measured when the
  // browser lays it out (the watcher's call below), and again when its width changes.
  const DISPLAY = "mjx-container[display='true']";
  const glyphs = els => els.some(el => el.getElementsByTagName("mjx-c").length);

  // The rows whose children may break: the formula itself, or the cells of its aligned
  // tables (not a matrix's: a table inside brackets).
  function displayRows(math) {
    if (!math.querySelector("mjx-mtable")) return [math];
    return [...math.querySelectorAll("mjx-mtd")].filter(cell => !cell.querySelector("mjx-mtable")
        && !cell.closest("mjx-mrow[texclass='INNER'], mjx-TeXAtom[texclass='INNER']"));
  }

  // A row's children (or a piece's) in pieces, each new one starting at a relation outside
  // brackets; with ``operators``, at a binary operator, after a comma and between the words
  // of a text as well. None without a glyph.
  const COMMA = /\bmjx-c2C\b/;
  // =, <, >, ≤, ≥, ≈, ≡, ∝, ∼, ←, →, ⇒ and ≔ written with explicit spaces (no space attribute)
  const RELATION = /\bmjx-c(3D|3C|3E|2264|2265|2248|2261|221D|223C|2190|2192|21D2|2254)\b/;
  function cutBefore(children, operators) {
    const pieces = [[]];
    let depth = 0;
    let previous = null;
    for (const child of children) {
      const c = bracket(child);
      // MathJax puts a relation's (or operator's) space on both it and what follows it
      const space = child.tagName === "MJX-MO" && !OPEN.test(c) && !CLOSE.test(c)
        && (!child.nextElementSibling
            || child.nextElementSibling.getAttribute("space") === child.getAttribute("space"))
        && child.getAttribute("space");
      const at = space === "4" || (!depth && RELATION.test(c)) || (operators && (space === "3" || (previous
        && (endsWord(previous) || COMMA.test(bracket(previous))))));
      previous = child;
      if (!depth && at && glyphs([child]) && glyphs(pieces[pieces.length - 1])) pieces.push([]);
      pieces[pieces.length - 1].push(child);
      if (OPEN.test(c)) depth += 1;
      else if (CLOSE.test(c)) depth -= 1;
      if (depth < 0) return [children];
    }
    return depth ? [children] : pieces;
  }

  function groupPieces(pieces) {
    if (pieces.length < 2) return;
    for (const piece of pieces) {
      const box = document.createElement("mjx-mrow");
      box.className = "optedu-piece";
      piece[0].before(box);
      box.append(...piece);
    }
  }

  // A wide space between two formulas of one display (",\quad" or ",\qquad": an mspace of
  // 1em or more, alone in its mstyle) at the top level of a row, outside brackets: the
  // better place for a line to break, as a reader would break "a = b, c = d" by hand.
  const gapWidth = child => {
    if (child.tagName !== "MJX-MSTYLE" || child.children.length !== 1) return 0;
    const space = child.firstElementChild;
    const em = space.tagName === "MJX-MSPACE" && /^width:\s*([\d.]+)em/.exec(space.getAttribute("style") || "");
    return em && Number(em[1]) >= 1 ? Number(em[1]) : 0;
  };

  // A row's children cut at its gaps: the pieces between them, and the gaps. One piece where
  // there is no gap, or the brackets do not pair up.
  function cutAtGaps(children) {
    const pieces = [[]], gaps = [];
    let depth = 0;
    for (const child of children) {
      const c = bracket(child);
      if (OPEN.test(c)) depth += 1;
      else if (CLOSE.test(c)) depth -= 1;
      if (depth < 0) return {pieces: [children], gaps: []};
      if (!depth && gapWidth(child) && glyphs(pieces[pieces.length - 1])) {
        gaps.push(child);
        pieces.push([]);
      } else {
        pieces[pieces.length - 1].push(child);
      }
    }
    if (depth || !glyphs(pieces[pieces.length - 1])) return {pieces: [children], gaps: []};
    return {pieces, gaps};
  }

  // Each gap hidden, and in its place a space of its width that the line may break at, which
  // the browser drops at the end of a line (a text space between the pieces' boxes).
  function openGaps(gaps) {
    for (const gap of gaps) {
      gap.classList.add("optedu-gap");
      const space = document.createElement("span");
      space.className = "optedu-gap-space";
      space.style.wordSpacing = `${gapWidth(gap) - 0.25}em`;
      space.textContent = " ";
      gap.after(space);
    }
  }

  function unbreakDisplay(box) {
    for (const space of box.querySelectorAll("span.optedu-gap-space")) space.remove();
    for (const gap of box.querySelectorAll("mjx-mstyle.optedu-gap")) {
      gap.classList.remove("optedu-gap");
    }
    for (const piece of box.querySelectorAll("mjx-mrow.optedu-piece")) {
      piece.replaceWith(...piece.childNodes);
    }
    box.classList.remove("optedu-broken");
    for (const row of box.querySelectorAll(".optedu-row")) row.classList.remove("optedu-row");
  }

  const overflowsBox = box => box.scrollWidth > box.clientWidth + 1;

  function fitDisplay(box) {
    unbreakDisplay(box);
    const math = box.querySelector(":scope > mjx-math");
    if (!math || !box.clientWidth || !overflowsBox(box)) return;
    // A number (Sphinx's span.eqno, floated beside the equation) takes about a fifth of a
    // phone's line: an equation too wide for what is left beside it has its number on a line
    // of its own above it (optedu-number-above), and is measured again at the column's width.
    // Once moved the number stays there, so the width the watcher sees changes only once.
    const holder = box.parentElement;
    if (holder && holder.querySelector(":scope > span.eqno")
        && !holder.classList.contains("optedu-number-above")) {
      holder.classList.add("optedu-number-above");
      if (!overflowsBox(box)) return;
    }
    box.classList.add("optedu-broken");
    const rows = displayRows(math);
    for (const row of rows) {
      for (const child of [...row.children]) {
        if (child.tagName === "MJX-MTEXT" && child.querySelector(`:scope > .${SPACE}`)) splitWords(child);
      }
      // first at the gaps between formulas; where there are none, before the relations
      const {pieces: formulas, gaps} = cutAtGaps([...row.children]);
      const pieces = formulas.length > 1 ? formulas : cutBefore([...row.children], false);
      if (pieces.length > 1) { row.classList.add("optedu-row"); groupPieces(pieces); }
      openGaps(gaps);
    }
    // a piece that reaches past the column breaks before its relations (a formula between
    // gaps), then before its binary operators as well
    for (const operators of [false, true]) {
      if (!overflowsBox(box)) return;
      const right = box.getBoundingClientRect().right + 1;
      for (const row of rows) {
        const wide = (row.classList.contains("optedu-row")
          ? [...row.children].filter(child => child.classList.contains("optedu-piece"))
          : [row]).filter(piece => piece.getBoundingClientRect().right > right);
        for (const piece of wide) {
          const parts = cutBefore([...piece.children], operators);
          if (parts.length < 2) continue;
          if (piece === row) { row.classList.add("optedu-row"); groupPieces(parts); continue; }
          // a formula between gaps that breaks has lines of its own: its neighbours do not
          // share them
          const before = piece.previousElementSibling;
          const after = piece.nextElementSibling && piece.nextElementSibling.nextElementSibling;
          for (const space of [before, after]) {
            if (space && space.matches("span.optedu-gap-space")) {
              space.classList.add("optedu-gap-break");
            }
          }
          groupPieces(parts);
          piece.replaceWith(...piece.childNodes);
        }
      }
    }
  }

  // What may scroll sideways: display equations, the theme's table boxes, a stacked table's
  // cells, code and printed outputs.
  const SCROLLERS = "article :is(mjx-container[display='true'], .pst-scrollable-table-container, "
      + "table.optedu-stacked td, table.optedu-stacked th, pre, .cell_output .output)";

  // Tables, printed or not, get a line of text as well as the fade: a fade alone at the
  // right edge of a table read as its end, and three of five columns went unseen. Not where
  // less than two characters' width is hidden (a few pixels of a last digit): the fade says
  // enough there, and the line would promise columns that are not there.
  const TABULAR = "pre.optedu-tabular, .pst-scrollable-table-container";
  const HIDDEN_FOR_TEXT = 16;

  function markScrolling(box) {
    const more = box.scrollWidth > box.clientWidth + 1;
    box.classList.toggle("optedu-scrolls", more);
    box.classList.toggle("optedu-more-left", more && box.scrollLeft > 1);
    box.classList.toggle("optedu-more-right",
                         more && box.scrollLeft + box.clientWidth < box.scrollWidth - 1);
    if (!box.matches(TABULAR)) return;
    const before = box.previousElementSibling;
    const hinted = before !== null && before.classList.contains("optedu-scroll-hint");
    const wide = box.scrollWidth - box.clientWidth > HIDDEN_FOR_TEXT;
    if (wide && !hinted) {
      const hint = document.createElement("p");
      hint.className = "optedu-scroll-hint";
      hint.textContent = "Scroll sideways for the other columns \u2192";
      box.before(hint);
    } else if (!wide && hinted) {
      before.remove();
    }
  }

  // Watched for size: a block is measured when it is laid out (a fold opens), and again
  // when its width changes (the screen turns).
  const watcher = "ResizeObserver" in window
    ? new ResizeObserver(entries => entries.forEach(entry => {
      const box = entry.target;
      const width = String(Math.round(entry.contentRect.width));
      if (!box.matches(DISPLAY) || width === "0" || box.dataset.opteduWidth === width) {
        markScrolling(box);
        return;
      }
      box.dataset.opteduWidth = width;  // its height changes as it breaks; its width does not
      requestAnimationFrame(() => { fitDisplay(box); markScrolling(box); });
    }))
    : null;

  // Measured when the browser lays the block out (the observer's first call), not at once:
  // reading every block's width would lay out the whole question bank, whose sections are
  // laid out only near the screen.
  function hintScrolling() {
    for (const box of document.querySelectorAll(SCROLLERS)) {
      if (box.dataset.opteduWatched !== undefined) continue;
      box.dataset.opteduWatched = "";
      box.addEventListener("scroll", () => markScrolling(box), {passive: true});
      if (watcher) watcher.observe(box); else markScrolling(box);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    levelBadges();
    wrapCode();
    breakFormulas();
    gluePunctuation();
    labelTables();
    stackTables();
  });
  window.addEventListener("load", () => {
    levelBadges();  // after sphinx-togglebutton, in case it rebuilt a title
    refitFormulas();
    stackTables();
    hintScrolling();
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
      MathJax.startup.promise.then(() => {
        breakFormulas(); gluePunctuation(); refitFormulas(); stackTables(); hintScrolling();
      });
    }
  });
  // Printing opens every closed details element (hidden cell inputs and outputs) and closes
  // it again afterwards; optedu.css opens the folded admonitions and hides the summaries.
  // The folded admonitions are opened here too, by their classes: sphinx-togglebutton's own
  // handler (off, _config.yml) clicks each one's button, and each click runs the theme's menu
  // handler over the whole page (the question bank's 574 clicks took 50 to 65 s).
  const hidden = (fold, hide) => {
    fold.classList.toggle("toggle-hidden", hide);
    const button = fold.querySelector("button.toggle-button");
    if (!button) return;
    button.classList.toggle("toggle-button-hidden", hide);
    button.setAttribute("aria-expanded", String(!hide));
  };
  window.addEventListener("beforeprint", () => {
    for (const details of document.querySelectorAll("article details:not([open])")) {
      details.dataset.opteduPrinted = "";
      details.open = true;
    }
    for (const fold of document.querySelectorAll(".admonition.toggle.toggle-hidden")) {
      fold.dataset.opteduPrinted = "";
      hidden(fold, false);
    }
  });
  window.addEventListener("afterprint", () => {
    for (const details of document.querySelectorAll("article details[data-optedu-printed]")) {
      details.open = false;
      delete details.dataset.opteduPrinted;
    }
    for (const fold of document.querySelectorAll(".admonition.toggle[data-optedu-printed]")) {
      hidden(fold, true);
      delete fold.dataset.opteduPrinted;
    }
  });
  let pending = null;
  window.addEventListener("resize", () => {
    clearTimeout(pending);
    pending = setTimeout(() => { refitFormulas(true); stackTables(); }, 100);
  });

})();
