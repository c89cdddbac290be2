// Browser tests of the audio entry (webrnn/audio): Vad against onnxruntime's per-chunk
// probabilities on the real-world fixtures (tests/data/realworld, made by
// scripts/make_realworld.py), its segment events, its typed errors, the resampler, and MicVad's
// create/destroy cycles (js/test/run.mjs starts Chromium with a fake microphone for those).
// Each throws on failure and returns a summary.

import { DisposedError, InvalidArgumentError, InvalidModelError, Runtime } from '/pkg/webrnn.js';
import { MicVad, Resampler, Vad } from '/pkg/webrnn-audio.js';
import { readTensor } from './tensor.js';

const RW = '/tests/data/realworld/';
const ATOL = 1e-4;
const RTOL = 1e-3;

function assert(ok, message) {
  if (!ok) throw new Error(message);
}

async function bytes(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

async function tensor(url) {
  return readTensor(await bytes(url));
}

/** The fixtures' audio: 61440 samples at 16 kHz, three sentences (audio.json has their spans). */
async function audio() {
  return (await tensor(`${RW}audio.pb`)).data;
}

/** Feeds `x` to `vad` in pieces of the given lengths (cycled), as a microphone would; all probabilities. */
async function feed(vad, x, pieces = [1000, 37, 512, 4096, 1]) {
  const out = [];
  for (let at = 0, i = 0; at < x.length; i++) {
    const n = Math.min(pieces[i % pieces.length], x.length - at);
    out.push(...(await vad.process(x.subarray(at, at + n))));
    at += n;
  }
  return Float32Array.from(out);
}

/** [worst |diff|, first failing frame or -1] of `got` against ORT's `want`. */
function compare(got, want) {
  let worst = 0;
  let bad = -1;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    worst = Math.max(worst, d);
    if (bad < 0 && !(d <= ATOL + RTOL * Math.abs(want[i]))) bad = i;
  }
  return [worst, bad];
}

const CASES = [
  // case, model file, version read from the graph
  ['silero_v5', 'silero_vad_v5.onnx', 'v5'],
  ['silero_v6', 'silero_vad_v6.onnx', 'v5'],
  ['silero_16k_op15', 'silero_vad_16k_op15.onnx', 'v5'],
  // int8 weights behind DequantizeLinear (scripts/quantize_weights.py), what a page serves to cut its download
  ['silero_16k_op15_int8', 'silero_vad_16k_op15_int8.onnx', 'v5'],
  ['silero_openvino_16k', 'silero_vad_openvino_16k.onnx', 'v5'],
  ['silero_legacy', 'silero_vad_legacy.onnx', 'legacy'],
];

/**
 * Vad.process on the fixtures' 16 kHz audio, in uneven pieces, gives onnxruntime's probability
 * for every chunk (atol 1e-4, rtol 1e-3): framing, the 64-sample context of v5/v6 and the state
 * are the Vad's. And the test can fail: the same model fed each frame without its context (what
 * vad-web shipped, its issues #261/#262) is outside the tolerance.
 */
export async function vadMatchesOnnxruntime() {
  const rt = await Runtime.create({ backend: 'cpu' });
  const x = await audio();
  const out = [];
  for (const [name, file, version] of CASES) {
    const want = (await tensor(`${RW}${name}/output.pb`)).data;
    const vad = await Vad.create(rt, { model: `${RW}models/${file}` });
    try {
      assert(vad.info.version === version, `${name}: version ${vad.info.version}, expected ${version}`);
      const got = await feed(vad, x);
      assert(got.length === want.length, `${name}: ${got.length} probabilities, ORT has ${want.length}`);
      const [worst, bad] = compare(got, want);
      assert(bad < 0, `${name} frame ${bad}: ${got[bad]} vs ORT ${want[bad]}`);
      // After reset() the same audio gives the same probabilities (state, context, buffers cleared).
      await vad.reset();
      const again = await feed(vad, x, [4096]);
      assert(compare(again, want)[1] < 0, `${name}: after reset() the probabilities differ`);
      out.push(`${name} (${vad.info.version}, ${vad.info.frameSamples}+${vad.info.contextSamples}) ${worst.toExponential(1)}`);
    } finally {
      vad.dispose();
    }
  }
  // Without the context: frames of 512 with zeros where the previous 64 samples belong.
  const model = await rt.loadModel(`${RW}models/silero_vad_v5.onnx`, { inputs: { sr: 16000 } });
  const s = model.createSession();
  const want = (await tensor(`${RW}silero_v5/output.pb`)).data;
  const dropped = new Float32Array(want.length);
  for (let k = 0; k < want.length; k++) {
    const input = new Float32Array(576);
    input.set(x.subarray(k * 512, (k + 1) * 512), 64);
    dropped[k] = (await s.step(input))[0];
  }
  model.dispose();
  const [worst, bad] = compare(dropped, want);
  assert(bad >= 0, `without the context the probabilities still match ORT (worst ${worst}): the test could not fail`);
  const at = dropped.findIndex((v, i) => Math.abs(v - want[i]) === worst);
  const failing = dropped.filter((v, i) => !(Math.abs(v - want[i]) <= ATOL + RTOL * Math.abs(want[i]))).length;
  return `${out.join(', ')}; without the context v5 fails on ${failing} of ${want.length} frames from frame ${bad} (worst: frame ${at}, ${dropped[at].toFixed(3)} vs ORT ${want[at].toFixed(3)})`;
}

/**
 * Segments on the fixtures' audio (three sentences, 350 ms apart; audio.json has their sample
 * spans): with a short redemption each sentence is one `speechend` whose audio and times cover
 * it; with vad-web's defaults (1400 ms redemption) the three are one; with minSpeechMs longer
 * than any sentence they are misfires.
 */
export async function vadSegments() {
  const rt = await Runtime.create({ backend: 'cpu' });
  const x = await audio();
  const spans = (await (await fetch(`${RW}audio.json`)).json()).speech_segments.map(([a, b]) => [a / 16000, b / 16000]);
  const model = await bytes(`${RW}models/silero_vad_v5.onnx`);
  const run = async (options) => {
    const events = [];
    const callbacks = [];
    const vad = await Vad.create(rt, {
      model,
      ...options,
      onSpeechStart: () => callbacks.push('start'),
      onSpeechEnd: (a) => callbacks.push(`end ${a.length}`),
      onVADMisfire: () => callbacks.push('misfire'),
    });
    for (const type of ['speechstart', 'speechend', 'misfire']) vad.addEventListener(type, (e) => events.push(e));
    await feed(vad, x);
    // Silence after the audio lets a last segment end.
    await feed(vad, new Float32Array(16000 * 2));
    vad.dispose();
    return { events, callbacks };
  };
  const short = await run({ redemptionMs: 200, preSpeechPadMs: 64, minSpeechMs: 200 });
  const ends = short.events.filter((e) => e.type === 'speechend');
  assert(ends.length === 3, `redemption 200 ms: ${ends.length} segments, expected 3: ${short.events.map((e) => `${e.type} ${e.start}-${e.end}`)}`);
  assert(short.events.filter((e) => e.type === 'speechstart').length === 3, 'three speechstart events');
  ends.forEach((e, i) => {
    const [a, b] = spans[i];
    assert(e.start <= a + 0.1 && e.start >= a - 0.35, `segment ${i} starts at ${e.start}, the sentence at ${a}`);
    assert(e.end >= b - 0.1 && e.end <= b + 0.6, `segment ${i} ends at ${e.end}, the sentence at ${b}`);
    assert(e.audio.length === Math.round((e.end - e.start) * 16000), `segment ${i}: ${e.audio.length} samples for ${e.end - e.start} s`);
    assert(e.audio.every((v, k) => v === x[Math.round(e.start * 16000) + k]), `segment ${i}: its audio is not the input's`);
  });
  const want = ends.flatMap((e) => ['start', `end ${e.audio.length}`]).join();
  assert(short.callbacks.join() === want, `callbacks ${short.callbacks} vs events ${want}`);
  const defaults = await run({});
  const merged = defaults.events.filter((e) => e.type === 'speechend');
  assert(merged.length === 1 && merged[0].start <= spans[0][0] && merged[0].end >= spans[2][1], `defaults: ${merged.length} segments`);
  const strict = await run({ redemptionMs: 200, minSpeechMs: 2000 });
  const kinds = strict.events.map((e) => e.type).join();
  assert(kinds === 'speechstart,misfire,speechstart,misfire,speechstart,misfire', `minSpeechMs 2000: ${kinds}`);
  // Frames handed to onFrameProcessed stay the app's: none is reused for a later frame (the Vad
  // reuses frame buffers only when no such callback is given).
  const kept = [];
  const keeper = await Vad.create(rt, { model, redemptionMs: 200, onFrameProcessed: (_, frame) => kept.push(frame) });
  await feed(keeper, x);
  keeper.dispose();
  assert(kept.length === Math.floor(x.length / 512), `${kept.length} frames to onFrameProcessed`);
  kept.forEach((f, k) => assert(f.every((v, i) => v === x[k * 512 + i]), `frame ${k} given to onFrameProcessed changed afterwards`));
  // endSegment() in the middle of a sentence ends it there; `frame` events follow their listeners.
  const vad = await Vad.create(rt, { model, redemptionMs: 200, minSpeechMs: 100 });
  const cut = [];
  let frames = 0;
  const onFrame = () => frames++;
  vad.addEventListener('frame', onFrame);
  vad.addEventListener('speechend', (e) => cut.push(e));
  const p = await vad.process(x.subarray(0, 12800));
  assert(frames === p.length && vad.speaking, `${frames} frame events for ${p.length} frames; speaking ${vad.speaking}`);
  vad.removeEventListener('frame', onFrame);
  await vad.process(x.subarray(12800, 13312));
  await vad.endSegment();
  assert(frames === p.length, 'a frame event after its listener was removed');
  assert(cut.length === 1 && !vad.speaking && Math.abs(cut[0].end - 13312 / 16000) < 1e-9, `endSegment: ${cut.map((e) => `${e.start}-${e.end}`)}`);
  vad.dispose();
  return `short redemption: ${ends.map((e) => `${e.start.toFixed(2)}-${e.end.toFixed(2)} s`).join(', ')} for sentences at ${spans.map(([a, b]) => `${a.toFixed(2)}-${b.toFixed(2)}`).join(', ')}; defaults: 1 segment; minSpeechMs 2000: 3 misfires; endSegment() mid-sentence ends it at ${cut[0].end.toFixed(3)} s`;
}

/** The same audio at 48 kHz (and 44.1 kHz) gives probabilities close to the 16 kHz ones, and the same segments. */
export async function vadResampled() {
  const rt = await Runtime.create({ backend: 'cpu' });
  const x = await audio();
  const model = await bytes(`${RW}models/silero_vad_v5.onnx`);
  const segments = async (rate, samples) => {
    const vad = await Vad.create(rt, { model, sampleRate: rate, redemptionMs: 200, minSpeechMs: 200 });
    const ends = [];
    vad.addEventListener('speechend', (e) => ends.push(e));
    const p = await feed(vad, samples, [rate / 100]);
    vad.dispose();
    return { p, ends };
  };
  const base = await segments(16000, x);
  const out = [];
  for (const rate of [48000, 44100]) {
    const up = new Resampler(16000, rate);
    const y = Float32Array.from([...up.process(x), ...up.process(new Float32Array(64))]);
    const r = await segments(rate, y);
    assert(r.ends.length === base.ends.length, `${rate} Hz: ${r.ends.length} segments, 16 kHz ${base.ends.length}`);
    // Exactly what the model gets when the caller resamples: the Vad's own resampling path.
    const down = new Resampler(rate, 16000).process(y);
    const direct = await segments(16000, down);
    const n = Math.min(r.p.length, direct.p.length);
    assert(n >= base.p.length - 1 && r.p.subarray(0, n).every((v, i) => v === direct.p[i]), `${rate} Hz: not the probabilities of the resampled audio`);
    // Against the original 16 kHz audio: only what the round trip filtered out (above 7.2 kHz) differs.
    let [worst, sum] = [0, 0];
    for (let i = 0; i < n; i++) {
      const d = Math.abs(r.p[i] - base.p[i]);
      [worst, sum] = [Math.max(worst, d), sum + d];
    }
    assert(sum / n < 0.05, `${rate} Hz: mean |Δp| ${sum / n} from the 16 kHz probabilities`);
    r.ends.forEach((e, i) => assert(Math.abs(e.start - base.ends[i].start) < 0.07, `${rate} Hz segment ${i} at ${e.start}, 16 kHz ${base.ends[i].start}`));
    out.push(`${rate} Hz: ${r.ends.length} segments, = 16 kHz of the resampled audio; vs the original mean |Δp| ${(sum / n).toFixed(4)}, max ${worst.toFixed(3)}`);
  }
  return out.join('; ');
}

/** Bad input gets a typed error naming what was wrong, and the Vad goes on. */
export async function vadErrors() {
  const rt = await Runtime.create({ backend: 'cpu' });
  const model = await bytes(`${RW}models/silero_vad_v5.onnx`);
  const expect = async (what, fn, type, pattern) => {
    try {
      await fn();
    } catch (e) {
      assert(e instanceof type, `${what}: ${e?.name}: ${e?.message}, expected ${type.name}`);
      assert(pattern.test(e.message), `${what}: message '${e.message}' should match ${pattern}`);
      return;
    }
    throw new Error(`${what}: no error`);
  };
  await expect('rate 0', () => Vad.create(rt, { model, sampleRate: 0 }), InvalidArgumentError, /sampleRate.*got 0/);
  await expect('rate NaN', () => Vad.create(rt, { model, sampleRate: NaN }), InvalidArgumentError, /sampleRate.*got NaN/);
  await expect('no model', () => Vad.create(rt, {}), InvalidArgumentError, /model/);
  await expect('threshold', () => Vad.create(rt, { model, positiveSpeechThreshold: 1.5 }), InvalidArgumentError, /positiveSpeechThreshold/);
  await expect('negative > positive', () => Vad.create(rt, { model, negativeSpeechThreshold: 0.6, positiveSpeechThreshold: 0.5 }), InvalidArgumentError, /negativeSpeechThreshold/);
  await expect('redemption', () => Vad.create(rt, { model, redemptionMs: -1 }), InvalidArgumentError, /redemptionMs/);
  await expect('MicVad without a model', () => MicVad.create(rt, {}), InvalidArgumentError, /MicVad.create needs options with the model/);
  await expect('MicVad threshold', () => MicVad.create(rt, { model, positiveSpeechThreshold: 2 }), InvalidArgumentError, /positiveSpeechThreshold/);
  await expect('MicVad chunk', () => MicVad.create(rt, { model, chunkSamples: 5 }), InvalidArgumentError, /chunkSamples/);
  const gru = '/tests/data/golden/legacy_gru_embed_op14/model.onnx';
  await expect('a GRU language model', () => Vad.create(rt, { model: gru }), InvalidModelError, /not a Silero VAD model/);
  const dtln = `${RW}models/dtln_model_2.onnx`;
  await expect('DTLN', () => Vad.create(rt, { model: dtln }), InvalidModelError, /not a Silero VAD model/);
  const vad = await Vad.create(rt, { model, sampleRate: 48000 });
  const sessions = rt.stats().sessions;
  await expect('Int16Array', () => vad.process(new Int16Array(480)), InvalidArgumentError, /Float32Array.*Int16Array/);
  await expect('an array', () => vad.process([0, 0]), InvalidArgumentError, /Float32Array.*Array/);
  const nan = new Float32Array(4800);
  nan[77] = NaN;
  await expect('NaN', () => vad.process(nan), InvalidArgumentError, /sample 77 is NaN/);
  nan[77] = Infinity;
  await expect('Infinity', () => vad.process(nan), InvalidArgumentError, /sample 77 is Infinity/);
  const p = await vad.process(new Float32Array(48000));
  assert(p.length === 31 && p.every((v) => v >= 0 && v <= 1), `after the errors: ${p.length} probabilities`);
  vad.dispose();
  assert(rt.stats().sessions === sessions - 1 && rt.stats().models === 0, `dispose left ${JSON.stringify(rt.stats())}`);
  await expect('disposed', () => vad.process(new Float32Array(10)), DisposedError, /disposed/);
  return 'rate 0/NaN, thresholds, MicVad options, a GRU, DTLN, Int16Array, NaN, Infinity, disposed: typed errors';
}

/** The resampler: tones come through at the new rate, what is above its Nyquist does not, chunking changes nothing. */
export async function resampler() {
  const tone = (f, rate, n, phase = 0) => Float32Array.from({ length: n }, (_, i) => Math.sin(2 * Math.PI * f * (i / rate) + phase));
  const out = [];
  for (const [from, to, f] of [[48000, 16000, 1000], [44100, 16000, 3000], [8000, 16000, 440], [22050, 16000, 5000]]) {
    const r = new Resampler(from, to);
    const y = r.process(tone(f, from, from));
    const want = tone(f, to, y.length);
    let worst = 0;
    // Past the filter's start-up (zeros before the first sample).
    for (let i = 200; i < y.length; i++) worst = Math.max(worst, Math.abs(y[i] - want[i]));
    assert(y.length >= to - 100 && y.length <= to, `${from}→${to}: ${y.length} samples for 1 s`);
    assert(worst < 2e-3, `${from}→${to} Hz, ${f} Hz tone: |error| up to ${worst}`);
    out.push(`${from}→${to} ${f} Hz ${worst.toExponential(1)}`);
  }
  // Above 8 kHz nothing reaches 16 kHz (no alias).
  const hi = new Resampler(48000, 16000).process(tone(10000, 48000, 48000));
  const rms = Math.sqrt(hi.slice(200).reduce((a, v) => a + v * v, 0) / (hi.length - 200));
  assert(rms < 2e-3, `a 10 kHz tone at 48 kHz leaves rms ${rms} at 16 kHz`);
  // Any chunking gives the same samples, bit for bit; a constant stays exactly constant.
  const x = tone(1234, 44100, 44100, 0.3);
  const whole = new Resampler(44100, 16000).process(x);
  const r = new Resampler(44100, 16000);
  const parts = [];
  for (let at = 0, i = 0; at < x.length; i++) {
    const n = [1, 128, 7, 999, 300][i % 5];
    parts.push(...r.process(x.subarray(at, at + n)));
    at += n;
  }
  assert(parts.length === whole.length && parts.every((v, i) => v === whole[i]), 'chunked output differs from one call');
  const dc = new Resampler(48000, 16000).process(new Float32Array(4800).fill(0.5)).slice(100);
  assert(dc.every((v) => Math.abs(v - 0.5) < 1e-6), 'a constant does not stay constant');
  const same = new Resampler(16000, 16000).process(x);
  assert(same.every((v, i) => v === x[i]), 'equal rates must copy');
  for (const bad of [0, -16000, 44100.5, NaN, '16000']) {
    try {
      new Resampler(bad, 16000);
      throw new Error(`rate ${bad} accepted`);
    } catch (e) {
      assert(e instanceof InvalidArgumentError, `rate ${bad}: ${e}`);
    }
  }
  return `${out.join(', ')}; 10 kHz at 48k → rms ${rms.toExponential(1)}; chunking bit-exact; DC exact; bad rates refused`;
}

/**
 * MicVad over the fake microphone: it hears the fake device (frames processed), and `cycles`
 * create/destroy cycles leave the wasm memory, the runtime's models and sessions, and the
 * microphone (every track ended, every context closed) as they were.
 */
export async function micCycles(cycles) {
  const rt = await Runtime.create({ backend: 'cpu' });
  const model = await bytes(`${RW}models/silero_vad_v5.onnx`);
  // One cycle that listens: the worklet delivers audio and the Vad processes it.
  const first = await MicVad.create(rt, { model });
  let frames = 0;
  first.vad.addEventListener('frame', () => frames++);
  const deadline = performance.now() + 5000;
  while (frames < 10 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert(frames >= 10, `the MicVad processed ${frames} frames in 5 s`);
  assert(first.audioContext.state === 'running' && first.listening, 'not listening');
  await first.pause();
  assert(first.audioContext.state === 'suspended' && !first.listening, 'pause() did not suspend');
  await first.start();
  await first.destroy();
  const memory = [];
  const heap = [];
  let [live, open] = [0, 0];
  for (let i = 0; i < cycles; i++) {
    const mic = await MicVad.create(rt, { model, startOnLoad: i % 2 === 0 });
    await mic.destroy();
    if (mic.stream.getTracks().some((t) => t.readyState !== 'ended')) live++;
    if (mic.audioContext.state !== 'closed') open++;
    if (i === 9 || i === cycles - 1) {
      memory.push(rt.stats().bytes.wasmMemory);
      // run.mjs starts Chromium with --expose-gc: the JS heap after full collections (a few, the
      // closed contexts and ended tracks let go of their objects over a task or two).
      for (let k = 0; k < 3; k++) {
        await new Promise((r) => setTimeout(r, 30));
        globalThis.gc?.();
      }
      heap.push(performance.memory?.usedJSHeapSize ?? 0);
    }
  }
  const stats = rt.stats();
  assert(stats.models === 0 && stats.sessions === 0, `after ${cycles} cycles: ${stats.models} models, ${stats.sessions} sessions live`);
  assert(live === 0, `${live} microphones still live after destroy()`);
  assert(open === 0, `${open} audio contexts not closed after destroy()`);
  assert(memory[1] === memory[0], `wasm memory grew from ${memory[0]} (cycle 10) to ${memory[1]} (cycle ${cycles})`);
  // Nothing of a destroyed MicVad stays reachable: a model's bytes, a buffer or a context kept per
  // cycle would show here.
  const grown = (heap[1] - heap[0]) / 2 ** 20;
  assert(typeof globalThis.gc === 'function' && heap[0] > 0 && grown < 0.5, `JS heap grew ${grown.toFixed(2)} MiB over ${cycles - 10} cycles`);
  return `${frames} frames heard; ${cycles} cycles: wasm memory ${(memory[1] / 2 ** 20).toFixed(1)} MiB at cycle 10 and ${cycles}, JS heap ${grown >= 0 ? '+' : ''}${grown.toFixed(2)} MiB, 0 models, 0 sessions, every track ended, every context closed`;
}
