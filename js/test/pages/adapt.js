// Browser tests of on-device personalization (#17) through the packed package: the demo's
// character GRU learns a user's notes (tests/data/adapt/user_notes.txt) and beats state only;
// typed errors; the adapter travels in snapshots and StateStore records; on WebGPU the adapted
// outputs match the CPU's.

import * as webrnn from '/pkg/webrnn.js';

const { Runtime, InvalidArgumentError, InvalidModelError, StateMismatchError, WebrnnError } = webrnn;

const TEXT_GRU = new URL('/www/models/text-gru.onnx', location.href);
const BIDIR = new URL('/tests/data/golden/dynamo_gru_bidir/model.onnx', location.href);
const NOTES = new URL('/tests/data/adapt/user_notes.txt', location.href);
const VOCAB = '\n' + Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join('');

function assert(ok, message) {
  if (!ok) throw new Error(`assertion failed: ${message}`);
}

async function rejects(what, fn, Class) {
  try {
    await fn();
  } catch (e) {
    if (!(e instanceof Class) || !(e instanceof WebrnnError)) throw new Error(`${what}: got ${e?.name}: ${e?.message}`);
    return e;
  }
  throw new Error(`${what}: expected ${Class.name}, but it succeeded`);
}

const token = (c) => Math.max(0, VOCAB.indexOf(c));
const argmax = (v) => v.reduce((best, x, i) => (x > v[best] ? i : best), 0);

/** Top-1 accuracy of `s` on `text`, learning after each step when `learn`. */
async function accuracy(s, text, learn) {
  let hits = 0;
  for (let i = 0; i + 1 < text.length; i++) {
    const y = await s.step(Int32Array.of(token(text[i])));
    hits += argmax(y) === token(text[i + 1]) ? 1 : 0;
    if (learn) await s.learn(token(text[i + 1]));
  }
  return hits / (text.length - 1);
}

export async function adapt(backend) {
  const rt = await Runtime.create({ backend });
  const model = await rt.loadModel(TEXT_GRU);
  const notes = (await (await fetch(NOTES)).text()).slice(0, 1500);
  const base = await accuracy(model.createSession('base'), notes, false);
  const s = model.createSession('user', { adapt: true });
  const adapted = await accuracy(s, notes, true);
  const a = s.adaptation;
  assert(adapted > base + 0.1, `adapted ${adapted} vs state only ${base}`);
  assert(a.updates === notes.length - 1 && a.active && a.adaptedLoss < a.baseLoss, JSON.stringify(a));
  assert(Math.abs(a.baseAccuracy - base) < 1e-3 && a.adaptedAccuracy > a.baseAccuracy, JSON.stringify(a));
  assert(model.createSession('plain').adaptation === null, 'a plain session reports no adaptation');

  // Typed errors, nothing changed by them.
  const fresh = model.createSession('fresh', { adapt: { learningRate: 0.05, rank: 8, window: 40 } });
  await rejects('learn before a step', () => fresh.learn(3), InvalidArgumentError);
  await fresh.step(Int32Array.of(5));
  await rejects('class out of range', () => fresh.learn(96), InvalidArgumentError);
  await rejects('a negative class', () => fresh.learn(-1), InvalidArgumentError);
  await rejects('values on a softmax output', () => fresh.learn(new Float32Array(96)), InvalidArgumentError);
  await rejects('a bad target', () => fresh.learn('x'), InvalidArgumentError);
  await fresh.learn(7);
  await rejects('learn twice for one step', () => fresh.learn(7), InvalidArgumentError);
  assert(fresh.adaptation.updates === 1, 'one update');
  await rejects('learn without adapt', () => model.createSession().learn(1), InvalidArgumentError);
  await rejects('a bad option', () => model.createSession('bad', { adapt: { window: 0 } }), InvalidArgumentError);
  await rejects('a bad learning rate', () => model.createSession('bad', { adapt: { learningRate: NaN } }), InvalidArgumentError);
  assert(!model.createSession('bad').disposed, 'a refused createSession leaves its id free');
  const bidir = await rt.loadModel(BIDIR);
  const e = await rejects('a model without a head', () => bidir.createSession('x', { adapt: true }), InvalidModelError);
  assert(e.message.includes('no output head'), e.message);

  // Snapshots and StateStore records carry the adapter; another model's are refused.
  const snap = s.saveState();
  const small = s.saveState({ adapter: false });
  assert(small.length * 20 < snap.length, `state-only ${small.length} B vs ${snap.length} B`);
  const copy = model.createSession('copy');
  copy.loadState(snap);
  assert(JSON.stringify(copy.adaptation) === JSON.stringify(s.adaptation), 'the copy has the adapter');
  for (const c of 'monday') {
    const [y1, y2] = [await s.step(Int32Array.of(token(c))), await copy.step(Int32Array.of(token(c)))];
    assert(y1.every((v, i) => v === y2[i]), 'the copy predicts the same');
  }
  const store = await rt.openStore(`adapt-${backend}`);
  await store.save(s);
  s.dispose();
  const back = model.createSession('user');
  assert(await store.restore(back), 'restored');
  assert(back.adaptation?.updates === a.updates, `restored adapter: ${JSON.stringify(back.adaptation)}`);
  await rejects('another model', () => bidir.createSession('y').loadState(snap), StateMismatchError);
  back.resetAdaptation();
  assert(back.adaptation.updates === 0 && back.adaptation.baseLoss === null, JSON.stringify(back.adaptation));
  const out = `${model.info.backend}: top-1 on 1,500 chars of notes ${base.toFixed(3)} → ${adapted.toFixed(3)}; snapshot ${snap.length} B (state only ${small.length} B)`;
  model.dispose();
  bidir.dispose();
  return out;
}

/** On WebGPU: the adapted session's outputs match the CPU's (the update runs on the CPU kernels). */
export async function adaptGpu() {
  const [gpu, cpu] = [await Runtime.create({ backend: 'webgpu' }), await Runtime.create({ backend: 'cpu' })];
  const [mg, mc] = [await gpu.loadModel(TEXT_GRU), await cpu.loadModel(TEXT_GRU)];
  assert(mg.info.backend === 'gpu', `the model runs on ${mg.info.backend}`);
  const notes = (await (await fetch(NOTES)).text()).slice(0, 300);
  const [sg, sc] = [mg.createSession('g', { adapt: true }), mc.createSession('c', { adapt: true })];
  let worst = 0;
  for (let i = 0; i + 1 < notes.length; i++) {
    const x = Int32Array.of(token(notes[i]));
    const [yg, yc] = [await sg.step(x), await sc.step(x)];
    for (let k = 0; k < yg.length; k++) worst = Math.max(worst, Math.abs(yg[k] - yc[k]) / (1e-3 + Math.abs(yc[k]) * 1e-2));
    await Promise.all([sg.learn(token(notes[i + 1])), sc.learn(token(notes[i + 1]))]);
  }
  const [ag, ac] = [sg.adaptation, sc.adaptation];
  assert(worst < 1, `GPU and CPU adapted outputs differ (scaled error ${worst})`);
  assert(ag.updates === ac.updates && ag.active === ac.active, `${JSON.stringify(ag)} vs ${JSON.stringify(ac)}`);
  return `GPU = CPU within 1e-3 + 1% over ${notes.length - 1} steps; adapter active ${ag.active}, adapted top-1 ${ag.adaptedAccuracy.toFixed(3)}`;
}
