// Soak and scale through the package in Node (issue #16): one session stepped many times keeps the
// wasm memory flat and its outputs finite; sessions created, stepped and disposed by the
// thousand, and a model loaded and disposed again and again, leave the wasm memory where it was
// after the first round (wasm memory never shrinks: any leak shows as growth).
//
//   node js/test/soak.mjs          the short version (js/test/run.mjs): 20,000 steps, 2,000 sessions, 100 loads
//   node js/test/soak.mjs --long   `cargo xtask soak`: 1,000,000 steps (and the p99 step latency at the
//                                  end within 1.5× of the start), 10,000 sessions, 1,000 loads

import { readFile } from 'node:fs/promises';

import { Runtime } from '../../pkg/webrnn.node.js';

const long = process.argv.includes('--long');
const STEPS = long ? 1_000_000 : 20_000;
const SESSIONS = long ? 10_000 : 2_000;
const LOADS = long ? 1_000 : 100;
// Room for the allocator's own slack (the free lists of a few size classes), in bytes.
const SLACK = 1 << 20;
const MIB = 2 ** 20;

const file = new Uint8Array(await readFile(new URL('../../tests/data/golden/legacy_lstm_step_b3_op14/model.onnx', import.meta.url)));
const rt = await Runtime.create();
const memory = () => rt.stats().bytes.wasmMemory;
const input = (step, n) =>
  Float32Array.from({ length: n }, (_, i) => {
    const v = Math.sin((step * 7 + i * 13) * 0.01) * 3;
    return step % 997 === 0 ? v * 3e3 : v;
  });
const grew = (what, before, after) => {
  if (after - before > SLACK) throw new Error(`${what}: wasm memory grew from ${before / MIB} MiB to ${after / MIB} MiB`);
};
const p99 = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.99)];

// 1. One session, many steps.
const model = await rt.loadModel(file);
const n = model.info.inputSize;
const s = model.createSession('soak');
const out = new Float32Array(model.info.outputSize);
const warm = STEPS / 20;
const times = new Float64Array(STEPS);
let held = 0;
for (let step = 0; step < STEPS; step++) {
  const x = input(step, n);
  const t = performance.now();
  await s.step(x, out);
  times[step] = (performance.now() - t) * 1000;
  if (!out.every(Number.isFinite)) throw new Error(`non-finite output at step ${step}`);
  if (step === warm) held = memory();
}
const streamed = memory();
grew(`${STEPS} steps`, held, streamed);
const tenth = STEPS / 10;
const [pStart, pEnd] = [p99(times.subarray(warm, warm + tenth)), p99(times.subarray(STEPS - tenth))];
if (long && pEnd > 1.5 * pStart) throw new Error(`p99 step latency grew from ${pStart.toFixed(1)} µs to ${pEnd.toFixed(1)} µs`);
s.dispose();
if (rt.stats().nonFinite !== 0) throw new Error(`${rt.stats().nonFinite} non-finite values returned`);

// 2. Sessions by the hundred: created, stepped together and one by one, disposed.
let sessionsHeld = 0;
for (let round = 0; round < SESSIONS / 100; round++) {
  const group = Array.from({ length: 100 }, (_, i) => model.createSession(`r${round}-${i}`));
  await model.stepBatch(group, input(round, 100 * n));
  for (const t of group.slice(0, 3)) await t.step(input(round, n));
  for (const t of group) t.dispose();
  if (round === 0) sessionsHeld = memory();
}
if (rt.stats().sessions !== 0) throw new Error(`${rt.stats().sessions} sessions still live`);
const sessionsEnd = memory();
grew(`${SESSIONS} sessions`, sessionsHeld, sessionsEnd);
model.dispose();

// 3. The model loaded, stepped and disposed again and again.
let loadsHeld = 0;
for (let i = 0; i < LOADS; i++) {
  const m = await rt.loadModel(file);
  await m.createSession().step(input(i, n));
  m.dispose();
  if (i === 0) loadsHeld = memory();
}
if (rt.stats().models !== 0) throw new Error(`${rt.stats().models} models still loaded`);
const loadsEnd = memory();
grew(`${LOADS} loads`, loadsHeld, loadsEnd);

console.log(
  JSON.stringify({
    steps: STEPS,
    stepsWasmMiB: [held / MIB, streamed / MIB],
    p99StepUs: [Number(pStart.toFixed(1)), Number(pEnd.toFixed(1))],
    sessions: SESSIONS,
    sessionsWasmMiB: [sessionsHeld / MIB, sessionsEnd / MIB],
    loads: LOADS,
    loadsWasmMiB: [loadsHeld / MIB, loadsEnd / MIB],
  }),
);
