// Streaming sample-rate conversion to the rate a model wants (Silero: 16 kHz), for any input rate.
//
// A windowed-sinc interpolator: output sample n sits at input position n·in/out, computed in whole
// numbers (the rates reduced by their gcd), so the output does not depend on how the input is cut
// into chunks. The low-pass cut-off is 0.45 of the lower rate (a little under its Nyquist), the
// kernel spans 16 zero crossings each side, shaped by a Blackman window; each phase's taps are
// normalised to sum 1 (a constant stays exactly constant). Equal rates copy the samples as they are.

import { InvalidArgumentError } from 'webrnn';

const ZERO_CROSSINGS = 16;
/** Phase tables are precomputed up to this many phases (44.1 → 16 kHz has 160), else computed per sample. */
const MAX_TABLE_PHASES = 1024;

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Checks a sample rate: a whole number of Hz in [1000, 768000]; `what` names it in the error. */
export function checkRate(rate: unknown, what: string): number {
  if (typeof rate !== 'number' || !Number.isInteger(rate) || rate < 1000 || rate > 768000) {
    throw new InvalidArgumentError(`${what} must be a whole number of Hz from 1000 to 768000, got ${String(rate)}`);
  }
  return rate;
}

export class Resampler {
  readonly inputRate: number;
  readonly outputRate: number;
  /** Output n sits at input position n·num/den (the rates divided by their gcd). */
  readonly #num: number;
  readonly #den: number;
  /** Taps each side of the centre, in input samples. */
  readonly #half: number;
  readonly #cutoff: number;
  /** [phase][2·half] taps, when the phases are few enough to precompute. */
  readonly #table: Float32Array[] | null;
  /** Input not yet consumed, with `#half` samples of history before the next output's centre. */
  #buf: Float32Array;
  #len = 0;
  /** The next output's position within `#buf`: integer part and fraction `#frac / #den`. */
  #pos: number;
  #frac = 0;

  constructor(inputRate: number, outputRate: number) {
    this.inputRate = checkRate(inputRate, 'the input sample rate');
    this.outputRate = checkRate(outputRate, 'the output sample rate');
    const g = gcd(inputRate, outputRate);
    this.#num = inputRate / g; // input samples advanced per `#den` outputs
    this.#den = outputRate / g;
    this.#cutoff = (0.9 * Math.min(inputRate, outputRate)) / inputRate; // of the input's Nyquist
    this.#half = Math.ceil(ZERO_CROSSINGS / this.#cutoff);
    this.#table = null;
    if (this.#den <= MAX_TABLE_PHASES && inputRate !== outputRate) {
      this.#table = Array.from({ length: this.#den }, (_, p) => this.#taps(p / this.#den));
    }
    // Zeros stand for the input before the first sample, so the first output is at input 0.
    this.#buf = new Float32Array(4096);
    this.#len = this.#half;
    this.#pos = this.#half;
  }

  /**
   * Input samples an output waits for beyond its own time (the filter's look-ahead); the output
   * itself is aligned: output n is the signal at time n / outputRate.
   */
  get lookahead(): number {
    return this.inputRate === this.outputRate ? 0 : this.#half;
  }

  /** Back to the state of a new resampler. */
  reset(): void {
    this.#buf.fill(0);
    this.#len = this.#half;
    this.#pos = this.#half;
    this.#frac = 0;
  }

  /**
   * Converts the next chunk of input; returns the output samples it completes (at equal rates,
   * `input` itself).
   */
  process(input: Float32Array): Float32Array {
    if (this.inputRate === this.outputRate) return input;
    this.#append(input);
    const half = this.#half;
    // Outputs whose kernel lies wholly inside what has arrived.
    const out: number[] = [];
    while (this.#pos + half < this.#len) {
      const taps = this.#table ? this.#table[this.#frac]! : this.#taps(this.#frac / this.#den);
      const start = this.#pos - half + 1;
      let acc = 0;
      for (let k = 0; k < taps.length; k++) acc += taps[k]! * this.#buf[start + k]!;
      out.push(acc);
      this.#frac += this.#num;
      this.#pos += Math.floor(this.#frac / this.#den);
      this.#frac %= this.#den;
    }
    // Drop what no later output reads.
    const keep = this.#pos - half + 1;
    if (keep > 0) {
      this.#buf.copyWithin(0, keep, this.#len);
      this.#len -= keep;
      this.#pos -= keep;
    }
    return Float32Array.from(out);
  }

  #append(input: Float32Array): void {
    if (this.#len + input.length > this.#buf.length) {
      const grown = new Float32Array(Math.max(this.#buf.length * 2, this.#len + input.length));
      grown.set(this.#buf.subarray(0, this.#len));
      this.#buf = grown;
    }
    this.#buf.set(input, this.#len);
    this.#len += input.length;
  }

  /**
   * The 2·half taps for an output at fraction `f` past input sample `pos`: tap k weighs input
   * `pos - half + 1 + k`, at distance `(k - half + 1) - f` from the output.
   */
  #taps(f: number): Float32Array {
    const half = this.#half;
    const c = this.#cutoff;
    const taps = new Float32Array(2 * half);
    let sum = 0;
    for (let k = 0; k < 2 * half; k++) {
      const x = k - half + 1 - f;
      const t = x / half; // -1..1 over the window
      if (Math.abs(t) >= 1) continue;
      const window = 0.42 + 0.5 * Math.cos(Math.PI * t) + 0.08 * Math.cos(2 * Math.PI * t);
      const arg = Math.PI * c * x;
      const sinc = x === 0 ? 1 : Math.sin(arg) / arg;
      taps[k] = c * sinc * window;
      sum += taps[k]!;
    }
    for (let k = 0; k < taps.length; k++) taps[k] = taps[k]! / sum;
    return taps;
  }
}
