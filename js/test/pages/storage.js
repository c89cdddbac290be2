// The IndexedDB store under contention and crashes (issue #16), driven by js/test/run.mjs across
// pages of one browser profile: two pages stepping one session under `exclusive`, a page closed
// in the middle of its saves, `maxSessions` eviction from two pages, and records of snapshot
// format versions this runtime does not read.

import * as webrnn from '/pkg/webrnn.js';
import { stateOf } from './golden.js';

const { CorruptStateError, Runtime } = webrnn;
const GRU = new URL('/tests/data/golden/legacy_gru_embed_op14/model.onnx', location.href);

let runtime;
let model;
const gru = async () => (model ??= await (runtime ??= await Runtime.create({ backend: 'cpu' })).loadModel(GRU));
const store = async (name, options) => (runtime ??= await Runtime.create({ backend: 'cpu' })).openStore(name, options);
const tokens = (t) => new Int32Array([(t * 7 + 3) % 37]);
const same = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);

function assert(ok, message) {
  if (!ok) throw new Error(message);
}

/** The state of a fresh session stepped through tokens 0..steps-1. */
async function reference(steps) {
  const m = await gru();
  const s = m.createSession(`ref-${Math.random()}`);
  for (let t = 0; t < steps; t++) await s.step(tokens(t));
  const state = stateOf(s);
  s.dispose();
  return state;
}

/** One page's share of the contention test: `rounds` × exclusive(restore, step, save). */
export async function contend(rounds) {
  const m = await gru();
  const st = await store('contend');
  const s = m.createSession('shared');
  for (let i = 0; i < rounds; i++) {
    await st.exclusive(s, (session) => session.step(tokens(session.steps)));
  }
  return rounds;
}

/** After both pages: exactly their steps, in order, no lost update. */
export async function contendCheck(total) {
  const st = await store('contend');
  const [rec] = await st.list();
  assert(rec && rec.steps === total && rec.revision === total, `stored ${JSON.stringify(rec)}, expected ${total} steps`);
  const s = (await runtime.loadModel(GRU)).createSession('shared'); // this page's model has one
  assert(await st.restore(s), 'restore');
  assert(same(stateOf(s), await reference(total)), 'the stored state is not the one of every step in order');
  return `${rec.steps} steps, revision ${rec.revision}`;
}

/** Steps and saves one session forever (the driver closes the page in the middle of it). */
export async function saveForever() {
  const m = await gru();
  const st = await store('crash');
  const s = m.createSession('crash');
  await st.save(s);
  void (async () => {
    for (let t = 0; ; t++) {
      await s.step(tokens(t));
      // A long history makes each record, and so each put, bigger: more time inside a save.
      await st.save(s);
      window.savedSteps = s.steps;
    }
  })();
  await new Promise((ok) => setTimeout(ok, 200));
  return window.savedSteps ?? 0;
}

/** After the crash: the record is readable and is exactly a state that was saved whole. */
export async function crashCheck() {
  const st = await store('crash');
  const [rec] = await st.list();
  assert(rec && rec.steps > 0, `record ${JSON.stringify(rec)}`);
  const s = (await gru()).createSession('crash');
  assert(await st.restore(s), 'restore after the crash');
  assert(s.steps === rec.steps && rec.revision === rec.steps + 1, `steps ${s.steps}, record ${JSON.stringify(rec)}`);
  assert(same(stateOf(s), await reference(s.steps)), 'the restored state is not the one saved at its step');
  await s.step(tokens(s.steps));
  await st.save(s);
  return `${rec.steps} steps saved before the page went away; restored, stepped and saved again`;
}

/** Saves session `id` to the shared bounded store. */
export async function boundedSave(id) {
  const s = (await gru()).createSession(id);
  await s.step(tokens(id.length));
  await (await store('bounded', { maxSessions: 3 })).save(s);
  s.dispose();
  return id;
}

export async function boundedList() {
  return (await (await store('bounded', { maxSessions: 3 })).list()).map((r) => r.id);
}

/** FNV-1a 64 of `bytes`, as src/snapshot.rs checksums a snapshot. */
function fnv(bytes) {
  let h = 0xcbf29ce484222325n;
  for (const b of bytes) h = BigInt.asUintN(64, (h ^ BigInt(b)) * 0x100000001b3n);
  return h;
}

function putRecord(db, record) {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open(db);
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const tx = open.result.transaction('sessions', 'readwrite');
      tx.objectStore('sessions').put(record);
      tx.oncomplete = () => {
        open.result.close();
        resolve();
      };
      tx.onerror = () => reject(tx.error);
    };
  });
}

/**
 * Records whose snapshot says another format version (older or newer), checksummed as a real one
 * would be: restore refuses them with CorruptStateError naming the version, and the session keeps
 * its state; a record of the store's own format without a snapshot is refused the same way.
 */
export async function versions() {
  const m = await gru();
  const st = await store('versions');
  const s = m.createSession('v');
  for (let t = 0; t < 4; t++) await s.step(tokens(t));
  await st.save(s);
  const [rec] = await st.list();
  const good = s.saveState();
  s.dispose();
  const messages = [];
  for (const version of [0, 3, 0xffffffff]) {
    const bytes = good.slice();
    new DataView(bytes.buffer).setUint32(8, version, true);
    new DataView(bytes.buffer).setBigUint64(bytes.length - 8, fnv(bytes.subarray(0, bytes.length - 8)), true);
    const now = Date.now();
    await putRecord('webrnn:versions', { id: 'v', fingerprint: m.info.fingerprint, snapshot: bytes, steps: 4, revision: 9, savedAt: now, usedAt: now });
    const t = m.createSession('v');
    await t.step(tokens(30));
    const before = stateOf(t);
    let e;
    try {
      await st.restore(t);
    } catch (err) {
      e = err;
    }
    assert(e instanceof CorruptStateError && e.code === 'corrupt_state', `version ${version}: ${e}`);
    assert(e.message.includes(`version ${version}`), `version ${version}: ${e.message}`);
    assert(same(stateOf(t), before) && t.steps === 1, `version ${version}: the session's state changed`);
    messages.push(e.message);
    t.dispose();
  }
  // A record as an older store might have left it: no snapshot field.
  await putRecord('webrnn:versions', { id: 'v', fingerprint: m.info.fingerprint, steps: 4, revision: 1, savedAt: 0, usedAt: Date.now() });
  const u = m.createSession('v');
  let e;
  await st.restore(u).catch((err) => (e = err));
  assert(e instanceof CorruptStateError && u.steps === 0, `a record without a snapshot: ${e}`);
  assert(rec.steps === 4, 'the first save');
  return messages[0];
}
