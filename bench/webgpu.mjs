// The WebGPU half of `cargo xtask bench`: webrnn's WebGPU backend (the npm package in pkg/, as an
// app loads it) against onnxruntime-web 1.30 with its WebGPU execution provider, in one headless
// Chromium page with the WebGPU flags of webdriver.json (SwiftShader on a machine without a GPU),
// on the ONNX models of scripts/make_bench_models.py (target/bench/models). Each model's outputs
// are checked to agree (8 streamed steps, atol 1e-4 + rtol 1e-3) before anything is timed.
// Prints a markdown table (ms per time step; batch64: per step of all 64 sessions) and writes
// bench/results-webgpu.json.
//
// Usage: node bench/webgpu.mjs   (after `cargo xtask pack` and the models; xtask bench does both)

import { existsSync, writeFileSync } from 'node:fs';
import { join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from '../js/node_modules/playwright-core/index.mjs';
import { BASE_FLAGS, WEBGPU_FLAGS } from '../xtask/e2e/chromium-flags.mjs';
import { serveStatic } from '../xtask/e2e/static-server.mjs';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const SERVED = ['pkg', 'target/bench/models', 'bench/node_modules/onnxruntime-web/dist'];
const MODELS = ['gru_h64', 'gru_h256', 'lstm_h64', 'lstm_h256'];

for (const need of ['pkg/webrnn.js', 'target/bench/models/gru_h64.onnx', SERVED[2] + '/ort.webgpu.min.mjs']) {
  if (!existsSync(join(ROOT, need))) throw new Error(`${need} is missing (run \`cargo xtask bench\`)`);
}

const { server, origin } = await serveStatic((path) => {
  const file = normalize(join(ROOT, path));
  return SERVED.some((d) => file.startsWith(join(ROOT, d) + sep)) ? file : undefined;
});

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: [...BASE_FLAGS, ...WEBGPU_FLAGS],
});
let out;
try {
  const page = await browser.newPage();
  page.on('console', (m) => m.type() === 'log' && console.log(`  ${m.text()}`));
  await page.goto(`${origin}/pkg/package.json`); // any page of the origin
  out = await page.evaluate(async (models) => {
    const { Runtime } = await import('/pkg/webrnn.js');
    const ort = await import('/bench/node_modules/onnxruntime-web/dist/ort.webgpu.min.mjs');
    ort.env.wasm.numThreads = 1;
    const rt = await Runtime.create({ backend: 'webgpu' });
    const random = (n, seed) => {
      const a = new Float32Array(n);
      let s = seed >>> 0 || 1;
      for (let i = 0; i < n; i++) {
        s = (Math.imul(s, 1103515245) + 12345) >>> 0;
        a[i] = (s / 2 ** 32) * 2 - 1;
      }
      return a;
    };
    // Median over blocks of calls (ms per call), after two warm-up calls.
    const time = async (fn, calls, blocks = 5) => {
      await fn();
      await fn();
      const samples = [];
      for (let b = 0; b < blocks; b++) {
        const t0 = performance.now();
        for (let i = 0; i < calls; i++) await fn();
        samples.push((performance.now() - t0) / calls);
      }
      return samples.sort((a, b) => a - b)[blocks >> 1];
    };
    const rows = [];
    for (const name of models) {
      const H = Number(name.split('_h')[1]);
      const lstm = name.startsWith('lstm');
      const bytes = new Uint8Array(await (await fetch(`/target/bench/models/${name}.onnx`)).arrayBuffer());
      const model = await rt.loadModel(bytes);
      const ortSession = await ort.InferenceSession.create(bytes, { executionProviders: ['webgpu'] });
      const tensor = (data, dims) => new ort.Tensor('float32', data, dims);
      const ortRun = (x, steps, batch, h, c) => {
        const feeds = { X: tensor(x, [steps, batch, H]), initial_h: tensor(h, [1, batch, H]) };
        if (lstm) feeds.initial_c = tensor(c, [1, batch, H]);
        return ortSession.run(feeds);
      };
      // Agreement first: 8 streamed steps, state carried on both sides.
      const s = model.createSession();
      let [h, c, worst] = [new Float32Array(H), new Float32Array(H), 0];
      for (let t = 0; t < 8; t++) {
        const x = random(H, t + 1);
        const [y, o] = [await s.step(x), await ortRun(x, 1, 1, h, c)];
        [h, c] = [o.Y_h.data, lstm ? o.Y_c.data : c];
        for (let i = 0; i < H; i++) {
          const d = Math.abs(y[i] - o.Y.data[i]);
          if (!(d <= 1e-4 + 1e-3 * Math.abs(o.Y.data[i]))) throw new Error(`${name}: webrnn ${y[i]} vs ORT ${o.Y.data[i]}`);
          worst = Math.max(worst, d);
        }
      }
      const row = { model: name, maxDiff: worst };
      const x1 = random(H, 99);
      row.stream = [await time(() => s.step(x1), 10), await time(() => ortRun(x1, 1, 1, h, c), 10)];
      const xs = random(256 * H, 7);
      row.seq256 = [(await time(() => s.run(xs, 256), 1, 3)) / 256, (await time(() => ortRun(xs, 256, 1, h, c), 1, 3)) / 256];
      const sessions = Array.from({ length: 64 }, () => model.createSession());
      const [xb, hb] = [random(64 * H, 5), new Float32Array(64 * H)];
      row.batch64 = [await time(() => model.stepBatch(sessions, xb), 2, 3), await time(() => ortRun(xb, 1, 64, hb, hb), 2, 3)];
      console.log(`${name}: checked (max |diff| ${worst.toExponential(1)}) and timed`);
      model.dispose();
      await ortSession.release();
      rows.push(row);
    }
    return { adapter: rt.gpuAdapter, userAgent: navigator.userAgent, rows };
  }, MODELS);
} finally {
  await browser.close();
  server.close();
}

const lines = [
  `WebGPU adapter: ${out.adapter}`,
  '',
  '| model | mode | webrnn WebGPU (ms/step) | onnxruntime-web WebGPU EP (ms/step) | webrnn / ORT |',
  '| --- | --- | ---: | ---: | ---: |',
];
for (const r of out.rows) {
  for (const mode of ['stream', 'seq256', 'batch64']) {
    const [w, o] = r[mode];
    lines.push(`| ${r.model} | ${mode} | ${w.toFixed(3)} | ${o.toFixed(3)} | ${(w / o).toFixed(2)} |`);
  }
}
console.log(lines.join('\n'));
writeFileSync(join(ROOT, 'bench/results-webgpu.json'), JSON.stringify({ date: new Date().toISOString(), ...out }, null, 1) + '\n');
console.log('bench: batch64 is per step of all 64 sessions; raw results in bench/results-webgpu.json');
