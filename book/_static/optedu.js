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

  document.addEventListener("DOMContentLoaded", () => {
    levelBadges();
    wrapCode();
    labelTables();
    stackTables();
  });
  window.addEventListener("load", () => {
    levelBadges();  // after sphinx-togglebutton, in case it rebuilt a title
    stackTables();
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
      MathJax.startup.promise.then(stackTables);
    }
  });
  // Printing opens every closed details element (hidden cell inputs and outputs) and closes
  // it again afterwards; optedu.css opens the folded admonitions and hides the summaries.
  window.addEventListener("beforeprint", () => {
    for (const details of document.querySelectorAll("article details:not([open])")) {
      details.dataset.opteduPrinted = "";
      details.open = true;
    }
  });
  window.addEventListener("afterprint", () => {
    for (const details of document.querySelectorAll("article details[data-optedu-printed]")) {
      details.open = false;
      delete details.dataset.opteduPrinted;
    }
  });
  let pending = null;
  window.addEventListener("resize", () => {
    clearTimeout(pending);
    pending = setTimeout(stackTables, 100);
  });
})();
