// Cold start (`cargo xtask bench --startup`, xtask/src/bench_startup.rs): the harness opens this
// page in a fresh headless Chromium (a profile of its own: no HTTP cache, no compiled-wasm cache)
// once per implementation and round. The page times, from just before the library's import to the
// first step's output in JavaScript, what an app does to get one prediction out of a GRU (H = 256,
// `target/bench/models/gru_h256.onnx`):
//   webrnn:  import('webrnn.js'), Runtime.create() (feature probes, fetch + compile + instantiate the
//            wasm), loadModel(url) (fetch, parse, fold, pack the weights), createSession, step;
//   ort:     import('ort.wasm.min.mjs') (one thread), InferenceSession.create(url) (fetches and
//            compiles its wasm on first use, then the model), run.
// It POSTs the phases in ms to /results as JSON ({ impl, phases: { name: ms }, total, wasm: [{ file,
// ms, bytes }] }, kept in bench/results-startup.json) and as one line `key=value;...` to /line (what
// the std-only xtask reads: impl, variant, total, sum, phase:<name>, wasm:<file> = bytes).

const params = new URLSearchParams(location.search);
const impl = params.get('impl');
const pkg = params.get('pkg') ?? '/target/bench/webrnn-pkg/webrnn.js';
const model = new URL('/target/bench/models/gru_h256.onnx', location.href).href;
const H = 256;

const log = (line) => {
  document.getElementById('log').textContent += `${line}\n`;
};

/** Fetches of .wasm files the page made: which, how long (request to last byte) and how big. */
function wasmFetches() {
  return performance
    .getEntriesByType('resource')
    .filter((e) => e.name.endsWith('.wasm'))
    .map((e) => ({ file: e.name.split('/').pop(), ms: e.responseEnd - e.startTime, bytes: e.encodedBodySize }));
}

async function webrnn(mark) {
  const { Runtime } = await import(pkg);
  mark('import');
  const rt = await Runtime.create();
  mark('runtime');
  const m = await rt.loadModel(model);
  mark('loadModel');
  const s = m.createSession();
  const y = await s.step(new Float32Array(H).fill(0.5));
  mark('first step');
  return { y, variant: rt.variant, backend: rt.backend };
}

async function ort(mark) {
  const ort = await import('./node_modules/onnxruntime-web/dist/ort.wasm.min.mjs');
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.simd = true;
  ort.env.wasm.wasmPaths = new URL('./node_modules/onnxruntime-web/dist/', import.meta.url).href;
  mark('import');
  const session = await ort.InferenceSession.create(model, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  mark('session');
  const out = await session.run({
    X: new ort.Tensor('float32', new Float32Array(H).fill(0.5), [1, 1, H]),
    initial_h: new ort.Tensor('float32', new Float32Array(H), [1, 1, H]),
  });
  mark('first run');
  return { y: out.Y_h.data, variant: 'ort-wasm (1 thread)', backend: 'wasm' };
}

async function main() {
  const phases = {};
  const t0 = performance.now();
  let last = t0;
  const mark = (name) => {
    const now = performance.now();
    phases[name] = now - last;
    last = now;
  };
  const run = { webrnn, ort }[impl];
  if (!run) throw new Error(`unknown impl '${impl}' (webrnn, ort)`);
  const { y, variant, backend } = await run(mark);
  if (!(y.length === H && Array.from(y).every(Number.isFinite))) throw new Error(`${impl}: bad output`);
  const total = last - t0;
  log(`${impl}: ${total.toFixed(1)} ms (${Object.entries(phases).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')})`);
  // Checksum of the output, so the harness can see both computed the same step.
  const sum = Array.from(y).reduce((a, b) => a + b, 0);
  return { impl, variant, backend, phases, total, sincePageStart: last, wasm: wasmFetches(), sum };
}

let report;
try {
  report = await main();
  document.body.dataset.status = 'ok';
} catch (e) {
  report = { error: String(e && e.stack ? e.stack : e) };
  log(report.error);
  document.body.dataset.status = 'error';
}
const line = report.error
  ? `error=${report.error.replace(/[;\n]/g, ' ')}`
  : [
      `impl=${report.impl}`,
      `variant=${report.variant}`,
      `total=${report.total}`,
      `sum=${report.sum}`,
      ...Object.entries(report.phases).map(([k, v]) => `phase:${k}=${v}`),
      ...report.wasm.map((w) => `wasm:${w.file}=${w.bytes}`),
    ].join(';');
await fetch('/line', { method: 'POST', body: line });
await fetch('/results', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(report) });
