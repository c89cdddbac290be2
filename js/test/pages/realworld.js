// Browser tests of the real-world models (tests/data/realworld, made by scripts/make_realworld.py)
// and of the ONNX node cases of the operators around recurrent layers (tests/data/onnx-node-ops).
// js/test/run.mjs calls these with page.evaluate; each throws on failure and returns a summary.

import * as webrnn from '/pkg/webrnn.js';
import { readTensor } from './tensor.js';

const { Runtime } = webrnn;
const BACKEND = new URLSearchParams(location.search).get('backend') ?? 'auto';

function assert(ok, message) {
  if (!ok) throw new Error(message);
}

async function read(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

/** Call `k` of a stacked [calls, ...] tensor. */
function call(t, k) {
  const per = t.data.length / t.dims[0];
  return t.data.subarray(k * per, (k + 1) * per);
}

function close(what, got, want, atol, rtol) {
  assert(got.length === want.length, `${what}: ${got.length} values, expected ${want.length}`);
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    assert(d <= atol + rtol * Math.abs(want[i]), `${what}[${i}]: ${got[i]} vs expected ${want[i]} (|diff| ${d})`);
    worst = Math.max(worst, d);
  }
  return worst;
}

/**
 * Each real-world case streamed call by call through one session of the npm package, loaded with
 * the case's one line of load options, against onnxruntime's outputs (atol 1e-4, rtol 1e-3); the
 * session's state is checked where the case holds it, and a snapshot taken halfway continues in a
 * fresh session. `cases`: [name, case.json, declared state] (run.mjs reads them).
 */
export async function realworld(cases) {
  const r = await Runtime.create({ backend: BACKEND });
  const out = [];
  for (const [name, meta, declared] of cases) {
    const base = new URL(`/tests/data/realworld/${name}/`, location.href);
    const inputs = Object.fromEntries(Object.entries(meta.fixed_inputs ?? {}).map(([k, v]) => [k, v.value]));
    const model = await r.loadModel(new URL(`/tests/data/realworld/${meta.model}`, location.href), {
      inputs,
      state: declared,
    });
    try {
      assert(model.info.chunked, `${name}: not a chunked model: ${model.info.sessionError}`);
      for (const s of meta.state) {
        const pair = model.info.state.find((p) => p.input === s.input);
        assert(pair && pair.output === s.output && pair.shape.join() === s.shape.join(), `${name}: state ${JSON.stringify(model.info.state)}`);
      }
      const place = model.info.placement;
      const others = place[place.length - 1];
      assert(others && others.node === '' && others.device.startsWith('cpu'), `${name}: placement ${JSON.stringify(place)}`);
      // Every graph here has recurrent nodes but DTLN's second stage, whose LSTMs tf2onnx unrolled
      // into MatMul, Sigmoid and Tanh: its placement is the one entry for the other operators.
      const layers = place.slice(0, -1);
      assert((layers.length > 0) !== (name === 'dtln_model_2'), `${name}: placement ${JSON.stringify(place)}`);
      assert(layers.every((p) => ['LSTM', 'GRU', 'RNN'].includes(p.op) && p.device), `${name}: placement ${JSON.stringify(place)}`);
      const pb = async (n) => readTensor(await read(new URL(meta.files[n].file, base)));
      const [x] = await Promise.all(meta.streamed.map(pb));
      const want = await pb(meta.outputs[0]);
      let session = model.createSession(`${name}-a`);
      let worst = 0;
      for (let k = 0; k < meta.calls; k++) {
        if (k === Math.floor(meta.calls / 2)) {
          const snap = session.saveState();
          session.dispose();
          session = model.createSession(`${name}-b`);
          session.loadState(snap);
        }
        const y = await session.step(call(x, k));
        worst = Math.max(worst, close(`${name} call ${k}`, y, call(want, k), 1e-4, 1e-3));
      }
      out.push(`${name} ${worst.toExponential(1)}`);
    } finally {
      model.dispose();
    }
  }
  return `${r.backend}: ${out.join(', ')}`;
}

/**
 * The ONNX node cases whose operators load, through `runGraph`, on the runtime's backend and
 * variant (`variant`: a wasm variant name, or undefined for the best). Cases refused at load must
 * be refused with UnsupportedOpError naming the operator. `cases`: [dir, inputs, outputs].
 */
export async function nodeOps([cases, variant]) {
  const r = await Runtime.create(variant ? { variant } : { backend: BACKEND });
  let [passed, refused, worst] = [0, 0, 0];
  for (const [dir, inputs, outputs] of cases) {
    const base = new URL(`/tests/data/onnx-node-ops/${dir}/`, location.href);
    let model;
    try {
      model = await r.loadModel(new URL('model.onnx', base));
    } catch (e) {
      assert(e.code === 'unsupported_op', `${dir}: refused with ${e.code}: ${e.message}`);
      refused++;
      continue;
    }
    try {
      const pb = async (kind, i) => readTensor(await read(new URL(`test_data_set_0/${kind}_${i}.pb`, base)));
      const xs = await Promise.all(Array.from({ length: inputs }, (_, i) => pb('input', i)));
      const want = await Promise.all(Array.from({ length: outputs }, (_, i) => pb('output', i)));
      const got = await model.runGraph(xs.map((t) => ({ dims: t.dims, data: t.data })));
      want.forEach((w, i) => {
        const g = got[i];
        assert(g.dims.join() === w.dims.join(), `${dir} output ${i}: dims ${g.dims} vs ${w.dims}`);
        const gv = Array.from(g.data, Number);
        for (let k = 0; k < w.data.length; k++) {
          const [a, b] = [gv[k], w.data[k]];
          if (Number.isNaN(b) || Number.isNaN(a)) {
            assert(Number.isNaN(a) === Number.isNaN(b), `${dir} output ${i}[${k}]: ${a} vs ${b}`);
            continue;
          }
          const d = a === b ? 0 : Math.abs(a - b);
          // test_averagepool_2d_ceil_last_window_starts_on_pad's output is written to 4 decimals.
          const atol = dir === 'test_averagepool_2d_ceil_last_window_starts_on_pad' ? 1e-4 : 1e-5;
          assert(d <= atol + 1e-4 * Math.abs(b), `${dir} output ${i}[${k}]: ${a} vs expected ${b}`);
          worst = Math.max(worst, d);
        }
      });
      passed++;
    } finally {
      model.dispose();
    }
  }
  return `${r.variant} on ${r.backend}: ${passed} passed, ${refused} refused at load, max |diff| ${worst.toExponential(1)}`;
}
