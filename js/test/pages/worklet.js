// An AudioWorklet processor running webrnn (see loading.js `worklet`). AudioWorkletGlobalScope
// has no fetch, URL or TextDecoder: the page passes the compiled module and the model's bytes in
// processorOptions; the processor steps a session from process() and posts the outputs.
import { Runtime } from '/pkg/webrnn.js';

const STEPS = 12;

class WebrnnProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const { module, model } = options.processorOptions;
    this.outputs = [];
    this.ready = (async () => {
      const rt = await Runtime.create({ wasmModule: module, backend: 'cpu' });
      const m = await rt.loadModel(model);
      let store = 'opened';
      try {
        await rt.openStore('worklet');
      } catch (e) {
        store = `${e.name} (${e.code})`;
      }
      this.session = m.createSession();
      this.port.postMessage({ ready: true, variant: rt.variant, store, scope: typeof TextDecoder === 'undefined' && typeof URL === 'undefined' && typeof fetch === 'undefined' });
    })().catch((e) => this.port.postMessage({ error: `${e?.name}: ${e?.message}` }));
  }

  process() {
    if (!this.session || this.outputs.length + (this.pending ?? 0) >= STEPS) return true;
    const t = this.outputs.length;
    // On the CPU a step computes during the call; its Promise settles in a microtask.
    this.pending = 1;
    this.session.step(new Int32Array([(t * 7 + 3) % 37])).then(
      (y) => {
        this.pending = 0;
        this.outputs.push(Array.from(y));
        if (this.outputs.length === STEPS) this.port.postMessage({ outputs: this.outputs });
      },
      (e) => this.port.postMessage({ error: `${e?.name}: ${e?.message}` }),
    );
    return true;
  }
}

registerProcessor('webrnn', WebrnnProcessor);
