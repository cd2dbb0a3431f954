// Typeset the built website's equations once, at build time, so that no page runs MathJax.
//
//     node tools/typeset.js _build/html        (make book runs it after jupyter-book build)
//
// Every page that loads MathJax (the script Sphinx adds where a page has maths) is read,
// its TeX typeset by the MathJax the site serves (_vendor/mathjax, MathJax 3's own node
// entry point, with the same TeX settings as the page's) into CommonHTML with its hidden
// MathML copy for screen readers, the stylesheet for those formulas written into the page's
// head, and the MathJax scripts removed. A reader's browser then lays out the formulas as
// text: a page no longer downloads 1.2 MB of MathJax, nor waits for it to typeset hundreds
// of formulas (the question bank took 7 s here, 19 s with the CPU slowed 4x as a phone's).
//
// The page's MathJax configuration is read from the page itself (window.MathJax = {...}),
// so _config.yml's macros apply. In a browser MathJax matches each formula's size to the
// ex-height of the text around it; here there is no layout to measure, so formulas take
// the scale the browser gives them in the book's body text (SCALE).
"use strict";
const fs = require("fs");
const path = require("path");

const site = process.argv[2];
if (!site || !fs.existsSync(path.join(site, "index.html"))) {
  console.error("usage: node tools/typeset.js SITE (a built website with index.html)");
  process.exit(2);
}
const mathjax = path.resolve("_vendor", "mathjax");
// the browser's scale in a paragraph of body text (127.3 %) over the scale MathJax takes
// without a layout (113.1 %)
const SCALE = 1.273 / 1.131;
const CONFIG = /<script>window\.MathJax = (\{.*?\})<\/script>\s*/;
const SCRIPT = /<script defer="defer" src="[^"]*mathjax\/tex-chtml\.js[^"]*"><\/script>\s*/;
const FONTS = "__MATHJAX_FONTS__";

function pages(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === "_static" ? [] : pages(full);
    return entry.name.endsWith(".html") ? [full] : [];
  });
}

const files = pages(site).filter((f) => SCRIPT.test(fs.readFileSync(f, "utf8")));
const settings = files.length
  ? JSON.parse(fs.readFileSync(files[0], "utf8").match(CONFIG)[1]) : {};
const expected = JSON.stringify(settings);  // MathJax adds to the object it is given

require(path.join(mathjax, "node-main.js")).init({
  loader: {
    paths: { mathjax },
    versionWarnings: false,
    load: ["adaptors/liteDOM", "input/tex", "output/chtml", "a11y/assistive-mml"],
  },
  tex: settings.tex || {},
  options: settings.options || {},
  chtml: { fontURL: FONTS, scale: SCALE },
  startup: { typeset: false },
}).then((MathJax) => {
  const adaptor = MathJax.startup.adaptor;
  let formulas = 0;
  for (const file of files) {
    const html = fs.readFileSync(file, "utf8");
    const own = html.match(CONFIG);
    if (!own || JSON.stringify(JSON.parse(own[1])) !== expected) {
      throw new Error(`${file}: a MathJax configuration unlike the other pages'`);
    }
    const doc = MathJax.startup.getDocument(html.replace(CONFIG, "").replace(SCRIPT, ""));
    doc.render();
    formulas += Array.from(doc.math).length;
    const up = path.relative(path.dirname(file), path.join(site, "_static")).split(path.sep)
      .join("/");
    const sheet = adaptor.textContent(MathJax.startup.output.styleSheet(doc))
      .split(FONTS).join(`${up}/mathjax/output/chtml/fonts/woff-v2`);
    // MathJax writes its stylesheet into the first page it typesets as well: drop it there,
    // so that every page has one, whose fonts are found from the page's own folder
    const page = (adaptor.doctype(doc.document) + "\n" +
      adaptor.outerHTML(adaptor.root(doc.document)))
      .replace(/<style id="MJX-CHTML-styles">[\s\S]*?<\/style>/g, "");
    if (page.includes(FONTS)) throw new Error(`${file}: a font URL left unresolved`);
    fs.writeFileSync(file, page.replace("</head>",
      `<style id="MJX-CHTML-styles">${sheet}</style>\n</head>`));
  }
  console.log(`typeset ${formulas} formulas on ${files.length} pages`);
}).catch((error) => {
  console.error(error.message || error);
  process.exit(1);
});
