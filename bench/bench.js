// The benchmark page `cargo xtask bench` opens in headless Chromium: every webrnn CPU variant (and
// the variants of `config.int8_variants` once more with int8 weights), onnxruntime-web (wasm EP,
// one thread) and TF.js (wasm backend, one thread; where tf.layers can build the model) on the same
// weights, same inputs; outputs are checked to agree before anything is timed. Results are POSTed
// back to the xtask server as JSON.

import * as ort from './node_modules/onnxruntime-web/dist/ort.wasm.min.mjs';
import { measure, ortOneThread, postReport, randomArray } from './common.js';

// TF.js core, layers and wasm backend: UMD builds loaded by index.html, they set the global `tf`.
const tf = globalThis.tf;

const log = (line) => {
  document.getElementById('log').textContent += line + '\n';
};

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

/**
 * The model as a TF.js Keras layer (tf.layers) with the weights of `<name>.keras.bin` (written next
 * to the ONNX file, in Keras's layout), called on tensors: x [B, T, H] and the initial state in, y
 * [B, T, H] and the final state out; with B = 1 or T = 1 that is ONNX's [T, B, H] data as it is.
 * Not through a tf.model: its predict runs the layer once per output (y, h, c: three times).
 */
class TfjsRunner {
  /** Throws where tf.layers cannot build the model (GRU: no reset_after, i.e. linear_before_reset). */
  static async create(m) {
    const H = m.hidden;
    const options = {
      units: H,
      recurrentActivation: 'sigmoid', // tf.layers' default is hardSigmoid
      kernelInitializer: 'zeros', // the weights are set below (orthogonal is slow at H = 512)
      recurrentInitializer: 'zeros',
      returnSequences: true,
      returnState: true,
    };
    const layer = m.cell === 'lstm' ? tf.layers.lstm(options) : tf.layers.gru({ ...options, resetAfter: true });
    // The first call builds the layer's weights, which are then set from the file.
    tf.tidy(() => {
      const h = tf.zeros([1, H]);
      layer.apply(tf.zeros([1, 1, H]), { initialState: m.cell === 'lstm' ? [h, h] : [h] });
    });
    const all = new Float32Array(await (await fetch(`/target/bench/models/${m.keras}`)).arrayBuffer());
    let at = 0;
    const weights = layer.weights.map((w) => {
      const size = w.shape.reduce((a, b) => a * b);
      at += size;
      return tf.tensor(all.subarray(at - size, at), w.shape);
    });
    if (at !== all.length) throw new Error(`${m.keras}: ${all.length} floats, the layer has ${at}`);
    layer.setWeights(weights);
    tf.dispose(weights);
    return new TfjsRunner(layer, m);
  }
  constructor(layer, m) {
    this.layer = layer;
    this.H = m.hidden;
    this.lstm = m.cell === 'lstm';
    this.inputs = []; // the tensors of `tensor`, disposed with the runner
  }
  /** A tensor of `data` that lives as long as the runner. */
  tensor(data, shape) {
    const t = tf.tensor(data, shape);
    this.inputs.push(t);
    return t;
  }
  /** The initial state of `b` streams: h = c = h0, as the ORT feeds have it. */
  state(h0, b) {
    const h = this.tensor(h0, [b, this.H]);
    return this.lstm ? [h, h] : [h];
  }
  /** Runs x from `state`: y, read back, and the final state (tensors: the caller disposes them). */
  run(x, state) {
    const [y, ...next] = this.layer.apply(x, { initialState: state });
    const data = y.dataSync();
    y.dispose();
    return { y: data, state: next };
  }
  /** A call that runs `t` steps of `b` streams (t = 1 or b = 1) of `x` from h0 and returns y. */
  caller(x, t, b, h0) {
    const input = this.tensor(x, [b, t, this.H]);
    const state = this.state(h0, b);
    return () => {
      const out = this.run(input, state);
      tf.dispose(out.state);
      return out.y;
    };
  }
  /** A call that runs one step of one stream (x [1, 1, H], a tensor), the state carried across calls. */
  stepper() {
    let state = this.state(new Float32Array(this.H), 1).map((t) => t.clone()); // the first call disposes it
    return (x) => {
      const out = this.run(x, state);
      tf.dispose(state);
      state = out.state;
      return out.y;
    };
  }
  dispose() {
    tf.dispose(this.inputs);
    this.layer.dispose();
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
  if (impl.tfjs) {
    const r = impl.tfjs;
    if (mode === 'stream') {
      const step = r.stepper();
      const x = r.tensor(x1, [1, 1, H]);
      return { fn: () => step(x), units: 1 };
    }
    if (mode === 'seq256') return { fn: r.caller(xs, T, 1, new Float32Array(H)), units: T };
    return { fn: r.caller(xb, 1, B, hb), units: 1 };
  }
  // webrnn writes each call's output into one array the caller keeps (the package's
  // `step(x, out)`); ORT's run returns new arrays every call, it has no other way for CPU outputs.
  const w = impl.webrnn;
  if (mode === 'stream') {
    const out = new Float32Array(H);
    return { fn: () => w.step_into(x1, out), units: 1 };
  }
  if (mode === 'seq256') {
    const out = new Float32Array(T * H);
    return {
      fn: () => {
        w.reset();
        w.run_into(xs, T, out);
      },
      units: T,
    };
  }
  const out = new Float32Array(B * H);
  return { fn: () => w.batch_into(xb, hb, B, out), units: 1 };
}

async function main() {
  const config = await (await fetch('/target/bench/config.json')).json();
  ortOneThread(ort);
  // TF.js's wasm backend, its .wasm files from bench/node_modules, without threads (the page is
  // not cross-origin isolated anyway): the SIMD binary, or the plain one.
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  tf.wasm.setWasmPaths(new URL('./node_modules/@tensorflow/tfjs-backend-wasm/dist/', import.meta.url).href);
  if (!(await tf.setBackend('wasm'))) throw new Error('TF.js: the wasm backend did not start');
  const tfjs = { version: tf.version_core, backend: tf.getBackend(), simd: await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT') };
  log(`TF.js ${tfjs.version}: backend ${tfjs.backend}, SIMD ${tfjs.simd}, one thread`);
  const variants = [];
  for (const v of config.variants) {
    const mod = await import(`/target/bench/pkg-${v}/webrnn_bench.js`);
    await mod.default();
    variants.push({ name: `webrnn-${mod.isa()}`, mod, backend: 'cpu', atol: 1e-4 });
    if (config.int8_variants.includes(v)) {
      variants.push({ name: `webrnn-${mod.isa()}-int8`, mod, backend: 'cpu-int8', atol: config.int8_atol, int8: true });
    }
  }
  // Each variant's floating-point peak on this machine, measured here: twelve independent
  // multiply-add chains in registers (bench/wasm `peak_kernel`), the best of five 50 ms runs.
  const peaks = {};
  for (const v of variants) {
    if (v.int8) continue;
    const run = (rounds) => {
      const t0 = performance.now();
      v.mod.peak_kernel(rounds, 0.9999, 1e-4);
      return performance.now() - t0;
    };
    let rounds = 1 << 16;
    while (run(rounds) < 50 && rounds < 1 << 30) rounds *= 2;
    let best = 0;
    for (let i = 0; i < 5; i++) best = Math.max(best, (2 * 4 * 12 * rounds) / (run(rounds) * 1e6));
    peaks[v.name] = best;
    log(`${v.name}: peak ${best.toFixed(1)} GFLOP/s (12 multiply-add chains in registers)`);
  }
  const timing = { blockMs: config.block_ms, budgetMs: config.budget_ms };
  const results = [];
  const checks = [];
  const unavailable = [];
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
    /** Whether `impl`'s outputs agree with ORT's (an implementation that differs is not timed). */
    const agrees = (impl, seqDiff, batchDiff, atol = 1e-4, int8 = false) => {
      const ok = seqDiff <= atol && batchDiff <= atol;
      checks.push({ model: m.name, impl, int8, atol, seq_max_diff: seqDiff, batch_max_diff: batchDiff, ok });
      log(`${m.name} ${impl}: outputs ${ok ? 'agree' : 'DIFFER'} with ort (max |diff| ${Math.max(seqDiff, batchDiff).toExponential(1)})`);
      return ok;
    };

    // TF.js, where tf.layers can build the model; its streamed check also runs one step per call,
    // the state carried from call to call as in the stream mode.
    try {
      if (!config.tfjs) throw new Error('left out (WEBRNN_BENCH_NO_TFJS)');
      const r = await TfjsRunner.create(m);
      const step = r.stepper();
      const ys = new Float32Array(16 * H);
      for (let t = 0; t < 16; t++) ys.set(step(r.tensor(xs.subarray(t * H, (t + 1) * H), [1, 1, H])), t * H);
      const seq = r.caller(xs.subarray(0, 16 * H), 16, 1, new Float32Array(H))();
      const seqDiff = Math.max(maxDiff(seq, check.seq), maxDiff(ys, check.seq));
      const batchDiff = maxDiff(r.caller(xb, 1, B, hb)(), check.batch);
      if (agrees('tfjs-wasm', seqDiff, batchDiff)) impls.push({ name: 'tfjs-wasm', tfjs: r });
      else r.dispose();
    } catch (e) {
      const error = String(e && e.message ? e.message : e);
      const reason = /reset_after/.test(error) ? 'TF.js GRU has no reset_after' : error;
      unavailable.push({ model: m.name, impl: 'tfjs-wasm', reason, error });
      log(`${m.name} tfjs-wasm: n/a (${error})`);
    }

    for (const v of variants) {
      const model = new v.mod.BenchModel(bytes, H, m.cell === 'lstm', v.backend);
      // The checks read the outputs the way the timed calls get them (into the caller's array).
      const seqOut = new Float32Array(16 * H);
      model.run_into(xs.subarray(0, 16 * H), 16, seqOut);
      const seqDiff = maxDiff(seqOut, check.seq);
      model.reset();
      const batchOut = new Float32Array(B * H);
      model.batch_into(xb, hb, B, batchOut);
      const batchDiff = maxDiff(batchOut, check.batch);
      // int8 weights cannot meet f32's 1e-4: their check is a looser sanity bound, and the table
      // reports the max |diff| they show.
      if (agrees(v.name, seqDiff, batchDiff, v.atol, !!v.int8)) impls.push({ name: v.name, webrnn: model });
      else model.free();
    }
    for (const mode of config.modes) {
      const runners = impls.map((impl) => ({ impl, ...runner(impl, mode, { H, B, T, xs, xb, hb }) }));
      // Rounds interleave the implementations and keep each one's best median, so a burst of load
      // from elsewhere on the machine does not land on one implementation only.
      const best = new Map();
      for (let round = 0; round < config.rounds; round++) {
        for (const r of runners) {
          const us = (await measure(r.fn, r.units, timing)).ms * 1000;
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
    for (const impl of impls) if (impl.tfjs) impl.tfjs.dispose();
    await ortSession.release();
  }
  return { user_agent: navigator.userAgent, peak_gflops: peaks, tfjs, checks, unavailable, results };
}

/**
 * Markdown: one row per model and mode, µs per time step ("n/a: why" where an implementation cannot
 * build the model), best f32 webrnn / ORT, best int8 webrnn / ORT, best f32 webrnn / TF.js, % of the
 * peak (f32); then what int8 weights cost in accuracy on each model.
 */
function table(report, config) {
  const named = [...report.results, ...report.unavailable].map((r) => r.impl);
  const impls = [...new Set(['ort-wasm', 'tfjs-wasm', ...named])].filter((impl) => named.includes(impl));
  const isInt8 = (impl) => impl.endsWith('-int8');
  const lines = [
    `| model | mode | ${impls.join(' | ')} | best f32 / ort | int8 / ort | best f32 / tfjs | best f32 % of its peak |`,
    `|---|---|${impls.map(() => '---:').join('|')}|---:|---:|---:|---:|`,
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
      const bestImpl = rows.find((r) => r.impl.startsWith('webrnn') && !isInt8(r.impl) && r.us_per_step === best)?.impl;
      const peakGflops = report.peak_gflops[bestImpl];
      const best8 = bestOf(isInt8);
      const gates = m.cell === 'lstm' ? 4 : 3;
      const flops = 2 * gates * m.hidden * 2 * m.hidden * (mode === 'batch64' ? config.batch : 1);
      const cell = (impl) => {
        const na = report.unavailable.find((u) => u.model === m.name && u.impl === impl);
        const us = at(impl);
        if (na) return `n/a: ${na.reason}`;
        return us === undefined ? '–' : us.toFixed(us < 10 ? 2 : 1);
      };
      const ratio = (us, to) => (us !== undefined && to ? (us / to).toFixed(2) : '–');
      const peak = best !== undefined && peakGflops ? ((flops / (best * 1e3) / peakGflops) * 100).toFixed(0) + '%' : '–';
      const ratios = [ratio(best, ortUs), ratio(best8, ortUs), ratio(best, at('tfjs-wasm'))];
      lines.push(`| ${m.name} | ${mode} | ${impls.map(cell).join(' | ')} | ${ratios.join(' | ')} | ${peak} |`);
    }
  }
  const peakLine = Object.entries(report.peak_gflops).map(([impl, g]) => `${impl} ${g.toFixed(1)}`);
  lines.push('', `Peaks measured in this page (GFLOP/s, twelve multiply-add chains in registers): ${peakLine.join(', ')}.`);
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

await postReport('/target/bench/config.json', main, table, log);
