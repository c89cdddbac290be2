// Browser tests of the `webrnn` package. js/test/run.mjs opens /js/test/pages/index.html in
// headless Chromium and calls these functions with page.evaluate; each throws on failure and
// returns a short summary on success.

import * as webrnn from '/pkg/webrnn.js';
import { checkGolden, snapshotWithState, stateOf } from './golden.js';
import { readTensor } from './tensor.js';

const {
  Runtime,
  BackendUnavailableError,
  CorruptStateError,
  DisposedError,
  FormatError,
  InvalidArgumentError,
  InvalidModelError,
  IoError,
  QuotaError,
  ShapeError,
  StateMismatchError,
  VARIANTS,
  WebrnnError,
} = webrnn;

const GOLDEN = new URL('/tests/data/golden/', location.href);
const GRU = new URL('legacy_gru_embed_op14/model.onnx', GOLDEN); // tokens in, 37 logits out
const GRU_SD = new URL('sd_gru_embed_head/model.safetensors', GOLDEN); // same signature, other weights
const RNN = new URL('legacy_rnn_tanh_op14/model.onnx', GOLDEN); // 8 floats in, 5 out
const EXTERNAL = new URL('legacy_lstm_external_data_op17/', GOLDEN);

function assert(ok, message) {
  if (!ok) throw new Error(`assertion failed: ${message}`);
}

async function rejects(what, fn, Class, code) {
  try {
    await fn();
  } catch (e) {
    if (!(e instanceof Class) || !(e instanceof WebrnnError) || e.code !== code) {
      throw new Error(`${what}: expected ${Class.name} (${code}), got ${e?.name} (${e?.code}): ${e?.message}`);
    }
    return e;
  }
  throw new Error(`${what}: expected ${Class.name}, but it succeeded`);
}

function same(a, b) {
  return a.length === b.length && a.every((v, i) => Object.is(v, b[i]));
}

async function read(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

let runtime;
// The WebGPU suite opens the page with ?backend=webgpu ('auto' takes the CPU over a software adapter).
const BACKEND = new URLSearchParams(location.search).get('backend') ?? 'auto';
const rt = async () => (runtime ??= await Runtime.create({ backend: BACKEND }));

const tokens = (t) => new Int32Array([(t * 7 + 3) % 37]);

export async function golden(cases) {
  const r = await rt();
  const results = [];
  const before = r.stats().gpu;
  for (const [name, meta] of cases) results.push(await checkGolden(r, GOLDEN, name, meta, read));
  if (r.backend === 'webgpu') {
    // The GPU really ran the layers: only LSTM projections may fall back to the CPU.
    const after = r.stats().gpu;
    assert(after.gpuRuns - before.gpuRuns > 1000, `GPU layer runs ${after.gpuRuns - before.gpuRuns}`);
    assert(!after.lost, 'device lost');
  }
  const worst = Math.max(0, ...results.map((x) => x.maxErr ?? 0));
  return `${r.backend}, max |diff| ${worst.toExponential(1)}: ${results
    .map((x) => `${x.name}${x.sessions ? '' : ' (no sessions)'}`)
    .join(', ')}`;
}

/**
 * `loadModel(source, { weights: 'int8' })`: every golden case on the CPU int8 kernels, whatever
 * the runtime's backend, within the int8 sanity bound of PyTorch and visibly not f32; the same
 * outputs as under a CPU runtime; snapshots and the store move between the int8 and f32 models
 * (one fingerprint); an unknown value is refused.
 */
export async function int8(cases) {
  const r = await rt();
  const gpuBefore = r.stats().gpu;
  const results = [];
  for (const [name, meta] of cases) results.push(await checkGolden(r, GOLDEN, name, meta, read, { weights: 'int8' }));
  if (r.backend === 'webgpu') {
    const runs = r.stats().gpu.gpuRuns - gpuBefore.gpuRuns;
    assert(runs === 0, `${runs} GPU layer runs for int8 models: they belong on the CPU`);
  }
  // f32 meets 1e-5 on every case; int8 rounds every weight to 1/127 of its row's largest.
  const exact = results.filter((x) => x.sessions && !(x.maxErr > 1e-4));
  assert(exact.length === 0, `as exact as f32, so not int8: ${exact.map((x) => `${x.name} ${x.maxErr}`).join(', ')}`);
  await rejects('unknown weights', () => r.loadModel(GRU, { weights: 'int4' }), InvalidArgumentError, 'invalid_argument').then(
    (e) => assert(e.message.includes("'int4'"), e.message),
  );

  // One model, f32 and int8: one fingerprint, close outputs that are not the same bits.
  const [f, q] = [await r.loadModel(GRU), await r.loadModel(GRU, { weights: 'int8' })];
  assert(q.info.backend === 'cpu-int8' && q.info.fingerprint === f.info.fingerprint, `int8 model ${JSON.stringify(q.info)}`);
  const xs = Int32Array.from({ length: 30 }, (_, t) => (t * 5 + 1) % 37);
  const [sf, sq] = [f.createSession('f32'), q.createSession('int8', { keepInputs: 4 })];
  const [yf, yq] = [await sf.run(xs, 30), await sq.run(xs, 30)];
  assert(!same(yf, yq), 'int8 outputs are bit-identical to f32: the option was ignored');
  const diff = Math.max(...yf.map((v, i) => Math.abs(v - yq[i])));
  assert(diff <= 0.05, `int8 vs f32: max |diff| ${diff}`);

  // Under a CPU runtime the int8 model gives the same bits (on WebGPU: int8 never went to the GPU).
  const cpu = await Runtime.create({ backend: 'cpu' });
  const qc = await cpu.loadModel(await read(GRU), { weights: 'int8' });
  assert(qc.info.backend === 'cpu-int8', `int8 under a cpu runtime: ${qc.info.backend}`);
  assert(same(await qc.createSession().run(xs, 30), yq), 'int8 under the CPU runtime = int8 under this one');
  qc.dispose();

  // Snapshots: an int8 session's state round-trips, and moves to the f32 model.
  await f.idle();
  const snap = sq.saveState();
  const [twin, moved] = [q.createSession('twin'), f.createSession('moved')];
  twin.loadState(snap);
  moved.loadState(snap);
  sf.loadState(snap); // moved's twin on the f32 model
  assert(same(await twin.step(tokens(1)), await sq.step(tokens(1))), 'int8 snapshot round trip');
  assert(same(await moved.step(tokens(1)), await sf.step(tokens(1))), 'int8 snapshot into the f32 model');
  assert(twin.steps === 31 && moved.steps === 31, `steps ${twin.steps} / ${moved.steps}`);

  // The store: an int8 session saved, restored into the int8 model loaded again (a reload).
  const store = await r.openStore('int8');
  await store.save(sq);
  const q2 = await r.loadModel(GRU, { weights: 'int8' });
  const back = q2.createSession('int8', { keepInputs: 4 });
  assert((await store.restore(back)) === true, 'restore an int8 session');
  assert(back.steps === 31 && back.history.length === 4, `restored steps ${back.steps}, history ${back.history.length}`);
  assert(same(await back.step(tokens(2)), await sq.step(tokens(2))), 'restored int8 session continues identically');
  assert((await store.delete('int8')) === true, 'delete');
  for (const m of [f, q, q2]) m.dispose();
  const worst = Math.max(0, ...results.map((x) => x.maxErr ?? 0));
  const best = Math.min(...results.filter((x) => x.sessions).map((x) => x.maxErr));
  return `${r.backend} runtime, int8 models on ${q.info.backend}: ${results.length} cases, |diff| vs PyTorch ${best.toExponential(1)}..${worst.toExponential(1)}; vs f32 ${diff.toExponential(1)}`;
}

/**
 * ONNX conformance cases (tests/data/onnx-node, onnx-options) through Model.runGraph: every
 * output against the expected one, at the backend's tolerance.
 */
export async function conformance(cases) {
  const r = await rt();
  const [atol, rtol] = r.backend === 'webgpu' ? [1e-4, 1e-3] : [1e-5, 1e-4];
  const before = r.stats().gpu;
  let worst = 0;
  for (const [dir, inputs, outputs] of cases) {
    const base = new URL(`/tests/data/${dir}/`, location.href);
    const model = await r.loadModel(new URL('model.onnx', base));
    try {
      const pb = async (kind, i) => readTensor(await read(new URL(`test_data_set_0/${kind}_${i}.pb`, base)));
      const xs = await Promise.all(Array.from({ length: inputs }, (_, i) => pb('input', i)));
      const want = await Promise.all(Array.from({ length: outputs }, (_, i) => pb('output', i)));
      const got = await model.runGraph(xs.map((t) => ({ dims: t.dims, data: t.data })));
      assert(got.length >= outputs, `${dir}: ${got.length} outputs, expected ${outputs}`);
      want.forEach((w, i) => {
        const g = got[i];
        assert(g.dims.join() === w.dims.join(), `${dir} output ${i}: dims ${g.dims} vs ${w.dims}`);
        for (let k = 0; k < w.data.length; k++) {
          const d = Math.abs(Number(g.data[k]) - w.data[k]);
          assert(d <= atol + rtol * Math.abs(w.data[k]), `${dir} output ${i}[${k}]: ${g.data[k]} vs ${w.data[k]}`);
          worst = Math.max(worst, d);
        }
      });
    } finally {
      model.dispose();
    }
  }
  if (r.backend === 'webgpu') {
    const runs = r.stats().gpu.gpuRuns - before.gpuRuns;
    assert(runs >= cases.length, `only ${runs} GPU layer runs for ${cases.length} cases`);
  }
  return `${cases.length} cases on ${r.backend}, max |diff| ${worst.toExponential(1)}`;
}

/** The package's GPU self-test on the page's adapter: both kernel families, every cell kind. */
export async function gpuSelfTest() {
  const r = await Runtime.create({ backend: 'webgpu' });
  const report = await r.gpuSelfTest();
  assert(/barrier-free/.test(report) && /tiled/.test(report), report);
  return report.split('\n').length - 1 + ' checks ok';
}

/**
 * The device is destroyed between steps (a driver reset): the runtime says so once, sessions go
 * on on the CPU from the state they had, and give the CPU's outputs; new models load on the CPU.
 */
export async function deviceLoss() {
  const events = [];
  const r = await Runtime.create({ backend: 'webgpu', onDeviceLost: (info) => events.push(['callback', info.backend]) });
  r.addEventListener('devicelost', (e) => events.push(['event', e.detail.backend]));
  const cpu = await Runtime.create({ backend: 'cpu' });
  const [gm, cm] = [await r.loadModel(GRU), await cpu.loadModel(GRU)];
  const [sg, sc] = [gm.createSession(), cm.createSession()];
  for (let t = 0; t < 5; t++) await Promise.all([sg.step(tokens(t)), sc.step(tokens(t))]);
  // Each settled call brought the state back with its outputs (#14): a snapshot works before the
  // loss as on the CPU, and the loss takes nothing the session needs. (Rebuilding a state that
  // is on the device only, from the journal, is the Rust API's path: tests/ cover it natively.)
  const before = stateOf(sg);
  const want = stateOf(sc);
  assert(before.every((v, i) => Math.abs(v - want[i]) <= 1e-4), 'the GPU snapshot before the loss = the CPU state');
  const runsBefore = r.stats().gpu.gpuRuns;
  r._destroyGpuForTesting();
  for (let i = 0; i < 100 && !r.stats().gpu.lost; i++) await new Promise((ok) => setTimeout(ok, 50));
  assert(r.stats().gpu.lost, 'the loss was reported by the device');
  let worst = 0;
  for (let t = 5; t < 12; t++) {
    const [g, c] = [await sg.step(tokens(t)), await sc.step(tokens(t))];
    g.forEach((v, i) => {
      worst = Math.max(worst, Math.abs(v - c[i]));
      assert(Math.abs(v - c[i]) <= 1e-4 + 1e-3 * Math.abs(c[i]), `step ${t}: ${v} vs CPU ${c[i]}`);
    });
  }
  const stats = r.stats().gpu;
  assert(stats.gpuRuns === runsBefore && stats.cpuFallbackRuns >= 7, `runs ${JSON.stringify(stats)}`);
  assert(sg.steps === 12, `steps ${sg.steps}`);
  assert(JSON.stringify(events) === JSON.stringify([['callback', r.backend], ['event', r.backend]]), JSON.stringify(events));
  assert(r.backend.startsWith('cpu'), `backend after the loss: ${r.backend}`);
  const later = await r.loadModel(GRU);
  assert(later.info.backend.startsWith('cpu'), `a model loaded after the loss runs on ${later.info.backend}`);
  return `told once (${r.backend}); 7 steps on the CPU after the loss, max |diff| vs CPU ${worst.toExponential(1)}`;
}

export async function api() {
  const r = await rt();
  assert(r.backend === 'cpu-scalar' || r.backend === 'cpu-simd', `backend ${r.backend}`);
  assert(r.variant === VARIANTS[0].name, `variant ${r.variant}, expected the fastest, ${VARIANTS[0].name}`);

  // Sources: URL with progress, ArrayBuffer, Uint8Array; all the same model.
  const progress = [];
  const m = await r.loadModel(GRU.href, { onProgress: (p) => progress.push(p) });
  const last = progress.at(-1);
  assert(last && last.total > 0 && last.loaded === last.total, `progress ${JSON.stringify(last)}`);
  const bytes = await read(GRU);
  const m2 = await r.loadModel(bytes.buffer.slice(0));
  const m3 = await r.loadModel(bytes);
  assert(m2.info.fingerprint === m.info.fingerprint && m3.info.fingerprint === m.info.fingerprint, 'fingerprints');
  assert(m.info.layers.length === 2 && m.info.layers[0].op === 'GRU' && m.info.layers[0].hiddenSize === 13, 'layers');
  assert(m.info.inputIsTokens && m.info.inputSize === 1 && m.info.outputSize === 37, 'sizes');
  m2.dispose();
  m3.dispose();

  // External data: fetched from beside the model's URL, or given; refused from bare bytes.
  const files = [];
  const ext = await r.loadModel(new URL('model.onnx', EXTERNAL), { onProgress: (p) => files.push(p.file) });
  assert(files.some((f) => f.endsWith('model.onnx.data')), 'external data progress');
  const extBytes = await read(new URL('model.onnx', EXTERNAL));
  await rejects('external data from bytes', () => r.loadModel(extBytes), IoError, 'io');
  const ext2 = await r.loadModel(extBytes, { externalData: { 'model.onnx.data': new URL('model.onnx.data', EXTERNAL) } });
  assert(ext2.info.fingerprint === ext.info.fingerprint, 'external data given');
  ext2.dispose();

  // Safetensors: config beside the URL, or given as an object with bytes.
  const sd = await r.loadModel(GRU_SD);
  const config = JSON.parse(new TextDecoder().decode(await read(new URL('config.json', GRU_SD))));
  const sd2 = await r.loadModel(await read(GRU_SD), { config });
  assert(sd.info.format === 'safetensors' && sd2.info.fingerprint === sd.info.fingerprint, 'safetensors');
  sd2.dispose();

  // Load failures are typed, and the runtime keeps working after them.
  await rejects('garbage model', () => r.loadModel(new Uint8Array([1, 2, 3, 4])), FormatError, 'format');
  // An operator the runtime lacks: rename every "Transpose" (same length, so the protobuf stays valid).
  const renamed = bytes.slice();
  const word = new TextEncoder().encode('Transpose');
  for (let i = 0; i + word.length <= renamed.length; i++) {
    if (word.every((c, k) => renamed[i + k] === c)) renamed[i + 7] = 0x7a; // 'Transpoze'
  }
  const unsupported = await rejects('unknown op', () => r.loadModel(renamed), webrnn.UnsupportedOpError, 'unsupported_op');
  assert(unsupported.message.includes('Transpoze'), unsupported.message);
  await rejects('404', () => r.loadModel('/tests/data/golden/nope/model.onnx'), IoError, 'io');
  const unrolled = await r.loadModel(new URL('dynamo_rnn_tanh/model.onnx', GOLDEN));
  await rejects('no recurrent layer', () => unrolled.createSession(), InvalidModelError, 'invalid_model');
  unrolled.dispose();
  await rejects('webgpu forced', () => Runtime.create({ backend: 'webgpu' }), BackendUnavailableError, 'backend_unavailable');
  await rejects('unknown backend', () => Runtime.create({ backend: 'tpu' }), InvalidArgumentError, 'invalid_argument');

  // Wrong inputs fail with ShapeError and change nothing: s keeps pace with its twin.
  const s = m.createSession('user-42');
  const twin = m.createSession('twin');
  await rejects('duplicate id', () => m.createSession('user-42'), InvalidArgumentError, 'invalid_argument');
  for (let t = 0; t < 5; t++) {
    await rejects('two tokens', () => s.step(new Int32Array([1, 2])), ShapeError, 'shape');
    await rejects('no tokens', () => s.step(new Int32Array([])), ShapeError, 'shape');
    await rejects('floats for tokens', () => s.step(new Float32Array([1])), ShapeError, 'shape');
    await rejects('run length', () => s.run(new Int32Array([1, 2, 3]), 2), ShapeError, 'shape');
    await rejects('run steps', () => s.run(new Int32Array([1]), 0), InvalidArgumentError, 'invalid_argument');
    await rejects('batch length', () => m.stepBatch([s, twin], new Int32Array([1])), ShapeError, 'shape');
    await rejects('batch twice', () => m.stepBatch([s, s], new Int32Array([1, 1])), InvalidArgumentError, 'invalid_argument');
    await rejects('not an array', () => s.step('hello'), ShapeError, 'shape');
    await rejects('out length', () => s.step(tokens(t), new Float32Array(36)), InvalidArgumentError, 'invalid_argument');
    await rejects('out type', () => s.step(tokens(t), new Float64Array(37)), InvalidArgumentError, 'invalid_argument');
    await rejects('run out', () => s.run(Int32Array.from([1, 2]), 2, new Float32Array(37)), InvalidArgumentError, 'invalid_argument');
    await rejects('batch out', () => m.stepBatch([s, twin], new Int32Array([1, 1]), new Float32Array(37)), InvalidArgumentError, 'invalid_argument');
    // Every other step writes into an array of the caller's: the same values, in that array.
    const out = t % 2 ? new Float32Array(37).fill(NaN) : undefined;
    const [a, b] = [await s.step(tokens(t), out), await twin.step(tokens(t))];
    assert(same(a, b), `step ${t} after failed calls`);
    assert(out === undefined || a === out, `step ${t} returns its out array`);
  }
  const runOut = new Float32Array(3 * 37);
  const ys = await s.run(Int32Array.from([5, 6, 7]), 3, runOut);
  assert(ys === runOut && s.steps === 8, `run: ${ys.length} values, ${s.steps} steps`);
  assert(same(ys, await twin.run([5, 6, 7], 3)), 'run into out = run');

  // stepBatch = the sessions stepped one by one.
  const [p, q] = [m.createSession('p'), m.createSession('q')];
  p.loadState(s.saveState());
  const batchOut = new Float32Array(3 * 37);
  const yb = await m.stepBatch([s, twin, q], new Int32Array([9, 9, 4]), batchOut);
  assert(yb === batchOut, 'stepBatch returns its out array');
  assert(same(yb.subarray(0, 37), await p.step(new Int32Array([9]))), 'stepBatch session 0');
  assert(same(yb.subarray(0, 37), yb.subarray(37, 74)), 'stepBatch twins');
  assert(same(stateOf(s), stateOf(twin)) && s.steps === 9, 'stepBatch states');

  // Snapshots: round trip; another model's or a damaged one is refused, the state unchanged.
  const snap = s.saveState();
  const before = stateOf(q);
  await rejects('other model', () => ext.createSession('x').loadState(snap), StateMismatchError, 'state_mismatch');
  const other = sd.createSession('other');
  await other.step(new Int32Array([1]));
  await rejects('same layout, other weights', () => q.loadState(other.saveState()), StateMismatchError, 'state_mismatch');
  const flipped = snap.slice();
  flipped[flipped.length - 20] ^= 0x40;
  await rejects('flipped bit', () => q.loadState(flipped), CorruptStateError, 'corrupt_state');
  await rejects('truncated', () => q.loadState(snap.subarray(0, 30)), CorruptStateError, 'corrupt_state');
  await rejects('garbage', () => q.loadState(new Uint8Array(100)), CorruptStateError, 'corrupt_state');
  assert(same(stateOf(q), before), 'state after refused snapshots');
  q.loadState(snap.buffer.slice(snap.byteOffset, snap.byteOffset + snap.byteLength));
  assert(same(await q.step(tokens(1)), await s.step(tokens(1))), 'restored session continues identically');
  q.reset();
  assert(q.steps === 0 && stateOf(q).every((v) => v === 0), 'reset');

  // Disposal.
  p.dispose();
  await rejects('disposed session', () => p.step(tokens(0)), DisposedError, 'disposed');
  await rejects('disposed in a batch', () => m.stepBatch([s, p], new Int32Array([1, 1])), DisposedError, 'disposed');
  assert(m.sessions === 3, `live sessions ${m.sessions}`);

  // NaN in → NaN out, counted; stats.
  const rnn = await r.loadModel(RNN);
  const ns = rnn.createSession();
  const y = await ns.step(new Float32Array(8).fill(Number.NaN));
  assert(y.every(Number.isNaN), 'NaN in, NaN out');
  const st = r.stats();
  assert(st.nonFinite >= 5 && st.sessions >= 6 && st.steps > 20 && st.errors > 10, `stats ${JSON.stringify(st)}`);
  const l = st.latencyUs;
  assert(l.samples > 20 && l.p50 <= l.p95 && l.p95 <= l.p99, `latency ${JSON.stringify(l)}`);
  assert(st.bytes.wasmMemory > 0 && st.bytes.sessionState > 0, 'bytes');
  for (const model of [m, ext, sd, rnn]) model.dispose();
  await rejects('disposed model', () => s.step(tokens(0)), DisposedError, 'disposed');
  assert(r.stats().sessions === 0 && r.stats().models === 0, `after dispose ${JSON.stringify(r.stats())}`);
  return `backend ${r.backend}, variant ${r.variant}, p50 ${l.p50.toFixed(0)} µs`;
}

/** Backend choice: `auto` never picks WebGPU while the build has no GPU backend. */
export async function backends(expectAdapter) {
  const r = await rt();
  assert(r.webgpuAdapter === expectAdapter, `webgpuAdapter ${r.webgpuAdapter}, expected ${expectAdapter}`);
  // A WebGPU runtime loads a WebGPU build; a runtime on the CPU a CPU-only one (no GPU code).
  assert(r.build.gpu === expectAdapter, `build.gpu ${r.build.gpu} (${r.variant}) on ${r.backend}`);
  const cpu = await Runtime.create({ backend: 'cpu' });
  assert(cpu.backend.startsWith('cpu') && !cpu.webgpuAdapter, 'cpu');
  const cm = await cpu.loadModel(GRU);
  assert(cm.info.backend === 'cpu' || cm.info.backend === 'cpu-scalar', `cpu model on ${cm.info.backend}`);
  if (!expectAdapter) {
    assert(r.backend !== 'webgpu' && r.gpuAdapter === null, `auto → ${r.backend}`);
    const e = await rejects('webgpu forced', () => Runtime.create({ backend: 'webgpu' }), BackendUnavailableError, 'backend_unavailable');
    return `no adapter, auto → ${r.backend}; webgpu forced: ${e.message}`;
  }
  const auto = await Runtime.create();
  // The only adapter here is SwiftShader: auto keeps to the CPU and says why.
  assert(auto.backend.startsWith('cpu') && /software/.test(auto.gpuError ?? ''), `auto → ${auto.backend} (${auto.gpuError})`);
  assert(r.backend === 'webgpu' && typeof r.gpuAdapter === 'string', `forced → ${r.backend} (${r.gpuError})`);
  const g = await Runtime.create({ backend: 'webgpu' });
  const gm = await g.loadModel(GRU);
  assert(gm.info.backend === 'gpu', `webgpu model on ${gm.info.backend}`);
  // Same inputs on both backends: same outputs within the GPU tolerance; calls queue in order.
  const [sc, sg] = [cm.createSession(), gm.createSession()];
  const xs = Int32Array.from({ length: 40 }, (_, t) => (t * 5 + 1) % 37);
  const [yc, yg] = [await sc.run(xs, 40), await sg.run(xs, 40)];
  const pending = [0, 1, 2].map((t) => sg.step(tokens(t)));
  const order = await Promise.all(pending);
  for (let t = 0; t < 3; t++) await sc.step(tokens(t));
  const again = [await sc.step(tokens(3)), await sg.step(tokens(3))];
  let worst = 0;
  for (const [a, b] of [[yc, yg], again]) {
    for (let i = 0; i < a.length; i++) {
      const d = Math.abs(a[i] - b[i]);
      assert(d <= 1e-4 + 1e-3 * Math.abs(a[i]), `cpu ${a[i]} vs gpu ${b[i]}`);
      worst = Math.max(worst, d);
    }
  }
  assert(order.length === 3 && sg.steps === 44 && sc.steps === 44, `steps ${sg.steps} / ${sc.steps}`);
  // Two GPU models in flight at once (as the demo's two panels are): each gets its own results.
  const gm2 = await g.loadModel(RNN);
  const cm2 = await cpu.loadModel(RNN);
  const [a, b] = [gm2.createSession(), cm2.createSession()];
  const xr = Float32Array.from({ length: 8 * 30 }, (_, i) => Math.sin(i * 0.37));
  const both = await Promise.all([a.run(xr, 30), sg.run(xs, 40), a.step(xr.subarray(0, 8)), sg.step(tokens(5))]);
  const wantRnn = await b.run(xr, 30);
  assert(both[0].every((v, i) => Math.abs(v - wantRnn[i]) <= 1e-4 + 1e-3 * Math.abs(wantRnn[i])), 'concurrent RNN run');
  await sc.run(xs, 40);
  const wantStep = await sc.step(tokens(5));
  assert(both[3].every((v, i) => Math.abs(v - wantStep[i]) <= 1e-4 + 1e-3 * Math.abs(wantStep[i])), 'concurrent GRU step');
  gm2.dispose();
  cm2.dispose();
  // A snapshot taken after the queue drains moves between backends.
  await gm.idle();
  const snap = sg.saveState();
  const moved = cm.createSession();
  moved.loadState(snap);
  const [m1, g1] = [await moved.step(tokens(9)), await sg.step(tokens(9))];
  assert(m1.every((v, i) => Math.abs(v - g1[i]) <= 1e-4 + 1e-3 * Math.abs(v)), 'snapshot moved from GPU to CPU');
  gm.dispose();
  cm.dispose();
  return `adapter ${r.gpuAdapter}; auto → ${auto.backend} (${auto.gpuError}); GPU vs CPU max |diff| ${worst.toExponential(1)}`;
}

/** A fresh page may pin a variant; the base variant runs the same model to the same outputs. */
export async function variant(name) {
  const r = await Runtime.create({ variant: name });
  assert(r.variant === name, `variant ${r.variant}`);
  const m = await r.loadModel(GRU);
  const s = m.createSession();
  const y = await s.run(Int32Array.from({ length: 20 }, (_, t) => t % 37), 20);
  // One instance of each kind (CPU-only, WebGPU) per realm: another variant of the same kind is refused.
  const other = VARIANTS.find((v) => v.gpu === r.build.gpu && v.name !== name);
  if (other) {
    await rejects('second variant', () => Runtime.create({ variant: other.name }), InvalidArgumentError, 'invalid_argument');
  }
  await rejects('unknown variant', () => Runtime.create({ variant: 'no-such' }), BackendUnavailableError, 'backend_unavailable');
  return { variant: r.variant, backend: r.backend, sum: y.reduce((a, b) => a + b, 0) };
}

// ---- persistence ---------------------------------------------------------------------------

async function gru(r) {
  return (r ?? (await rt())).loadModel(GRU);
}

/** Before a reload: step a session, save it, and say what its next output must be. */
export async function reloadBefore() {
  const m = await gru();
  const store = await (await rt()).openStore('reload');
  const s = m.createSession('reload-user', { keepInputs: 4 });
  for (let t = 0; t < 6; t++) await s.step(tokens(t));
  await store.save(s);
  return Array.from(await s.step(tokens(6)));
}

export async function reloadAfter(expected) {
  const m = await gru();
  const store = await (await rt()).openStore('reload');
  const s = m.createSession('reload-user', { keepInputs: 4 });
  assert((await store.restore(s)) === true, 'restore after reload');
  assert(s.steps === 6 && s.history.length === 4, `steps ${s.steps}, history ${s.history.length}`);
  const y = await s.step(tokens(6));
  assert(same(Array.from(y), expected), 'output after reload');
  const listed = await store.list();
  assert(listed.length === 1 && listed[0].id === 'reload-user' && listed[0].steps === 6, JSON.stringify(listed));
  assert((await store.delete('reload-user')) === true && (await store.restore(s)) === false, 'delete');
  return `restored ${listed[0].bytes} bytes`;
}

/** One tab's share of the two-tab test: `rounds` × (restore, step, save) under the session's lock. */
export async function tabWriter(rounds) {
  const m = await gru();
  const store = await (await rt()).openStore('tabs');
  const s = m.createSession('shared');
  for (let i = 0; i < rounds; i++) {
    await store.exclusive(s, async (session) => {
      await session.step(tokens(session.steps));
      await new Promise((resolve) => setTimeout(resolve, 2)); // let the other tab try to interleave
    });
  }
  return s.steps;
}

export async function tabCheck(total) {
  const store = await (await rt()).openStore('tabs');
  const [rec] = await store.list();
  assert(rec && rec.steps === total && rec.revision === total, `stored ${JSON.stringify(rec)}, expected ${total}`);
  // The interleaved steps equal one session stepping through the same token sequence.
  const m = await gru();
  const a = m.createSession('a');
  const b = m.createSession('shared');
  for (let t = 0; t < total; t++) await a.step(tokens(t));
  assert(await store.restore(b), 'restore');
  assert(same(stateOf(a), stateOf(b)), 'no lost update: the state is the one of all steps in order');
  return `${rec.steps} steps, revision ${rec.revision}`;
}

function rawPut(dbName, mutate) {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open(dbName);
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const db = open.result;
      const tx = db.transaction('sessions', 'readwrite');
      const store = tx.objectStore('sessions');
      const cursor = store.openCursor();
      cursor.onsuccess = () => {
        const c = cursor.result;
        if (c) {
          c.update(mutate(c.value));
          c.continue();
        }
      };
      tx.oncomplete = () => {
        db.close();
        resolve();
      };
      tx.onerror = () => reject(tx.error);
    };
  });
}

/** A damaged IndexedDB record: restore throws CorruptStateError; the session and store go on. */
export async function corruptRecord() {
  const r = await rt();
  const m = await gru();
  const store = await r.openStore('corrupt');
  const s = m.createSession('c');
  await s.step(tokens(1));
  await store.save(s);
  await rawPut('webrnn:corrupt', (rec) => {
    rec.snapshot[rec.snapshot.length - 12] ^= 0x01;
    return rec;
  });
  const t = m.createSession('c2');
  await t.step(tokens(2));
  const before = stateOf(t);
  s.dispose();
  const u = m.createSession('c', {});
  await u.step(tokens(5));
  const uBefore = stateOf(u);
  await rejects('damaged record', () => store.restore(u), CorruptStateError, 'corrupt_state');
  assert(same(stateOf(u), uBefore), 'state after a damaged record');
  await rawPut('webrnn:corrupt', (rec) => ({ ...rec, snapshot: 'not bytes' }));
  await rejects('not a record', () => store.restore(u), CorruptStateError, 'corrupt_state');
  await store.save(u); // overwrites the damaged record
  const v = m.createSession('c3');
  v.loadState(u.saveState());
  u.reset();
  assert((await store.restore(u)) && same(stateOf(u), stateOf(v)), 'save after corruption');
  assert(same(stateOf(t), before), 'other sessions untouched');
  return 'ok';
}

/**
 * Failed and interrupted saves leave the previous record intact. The quota failure is injected at
 * IDBObjectStore.put (a DOMException named QuotaExceededError, as browsers throw for a value over
 * quota): Chromium's DevTools quota override does not reach IndexedDB writes in headless mode.
 */
export async function quota() {
  const m = await gru();
  const store = await (await rt()).openStore('quota');
  const s = m.createSession('q', { keepInputs: 100 });
  for (let t = 0; t < 3; t++) await s.step(tokens(t));
  await store.save(s);
  const saved = stateOf(s);
  await s.run(Int32Array.from({ length: 100 }, (_, t) => t % 37), 100);
  const put = IDBObjectStore.prototype.put;
  let e;
  try {
    IDBObjectStore.prototype.put = function () {
      throw new DOMException('the quota has been exceeded (injected)', 'QuotaExceededError');
    };
    e = await rejects('save over quota', () => store.save(s), QuotaError, 'quota');
    IDBObjectStore.prototype.put = function (...args) {
      const request = put.apply(this, args);
      this.transaction.abort(); // the tab goes away mid-save
      return request;
    };
    await rejects('interrupted save', () => store.save(s), webrnn.StorageError, 'storage');
  } finally {
    IDBObjectStore.prototype.put = put;
  }
  const r = m.createSession('q2');
  r.dispose();
  const again = (await gru()).createSession('q');
  assert(await store.restore(again), 'restore after failed saves');
  assert(again.steps === 3 && same(stateOf(again), saved) && again.history.length === 0, 'the previous state is intact');
  await store.save(s);
  assert((await store.list())[0].steps === 103, 'a later save works');
  return e.message;
}

/** A model upgrade: another fingerprint is never loaded; reset, or replay the kept inputs. */
export async function upgrade() {
  const r = await rt();
  const events = [];
  const store = await r.openStore('upgrade', { onMismatch: (e) => events.push(e) });
  const [oldModel, newModel] = [await gru(), await r.loadModel(GRU_SD)];
  for (const [id, keep] of [
    ['keeps', 4],
    ['forgets', 0],
  ]) {
    const s = oldModel.createSession(id, { keepInputs: keep });
    for (let t = 0; t < 6; t++) await s.step(tokens(t));
    await store.save(s);
    s.dispose();
  }
  const kept = newModel.createSession('keeps', { keepInputs: 4 });
  assert((await store.restore(kept)) === true, 'replayed restore');
  const ref = newModel.createSession('ref');
  await ref.run(Int32Array.from([2, 3, 4, 5].map((t) => tokens(t)[0])), 4);
  assert(same(stateOf(kept), stateOf(ref)) && kept.steps === 4, 'warm-up replays the last 4 inputs');
  const forgot = newModel.createSession('forgets');
  await forgot.step(tokens(9));
  assert((await store.restore(forgot)) === false, 'reset restore');
  assert(forgot.steps === 0 && stateOf(forgot).every((v) => v === 0), 'reset');
  assert(events.length === 2 && events[0].action === 'replayed' && events[0].replayedSteps === 4, JSON.stringify(events));
  assert(events[1].action === 'reset' && events[1].storedFingerprint === oldModel.info.fingerprint, JSON.stringify(events[1]));
  const listed = await store.list();
  assert(listed.length === 1 && listed[0].fingerprint === newModel.info.fingerprint, 'the replayed state is saved');
  // The old model is never given the new model's state either.
  const back = oldModel.createSession('keeps');
  assert((await store.restore(back)) === false && back.steps === 0, 'downgrade resets');
  return events.map((e) => `${e.id}: ${e.action}`).join(', ');
}

export async function bounds() {
  const r = await rt();
  const m = await gru();
  const store = await r.openStore('bounds', { maxSessions: 3 });
  for (let i = 0; i < 5; i++) {
    const s = m.createSession(`b${i}`);
    await s.step(tokens(i));
    await store.save(s);
    s.dispose();
    await new Promise((resolve) => setTimeout(resolve, 3));
  }
  const ids = (await store.list()).map((x) => x.id);
  assert(ids.join() === 'b4,b3,b2', `LRU kept ${ids}`);
  // Restoring touches a session, so it survives the next eviction.
  assert(await store.restore(m.createSession('b2', {})), 'restore b2');
  await new Promise((resolve) => setTimeout(resolve, 3));
  const s5 = m.createSession('b5');
  await store.save(s5);
  const after = (await store.list()).map((x) => x.id);
  assert(after.length === 3 && after.includes('b2') && !after.includes('b3'), `after ${after}`);
  const aged = await r.openStore('aged', { maxAgeMs: 40 });
  await aged.save(s5);
  await new Promise((resolve) => setTimeout(resolve, 80));
  assert((await aged.restore(s5)) === false && (await aged.list()).length === 0, 'maxAgeMs');
  await rejects('bad bound', () => r.openStore('x', { maxSessions: 0 }), InvalidArgumentError, 'invalid_argument');
  return `kept ${after.join(', ')}`;
}

/** The package in a module Worker: same outputs as this page, and IndexedDB works there. */
export async function worker() {
  const w = new Worker('/js/test/pages/worker.js', { type: 'module' });
  const reply = await new Promise((resolve, reject) => {
    w.onmessage = (e) => resolve(e.data);
    w.onerror = (e) => reject(new Error(`worker: ${e.message}`));
    w.postMessage({ steps: 12 });
  });
  w.terminate();
  if (reply.error) throw new Error(`worker: ${reply.error}`);
  const m = await gru();
  const s = m.createSession();
  let y;
  for (let t = 0; t < 12; t++) y = await s.step(tokens(t));
  assert(same(Array.from(y), reply.output), 'worker output = page output');
  const store = await (await rt()).openStore('worker');
  const t = m.createSession('from-worker');
  assert(await store.restore(t), 'state saved by the worker');
  assert(same(stateOf(t), stateOf(s)), 'worker state');
  return `worker backend ${reply.backend}`;
}

export { snapshotWithState };

// The issue's example as a user would paste it (only the values it leaves to the reader are
// filled in, and the store calls come before `dispose`): it must run unchanged with and without
// WebGPU.
export async function quickstart() {
  const source = GRU.href;
  const onProgress = () => {};
  const x = new Int32Array([5]);
  const steps = 4;
  const xs = new Int32Array([1, 2, 3, 4]);
  const xb = new Int32Array([7, 8, 9]);

  const rt = await Runtime.create({ backend: 'auto' });
  const backend = rt.backend;
  const model = await rt.loadModel(source, { onProgress });
  const s = model.createSession('user-42');
  const y = await s.step(x);
  const ys = await s.run(xs, steps);
  const [s1, s2, s3] = ['a', 'b', 'c'].map((id) => model.createSession(id));
  const yb = await model.stepBatch([s1, s2, s3], xb);
  const bytes = s.saveState(); s.loadState(bytes); s.reset();
  const store = await rt.openStore('my-app');
  await store.save(s); const restored = await store.restore(s); await store.delete(s1.id); const list = await store.list();
  s.dispose();
  const stats = rt.stats();

  assert(['webgpu', 'cpu-simd', 'cpu-scalar'].includes(backend), `backend ${backend}`);
  assert(y instanceof Float32Array && y.length === 37, `step gave ${y?.length} values`);
  assert(ys.length === steps * 37 && yb.length === 3 * 37, `run ${ys.length}, stepBatch ${yb.length}`);
  assert(restored === true && list.some((e) => e.id === 'user-42'), `restore ${restored}, list ${JSON.stringify(list)}`);
  assert(stats.steps >= 1 + steps + 1, `stats.steps ${stats.steps}`); // a batched step counts once
  await store.delete('user-42');
  return `${backend}: step, run, stepBatch, snapshot, store and stats`;
}
