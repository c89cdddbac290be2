// The package as apps consume it (run by `cargo xtask test` after `pack`): `npm pack pkg/`, the
// tarball installed into this folder, the app of shared/app.js built by each bundler, every build
// opened in headless Chromium (playwright-core driving /usr/bin/chromium, never a downloaded
// browser) and a golden GRU streamed through sessions of the bundled runtime; the esbuild app under
// a CSP with and without 'wasm-unsafe-eval'; wasmUrl answering 404 and HTML; then tsc on a
// consumer under moduleResolution bundler and node16, and Node 20 importing the tarball installed
// in a directory outside the repository.
//
//   vite build, vite dev      no config (Vite's root is this folder)
//   webpack, webpack-next     webpack/webpack.config.mjs (defaults; Next.js's output layout)
//   rollup                    rollup/rollup.config.mjs (node-resolve + import-meta-assets)
//   esbuild                   bundle, then the .wasm files copied beside it (esbuild copies no assets)
//   plain                     plain/index.html: <script type="module"> and an import map, no build
//
// Usage: node js/test/apps/run.mjs [--only NAME]   (CHROMIUM=path overrides the browser)

import { copyFileSync, cpSync, createReadStream, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { chromium } from 'playwright-core';
import { BASE_FLAGS } from '../../../xtask/e2e/chromium-flags.mjs';
import { check, finish, run as runIn } from '../harness.mjs';

const APPS = fileURLToPath(new URL('.', import.meta.url));
const ROOT = resolve(APPS, '../../..');
const TEST = join(ROOT, 'js/test');
const GOLDEN = join(ROOT, 'tests/data/golden');
const OUT = join(APPS, 'out');
const CASE = 'legacy_gru_embed_op14';
const TSC = join(ROOT, 'js/node_modules/.bin/tsc');
const TYPES = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html', '.json': 'application/json' };

const run = (command, args, options = {}) => runIn(command, args, { cwd: ROOT, ...options });

const npm = (args, cwd) => run('npm', [...args, '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], { cwd });

/** The tarball of pkg/ as `npm pack` makes it; checks what it holds. */
function packTarball() {
  const dest = join(ROOT, 'target/apps');
  rmSync(dest, { recursive: true, force: true });
  mkdirSync(dest, { recursive: true });
  const [info] = JSON.parse(run('npm', ['pack', join(ROOT, 'pkg'), '--pack-destination', dest, '--json', '--loglevel=error']));
  const files = info.files.map((f) => f.path);
  const manifest = JSON.parse(readFileSync(join(ROOT, 'pkg/package.json'), 'utf8'));
  const wasm = manifest.files.filter((f) => f.endsWith('.wasm'));
  const want = ['package.json', 'README.md', 'LICENSE-MIT', 'LICENSE-APACHE', 'webrnn.js', 'webrnn.node.js', 'webrnn.d.ts', ...wasm];
  const missing = want.filter((f) => !files.includes(f));
  if (missing.length) throw new Error(`the tarball lacks ${missing.join(', ')}`);
  const root = manifest.exports['.'];
  if (Object.keys(root)[0] !== 'types') throw new Error(`exports["."] does not list types first: ${Object.keys(root)}`);
  if (!root.node || !root.browser || !root.default || !manifest.exports['./*.wasm']) {
    throw new Error(`exports lack node/browser/default/./*.wasm: ${JSON.stringify(manifest.exports)}`);
  }
  for (const entry of new Set([root.browser, root.default])) {
    const js = readFileSync(join(ROOT, 'pkg', entry), 'utf8');
    if (/["']node:/.test(js)) throw new Error(`${entry}, a browser entry, imports a node: built-in`);
  }
  // webrnn/audio: its own conditional export; its browser file imports the runtime from beside it.
  const audio = manifest.exports['./audio'];
  if (!audio || Object.keys(audio)[0] !== 'types' || !audio.node || !audio.browser) {
    throw new Error(`exports["./audio"]: ${JSON.stringify(audio)}`);
  }
  const lacking = [audio.types, audio.node, audio.browser].map((f) => f.replace(/^\.\//, '')).filter((f) => !files.includes(f));
  if (lacking.length) throw new Error(`the tarball lacks ${lacking.join(', ')}`);
  const audioJs = readFileSync(join(ROOT, 'pkg', audio.browser), 'utf8');
  if (/["']node:/.test(audioJs) || !audioJs.includes('from"./webrnn.js"')) {
    throw new Error(`${audio.browser} must import ./webrnn.js and no node: built-in`);
  }
  const literal = (f) => readFileSync(join(ROOT, 'pkg', root.browser), 'utf8').includes(`new URL("./${f}",import.meta.url)`);
  const computed = wasm.filter((f) => !literal(f));
  if (computed.length) throw new Error(`no fixed-string new URL('./<file>', import.meta.url) for ${computed.join(', ')}`);
  return { tarball: join(dest, info.filename), summary: `${info.filename}: ${files.length} files, ${(info.size / 1024).toFixed(0)} KiB` };
}

/** The builds; each returns the page to open (a path under js/test, served by `serve`). */
const BUILDS = {
  async 'vite build'() {
    const { build } = await import('vite');
    await build({ root: APPS, configFile: false, logLevel: 'warn', build: { outDir: join(OUT, 'vite'), emptyOutDir: true } });
    // Vite's default base is '/': the build is served at the root of its own origin.
    const site = await serve([['/', join(OUT, 'vite')]]);
    servers.push(site);
    return `http://127.0.0.1:${site.address().port}/index.html`;
  },
  async webpack() {
    const { default: webpack } = await import('webpack');
    const { default: configs } = await import(pathToFileURL(join(APPS, 'webpack/webpack.config.mjs')).href);
    const stats = await new Promise((ok, fail) => webpack(configs, (e, s) => (e ? fail(e) : ok(s))));
    if (stats.hasErrors()) throw new Error(stats.toString({ all: false, errors: true }));
    copyFileSync(join(APPS, 'shared/bundle.html'), join(OUT, 'webpack/index.html'));
    // Next.js serves pages from the root and the build under /_next/.
    copyFileSync(join(APPS, 'webpack/next.html'), join(OUT, 'webpack-next/index.html'));
    const next = readFileSync(join(OUT, 'webpack-next/_next/static/chunks/app.js'), 'utf8');
    if (!next.includes('file:///')) throw new Error('webpack did not rewrite import.meta.url to a file: URL');
    return '/apps/out/webpack/index.html';
  },
  async rollup() {
    const { rollup } = await import('rollup');
    const { default: config } = await import(pathToFileURL(join(APPS, 'rollup/rollup.config.mjs')).href);
    const bundle = await rollup({ ...config, onwarn: (w) => console.log(`    rollup: ${w.message}`) });
    await bundle.write(config.output);
    await bundle.close();
    copyFileSync(join(APPS, 'shared/bundle.html'), join(OUT, 'rollup/index.html'));
    return '/apps/out/rollup/index.html';
  },
  async esbuild() {
    const esbuild = await import('esbuild');
    const dir = join(OUT, 'esbuild');
    const { metafile } = await esbuild.build({
      entryPoints: [join(APPS, 'shared/app.js')],
      bundle: true,
      format: 'esm',
      outdir: dir,
      logLevel: 'warning',
      metafile: true,
    });
    // The installed tarball, not the repository's pkg/ (a tsconfig's `paths` above the apps would
    // redirect esbuild there: js/test/apps/tsconfig.json stops the search).
    const inputs = Object.keys(metafile.inputs).filter((f) => /webrnn[^/]*\.js$/.test(f));
    if (!inputs.length || inputs.some((f) => !f.includes('node_modules/webrnn/'))) {
      throw new Error(`esbuild bundled ${inputs.join(', ')}, not the installed package`);
    }
    // esbuild leaves new URL('./x.wasm', import.meta.url) as it is: the files go beside the bundle.
    const pkg = join(APPS, 'node_modules/webrnn');
    for (const f of readdirSync(pkg).filter((f) => f.endsWith('.wasm'))) copyFileSync(join(pkg, f), join(dir, f));
    copyFileSync(join(APPS, 'shared/bundle.html'), join(dir, 'index.html'));
    return '/apps/out/esbuild/index.html';
  },
};

/**
 * A static server of `mounts` ([URL prefix, folder], first match wins). The main one serves
 * js/test (the apps, their builds, pages/golden.js) and /golden/ = tests/data/golden.
 */
function serve(mounts) {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const [prefix, dir] = mounts.find(([prefix]) => path.startsWith(prefix));
    const file = normalize(join(dir, path.slice(prefix.length)));
    let size = -1;
    try {
      size = file.startsWith(dir + sep) && statSync(file).isFile() ? statSync(file).size : -1;
    } catch {
      // not found
    }
    // The pages of the other origins (Vite's) fetch the golden files and golden.js from here.
    const cors = { 'Access-Control-Allow-Origin': '*', 'Cache-Control': 'no-store' };
    if (req.method !== 'GET' || size < 0) {
      res.writeHead(404, cors).end();
      return;
    }
    // ?csp=wasm: the page's script-src allows 'self' and 'wasm-unsafe-eval'; ?csp=strict: 'self' only.
    const csp = new URL(req.url, 'http://x').searchParams.get('csp');
    const policy = csp && extname(file) === '.html' ? { 'Content-Security-Policy': `script-src 'self'${csp === 'wasm' ? " 'wasm-unsafe-eval'" : ''}` } : {};
    res.writeHead(200, { ...cors, ...policy, 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream', 'Content-Length': size });
    createReadStream(file).pipe(res);
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok(server)));
}

/** Opens `url`, waits for the app's verdict, then streams the golden GRU through its runtime. */
async function openApp(browser, url, origin) {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const failed = [];
  page.on('response', (r) => r.status() >= 400 && failed.push(`${r.status()} ${r.url()}`));
  try {
    await page.goto(url);
    await page.waitForFunction(() => document.body?.dataset.status, null, { timeout: 20_000 });
    const [status, result] = await page.evaluate(() => [document.body.dataset.status, document.body.dataset.result]);
    if (status !== 'ok') throw new Error(`${result} (HTTP errors: ${failed.join(', ') || 'none'})`);
    const info = JSON.parse(result);
    const golden = await page.evaluate(
      async ([origin, name]) => {
        const { checkGolden } = await import(`${origin}/pages/golden.js`);
        const { rt } = await window.webrnnApp;
        const data = new URL('/golden/', origin);
        const read = async (u) => new Uint8Array(await (await fetch(u)).arrayBuffer());
        const meta = JSON.parse(new TextDecoder().decode(await read(new URL(`${name}/case.json`, data))));
        return checkGolden(rt, data, name, meta, read);
      },
      [origin, CASE],
    );
    if (!golden.sessions || !(golden.maxErr <= 1e-4)) throw new Error(`golden: ${JSON.stringify(golden)}`);
    if (errors.length) throw new Error(`page errors: ${errors.join(' | ')}`);
    return `${info.variant} on ${info.backend}, ${CASE} max |diff| ${golden.maxErr.toExponential(1)}, compiled ${info.compiled.join(' ')}; WebGPU build ${info.gpuBuild} instantiated`;
  } finally {
    await page.close();
  }
}

/** The error an app page ends with (it must end with one). */
async function appError(browser, url) {
  const page = await browser.newPage();
  try {
    await page.goto(url);
    await page.waitForFunction(() => document.body?.dataset.status, null, { timeout: 20_000 });
    const [status, result] = await page.evaluate(() => [document.body.dataset.status, document.body.dataset.result]);
    if (status !== 'error') throw new Error(`${url}: expected an error, got ${status}: ${result}`);
    return result;
  } finally {
    await page.close();
  }
}

/** A page whose wasmUrl answers 404 or HTML must fail with an IoError naming the URL and the option. */
async function badWasmUrl(browser, origin, wasmUrl, expect) {
  const result = await appError(browser, `${origin}/apps/plain/index.html?wasmUrl=${encodeURIComponent(wasmUrl)}`);
  const url = new URL(wasmUrl, origin).href;
  if (!result.startsWith('IoError:') || !result.includes(url) || !result.includes('wasmUrl') || !result.includes(expect)) {
    throw new Error(`expected an IoError naming ${url}, "${expect}" and wasmUrl; got ${result}`);
  }
  return result.slice(0, 120) + '…';
}

console.log('js apps tests:');
let tarball;
await check('npm pack pkg/: files and exports', () => {
  const packed = packTarball();
  tarball = packed.tarball;
  return packed.summary;
});
if (!tarball) process.exit(1);
await check('npm install of the tarball', () => {
  npm(['install', '--no-save', tarball], APPS);
  return JSON.parse(readFileSync(join(APPS, 'node_modules/webrnn/package.json'), 'utf8')).version;
});
rmSync(OUT, { recursive: true, force: true });
mkdirSync(OUT, { recursive: true });
const servers = [];
const pages = { plain: '/apps/plain/index.html' };
for (const [name, build] of Object.entries(BUILDS)) {
  await check(`build: ${name}`, async () => {
    pages[name] = await build();
    if (name === 'webpack') pages['webpack (Next.js layout)'] = '/apps/out/webpack-next/index.html';
  });
}

const server = await serve([
  ['/golden/', GOLDEN],
  ['/', TEST],
]);
servers.push(server);
const origin = `http://127.0.0.1:${server.address().port}`;
let vite;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: [...BASE_FLAGS, '--disable-gpu'],
});
try {
  for (const [name, path] of Object.entries(pages)) {
    await check(`chromium: ${name}`, () => openApp(browser, new URL(path, origin).href, origin));
  }
  await check('chromium: vite dev server (no config)', async () => {
    const { createServer: createVite } = await import('vite');
    // A fresh dependency cache, as on a first `vite dev`.
    rmSync(join(APPS, 'node_modules/.vite'), { recursive: true, force: true });
    vite = await createVite({ root: APPS, configFile: false, logLevel: 'warn', server: { host: '127.0.0.1', port: 0 } });
    await vite.listen();
    const devUrl = vite.resolvedUrls.local[0];
    const detail = await openApp(browser, `${devUrl}index.html`, origin);
    const prebundled = readdirSync(join(APPS, 'node_modules/.vite/deps')).some((f) => f.startsWith('webrnn'));
    return `${detail}; webrnn pre-bundled: ${prebundled}`;
  });
  // The esbuild app has no inline script, so script-src 'self' lets it run.
  await check("chromium: CSP script-src 'self' 'wasm-unsafe-eval'", () => openApp(browser, `${origin}${pages.esbuild}?csp=wasm`, origin));
  await check("chromium: CSP without 'wasm-unsafe-eval': a typed error naming it", async () => {
    const result = await appError(browser, `${origin}${pages.esbuild}?csp=strict`);
    if (!result.startsWith('BackendUnavailableError:') || !result.includes('Content Security Policy') || !result.includes("'wasm-unsafe-eval'")) {
      throw new Error(`expected a BackendUnavailableError naming the CSP and 'wasm-unsafe-eval', got ${result}`);
    }
    return result.slice(0, 140) + '…';
  });
  await check('chromium: wasmUrl answering 404', () => badWasmUrl(browser, origin, '/apps/nowhere/', 'HTTP 404'));
  await check('chromium: wasmUrl answering HTML', () => badWasmUrl(browser, origin, '/apps/plain/index.html', 'HTML'));
} finally {
  await vite?.close();
  await browser.close();
  servers.forEach((s) => s.close());
}

await check('tsc: a consumer under moduleResolution bundler', () => run(TSC, ['-p', join(APPS, 'tsc/bundler/tsconfig.json')]));
await check('tsc: a consumer under moduleResolution node16', () => run(TSC, ['-p', join(APPS, 'tsc/node16/tsconfig.json')]));
await check('node 20: the tarball installed outside the repository', () => {
  const dir = mkdtempSync(join(tmpdir(), 'webrnn-node-'));
  try {
    cpSync(join(APPS, 'node/check.mjs'), join(dir, 'check.mjs'));
    run('npm', ['init', '-y', '--loglevel=error'], { cwd: dir });
    npm(['install', tarball], dir);
    const args = [pathToFileURL(GOLDEN + '/').href, pathToFileURL(join(TEST, 'pages/golden.js')).href];
    const out = JSON.parse(run(process.execPath, ['check.mjs', ...args], { cwd: dir }).split('\n').pop());
    const want = pathToFileURL(join(realpathSync(dir), 'node_modules/webrnn/webrnn.node.js')).href;
    if (out.resolved !== want) throw new Error(`'webrnn' resolved to ${out.resolved}, not ${want}`);
    if (!(out.maxErr <= 1e-4)) throw new Error(`golden: max |diff| ${out.maxErr}`);
    return `${out.variant} on ${out.backend}, max |diff| ${out.maxErr.toExponential(1)}, compiled ${out.compiled.join(' ')}; ${out.resolved}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

finish('js apps tests');
