// A consumer of the installed package, type-checked by run.mjs under moduleResolution `bundler`
// (tsc/bundler) and `node16` (tsc/node16), with the library checks on (no skipLibCheck).

import {
  IoError,
  Runtime,
  VARIANTS,
  type BackendName,
  type Model,
  type Session,
  type WasmUrl,
  type WasmVariant,
} from 'webrnn';
import { MicVad, Vad, type VadInfo } from 'webrnn/audio';

const urls: WasmUrl[] = ['/wasm/', new URL('https://cdn.example/webrnn_simd.wasm'), { simd128: '/a.wasm', base: '/b.wasm' }];

export async function consumer(bytes: Uint8Array): Promise<Float32Array> {
  const module: WebAssembly.Module = await Runtime.compile({ wasmUrl: urls[0]! });
  const rt: Runtime = await Runtime.create({ wasmModule: module, backend: 'cpu' });
  const backend: BackendName = rt.backend;
  const variants: readonly WasmVariant[] = VARIANTS;
  const controller = new AbortController();
  const model: Model = await rt.loadModel(bytes, { signal: controller.signal });
  const session: Session = model.createSession('user');
  try {
    const y = await session.step(new Float32Array(model.info.inputSize));
    session.saveState();
    return y;
  } catch (e) {
    if (e instanceof IoError || (e instanceof DOMException && e.name === 'AbortError')) throw e;
    throw new Error(`${backend} ${variants.length}`);
  } finally {
    session[Symbol.dispose]();
    model[Symbol.dispose]();
    rt[Symbol.dispose]();
  }
}

export async function voice(rt: Runtime, bytes: Uint8Array): Promise<VadInfo> {
  const vad = await Vad.create(rt, { model: bytes, sampleRate: 48000, onSpeechEnd: (audio: Float32Array) => void audio });
  const probabilities: Float32Array = await vad.process(new Float32Array(4800));
  void probabilities;
  const mic: MicVad = await MicVad.create(rt, { model: bytes, startOnLoad: false });
  await mic.destroy();
  return vad.info;
}
