// The voice-activity table of `cargo xtask bench --vad` (xtask/src/bench_vad.rs): webrnn's Vad
// (the package's webrnn/audio entry, as an app calls it: `vad.process(chunk)`, framing, context,
// state and the segment rules included) against onnxruntime-web (wasm EP, one thread, as
// @ricky0123/vad-web 0.0.31 calls Silero: the 64-sample context prepended, the state tensor fed
// back) on Silero v5 and legacy, chunk by chunk on the fixtures' 16 kHz audio, in one page.
// Probabilities are checked to agree first; then a warm-up, then rounds that interleave the two.
// Cold start (page navigation to the first probability) is timed in fresh iframes (vad-cold.html),
// alternating the two. Results are POSTed back as JSON.

import * as ort from './node_modules/onnxruntime-web/dist/ort.wasm.min.mjs';
import { measure, ortOneThread, postReport, progressLog as log, readBytes as read } from './common.js';
import { readTensor } from '/js/test/pages/tensor.js';

/** onnxruntime-web as vad-web 0.0.31 calls Silero (dist/models/silero.js, legacy.js). */
export class OrtSilero {
  static async create(ortModule, bytes, legacy) {
    const session = await ortModule.InferenceSession.create(bytes, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
    return new OrtSilero(ortModule, session, legacy);
  }
  constructor(ortModule, session, legacy) {
    this.ort = ortModule;
    this.s = session;
    this.legacy = legacy;
    this.frame = legacy ? 1536 : 512;
    this.sr = new ortModule.Tensor('int64', [16000n]);
    this.reset();
  }
  reset() {
    const zeros = (shape) => new this.ort.Tensor('float32', new Float32Array(shape.reduce((a, b) => a * b, 1)), shape);
    if (this.legacy) [this.h, this.c] = [zeros([2, 1, 64]), zeros([2, 1, 64])];
    else this.state = zeros([2, 1, 128]);
    this.context = new Float32Array(64);
  }
  async call(frame) {
    if (this.legacy) {
      const out = await this.s.run({ input: new this.ort.Tensor('float32', frame, [1, 1536]), h: this.h, c: this.c, sr: this.sr });
      [this.h, this.c] = [out.hn, out.cn];
      return out.output.data[0];
    }
    const x = new Float32Array(576);
    x.set(this.context, 0);
    x.set(frame, 64);
    this.context = frame.slice(-64);
    const out = await this.s.run({ input: new this.ort.Tensor('float32', x, [1, 576]), state: this.state, sr: this.sr });
    this.state = out.stateN;
    return out.output.data[0];
  }
  release() {
    return this.s.release();
  }
}

/** One cold start in a fresh iframe: ms from its navigation to its first probability. */
function coldStart(impl, model) {
  return new Promise((resolve, reject) => {
    const frame = document.createElement('iframe');
    const onMessage = (e) => {
      if (e.source !== frame.contentWindow) return;
      removeEventListener('message', onMessage);
      frame.remove();
      if (e.data.error) reject(new Error(`cold start ${impl}: ${e.data.error}`));
      else resolve(e.data);
    };
    addEventListener('message', onMessage);
    frame.src = `vad-cold.html?impl=${impl}&model=${model}&n=${Math.random()}`;
    document.body.append(frame);
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

async function main() {
  const config = await (await fetch('/target/bench/vad-config.json')).json();
  ortOneThread(ort);
  const { Runtime } = await import(config.package);
  const { Vad } = await import(config.audio);
  const rt = await Runtime.create({ backend: 'cpu' });
  const audio = readTensor(await read('/tests/data/realworld/audio.pb')).data;
  const timing = { blockMs: config.block_ms, budgetMs: config.budget_ms };
  const results = [];
  for (const model of config.models) {
    const bytes = await read(`/tests/data/realworld/models/silero_vad_${model}.onnx`);
    const vad = await Vad.create(rt, { model: bytes });
    const ortVad = await OrtSilero.create(ort, bytes, model === 'legacy');
    const n = vad.info.frameSamples;
    const frames = Math.floor(audio.length / n);
    const chunk = (k) => audio.subarray(k * n, (k + 1) * n);
    // The same probabilities from the zero state (checked before anything is timed).
    let worst = 0;
    for (let k = 0; k < frames; k++) {
      const [a] = await vad.process(chunk(k));
      const b = await ortVad.call(chunk(k));
      worst = Math.max(worst, Math.abs(a - b));
    }
    if (!(worst <= 1e-4)) throw new Error(`${model}: webrnn and onnxruntime-web differ by ${worst}`);
    log(`${model}: ${frames} chunks of ${n} samples agree (max |diff| ${worst.toExponential(1)})`);
    const runner = (call, reset) => {
      let k = 0;
      return async () => {
        if (k === frames) {
          k = 0;
          await reset();
        }
        return call(chunk(k++));
      };
    };
    const impls = [
      { name: 'webrnn', fn: runner((x) => vad.process(x), () => vad.reset()) },
      { name: 'ort-wasm', fn: runner((x) => ortVad.call(x), () => ortVad.reset()) },
    ];
    for (const impl of impls) for (let i = 0; i < config.warmup_calls; i++) await impl.fn();
    const rounds = new Map(impls.map((i) => [i.name, []]));
    for (let round = 0; round < config.rounds; round++) {
      const order = round % 2 ? [...impls].reverse() : impls;
      for (const impl of order) rounds.get(impl.name).push((await measure(impl.fn, 1, timing)).ms * 1000);
    }
    const chunkMs = (n * 1000) / 16000;
    for (const impl of impls) {
      const us = median(rounds.get(impl.name));
      results.push({ model, impl: impl.name, chunk_samples: n, us_per_chunk: us, us_per_32ms: (us * 32) / chunkMs, rtf: us / 1000 / chunkMs, rounds: rounds.get(impl.name) });
      log(`${model} ${impl.name}: ${us.toFixed(1)} µs per ${chunkMs} ms chunk (real-time factor ${(us / 1000 / chunkMs).toExponential(2)})`);
    }
    vad.dispose();
    await ortVad.release();
  }
  const cold = [];
  for (const model of config.models) {
    const runs = { webrnn: [], 'ort-wasm': [] };
    for (let i = 0; i < config.cold_runs; i++) {
      for (const impl of i % 2 ? ['ort-wasm', 'webrnn'] : ['webrnn', 'ort-wasm']) runs[impl].push((await coldStart(impl, model)).ms);
    }
    for (const [impl, ms] of Object.entries(runs)) {
      cold.push({ model, impl, first_ms: ms[0], median_ms: median(ms), runs: ms });
      log(`${model} ${impl}: cold start to the first probability ${median(ms).toFixed(0)} ms (median of ${ms.length}; first ${ms[0].toFixed(0)} ms)`);
    }
  }
  return { user_agent: navigator.userAgent, ort_version: ort.env.versions?.web ?? '', results, cold };
}

function table(report) {
  const lines = [
    '| model | webrnn µs/chunk | onnxruntime-web µs/chunk | ratio | webrnn RTF | ORT RTF | cold start webrnn / ORT (ms) |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const model of [...new Set(report.results.map((r) => r.model))]) {
    const [w, o] = ['webrnn', 'ort-wasm'].map((impl) => report.results.find((r) => r.model === model && r.impl === impl));
    const [cw, co] = ['webrnn', 'ort-wasm'].map((impl) => report.cold.find((r) => r.model === model && r.impl === impl));
    lines.push(
      `| ${model} (${w.chunk_samples} samples, ${(w.chunk_samples / 16).toFixed(0)} ms) | ${w.us_per_chunk.toFixed(1)} | ${o.us_per_chunk.toFixed(1)} | ${(w.us_per_chunk / o.us_per_chunk).toFixed(2)}× | ${w.rtf.toExponential(1)} | ${o.rtf.toExponential(1)} | ${cw.median_ms.toFixed(0)} / ${co.median_ms.toFixed(0)} (${(cw.median_ms / co.median_ms).toFixed(2)}×) |`,
    );
  }
  return lines.join('\n');
}

if (!location.pathname.endsWith('vad-cold.html')) postReport('/target/bench/vad-config.json', main, table, log);
