// Cold start, webrnn vs onnxruntime-web: from navigation to the first output of the same model
// (tests/data/golden/legacy_gru_embed_op14), each run in a fresh headless-Chromium context (no
// HTTP or compiled-code cache), served from 127.0.0.1, so the times are mostly fetch + compile +
// model load. Also the gzipped bytes each library makes a page download.
//
//   (cd js/bench && npm ci) && node js/bench/coldstart.mjs [RUNS]
// onnxruntime-web runs its wasm backend single-threaded (the page is not cross-origin isolated).

import { readFileSync } from 'node:fs';
import { join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

import { chromium } from '../node_modules/playwright-core/index.mjs';
import { BASE_FLAGS } from '../../xtask/e2e/chromium-flags.mjs';
import { serveStatic } from '../../xtask/e2e/static-server.mjs';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const ORT = join(ROOT, 'js/bench/node_modules/onnxruntime-web/dist');
const RUNS = Number(process.argv[2] ?? 7);

const served = new Map(); // path → bytes sent, per page load
function resolvePath(path) {
  if (path.startsWith('/ort/')) return join(ORT, path.slice(5));
  const file = normalize(join(ROOT, path));
  const ok = ['pkg', 'tests/data', 'js/bench/pages'].some((d) => file.startsWith(join(ROOT, d) + sep));
  return ok ? file : undefined;
}
const { server, origin } = await serveStatic(resolvePath, (path, file) => served.set(path, file));

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: [...BASE_FLAGS, '--disable-gpu'],
});
const runs = { webrnn: [], ort: [] };
const downloads = {};
for (let i = 0; i < RUNS; i++) {
  for (const lib of i % 2 ? ['ort', 'webrnn'] : ['webrnn', 'ort']) {
    const context = await browser.newContext();
    const page = await context.newPage();
    served.clear();
    await page.goto(`${origin}/js/bench/pages/coldstart.html?lib=${lib}`);
    const result = await page.waitForFunction(() => window.result, null, { timeout: 60000 }).then((h) => h.jsonValue());
    await context.close();
    if (result.error) throw new Error(`${lib}: ${result.error}`);
    runs[lib].push(result);
    downloads[lib] = [...served.entries()].filter(([p]) => !p.startsWith('/tests/') && !p.startsWith('/js/'))
      .map(([p, f]) => [p, gzipSync(readFileSync(f), { level: 9 }).length]);
  }
}
await browser.close();
server.close();

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`cold start to first output, median of ${RUNS} fresh contexts (ms since navigation):`);
console.log('library          imported  ready/model  first output   downloads (gzip)');
for (const lib of ['webrnn', 'ort']) {
  const r = runs[lib];
  const kb = downloads[lib].reduce((a, [, n]) => a + n, 0) / 1024;
  console.log(
    `${(lib === 'ort' ? 'onnxruntime-web' : 'webrnn').padEnd(16)} ${median(r.map((x) => x.imported)).toFixed(1).padStart(8)}` +
      `  ${median(r.map((x) => x.model)).toFixed(1).padStart(11)}  ${median(r.map((x) => x.first_output)).toFixed(1).padStart(12)}` +
      `   ${kb.toFixed(0)} KiB (${downloads[lib].map(([p]) => p.split('/').pop()).join(', ')})`,
  );
}
