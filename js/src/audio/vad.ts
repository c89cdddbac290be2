// Voice activity detection with a Silero VAD model: one session of the model, fed 16 kHz frames
// with what each version needs (v5/v6: 512 new samples behind the 64 last of the previous frame;
// legacy: 1536 samples), from audio at any sample rate, and the speech segments found from its
// probabilities by the same rules, option names and defaults as @ricky0123/vad-web's
// FrameProcessor, so that its users can switch.

import {
  DisposedError,
  InvalidArgumentError,
  InvalidModelError,
  type LoadOptions,
  type Model,
  type ModelSource,
  type Runtime,
  type Session,
} from 'webrnn';

import { Resampler, checkRate } from './resampler.js';

/** The rate Silero VAD runs at. */
export const VAD_SAMPLE_RATE = 16000;

/** What vad-web calls FrameProcessorOptions, with its defaults. */
export interface SpeechOptions {
  /** A frame whose probability is at least this is speech (default 0.3). */
  positiveSpeechThreshold?: number;
  /** Below this a frame counts towards the end of a segment (default 0.25). */
  negativeSpeechThreshold?: number;
  /** How long the probability must stay under `negativeSpeechThreshold` to end a segment (default 1400). */
  redemptionMs?: number;
  /** Audio kept before the first speech frame of a segment (default 800). */
  preSpeechPadMs?: number;
  /** A segment with fewer speech frames than this is a `misfire`, not a `speechend` (default 400). */
  minSpeechMs?: number;
  /** `MicVad.pause()` ends a segment in progress (`speechend` or `misfire`) instead of dropping it (default false). */
  submitUserSpeechOnPause?: boolean;
}

/** vad-web's callbacks; the same happen as events on the Vad. */
export interface SpeechCallbacks {
  onFrameProcessed?: (probabilities: { isSpeech: number; notSpeech: number }, frame: Float32Array) => void;
  onSpeechStart?: () => void;
  /** The segment has lasted `minSpeechMs` of speech frames: it will not be a misfire. */
  onSpeechRealStart?: () => void;
  /** The segment's 16 kHz audio, `preSpeechPadMs` before its first speech frame to its end. */
  onSpeechEnd?: (audio: Float32Array) => void;
  onVADMisfire?: () => void;
}

export interface VadOptions extends SpeechOptions, SpeechCallbacks {
  /** The Silero VAD model (legacy/v4, v5 or v6 ONNX): its URL or its bytes. */
  model: ModelSource;
  /** The rate of the samples given to `process` (default 16000); they are resampled to 16 kHz. */
  sampleRate?: number;
  /** Passed to `rt.loadModel`. */
  onProgress?: LoadOptions['onProgress'];
  signal?: AbortSignal;
}

export interface VadInfo {
  /** `v5` for v5 and v6 (one graph interface: 64 samples of context and a [2, 1, 128] state), or `legacy` (v4). */
  version: 'v5' | 'legacy';
  /** New 16 kHz samples per frame: 512 (32 ms) or 1536 (96 ms). */
  frameSamples: number;
  /** Samples of the previous frame fed again before each frame: 64 (v5) or 0 (legacy). */
  contextSamples: number;
  /** The rate `process` takes. */
  sampleRate: number;
  /** What runs the model (`rt.backend` when it was loaded). */
  backend: string;
}

/** An event of a Vad: `frame`, `speechstart`, `speechrealstart`, `speechend`, `misfire`. */
export class VadEvent extends Event {
  /** `frame`: the frame's speech probability. */
  readonly probability: number;
  /** `speechend`: the segment's 16 kHz audio. */
  readonly audio: Float32Array | null;
  /** Seconds since the start (or the last reset) of the 16 kHz stream: the segment's (or frame's) start and end. */
  readonly start: number;
  readonly end: number;
  constructor(type: string, init: { probability?: number; audio?: Float32Array; start: number; end: number }) {
    super(type);
    this.probability = init.probability ?? NaN;
    this.audio = init.audio ?? null;
    this.start = init.start;
    this.end = init.end;
  }
}

const DEFAULTS: Required<SpeechOptions> = {
  positiveSpeechThreshold: 0.3,
  negativeSpeechThreshold: 0.25,
  redemptionMs: 1400,
  preSpeechPadMs: 800,
  minSpeechMs: 400,
  submitUserSpeechOnPause: false,
};

function speechOptions(o: SpeechOptions): Required<SpeechOptions> {
  const r = { ...DEFAULTS };
  for (const key of Object.keys(DEFAULTS) as (keyof SpeechOptions)[]) {
    const v = o[key];
    if (v === undefined) continue;
    if (key === 'submitUserSpeechOnPause') {
      if (typeof v !== 'boolean') throw new InvalidArgumentError(`${key} must be true or false, got ${String(v)}`);
    } else if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw new InvalidArgumentError(`${key} must be a finite number ≥ 0, got ${String(v)}`);
    }
    (r as Record<string, unknown>)[key] = v;
  }
  for (const key of ['positiveSpeechThreshold', 'negativeSpeechThreshold'] as const) {
    if (r[key] > 1) throw new InvalidArgumentError(`${key} must be from 0 to 1, got ${r[key]}`);
  }
  if (r.negativeSpeechThreshold > r.positiveSpeechThreshold) {
    throw new InvalidArgumentError(
      `negativeSpeechThreshold (${r.negativeSpeechThreshold}) must not exceed positiveSpeechThreshold (${r.positiveSpeechThreshold})`,
    );
  }
  return r;
}

/**
 * @internal Checks `options` (the model is given, the rate and thresholds are in range) before
 * anything downloads or asks for the microphone; returns the sample rate.
 */
export function checkVadOptions(options: VadOptions, what: string): number {
  if (options === null || typeof options !== 'object' || options.model === undefined) {
    throw new InvalidArgumentError(`${what} needs options with the model: { model: url or bytes }`);
  }
  speechOptions(options);
  return checkRate(options.sampleRate ?? VAD_SAMPLE_RATE, 'sampleRate');
}

/** Loads the model with `sr` fixed at 16 kHz where the graph has that input (not every export does). */
async function loadSilero(rt: Runtime, options: VadOptions): Promise<Model> {
  const load = { onProgress: options.onProgress, signal: options.signal };
  try {
    return await rt.loadModel(options.model, { ...load, inputs: { sr: VAD_SAMPLE_RATE } });
  } catch (e) {
    if (!(e instanceof InvalidArgumentError) || !/no graph input is named 'sr'/.test(e.message)) throw e;
  }
  const bytes = options.model;
  return rt.loadModel(bytes, load);
}

/** The version, frame and context of a Silero VAD graph, from its state and input (or why it is none). */
function sileroInterface(model: Model): Pick<VadInfo, 'version' | 'frameSamples' | 'contextSamples'> {
  const info = model.info;
  const not = (why: string) => new InvalidModelError(`not a Silero VAD model (legacy, v5 or v6): ${why}`);
  if (!info.chunked) throw not(info.sessionError ?? 'it is not called chunk by chunk with its state in graph tensors');
  if (info.inputIsTokens) throw not('its input is token ids, not audio');
  const state = new Map(info.state.map((s) => [s.input, s.shape.join('x')]));
  const found = info.state.map((s) => `${s.input} [${s.shape.join(', ')}]`).join(', ') || 'none';
  let iface: Pick<VadInfo, 'version' | 'frameSamples' | 'contextSamples'>;
  if (state.size === 1 && state.get('state') === '2x1x128') {
    iface = { version: 'v5', frameSamples: 512, contextSamples: 64 };
  } else if (state.size === 2 && state.get('h') === '2x1x64' && state.get('c') === '2x1x64') {
    iface = { version: 'legacy', frameSamples: 1536, contextSamples: 0 };
  } else {
    throw not(`its state is ${found}; Silero's is state [2, 1, 128] (v5, v6) or h and c [2, 1, 64] (legacy)`);
  }
  const shape = info.inputShape;
  const last = shape?.[shape.length - 1];
  const want = iface.frameSamples + iface.contextSamples;
  if (!shape || (last !== null && last !== want) || shape.slice(0, -1).some((d) => d !== 1)) {
    throw not(`its input is [${shape?.join(', ')}] at batch 1; a ${iface.version} model takes [1, ${want}] or [1, n]`);
  }
  const out = info.outputs[0]?.name;
  if (info.outputSize !== 1) throw not(`its output ${out} has ${info.outputSize} values per call, not one probability`);
  return iface;
}

interface Buffered {
  frame: Float32Array;
  isSpeech: boolean;
  index: number;
}

const LATENCY_WINDOW = 1024;
/** Most frame buffers kept for reuse. */
const POOL_MAX = 64;

/**
 * A voice activity detector: `await Vad.create(rt, { model: '/silero_vad_v5.onnx', sampleRate })`,
 * then `await vad.process(samples)` as audio arrives (any length); listen for `speechstart`,
 * `speechend` (`event.audio`) and `misfire`, or pass vad-web's callbacks.
 */
export class Vad extends EventTarget {
  readonly info: Readonly<VadInfo>;
  readonly options: Readonly<Required<SpeechOptions>>;
  #model: Model;
  #session: Session;
  #callbacks: SpeechCallbacks;
  #resampler: Resampler;
  /** 16 kHz samples not yet in a frame. */
  #pending: Float32Array;
  #pendingLength = 0;
  /** The model's input: context then frame. */
  #input: Float32Array;
  #output = new Float32Array(1);
  #frames = 0;
  // The frame processor's state, as vad-web's.
  #speaking = false;
  #realStartFired = false;
  #redemption = 0;
  #speechFrames = 0;
  #buffer: Buffered[] = [];
  readonly #redemptionFrames: number;
  readonly #preSpeechPadFrames: number;
  readonly #minSpeechFrames: number;
  /** Listeners of `frame`: the event is made only when someone listens (it costs more than the frame's bookkeeping). */
  #frameListeners = new Set<EventListenerOrEventListenerObject>();
  #latency = new Float64Array(LATENCY_WINDOW);
  #latencyCount = 0;
  /** Calls of `process` run one after the other. */
  #queue: Promise<unknown> = Promise.resolve();
  /** Calls queued or running that have not settled (0: the next one may run at once). */
  #busy = 0;
  /** Frame buffers to reuse (a new Float32Array costs more than the bookkeeping of a frame). */
  #pool: Float32Array[] = [];
  #disposed = false;

  private constructor(model: Model, iface: Pick<VadInfo, 'version' | 'frameSamples' | 'contextSamples'>, rate: number, backend: string, options: VadOptions) {
    super();
    this.options = Object.freeze(speechOptions(options));
    this.info = Object.freeze({ ...iface, sampleRate: rate, backend });
    this.#model = model;
    this.#session = model.createSession();
    this.#callbacks = options;
    this.#resampler = new Resampler(rate, VAD_SAMPLE_RATE);
    this.#pending = new Float32Array(iface.frameSamples * 4);
    this.#input = new Float32Array(iface.contextSamples + iface.frameSamples);
    const ms = (iface.frameSamples * 1000) / VAD_SAMPLE_RATE;
    this.#redemptionFrames = Math.floor(this.options.redemptionMs / ms);
    this.#preSpeechPadFrames = Math.floor(this.options.preSpeechPadMs / ms);
    this.#minSpeechFrames = Math.floor(this.options.minSpeechMs / ms);
  }

  /** Loads the model and reads from its graph which Silero version it is. */
  static async create(rt: Runtime, options: VadOptions): Promise<Vad> {
    const rate = checkVadOptions(options, 'Vad.create');
    const backend = rt.backend;
    const model = await loadSilero(rt, options);
    try {
      return new Vad(model, sileroInterface(model), rate, backend, options);
    } catch (e) {
      model.dispose();
      throw e;
    }
  }

  override addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: AddEventListenerOptions | boolean): void {
    if (type === 'frame' && listener) this.#frameListeners.add(listener);
    super.addEventListener(type, listener, options);
  }

  override removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: EventListenerOptions | boolean): void {
    if (type === 'frame' && listener) this.#frameListeners.delete(listener);
    super.removeEventListener(type, listener, options);
  }

  /** Milliseconds of audio per model call. */
  get frameMs(): number {
    return (this.info.frameSamples * 1000) / VAD_SAMPLE_RATE;
  }

  /** Whether a segment is in progress (speech started and not yet ended). */
  get speaking(): boolean {
    return this.#speaking;
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  /**
   * Feeds audio at `info.sampleRate` (a Float32Array, any length, values in [-1, 1]); resolves
   * to the speech probability of each frame it completed, in order, after their events. Samples
   * that are NaN or infinite are refused (InvalidArgumentError, nothing consumed).
   */
  async process(samples: Float32Array): Promise<Float32Array> {
    this.#check();
    if (!(samples instanceof Float32Array)) {
      const kind = samples === null ? 'null' : typeof samples === 'object' ? (samples as object).constructor?.name : typeof samples;
      throw new InvalidArgumentError(`Vad.process takes a Float32Array of samples, got ${kind}`);
    }
    for (let i = 0; i < samples.length; i++) {
      if (!Number.isFinite(samples[i]!)) {
        throw new InvalidArgumentError(`Vad.process: sample ${i} is ${samples[i]}; samples must be finite`);
      }
    }
    return this.#enqueue(() => this.#process(samples));
  }

  /**
   * Runs `call` after the calls queued before it, however they ended; at once when none is
   * pending (on the CPU a whole `process` then runs before it returns: no await per frame).
   */
  #enqueue<T>(call: () => T | Promise<T>): Promise<T> {
    if (this.#busy === 0) {
      let now: T | Promise<T>;
      try {
        now = call();
      } catch (e) {
        return Promise.reject(e);
      }
      return now instanceof Promise ? this.#track(now) : Promise.resolve(now);
    }
    return this.#track(this.#queue.then(call, call));
  }

  #track<T>(result: Promise<T>): Promise<T> {
    this.#busy++;
    this.#queue = result.then(
      () => this.#busy--,
      () => this.#busy--,
    );
    return result;
  }

  /** The frames `samples` complete; synchronous while the model steps on the CPU. */
  #process(samples: Float32Array): Float32Array | Promise<Float32Array> {
    this.#check();
    const audio = this.#resampler.process(samples);
    const n = this.info.frameSamples;
    this.#append(audio);
    const frames = Math.floor(this.#pendingLength / n);
    const probs = new Float32Array(frames);
    let done = 0;
    // Frames that went through the model are consumed even if a later one failed.
    const consume = () => {
      this.#pending.copyWithin(0, done * n, this.#pendingLength);
      this.#pendingLength -= done * n;
    };
    try {
      for (; done < frames; done++) {
        const p = this.#frameNow(done * n);
        if (p === null) break; // WebGPU: the model's steps are Promise calls
        probs[done] = p;
      }
    } catch (e) {
      consume();
      throw e;
    }
    if (done === frames) {
      consume();
      return probs;
    }
    return (async () => {
      try {
        for (; done < frames; done++) probs[done] = await this.#frame(done * n);
      } finally {
        consume();
      }
      return probs;
    })();
  }

  #append(audio: Float32Array): void {
    if (this.#pendingLength + audio.length > this.#pending.length) {
      const grown = new Float32Array(this.#pendingLength + audio.length + this.info.frameSamples);
      grown.set(this.#pending.subarray(0, this.#pendingLength));
      this.#pending = grown;
    }
    this.#pending.set(audio, this.#pendingLength);
    this.#pendingLength += audio.length;
  }

  /**
   * One model call on the pending frame at `offset` (16 kHz, frameSamples) and the frame
   * processor's rules, done now; `null` (nothing done) where the model's steps are Promise calls.
   */
  #frameNow(offset: number): number | null {
    this.#input.set(this.#pending.subarray(offset, offset + this.info.frameSamples), this.info.contextSamples);
    const ms = this.#session._stepNow(this.#input, this.#output);
    return ms < 0 ? null : this.#stepped(offset, ms);
  }

  /** {@link #frameNow} with the step awaited. */
  async #frame(offset: number): Promise<number> {
    this.#input.set(this.#pending.subarray(offset, offset + this.info.frameSamples), this.info.contextSamples);
    const started = performance.now();
    await this.#session.step(this.#input, this.#output);
    return this.#stepped(offset, performance.now() - started);
  }

  /** The frame at `offset` has been through the model, in `ms`: its bookkeeping and rules. */
  #stepped(offset: number, ms: number): number {
    this.#latency[this.#latencyCount++ % LATENCY_WINDOW] = ms;
    const n = this.info.frameSamples;
    const ctx = this.info.contextSamples;
    if (ctx > 0) this.#input.copyWithin(0, this.#input.length - ctx);
    const frame = this.#pool.pop() ?? new Float32Array(n);
    frame.set(this.#pending.subarray(offset, offset + n));
    const p = this.#output[0]!;
    const index = this.#frames++;
    this.#rules(frame, p, index);
    return p;
  }

  /** Takes a frame back for reuse, unless the app's onFrameProcessed may be keeping it. */
  #recycle(frame: Float32Array): void {
    if (!this.#callbacks.onFrameProcessed && this.#pool.length < POOL_MAX) this.#pool.push(frame);
  }

  #time(frame: number): number {
    return (frame * this.info.frameSamples) / VAD_SAMPLE_RATE;
  }

  #emit(type: string, init: ConstructorParameters<typeof VadEvent>[1]): void {
    this.dispatchEvent(new VadEvent(type, init));
  }

  #rules(frame: Float32Array, p: number, index: number): void {
    const o = this.options;
    const cb = this.#callbacks;
    const isSpeech = p >= o.positiveSpeechThreshold;
    cb.onFrameProcessed?.({ isSpeech: p, notSpeech: 1 - p }, frame);
    if (this.#frameListeners.size > 0) this.#emit('frame', { probability: p, start: this.#time(index), end: this.#time(index + 1) });
    this.#buffer.push({ frame, isSpeech, index });
    if (isSpeech) {
      this.#speechFrames++;
      this.#redemption = 0;
    }
    if (isSpeech && !this.#speaking) {
      this.#speaking = true;
      cb.onSpeechStart?.();
      this.#emit('speechstart', { start: this.#time(this.#buffer[0]!.index), end: this.#time(index + 1) });
    }
    if (this.#speaking && this.#speechFrames === this.#minSpeechFrames && !this.#realStartFired) {
      this.#realStartFired = true;
      cb.onSpeechRealStart?.();
      this.#emit('speechrealstart', { start: this.#time(this.#buffer[0]!.index), end: this.#time(index + 1) });
    }
    if (p < o.negativeSpeechThreshold && this.#speaking && ++this.#redemption >= this.#redemptionFrames) {
      this.#redemption = 0;
      this.#speechFrames = 0;
      this.#speaking = false;
      this.#realStartFired = false;
      const buffer = this.#buffer;
      this.#buffer = [];
      this.#finish(buffer);
    }
    if (!this.#speaking) {
      while (this.#buffer.length > this.#preSpeechPadFrames) this.#recycle(this.#buffer.shift()!.frame);
      this.#speechFrames = 0;
    }
  }

  /** A segment has ended: `speechend` with its audio, or `misfire` if it had too little speech. */
  #finish(buffer: Buffered[]): void {
    if (buffer.length === 0) return;
    const start = this.#time(buffer[0]!.index);
    const end = this.#time(buffer[buffer.length - 1]!.index + 1);
    if (buffer.filter((b) => b.isSpeech).length >= this.#minSpeechFrames) {
      const n = this.info.frameSamples;
      const audio = new Float32Array(buffer.length * n);
      buffer.forEach((b, i) => audio.set(b.frame, i * n));
      this.#callbacks.onSpeechEnd?.(audio);
      this.#emit('speechend', { audio, start, end });
    } else {
      this.#callbacks.onVADMisfire?.();
      this.#emit('misfire', { start, end });
    }
    for (const b of buffer) this.#recycle(b.frame);
  }

  /**
   * Ends a segment in progress now (`speechend` or `misfire`, as vad-web's `endSegment`), then
   * resets; waits for the `process` calls made before it.
   */
  async endSegment(): Promise<void> {
    this.#check();
    return this.#enqueue(() => {
      const [speaking, buffer] = [this.#speaking, this.#buffer];
      this.#reset();
      if (speaking) this.#finish(buffer);
    });
  }

  /**
   * Back to the start: the model's state, the context, the resampler, the frame processor; no
   * event. Waits for the `process` calls made before it.
   */
  async reset(): Promise<void> {
    this.#check();
    return this.#enqueue(() => this.#reset());
  }

  #reset(): void {
    if (this.#disposed) return;
    this.#session.reset();
    this.#input.fill(0);
    this.#resampler.reset();
    this.#pendingLength = 0;
    this.#frames = 0;
    this.#speaking = false;
    this.#realStartFired = false;
    this.#redemption = 0;
    this.#speechFrames = 0;
    this.#buffer = [];
  }

  /** Milliseconds per model call (one frame) over the last 1024 frames: p50, p95 and how many. */
  latency(): { p50: number; p95: number; samples: number } {
    const n = Math.min(this.#latencyCount, LATENCY_WINDOW);
    if (n === 0) return { p50: 0, p95: 0, samples: 0 };
    const sorted = this.#latency.slice(0, n).sort();
    const at = (q: number) => sorted[Math.min(n - 1, Math.floor(q * n))]!;
    return { p50: at(0.5), p95: at(0.95), samples: n };
  }

  /** Frees the session and the model. Further calls throw DisposedError. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#session.dispose();
    this.#model.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  #check(): void {
    if (this.#disposed) throw new DisposedError('the Vad is disposed');
  }
}
