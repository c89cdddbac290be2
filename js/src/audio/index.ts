// webrnn/audio: voice activity detection with Silero VAD (legacy, v5, v6) on webrnn.
//
//   import { Runtime } from 'webrnn';
//   import { MicVad } from 'webrnn/audio';
//   const rt = await Runtime.create({ backend: 'cpu' });
//   const mic = await MicVad.create(rt, { model: '/silero_vad_v5.onnx', onSpeechEnd: (audio) => send(audio) });
//   await mic.destroy();
//
// This entry imports the runtime from the package's main entry ('webrnn'), so an app that uses
// both has one runtime.

export { Vad, VadEvent, VAD_SAMPLE_RATE } from './vad.js';
export type { SpeechCallbacks, SpeechOptions, VadInfo, VadOptions } from './vad.js';
export { MicVad } from './mic.js';
export type { MicVadOptions } from './mic.js';
export { Resampler } from './resampler.js';
