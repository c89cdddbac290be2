// Counters behind `runtime.stats()`: per-step latency over the last few thousand steps, step and
// session counts, non-finite outputs.

export interface LatencyStats {
  /** Latency of one time step of one call, in microseconds, over the last `samples` calls. */
  p50: number;
  p95: number;
  p99: number;
  samples: number;
}

const WINDOW = 4096;

/** @internal */
export class Counters {
  steps = 0;
  calls = 0;
  errors = 0;
  nonFinite = 0;
  sessions = 0;
  models = 0;
  stateBytes = 0;
  #latency = new Float64Array(WINDOW);
  #filled = 0;
  #next = 0;

  /** One successful call of `steps` time steps that took `ms` milliseconds. */
  record(ms: number, steps: number, output: Float32Array): void {
    this.calls++;
    this.steps += steps;
    this.#latency[this.#next] = (ms * 1000) / Math.max(1, steps);
    this.#next = (this.#next + 1) % WINDOW;
    this.#filled = Math.min(WINDOW, this.#filled + 1);
    for (let i = 0; i < output.length; i++) {
      if (!Number.isFinite(output[i]!)) this.nonFinite++;
    }
  }

  latency(): LatencyStats {
    const n = this.#filled;
    if (n === 0) return { p50: 0, p95: 0, p99: 0, samples: 0 };
    const sorted = this.#latency.slice(0, n).sort();
    const at = (q: number) => sorted[Math.min(n - 1, Math.floor(q * n))]!;
    return { p50: at(0.5), p95: at(0.95), p99: at(0.99), samples: n };
  }
}

export const now: () => number =
  typeof performance !== 'undefined' ? () => performance.now() : () => Date.now();
