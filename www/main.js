// The demo imports the package exactly as a user of `wasm-pack build --target web` would.
import init, { Model } from '/pkg/webrnn.js';

const STEPS = 16;
const TOP_K = 3;

const $ = (id) => document.getElementById(id);

function setStatus(status, text) {
  document.body.dataset.status = status;
  $('status').textContent = text;
}

function describeModel(info) {
  const tensor = ({ name, dtype, shape }) =>
    `  ${name}: ${dtype} [${shape.map((d) => d ?? '?').join(', ')}]`;
  const layer = ({ op, hidden_size, direction }) =>
    `  ${op}, hidden ${hidden_size}, ${direction}`;
  return [
    'layers:', ...info.layers.map(layer),
    'inputs:', ...info.inputs.map(tensor),
    'outputs:', ...info.outputs.map(tensor),
    `fingerprint: ${info.fingerprint}`,
  ].join('\n');
}

// A deterministic input for step t: token ids for embedding models, a sine wave otherwise.
function stepInput(model, t) {
  const n = model.inputSize();
  if (model.inputIsTokens()) {
    return Int32Array.from({ length: n }, (_, i) => (t + i) % 4);
  }
  return Float32Array.from({ length: n }, (_, i) => Math.sin(0.3 * t + 0.1 * i));
}

function topK(values, k) {
  return Array.from(values.keys())
    .sort((a, b) => values[b] - values[a])
    .slice(0, k)
    .map((index) => `#${index} ${values[index].toFixed(4)}`);
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function main() {
  await init();
  const response = await fetch('model.onnx');
  if (!response.ok) {
    throw new Error(`model.onnx: HTTP ${response.status}`);
  }
  const model = Model.fromOnnx(new Uint8Array(await response.arrayBuffer()));
  $('info').textContent = describeModel(JSON.parse(model.info()));

  setStatus('running', `Running ${STEPS} steps…`);
  const session = model.createSession();
  const tokens = model.inputIsTokens();
  const latencies = [];
  let output;
  for (let t = 0; t < STEPS; t++) {
    const input = stepInput(model, t);
    const start = performance.now();
    output = tokens ? session.stepTokens(input) : session.step(input);
    latencies.push(performance.now() - start);
  }
  session.free();
  model.free();

  $('prediction').textContent =
    `top-${TOP_K} of ${output.length} outputs after ${STEPS} steps: ${topK(output, TOP_K).join(', ')}`;
  $('latency').textContent =
    `step latency: median ${median(latencies).toFixed(3)} ms, first ${latencies[0].toFixed(3)} ms`;
  setStatus('ok', 'Done.');
}

main().catch((error) => {
  console.error(error);
  $('error').textContent = error instanceof Error ? error.message : String(error);
  setStatus('error', 'Failed.');
});
