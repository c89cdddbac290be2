// What the benchmark pages share: the CPU page (bench.js) and the WebGPU page (gpu.js).

/** Deterministic inputs in [-1, 1). */
export function randomArray(n, seed) {
  const a = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    a[i] = (s / 4294967296) * 2 - 1;
  }
  return a;
}

/**
 * Median milliseconds per unit of work. `fn` does `units` units per call (e.g. 256 time steps).
 * Calls are timed in blocks of at least `blockMs` (the page's clock is coarse: no cross-origin
 * isolation), until `budgetMs` is spent, at least `minSamples` blocks and at most `maxSamples`.
 */
export async function measure(fn, units, { blockMs, budgetMs, minSamples = 5, maxSamples = 200 }) {
  for (let i = 0; i < 2; i++) await fn();
  let perBlock = 1;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < perBlock; i++) await fn();
    const dt = performance.now() - t0;
    if (dt >= blockMs || perBlock >= 1 << 16) break;
    perBlock *= Math.max(2, Math.min(16, Math.ceil(blockMs / Math.max(dt, 0.1))));
  }
  const samples = [];
  const start = performance.now();
  while (samples.length < minSamples || (performance.now() - start < budgetMs && samples.length < maxSamples)) {
    const t0 = performance.now();
    for (let i = 0; i < perBlock; i++) await fn();
    samples.push((performance.now() - t0) / (perBlock * units));
  }
  samples.sort((a, b) => a - b);
  return { ms: samples[samples.length >> 1], samples: samples.length, perBlock };
}

/** onnxruntime-web's wasm on one thread, its .wasm files from bench/node_modules. */
export function ortOneThread(ort) {
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.simd = true;
  ort.env.wasm.wasmPaths = new URL('./node_modules/onnxruntime-web/dist/', import.meta.url).href;
}

/**
 * Runs the page's `main`, then POSTs the markdown `table(report, config)` to /table and the report
 * (or the error) as JSON to /results; the body's `data-status` says how it ended.
 */
export async function postReport(configUrl, main, table, log) {
  let report;
  let markdown = '';
  try {
    const config = await (await fetch(configUrl)).json();
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
}

/** Appends a line to the page's #log and POSTs it to /progress (the xtask prints it). */
export function progressLog(line) {
  document.getElementById('log').textContent += line + '\n';
  fetch('/progress', { method: 'POST', body: line }).catch(() => {});
}

/** The bytes at `url`, or an Error naming it. */
export async function readBytes(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}
