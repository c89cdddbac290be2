// Node 20 with the installed tarball: run.mjs copies this file into a fresh directory outside the
// repository, runs `npm install <tarball>` there and then this. It imports the package by its name
// (the `node` condition of its exports), streams a golden GRU through sessions from the files and
// prints what it found.
//
//   node check.mjs <tests/data/golden/ as a file: URL> <js/test/pages/golden.js as a file: URL>

import { readFile } from 'node:fs/promises';

import { BackendUnavailableError, Runtime, VARIANTS } from 'webrnn';

const [golden, checker] = process.argv.slice(2).map((u) => new URL(u));
const { checkGolden } = await import(checker.href);
const read = async (url) => new Uint8Array(await readFile(url));
const CASE = 'legacy_gru_embed_op14';

const rt = await Runtime.create();
const meta = JSON.parse(new TextDecoder().decode(await read(new URL(`${CASE}/case.json`, golden))));
const result = await checkGolden(rt, golden, CASE, meta, read);
const compiled = [];
for (const v of VARIANTS) {
  try {
    if ((await Runtime.compile({ variant: v.name })) instanceof WebAssembly.Module) compiled.push(v.name);
  } catch (e) {
    // Node 20's V8 does not validate relaxed SIMD: the variant is not for this engine.
    if (!(e instanceof BackendUnavailableError)) throw e;
    compiled.push(`(${v.name}: ${e.message})`);
  }
}
// The WebGPU build (its glue is webrnn_gpu.js, imported dynamically) instantiates in Node too.
const gpuBuild = await Runtime.create({ backend: 'cpu', variant: 'gpu-simd128' });
if (!gpuBuild.build.gpu) throw new Error('variant gpu-simd128 loaded a build without the GPU backend');
compiled.push(`${gpuBuild.variant} instantiated`);
console.log(
  JSON.stringify({ resolved: import.meta.resolve('webrnn'), variant: rt.variant, backend: rt.backend, maxErr: result.maxErr, compiled }),
);
