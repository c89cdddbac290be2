// A module Worker that creates its own runtime from the options it is sent (see loading.js): a
// compiled `wasmModule` posted by the page, or a `wasmUrl` prefix or map. Replies with the variant,
// the outputs of 12 steps of the golden GRU (its bytes posted too) and the .wasm files it fetched.
import { Runtime } from '/pkg/webrnn.js';

self.onmessage = async ({ data }) => {
  try {
    const rt = await Runtime.create({ backend: 'cpu', ...data.options });
    const model = await rt.loadModel(data.model);
    const s = model.createSession();
    let y;
    for (let t = 0; t < 12; t++) y = await s.step(new Int32Array([(t * 7 + 3) % 37]));
    const fetched = performance.getEntriesByType('resource').map((e) => e.name).filter((n) => n.endsWith('.wasm'));
    self.postMessage({ variant: rt.variant, output: Array.from(y), fetched });
  } catch (e) {
    self.postMessage({ error: `${e?.name}: ${e?.message}` });
  }
};
