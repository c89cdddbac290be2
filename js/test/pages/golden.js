// The JS API end to end against PyTorch's outputs (tests/data/golden): stepBatch, step and run
// must reproduce each case's output sequence from the case's initial states, and the state a
// session keeps must equal PyTorch's final h_n (and c_n). Runs in pages, workers and Node: the
// caller passes `read(url) → Uint8Array` and the URL of tests/data/golden/.

import { readTensor } from './tensor.js';

// The project's tolerances: CPU atol 1e-5 / rtol 1e-4, GPU atol 1e-4 / rtol 1e-3. int8 weights
// (`weights: 'int8'`) lose 3e-3 to 1.1e-2 on these cases: 0.05 is a sanity bound (tests/int8.rs).
const TOLERANCE = { cpu: [1e-5, 1e-4], gpu: [1e-4, 1e-3], int8: [5e-2, 1e-2] };
let [ATOL, RTOL] = TOLERANCE.cpu;

function close(what, got, want) {
  if (got.length !== want.length) throw new Error(`${what}: ${got.length} values, expected ${want.length}`);
  let max = 0;
  for (let i = 0; i < want.length; i++) {
    const [a, b] = [got[i], want[i]];
    if (Number.isNaN(a) || Number.isNaN(b)) {
      if (Number.isNaN(a) !== Number.isNaN(b)) throw new Error(`${what}[${i}]: ${a} vs ${b}`);
      continue;
    }
    const err = Math.abs(a - b);
    if (!(err <= ATOL + RTOL * Math.abs(b))) throw new Error(`${what}[${i}]: ${a}, expected ${b} (|diff| ${err})`);
    max = Math.max(max, err);
  }
  return max;
}

/** Values of `t` (dims [B,T,...] if batchFirst, else [T,B,...]) for session b, time t. */
function slice(tensor, batchFirst, b, t) {
  const [d0, d1] = tensor.dims;
  const n = tensor.dims.slice(2).reduce((x, y) => x * y, 1);
  const [B, T] = batchFirst ? [d0, d1] : [d1, d0];
  if (b >= B || t >= T) throw new Error('slice out of range');
  const row = batchFirst ? b * T + t : t * B + b;
  return tensor.data.subarray(row * n, (row + 1) * n);
}

function batchAndSteps(tensor, batchFirst) {
  const [d0, d1] = tensor.dims;
  return batchFirst ? [d0, d1] : [d1, d0];
}

function fnv1a64(bytes) {
  let h = 0xcbf29ce484222325n;
  for (const b of bytes) h = BigInt.asUintN(64, (h ^ BigInt(b)) * 0x100000001b3n);
  return h;
}

/** From format 2 an adapter flag (0 in a state-only snapshot) follows the values. */
function flagBytes(dv) {
  return dv.getUint32(8, true) >= 2 ? 1 : 0;
}

/** The snapshot of `session` with its state values replaced (the documented WRNNSTAT layout). */
export function snapshotWithState(session, values) {
  const bytes = session.saveState({ adapter: false });
  const count = values.length;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const at = bytes.length - 8 - flagBytes(dv) - 4 * count;
  if (dv.getUint32(at - 4, true) !== count) throw new Error(`state has ${dv.getUint32(at - 4, true)} values, not ${count}`);
  values.forEach((v, i) => dv.setFloat32(at + 4 * i, v, true));
  dv.setBigUint64(bytes.length - 8, fnv1a64(bytes.subarray(0, bytes.length - 8)), true);
  return bytes;
}

/** The state values held in a snapshot. */
export function stateOf(session) {
  const bytes = session.saveState({ adapter: false });
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const values = session.model.info.stateSize;
  const at = bytes.length - 8 - flagBytes(dv) - 4 * values;
  return Float32Array.from({ length: values }, (_, i) => dv.getFloat32(at + 4 * i, true));
}

/** Session b's state from [L·D, B, size] tensors: per layer, h of each direction, then c. */
function layerState(info, h, c, b) {
  const out = [];
  let row = 0;
  for (const layer of info.layers) {
    const dirs = layer.direction === 'bidirectional' ? 2 : 1;
    for (const t of [h, c]) {
      if (!t) continue;
      const [, B, size] = t.dims;
      for (let d = 0; d < dirs; d++) out.push(...t.data.subarray(((row + d) * B + b) * size, ((row + d) * B + b + 1) * size));
    }
    row += dirs;
  }
  return out;
}

/**
 * Loads case `name` with loadModel's `weights` option (default: none) and checks it against
 * PyTorch at the tolerance of where it runs; returns the largest |diff| seen.
 */
export async function checkGolden(rt, goldenUrl, name, meta, read, { weights } = {}) {
  const base = new URL(`${name}/`, goldenUrl);
  const onnx = meta.exporter !== 'state_dict';
  const model = await rt.loadModel(new URL(onnx ? 'model.onnx' : 'model.safetensors', base), weights ? { weights } : {});
  const info = model.info;
  const gpu = rt.backend === 'webgpu' && weights !== 'int8';
  const expected = weights === 'int8' ? ['cpu-int8'] : gpu ? ['gpu'] : ['cpu', 'cpu-scalar'];
  if (!expected.includes(info.backend)) {
    throw new Error(`${name}: the model runs on ${info.backend} under a ${rt.backend} runtime (weights ${weights ?? 'default'})`);
  }
  [ATOL, RTOL] = weights === 'int8' ? TOLERANCE.int8 : gpu ? TOLERANCE.gpu : TOLERANCE.cpu;
  try {
    if (info.sessionError) {
      // The dynamo exporter unrolls nn.RNN: no recurrent layer, so no session state.
      let code;
      try {
        model.createSession();
      } catch (e) {
        code = e.code;
      }
      if (code !== 'invalid_model') throw new Error(`${name}: createSession gave ${code}, expected invalid_model`);
      return { name, sessions: false };
    }
    const tensor = async (i, kind) => readTensor(await read(new URL(`test_data_set_0/${kind}_${i}.pb`, base)));
    const x = await tensor(0, 'input');
    const y = await tensor(0, 'output');
    const [h0, c0] = await Promise.all(meta.stateful_inputs.map((i) => tensor(i, 'input')));
    const [hn, cn] = await Promise.all(meta.stateful_outputs.map((i) => tensor(i, 'output')));
    const bf = meta.batch_first;
    const [B, T] = batchAndSteps(x, bf);
    const init = (b) => (h0 ? layerState(info, h0, c0, b) : new Array(info.stateSize).fill(0));
    const fresh = (b, id) => {
      const s = model.createSession(id);
      s.loadState(snapshotWithState(s, init(b)));
      return s;
    };
    let maxErr = 0;

    if (info.streamable) {
      const sessions = Array.from({ length: B }, (_, b) => fresh(b, `batch-${b}`));
      // One output array for every step (the `out` argument), as a per-tick loop would keep one.
      const out = new Float32Array(B * info.outputSize);
      for (let t = 0; t < T; t++) {
        const xb = info.inputIsTokens ? new Int32Array(B * info.inputSize) : new Float32Array(B * info.inputSize);
        for (let b = 0; b < B; b++) xb.set(slice(x, bf, b, t), b * info.inputSize);
        out.fill(NaN);
        const yb = await model.stepBatch(sessions, xb, out);
        if (yb !== out) throw new Error(`${name}: stepBatch did not return its out array`);
        for (let b = 0; b < B; b++) {
          const got = yb.subarray(b * info.outputSize, (b + 1) * info.outputSize);
          maxErr = Math.max(maxErr, close(`${name} stepBatch t=${t} b=${b}`, got, slice(y, bf, b, t)));
        }
      }
      sessions.forEach((s) => s.dispose());
      const s = fresh(0, 'step');
      for (let t = 0; t < Math.min(T, 16); t++) {
        maxErr = Math.max(maxErr, close(`${name} step t=${t}`, await s.step(slice(x, bf, 0, t)), slice(y, bf, 0, t)));
      }
      s.dispose();
    } else {
      const s = fresh(0, 'step');
      let code;
      try {
        await s.step(slice(x, bf, 0, 0));
      } catch (e) {
        code = e.code;
      }
      if (code !== 'invalid_argument') throw new Error(`${name}: step on a bidirectional model gave ${code}`);
      s.dispose();
    }

    for (let b = 0; b < B; b++) {
      const s = fresh(b, `run-${b}`);
      const xs = info.inputIsTokens ? new Int32Array(T * info.inputSize) : new Float32Array(T * info.inputSize);
      const want = new Float32Array(T * info.outputSize);
      for (let t = 0; t < T; t++) {
        xs.set(slice(x, bf, b, t), t * info.inputSize);
        want.set(slice(y, bf, b, t), t * info.outputSize);
      }
      maxErr = Math.max(maxErr, close(`${name} run b=${b}`, await s.run(xs, T), want));
      if (s.steps !== T) throw new Error(`${name}: session counts ${s.steps} steps, expected ${T}`);
      if (hn) {
        await model.idle(); // on WebGPU the state stays on the GPU until then
        maxErr = Math.max(maxErr, close(`${name} final state b=${b}`, stateOf(s), layerState(info, hn, cn, b)));
      }
      s.dispose();
    }
    return { name, sessions: true, streamable: info.streamable, maxErr, backend: info.backend };
  } finally {
    model.dispose();
  }
}
