// What the offline page and its service worker both compute: 12 steps of a new session.
export const MODEL = '/tests/data/golden/legacy_gru_embed_op14/model.onnx';

export async function twelveSteps(rt) {
  const s = (await rt.loadModel(MODEL)).createSession();
  const outputs = [];
  for (let t = 0; t < 12; t++) outputs.push(Array.from(await s.step(new Int32Array([(t * 7 + 3) % 37]))));
  return outputs;
}
