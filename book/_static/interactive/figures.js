/* The chapters' moving figures: the book's rules (rules.js, OptEduRules) re-run in the page as
 * the reader moves a control.
 *
 * A chapter asks for a figure with an empty element,
 *   <div class="optedu-interactive" data-figure="momentum"></div>
 * (raw HTML in a Markdown cell; book/_ext/interactive.py adds this script and rules.js to the
 * pages that have one). Each figure has its controls (native range inputs, check boxes, selects
 * and buttons, so the keyboard works as everywhere), SVG panels that scale with the column,
 * and a sentence that says in words what the panels show, read out when it changes. The
 * chapter's static figure next to it, drawn by optedu in Python, is what print and readers
 * without scripts see.
 */
(function () {
  "use strict";
  const R = window.OptEduRules;
  const SVGNS = "http://www.w3.org/2000/svg";
  const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"];
  const GREY = "#8a8a8a";
  const W = 320, H = 230;                             // a panel's viewBox
  const PAD = { left: 52, right: 16, top: 8, bottom: 34 };

  function el(tag, attrs = {}, parent = null, ns = null) {
    const node = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "text") node.textContent = v;
      else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v);
    }
    if (parent) parent.appendChild(node);
    return node;
  }
  const svg = (tag, attrs, parent) => el(tag, attrs, parent, SVGNS);

  // numbers as the book prints them: 3 significant digits, 2.6 × 10⁻⁶ when small or large
  const SUPER = { "-": "⁻", 0: "⁰", 1: "¹", 2: "²", 3: "³", 4: "⁴", 5: "⁵", 6: "⁶", 7: "⁷",
                  8: "⁸", 9: "⁹" };
  function num(x, digits = 3) {
    if (!Number.isFinite(x)) return "∞";
    if (x === 0) return "0";
    const e = Math.floor(Math.log10(Math.abs(x)));
    if (e >= -3 && e < 5) return String(Number(x.toPrecision(digits)));
    const m = Number((x / Math.pow(10, e)).toPrecision(digits));
    const power = String(e).split("").map((c) => SUPER[c]).join("");
    return m === 1 ? `10${power}` : `${m} × 10${power}`;
  }

  // --- controls ---------------------------------------------------------------------------
  // A range input moves over the logarithm of a log-scaled value; its aria-valuetext says the
  // value itself.
  function control(spec, values, onChange, parent) {
    const id = `oi-${spec.figure}-${spec.name}`;
    const box = el("div", { class: `oi-control oi-${spec.type || "range"}` }, parent);
    if (spec.type === "button") {
      const button = el("button", { type: "button", id, text: spec.label }, box);
      button.addEventListener("click", () => onChange(spec.press(values)));
      return () => {};
    }
    if (spec.type === "checkbox") {
      const label = el("label", { for: id }, box);
      const input = el("input", { type: "checkbox", id, name: spec.name }, label);
      label.appendChild(document.createTextNode(spec.label));
      input.checked = values[spec.name];
      input.addEventListener("change", () => onChange({ [spec.name]: input.checked }));
      return () => { input.checked = values[spec.name]; };
    }
    el("label", { for: id, text: spec.label }, box);
    if (spec.type === "select") {
      const select = el("select", { id, name: spec.name }, box);
      for (const [value, text] of spec.options) el("option", { value, text }, select);
      select.value = values[spec.name];
      select.addEventListener("change", () => onChange({ [spec.name]: select.value }));
      return () => { select.value = values[spec.name]; };
    }
    // log "1-": the slider moves over −log₁₀(1 − v), so that β₂ grows to the right
    const toSlider = (v) => spec.log ? (spec.log === "1-" ? -Math.log10(1 - v) : Math.log10(v))
      : v;
    const fromSlider = (s) => spec.log ? (spec.log === "1-" ? 1 - Math.pow(10, -s)
      : Math.pow(10, s)) : s;
    const [lo, hi] = [toSlider(spec.min), toSlider(spec.max)].sort((a, b) => a - b);
    const input = el("input", { type: "range", id, name: spec.name, min: lo, max: hi,
                                step: spec.step }, box);
    const output = el("output", { for: id }, box);
    const format = spec.format || ((v) => num(v));
    const show = () => {
      // a control that the current setting does not use is disabled (e.g. WSD's decay)
      input.disabled = spec.enabled ? !spec.enabled(values) : false;
      box.classList.toggle("oi-disabled", input.disabled);
      input.value = toSlider(values[spec.name]);
      output.textContent = format(values[spec.name]);
      input.setAttribute("aria-valuetext", format(values[spec.name]));
    };
    input.addEventListener("input", () => {
      const v = fromSlider(Number(input.value));
      onChange({ [spec.name]: spec.round ? spec.round(v) : v });
    });
    show();
    return show;
  }

  // --- panels -----------------------------------------------------------------------------
  function scale(d0, d1, r0, r1, log) {
    const f = log ? Math.log10 : (v) => v;
    const a = f(d0), b = f(d1);
    return (v) => r0 + (f(v) - a) / (b - a) * (r1 - r0);
  }

  function axes(g, x, y, { xLabel, yLabel, xTicks, yTicks }) {
    svg("rect", { x: PAD.left, y: PAD.top, width: W - PAD.left - PAD.right,
                  height: H - PAD.top - PAD.bottom, class: "oi-frame" }, g);
    for (const [v, text] of xTicks) {
      svg("text", { x: x(v), y: H - PAD.bottom + 13, class: "oi-tick", "text-anchor": "middle",
                    text }, g);
    }
    for (const [v, text] of yTicks) {
      svg("text", { x: PAD.left - 3, y: y(v) + 4, class: "oi-tick", "text-anchor": "end",
                    text }, g);
    }
    svg("text", { x: (PAD.left + W - PAD.right) / 2, y: H - 4, class: "oi-label",
                  "text-anchor": "middle", text: xLabel }, g);
    svg("text", { x: 12, y: (PAD.top + H - PAD.bottom) / 2, class: "oi-label",
                  "text-anchor": "middle",
                  transform: `rotate(-90 11 ${(PAD.top + H - PAD.bottom) / 2})`,
                  text: yLabel }, g);
  }

  const points = (xs, ys, x, y) => xs.map((v, i) => `${x(v).toFixed(1)},${y(ys[i]).toFixed(1)}`)
    .join(" ");

  // a loss surface as a shaded picture with level lines, computed once per surface
  const shading = new Map();
  function surfaceImage(key, loss, [[x0, x1], [y0, y1]]) {
    if (shading.has(key)) return shading.get(key);
    if (shading.size > 64) shading.clear();              // a slider makes one per position
    const nx = 96, ny = 72, canvas = document.createElement("canvas");
    canvas.width = nx; canvas.height = ny;
    const ctx = canvas.getContext("2d"), image = ctx.createImageData(nx, ny);
    const levels = [];
    let lo = Infinity, hi = -Infinity;
    for (let j = 0; j < ny; j++) {
      for (let i = 0; i < nx; i++) {
        const f = loss([x0 + (i + 0.5) / nx * (x1 - x0), y1 - (j + 0.5) / ny * (y1 - y0)]);
        levels.push(f); lo = Math.min(lo, f); hi = Math.max(hi, f);
      }
    }
    const span = hi - lo || 1;
    const level = levels.map((f) => Math.log10((f - lo) / span + 1e-4));   // -4 .. 0
    const band = level.map((l) => Math.floor(l * 3));
    for (let k = 0; k < level.length; k++) {
      const t = (level[k] + 4) / 4;                       // 0 at the bottom of the surface
      const edge = (k % nx < nx - 1 && band[k] !== band[k + 1])
        || (k + nx < level.length && band[k] !== band[k + nx]);
      const shade = edge ? 170 : 252 - 55 * t;
      image.data.set([shade - 20 * t, shade, 255 - 25 * t * (edge ? 2 : 1), 255], 4 * k);
    }
    ctx.putImageData(image, 0, 0);
    const url = canvas.toDataURL();
    shading.set(key, url);
    return url;
  }

  // the iterates over the surface
  function landscape(node, { key, loss, bounds, minimum, paths, xLabel = "x", yLabel = "y" }) {
    node.textContent = "";
    const [[x0, x1], [y0, y1]] = bounds;
    const x = scale(x0, x1, PAD.left, W - PAD.right), y = scale(y0, y1, H - PAD.bottom, PAD.top);
    svg("image", { href: surfaceImage(key, loss, bounds), x: PAD.left, y: PAD.top,
                   width: W - PAD.left - PAD.right, height: H - PAD.top - PAD.bottom,
                   preserveAspectRatio: "none" }, node);
    const ticks = (a, b) => [a, (a + b) / 2, b].map((v) => [v, num(v, 2)]);
    axes(node, x, y, { xLabel, yLabel, xTicks: ticks(x0, x1), yTicks: ticks(y0, y1) });
    const clip = svg("g", { "clip-path": `url(#${node.id}-clip)` }, node);
    const defs = svg("clipPath", { id: `${node.id}-clip` }, node);
    svg("rect", { x: PAD.left, y: PAD.top, width: W - PAD.left - PAD.right,
                  height: H - PAD.top - PAD.bottom }, defs);
    if (minimum) {
      svg("path", { d: `M${x(minimum[0]) - 5},${y(minimum[1])}h10M${x(minimum[0])},`
                       + `${y(minimum[1]) - 5}v10`, class: "oi-minimum" }, clip);
    }
    for (const p of paths) {
      const xs = p.path.map((q) => q[0]), ys = p.path.map((q) => q[1]);
      svg("polyline", { points: points(xs, ys, x, y), stroke: p.colour, fill: "none",
                        "stroke-width": p.width || 1.4, "stroke-dasharray": p.dash }, clip);
      if (!p.bare) svg("circle", { cx: x(xs[0]), cy: y(ys[0]), r: 3, fill: p.colour }, clip);
    }
  }

  // curves against the step (or any x), on a log or linear y axis
  function curves(node, { series, logY = true, xLabel = "step", yLabel, xMax, yRange,
                          marks = [] }) {
    node.textContent = "";
    const finite = series.flatMap((s) => s.ys).filter((v) => Number.isFinite(v)
      && (!logY || v > 0));
    let [lo, hi] = yRange || (finite.length ? [Math.min(...finite), Math.max(...finite)]
      : [1e-3, 1]);
    if (logY) {
      lo = Math.pow(10, Math.floor(Math.log10(Math.max(lo, 1e-300))));
      hi = Math.pow(10, Math.ceil(Math.log10(hi)));
      if (hi / lo > 1e16) lo = hi / 1e16;
      if (hi === lo) hi = lo * 10;
    } else if (hi === lo) { hi = lo + 1; }
    const n = xMax || Math.max(...series.map((s) => (s.xs || s.ys).length - 1));
    const x = scale(0, n, PAD.left, W - PAD.right), y = scale(lo, hi, H - PAD.bottom, PAD.top,
      logY);
    const yTicks = logY ? [lo, Math.sqrt(lo * hi), hi].filter((v, i) =>
      i !== 1 || Number.isInteger(Math.log10(v))) : [lo, (lo + hi) / 2, hi];
    axes(node, x, y, { xLabel, yLabel, xTicks: [0, n / 2, n].map((v) => [v, num(v, 2)]),
                       yTicks: yTicks.map((v) => [v, num(v, 2)]) });
    const clip = svg("g", { "clip-path": `url(#${node.id}-clip)` }, node);
    const defs = svg("clipPath", { id: `${node.id}-clip` }, node);
    svg("rect", { x: PAD.left, y: PAD.top - 1, width: W - PAD.left - PAD.right,
                  height: H - PAD.top - PAD.bottom + 2 }, defs);
    for (const m of marks) {
      if (m.y !== undefined) {
        svg("line", { x1: PAD.left, x2: W - PAD.right, y1: y(m.y), y2: y(m.y),
                      class: "oi-mark" }, clip);
      } else {
        svg("line", { x1: x(m.x), x2: x(m.x), y1: PAD.top, y2: H - PAD.bottom,
                      class: "oi-mark" }, clip);
      }
    }
    for (const s of series) {
      const xs = s.xs || s.ys.map((_, i) => i);
      const kept = xs.map((v, i) => [v, s.ys[i]]).filter(([, v]) => Number.isFinite(v)
        && (!logY || v > 0));
      const clampY = (v) => Math.min(Math.max(v, lo), hi);
      svg("polyline", { points: points(kept.map((p) => p[0]), kept.map((p) => clampY(p[1])),
                                        x, y),
                        stroke: s.colour, fill: "none", "stroke-width": s.width || 1.4,
                        "stroke-dasharray": s.dash }, clip);
      if (s.dots) {
        for (const [a, b] of kept) svg("circle", { cx: x(a), cy: y(clampY(b)), r: 2.5,
                                                   fill: s.colour }, clip);
      }
    }
  }

  // a run cut where it leaves the surface: the step it diverged at, or null
  function run(form, problem, x0, hyper, steps, schedule) {
    const out = R.run(form, problem, x0, hyper, steps, schedule);
    const limit = 1e6 * Math.max(1, out.losses[0]);
    const bad = out.losses.findIndex((f) => !Number.isFinite(f) || f > limit);
    if (bad >= 0) { out.path = out.path.slice(0, bad); out.losses = out.losses.slice(0, bad); }
    out.diverged = bad >= 0 ? bad : null;
    return out;
  }
  // the mean of the last k values at each step (of those there are)
  const smooth = (ys, k) => ys.map((_, i) => {
    const window = ys.slice(Math.max(0, i - k + 1), i + 1);
    return window.reduce((s, v) => s + v, 0) / window.length;
  });
  const ending = (r, steps) => r.diverged !== null ? `diverges at step ${r.diverged}`
    : `reaches loss ${num(r.losses[steps])} after ${steps} steps`;
  // two runs and their losses side by side: the rule as set (a), another in grey (b)
  function sideBySide([surface, loss], a, b, steps, view) {
    landscape(surface, Object.assign({ paths: [{ path: b.path, colour: GREY, dash: "3 2" },
                                               { path: a.path, colour: COLOURS[0] }] }, view));
    curves(loss, { xMax: steps, yLabel: "loss", series: [
      { ys: b.losses, colour: GREY, dash: "3 2" },
      { ys: a.losses, colour: COLOURS[0], width: 2 }] });
  }

  // --- the figures --------------------------------------------------------------------------
  const FIGURES = {};

  // Chapter "Momentum": heavy ball on the quadratic ½(x² + κy²)
  FIGURES.momentum = {
    title: "Heavy ball on ½(x² + κy²): move the condition number, the rate and the momentum",
    values: { kappa: 100, lr: 0.019, mu: 0.9 },
    controls: [
      { name: "kappa", label: "condition number κ", min: 1, max: 1000, step: 0.01, log: true,
        format: (v) => num(v, 3) },
      { name: "lr", label: "learning rate η", min: 1e-4, max: 2, step: 0.01, log: true },
      { name: "mu", label: "momentum μ", min: 0, max: 0.99, step: 0.01, format: (v) => v.toFixed(2) },
      { type: "button", name: "polyak", label: "Polyak's tuning",
        press: ({ kappa }) => ({ lr: 4 / Math.pow(Math.sqrt(kappa) + 1, 2),
                                 mu: Math.pow((Math.sqrt(kappa) - 1) / (Math.sqrt(kappa) + 1), 2) }) },
    ],
    panels: ["the path over the surface", "the loss and the two eigen-components"],
    legend: [["heavy ball", COLOURS[0]], ["gradient descent, same η", GREY],
             ["|x|, shallow", COLOURS[1]], ["|y|, steep", COLOURS[2]]],
    draw({ kappa, lr, mu }, [surface, loss]) {
      const steps = 150, extent = 1.2 * Math.max(1, Math.sqrt(kappa));
      const problem = R.problems.quadratic({ kappa }), start = [-0.9 * extent, 1];
      const hb = run("sgd", problem, start, { lr, momentum: mu }, steps);
      const gd = run("sgd", problem, start, { lr }, steps);
      landscape(surface, { key: `quadratic-${kappa}`, loss: problem.loss, minimum: [0, 0],
                           bounds: [[-extent, extent], [-1.8, 1.8]],
                           paths: [{ path: gd.path, colour: GREY, dash: "3 2" },
                                   { path: hb.path, colour: COLOURS[0] }] });
      curves(loss, { xMax: steps, yLabel: "loss, |x|, |y|", series: [
        { ys: gd.losses, colour: GREY, dash: "3 2" },
        { ys: hb.path.map((p) => Math.abs(p[0])), colour: COLOURS[1], width: 1 },
        { ys: hb.path.map((p) => Math.abs(p[1])), colour: COLOURS[2], width: 1 },
        { ys: hb.losses, colour: COLOURS[0], width: 2 }] });
      const bound = 2 * (1 + mu);
      return `Heavy ball with η = ${num(lr)} and μ = ${mu.toFixed(2)} on a valley of condition `
        + `number ${num(kappa)} ${ending(hb, steps)}; gradient descent at the same rate `
        + `${ending(gd, steps)}. The steep direction (curvature L = κ) is stable while `
        + `ηL < 2(1 + μ) = ${num(bound)}; here ηL = ${num(lr * kappa)}.`;
    },
  };

  // Chapter "Adam": Adam on Rosenbrock's valley, bias correction on or off
  FIGURES.adam = {
    title: "Adam on Rosenbrock's valley: move β₁, β₂ and ε, turn the bias correction off",
    values: { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, corrected: true },
    controls: [
      { name: "lr", label: "learning rate η", min: 1e-3, max: 1, step: 0.01, log: true },
      { name: "beta1", label: "β₁", min: 0, max: 0.99, step: 0.01, format: (v) => v.toFixed(2) },
      { name: "beta2", label: "β₂", min: 0.9, max: 0.9999, step: 0.01, log: "1-",
        format: (v) => String(Number(v.toPrecision(4))) },
      { name: "eps", label: "ε", min: 1e-12, max: 1, step: 0.1, log: true },
      { type: "checkbox", name: "corrected", label: "bias correction" },
    ],
    panels: ["the path over Rosenbrock's valley", "the loss"],
    legend: [["Adam as set", COLOURS[0]], ["the other bias-correction setting", GREY]],
    draw({ lr, beta1, beta2, eps, corrected }, [surface, loss]) {
      const steps = 200, problem = R.problems.rosenbrock(), start = [-1.5, 2];
      const hyper = { lr, beta1, beta2, eps };
      const form = (on) => on ? ["adam", hyper]
        : ["adamVariant", Object.assign({ form: "no bias correction" }, hyper)];
      const [ruleA, hA] = form(corrected), [ruleB, hB] = form(!corrected);
      const a = run(ruleA, problem, start, hA, steps), b = run(ruleB, problem, start, hB, steps);
      sideBySide([surface, loss], a, b, steps, { key: "rosenbrock", loss: problem.loss,
                                                 minimum: [1, 1], bounds: [[-2, 2], [-1, 3]] });
      const first = Math.hypot(a.path[1][0] - start[0], a.path[1][1] - start[1]) / lr;
      return `Adam with η = ${num(lr)}, β₁ = ${beta1.toFixed(2)}, β₂ = `
        + `${Number(beta2.toPrecision(4))}, ε = ${num(eps)}, bias correction `
        + `${corrected ? "on" : "off"}, ${ending(a, steps)}; its first step is `
        + `${num(first)} η long. With the correction ${corrected ? "off" : "on"} it `
        + `${ending(b, steps)}.`;
    },
  };

  // Chapter "Learning-rate schedules": a schedule's shape, and the same rule run under it
  const SCHEDULE_NAMES = [["wsd", "warmup–stable–decay"], ["warmupCosine", "warmup + cosine"],
                          ["oneCycle", "1cycle"], ["constant", "constant"]];
  FIGURES.schedules = {
    title: "A schedule times a rule: heavy ball or Adam on a noisy quadratic",
    values: { schedule: "wsd", rule: "heavyBall", lr: 0.05, warmup: 0.1,
              minRatio: 0.1, decay: 0.2 },
    controls: [
      { type: "select", name: "schedule", label: "schedule", options: SCHEDULE_NAMES },
      { type: "select", name: "rule", label: "rule",
        options: [["heavyBall", "heavy ball (μ = 0.9)"], ["adam", "Adam"]] },
      { name: "lr", label: "peak rate η", min: 1e-3, max: 0.3, step: 0.01, log: true },
      { name: "warmup", label: "warmup (share of the steps)", min: 0, max: 0.5, step: 0.01,
        format: (v) => `${Math.round(100 * v)}%`,
        enabled: ({ schedule }) => schedule !== "constant" },
      { name: "minRatio", label: "final rate / peak", min: 0, max: 1, step: 0.01,
        format: (v) => v.toFixed(2),
        enabled: ({ schedule }) => schedule === "wsd" || schedule === "warmupCosine" },
      { name: "decay", label: "decay (share of the steps)", min: 0.05, max: 0.8,
        step: 0.01, format: (v) => `${Math.round(100 * v)}%`,
        enabled: ({ schedule }) => schedule === "wsd" },
    ],
    panels: ["the rate against the step", "the path over the noisy quadratic",
             "the loss against the step"],
    legend: [["scheduled", COLOURS[0]], ["constant peak rate", GREY]],
    draw({ schedule, rule, lr, warmup, minRatio, decay }, [shape, surface, loss]) {
      const steps = 300, w = Math.round(warmup * steps), d = Math.round(decay * steps);
      const make = {
        constant: () => R.schedules.constant(),
        warmupCosine: () => R.schedules.warmupCosine({ warmup_steps: w, total_steps: steps,
                                                       min_ratio: minRatio }),
        wsd: () => R.schedules.wsd({ warmup_steps: w, stable_steps: Math.max(0, steps - w - d),
                                     decay_steps: d, min_ratio: minRatio }),
        oneCycle: () => R.schedules.oneCycle({ max_lr: lr, total_steps: steps,
                                               pct_start: Math.max(warmup, 0.02) }),
      }[schedule]();
      const rate = (t) => make.absolute ? make(t) : lr * make(t);
      const problem = () => R.problems.noisyQuadratic({ kappa: 10, sigma: 0.5, seed: 0 });
      const start = [-3, 1.5];
      const a = run(rule, problem(), start, { lr }, steps, make);
      const b = run(rule, problem(), start, { lr }, steps);
      curves(shape, { logY: false, yLabel: "rate ηₜ", yRange: [0, lr], series: [
        { ys: Array.from({ length: steps }, (_, t) => lr), colour: GREY, dash: "3 2" },
        { ys: Array.from({ length: steps }, (_, t) => rate(t)), colour: COLOURS[0], width: 2 }] });
      landscape(surface, { key: "noisy-quadratic", loss: problem().loss, minimum: [0, 0],
                           bounds: [[-3.5, 3.5], [-2, 2]],
                           paths: [{ path: b.path, colour: GREY, dash: "3 2", width: 1 },
                                   { path: a.path, colour: COLOURS[0] }] });
      curves(loss, { xMax: steps, yLabel: "loss, mean of 15 steps", series: [
        { ys: smooth(b.losses, 15), colour: GREY, dash: "3 2" },
        { ys: smooth(a.losses, 15), colour: COLOURS[0], width: 2 }] });
      const tail = (r) => r.diverged !== null ? Infinity
        : r.losses.slice(-30).reduce((s, v) => s + v, 0) / 30;
      const name = SCHEDULE_NAMES.find(([k]) => k === schedule)[1];
      const shares = { wsd: `, warmup ${Math.round(100 * warmup)}%, decay `
                         + `${Math.round(100 * decay)}% to ${minRatio.toFixed(2)} of the peak`,
                       warmupCosine: `, warmup ${Math.round(100 * warmup)}%, to `
                         + `${minRatio.toFixed(2)} of the peak`,
                       oneCycle: `, rising over ${Math.round(100 * Math.max(warmup, 0.02))}%`,
                       constant: "" }[schedule];
      // why the two differ: the noise floor, or a run still short of it
      const why = schedule === "constant" ? "the same run"
        : num(tail(a)) === num(tail(b)) ? "the same to three digits"
        : tail(a) < tail(b) ? "the noise sets a floor that only a smaller rate lowers"
        : "here the schedule's lower rates slow the descent more than they lower the noise "
          + "floor";
      return `${rule === "adam" ? "Adam" : "Heavy ball"} at peak rate ${num(lr)} under `
        + `${name}${shares}, ${ending(a, steps)}; its mean loss over the last 30 steps is ${num(tail(a))}, `
        + `against ${num(tail(b))} at the constant peak rate (${why}).`;
    },
  };

  // Chapter "Muon": Newton–Schulz on a 2×2 update
  const rotation = (a) => [[Math.cos(a), -Math.sin(a)], [Math.sin(a), Math.cos(a)]];
  const times = (A, B) => A.map((row) => B[0].map((_, j) => row[0] * B[0][j] + row[1] * B[1][j]));
  function singular(M) {                                 // a 2×2 matrix's singular values
    const f = M.flat().reduce((s, v) => s + v * v, 0);
    const det = Math.abs(M[0][0] * M[1][1] - M[0][1] * M[1][0]);
    const root = Math.sqrt(Math.max(0, f * f - 4 * det * det));
    return [Math.sqrt((f + root) / 2), Math.sqrt(Math.max(0, (f - root) / 2))];
  }
  FIGURES.muon = {
    title: "Muon's Newton–Schulz steps on a 2 × 2 update: how close to orthogonal?",
    values: { ratio: 0.1, angle: 30, steps: 5, coefficients: "quintic" },
    controls: [
      { name: "ratio", label: "σ₂/σ₁ of the update", min: 1e-3, max: 1, step: 0.01, log: true },
      { name: "angle", label: "rotation of U (degrees)", min: 0, max: 180, step: 1,
        format: (v) => `${Math.round(v)}°` },
      { name: "steps", label: "Newton–Schulz steps k", min: 0, max: 5, step: 1,
        format: (v) => String(Math.round(v)), round: Math.round },
      { type: "select", name: "coefficients", label: "polynomial",
        options: [["quintic", "quintic, torch's default"], ["cubic", "classic cubic"]] },
    ],
    panels: ["the unit circle through X₀ and Xₖ", "singular values against the step"],
    legend: [["X₀ = G/‖G‖", GREY], ["Xₖ", COLOURS[0]], ["σ₁", COLOURS[1]],
             ["σ₂", COLOURS[2]], ["‖Xₖ − UVᵀ‖ (Frobenius)", COLOURS[3]]],
    draw({ ratio, angle, steps, coefficients }, [circle, values]) {
      const U = rotation(angle * Math.PI / 180), V = rotation(20 * Math.PI / 180);
      const Vt = [[V[0][0], V[1][0]], [V[0][1], V[1][1]]];
      const G = times(times(U, [[1, 0], [0, ratio]]), Vt), polar = times(U, Vt);
      const coef = coefficients === "quintic" ? R.NS_COEFFICIENTS : [1.5, -0.5, 0];
      const X = Array.from({ length: 6 }, (_, k) => R.newtonSchulz(G, { coefficients: coef,
                                                                         steps: k }));
      const sv = X.map(singular);
      const gap = X.map((M) => Math.hypot(...M.flat().map((v, i) => v - polar.flat()[i])));
      const ring = (M) => Array.from({ length: 97 }, (_, i) => {
        const t = 2 * Math.PI * i / 96, c = Math.cos(t), s = Math.sin(t);
        return [M[0][0] * c + M[0][1] * s, M[1][0] * c + M[1][1] * s];
      });
      landscape(circle, { key: "plain", loss: () => 0, bounds: [[-1.6, 1.6], [-1.2, 1.2]],
                          xLabel: "first coordinate", yLabel: "second", minimum: [0, 0],
                          paths: [{ path: ring([[1, 0], [0, 1]]), colour: "#444", dash: "1 3",
                                    width: 1 },
                                  { path: ring(X[0]), colour: GREY, dash: "3 2" },
                                  { path: ring(X[steps]), colour: COLOURS[0], width: 2 }] });
      curves(values, { xLabel: "Newton–Schulz step", yLabel: "singular value, distance",
                       xMax: 5, marks: [{ x: steps }, { y: 1 }], series: [
        { ys: sv.map((s) => s[0]), colour: COLOURS[1], dots: true },
        { ys: sv.map((s) => s[1]), colour: COLOURS[2], dots: true },
        { ys: gap, colour: COLOURS[3], dash: "4 2", dots: true }] });
      const [s1, s2] = sv[steps];
      return `An update with σ₂/σ₁ = ${num(ratio)}, U rotated by ${Math.round(angle)}°, `
        + `after ${steps} Newton–Schulz step`
        + `${steps === 1 ? "" : "s"} of the ${coefficients}: its singular values are `
        + `${num(s1)} and ${num(s2)} (orthogonal: 1 and 1), and it is ${num(gap[steps])} from `
        + `UVᵀ in the Frobenius norm. Turning U turns the circles and leaves these numbers as `
        + `they are: each step acts on the singular values alone.`;
    },
  };

  // Chapter "Nesterov": the same momentum, the gradient taken at the look-ahead point
  FIGURES.nesterov = {
    title: "Nesterov against heavy ball on ½(x² + 10y²): move η and μ",
    values: { lr: 0.09, mu: 0.9, nesterov: true },
    controls: [
      { name: "lr", label: "learning rate η", min: 1e-3, max: 0.3, step: 0.01, log: true },
      { name: "mu", label: "momentum μ", min: 0, max: 0.99, step: 0.01,
        format: (v) => v.toFixed(2) },
      { type: "checkbox", name: "nesterov", label: "Nesterov (off: heavy ball)" },
    ],
    panels: ["the paths over the bowl", "the loss against the step"],
    legend: [["the rule as set", COLOURS[0]], ["the other rule, same η and μ", GREY]],
    draw({ lr, mu, nesterov }, [surface, loss]) {
      const steps = 200, extent = 1.2 * Math.sqrt(10), start = [-0.9 * extent, 1];
      const problem = R.problems.quadratic({ kappa: 10 });
      const a = run("sgd", problem, start, { lr, momentum: mu, nesterov }, steps);
      const b = run("sgd", problem, start, { lr, momentum: mu, nesterov: !nesterov }, steps);
      sideBySide([surface, loss], a, b, steps, { key: "quadratic-10", loss: problem.loss,
                                                 minimum: [0, 0],
                                                 bounds: [[-extent, extent], [-1.8, 1.8]] });
      const [me, other] = nesterov ? ["Nesterov", "heavy ball"] : ["Heavy ball", "Nesterov"];
      return `${me} with η = ${num(lr)} and μ = ${mu.toFixed(2)} ${ending(a, steps)}; `
        + `${other} with the same η and μ ${ending(b, steps)}. On the steep direction `
        + `(curvature h = 10) heavy ball is stable while ηh < 2(1 + μ) = ${num(2 * (1 + mu))}, `
        + `Nesterov while ηh < 2(1 + μ)/(1 + 2μ) = ${num(2 * (1 + mu) / (1 + 2 * mu))}; `
        + `here ηh = ${num(10 * lr)}.`;
    },
  };

  // Chapter "AdaGrad": AdaGrad's clock runs down, RMSProp's forgets
  function trace(name, problem, x0, hyper, steps, read) {
    const rule = R.rules[name], state = rule.init(x0, hyper);
    const path = [state.x.slice()], values = [read(state)];
    for (let t = 0; t < steps; t++) {
      rule.step(state, problem.grad(state.x), hyper);
      path.push(state.x.slice());
      values.push(read(state));
    }
    const losses = path.map(problem.loss);
    return { path, losses, values };
  }
  FIGURES.adagrad = {
    title: "AdaGrad against RMSProp on ½(x² + 100y²): the sum that never forgets",
    values: { lr: 0.5, G0: 0, alpha: 0.99 },
    controls: [
      { name: "lr", label: "learning rate η (both)", min: 0.01, max: 3, step: 0.01, log: true },
      { name: "G0", label: "AdaGrad's starting sum G₀", min: 0, max: 1000, step: 1,
        format: (v) => String(Math.round(v)), round: Math.round },
      { name: "alpha", label: "RMSProp's α", min: 0.9, max: 0.9999, step: 0.01, log: "1-",
        format: (v) => String(Number(v.toPrecision(4))) },
    ],
    panels: ["the paths over the valley", "the loss against the step",
             "the rate on x, η/(√G + ε) or η/(√v + ε)"],
    legend: [["AdaGrad", COLOURS[0]], ["RMSProp", COLOURS[1]]],
    draw({ lr, G0, alpha }, [surface, loss, clock]) {
      const steps = 300, start = [-10.8, 1], problem = R.problems.quadratic({ kappa: 100 });
      const ada = trace("adagrad", problem, start, { lr, initial_accumulator_value: G0 }, steps,
                        (s) => lr / (Math.sqrt(s.sum[0]) + 1e-10));
      const rms = trace("rmsprop", problem, start, { lr, alpha }, steps,
                        (s) => lr / (Math.sqrt(s.sq[0]) + 1e-8));
      landscape(surface, { key: "quadratic-100", loss: problem.loss, minimum: [0, 0],
                           bounds: [[-12, 12], [-1.8, 1.8]],
                           paths: [{ path: rms.path, colour: COLOURS[1] },
                                   { path: ada.path, colour: COLOURS[0] }] });
      curves(loss, { xMax: steps, yLabel: "loss", series: [
        { ys: rms.losses, colour: COLOURS[1] }, { ys: ada.losses, colour: COLOURS[0] }] });
      curves(clock, { xMax: steps, yLabel: "rate on x", series: [
        { ys: rms.values.slice(1), xs: rms.values.slice(1).map((_, i) => i + 1),
          colour: COLOURS[1] },
        { ys: ada.values.slice(1), xs: ada.values.slice(1).map((_, i) => i + 1),
          colour: COLOURS[0] }] });
      const end = (r) => `loss ${num(r.losses[steps])}, rate on x ${num(r.values[steps])}`;
      return `With η = ${num(lr)}, after ${steps} steps AdaGrad (G₀ = ${Math.round(G0)}) has `
        + `${end(ada)}; RMSProp (α = ${Number(alpha.toPrecision(4))}) has ${end(rms)}. `
        + `AdaGrad's rate on x fell from ${num(ada.values[1])} at the first step.`;
    },
  };

  // Chapter "The edge of stability": gradient descent on f = (uv − 1)²/2
  function sharpness([u, v]) {                 // the Hessian's top eigenvalue
    const a = v * v, c = u * u, b = 2 * u * v - 1;
    return (a + c + Math.sqrt((a - c) * (a - c) + 4 * b * b)) / 2;
  }
  const hyperbola = (a, b) => ({                // the minima, uv = 1, from u = a to b
    path: Array.from({ length: 60 }, (_, i) => { const u = a + (b - a) * i / 59;
                                                 return [u, 1 / u]; }),
    colour: "#444", dash: "1 3", width: 1, bare: true });
  FIGURES.edge_of_stability = {
    title: "Gradient descent on (uv − 1)²/2: the sharpness ends at or below 2/η",
    values: { lr: 0.15, u0: 4 },
    controls: [
      { name: "lr", label: "learning rate η", min: 0.01, max: 0.3, step: 0.005, log: true },
      { name: "u0", label: "start u₀ (v₀ = 0.1)", min: 1, max: 5, step: 0.05,
        format: (v) => v.toFixed(2) },
    ],
    panels: ["the path over the loss, minima on uv = 1", "the sharpness against the step",
             "the loss against the step"],
    legend: [["gradient descent", COLOURS[0]], ["2/η (dashed)", GREY]],
    draw({ lr, u0 }, [surface, sharp, loss]) {
      const steps = 200, problem = R.problems.product(), start = [u0, 0.1];
      const r = run("sgd", problem, start, { lr }, steps);
      const s = r.path.map(sharpness);
      landscape(surface, { key: "product", loss: problem.loss, bounds: [[-5.5, 5.5], [-3, 3]],
                           xLabel: "u", yLabel: "v",
                           paths: [hyperbola(0.18, 5.5), hyperbola(-5.5, -0.18),
                                   { path: r.path, colour: COLOURS[0] }] });
      const top = Math.max(2 / lr, ...s.filter(Number.isFinite)) * 1.1;
      curves(sharp, { logY: false, xMax: steps, yLabel: "sharpness", yRange: [0, top],
                      marks: [{ y: 2 / lr }], series: [{ ys: s, colour: COLOURS[0], width: 2 }] });
      curves(loss, { xMax: steps, yLabel: "loss", series: [{ ys: r.losses, colour: COLOURS[0] }] });
      const settledAt = s[s.length - 1];
      return `Gradient descent with η = ${num(lr)} (2/η = ${num(2 / lr)}) from u = `
        + `${u0.toFixed(2)}, v = 0.1, where the sharpness is ${num(s[0])}: it `
        + `${ending(r, steps)}`
        + (r.diverged === null ? ` at a minimum of sharpness ${num(settledAt)}, `
          + `${settledAt <= 2 / lr ? "at or below" : "above"} 2/η.` : ".");
    },
  };

  // Chapter "Lion": steps of size η in every coordinate, the sign of a blend of two averages
  FIGURES.lion = {
    title: "Lion and sign descent on ½(x² + 10y²): steps of one size in every coordinate",
    values: { rule: "lion", lr: 0.05, beta1: 0.9, beta2: 0.99, wd: 0 },
    controls: [
      { type: "select", name: "rule", label: "rule",
        options: [["lion", "Lion"], ["signDescent", "sign descent (Lion with β₁ = 0)"]] },
      { name: "lr", label: "learning rate η", min: 1e-3, max: 0.5, step: 0.01, log: true },
      { name: "beta1", label: "β₁ (the step's blend)", min: 0, max: 0.99, step: 0.01,
        format: (v) => v.toFixed(2), enabled: ({ rule }) => rule === "lion" },
      { name: "beta2", label: "β₂ (the momentum kept)", min: 0.9, max: 0.9999, step: 0.01,
        log: "1-", format: (v) => String(Number(v.toPrecision(4))),
        enabled: ({ rule }) => rule === "lion" },
      { name: "wd", label: "weight decay λ", min: 0, max: 2, step: 0.01,
        format: (v) => v.toFixed(2) },
    ],
    panels: ["the path over the bowl", "the loss against the step"],
    legend: [["the rule as set", COLOURS[0]], ["Adam, same η", GREY]],
    draw({ rule, lr, beta1, beta2, wd }, [surface, loss]) {
      const steps = 200, extent = 1.2 * Math.sqrt(10), start = [-0.9 * extent, 1];
      const problem = R.problems.quadratic({ kappa: 10 });
      const hyper = rule === "lion" ? { lr, beta1, beta2, weight_decay: wd }
        : { lr, beta1: 0, weight_decay: wd };
      const a = run("lion", problem, start, hyper, steps);
      const b = run("adam", problem, start, { lr }, steps);
      sideBySide([surface, loss], a, b, steps, { key: "quadratic-10", loss: problem.loss,
                                                 minimum: [0, 0],
                                                 bounds: [[-extent, extent], [-1.8, 1.8]] });
      const name = rule === "lion" ? `Lion (β₁ = ${beta1.toFixed(2)}, β₂ = `
        + `${Number(beta2.toPrecision(4))})` : "Sign descent";
      const last = a.path.slice(-20).map((q) => Math.abs(q[0]) + Math.abs(q[1]));
      const tail = a.diverged === null ? Math.max(...last) : Infinity;
      // still on its way: |x| + |y| fell at every one of the last 20 steps
      const arriving = a.diverged === null && last.every((v, i) => i === 0 || v < last[i - 1]);
      const where = arriving ? `it is still on its way, ${num(last[19])} from the minimum in `
        + `|x| + |y| (${num(last[19] / lr)} η)`
        : `over its last 20 steps it stays within ${num(tail)} of the minimum in |x| + |y| `
        + `(${num(tail / lr)} η)`;
      return `${name} with η = ${num(lr)} and λ = ${wd.toFixed(2)} ${ending(a, steps)}; `
        + `${where}. Adam at the same η ${ending(b, steps)}.`;
    },
  };

  // Chapter "Gradient clipping": gradient descent on Rosenbrock's valley, clipped to norm τ
  FIGURES.clipping = {
    title: "Gradient descent on Rosenbrock's valley, each gradient clipped to norm τ",
    values: { lr: 0.003, tau: 100 },
    controls: [
      { name: "lr", label: "learning rate η", min: 1e-4, max: 0.01, step: 0.01, log: true },
      { name: "tau", label: "threshold τ", min: 0.1, max: 1000, step: 0.01, log: true },
    ],
    panels: ["the paths over Rosenbrock's valley", "the loss against the step",
             "the gradient's norm against the step"],
    legend: [["clipped", COLOURS[0]], ["not clipped, same η", GREY], ["τ", GREY]],
    draw({ lr, tau }, [surface, loss, norms]) {
      const steps = 300, problem = R.problems.rosenbrock(), start = [-1.5, 2];
      const a = run("sgd", problem, start, { lr, max_norm: tau }, steps);
      const b = run("sgd", problem, start, { lr }, steps);
      sideBySide([surface, loss], a, b, steps, { key: "rosenbrock", loss: problem.loss,
                                                 minimum: [1, 1], bounds: [[-2, 2], [-1, 3]] });
      const norm = (r) => r.path.map((p) => Math.hypot(...problem.grad(p)));
      curves(norms, { xMax: steps, yLabel: "‖g‖ before clipping", marks: [{ y: tau }],
                      series: [{ ys: norm(b), colour: GREY, dash: "3 2" },
                               { ys: norm(a), colour: COLOURS[0], width: 2 }] });
      const clipped = norm(a).slice(0, steps).filter((n) => n > tau).length;
      return `Gradient descent with η = ${num(lr)}, each gradient clipped to norm `
        + `τ = ${num(tau)}, ${ending(a, steps)}; ${clipped} of its gradients ${clipped === 1 ? "was" : "were"} clipped. `
        + `Not clipped, at the same η, it ${ending(b, steps)}.`;
    },
  };

  // --- mounting -----------------------------------------------------------------------------
  function mount(root) {
    const figure = FIGURES[root.dataset.figure];
    if (!figure || root.dataset.ready) return;
    root.dataset.ready = "true";
    const name = root.dataset.figure;
    const values = Object.assign({}, figure.values);
    root.setAttribute("role", "group");
    const title = el("p", { class: "oi-title", id: `oi-${name}-title`, text: figure.title },
                     root);
    root.setAttribute("aria-labelledby", title.id);
    const controls = el("div", { class: "oi-controls" }, root);
    const grid = el("div", { class: `oi-panels oi-panels-${figure.panels.length}` }, root);
    const panels = figure.panels.map((label, i) => {
      const node = svg("svg", { viewBox: `0 0 ${W} ${H}`, id: `oi-${name}-panel-${i}`,
                                role: "img", "aria-label": label, class: "oi-panel" }, grid);
      return node;
    });
    const legend = el("p", { class: "oi-legend", "aria-hidden": "true" }, root);
    for (const [text, colour] of figure.legend) {
      const item = el("span", {}, legend);
      el("span", { class: "oi-swatch", style: `background:${colour}` }, item);
      item.appendChild(document.createTextNode(text));
    }
    const summary = el("p", { class: "oi-summary", "aria-live": "polite" }, root);
    const shows = [];
    const redraw = () => {
      summary.textContent = figure.draw(values, panels);
      root.dataset.drawn = String(Number(root.dataset.drawn || 0) + 1);
    };
    const change = (update) => {
      Object.assign(values, update);
      shows.forEach((show) => show());
      redraw();
    };
    for (const spec of figure.controls) {
      shows.push(control(Object.assign({ figure: name }, spec), values, change, controls));
    }
    redraw();
  }

  function mountAll() {
    document.querySelectorAll(".optedu-interactive[data-figure]").forEach(mount);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
  else mountAll();
  window.OptEduFigures = { FIGURES, mount, num };
})();
