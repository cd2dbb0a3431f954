// The site's search ranking (Sphinx's html_search_scorer): Sphinx's default weights, plus a
// boost for pages whose own title holds every word of the query. Sphinx 7.4 scores a word in
// any section title like a word in the page title, so "Nesterov" tied the Nesterov chapter
// with the NAdam chapter (a section title names Nesterov) and the tie went alphabetically.
var Scorer = {
  score: (result) => {
    const [docname, title, anchor, descr, score, filename] = result;
    const query = new URLSearchParams(window.location.search).get("q") || "";
    const words = query.toLowerCase().split(/\s+/).filter((word) => word.length > 0);
    const pageTitle = (title || "").split(" > ")[0].toLowerCase();
    const own = words.length > 0 && words.every((word) => pageTitle.includes(word));
    return own ? score + 10 : score;
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
