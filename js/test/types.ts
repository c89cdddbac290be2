// Compiled (never run) by run.mjs: the API as the README shows it must type-check against the
// package's declarations, and misuse must not.
import {
  CorruptStateError,
  Runtime,
  WebrnnError,
  type BackendName,
  type ErrorCode,
  type LoadProgress,
  type ModelInfo,
  type RuntimeStats,
  type StoredSession,
  type WeightsRequest,
} from 'webrnn';
import { MicVad, Vad, type VadEvent, type VadInfo } from 'webrnn/audio';

export async function example(): Promise<void> {
  const rt = await Runtime.create({ backend: 'auto' });
  const backend: BackendName = rt.backend;
  const model = await rt.loadModel('/model.onnx', { onProgress: (p: LoadProgress) => void p.loaded });
  const weights: WeightsRequest = 'int8';
  const small = await rt.loadModel('/model.onnx', { weights });
  const info: ModelInfo = model.info;
  const s = model.createSession('user-42', { keepInputs: 16 });
  const y: Float32Array = await s.step(new Float32Array(info.inputSize));
  const ys: Float32Array = await s.run(new Int32Array(4), 4);
  const yb: Float32Array = await model.stepBatch([s], new Float32Array(info.inputSize));
  const out = new Float32Array(info.outputSize);
  const yo: Float32Array = await s.step(new Float32Array(info.inputSize), out);
  await s.run(new Float32Array(2 * info.inputSize), 2, new Float32Array(2 * info.outputSize));
  await model.stepBatch([s], new Float32Array(info.inputSize), out);
  const bytes: Uint8Array = s.saveState();
  s.loadState(bytes);
  s.reset();
  const store = await rt.openStore('my-app', { maxSessions: 100, maxAgeMs: 864e5, onMismatch: (e) => void e.action });
  await store.save(s);
  const restored: boolean = await store.restore(s);
  const deleted: boolean = await store.delete(s.id);
  const list: StoredSession[] = await store.list();
  const stats: RuntimeStats = rt.stats();
  const p99: number = stats.latencyUs.p99;
  try {
    s.loadState(new Uint8Array(3));
  } catch (e) {
    if (e instanceof WebrnnError) {
      const code: ErrorCode = e.code;
      void code;
    }
    void (e instanceof CorruptStateError);
  }
  s.dispose();
  small.dispose();
  void [backend, y, ys, yb, yo, restored, deleted, list, p99];

  // @ts-expect-error: backends are 'auto' | 'webgpu' | 'cpu'
  await Runtime.create({ backend: 'gpu' });
  // @ts-expect-error: weights are 'f32' | 'int8'
  await rt.loadModel('/model.onnx', { weights: 'int4' });
  // @ts-expect-error: a step takes typed arrays (or number arrays), not strings
  await s.step('x');
  // @ts-expect-error: the wasm handles are private
  void s.handle;
}

// webrnn/audio, as the README's MicVad example uses it.
export async function audio(rt: Runtime): Promise<void> {
  const mic = await MicVad.create(rt, { model: '/silero_vad_v5.onnx', onSpeechEnd: (audio: Float32Array) => void audio.length });
  mic.vad.addEventListener('speechend', (e) => void (e as VadEvent).audio);
  await mic.pause();
  await mic.destroy();
  const vad = await Vad.create(rt, { model: new Uint8Array(0), sampleRate: 48000, redemptionMs: 600 });
  const p: Float32Array = await vad.process(new Float32Array(480));
  const info: VadInfo = vad.info;
  void [p, info.version === 'v5' || info.version === 'legacy'];
  // @ts-expect-error: samples are a Float32Array
  await vad.process(new Int16Array(480));
  // @ts-expect-error: the model is required
  await Vad.create(rt, { sampleRate: 16000 });
  vad.dispose();
}
