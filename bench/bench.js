// The benchmark page `cargo xtask bench` opens in headless Chromium: every webrnn CPU variant (and
// the variants of `config.int8_variants` once more with int8 weights) and onnxruntime-web (wasm EP,
// one thread) on the same ONNX models, same inputs; outputs are checked to agree before anything is
// timed. Results are POSTed back to the xtask server as JSON.

import * as ort from './node_modules/onnxruntime-web/dist/ort.wasm.min.mjs';

const log = (line) => {
  document.getElementById('log').textContent += line + '\n';
};

/** Deterministic inputs in [-1, 1). */
function randomArray(n, seed) {
  const a = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    a[i] = (s / 4294967296) * 2 - 1;
  }
  return a;
}

/**
 * Median time per unit of work, in µs. `fn` does `units` units per call (e.g. 256 time steps);
 * calls are timed in blocks of at least `blockMs`, because the page's clock is coarse.
 */
async function measure(fn, units, { blockMs, budgetMs }) {
  for (let i = 0; i < 3; i++) await fn();
  let perBlock = 1;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < perBlock; i++) await fn();
    if (performance.now() - t0 >= blockMs || perBlock >= 1 << 16) break;
    perBlock *= 2;
  }
  const samples = [];
  const start = performance.now();
  while (samples.length < 5 || (performance.now() - start < budgetMs && samples.length < 200)) {
    const t0 = performance.now();
    for (let i = 0; i < perBlock; i++) await fn();
    samples.push(((performance.now() - t0) * 1000) / (perBlock * units));
  }
  samples.sort((a, b) => a - b);
  return samples[samples.length >> 1];
}

function maxDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

class OrtRunner {
  constructor(session, model) {
    this.s = session;
    this.m = model;
  }
  feeds(x, t, b, h0) {
    const H = this.m.hidden;
    const f = {
      X: new ort.Tensor('float32', x, [t, b, H]),
      initial_h: new ort.Tensor('float32', h0, [1, b, H]),
    };
    if (this.m.cell === 'lstm') f.initial_c = new ort.Tensor('float32', h0, [1, b, H]);
    return f;
  }
  async seq(x, t) {
    const out = await this.s.run(this.feeds(x, t, 1, new Float32Array(this.m.hidden)));
    return out.Y.data;
  }
  async batch(x, h0, b) {
    const out = await this.s.run(this.feeds(x, 1, b, h0));
    return out.Y_h.data;
  }
}

/** What one timed call does for `impl` in `mode`, and how many time steps it covers. */
function runner(impl, mode, { H, B, T, xs, xb, hb }) {
  const x1 = xs.subarray(0, H);
  if (impl.ort) {
    const r = impl.ort;
    if (mode === 'stream') {
      let feeds = r.feeds(x1, 1, 1, new Float32Array(H));
      const fn = async () => {
        const out = await r.s.run(feeds);
        feeds = { X: feeds.X, initial_h: out.Y_h };
        if (out.Y_c) feeds.initial_c = out.Y_c;
      };
      return { fn, units: 1 };
    }
    if (mode === 'seq256') {
      const feeds = r.feeds(xs, T, 1, new Float32Array(H));
      return { fn: () => r.s.run(feeds), units: T };
    }
    const feeds = r.feeds(xb, 1, B, hb);
    return { fn: () => r.s.run(feeds), units: 1 };
  }
  const w = impl.webrnn;
  if (mode === 'stream') return { fn: () => w.step(x1), units: 1 };
  if (mode === 'seq256') {
    return {
      fn: () => {
        w.reset();
        w.run(xs, T);
      },
      units: T,
    };
  }
  return { fn: () => w.batch(xb, hb, B), units: 1 };
}

async function main() {
  const config = await (await fetch('/target/bench/config.json')).json();
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.simd = true;
  ort.env.wasm.wasmPaths = new URL('./node_modules/onnxruntime-web/dist/', import.meta.url).href;
  const variants = [];
  for (const v of config.variants) {
    const mod = await import(`/target/bench/pkg-${v}/webrnn_bench.js`);
    await mod.default();
    variants.push({ name: `webrnn-${mod.isa()}`, mod, backend: 'cpu', atol: 1e-4 });
    if (config.int8_variants.includes(v)) {
      variants.push({ name: `webrnn-${mod.isa()}-int8`, mod, backend: 'cpu-int8', atol: config.int8_atol, int8: true });
    }
  }
  const timing = { blockMs: config.block_ms, budgetMs: config.budget_ms };
  const results = [];
  const checks = [];
  for (const m of config.models) {
    const bytes = new Uint8Array(await (await fetch(`/target/bench/models/${m.file}`)).arrayBuffer());
    const H = m.hidden;
    const B = config.batch;
    const T = config.seq;
    const xs = randomArray(T * H, 1);
    const xb = randomArray(B * H, 2);
    const hb = randomArray(B * H, 3).map((v) => v * 0.5);
    const ortSession = await ort.InferenceSession.create(bytes, {
      executionProviders: ['wasm'],
      graphOptimizationLevel: 'all',
    });
    const ortRun = new OrtRunner(ortSession, m);
    const check = { T: 16, seq: await ortRun.seq(xs.subarray(0, 16 * H), 16), batch: await ortRun.batch(xb, hb, B) };
    const impls = [{ name: 'ort-wasm', ort: ortRun }];
    for (const v of variants) {
      const model = new v.mod.BenchModel(bytes, H, m.cell === 'lstm', v.backend);
      const seqDiff = maxDiff(model.run(xs.subarray(0, 16 * H), 16), check.seq);
      model.reset();
      const batchDiff = maxDiff(model.batch(xb, hb, B), check.batch);
      // int8 weights cannot meet f32's 1e-4: their check is a looser sanity bound, and the table
      // reports the max |diff| they show.
      const ok = seqDiff <= v.atol && batchDiff <= v.atol;
      const int8 = !!v.int8;
      checks.push({ model: m.name, impl: v.name, int8, atol: v.atol, seq_max_diff: seqDiff, batch_max_diff: batchDiff, ok });
      log(`${m.name} ${v.name}: outputs ${ok ? 'agree' : 'DIFFER'} with ort (max |diff| ${Math.max(seqDiff, batchDiff).toExponential(1)})`);
      if (ok) impls.push({ name: v.name, webrnn: model });
      else model.free();
    }
    for (const mode of config.modes) {
      const runners = impls.map((impl) => ({ impl, ...runner(impl, mode, { H, B, T, xs, xb, hb }) }));
      // Rounds interleave the implementations and keep each one's best median, so a burst of load
      // from elsewhere on the machine does not land on one implementation only.
      const best = new Map();
      for (let round = 0; round < config.rounds; round++) {
        for (const r of runners) {
          const us = await measure(r.fn, r.units, timing);
          best.set(r.impl.name, Math.min(best.get(r.impl.name) ?? Infinity, us));
        }
      }
      for (const r of runners) {
        const us = best.get(r.impl.name);
        results.push({ model: m.name, cell: m.cell, hidden: H, mode, impl: r.impl.name, us_per_step: us });
        log(`${m.name} ${mode} ${r.impl.name}: ${us.toFixed(2)} µs/step`);
      }
    }
    for (const impl of impls) if (impl.webrnn) impl.webrnn.free();
    await ortSession.release();
  }
  return { user_agent: navigator.userAgent, peak_gflops: config.peak_gflops, checks, results };
}

/**
 * Markdown: one row per model and mode, µs per time step, best f32 webrnn / ORT, best int8 webrnn /
 * ORT, % of the peak (f32); then what int8 weights cost in accuracy on each model.
 */
function table(report, config) {
  const impls = [...new Set(report.results.map((r) => r.impl))];
  const isInt8 = (impl) => impl.endsWith('-int8');
  const lines = [
    `| model | mode | ${impls.join(' | ')} | best f32 / ort | int8 / ort | best f32 % of ${config.peak_gflops} GFLOP/s |`,
    `|---|---|${impls.map(() => '---:').join('|')}|---:|---:|---:|`,
  ];
  for (const m of config.models) {
    for (const mode of config.modes) {
      const rows = report.results.filter((r) => r.model === m.name && r.mode === mode);
      const at = (impl) => rows.find((r) => r.impl === impl)?.us_per_step;
      const ortUs = at('ort-wasm');
      const bestOf = (keep) => {
        const us = rows.filter((r) => r.impl.startsWith('webrnn') && keep(r.impl)).map((r) => r.us_per_step);
        return us.length ? Math.min(...us) : undefined;
      };
      const best = bestOf((impl) => !isInt8(impl));
      const best8 = bestOf(isInt8);
      const gates = m.cell === 'lstm' ? 4 : 3;
      const flops = 2 * gates * m.hidden * 2 * m.hidden * (mode === 'batch64' ? config.batch : 1);
      const cells = impls.map((i) => (at(i) === undefined ? '–' : at(i).toFixed(at(i) < 10 ? 2 : 1)));
      const ratio = (us) => (us !== undefined && ortUs ? (us / ortUs).toFixed(2) : '–');
      const peak = best !== undefined ? ((flops / (best * 1e3) / config.peak_gflops) * 100).toFixed(0) + '%' : '–';
      lines.push(`| ${m.name} | ${mode} | ${cells.join(' | ')} | ${ratio(best)} | ${ratio(best8)} | ${peak} |`);
    }
  }
  const int8Checks = report.checks.filter((c) => c.int8);
  if (int8Checks.length) {
    lines.push('', 'int8 weights, max |diff| from onnxruntime (f32) on the checked outputs (16 streamed steps; one batch64 step):', '');
    lines.push('| model | impl | seq16 | batch64 | within |', '|---|---|---:|---:|---:|');
    for (const c of int8Checks) {
      const e = (v) => v.toExponential(1);
      lines.push(`| ${c.model} | ${c.impl} | ${e(c.seq_max_diff)} | ${e(c.batch_max_diff)} | ${c.ok ? c.atol : 'NO'} |`);
    }
  }
  return lines.join('\n') + '\n';
}

let report;
let markdown = '';
try {
  const config = await (await fetch('/target/bench/config.json')).json();
  report = await main();
  markdown = table(report, config);
  document.body.dataset.status = 'ok';
} catch (e) {
  report = { error: String(e && e.stack ? e.stack : e) };
  log(report.error);
  document.body.dataset.status = 'error';
}
await fetch('/table', { method: 'POST', body: markdown });
await fetch('/results', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(report) });
