// The site's search (Sphinx's html_search_scorer; Sphinx 7.4 appends this file to
// _static/language_data.js, which search.html loads after searchtools.js).
//
// Ranking. Sphinx scores a page by the best place of any one query word, and counts a word
// in any section title as a word in the page's title, so whole runs of pages tied and the
// tie went alphabetically: "interview questions" put the question bank 103rd, "batch size"
// put its chapter 16th. Here every word of the query counts, by the best place it holds on
// the page:
//   in the page's own title 10, as the start or the stem of a title word 5 ("finder" and
//   "Finding"), in a section title 3 (for a result that is a section: that section's
//   title), in the text 1.
// Ties are broken, in this order of weight, by: a numbered chapter before the practice
// pages that collect its questions (0.5); the share of the page title that the query covers
// (up to 0.3: "Adam" before "SOAP: Adam in Shampoo's eigenbasis"); the share of the best
// section title that the query covers (up to 0.15); how many section titles hold the whole
// query (0.01 each, up to five). The tie-breakers together stay below 1, the least a word's
// place can add.
//
// Abbreviations. A query word that abbreviates a term the book spells out is read as the
// term: "lr" as "learning rate".
//
// One result a page. Sphinx lists a page's first heading, which is its title, as a result of
// its own ("7. Adam > Adam" after "7. Adam"); it is left out.
//
// Snippets and titles. Sphinx cuts each result's snippet from the page's HTML, whose formulas
// are typeset (their text is read from the screen-reader MathML; TeX where a page is not
// typeset), and shows
// a heading's formula as TeX in the result's title. Here formulas become plain text
// ("\(1-\beta_2^t\)" reads "1-β₂ᵗ"); code cells and the page's contents lists are left out
// of the snippet.

const OPTEDU_ABBREVIATIONS = {lr: "learning rate"};

// Question words. Sphinx lists only the pages that hold every word of the query that is not a
// stopword, so a question typed as a reader asks it ("AdamW weight decay vs L2", "why does
// Adam need bias correction") found nothing, or not its chapter, for want of "vs" or "does".
// They join the stopwords (the array of language_data.js, which this file is appended to).
stopwords.push("vs", "versus", "what", "why", "how", "when", "which", "does", "do", "did",
               "should", "can", "i", "we", "you", "my", "me");

const opteduExpand = (query) => query.replace(/[\p{Letter}\p{Number}_]+/gu,
  (word) => OPTEDU_ABBREVIATIONS[word.toLowerCase()] || word);

// TeX to plain text: symbols to Unicode, fractions to a/b, scripts to Unicode super- and
// subscripts where every character has one; any other command keeps its name.
const OPTEDU_SYMBOLS = {
  alpha: "α", beta: "β", gamma: "γ", delta: "δ", epsilon: "ε", varepsilon: "ε", zeta: "ζ",
  eta: "η", theta: "θ", kappa: "κ", lambda: "λ", mu: "μ", nu: "ν", xi: "ξ", pi: "π",
  rho: "ρ", sigma: "σ", tau: "τ", phi: "φ", varphi: "φ", chi: "χ", psi: "ψ", omega: "ω",
  Gamma: "Γ", Delta: "Δ", Theta: "Θ", Lambda: "Λ", Sigma: "Σ", Pi: "Π", Phi: "Φ", Psi: "Ψ",
  Omega: "Ω", ell: "ℓ", nabla: "∇", partial: "∂", infty: "∞", sum: "Σ", prod: "Π", int: "∫",
  cdot: "·", times: "×", pm: "±", le: "≤", leq: "≤", ge: "≥", geq: "≥", ne: "≠", neq: "≠",
  approx: "≈", sim: "~", propto: "∝", ll: "≪", gg: "≫", lesssim: "≲", gtrsim: "≳",
  preceq: "⪯", succeq: "⪰", succ: "≻", to: "→", rightarrow: "→", leftarrow: "←",
  Longrightarrow: "⟹", mapsto: "↦", searrow: "↘", nearrow: "↗", in: "∈", notin: "∉",
  otimes: "⊗", bigotimes: "⊗", odot: "⊙", top: "ᵀ", star: "⋆", ast: "∗", dots: "…",
  ldots: "…", cdots: "⋯", langle: "⟨", rangle: "⟩", lVert: "‖", rVert: "‖", Vert: "‖",
  "|": "‖", lvert: "|", rvert: "|", mid: "|", parallel: "∥", lceil: "⌈", rceil: "⌉",
  lfloor: "⌊", rfloor: "⌋", square: "□", R: "ℝ", bmod: " mod ", quad: " ", qquad: " ",
  ",": " ", ":": " ", ";": " ", " ": " ", "!": "", "\\": "; ", "{": "{", "}": "}", "%": "%",
  "#": "#", "&": "&", _: "_",
};
const OPTEDU_ACCENTS = {hat: "\u0302", bar: "\u0304", tilde: "\u0303", overline: "\u0304",
                        vec: "\u20d7", dot: "\u0307"};
const OPTEDU_KEEP = new Set(["text", "mathrm", "mathbf", "mathit", "mathsf", "mathcal",
  "mathbb", "boldsymbol", "operatorname", "texttt", "textstyle", "displaystyle", "underbrace",
  "underline", "mathrel"]);
const OPTEDU_DROP = new Set(["left", "right", "big", "bigl", "bigr", "Big", "Bigl", "Bigr",
  "bigg", "biggl", "biggr", "nonumber", "notag", "limits"]);
const OPTEDU_SUP = {0: "⁰", 1: "¹", 2: "²", 3: "³", 4: "⁴", 5: "⁵", 6: "⁶", 7: "⁷", 8: "⁸",
  9: "⁹", "+": "⁺", "-": "⁻", "−": "⁻", "=": "⁼", "(": "⁽", ")": "⁾", a: "ᵃ", b: "ᵇ",
  c: "ᶜ", d: "ᵈ", e: "ᵉ", f: "ᶠ", g: "ᵍ", h: "ʰ", i: "ⁱ", j: "ʲ", k: "ᵏ", l: "ˡ", m: "ᵐ",
  n: "ⁿ", o: "ᵒ", p: "ᵖ", r: "ʳ", s: "ˢ", t: "ᵗ", u: "ᵘ", v: "ᵛ", w: "ʷ", x: "ˣ", y: "ʸ",
  z: "ᶻ", T: "ᵀ", "ᵀ": "ᵀ", "β": "ᵝ", "γ": "ᵞ", "δ": "ᵟ", "θ": "ᶿ", "φ": "ᵠ", "′": "′",
  "*": "*", "⋆": "*", " ": ""};
const OPTEDU_SUB = {0: "₀", 1: "₁", 2: "₂", 3: "₃", 4: "₄", 5: "₅", 6: "₆", 7: "₇", 8: "₈",
  9: "₉", "+": "₊", "-": "₋", "−": "₋", "=": "₌", "(": "₍", ")": "₎", a: "ₐ", e: "ₑ",
  h: "ₕ", i: "ᵢ", j: "ⱼ", k: "ₖ", l: "ₗ", m: "ₘ", n: "ₙ", o: "ₒ", p: "ₚ", r: "ᵣ", s: "ₛ",
  t: "ₜ", u: "ᵤ", v: "ᵥ", x: "ₓ", "β": "ᵦ", "γ": "ᵧ", "ρ": "ᵨ", "φ": "ᵩ", "χ": "ᵪ",
  ",": ",", " ": ""};

const opteduTexToText = (tex) => {
  let i = 0;
  const skipSpaces = () => { while (tex[i] === " " || tex[i] === "\n") i += 1; };
  const sequence = (end) => {
    let out = "";
    while (i < tex.length && tex[i] !== end) out += atom();
    i += 1;  // the closing brace
    return out;
  };
  const argument = () => {
    skipSpaces();
    if (tex[i] === "{") { i += 1; return sequence("}"); }
    return atom();
  };
  const script = (text, table, mark) => {
    const chars = [...text];
    if (chars.length && chars.every((c) => c in table)) return chars.map((c) => table[c]).join("");
    return chars.length === 1 ? mark + text : `${mark}(${text})`;
  };
  const command = (name) => {
    if (name in OPTEDU_SYMBOLS) return OPTEDU_SYMBOLS[name];
    if (OPTEDU_DROP.has(name)) {
      skipSpaces();
      if (tex[i] === ".") i += 1;  // \right. draws nothing
      return "";
    }
    if (OPTEDU_KEEP.has(name)) {
      const text = argument();
      return name === "mathbb" && text === "E" ? "𝔼" : name === "mathbb" && text === "R" ? "ℝ" : text;
    }
    if (name in OPTEDU_ACCENTS) {
      const text = argument();
      return [...text].length === 1 ? text + OPTEDU_ACCENTS[name] : text;
    }
    if (name === "frac" || name === "tfrac" || name === "dfrac") {
      const wrap = (text) => ([...text].length > 1 && /[^\p{Letter}\p{Number}.]/u.test(text)
        ? `(${text})` : text);
      const top = argument();
      return `${wrap(top)}/${wrap(argument())}`;
    }
    if (name === "sqrt") {
      skipSpaces();
      if (tex[i] === "[") { while (i < tex.length && tex[i] !== "]") i += 1; i += 1; }
      const text = argument();
      return /^[\p{Letter}\p{Number}.]*$/u.test(text) ? `√${text}` : `√(${text})`;
    }
    if (name === "begin" || name === "end") { argument(); return " "; }
    if (name === "xrightarrow") { argument(); return "→"; }
    return name;  // \max, \log, \exp and any other: the name as a word
  };
  const atom = () => {
    const c = tex[i];
    if (c === "\\") {
      const match = /^\\([A-Za-z]+|.)/s.exec(tex.slice(i));
      i += match[0].length;
      return command(match[1]);
    }
    i += 1;
    if (c === "{") return sequence("}");
    if (c === "}") return "";
    if (c === "^") return script(argument(), OPTEDU_SUP, "^");
    if (c === "_") return script(argument(), OPTEDU_SUB, "_");
    if (c === "&" || c === "~") return " ";
    return c;
  };
  let out = "";
  while (i < tex.length) out += atom();
  return out.replace(/[ \t]+/g, " ").trim();
};

// The text of a formula element of the page's HTML (\(...\), \[...\], $...$ or $$...$$).
const opteduMathText = (text) => opteduTexToText(text.trim()
  .replace(/^\\[([]|^\$\$?/, "").replace(/\\[)\]]$|\$\$?$/, ""));

// A result's title (HTML: Sphinx's section number in a span, then the heading's text, whose
// formulas the index keeps as TeX without delimiters).
const opteduCleanTitle = (html) => html.replace(/(^|>)([^<]*)/g, (all, open, text) =>
  open + (/\\[A-Za-z()[\]]/.test(text) ? opteduTexToText(text) : text));

if (typeof Search !== "undefined") {
  const parseQuery = Search._parseQuery;
  Search._parseQuery = (query) => parseQuery(opteduExpand(query));

  // A page's first heading is its title: Sphinx lists it as a second result of the page,
  // "7. Adam > Adam", beside the page's own "7. Adam"; that one is left out.
  const plain = (html) => html.replace(/<[^>]*>/g, "").trim();
  const ownTitleAgain = (title) => {
    const [page, section, ...rest] = plain(title).split(" > ");
    return section !== undefined && rest.length === 0
      && page.replace(/^[\d.]+\s*/, "") === section;
  };
  const performSearch = Search._performSearch;
  Search._performSearch = (...args) => performSearch(...args).map((result) => {
    result[1] = opteduCleanTitle(result[1]);
    return result;
  }).filter((result) => !ownTitleAgain(result[1]));

  // As Sphinx 7.4's htmlToText, with formulas as text, and without code cells' source or
  // the page's lists of contents (so a snippet quotes the text, not a heading's entry).
  const LEFT_OUT = ".headerlink, script, style, .cell_input, pre, #jb-print-docs-body, "
    + ".bd-header-article, .bd-sidebar-secondary, .prev-next-footer";
  Search.htmlToText = (htmlString, anchor) => {
    const doc = new DOMParser().parseFromString(htmlString, "text/html");
    const main = doc.querySelector('[role="main"]');
    if (!main) return "";
    main.querySelectorAll(LEFT_OUT)
      .forEach((el) => { if (!el.closest(".cell_output")) el.remove(); });
    main.querySelectorAll(".math").forEach((el) => {
      // typeset at build time (tools/typeset.js): the text of its screen-reader MathML
      const spoken = el.querySelector("mjx-assistive-mml");
      const text = spoken ? spoken.textContent : opteduMathText(el.textContent);
      el.textContent = el.tagName === "DIV" ? ` ${text} ` : text;
    });
    let part = null;
    try { part = anchor ? main.querySelector(anchor) : null; } catch (error) { /* not an id */ }
    return (part || main).textContent;
  };
}

// What the index says of each page: its title's stems, its section titles' stems.
let opteduPages = null;
const opteduStems = (text) => {
  const stemmer = new Stemmer();
  return splitQuery(text.replace(/<[^>]*>/g, " ").toLowerCase())
    .filter((word) => stopwords.indexOf(word) === -1 && !/^\d+$/.test(word))
    .map((word) => stemmer.stemWord(word));
};
const opteduIndex = () => {
  if (opteduPages) return opteduPages;
  const index = Search._index;
  const text = (html) => html.replace(/<[^>]*>/g, "");
  opteduPages = index.titles.map((title) => ({
    title: new Set(opteduStems(title)),
    text: text(title),
    chapter: title.includes('class="section-number"'),
    sections: [],
  }));
  // every title on the page but its own (a heading, an interview question's title)
  for (const [title, places] of Object.entries(index.alltitles)) {
    const stems = new Set(opteduStems(title));
    for (const [file] of places) {
      if (!opteduPages[file].text.endsWith(title)) opteduPages[file].sections.push(stems);
    }
  }
  return opteduPages;
};

const opteduInText = (stem, file) => {
  const files = Search._index.terms[stem];
  return files !== undefined && (files === file || (files.length && files.includes(file)));
};

var Scorer = {
  score: (result) => {
    const [docname, title, anchor, descr, score] = result;
    const query = opteduExpand(new URLSearchParams(window.location.search).get("q") || "");
    const stems = [...new Set(opteduStems(query))];
    const file = Search._index.docnames.indexOf(docname);
    if (!stems.length || file < 0 || descr) return score;  // an object's entry: Sphinx's score
    const page = opteduIndex()[file];
    const section = anchor && title.includes(" > ")
      ? new Set(opteduStems(title.split(" > ").slice(1).join(" > "))) : null;
    const sections = section ? [section] : page.sections;
    const partly = (stem) => [...page.title].some((word) =>
      (word.length >= 4 && stem.startsWith(word)) || (stem.length >= 4 && word.startsWith(stem)));
    let points = 0;
    let inTitle = 0;
    for (const stem of stems) {
      if (page.title.has(stem)) { points += 10; inTitle += 1; }
      else if (partly(stem)) { points += 5; inTitle += 1; }
      else if (sections.some((s) => s.has(stem))) points += 3;
      else if (opteduInText(stem, file)) points += 1;
    }
    const whole = sections.filter((s) => stems.every((stem) => s.has(stem)));
    const focus = Math.max(0, ...whole.map((s) => stems.length / s.size));
    return points
      + (page.chapter ? 0.5 : 0)
      + 0.3 * (page.title.size ? inTitle / Math.max(page.title.size, stems.length) : 0)
      + 0.15 * focus
      + 0.01 * Math.min(whole.length, 5);
  },
  // Sphinx 7.4's defaults (sphinx/themes/basic/static/searchtools.js)
  objNameMatch: 11,
  objPartialMatch: 6,
  objPrio: {0: 15, 1: 5, 2: -5},
  objPrioDefault: 0,
  title: 15,
  partialTitle: 7,
  term: 5,
  partialTerm: 2,
};
