// The real-world table of `cargo xtask bench`: the models of tests/data/realworld (Silero VAD,
// DTLN, GTCRN, as their packages ship them), each called chunk by chunk on the fixtures' real audio
// with its state carried from call to call, by every webrnn CPU variant (bench/wasm `ChunkModel`)
// and by onnxruntime-web (wasm EP, one thread) the way @ricky0123/vad-web calls Silero: a feeds
// object of the chunk, the previous call's state outputs and the fixed inputs, `session.run`, the
// state outputs kept for the next call. Outputs are checked to agree (max |diff| <= 1e-4 over the
// first calls from the zero state) before anything is timed. Results are POSTed back as JSON.

import * as ort from './node_modules/onnxruntime-web/dist/ort.wasm.min.mjs';
import { measure, ortOneThread, postReport, progressLog as log, readBytes as read } from './common.js';
import { readTensor } from '/js/test/pages/tensor.js';

function maxDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Chunk `k` of a stacked [calls, ...] tensor. */
const chunk = (t, k) => {
  const per = t.data.length / t.dims[0];
  return t.data.subarray(k * per, (k + 1) * per);
};

/** onnxruntime-web called as vad-web calls Silero: fixed inputs made once, state outputs fed back. */
class OrtCaller {
  constructor(session, meta) {
    this.s = session;
    this.meta = meta;
    this.input = meta.streamed[0];
    this.shape = meta.files[this.input].shape.slice(1);
    this.fixed = {};
    for (const [name, f] of Object.entries(meta.fixed_inputs ?? {})) {
      const values = Array.isArray(f.value) ? f.value : [f.value];
      this.fixed[name] = f.dtype.startsWith('int')
        ? new ort.Tensor('int64', BigInt64Array.from(values.map(BigInt)), f.shape)
        : new ort.Tensor('float32', Float32Array.from(values), f.shape);
    }
    this.reset();
  }
  reset() {
    this.state = Object.fromEntries(
      this.meta.state.map((p) => [p.input, new ort.Tensor('float32', new Float32Array(p.shape.reduce((a, b) => a * b, 1)), p.shape)]),
    );
  }
  async call(x) {
    const feeds = { ...this.fixed, ...this.state, [this.input]: new ort.Tensor('float32', x, this.shape) };
    const out = await this.s.run(feeds);
    for (const p of this.meta.state) this.state[p.input] = out[p.output];
    return out[this.meta.outputs[0]].data;
  }
}

async function main() {
  const config = await (await fetch('/target/bench/realworld-config.json')).json();
  ortOneThread(ort);
  const variants = [];
  for (const v of config.variants) {
    const mod = await import(`/target/bench/pkg-${v}/webrnn_bench.js`);
    await mod.default();
    variants.push({ name: `webrnn-${mod.isa()}`, mod });
  }
  const timing = { blockMs: config.block_ms, budgetMs: config.budget_ms };
  const results = [];
  const checks = [];
  for (const name of config.cases) {
    const base = `/tests/data/realworld/${name}/`;
    const meta = await (await fetch(`${base}case.json`)).json();
    const bytes = await read(`/tests/data/realworld/${meta.model}`);
    const x = readTensor(await read(base + meta.files[meta.streamed[0]].file));
    const calls = x.dims[0];
    const ortSession = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
    const ortCall = new OrtCaller(ortSession, meta);
    const want = [];
    for (let k = 0; k < config.checked_calls; k++) want.push(Float32Array.from(await ortCall.call(chunk(x, k))));
    ortCall.reset();
    const fixed = Object.entries(meta.fixed_inputs ?? {})
      .map(([n, f]) => `${n}=${Array.isArray(f.value) ? f.value[0] : f.value}`)
      .join(',');
    const state = meta.state.map((p) => `${p.input}=${p.output}`).join(',');
    const impls = [{ name: 'ort-wasm', call: (k) => ortCall.call(chunk(x, k)), reset: () => ortCall.reset() }];
    const loaded = [];
    for (const v of variants) {
      const m = new v.mod.ChunkModel(bytes, fixed, state, 'cpu');
      loaded.push(m);
      let worst = 0;
      for (let k = 0; k < config.checked_calls; k++) worst = Math.max(worst, maxDiff(m.step(chunk(x, k)), want[k]));
      m.reset();
      const ok = worst <= 1e-4;
      checks.push({ model: name, impl: v.name, calls: config.checked_calls, max_diff: worst, ok });
      log(`${name} ${v.name}: outputs ${ok ? 'agree' : 'DIFFER'} with ort over ${config.checked_calls} calls (max |diff| ${worst.toExponential(1)})`);
      if (!ok) continue;
      const out = new Float32Array(want[0].length);
      impls.push({ name: v.name, call: (k) => m.step_into(chunk(x, k), out), reset: () => m.reset() });
    }
    // Each implementation streams the chunks in order, its state carried, cycling back to the
    // start (and the zero state) after the last: real audio, a state that lives call to call.
    const runners = impls.map((impl) => {
      let k = 0;
      const fn = () => {
        if (k === calls) {
          k = 0;
          impl.reset();
        }
        return impl.call(k++);
      };
      return { impl, fn };
    });
    for (const r of runners) for (let i = 0; i < config.warmup_calls; i++) await r.fn();
    // Rounds interleave the implementations and keep each one's best median.
    const best = new Map();
    for (let round = 0; round < config.rounds; round++) {
      for (const r of runners) {
        const us = (await measure(r.fn, 1, timing)).ms * 1000;
        best.set(r.impl.name, Math.min(best.get(r.impl.name) ?? Infinity, us));
      }
    }
    for (const r of runners) {
      const us = best.get(r.impl.name);
      results.push({ model: name, chunk: x.dims.slice(1), impl: r.impl.name, us_per_call: us });
      log(`${name} ${r.impl.name}: ${us.toFixed(1)} µs per call`);
    }
    for (const m of loaded) m.free();
    await ortSession.release();
  }
  return { user_agent: navigator.userAgent, ort_version: ort.env.versions?.web ?? '', checks, results };
}

/** Markdown: one row per model, µs per call, and the best webrnn variant over onnxruntime-web. */
function table(report, config) {
  const impls = [...new Set(report.results.map((r) => r.impl))];
  const lines = [
    `| model | chunk | ${impls.join(' | ')} | best webrnn / ort |`,
    `|---|---|${impls.map(() => '---:').join('|')}|---:|`,
  ];
  for (const name of config.cases) {
    const rows = report.results.filter((r) => r.model === name);
    if (!rows.length) continue;
    const at = (impl) => rows.find((r) => r.impl === impl)?.us_per_call;
    const ours = rows.filter((r) => r.impl.startsWith('webrnn')).map((r) => r.us_per_call);
    const best = ours.length ? Math.min(...ours) : undefined;
    const ortUs = at('ort-wasm');
    const cell = (impl) => (at(impl) === undefined ? '–' : at(impl).toFixed(1));
    const ratio = best !== undefined && ortUs ? (best / ortUs).toFixed(2) : '–';
    lines.push(`| ${name} | [${rows[0].chunk.join(', ')}] | ${impls.map(cell).join(' | ')} | ${ratio} |`);
  }
  return lines.join('\n') + '\n';
}

await postReport('/target/bench/realworld-config.json', main, table, log);
