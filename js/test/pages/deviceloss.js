// WebGPU device loss in the middle of a `run` and of a `stepBatch` (issue #16; the loss between
// steps is tests.js `deviceLoss`): the call in flight when the device goes away still resolves,
// to what the CPU computes, and no session loses a step. Each runs in a fresh page (the device is
// the page's), driven by js/test/run.mjs in its WebGPU suite.

import * as webrnn from '/pkg/webrnn.js';
import { stateOf } from './golden.js';

const { Runtime } = webrnn;
const GRU = new URL('/tests/data/golden/legacy_gru_embed_op14/model.onnx', location.href);
const tokens = (n, from) => Int32Array.from({ length: n }, (_, t) => ((from + t) * 7 + 3) % 37);

function close(what, got, want) {
  let worst = 0;
  if (got.length !== want.length) throw new Error(`${what}: ${got.length} values, the CPU gave ${want.length}`);
  got.forEach((v, i) => {
    worst = Math.max(worst, Math.abs(v - want[i]));
    if (!(Math.abs(v - want[i]) <= 1e-4 + 1e-3 * Math.abs(want[i]))) throw new Error(`${what}[${i}]: ${v}, the CPU gave ${want[i]}`);
  });
  return worst;
}

async function runtimes() {
  const gpu = await Runtime.create({ backend: 'webgpu' });
  const cpu = await Runtime.create({ backend: 'cpu' });
  const [gm, cm] = [await gpu.loadModel(GRU), await cpu.loadModel(GRU)];
  if (!gm.info.backend.startsWith('gpu')) throw new Error(`the model runs on ${gm.info.backend}`);
  return { gpu, gm, cm };
}

async function lost(gpu) {
  for (let i = 0; i < 100 && !gpu.stats().gpu.lost; i++) await new Promise((ok) => setTimeout(ok, 50));
  if (!gpu.stats().gpu.lost) throw new Error('the loss was not reported');
}

export async function lossMidRun() {
  const { gpu, gm, cm } = await runtimes();
  const [sg, sc] = [gm.createSession(), cm.createSession()];
  await Promise.all([sg.run(tokens(16, 0), 16), sc.run(tokens(16, 0), 16)]);
  const pending = sg.run(tokens(48, 16), 48); // on its way to the device
  gpu._destroyGpuForTesting();
  let worst = close('the run in flight', await pending, await sc.run(tokens(48, 16), 48));
  await lost(gpu);
  worst = Math.max(worst, close('a step after the loss', await sg.step(tokens(1, 64)), await sc.step(tokens(1, 64))));
  if (sg.steps !== 65 || sc.steps !== 65) throw new Error(`steps ${sg.steps} / ${sc.steps}`);
  worst = Math.max(worst, close('the state', stateOf(sg), stateOf(sc)));
  return `48 steps in flight at the loss, then 1 more; max |diff| vs CPU ${worst.toExponential(1)}`;
}

export async function lossMidBatch() {
  const { gpu, gm, cm } = await runtimes();
  const n = 16;
  const [g, c] = [Array.from({ length: n }, () => gm.createSession()), Array.from({ length: n }, () => cm.createSession())];
  for (let t = 0; t < 3; t++) await Promise.all([gm.stepBatch(g, tokens(n, t)), cm.stepBatch(c, tokens(n, t))]);
  const pending = gm.stepBatch(g, tokens(n, 3));
  gpu._destroyGpuForTesting();
  let worst = close('the batch in flight', await pending, await cm.stepBatch(c, tokens(n, 3)));
  await lost(gpu);
  worst = Math.max(worst, close('a batch after the loss', await gm.stepBatch(g, tokens(n, 4)), await cm.stepBatch(c, tokens(n, 4))));
  for (let i = 0; i < n; i++) {
    if (g[i].steps !== 5) throw new Error(`session ${i}: ${g[i].steps} steps`);
    worst = Math.max(worst, close(`session ${i}'s state`, stateOf(g[i]), stateOf(c[i])));
  }
  return `${n} sessions, a batch in flight at the loss; max |diff| vs CPU ${worst.toExponential(1)}`;
}
