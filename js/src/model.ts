// Models and sessions: thin Promise-based wrappers over the wasm Model, which owns the sessions'
// state (the Rust core carries the recurrent state inputs/outputs of the graph). On the CPU the
// wasm calls are synchronous; on WebGPU they return Promises (the GPU's results are read back
// asynchronously), and a model runs its calls one after the other, in the order they were made.

import type { Model as WasmModel } from 'webrnn-wasm';

import { DisposedError, InternalError, InvalidArgumentError, ResourceError, ShapeError, fromWasm, guard } from './errors.js';
import type { GpuState } from './runtime.js';
import { Counters, now } from './stats.js';

/** One graph input or output as the model declares it (`null` for a symbolic dimension). */
export interface TensorInfo {
  name: string;
  dtype: string | null;
  shape: (number | null)[] | null;
}

export interface LayerInfo {
  name: string;
  op: 'GRU' | 'LSTM' | 'RNN' | string;
  hiddenSize: number;
  direction: 'forward' | 'reverse' | 'bidirectional' | string;
}

export interface ModelInfo {
  /** 128-bit hash of the model's structure and weights (hex); snapshots are bound to it. */
  fingerprint: string;
  format: 'onnx' | 'safetensors';
  /**
   * The Rust backend running the recurrent layers: `cpu`, `cpu-scalar` or `gpu`; `cpu-int8` for a
   * model loaded with `weights: 'int8'`.
   */
  backend: string;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  layers: LayerInfo[];
  /** False when a layer runs backwards in time: `step` is refused, `run` works. */
  streamable: boolean;
  /** Values in one time step of the input, for one session. */
  inputSize: number;
  /** Whether the input takes integer token ids (pass an Int32Array). */
  inputIsTokens: boolean;
  /** Values in one time step of the output (0 when the model has no sessions). */
  outputSize: number;
  /** f32 values of one session's recurrent state. */
  stateSize: number;
  /** Why sessions cannot be created, when they cannot. */
  sessionError: string | null;
  /** The memory budget of each call, in bytes (`Runtime.create({ maxMemoryBytes })`). */
  maxMemoryBytes: number;
  /**
   * True for a model called one chunk at a time with its state in graph tensors (Silero VAD, DTLN,
   * GTCRN): `step(x)` is one graph call on batch 1; `run` and `stepBatch` are refused.
   */
  chunked: boolean;
  /**
   * A chunked model's input shape at batch 1; `null` marks the dimension taken from the length of
   * `x` (then `inputSize` is 0: any whole multiple of the other dimensions is accepted).
   */
  inputShape: (number | null)[] | null;
  /** A chunked model's state: each graph input fed from a graph output on the next call. */
  state: StateInfo[];
  /**
   * Where each part runs: one entry per recurrent node, then one for all the other operators
   * (`node` empty). `device` is `gpu`, or `cpu (<isa>)` with the CPU kernels' instruction set
   * (`simd128`, `relaxed-simd`, `scalar`).
   */
  placement: PlacementInfo[];
}

/** Where one part of a model runs. */
export interface PlacementInfo {
  node: string;
  op: string;
  device: string;
}

/** One graph input / output pair of session state. */
export interface StateInfo {
  input: string;
  output: string;
  /** Its shape at batch 1. */
  shape: number[];
}

export type Input = Float32Array | Int32Array | ArrayLike<number>;

/** A whole tensor for `Model.runGraph`: its dims and its values, row-major. */
export interface GraphTensor {
  dims: number[];
  /** Float32Array for float tensors; Int32Array or BigInt64Array for integer ones. */
  data: Float32Array | Int32Array | BigInt64Array;
}

export interface SessionOptions {
  /**
   * Keep this session's last N inputs (0: none, the default). A StateStore saves them with the
   * state, and replays them into a new model whose fingerprint differs from the stored one.
   */
  keepInputs?: number;
  /**
   * Personalize the session (#17): after each `step`, `await s.learn(target)` updates an adapter
   * on the model's output head. `true` for the defaults, or options.
   */
  adapt?: boolean | AdaptOptions;
}

/** How a session adapts (`createSession(id, { adapt: { ... } })`). */
export interface AdaptOptions {
  /** SGD step size (default 0.02). */
  learningRate?: number;
  /** 0 (default): a full delta on the head's weights; otherwise a low-rank one of this rank. */
  rank?: number;
  /** Steps of the guard's window of base vs adapted loss (default 100). */
  window?: number;
  /** Largest norm of one update (default 1). */
  maxUpdateNorm?: number;
  /** False: always use the adapter, never roll back (default true). */
  guard?: boolean;
}

/** `session.adaptation`: what the adapter has learned and whether it is used. */
export interface Adaptation {
  updates: number;
  /** Whether the session's outputs are the adapted ones (it beats the base model on the window). */
  active: boolean;
  /** Mean loss of the base and the adapted output over the window (null while it is empty). */
  baseLoss: number | null;
  adaptedLoss: number | null;
  /** Times the adapter was rolled back to its last good copy after a divergence. */
  rollbacks: number;
  /** Top-1 accuracy of the base and adapted outputs on the class targets learned so far (null before any). */
  baseAccuracy: number | null;
  adaptedAccuracy: number | null;
}

const EMPTY = new Float32Array(0);

function adaptArgs(a: true | AdaptOptions): [number, number, number, number, boolean] {
  const o: AdaptOptions = a === true ? {} : a;
  if (o === null || typeof o !== 'object') throw new InvalidArgumentError('adapt must be true or an options object');
  const whole = (v: unknown, name: string, dflt: number) => {
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new InvalidArgumentError(`adapt.${name} must be a whole number ≥ 0`);
    return v;
  };
  const num = (v: unknown, name: string, dflt: number) => {
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new InvalidArgumentError(`adapt.${name} must be a finite number`);
    return v;
  };
  return [
    num(o.learningRate, 'learningRate', 0.02),
    whole(o.rank, 'rank', 0),
    whole(o.window, 'window', 100),
    num(o.maxUpdateNorm, 'maxUpdateNorm', 1),
    o.guard ?? true,
  ];
}

interface RawInfo {
  format: 'onnx' | 'safetensors';
  backend: string;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  layers: { name: string; op: string; hidden_size: number; direction: string }[];
  streamable: boolean;
  real_inputs: number;
  input_size: number;
  input_is_tokens: boolean;
  output_size: number;
  state_len: number;
  sessions: string | null;
  max_memory_bytes: number;
  chunked: boolean;
  input_shape: (number | null)[] | null;
  state: StateInfo[];
  placement: PlacementInfo[];
}

/**
 * `fingerprint` is a getter: the runtime hashes every weight byte for it, so it is computed when
 * first read (by a snapshot, a StateStore or the app), not while the model loads.
 */
function describe(raw: RawInfo, fingerprint: () => string): ModelInfo {
  let hex: string | undefined;
  return {
    get fingerprint() {
      return (hex ??= fingerprint());
    },
    format: raw.format,
    backend: raw.backend,
    inputs: raw.inputs,
    outputs: raw.outputs,
    layers: raw.layers.map((l) => ({ name: l.name, op: l.op, hiddenSize: l.hidden_size, direction: l.direction })),
    streamable: raw.streamable,
    inputSize: raw.input_size,
    inputIsTokens: raw.input_is_tokens,
    outputSize: raw.output_size,
    stateSize: raw.state_len,
    sessionError: raw.sessions,
    maxMemoryBytes: raw.max_memory_bytes,
    chunked: raw.chunked,
    inputShape: raw.input_shape,
    state: raw.state,
    placement: raw.placement,
  };
}

/** A loaded model. Create one session per user with `createSession`. */
export class Model {
  readonly info: ModelInfo;
  #wasm: WasmModel;
  #counters: Counters;
  #sessions = new Map<string, Session>();
  #disposed = false;
  #broken: InternalError | undefined;
  #gpu: GpuState | null;
  /** The last queued GPU call (they run one after the other). */
  #queue: Promise<unknown> = Promise.resolve();

  /** @internal Use `Runtime.loadModel`. */
  constructor(wasm: WasmModel, counters: Counters, gpu: GpuState | null = null) {
    this.#wasm = wasm;
    this.#counters = counters;
    this.#gpu = gpu;
    const raw = guard(() => JSON.parse(wasm.info()) as RawInfo);
    this.info = Object.freeze(
      describe(raw, () => {
        this.#check();
        return this._call(() => wasm.fingerprint());
      }),
    );
    counters.models++;
  }

  /** Live (not disposed) sessions of this model. */
  get sessions(): number {
    return this.#sessions.size;
  }

  /** A new session with zero state. `id` names it in a StateStore (default: a random UUID). */
  createSession(id: string = randomId(), options: SessionOptions = {}): Session {
    this.#check();
    if (typeof id !== 'string' || id.length === 0) throw new InvalidArgumentError('a session id must be a non-empty string');
    if (this.#sessions.has(id)) throw new InvalidArgumentError(`this model already has a live session '${id}'`);
    const keep = options.keepInputs ?? 0;
    if (!Number.isInteger(keep) || keep < 0) throw new InvalidArgumentError('keepInputs must be a whole number ≥ 0');
    const adapt = options.adapt ?? false;
    const args = adapt === false ? null : adaptArgs(adapt);
    const handle = this._call(() => this.#wasm.createSession());
    if (args) {
      try {
        this._call(() => this.#wasm.enableAdaptation(handle, ...args));
      } catch (e) {
        this.#wasm.dropSession(handle);
        throw e;
      }
    }
    const session = new Session(this, id, handle, keep, {
      wasm: this.#wasm,
      counters: this.#counters,
      forget: () => this.#sessions.delete(id),
    });
    this.#sessions.set(id, session);
    this.#counters.sessions++;
    this.#counters.stateBytes += this.info.stateSize * 4;
    return session;
  }

  /**
   * One time step for several sessions of this model in one batched call. `x` holds each
   * session's input one after the other (sessions × inputSize); returns each session's output one
   * after the other (sessions × outputSize). If the call fails, no session's state changes.
   * With `out` (a Float32Array of sessions × outputSize values) the outputs are written there and
   * `out` is returned: no new array per call.
   */
  async stepBatch(sessions: readonly Session[], x: Input, out?: Float32Array): Promise<Float32Array> {
    this.#check();
    if (!Array.isArray(sessions) || sessions.length === 0) {
      throw new InvalidArgumentError('stepBatch needs at least one session');
    }
    const handles = new Uint32Array(sessions.length);
    const seen = new Set<Session>();
    sessions.forEach((s, i) => {
      if (!(s instanceof Session) || s.model !== this) {
        throw new InvalidArgumentError(`stepBatch: session ${i} does not belong to this model`);
      }
      if (s.disposed) throw new DisposedError(`stepBatch: session '${s.id}' is disposed`);
      if (seen.has(s)) throw new InvalidArgumentError(`stepBatch: session '${s.id}' is given twice`);
      seen.add(s);
      handles[i] = s._handle;
    });
    const input = this._input(x, sessions.length, 'stepBatch');
    this._checkOut(out, sessions.length, 'stepBatch');
    const w = this.#wasm;
    const y = await this._step(
      1,
      () => (input instanceof Int32Array ? w.stepBatchTokens(handles, input) : w.stepBatch(handles, input)),
      () => (input instanceof Int32Array ? w.stepBatchTokensAsync(handles, input) : w.stepBatchAsync(handles, input)),
      out && (() => (input instanceof Int32Array ? w.stepBatchTokensInto(handles, input, out) : w.stepBatchInto(handles, input, out))),
      out,
    );
    const n = this.info.inputSize;
    sessions.forEach((s, i) => s._remember(input.subarray(i * n, (i + 1) * n), 1));
    return y;
  }

  /**
   * Runs the whole graph as ONNX defines it, without sessions (as `webrnn run` does): one tensor
   * per graph input, in the order of `info.inputs`; resolves to one per graph output (integer
   * outputs as BigInt64Array). For models or uses that have no session (e.g. an unrolled RNN).
   */
  async runGraph(inputs: readonly GraphTensor[]): Promise<GraphTensor[]> {
    this.#check();
    if (!Array.isArray(inputs)) throw new InvalidArgumentError('runGraph takes an array of { dims, data } tensors');
    const bytes = inputs.reduce((n, t) => n + ((t as { data?: ArrayLike<number> })?.data?.length ?? 0) * 8, 0);
    checkBudget('runGraph: the inputs', bytes, this.info.maxMemoryBytes);
    const w = this.#wasm;
    return this.#enqueue(async () => (await w.runGraph(inputs as unknown as unknown[])) as GraphTensor[]);
  }

  /**
   * Runs `call` after every call queued so far (however they ended); its errors become typed
   * errors, and the GPU's state is checked after it.
   */
  #enqueue<T>(call: () => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      if (this.#broken) throw this.#broken;
      try {
        return await call();
      } catch (e) {
        throw this._failed(e);
      } finally {
        this.#gpu?.check();
      }
    };
    const result = this.#queue.then(run, run);
    this.#queue = result.catch(() => undefined);
    return result;
  }

  /** @internal Runs `call` now on the CPU, after the queued calls on WebGPU. */
  _serial<T>(call: () => T): Promise<T> {
    if (this.#gpu === null) return Promise.resolve(this._call(call));
    return this.#enqueue(async () => call());
  }

  /**
   * Resolves when every call made so far on this model has settled (on WebGPU they are queued;
   * on the CPU there is never anything pending). Every call brings its sessions' state back with
   * its outputs, so `saveState` works once the call has settled; `idle()` also brings back any
   * state still on the GPU only (`StateStore.save` waits for it on its own).
   */
  idle(): Promise<void> {
    if (this.#gpu === null) return this.#queue.then(() => undefined);
    const w = this.#wasm;
    return this.#enqueue(() => w.syncAsync() as Promise<void>);
  }

  /** Frees the model and all its sessions. */
  dispose(): void {
    if (this.#disposed) return;
    for (const s of [...this.#sessions.values()]) s.dispose();
    this.#disposed = true;
    this.#counters.models--;
    try {
      this.#wasm.free();
    } catch {
      // Only after an internal error; the memory is lost, nothing else.
    }
  }

  /** `using model = await rt.loadModel(...)` disposes it at the end of the scope. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  #check(): void {
    if (this.#disposed) throw new DisposedError('the model is disposed');
  }

  /**
   * @internal A wasm call: errors become WebrnnErrors and count in stats(). A trap (a bug) leaves
   * the instance's borrow of this model held, so the model then refuses every call with a clear
   * InternalError; other models and their sessions go on.
   */
  _call<T>(call: () => T): T {
    if (this.#broken) throw this.#broken;
    try {
      return call();
    } catch (e) {
      throw this._failed(e);
    }
  }

  /** @internal Counts a failed call; an internal error (a trap) breaks the model for good. */
  _failed(e: unknown): Error {
    const error = fromWasm(e);
    this.#counters.errors++;
    if (error instanceof InternalError) {
      this.#broken = new InternalError(`the model is unusable after an internal error; load it again (${error.message})`, {
        cause: error,
      });
    }
    return error;
  }

  /**
   * @internal A stepping call: the synchronous wasm call on the CPU; on WebGPU the Promise one,
   * queued behind the model's earlier calls. Records its latency.
   */
  async _step(
    steps: number,
    sync: () => Float32Array,
    promise: () => Promise<Float32Array>,
    syncInto?: () => void,
    out?: Float32Array,
  ): Promise<Float32Array> {
    if (this.#gpu === null) {
      if (syncInto && out) {
        this._stepNow(steps, syncInto, out);
        return out;
      }
      const start = now();
      const y = this._call(sync);
      this.#counters.record(now() - start, steps, y);
      return y;
    }
    return this.#enqueue(async () => {
      const start = now();
      let y = await promise();
      if (out) {
        out.set(y);
        y = out;
      }
      this.#counters.record(now() - start, steps, y);
      return y;
    });
  }

  /**
   * @internal A stepping call written into `out` now, without a Promise: on the CPU only; returns
   * its milliseconds (recorded in the stats), or -1 on WebGPU, where steps are Promise calls. For callers that step in a loop
   * (the audio entry), where each await costs more than the bookkeeping around the step.
   */
  _stepNow(steps: number, into: () => void, out: Float32Array): number {
    if (this.#gpu !== null) return -1;
    const start = now();
    this._call(into);
    const ms = now() - start;
    this.#counters.record(ms, steps, out);
    return ms;
  }

  /** @internal Checks an `out` array for `n` × outputSize values. */
  _checkOut(out: Float32Array | undefined, n: number, what: string): void {
    if (out === undefined) return;
    const want = n * this.info.outputSize;
    if (!(out instanceof Float32Array) || out.length !== want) {
      const got = out instanceof Float32Array ? `${out.length} values` : 'not a Float32Array';
      throw new InvalidArgumentError(`${what}: out must be a Float32Array of ${want} values, got ${got}`);
    }
  }

  /** @internal Checks and converts an input of `steps` time steps. */
  _input(x: Input, steps: number, what: string): Float32Array | Int32Array {
    const want = steps * this.info.inputSize;
    let v: Float32Array | Int32Array;
    if (x instanceof Float32Array || x instanceof Int32Array) {
      v = x;
    } else if (x !== null && typeof x === 'object' && typeof (x as ArrayLike<number>).length === 'number') {
      v = this.info.inputIsTokens ? Int32Array.from(x as ArrayLike<number>) : Float32Array.from(x as ArrayLike<number>);
    } else {
      throw new ShapeError(`${what}: the input must be a Float32Array or an Int32Array of token ids`);
    }
    if (this.info.chunked && this.info.inputSize === 0) {
      // The chunk's length is the model's to check (it knows the shape's fixed dimensions).
      if (v.length === 0) throw new ShapeError(`${what}: the input is empty`);
    } else if (v.length !== want) {
      throw new ShapeError(
        `${what}: the input needs ${want} values (${steps} step(s) × ${this.info.inputSize}), got ${v.length}`,
      );
    }
    if (this.info.inputIsTokens && v instanceof Float32Array) {
      throw new ShapeError(`${what}: the model takes token ids: pass an Int32Array`);
    }
    // Refused before it is copied into wasm memory (token ids become int64 there).
    checkBudget(`${what}: the input`, v.length * (v instanceof Int32Array ? 8 : 4), this.info.maxMemoryBytes);
    return v;
  }
}

/** Throws ResourceError when `bytes` pass the memory budget. */
export function checkBudget(what: string, bytes: number, budget: number): void {
  if (bytes > budget) {
    const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
    throw new ResourceError(`${what} needs ${mib(bytes)}, over the memory budget of ${mib(budget)} (maxMemoryBytes)`);
  }
}

function randomId(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  return c?.randomUUID ? c.randomUUID() : `s-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

interface SessionPrivate {
  wasm: WasmModel;
  counters: Counters;
  forget: () => void;
}

/** One user's recurrent state for one model. */
export class Session {
  readonly id: string;
  readonly model: Model;
  readonly keepInputs: number;
  #handle: number;
  #p: SessionPrivate;
  #history: (Float32Array | Int32Array)[] = [];
  #disposed = false;

  /** @internal Use `Model.createSession`. */
  constructor(model: Model, id: string, handle: number, keepInputs: number, p: SessionPrivate) {
    this.model = model;
    this.id = id;
    this.#handle = handle;
    this.keepInputs = keepInputs;
    this.#p = p;
  }

  /** @internal */
  get _handle(): number {
    return this.#handle;
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  /** Time steps consumed since creation or the last reset (restored with the state). */
  get steps(): number {
    this.#check();
    return this.model._call(() => this.#p.wasm.steps(this.#handle));
  }

  /** The last `keepInputs` inputs, oldest first, one time step each. */
  get history(): readonly (Float32Array | Int32Array)[] {
    return this.#history;
  }

  /**
   * One time step: `x` has inputSize values; returns outputSize values. With `out` (a
   * Float32Array of outputSize values) the output is written there and `out` is returned: no new
   * array per step, which at small sizes costs more than the step itself.
   */
  async step(x: Input, out?: Float32Array): Promise<Float32Array> {
    this.#check();
    const input = this.model._input(x, 1, 'step');
    this.model._checkOut(out, 1, 'step');
    const [w, h] = [this.#p.wasm, this.#handle];
    const y = await this.model._step(
      1,
      () => (input instanceof Int32Array ? w.stepTokens(h, input) : w.step(h, input)),
      () => (input instanceof Int32Array ? w.stepTokensAsync(h, input) : w.stepAsync(h, input)),
      out && (() => (input instanceof Int32Array ? w.stepTokensInto(h, input, out) : w.stepInto(h, input, out))),
      out,
    );
    this._remember(input, 1);
    return y;
  }

  /**
   * @internal `step(x, out)` done synchronously where the model runs on the CPU: returns the
   * step's milliseconds, or -1 (nothing done) on WebGPU, where the caller awaits `step` instead.
   * `x` is a Float32Array of inputSize values, `out` one of outputSize values (not checked again).
   */
  _stepNow(x: Float32Array, out: Float32Array): number {
    this.#check();
    const [w, h] = [this.#p.wasm, this.#handle];
    const ms = this.model._stepNow(1, () => w.stepInto(h, x, out), out);
    if (ms >= 0) this._remember(x, 1);
    return ms;
  }

  /**
   * `steps` time steps (steps × inputSize values, time-major); returns steps × outputSize values,
   * written into `out` if given (a Float32Array of that many values), which is returned.
   */
  async run(xs: Input, steps: number, out?: Float32Array): Promise<Float32Array> {
    this.#check();
    if (!Number.isInteger(steps) || steps < 1) throw new InvalidArgumentError('run needs a whole number of steps ≥ 1');
    const input = this.model._input(xs, steps, 'run');
    this.model._checkOut(out, steps, 'run');
    const [w, h] = [this.#p.wasm, this.#handle];
    const y = await this.model._step(
      steps,
      () => (input instanceof Int32Array ? w.runTokens(h, input, steps) : w.run(h, input, steps)),
      () => (input instanceof Int32Array ? w.runTokensAsync(h, input, steps) : w.runAsync(h, input, steps)),
      out && (() => (input instanceof Int32Array ? w.runTokensInto(h, input, steps, out) : w.runInto(h, input, steps, out))),
      out,
    );
    this._remember(input, steps);
    return y;
  }

  /**
   * The state as a snapshot: versioned, bound to the model's fingerprint, checksummed. Works on
   * every backend once the session's calls have settled (on WebGPU each call brings the state
   * back with its outputs); with a call still in flight it throws InvalidArgumentError.
   */
  saveState(options: { adapter?: boolean } = {}): Uint8Array {
    this.#check();
    const [w, h] = [this.#p.wasm, this.#handle];
    return this.model._call(() => w.saveState(h, options.adapter !== false));
  }

  /**
   * Learns from the last step (#17): `target` is what came next, a class index for a (log-)softmax
   * output (cross-entropy) or the output's values (squared error). Needs a session created with
   * `{ adapt }`; throws InvalidArgumentError before a step, twice for one step, for a class out of
   * range or non-finite values, and InvalidModelError (at createSession) for a model without an
   * output head after its last recurrent layer.
   */
  async learn(target: number | Float32Array | ArrayLike<number>): Promise<void> {
    this.#check();
    const [w, h] = [this.#p.wasm, this.#handle];
    if (typeof target === 'number') {
      if (!Number.isInteger(target) || target < 0 || target >= 2 ** 32) {
        throw new InvalidArgumentError(`learn: the class must be a whole number ≥ 0, got ${target}`);
      }
      await this.model._serial(() => w.learn(h, target, EMPTY));
      return;
    }
    if (target === null || typeof target !== 'object' || typeof target.length !== 'number') {
      throw new InvalidArgumentError('learn takes a class index or a Float32Array of target values');
    }
    const v = target instanceof Float32Array ? target : Float32Array.from(target);
    if (v.length === 0) throw new InvalidArgumentError('learn: the target values are empty');
    await this.model._serial(() => w.learn(h, 0, v));
  }

  /** The adapter's state (`null` for a session without adaptation). */
  get adaptation(): Adaptation | null {
    this.#check();
    const a = this.model._call(() => this.#p.wasm.adaptation(this.#handle, false));
    if (a.length < 7) return null;
    const n = (v: number) => (Number.isNaN(v) ? null : v);
    return {
      updates: a[0],
      active: a[1] === 1,
      baseLoss: n(a[2]),
      adaptedLoss: n(a[3]),
      rollbacks: a[4],
      baseAccuracy: n(a[5]),
      adaptedAccuracy: n(a[6]),
    };
  }

  /** Forgets what the adapter learned (the session keeps adapting, from scratch). */
  resetAdaptation(): void {
    this.#check();
    this.model._call(() => this.#p.wasm.adaptation(this.#handle, true));
  }

  /**
   * Restores a snapshot from `saveState`. Throws CorruptStateError for damaged bytes and
   * StateMismatchError for another model's snapshot; the state is unchanged then.
   */
  loadState(bytes: Uint8Array | ArrayBuffer): void {
    this.#check();
    const b = bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : bytes;
    if (!(b instanceof Uint8Array)) throw new InvalidArgumentError('loadState takes a Uint8Array or an ArrayBuffer');
    this.model._call(() => this.#p.wasm.loadState(this.#handle, b));
  }

  /** Back to the zero state; forgets the kept inputs. */
  reset(): void {
    this.#check();
    this.model._call(() => this.#p.wasm.reset(this.#handle));
    this.#history = [];
  }

  /** Frees the session's state. Further calls throw DisposedError. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#p.forget();
    this.#p.counters.sessions--;
    this.#p.counters.stateBytes -= this.model.info.stateSize * 4;
    if (!this.model.disposed) {
      try {
        this.#p.wasm.dropSession(this.#handle);
      } catch {
        // Only after an internal error (see Model._call).
      }
    }
  }

  /** `using s = model.createSession()` disposes it at the end of the scope. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** @internal Keeps copies of the last `keepInputs` steps of `input`. */
  _remember(input: Float32Array | Int32Array, steps: number): void {
    if (this.keepInputs === 0) return;
    const n = input.length / steps;
    for (let t = Math.max(0, steps - this.keepInputs); t < steps; t++) {
      this.#history.push(input.slice(t * n, (t + 1) * n));
    }
    if (this.#history.length > this.keepInputs) this.#history.splice(0, this.#history.length - this.keepInputs);
  }

  /** @internal Replaces the kept inputs (from a store). */
  _setHistory(h: (Float32Array | Int32Array)[]): void {
    this.#history = this.keepInputs > 0 ? h.slice(-this.keepInputs) : [];
  }

  #check(): void {
    if (this.#disposed) throw new DisposedError(`session '${this.id}' is disposed`);
    if (this.model.disposed) throw new DisposedError(`session '${this.id}': its model is disposed`);
  }
}
