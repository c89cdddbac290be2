// The entry point: `Runtime.create` loads the wasm module (the best variant the engine validates),
// picks a backend, and loads models from URLs or bytes.

import type { Model as WasmModel } from 'webrnn-wasm';

import { BackendUnavailableError, DisposedError, FormatError, InvalidArgumentError, IoError, fromWasm, guard } from './errors.js';
import { checkAborted, fetchBytes, type ProgressCallback } from './fetch.js';
import { Model, checkBudget } from './model.js';
import { Counters, type LatencyStats } from './stats.js';
import { StateStore, type StoreOptions } from './store.js';
import { Utf8Decoder, isUrl } from './utf8.js';
import {
  baseUrl,
  compileBest,
  loadWasm,
  moduleKind,
  namedVariant,
  variantKind,
  type BuildInfo,
  type BuildKind,
  type Glue,
  type LoadedWasm,
  type WasmOptions,
} from './wasm.js';

export type BackendRequest = 'auto' | 'webgpu' | 'cpu';
export type BackendName = 'webgpu' | 'cpu-simd' | 'cpu-scalar';
/** How a model's recurrent weights are held: as they are (`f32`), or quantized to `int8` on the CPU. */
export type WeightsRequest = 'f32' | 'int8';

/** The default memory budget (`RuntimeOptions.maxMemoryBytes`): 256 MiB. */
export const DEFAULT_MAX_MEMORY = 256 * 2 ** 20;

export interface RuntimeOptions extends WasmOptions {
  /**
   * `auto` (default): WebGPU when the browser has a hardware adapter and this build has a GPU
   * backend, else the fastest CPU variant (a software adapter such as SwiftShader is slower than
   * the CPU kernels: `gpuError` says so). `webgpu` fails with BackendUnavailableError when either is
   * missing. `cpu` never touches the GPU.
   */
  backend?: BackendRequest;
  /**
   * Called once if the WebGPU device is lost (driver reset, the browser reclaiming it). Models
   * carry on on the CPU kernels with every session's state intact; models loaded afterwards load
   * on the CPU. The runtime also dispatches a `devicelost` event.
   */
  onDeviceLost?: (info: DeviceLostInfo) => void;
  /**
   * The compiled wasm module to instantiate (from `Runtime.compile`, e.g. posted to a worker or
   * passed to an AudioWorklet processor): nothing is fetched, `variant` and `wasmUrl` are not
   * used to find it.
   */
  wasmModule?: WebAssembly.Module;
  /**
   * The memory budget, in bytes (default 256 MiB): a model whose file or weights need more is
   * refused at load, a call whose inputs or intermediates would need more is refused before it
   * allocates them, with ResourceError; the runtime and every session keep working.
   */
  maxMemoryBytes?: number;
}

export interface DeviceLostInfo {
  /** The adapter that was lost. */
  adapter: string | null;
  /** The backend models run on from now on. */
  backend: BackendName;
}

/** Bytes, or where to fetch them (a URL, absolute or relative to the page / working directory). */
export type ModelSource = string | URL | ArrayBuffer | Uint8Array;

export interface LoadOptions {
  /** Called as the model (and its external data or config) downloads. */
  onProgress?: ProgressCallback;
  /** Default: sniffed from the bytes (safetensors starts with a JSON header). */
  format?: 'onnx' | 'safetensors';
  /**
   * The JSON config of a safetensors state dict (see the README): an object, its JSON text, or
   * where to fetch it. Default for a safetensors URL: `config.json` beside it.
   */
  config?: object | string | URL;
  /**
   * External-data files of an ONNX model, by their `location`. Files not given here are fetched
   * from beside the model's URL (plain relative locations only).
   */
  externalData?: Record<string, ModelSource>;
  /**
   * `f32` (default): the weights as the model has them, on the runtime's backend. `int8`: the
   * recurrent layers' `W` and `R` are quantized to int8 once at load (one scale per output row;
   * each step's activations are quantized as they arrive and multiplied in integers), and the model
   * runs on the CPU kernels (`info.backend` is `cpu-int8`). With the SIMD wasm variants steps are
   * faster at large hidden sizes (1.4-1.9× at 256 units and more in `cargo xtask bench`); outputs
   * stay within about 1e-2 of f32 instead of 1e-5.
   *
   * int8 is a CPU option: on a WebGPU runtime an `int8` model is still loaded on the CPU kernels
   * (the runtime's other models stay on the GPU). The model's fingerprint is the f32 model's, so
   * snapshots and StateStore records move between the two. Any other value is an
   * InvalidArgumentError.
   */
  weights?: WeightsRequest;
  /**
   * Graph inputs that are the same on every call, fixed at load (ONNX models): Silero VAD's
   * `{ sr: 16000 }`. They become constants and the graph is folded around them (an `If` on them
   * disappears). A value is a number, an array of numbers (1-D), or `{ dims, data }`; integer
   * inputs take whole numbers.
   */
  inputs?: Record<string, FixedInput>;
  /**
   * Session state the runtime does not find by itself: graph input → the graph output whose value
   * feeds it on the next call (DTLN: `{ input_3: 'tf_op_layer_stack_2' }`). Pairs named like
   * `state`/`stateN`, `h`/`hn`, `X_cache`/`X_cache_out` are found without this; `model.info.state`
   * lists every pair.
   */
  state?: Record<string, string>;
  signal?: AbortSignal;
}

/** A fixed graph input's value (see `LoadOptions.inputs`). */
export type FixedInput = number | readonly number[] | { dims: readonly number[]; data: ArrayLike<number> };

/** `LoadOptions.inputs` and `.state` as the JSON the wasm loader reads (types checked here). */
function loadOptionsJson(options: LoadOptions, maxMemoryBytes: number): string {
  const inputs: Record<string, unknown> = {};
  const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
  for (const [name, v] of Object.entries(options.inputs ?? {})) {
    if (isNumber(v)) {
      inputs[name] = v;
    } else if (Array.isArray(v) && v.every(isNumber)) {
      inputs[name] = v;
    } else if (v !== null && typeof v === 'object' && Array.isArray((v as { dims?: unknown }).dims)) {
      const { dims, data } = v as { dims: unknown[]; data: ArrayLike<unknown> };
      const values = Array.from(data ?? [], (x) => (typeof x === 'bigint' ? Number(x) : x));
      if (!dims.every((d) => Number.isInteger(d) && (d as number) >= 0) || !values.every(isNumber)) {
        throw new InvalidArgumentError(`inputs.${name}: dims must be whole numbers ≥ 0 and data finite numbers`);
      }
      inputs[name] = { dims, data: values };
    } else {
      throw new InvalidArgumentError(`inputs.${name} must be a number, an array of numbers or { dims, data }`);
    }
  }
  const state: Record<string, string> = {};
  for (const [input, output] of Object.entries(options.state ?? {})) {
    if (typeof output !== 'string') throw new InvalidArgumentError(`state.${input} must name a graph output`);
    state[input] = output;
  }
  return JSON.stringify({ inputs, state, max_memory_bytes: maxMemoryBytes });
}

export interface RuntimeStats {
  backend: BackendName;
  /** The wasm variant in use (`base`, `simd128`...). */
  variant: string;
  models: number;
  /** Live sessions. */
  sessions: number;
  /** Time steps computed (a batched step counts once). */
  steps: number;
  calls: number;
  /** Per-step latency of step/run/stepBatch calls in microseconds. */
  latencyUs: LatencyStats;
  /** Bytes held: the wasm memory (models, buffers) and the sessions' state. */
  bytes: { wasmMemory: number; sessionState: number };
  /** NaN or ±Infinity values returned by step/run/stepBatch. */
  nonFinite: number;
  /** Calls that failed (and left everything as it was). */
  errors: number;
  /**
   * The page's WebGPU device (`null` when this runtime is on the CPU): recurrent layers run on it
   * and on the CPU fallback (layers it cannot take, everything after a device loss), over every
   * GPU model of the page.
   */
  gpu: { adapter: string | null; lost: boolean; gpuRuns: number; cpuFallbackRuns: number } | null;
}

/** The browser's WebGPU adapter as JS sees it, before any wasm is loaded. */
interface AdapterProbe {
  /** vendor / architecture / description, for messages. */
  name: string;
  /** A CPU-emulated adapter (SwiftShader, lavapipe, llvmpipe, or one the browser calls a fallback). */
  software: boolean;
}

interface GpuAdapterInfoLike {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}

async function probeAdapter(): Promise<AdapterProbe | null> {
  type Gpu = { requestAdapter(): Promise<{ info?: GpuAdapterInfoLike; isFallbackAdapter?: boolean } | null> };
  const gpu = (globalThis as { navigator?: { gpu?: Gpu } }).navigator?.gpu;
  if (!gpu) return null;
  try {
    const adapter = await gpu.requestAdapter();
    if (adapter == null) return null;
    const info = adapter.info ?? {};
    const parts = [info.vendor, info.architecture, info.device, info.description].filter((p) => p);
    const name = parts.join(' ') || 'unnamed adapter';
    const software =
      info.isFallbackAdapter === true ||
      adapter.isFallbackAdapter === true ||
      /swiftshader|llvmpipe|lavapipe|software|microsoft basic render/i.test(name);
    return { name, software };
  } catch {
    return null;
  }
}

/**
 * @internal What models of a runtime share about the GPU: whether it is still there, and whom to
 * tell when it goes.
 */
export class GpuState {
  lost = false;
  constructor(
    readonly glue: Glue,
    readonly notify: () => void,
  ) {}

  /** After a GPU call: has the device gone? Tells the runtime once. */
  check(): void {
    if (this.lost) return;
    let lost = false;
    try {
      lost = (JSON.parse(this.glue.gpuStatus()) as { lost: boolean }).lost;
    } catch {
      return;
    }
    if (lost) {
      this.lost = true;
      this.notify();
    }
  }
}

export class Runtime extends EventTarget {
  #backend: BackendName;
  readonly #cpu: BackendName;
  /** The wasm variant loaded: `base`, `simd128`, `relaxed-simd`. */
  readonly variant: string;
  /** What the loaded wasm build contains. */
  readonly build: Readonly<BuildInfo>;
  /** Whether the browser offered a WebGPU adapter (checked unless `backend: 'cpu'`). */
  readonly webgpuAdapter: boolean;
  /** The WebGPU adapter in use (`null` on the CPU). */
  readonly gpuAdapter: string | null;
  /** Why `auto` did not pick WebGPU although the browser has an adapter (else `null`). */
  readonly gpuError: string | null;
  #counters = new Counters();
  #gpu: GpuState;
  readonly #wasm: LoadedWasm;
  /** Models loaded by this runtime, disposed with it. */
  #models = new Set<Model>();
  #disposed = false;
  #warmedUp = false;

  private constructor(
    backend: BackendName,
    cpu: BackendName,
    wasm: LoadedWasm,
    adapter: boolean,
    gpu: { adapter: string | null; error: string | null },
    readonly maxMemoryBytes: number,
    onDeviceLost?: (info: DeviceLostInfo) => void,
  ) {
    super();
    this.#backend = backend;
    this.#cpu = cpu;
    this.#wasm = wasm;
    this.variant = wasm.variant.name;
    this.build = Object.freeze(wasm.info);
    this.webgpuAdapter = adapter;
    this.gpuAdapter = gpu.adapter;
    this.gpuError = gpu.error;
    this.#gpu = new GpuState(wasm.glue, () => {
      this.#backend = this.#cpu;
      const info: DeviceLostInfo = { adapter: this.gpuAdapter, backend: this.#cpu };
      try {
        onDeviceLost?.(info);
      } finally {
        this.dispatchEvent(Object.assign(new Event('devicelost'), { detail: info }));
      }
    });
  }

  /**
   * The backend models loaded now run on: `webgpu`, `cpu-simd` or `cpu-scalar`. After a WebGPU
   * device loss it is the CPU one.
   */
  get backend(): BackendName {
    return this.#backend;
  }

  /**
   * Fetches and compiles the best wasm variant for this engine (or the one `variant` names, from
   * where `wasmUrl` says) without instantiating it: the module can be posted to a worker or an
   * AudioWorklet and given to `Runtime.create({ wasmModule })` there. `backend` says which kind
   * of build: `cpu` (default) a CPU-only one; `webgpu` one with the WebGPU backend (it needs an
   * adapter); `auto` the WebGPU build when this browser has a hardware adapter, else a CPU one.
   */
  static async compile(options: WasmOptions & { backend?: BackendRequest } = {}): Promise<WebAssembly.Module> {
    const request = options.backend ?? 'cpu';
    checkRequest(request);
    let kind: BuildKind = 'cpu';
    if (options.variant !== undefined) {
      kind = variantKind(options.variant);
    } else if (request !== 'cpu') {
      const adapter = await probeAdapter();
      if (request === 'webgpu' && !adapter) throw new BackendUnavailableError('WebGPU is not available here (no adapter)');
      kind = adapter && (request === 'webgpu' || !adapter.software) ? 'gpu' : 'cpu';
    }
    return (await compileBest(options, kind)).module;
  }

  /**
   * Loads the wasm module (once per page or worker and kind of build) and picks the backend. A
   * runtime that runs on the CPU loads a CPU-only build; the WebGPU build (and its glue) is fetched
   * only when `auto` or `webgpu` takes an adapter.
   */
  static async create(options: RuntimeOptions = {}): Promise<Runtime> {
    const request = options.backend ?? 'auto';
    checkRequest(request);
    const budget = options.maxMemoryBytes ?? DEFAULT_MAX_MEMORY;
    if (!Number.isSafeInteger(budget) || budget <= 0) {
      throw new InvalidArgumentError(`maxMemoryBytes must be a positive whole number of bytes, got ${String(budget)}`);
    }
    const probe = request === 'cpu' ? null : await probeAdapter();
    if (request === 'webgpu' && !probe) throw new BackendUnavailableError('WebGPU is not available here (no adapter)');
    const gpu = { adapter: null as string | null, error: null as string | null };
    // Which build: the one a module or a variant names, else the GPU one where it will be used.
    let kind: BuildKind;
    if (options.wasmModule !== undefined) {
      kind = options.wasmModule instanceof WebAssembly.Module ? moduleKind(options.wasmModule) : 'cpu';
    } else if (options.variant !== undefined) {
      kind = namedVariant(options.variant).gpu ? 'gpu' : 'cpu';
    } else {
      kind = probe && (request === 'webgpu' || !probe.software) ? 'gpu' : 'cpu';
    }
    if (request === 'auto' && probe?.software && kind === 'cpu') {
      // A software adapter (SwiftShader...) emulates the GPU on this CPU, a few times slower than
      // the CPU kernels themselves, and with a round trip per call.
      gpu.error = `the WebGPU adapter ${probe.name} is a software renderer: the CPU backend is faster`;
    }
    let wasm: LoadedWasm;
    try {
      wasm = await loadWasm(options, kind);
    } catch (e) {
      // auto: a WebGPU build that cannot be had (a context where import() is not allowed, a
      // bundle without the GPU files) leaves the CPU.
      const chosen = options.wasmModule === undefined && options.variant === undefined;
      if (!(kind === 'gpu' && request === 'auto' && chosen && e instanceof BackendUnavailableError)) throw e;
      gpu.error = e.message;
      wasm = await loadWasm(options, 'cpu');
    }
    const { info, glue } = wasm;
    const cpu: BackendName = info.simd128 && info.cpu !== 'cpu-scalar' ? 'cpu-simd' : 'cpu-scalar';
    let backend: BackendName = cpu;
    if (request === 'webgpu' && !info.gpu) {
      throw new BackendUnavailableError(
        `the wasm variant '${wasm.variant.name}' has no GPU backend (a CPU-only build); use backend "auto" or "cpu"`,
      );
    }
    if (request === 'auto' && probe && !info.gpu && gpu.error === null) {
      gpu.error = `the wasm variant '${wasm.variant.name}' has no GPU backend (a CPU-only build)`;
    }
    if (request !== 'cpu' && info.gpu && probe) {
      try {
        const name = await glue.initGpu();
        if (request === 'auto' && guard(() => JSON.parse(glue.gpuStatus()) as { software: boolean }).software) {
          gpu.error = `the WebGPU adapter ${name} is a software renderer: the CPU backend is faster`;
        } else {
          gpu.adapter = name;
          backend = 'webgpu';
        }
      } catch (e) {
        const error = fromWasm(e);
        if (request === 'webgpu') throw error;
        gpu.error = error.message; // auto: the CPU it is
      }
    }
    return new Runtime(backend, cpu, wasm, probe !== null, gpu, budget, options.onDeviceLost);
  }

  /**
   * Loads an ONNX model (with external data) or a safetensors state dict with its config. Aborted
   * through `options.signal`, it rejects with a DOMException named `AbortError`, as `fetch` does.
   */
  async loadModel(source: ModelSource, options: LoadOptions = {}): Promise<Model> {
    this.#check();
    checkAborted(options.signal, 'loadModel');
    const weights = options.weights ?? 'f32';
    if (weights !== 'f32' && weights !== 'int8') {
      throw new InvalidArgumentError(`unknown weights '${String(weights)}' (f32, int8)`);
    }
    const url = sourceUrl(source);
    const pending = readSource(source, options);
    if (url && !this.#warmedUp && this.backend !== 'webgpu') {
      this.#warmedUp = true;
      warmUp(this.#wasm.glue, this.maxMemoryBytes);
    }
    const bytes = await pending;
    try {
      checkBudget('loadModel: the model file', bytes.length, this.maxMemoryBytes);
    } catch (e) {
      this.#counters.errors++;
      throw e;
    }
    const format = options.format ?? (looksLikeSafetensors(bytes) ? 'safetensors' : 'onnx');
    // The Rust backend (`Backend::parse`): int8 weights exist on the CPU kernels only.
    const backend = weights === 'int8' ? 'cpu-int8' : this.backend === 'webgpu' ? 'gpu' : 'cpu';
    try {
      let wasm: WasmModel;
      if (format === 'safetensors') {
        if (options.inputs !== undefined || options.state !== undefined) {
          throw new InvalidArgumentError('inputs and state are options of ONNX models (a state dict has neither)');
        }
        const config = await readConfig(options, url);
        wasm = guard(() => this.#wasm.glue.Model.fromSafetensors(bytes, config, backend, this.maxMemoryBytes));
      } else if (format === 'onnx') {
        wasm = await loadOnnx(this.#wasm.glue, bytes, url, backend, options, this.maxMemoryBytes);
      } else {
        throw new InvalidArgumentError(`unknown model format '${String(format)}' (onnx, safetensors)`);
      }
      const model = new Model(wasm, this.#counters, backend === 'gpu' ? this.#gpu : null);
      if (options.signal?.aborted) {
        model.dispose();
        checkAborted(options.signal, 'loadModel');
      }
      this.#models.add(model);
      return model;
    } catch (e) {
      if (e instanceof DOMException && e.name === 'AbortError') throw e;
      this.#counters.errors++;
      throw fromWasm(e);
    }
  }

  /**
   * Checks the WebGPU device against webrnn's CPU reference on every cell kind (a few seconds on
   * a software adapter): resolves to a report, rejects with BackendUnavailableError naming the
   * first disagreement. For apps that want to vet an unknown adapter before trusting it.
   */
  async gpuSelfTest(): Promise<string> {
    if (this.gpuAdapter === null) throw new BackendUnavailableError('this runtime is not on WebGPU');
    try {
      return await this.#wasm.glue.gpuSelfTest();
    } catch (e) {
      throw fromWasm(e);
    } finally {
      this.#gpu.check();
    }
  }

  /** @internal Destroys the WebGPU device as a driver reset would (tests of the device-loss path). */
  _destroyGpuForTesting(): void {
    this.#wasm.glue.destroyGpuForTesting();
  }

  /** @internal Looks for a device loss now (models also look after every GPU call). */
  _checkGpu(): void {
    if (this.gpuAdapter !== null) this.#gpu.check();
  }

  /**
   * Disposes every model this runtime loaded (and their sessions); `loadModel` then throws
   * DisposedError. The wasm module stays loaded for the page: `Runtime.create` is cheap after it.
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const m of this.#models) m.dispose();
    this.#models.clear();
  }

  /** `using rt = await Runtime.create()` disposes it at the end of the scope. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  #check(): void {
    if (this.#disposed) throw new DisposedError('the runtime is disposed');
    for (const m of this.#models) if (m.disposed) this.#models.delete(m);
  }

  /** Opens (creating if needed) an IndexedDB-backed store of session states named `name`. */
  openStore(name: string, options: StoreOptions = {}): Promise<StateStore> {
    return StateStore.open(name, options);
  }

  stats(): RuntimeStats {
    const c = this.#counters;
    return {
      backend: this.backend,
      variant: this.variant,
      models: c.models,
      sessions: c.sessions,
      steps: c.steps,
      calls: c.calls,
      latencyUs: c.latency(),
      bytes: { wasmMemory: this.#wasm.memory.buffer.byteLength, sessionState: c.stateBytes },
      nonFinite: c.nonFinite,
      errors: c.errors,
      gpu: this.gpuAdapter === null ? null : gpuStats(this.#wasm.glue),
    };
  }
}

function gpuStats(glue: Glue): RuntimeStats['gpu'] {
  const g = guard(() => JSON.parse(glue.gpuStatus()) as { adapter: string | null; lost: boolean; gpu_runs: number; cpu_fallback_runs: number });
  return { adapter: g.adapter, lost: g.lost, gpuRuns: g.gpu_runs, cpuFallbackRuns: g.cpu_fallback_runs };
}

function checkRequest(request: unknown): void {
  if (!['auto', 'webgpu', 'cpu'].includes(request as string)) {
    throw new InvalidArgumentError(`unknown backend '${String(request)}' (auto, webgpu, cpu)`);
  }
}

function sourceUrl(source: ModelSource): URL | undefined {
  if (typeof source === 'string' || isUrl(source)) {
    try {
      return new URL(source, baseUrl());
    } catch (e) {
      throw new InvalidArgumentError(`not a URL: ${String(source)}`, { cause: e });
    }
  }
  return undefined;
}

/**
 * Loads and steps a small GRU built by the wasm (`warmUpModel`) and frees it: called while the
 * first model fetched by URL is still downloading, it has the browser compile the loading and
 * stepping code (wasm functions are compiled on their first call) in time spent waiting anyway,
 * about 20 ms each of the first load and the first step in Chromium. Nothing of it is kept or
 * counted; a failure is ignored (the real load reports its own).
 */
function warmUp(glue: Glue, maxMemoryBytes: number): void {
  try {
    const model = glue.Model.fromOnnx(glue.warmUpModel(), new Map(), 'cpu', loadOptionsJson({}, maxMemoryBytes));
    try {
      model.step(model.createSession(), new Float32Array(WARM_UP_UNITS));
    } finally {
      model.free();
    }
  } catch {
    // Only a warm-up.
  }
}

/** The warm-up GRU's units (`src/onnx/warmup.rs`). */
const WARM_UP_UNITS = 64;

async function readSource(source: ModelSource, options: LoadOptions): Promise<Uint8Array> {
  if (source instanceof Uint8Array) return source;
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  const url = sourceUrl(source);
  if (!url) throw new InvalidArgumentError('a model source is a URL (string or URL), an ArrayBuffer or a Uint8Array');
  return fetchBytes(url, options.onProgress, options.signal);
}

function looksLikeSafetensors(b: Uint8Array): boolean {
  // An 8-byte little-endian header length, then the JSON header.
  return b.length > 9 && b[8] === 0x7b && b[6] === 0 && b[7] === 0;
}

async function readConfig(options: LoadOptions, modelUrl: URL | undefined): Promise<string> {
  const c = options.config;
  if (typeof c === 'string') {
    if (c.trimStart().startsWith('{')) return c;
    return text(await fetchBytes(new URL(c, modelUrl ?? baseUrl()), options.onProgress, options.signal));
  }
  if (isUrl(c)) return text(await fetchBytes(c, options.onProgress, options.signal));
  if (c !== undefined && c !== null) return JSON.stringify(c);
  if (modelUrl) return text(await fetchBytes(new URL('config.json', modelUrl), options.onProgress, options.signal));
  throw new InvalidArgumentError('a safetensors state dict needs its JSON config (options.config)');
}

function text(bytes: Uint8Array): string {
  return new Utf8Decoder().decode(bytes);
}

const MAX_EXTERNAL_FILES = 64;

async function loadOnnx(
  glue: Glue,
  bytes: Uint8Array,
  url: URL | undefined,
  backend: string,
  options: LoadOptions,
  maxMemoryBytes: number,
): Promise<WasmModel> {
  const json = loadOptionsJson(options, maxMemoryBytes);
  const external = new Map<string, Uint8Array>();
  for (const [location, src] of Object.entries(options.externalData ?? {})) {
    external.set(location, await readSource(src, options));
  }
  // The importer names the first external file it lacks; fetch it from beside the model and retry.
  for (let i = 0; i <= MAX_EXTERNAL_FILES; i++) {
    try {
      return glue.Model.fromOnnx(bytes, external, backend, json);
    } catch (e) {
      const location = (e as { location?: unknown }).location;
      if (typeof location !== 'string' || external.has(location)) throw fromWasm(e);
      if (!url) {
        throw new IoError(
          `the model keeps weights in the external file '${location}': pass it in options.externalData, or load the model from its URL`,
        );
      }
      if (!/^[^/\\:]+(\/[^/\\:]+)*$/.test(location) || location.split('/').some((p) => p === '..' || p === '.')) {
        throw new FormatError(`external data location '${location}' must be a plain relative path`);
      }
      external.set(location, await fetchBytes(new URL(location, url), options.onProgress, options.signal));
    }
  }
  throw new FormatError('the model refers to too many external data files');
}
