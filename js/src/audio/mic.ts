// Voice activity detection on the microphone: getUserMedia → an AudioWorklet that only captures
// (it copies the input into chunks and transfers them) → a Vad on the page's thread.
//
// Why the model runs on the page and not in the worklet: one Silero step takes a fraction of a
// millisecond per 32 ms of audio on the CPU kernels, so the page's thread is far from busy; the
// model then loads once with the app's runtime (no second wasm instance, no second copy of the
// model in the audio thread), its events fire where the app listens, and a slow step can never
// make the audio thread miss its deadline. The worklet posts every 512 input samples (10.7 ms at
// 48 kHz), so a frame waits at most that long before it is processed.

import { DisposedError, InvalidArgumentError, IoError, type Runtime } from 'webrnn';

import { Vad, checkVadOptions, type VadOptions } from './vad.js';

const PROCESSOR = 'webrnn-vad-capture';

/** The capture processor, loaded from a Blob URL (no file for the app or its bundler to serve). */
const PROCESSOR_SOURCE = `
class Capture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.size = options.processorOptions.chunk;
    this.buf = new Float32Array(this.size);
    this.n = 0;
    this.on = true;
    this.port.onmessage = (e) => { if (e.data === 'close') this.on = false; };
  }
  process(inputs) {
    const ch = inputs[0] && inputs[0][0];
    if (!this.on) return false;
    if (!ch) return true;
    let i = 0;
    while (i < ch.length) {
      const take = Math.min(ch.length - i, this.size - this.n);
      this.buf.set(ch.subarray(i, i + take), this.n);
      this.n += take; i += take;
      if (this.n === this.size) {
        this.port.postMessage(this.buf, [this.buf.buffer]);
        this.buf = new Float32Array(this.size);
        this.n = 0;
      }
    }
    return true;
  }
}
registerProcessor('${PROCESSOR}', Capture);
`;

export interface MicVadOptions extends Omit<VadOptions, 'sampleRate'> {
  /** Start listening as soon as it is created (default true, as vad-web's `startOnLoad`). */
  startOnLoad?: boolean;
  /** Input samples per message from the audio thread (default 512). */
  chunkSamples?: number;
  /** Audio constraints for getUserMedia (default: mono, echo cancellation, noise suppression, auto gain). */
  constraints?: MediaTrackConstraints;
  /** Called when processing a chunk fails (also an `error` event); default: console.error. */
  onError?: (error: unknown) => void;
}

/**
 * `const mic = await MicVad.create(rt, { model: '/silero_vad_v5.onnx', onSpeechEnd })`: the
 * microphone, a capture worklet and a Vad. `start()` and `pause()` switch listening on and off;
 * `destroy()` stops the microphone's tracks, closes the audio context (and with it the worklet)
 * and frees the Vad's model and session. Events are the Vad's (`mic.vad`).
 */
export class MicVad {
  readonly vad: Vad;
  readonly stream: MediaStream;
  readonly audioContext: AudioContext;
  #node: AudioWorkletNode;
  #source: MediaStreamAudioSourceNode;
  #listening = false;
  #destroyed = false;
  #onError: (error: unknown) => void;

  private constructor(vad: Vad, stream: MediaStream, ctx: AudioContext, node: AudioWorkletNode, source: MediaStreamAudioSourceNode, onError: (e: unknown) => void) {
    this.vad = vad;
    this.stream = stream;
    this.audioContext = ctx;
    this.#node = node;
    this.#source = source;
    this.#onError = onError;
    node.port.onmessage = (e: MessageEvent<Float32Array>) => {
      if (!this.#listening || this.#destroyed) return;
      this.vad.process(e.data).catch((error) => {
        if (!this.#destroyed) this.#onError(error);
      });
    };
  }

  static async create(rt: Runtime, options: MicVadOptions): Promise<MicVad> {
    checkVadOptions({ ...options, sampleRate: undefined }, 'MicVad.create');
    const chunk = options.chunkSamples ?? 512;
    if (!Number.isInteger(chunk) || chunk < 128 || chunk > 16384) {
      throw new InvalidArgumentError(`chunkSamples must be a whole number from 128 to 16384, got ${String(chunk)}`);
    }
    const media = (globalThis as { navigator?: Navigator }).navigator?.mediaDevices;
    if (!media?.getUserMedia || typeof AudioWorkletNode === 'undefined') {
      throw new IoError('MicVad needs getUserMedia and AudioWorklet (a secure page: https or localhost)');
    }
    const onError = options.onError ?? ((e: unknown) => console.error('webrnn MicVad:', e));
    let stream: MediaStream | undefined;
    let ctx: AudioContext | undefined;
    let vad: Vad | undefined;
    try {
      // The context first (while the page still has the user's gesture), then the model (a bad
      // one fails before the permission prompt), then the microphone.
      ctx = new AudioContext();
      vad = await Vad.create(rt, { ...options, sampleRate: ctx.sampleRate });
      stream = await media.getUserMedia({
        audio: options.constraints ?? { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
      const url = URL.createObjectURL(new Blob([PROCESSOR_SOURCE], { type: 'text/javascript' }));
      try {
        await ctx.audioWorklet.addModule(url);
      } finally {
        URL.revokeObjectURL(url);
      }
      const node = new AudioWorkletNode(ctx, PROCESSOR, {
        numberOfInputs: 1,
        numberOfOutputs: 0,
        channelCount: 1,
        channelCountMode: 'explicit',
        processorOptions: { chunk },
      });
      const source = ctx.createMediaStreamSource(stream);
      source.connect(node);
      const mic = new MicVad(vad, stream, ctx, node, source, onError);
      if (options.startOnLoad ?? true) await mic.start();
      else await ctx.suspend();
      return mic;
    } catch (e) {
      for (const t of stream?.getTracks() ?? []) t.stop();
      await ctx?.close().catch(() => undefined);
      vad?.dispose();
      if (e instanceof DOMException && (e.name === 'NotAllowedError' || e.name === 'NotFoundError')) {
        throw new IoError(`no microphone: ${e.name}: ${e.message}`, { cause: e });
      }
      throw e;
    }
  }

  /** Whether audio is being processed. */
  get listening(): boolean {
    return this.#listening;
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  /** Starts (or resumes) listening. */
  async start(): Promise<void> {
    this.#check();
    await this.audioContext.resume();
    this.#listening = true;
  }

  /**
   * Stops listening (the audio context is suspended); a segment in progress ends with
   * `speechend`/`misfire` if `submitUserSpeechOnPause`, else it is dropped and the Vad reset.
   */
  async pause(): Promise<void> {
    this.#check();
    this.#listening = false;
    await this.audioContext.suspend();
    if (this.vad.options.submitUserSpeechOnPause) await this.vad.endSegment();
    else await this.vad.reset();
  }

  /** Releases everything: the microphone's tracks, the worklet and its audio context, the Vad. */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#listening = false;
    this.#node.port.onmessage = null;
    this.#node.port.postMessage('close');
    this.#node.port.close();
    this.#source.disconnect();
    for (const t of this.stream.getTracks()) t.stop();
    try {
      await this.audioContext.close();
    } finally {
      this.vad.dispose();
    }
  }

  #check(): void {
    if (this.#destroyed) throw new DisposedError('the MicVad is destroyed');
  }
}
