// The WebGPU page of `cargo xtask bench` (bench/README.md): webrnn's WebGPU backend, imported from
// the npm package as `cargo xtask pack` builds it, next to onnxruntime-web's WebGPU execution
// provider, on the same ONNX models and inputs. Both are checked against ORT's CPU (wasm EP)
// outputs before anything is timed. Progress lines are POSTed to /gpu-log as they happen, the
// results to /gpu-table (markdown) and /gpu-results (JSON).

import * as ort from './node_modules/onnxruntime-web/dist/ort.webgpu.min.mjs';
import { measure, ortOneThread, randomArray } from './common.js';

const config = await (await fetch('/target/bench/gpu-config.json')).json();

const started = performance.now();
async function log(line) {
  document.getElementById('log').textContent += line + '\n';
  try {
    await fetch('/gpu-log', { method: 'POST', body: line });
  } catch {
    // The progress line is only a courtesy.
  }
}

/** Largest |a - b| and whether every element is within atol + rtol·|ref| (GPU tolerance). */
function compare(a, ref) {
  if (!a || a.length !== ref.length) return { maxDiff: Infinity, ok: false };
  let maxDiff = 0;
  let ok = true;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - ref[i]);
    if (!(d <= config.atol + config.rtol * Math.abs(ref[i]))) ok = false;
    if (!(d <= maxDiff)) maxDiff = d; // NaN sticks
  }
  return { maxDiff, ok };
}

/**
 * One ORT session of a bench model (inputs X, initial_h, initial_c; outputs Y, Y_h, Y_c). With
 * `gpuState` the state outputs stay on the GPU (`preferredOutputLocation: 'gpu-buffer'`) and are
 * fed back as GPU tensors; only Y is read back.
 */
class OrtModel {
  constructor(session, m, gpuState) {
    this.s = session;
    this.m = m;
    this.lstm = m.cell === 'lstm';
    this.stateNames = this.lstm ? ['Y_h', 'Y_c'] : ['Y_h'];
    this.gpuState = gpuState;
  }
  static async create(bytes, m, ep, extra = {}, gpuState = false) {
    const options = { executionProviders: [ep], graphOptimizationLevel: 'all', ...extra };
    if (gpuState) {
      options.preferredOutputLocation = { Y: 'cpu', Y_h: 'gpu-buffer' };
      if (m.cell === 'lstm') options.preferredOutputLocation.Y_c = 'gpu-buffer';
    }
    return new OrtModel(await ort.InferenceSession.create(bytes, options), m, gpuState);
  }
  zeros(b) {
    const t = new ort.Tensor('float32', new Float32Array(b * this.m.hidden), [1, b, this.m.hidden]);
    return { h: t, c: t };
  }
  feeds(x, t, b, state) {
    const f = { X: new ort.Tensor('float32', x, [t, b, this.m.hidden]), initial_h: state.h };
    if (this.lstm) f.initial_c = state.c;
    return f;
  }
  /** `t` steps of one stream from zero state: Y (t × H). */
  async seq(x, t) {
    return (await this.s.run(this.feeds(x, t, 1, this.zeros(1)), ['Y'])).Y.data;
  }
  /** One step of `b` streams: the new state and the step's output `y` (b × H, on the CPU). */
  async step(x, b, state) {
    if (!this.gpuState) {
      // Y_h is the step's output: Y (the same values) is not fetched.
      const out = await this.s.run(this.feeds(x, 1, b, state), this.stateNames);
      return { h: out.Y_h, c: out.Y_c, y: out.Y_h.data };
    }
    const out = await this.s.run(this.feeds(x, 1, b, state), ['Y', ...this.stateNames]);
    if (state.onGpu) {
      state.h.dispose();
      state.c?.dispose();
    }
    return { h: out.Y_h, c: out.Y_c, y: out.Y.data, onGpu: true };
  }
}

// ORT prints its log through the console functions it finds when its wasm module starts, so the
// hook that reads the node placement out of the log is installed before ORT is first used.
const placementLines = [];
for (const level of ['log', 'warn', 'error', 'info']) {
  const original = console[level].bind(console);
  console[level] = (...args) => {
    const text = args.join(' ');
    const at = text.indexOf('VerifyEachNodeIsAssignedToAnEp]');
    if (at >= 0) {
      placementLines.push(text.slice(at + 'VerifyEachNodeIsAssignedToAnEp]'.length).trim());
      return;
    }
    original(...args);
  };
}

/** Where ORT placed the model's nodes, from the verbose log of a throwaway session. */
async function ortPlacement(bytes, m) {
  placementLines.length = 0;
  const probe = await OrtModel.create(bytes, m, 'webgpu', { logSeverityLevel: 0, logVerbosityLevel: 0 });
  await probe.s.release();
  const lines = placementLines.filter((l) => l && l !== 'Node placements');
  return lines.join('; ') || 'unknown (no placement line in the log)';
}

/** What one timed call does for `impl` in `mode`, and how many time steps it covers. */
function runner(impl, mode, d) {
  const { H, B, T, xs, xb } = d;
  const x1 = xs.subarray(0, H);
  if (impl.ort) {
    const o = impl.ort;
    if (mode === 'stream') {
      let state = o.zeros(1);
      return { fn: async () => { state = await o.step(x1, 1, state); }, units: 1 };
    }
    if (mode === 'seq256') return o.gpuState ? null : { fn: () => o.seq(xs, T), units: T };
    let state = o.zeros(B);
    return { fn: async () => { state = await o.step(xb, B, state); }, units: 1 };
  }
  const w = impl.webrnn;
  if (mode === 'stream') return { fn: () => w.stream.step(x1), units: 1 };
  if (mode === 'seq256') {
    return {
      fn: () => {
        w.seq.reset();
        return w.seq.run(xs, T);
      },
      units: T,
    };
  }
  return { fn: () => w.model.stepBatch(w.batch, xb), units: 1 };
}

/** Checks webrnn and ORT WebGPU against ORT's CPU outputs: a sequence, step by step, two batched steps. */
async function check(m, bytes, model, ortGpu, d) {
  const { H, B, xs, xb } = d;
  const T = config.check_steps;
  const xb2 = randomArray(B * H, 4);
  const cpu = await OrtModel.create(bytes, m, 'wasm');
  const ref = { seq: await cpu.seq(xs.subarray(0, T * H), T) };
  const b1 = await cpu.step(xb, B, cpu.zeros(B));
  const b2 = await cpu.step(xb2, B, b1);
  ref.batch = new Float32Array([...b1.y, ...b2.y]);
  await cpu.s.release();

  const results = {};
  // webrnn: run, step by step (state carried by the session), stepBatch of fresh sessions twice.
  {
    const s = model.createSession();
    const seq = compare(await s.run(xs.subarray(0, T * H), T), ref.seq);
    s.reset();
    const ys = new Float32Array(T * H);
    for (let t = 0; t < T; t++) ys.set(await s.step(xs.subarray(t * H, (t + 1) * H)), t * H);
    const stream = compare(ys, ref.seq);
    s.dispose();
    const sessions = Array.from({ length: B }, () => model.createSession());
    const y1 = await model.stepBatch(sessions, xb);
    const y2 = await model.stepBatch(sessions, xb2);
    const batch = compare(new Float32Array([...y1, ...y2]), ref.batch);
    for (const x of sessions) x.dispose();
    results['webrnn-webgpu'] = { seq, stream, batch };
  }
  // ORT WebGPU (both ways): the same, the state fed back as initial_h / initial_c.
  for (const [key, o] of Object.entries(ortGpu)) {
    const seq = compare(await o.seq(xs.subarray(0, T * H), T), ref.seq);
    const ys = new Float32Array(T * H);
    let state = o.zeros(1);
    for (let t = 0; t < T; t++) {
      state = await o.step(xs.subarray(t * H, (t + 1) * H), 1, state);
      ys.set(state.y, t * H);
    }
    const stream = compare(ys, ref.seq);
    const c1 = await o.step(xb, B, o.zeros(B));
    const y1 = c1.y;
    const c2 = await o.step(xb2, B, c1);
    const batch = compare(new Float32Array([...y1, ...c2.y]), ref.batch);
    if (c2.onGpu) {
      c2.h.dispose();
      c2.c?.dispose();
    }
    if (state.onGpu) {
      state.h.dispose();
      state.c?.dispose();
    }
    results[key] = { seq, stream, batch };
  }
  return results;
}

/** Sessions stepped per second: one stepBatch of B sessions, webrnn WebGPU next to webrnn CPU. */
async function throughput(runtimes, models) {
  const rows = [];
  const t = config.throughput;
  for (const name of t.models) {
    const m = config.models.find((x) => x.name === name);
    const bytes = models.get(name);
    if (!m || !bytes) continue;
    for (const B of t.batches) {
      const row = { model: name, cell: m.cell, hidden: m.hidden, batch: B };
      for (const [backend, rt] of Object.entries(runtimes)) {
        const model = await rt.loadModel(bytes);
        const sessions = Array.from({ length: B }, () => model.createSession());
        const x = randomArray(B * m.hidden, 5);
        try {
          await model.stepBatch(sessions, x);
          let calls = 0;
          const t0 = performance.now();
          while (calls < t.min_calls || performance.now() - t0 < t.budget_ms) {
            await model.stepBatch(sessions, x);
            calls++;
          }
          const ms = (performance.now() - t0) / calls;
          row[backend] = { ms_per_call: ms, sessions_per_s: (B * 1000) / ms, calls };
        } catch (e) {
          row[backend] = { error: String(e) };
        }
        model.dispose();
      }
      rows.push(row);
      const fmt = (r) => (r && r.sessions_per_s ? `${r.sessions_per_s.toFixed(0)}/s (${r.ms_per_call.toFixed(2)} ms)` : r?.error ?? '–');
      await log(`throughput ${name} B=${B}: webgpu ${fmt(row.webgpu)}, cpu ${fmt(row.cpu)}`);
    }
  }
  return rows;
}

async function main() {
  ortOneThread(ort);
  ort.env.logLevel = 'warning';

  const adapter = await navigator.gpu?.requestAdapter();
  if (!adapter) throw new Error('no WebGPU adapter: is Chromium running with the flags of webdriver.json?');
  const info = adapter.info ?? {};
  const adapterLine = ['vendor', 'architecture', 'device', 'description']
    .map((k) => (info[k] ? `${k}=${info[k]}` : ''))
    .filter(Boolean)
    .join(' ');
  await log(`WebGPU adapter: ${adapterLine}; ${navigator.userAgent}`);

  const { Runtime } = await import(config.package);
  const rt = await Runtime.create({ backend: 'webgpu' });
  const cpuRt = await Runtime.create({ backend: 'cpu' });
  await log(`webrnn: backend ${rt.backend}, variant ${rt.variant}, adapter ${rt.gpuAdapter}; CPU runtime ${cpuRt.backend}`);

  const B = config.batch;
  const T = config.seq;
  const timing = { blockMs: config.block_ms, budgetMs: config.budget_ms, minSamples: config.min_samples, maxSamples: config.max_samples };
  const results = [];
  const checks = [];
  const notes = [];
  const modelBytes = new Map();
  for (const m of config.models) {
    const bytes = new Uint8Array(await (await fetch(`/target/bench/models/${m.file}`)).arrayBuffer());
    modelBytes.set(m.name, bytes);
    const H = m.hidden;
    const d = { H, B, T, xs: randomArray(T * H, 1), xb: randomArray(B * H, 2) };

    const placement = await ortPlacement(bytes, m);
    const ortGpu = {
      'ort-webgpu': await OrtModel.create(bytes, m, 'webgpu'),
      'ort-webgpu-gpustate': await OrtModel.create(bytes, m, 'webgpu', {}, true),
    };
    const model = await rt.loadModel(bytes);
    if (model.info.backend !== 'gpu') notes.push(`${m.name}: webrnn loaded it on '${model.info.backend}', not the GPU`);
    const gpuBefore = rt.stats().gpu;

    const c = await check(m, bytes, model, ortGpu, d);
    const impls = [];
    for (const [impl, r] of Object.entries(c)) {
      const ok = r.seq.ok && r.stream.ok && r.batch.ok;
      const worst = Math.max(r.seq.maxDiff, r.stream.maxDiff, r.batch.maxDiff);
      checks.push({
        model: m.name,
        impl,
        reference: 'ort-wasm',
        seq_max_diff: r.seq.maxDiff,
        stream_max_diff: r.stream.maxDiff,
        batch_max_diff: r.batch.maxDiff,
        ok,
        ...(impl.startsWith('ort') ? { placement } : {}),
      });
      await log(`${m.name} ${impl}: outputs ${ok ? 'agree' : 'DIFFER'} with ort-wasm (max |diff| ${worst.toExponential(1)})${impl === 'ort-webgpu' ? `; ORT: ${placement}` : ''}`);
      if (!ok) continue;
      if (impl.startsWith('ort')) impls.push({ name: impl, ort: ortGpu[impl] });
      else {
        const batch = Array.from({ length: B }, () => model.createSession());
        impls.push({ name: impl, webrnn: { model, stream: model.createSession(), seq: model.createSession(), batch } });
      }
    }

    for (const mode of config.modes) {
      const runners = impls.map((impl) => ({ impl, r: runner(impl, mode, d) })).filter((x) => x.r).map((x) => ({ impl: x.impl, ...x.r }));
      // Rounds interleave the implementations and keep each one's best median.
      const best = new Map();
      for (let round = 0; round < config.rounds; round++) {
        for (const r of runners) {
          const t = await measure(r.fn, r.units, timing);
          const prev = best.get(r.impl.name);
          if (!prev || t.ms < prev.ms) best.set(r.impl.name, t);
        }
      }
      for (const r of runners) {
        const t = best.get(r.impl.name);
        results.push({ model: m.name, cell: m.cell, hidden: H, mode, impl: r.impl.name, ms_per_step: t.ms, calls_per_block: t.perBlock });
        await log(`${m.name} ${mode} ${r.impl.name}: ${t.ms.toFixed(3)} ms/step`);
      }
    }
    const gpuAfter = rt.stats().gpu;
    if (gpuAfter && gpuBefore && gpuAfter.cpuFallbackRuns !== gpuBefore.cpuFallbackRuns) {
      notes.push(`${m.name}: webrnn ran ${gpuAfter.cpuFallbackRuns - gpuBefore.cpuFallbackRuns} layer runs on its CPU fallback`);
    }
    model.dispose();
    for (const o of Object.values(ortGpu)) await o.s.release();
  }

  await log('throughput: sessions stepped per second (one stepBatch of B sessions), webrnn WebGPU and CPU');
  const tput = await throughput({ webgpu: rt, cpu: cpuRt }, modelBytes);
  const stats = rt.stats();
  return {
    user_agent: navigator.userAgent,
    adapter: adapterLine,
    webrnn: { backend: rt.backend, variant: rt.variant, gpu_adapter: rt.gpuAdapter, cpu_backend: cpuRt.backend, gpu: stats.gpu, errors: stats.errors },
    ort: { version: ort.env.versions?.web ?? null, ep: 'webgpu', bundle: 'ort.webgpu.min.mjs' },
    config,
    checks,
    results,
    throughput: tput,
    notes,
    page_seconds: (performance.now() - started) / 1000,
  };
}

const fmtMs = (ms) => (ms === undefined ? '–' : ms >= 10 ? ms.toFixed(1) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(3));

/**
 * Markdown: ms per time step (batch64: per step of all 64 streams) and webrnn / ORT, ORT as the CPU
 * page runs it (state read back and fed again) and with its state kept on the GPU; then sessions/s.
 */
function table(report) {
  const lines = [
    `WebGPU adapter: ${report.adapter} (webrnn: ${report.webrnn.gpu_adapter}); onnxruntime-web ${report.ort.version ?? ''} WebGPU EP`,
    '',
    '| model | mode | webrnn-webgpu ms | ort-webgpu ms | webrnn / ort | ort-webgpu, state on GPU, ms | webrnn / that |',
    '|---|---|---:|---:|---:|---:|---:|',
  ];
  const ratio = (a, b) => (a !== undefined && b !== undefined ? (a / b).toFixed(2) : '–');
  for (const m of report.config.models) {
    for (const mode of report.config.modes) {
      const at = (impl) => report.results.find((r) => r.model === m.name && r.mode === mode && r.impl === impl)?.ms_per_step;
      const w = at('webrnn-webgpu');
      const o = at('ort-webgpu');
      const g = at('ort-webgpu-gpustate');
      lines.push(`| ${m.name} | ${mode} | ${fmtMs(w)} | ${fmtMs(o)} | ${ratio(w, o)} | ${fmtMs(g)} | ${ratio(w, g)} |`);
    }
  }
  const bad = report.checks.filter((c) => !c.ok);
  for (const c of bad) lines.push(`\n${c.model} ${c.impl}: outputs differ from ort-wasm (left out of the table)`);
  if (report.throughput.length) {
    lines.push(
      '',
      'Sessions stepped per second (webrnn, one `stepBatch` of B sessions; WebGPU next to the CPU backend in the same page):',
      '',
      '| model | B | WebGPU sessions/s | CPU sessions/s | WebGPU / CPU |',
      '|---|---:|---:|---:|---:|',
    );
    for (const r of report.throughput) {
      const g = r.webgpu?.sessions_per_s;
      const c = r.cpu?.sessions_per_s;
      const f = (v) => (v === undefined ? '–' : v.toFixed(0));
      lines.push(`| ${r.model} | ${r.batch} | ${f(g)} | ${f(c)} | ${g && c ? (g / c).toFixed(3) : '–'} |`);
    }
  }
  for (const n of report.notes) lines.push(`\nnote: ${n}`);
  return lines.join('\n') + '\n';
}

let report;
let markdown = '';
try {
  report = await main();
  markdown = table(report);
  document.body.dataset.status = 'ok';
} catch (e) {
  report = { error: String(e && e.stack ? e.stack : e) };
  await log(report.error);
  document.body.dataset.status = 'error';
}
await fetch('/gpu-table', { method: 'POST', body: markdown });
await fetch('/gpu-results', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(report, null, 1) });
