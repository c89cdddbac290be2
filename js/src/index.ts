// webrnn: recurrent models (GRU, LSTM, RNN) in the browser, in workers and in Node, with one
// persistent state per user session.
//
//   const rt = await Runtime.create();
//   const model = await rt.loadModel('/models/lm.onnx', { onProgress });
//   const s = model.createSession('user-42');
//   const y = await s.step(x);

export { Runtime } from './runtime.js';
export type {
  BackendName,
  BackendRequest,
  FixedInput,
  LoadOptions,
  ModelSource,
  RuntimeOptions,
  RuntimeStats,
  WeightsRequest,
} from './runtime.js';
export { Model, Session } from './model.js';
export type { Adaptation, AdaptOptions, GraphTensor, Input, LayerInfo, ModelInfo, PlacementInfo, SessionOptions, StateInfo, TensorInfo } from './model.js';
export { StateStore } from './store.js';
export type { MismatchEvent, StoreOptions, StoredSession } from './store.js';
export type { LoadProgress, ProgressCallback } from './fetch.js';
export type { LatencyStats } from './stats.js';
export { VARIANTS } from './wasm.js';
export type { BuildInfo, WasmOptions, WasmUrl, WasmVariant } from './wasm.js';
export {
  BackendUnavailableError,
  CorruptStateError,
  DisposedError,
  FormatError,
  InternalError,
  InvalidArgumentError,
  InvalidModelError,
  IoError,
  QuotaError,
  ResourceError,
  ShapeError,
  StateMismatchError,
  StorageError,
  UnsupportedOpError,
  WebrnnError,
} from './errors.js';
export type { ErrorCode } from './errors.js';
