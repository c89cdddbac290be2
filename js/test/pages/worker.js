// The package inside a module Worker (see tests.js `worker`).
import { Runtime } from '/pkg/webrnn.js';

self.onmessage = async ({ data }) => {
  try {
    const rt = await Runtime.create();
    const model = await rt.loadModel('/tests/data/golden/legacy_gru_embed_op14/model.onnx');
    const s = model.createSession('from-worker');
    let y;
    for (let t = 0; t < data.steps; t++) y = await s.step(new Int32Array([(t * 7 + 3) % 37]));
    const store = await rt.openStore('worker');
    await store.save(s);
    self.postMessage({ output: Array.from(y), backend: rt.backend });
  } catch (e) {
    self.postMessage({ error: `${e?.name}: ${e?.message}` });
  }
};
