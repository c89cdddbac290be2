// The package in Node 20: load the wasm from the file system, run every golden case through the
// API (with f32 and with int8 weights), and check the typed errors. Run by js/test/run.mjs (and
// by hand: node js/test/node.mjs).

import { readFile, readdir } from 'node:fs/promises';

import { InvalidArgumentError, Runtime, ShapeError, StorageError } from '../../pkg/webrnn.node.js';
import { Vad } from '../../pkg/webrnn-audio.node.js';
import { checkGolden } from './pages/golden.js';
import { readTensor } from './pages/tensor.js';

const golden = new URL('../../tests/data/golden/', import.meta.url);
const read = async (url) => new Uint8Array(await readFile(url));

const rt = await Runtime.create();
if (rt.backend !== 'cpu-scalar' && rt.backend !== 'cpu-simd') throw new Error(`backend ${rt.backend} in Node`);
const results = [];
for (const name of (await readdir(golden)).sort()) {
  const meta = JSON.parse(new TextDecoder().decode(await read(new URL(`${name}/case.json`, golden))));
  results.push(await checkGolden(rt, golden, name, meta, read));
}
// int8 weights: every case on cpu-int8 (checkGolden checks the backend), within the int8 bound,
// and not as exact as f32 (the option is not ignored).
const int8 = [];
for (const name of (await readdir(golden)).sort()) {
  const meta = JSON.parse(new TextDecoder().decode(await read(new URL(`${name}/case.json`, golden))));
  int8.push(await checkGolden(rt, golden, name, meta, read, { weights: 'int8' }));
}
const exact = int8.filter((r) => r.sessions && !(r.maxErr > 1e-4)).map((r) => r.name);
if (exact.length) throw new Error(`int8 weights as exact as f32: ${exact.join(', ')}`);
await rt.loadModel(new URL('legacy_gru_embed_op14/model.onnx', golden), { weights: 'fp16' }).then(
  () => { throw new Error("weights: 'fp16' was accepted"); },
  (e) => { if (!(e instanceof InvalidArgumentError) || !e.message.includes('fp16')) throw e; },
);
// Typed errors, and the runtime keeps working after them.
const model = await rt.loadModel(new URL('legacy_gru_embed_op14/model.onnx', golden));
const s = model.createSession('node');
await s.step(new Int32Array([1])).then(() => s.step(new Int32Array([1, 2]))).then(
  () => { throw new Error('a wrong input length was accepted'); },
  (e) => { if (!(e instanceof ShapeError)) throw e; },
);
if ((await s.step(new Int32Array([2]))).length !== model.info.outputSize) throw new Error('step after an error');
await rt.openStore('x').then(
  () => { throw new Error('openStore without IndexedDB'); },
  (e) => { if (!(e instanceof StorageError)) throw e; },
);
// webrnn/audio's Node entry: Silero v5 through Vad.process gives onnxruntime's probabilities, and
// its errors are the main entry's classes (one runtime, not a second copy).
const rw = new URL('../../tests/data/realworld/', import.meta.url);
const vad = await Vad.create(rt, { model: new URL('models/silero_vad_v5.onnx', rw) });
const probs = await vad.process(readTensor(await read(new URL('audio.pb', rw))).data);
const want = readTensor(await read(new URL('silero_v5/output.pb', rw))).data;
const vadWorst = Math.max(...want.map((w, i) => Math.abs(w - probs[i])));
if (probs.length !== want.length || !(vadWorst < 1e-4)) throw new Error(`Vad in Node: ${probs.length} probabilities, max |diff| ${vadWorst}`);
await vad.process(new Int16Array(4)).then(
  () => { throw new Error('Vad.process took an Int16Array'); },
  (e) => { if (!(e instanceof InvalidArgumentError)) throw e; },
);
vad.dispose();
const worst = Math.max(...int8.map((r) => r.maxErr ?? 0));
console.log(
  JSON.stringify({
    backend: rt.backend,
    variant: rt.variant,
    cases: results.length,
    int8: `${int8.length} cases, max |diff| ${worst.toExponential(1)}`,
    vad: `Silero v5 ${probs.length} frames, max |diff| ${vadWorst.toExponential(1)}`,
    stats: rt.stats(),
  }),
);
