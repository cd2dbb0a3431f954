/* The book's update rules on small problems, for the figures a reader can move.
 *
 * Each rule is written as optedu writes it (optedu/optim/*.py), operation for operation in
 * float64, so that the page runs the book's rule and not a look-alike: tests/site/
 * test_site_interactive.py runs every rule here in Chromium on every problem and compares
 * the iterates with optedu's classes.  torch's CPU kernels fuse some multiply-adds (x.add_(y,
 * alpha=a) is one rounding of a*y + x, as are addcmul_ and lerp_); JavaScript has no fused
 * multiply-add, so fma() below computes a*b + c exactly with integers and rounds once.
 *
 * A classic script (no module), so that it also runs from a file: it defines one global,
 * OptEduRules.
 */
(function (root) {
  "use strict";

  // --- exact arithmetic: a*b + c rounded once, as the hardware's fused multiply-add -------
  const buffer = new DataView(new ArrayBuffer(8));

  function decompose(x) {          // x = m * 2^e exactly, m an integer (BigInt)
    buffer.setFloat64(0, x);
    const hi = buffer.getUint32(0), lo = buffer.getUint32(4);
    const sign = hi >>> 31 ? -1n : 1n;
    const biased = (hi >>> 20) & 0x7ff;
    let m = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
    if (biased !== 0) m |= 1n << 52n;
    return [sign * m, (biased === 0 ? 1 : biased) - 1075];
  }

  function roundToDouble(m, e) {   // the double nearest m * 2^e (ties to even)
    if (m === 0n) return 0;
    const negative = m < 0n;
    if (negative) m = -m;
    let bits = m.toString(2).length;
    // keep 53 significant bits, or fewer below the normal range
    let shift = bits - 53;
    if (e + shift < -1074) shift = -1074 - e;
    if (shift > 0) {
      const half = 1n << BigInt(shift - 1);
      const rest = m & ((1n << BigInt(shift)) - 1n);
      m >>= BigInt(shift);
      if (rest > half || (rest === half && (m & 1n) === 1n)) m += 1n;
      e += shift;
    }
    const value = Number(m) * Math.pow(2, e);   // exact: m has at most 54 bits
    return negative ? -value : value;
  }

  function fma(a, b, c) {
    if (!Number.isFinite(a) || !Number.isFinite(b) || !Number.isFinite(c)) return a * b + c;
    const [ma, ea] = decompose(a), [mb, eb] = decompose(b), [mc, ec] = decompose(c);
    let mp = ma * mb, ep = ea + eb;
    let mc2 = mc, e = Math.min(ep, ec);
    mp <<= BigInt(ep - e);
    mc2 <<= BigInt(ec - e);
    const sum = mp + mc2;
    if (sum === 0n) return (a * b) + c;         // the sign of an exact zero, as IEEE gives it
    return roundToDouble(sum, e);
  }

  // torch's element-wise operations on float64, as its CPU kernels round them
  const op = {
    addAlpha: (x, y, alpha) => fma(alpha, y, x),                  // x.add_(y, alpha=α)
    addcmul: (x, t1, t2, value) => fma(value * t1, t2, x),        // x.addcmul_(t1, t2, value)
    addcdiv: (x, t1, t2, value) => x + (value * t1) / t2,         // x.addcdiv_(t1, t2, value)
    lerp: (x, end, w) => Math.abs(w) < 0.5 ? fma(w, end - x, x)   // x.lerp_(end, w)
      : fma(-(end - x), 1 - w, end),
    sign: (x) => x > 0 ? 1 : x < 0 ? -1 : 0,
  };

  // --- problems: the loss and its gradient, in plain float64 ------------------------------
  // A seeded generator (mulberry32) so that a noisy problem is the same in every browser and
  // in the tests; a normal draw is the sum of 12 uniforms less 6 (no transcendental function,
  // whose last bit differs between JavaScript engines and C libraries).
  function generator(seed) {
    let a = seed >>> 0;
    const uniform = () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1) >>> 0;
      t = (t ^ (t + Math.imul(t ^ (t >>> 7), t | 61))) >>> 0;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const normal = () => {
      let s = 0;
      for (let i = 0; i < 12; i++) s += uniform();
      return s - 6;
    };
    return { uniform, normal };
  }

  const problems = {
    // f = (x² + κ y²)/2: condition number κ
    quadratic: ({ kappa = 10 } = {}) => ({
      loss: ([x, y]) => 0.5 * (x * x + kappa * y * y),
      grad: ([x, y]) => [x, kappa * y],
      minimum: [0, 0],
    }),
    // the same, each gradient with seeded noise of deviation σ
    noisyQuadratic: ({ kappa = 10, sigma = 0.5, seed = 0 } = {}) => {
      const rng = generator(seed);
      return {
        loss: ([x, y]) => 0.5 * (x * x + kappa * y * y),
        grad: ([x, y]) => [x + sigma * rng.normal(), kappa * y + sigma * rng.normal()],
        minimum: [0, 0],
      };
    },
    // Rosenbrock's valley: f = (a - x)² + b (y - x²)²
    rosenbrock: ({ a = 1, b = 100 } = {}) => ({
      loss: ([x, y]) => (a - x) * (a - x) + b * (y - x * x) * (y - x * x),
      grad: ([x, y]) => [-2 * (a - x) - 4 * b * x * (y - x * x), 2 * b * (y - x * x)],
      minimum: [a, a * a],
    }),
    // a saddle: f = (x² - y²)/2 + y⁴/4, minima at (0, ±1)
    saddle: () => ({
      loss: ([x, y]) => 0.5 * (x * x - y * y) + 0.25 * y * y * y * y,
      grad: ([x, y]) => [x, -y + y * y * y],
      minimum: [0, 1],
    }),
    // a two-parameter model, f = (u v - 1)²/2: its sharpness (the Hessian's top eigenvalue)
    // is u² + v² at the minima, so a large rate drives it down to about 2/η
    product: () => ({
      loss: ([u, v]) => 0.5 * (u * v - 1) * (u * v - 1),
      grad: ([u, v]) => { const r = u * v - 1; return [r * v, r * u]; },
      sharpness: ([u, v]) => u * u + v * v,
      minimum: null,
    }),
  };

  // --- rules: init(x0, hyper) -> state; step(state, grad) moves state.x -------------------
  // Each mirrors optedu's function of the same name, line for line (named in the comment).
  const rules = {
    // optedu.optim.sgd.sgd: momentum μ, dampening τ, Nesterov, L2 decay λ
    sgd: {
      init: (x0) => ({ x: x0.slice(), buf: null }),
      step(s, grad, { lr, momentum = 0, dampening = 0, nesterov = false, weight_decay = 0 }) {
        let g = grad.slice();
        if (weight_decay !== 0) g = g.map((gi, i) => op.addAlpha(gi, s.x[i], weight_decay));
        if (momentum !== 0) {
          if (s.buf === null) s.buf = g.slice();                      // b₁ = g₁
          else s.buf = s.buf.map((b, i) => op.addAlpha(b * momentum, g[i], 1 - dampening));
          g = nesterov ? g.map((gi, i) => op.addAlpha(gi, s.buf[i], momentum)) : s.buf;
        }
        s.x = s.x.map((xi, i) => op.addAlpha(xi, g[i], -lr));         // θ ← θ − η d
      },
    },
    // optedu.optim.adagrad.adagrad
    adagrad: {
      init: (x0, { initial_accumulator_value = 0 } = {}) =>
        ({ x: x0.slice(), sum: x0.map(() => initial_accumulator_value), t: 0 }),
      step(s, grad, { lr, lr_decay = 0, weight_decay = 0, eps = 1e-10 }) {
        s.t += 1;
        let g = grad.slice();
        if (weight_decay !== 0) g = g.map((gi, i) => op.addAlpha(gi, s.x[i], weight_decay));
        const clr = lr / (1 + (s.t - 1) * lr_decay);
        s.sum = s.sum.map((v, i) => op.addcmul(v, g[i], g[i], 1));     // G += g²
        const denom = s.sum.map((v) => Math.sqrt(v) + eps);
        s.x = s.x.map((xi, i) => op.addcdiv(xi, g[i], denom[i], -clr));
      },
    },
    // optedu.optim.rmsprop.rmsprop
    rmsprop: {
      init: (x0) => ({ x: x0.slice(), sq: x0.map(() => 0), avg: x0.map(() => 0),
                       buf: x0.map(() => 0) }),
      step(s, grad, { lr, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0,
                      centered = false }) {
        let g = grad.slice();
        if (weight_decay !== 0) g = g.map((gi, i) => op.addAlpha(gi, s.x[i], weight_decay));
        s.sq = s.sq.map((v, i) => op.addcmul(v * alpha, g[i], g[i], 1 - alpha));
        let denom;
        if (centered) {
          s.avg = s.avg.map((a, i) => op.lerp(a, g[i], 1 - alpha));
          denom = s.sq.map((v, i) => Math.sqrt(op.addcmul(v, s.avg[i], s.avg[i], -1)));
        } else {
          denom = s.sq.map((v) => Math.sqrt(v));
        }
        denom = denom.map((d) => d + eps);
        if (momentum > 0) {
          s.buf = s.buf.map((b, i) => op.addcdiv(b * momentum, g[i], denom[i], 1));
          s.x = s.x.map((xi, i) => op.addAlpha(xi, s.buf[i], -lr));
        } else {
          s.x = s.x.map((xi, i) => op.addcdiv(xi, g[i], denom[i], -lr));
        }
      },
    },
    // optedu.optim.adam.adam (Adam with L2 decay; AdamW: decoupled)
    adam: {
      init: (x0) => ({ x: x0.slice(), m: x0.map(() => 0), v: x0.map(() => 0),
                       vmax: x0.map(() => 0), t: 0 }),
      step(s, grad, { lr, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0,
                      decoupled = false, amsgrad = false }) {
        s.t += 1;
        let g = grad.slice();
        if (weight_decay !== 0) {
          if (decoupled) s.x = s.x.map((xi) => xi * (1 - lr * weight_decay));
          else g = g.map((gi, i) => op.addAlpha(gi, s.x[i], weight_decay));
        }
        s.m = s.m.map((m, i) => op.lerp(m, g[i], 1 - beta1));         // m = β₁m + (1−β₁)g
        s.v = s.v.map((v, i) => op.addcmul(v * beta2, g[i], g[i], 1 - beta2));
        const bc1 = 1 - Math.pow(beta1, s.t), bc2 = 1 - Math.pow(beta2, s.t);
        let second = s.v;
        if (amsgrad) second = s.vmax = s.vmax.map((a, i) => Math.max(a, s.v[i]));
        const denom = second.map((v) => Math.sqrt(v) / Math.pow(bc2, 0.5) + eps);
        s.x = s.x.map((xi, i) => op.addcdiv(xi, s.m[i], denom[i], -lr / bc1));
      },
    },
    // optedu.optim.variants.adam.adam_variant, form "no bias correction" (a comparison
    // variant, not torch's rule): θ ← θ − η m / (√v + ε)
    adamVariant: {
      init: (x0) => ({ x: x0.slice(), m: x0.map(() => 0), v: x0.map(() => 0) }),
      step(s, grad, { lr, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, form }) {
        if (form !== "no bias correction") throw new Error(`Invalid form: ${form}`);
        s.m = s.m.map((m, i) => op.addAlpha(m * beta1, grad[i], 1 - beta1));
        s.v = s.v.map((v, i) => op.addcmul(v * beta2, grad[i], grad[i], 1 - beta2));
        s.x = s.x.map((xi, i) => xi - (lr * s.m[i]) / (Math.sqrt(s.v[i]) + eps));
      },
    },
    // optedu.optim.lion.lion; sign descent is Lion with β₁ = 0
    lion: {
      init: (x0) => ({ x: x0.slice(), m: x0.map(() => 0) }),
      step(s, grad, { lr, beta1 = 0.9, beta2 = 0.99, weight_decay = 0 }) {
        s.x = s.x.map((xi) => xi * (1 - lr * weight_decay));
        const c = s.m.map((m, i) => op.addAlpha(m * beta1, grad[i], 1 - beta1));
        s.x = s.x.map((xi, i) => op.addAlpha(xi, op.sign(c[i]), -lr));
        s.m = s.m.map((m, i) => op.addAlpha(m * beta2, grad[i], 1 - beta2));
      },
    },
  };
  // --- Muon's orthogonalisation: optedu.optim.muon.zeropower_via_newtonschulz, in float64 --
  // G is an array of rows; each step maps every singular value σ to aσ + bσ³ + cσ⁵
  const matrix = {
    transpose: (a) => a[0].map((_, j) => a.map((row) => row[j])),
    times: (a, b) => a.map((row) => b[0].map((_, j) =>
      row.reduce((sum, v, k) => sum + v * b[k][j], 0))),
    // beta*c + alpha*(a @ b), as torch.addmm
    addmm: (c, a, b, beta, alpha) => {
      const ab = matrix.times(a, b);
      return c.map((row, i) => row.map((v, j) => beta * v + alpha * ab[i][j]));
    },
  };
  const NS_COEFFICIENTS = [3.4445, -4.7750, 2.0315];
  function newtonSchulz(G, { coefficients = NS_COEFFICIENTS, steps = 5, eps = 1e-7 } = {}) {
    const perStep = Array.isArray(coefficients[0]);
    const schedule = Array.from({ length: steps }, (_, i) =>
      perStep ? coefficients[Math.min(i, coefficients.length - 1)] : coefficients);
    const tall = G.length > G[0].length;
    let x = tall ? matrix.transpose(G) : G.map((row) => row.slice());
    const norm = Math.sqrt(x.flat().reduce((sum, v) => sum + v * v, 0));
    x = x.map((row) => row.map((v) => v / Math.max(norm, eps)));   // X₀ = G / ‖G‖_F
    for (const [a, b, c] of schedule) {
      const gram = matrix.times(x, matrix.transpose(x));           // A = X Xᵀ
      const poly = matrix.addmm(gram, gram, gram, b, c);           // bA + cA²
      x = matrix.addmm(x, poly, x, a, 1);                          // aX + (bA + cA²)X
    }
    return tall ? matrix.transpose(x) : x;
  }

  // the named forms the figures offer
  const forms = {
    sgd: ["sgd", {}],
    heavyBall: ["sgd", { momentum: 0.9 }],
    nesterov: ["sgd", { momentum: 0.9, nesterov: true }],
    adagrad: ["adagrad", {}],
    rmsprop: ["rmsprop", {}],
    adam: ["adam", {}],
    adamw: ["adam", { decoupled: true, weight_decay: 0.01 }],
    lion: ["lion", {}],
    signDescent: ["lion", { beta1: 0 }],
  };

  // optedu.training.clip.clip_grad_norm_ on one gradient: N = ‖g‖₂, c = min(τ/(N + 10⁻⁶), 1),
  // g ← c g
  function clipNorm(g, maxNorm) {
    const norm = Math.sqrt(g.reduce((sum, v) => sum + v * v, 0));     // N
    const coef = Math.min(maxNorm / (norm + 1e-6), 1);               // c
    return g.map((v) => v * coef);
  }

  // run `steps` steps of a rule (a name of `forms` or `rules`) from x0, each gradient clipped
  // to norm hyper.max_norm if given; returns the iterates (steps + 1 points) and the losses
  function run(form, problem, x0, hyper, steps, schedule) {
    const [name, preset] = forms[form] || [form, {}];
    const rule = rules[name];
    if (!rule) throw new Error(`Invalid rule: ${form}`);
    const h = Object.assign({}, preset, hyper);
    const state = rule.init(x0, h);
    const path = [state.x.slice()], losses = [problem.loss(state.x)];
    for (let t = 0; t < steps; t++) {
      // a schedule gives a multiplier of the peak rate, or (absolute) the rate itself
      const lr = !schedule ? h.lr : schedule.absolute ? schedule(t) : h.lr * schedule(t);
      const grad = problem.grad(state.x);
      rule.step(state, h.max_norm === undefined ? grad : clipNorm(grad, h.max_norm),
                Object.assign({}, h, { lr }));
      path.push(state.x.slice());
      losses.push(problem.loss(state.x));
    }
    return { path, losses };
  }

  // --- schedules: multipliers of the peak rate, as optedu.lr_scheduler.schedules --------
  const warmup = (s, w) => (s + 1) / (w + 1);
  const schedules = {
    constant: () => () => 1,
    warmupCosine: ({ warmup_steps, total_steps, min_ratio = 0 }) => (s) => {
      if (s < warmup_steps) return warmup(s, warmup_steps);
      const p = Math.min(1, (s - warmup_steps) / (total_steps - warmup_steps));
      return min_ratio + 0.5 * (1 - min_ratio) * (1 + Math.cos(Math.PI * p));
    },
    wsd: ({ warmup_steps, stable_steps, decay_steps, min_ratio = 0, decay = "linear" }) =>
      (s) => {
        if (s < warmup_steps) return warmup(s, warmup_steps);
        const start = warmup_steps + stable_steps;
        if (s < start) return 1;
        const p = Math.min(1, (s - start) / decay_steps);
        const shape = decay === "linear" ? p : decay === "cosine"
          ? 0.5 * (1 - Math.cos(Math.PI * p)) : decay === "1-sqrt" ? Math.sqrt(p) : p * p;
        return 1 - (1 - min_ratio) * shape;
      },
  };

  // 1cycle (Smith and Topin): the rate itself, as optedu.lr_scheduler.OneCycleLR writes
  // it for one group (each phase ends one step before its nominal length, as torch's)
  schedules.oneCycle = ({ max_lr, total_steps, pct_start = 0.3, anneal_strategy = "cos",
                          div_factor = 25, final_div_factor = 1e4, three_phase = false }) => {
    const initial = max_lr / div_factor, least = initial / final_div_factor;
    const rise = pct_start * total_steps - 1, last = total_steps - 1;
    const phases = three_phase
      ? [[rise, initial, max_lr], [2 * pct_start * total_steps - 2, max_lr, initial],
         [last, initial, least]]
      : [[rise, initial, max_lr], [last, max_lr, least]];
    const anneal = anneal_strategy === "cos"
      ? (u, v, p) => v + (u - v) / 2 * (Math.cos(Math.PI * p) + 1)
      : (u, v, p) => (v - u) * p + u;
    const rate = (t) => {
      let start = 0, i = 0;
      for (; i < phases.length - 1 && t > phases[i][0]; i++) start = phases[i][0];
      const [end, u, v] = phases[i];
      return anneal(u, v, (t - start) / (end - start));
    };
    rate.absolute = true;
    return rate;
  };

  root.OptEduRules = { fma, op, generator, problems, rules, forms, run, clipNorm, schedules,
                       newtonSchulz, NS_COEFFICIENTS };
})(typeof window !== "undefined" ? window : globalThis);
