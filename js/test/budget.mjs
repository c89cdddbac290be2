// The memory budget through the package in Node (issue #16): hostile models are refused with
// ResourceError before they allocate, the wasm instance survives, and the other models and
// sessions of the runtime keep working. Run by js/test/run.mjs (and by hand: node js/test/budget.mjs).
// The models are made by scripts/make_budget_models.mjs.

import { readFile } from 'node:fs/promises';

import { ResourceError, Runtime } from '../../pkg/webrnn.node.js';

const data = new URL('../../tests/data/', import.meta.url);
const read = async (path) => new Uint8Array(await readFile(new URL(path, data)));
const MIB = 2 ** 20;

/** Resolves to the ResourceError `promise` rejects with; throws on anything else. */
async function refused(what, promise) {
  try {
    await promise;
  } catch (e) {
    if (e instanceof ResourceError && e.code === 'resource') return e;
    throw new Error(`${what}: expected ResourceError, got ${e?.stack ?? e}`);
  }
  throw new Error(`${what}: was not refused`);
}

const x = [{ dims: [1], data: new Float32Array([2]) }];
const rt = await Runtime.create();
if (rt.maxMemoryBytes !== 256 * MIB) throw new Error(`default budget ${rt.maxMemoryBytes}`);
// A bystander: an ordinary model with a session stepped before and after.
const gru = await rt.loadModel(await read('golden/legacy_gru_embed_op14/model.onnx'));
const s = gru.createSession('bystander');
const first = await s.step(new Int32Array([3]));
const before = rt.stats().bytes.wasmMemory;

const concat = await rt.loadModel(await read('budget/expand_adds_concat.onnx'));
const e1 = await refused('the 4.3 GB model', concat.runGraph(x));
await refused('the 4.3 GB model again', concat.runGraph(x));
const wide = await rt.loadModel(await read('budget/expand_adds_768m.onnx'));
await refused('the 768 MiB model under the default budget', wide.runGraph(x));
await refused('a file declaring 384 MiB of weights', rt.loadModel(await read('budget/huge_weights.onnx')));
const after = rt.stats().bytes.wasmMemory;
if (after - before > 16 * MIB) throw new Error(`the refused calls grew wasm memory by ${(after - before) / MIB} MiB`);

// The bystander goes on, and a fresh session computes what the first did.
await s.step(new Int32Array([4]));
const again = await gru.createSession('fresh').step(new Int32Array([3]));
if (again.some((v, i) => v !== first[i])) throw new Error('a fresh session differs after the refused calls');

// A small budget: loading, huge inputs and huge batches are refused, the sessions untouched.
const tiny = await Runtime.create({ maxMemoryBytes: 8192 });
await refused('a 16 KB model file in 8 KiB', tiny.loadModel(await read('golden/legacy_gru_embed_op14/model.onnx')));
const small = await Runtime.create({ maxMemoryBytes: 256 * 1024 });
const lstm = await small.loadModel(await read('golden/legacy_lstm_step_b3_op14/model.onnx'));
const sessions = Array.from({ length: 4000 }, (_, i) => lstm.createSession(`s${i}`));
const n = lstm.info.inputSize;
await refused('stepBatch of 4000 sessions', lstm.stepBatch(sessions, new Float32Array(sessions.length * n).fill(0.5)));
await refused('run of 10^6 steps', sessions[0].run(new Float32Array(1e6 * n), 1e6));
if (sessions.some((t) => t.steps !== 0)) throw new Error('a refused batch moved a session');
await lstm.stepBatch(sessions.slice(0, 8), new Float32Array(8 * n).fill(0.5));
if (sessions[0].steps !== 1 || sessions[8].steps !== 0) throw new Error('the small batch after the refused one');
for (const t of sessions) t.dispose();
await Runtime.create({ maxMemoryBytes: -1 }).then(
  () => { throw new Error('maxMemoryBytes: -1 was accepted'); },
  (e) => { if (e.code !== 'invalid_argument') throw e; },
);

// The 768 MiB model runs where the budget allows it.
const roomy = await Runtime.create({ maxMemoryBytes: 1024 * MIB });
const y = await (await roomy.loadModel(await read('budget/expand_adds_768m.onnx'))).runGraph(x);
if (y[0].data[0] !== 12 * 2 + 78) throw new Error(`768 MiB model: ${y[0].data[0]}`);
await s.step(new Int32Array([5]));
console.log(
  JSON.stringify({
    refused: e1.message.slice(0, 120),
    wasmMemoryMiB: { before: before / MIB, afterRefused: after / MIB, after768: rt.stats().bytes.wasmMemory / MIB },
  }),
);
