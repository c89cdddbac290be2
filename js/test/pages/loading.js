// Browser tests of how the package loads and behaves the same on every backend (js/test/run.mjs
// calls these in a fresh page): the loading options of Runtime.compile / Runtime.create (a compiled
// module for a worker, wasmUrl as a prefix or a { variant: url } map), aborting loadModel, `using`,
// saveState right after an awaited call on WebGPU, and that the load warm-up leaves no trace.

import { DisposedError, InvalidArgumentError, Runtime, VARIANTS } from '/pkg/webrnn.js';

import { stateOf } from './golden.js';

const GRU = new URL('/tests/data/golden/legacy_gru_embed_op14/model.onnx', location.href);

function assert(ok, message) {
  if (!ok) throw new Error(`assertion failed: ${message}`);
}

/** Runs loading-worker.js with `options`; its reply. */
async function inWorker(options, model) {
  const w = new Worker('/js/test/pages/loading-worker.js', { type: 'module' });
  try {
    const reply = await new Promise((resolve, reject) => {
      w.onmessage = (e) => resolve(e.data);
      w.onerror = (e) => reject(new Error(`worker: ${e.message}`));
      w.postMessage({ options, model });
    });
    if (reply.error) throw new Error(`worker (${JSON.stringify(Object.keys(options))}): ${reply.error}`);
    return reply;
  } finally {
    w.terminate();
  }
}

async function expectError(what, fn, check) {
  let error;
  try {
    await fn();
  } catch (e) {
    error = e;
  }
  if (!error || !check(error)) throw new Error(`${what}: got ${error ? `${error.name}: ${error.message}` : 'no error'}`);
  return error;
}

export async function loading() {
  const out = [];
  const bytes = new Uint8Array(await (await fetch(GRU)).arrayBuffer());
  // The page compiles, the worker instantiates what it is given and fetches no wasm.
  const module = await Runtime.compile();
  assert(module instanceof WebAssembly.Module, 'Runtime.compile gives a WebAssembly.Module');
  const given = await inWorker({ wasmModule: module }, bytes);
  assert(given.fetched.length === 0, `a worker given wasmModule fetched ${given.fetched}`);
  assert(given.variant === VARIANTS[0].name, `wasmModule of the best variant: ${given.variant}`);
  out.push(`wasmModule → ${given.variant}, no fetch`);
  const base = await inWorker({ wasmModule: await Runtime.compile({ variant: 'base' }) }, bytes);
  assert(base.variant === 'base', `compile({ variant: 'base' }) → ${base.variant}`);
  // A prefix: the variant's own file under it; a map: the fastest variant it names.
  const prefix = await inWorker({ wasmUrl: '/pkg/' }, bytes);
  assert(prefix.fetched.length === 1 && prefix.fetched[0].endsWith(`/pkg/${VARIANTS[0].file}`), `prefix fetched ${prefix.fetched}`);
  const map = await inWorker({ wasmUrl: { simd128: '/pkg/webrnn_simd.wasm', base: '/pkg/webrnn_bg.wasm' } }, bytes);
  assert(map.variant === 'simd128' && map.fetched.length === 1, `map → ${map.variant}, fetched ${map.fetched}`);
  out.push(`prefix → ${prefix.variant}, map → ${map.variant}`);
  for (const r of [base, prefix, map]) {
    const err = Math.max(...r.output.map((v, i) => Math.abs(v - given.output[i])));
    assert(err < 1e-5, `${r.variant} outputs differ from ${given.variant} by ${err}`);
  }
  await expectError('a map naming no variant', () => Runtime.compile({ wasmUrl: { avx: '/x.wasm' } }), (e) => e instanceof InvalidArgumentError);

  // Aborting loadModel rejects as fetch does: a DOMException named AbortError.
  const rt = await Runtime.create({ backend: 'cpu' });
  const aborted = AbortSignal.abort();
  await expectError('loadModel, signal aborted before', () => rt.loadModel(GRU, { signal: aborted }), isAbort);
  const controller = new AbortController();
  const loading = rt.loadModel(GRU, { signal: controller.signal });
  controller.abort();
  await expectError('loadModel, aborted while loading', () => loading, isAbort);
  const e = await expectError('bytes, aborted', () => rt.loadModel(bytes, { signal: aborted }), isAbort);
  out.push(`aborted loadModel: ${e.constructor.name} ${e.name}`);

  // `using` disposes at the end of the scope; disposing the runtime disposes its models.
  let session;
  {
    using model = await rt.loadModel(bytes);
    using s = model.createSession();
    await s.step(new Int32Array([1]));
    session = s;
  }
  assert(session.disposed && session.model.disposed, 'using disposed the session and the model');
  const kept = await rt.loadModel(bytes);
  rt[Symbol.dispose]();
  assert(kept.disposed && rt.disposed, 'disposing the runtime disposes its models');
  await expectError('loadModel after dispose', () => rt.loadModel(bytes), (e) => e instanceof DisposedError);
  out.push('using: disposed');

  // The first loadModel(url) of a CPU runtime loads and steps a small GRU of its own while the
  // model downloads (the warm-up): nothing of it shows in the stats, and the model steps as the
  // same model loaded from bytes.
  const warm = await Runtime.create({ backend: 'cpu' });
  const [fromUrl, fromBytes] = [await warm.loadModel(GRU), await warm.loadModel(bytes)];
  const st = warm.stats();
  assert(st.models === 2 && st.sessions === 0 && st.steps === 0 && st.errors === 0, `after the warm-up: ${JSON.stringify(st)}`);
  const [a, b] = [fromUrl.createSession(), fromBytes.createSession()];
  for (const t of [1, 2, 3]) {
    const [ya, yb] = [await a.step(new Int32Array([t])), await b.step(new Int32Array([t]))];
    assert(ya.every((v, i) => v === yb[i]), 'a model loaded by URL steps as the same bytes do');
  }
  warm.dispose();
  out.push('warm-up unseen');
  return out.join('; ');
}

const isAbort = (e) => e instanceof DOMException && e.name === 'AbortError';

/**
 * On WebGPU, `saveState` right after an awaited run / step / stepBatch (no `idle()`) works and
 * holds the same state as the CPU's (within the GPU tolerance).
 */
export async function gpuSnapshot() {
  const gpu = await Runtime.create({ backend: 'webgpu' });
  const cpu = await Runtime.create({ backend: 'cpu' });
  const [mg, mc] = [await gpu.loadModel(GRU), await cpu.loadModel(GRU)];
  assert(mg.info.backend === 'gpu', `the model runs on ${mg.info.backend}`);
  const xs = Int32Array.from({ length: 40 }, (_, t) => (t * 7 + 3) % 37);
  // stateOf reads the state values from saveState's snapshot.
  const compare = (what, g, c) => {
    const [a, b] = [stateOf(g), stateOf(c)];
    const err = Math.max(...a.map((v, i) => Math.abs(v - b[i])));
    assert(a.length === b.length && err < 1e-4, `${what}: GPU and CPU states differ by ${err}`);
    return err;
  };
  let worst = 0;
  const [sg, sc] = [mg.createSession(), mc.createSession()];
  await sg.run(xs, 40);
  await sc.run(xs, 40);
  worst = Math.max(worst, compare('after run', sg, sc));
  for (let t = 0; t < 5; t++) {
    await sg.step(xs.subarray(t, t + 1));
    await sc.step(xs.subarray(t, t + 1));
    worst = Math.max(worst, compare(`after step ${t}`, sg, sc));
  }
  const [bg, bc] = [[mg.createSession(), mg.createSession()], [mc.createSession(), mc.createSession()]];
  for (let t = 0; t < 3; t++) {
    await mg.stepBatch(bg, xs.subarray(2 * t, 2 * t + 2));
    await mc.stepBatch(bc, xs.subarray(2 * t, 2 * t + 2));
  }
  bg.forEach((s, i) => (worst = Math.max(worst, compare(`after stepBatch, session ${i}`, s, bc[i]))));
  // The snapshot restores on the other backend.
  const moved = mc.createSession();
  moved.loadState(sg.saveState());
  worst = Math.max(worst, compare('GPU snapshot loaded on the CPU', moved, sc));
  gpu.dispose();
  cpu.dispose();
  return `saveState after awaited run, step and stepBatch on WebGPU = CPU within ${worst.toExponential(1)}`;
}

/**
 * `import { Runtime } from 'webrnn'` in an AudioWorkletGlobalScope, `Runtime.create({ wasmModule })`
 * there with the page's compiled module, and a session stepped from process() in an
 * OfflineAudioContext: the outputs equal the page's.
 */
export async function worklet() {
  const bytes = new Uint8Array(await (await fetch(GRU)).arrayBuffer());
  const module = await Runtime.compile();
  const ctx = new OfflineAudioContext(1, 8000, 8000);
  await ctx.audioWorklet.addModule('/js/test/pages/worklet.js');
  const node = new AudioWorkletNode(ctx, 'webrnn', { processorOptions: { module, model: bytes } });
  node.connect(ctx.destination);
  const messages = [];
  const message = (pick) =>
    new Promise((resolve, reject) => {
      const look = () => {
        const m = messages.find((m) => m.error || pick(m));
        if (m?.error) reject(new Error(`worklet: ${m.error}`));
        else if (m) resolve(m);
        else setTimeout(look, 5);
      };
      look();
    });
  node.port.onmessage = (e) => messages.push(e.data);
  // Rendering waits at 16 ms for the processor's runtime, then runs on while it steps.
  ctx.suspend(0.016).then(async () => {
    await message((m) => m.ready).catch(() => undefined);
    await ctx.resume();
  });
  const rendered = ctx.startRendering();
  const ready = await message((m) => m.ready);
  const { outputs } = await message((m) => m.outputs);
  await rendered;
  assert(ready.scope, 'the worklet scope has no TextDecoder, URL or fetch');
  assert(ready.store === 'StorageError (storage)', `openStore in the worklet: ${ready.store}`);
  const rt = await Runtime.create({ backend: 'cpu' });
  const s = (await rt.loadModel(bytes)).createSession();
  let worst = 0;
  for (let t = 0; t < outputs.length; t++) {
    const y = await s.step(new Int32Array([(t * 7 + 3) % 37]));
    worst = Math.max(worst, ...Array.from(y, (v, i) => Math.abs(v - outputs[t][i])));
  }
  assert(outputs.length === 12 && worst < 1e-5, `${outputs.length} worklet steps, max |diff| vs the page ${worst}`);
  return `variant ${ready.variant} in the worklet, 12 steps from process() = the page's (max |diff| ${worst.toExponential(1)}); openStore: ${ready.store}`;
}

/**
 * A runtime of `backend` streams the golden GRU; says which build it loaded. run.mjs watches what
 * the page fetched: a CPU runtime no GPU code, a WebGPU one the WebGPU glue and build.
 */
export async function downloads(backend) {
  const r = await Runtime.create({ backend });
  const want = backend === 'webgpu';
  assert(r.build.gpu === want, `${backend} runtime loaded ${r.variant} (gpu ${r.build.gpu})`);
  assert(VARIANTS.find((v) => v.name === r.variant)?.gpu === want, `variant ${r.variant}`);
  const m = await r.loadModel(GRU);
  const s = m.createSession();
  const y = await s.run(Int32Array.from({ length: 10 }, (_, t) => t % 37), 10);
  assert(y.length > 0 && y.every(Number.isFinite), 'outputs');
  m.dispose();
  return `${backend} → ${r.backend} (${r.variant})`;
}
