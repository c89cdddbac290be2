// The app every bundler builds (js/test/apps/run.mjs): it imports the installed package by its
// name, creates a runtime and compiles every shipped wasm variant from the URL the bundle gives it,
// so a variant the bundler did not copy (or serves as HTML) fails here, and instantiates a WebGPU
// build (whose glue the bundler must have kept as a chunk); it imports webrnn/audio too. The verdict goes to
// <body data-status> (`ok` or `error`) and data-result. The harness then streams a golden GRU
// through sessions of this runtime (window.webrnnApp), with the test's own golden.js.
//
// ?wasmUrl=...: passed to Runtime.create and Runtime.compile.

import { InvalidArgumentError, Runtime, VARIANTS } from 'webrnn';
import { Resampler } from 'webrnn/audio';

async function main() {
  const params = new URLSearchParams(location.search);
  const options = params.has('wasmUrl') ? { wasmUrl: params.get('wasmUrl') } : {};
  const rt = await Runtime.create({ backend: 'cpu', ...options });
  const compiled = [];
  for (const v of VARIANTS) {
    const module = await Runtime.compile({ variant: v.name, ...options });
    if (!(module instanceof WebAssembly.Module)) throw new Error(`Runtime.compile(${v.name}) gave ${module}`);
    compiled.push(v.name);
  }
  // The WebGPU build's glue is a module of its own (webrnn_gpu.js, imported dynamically): the
  // bundler must have made it a chunk. Instantiated here on the CPU backend (no adapter needed).
  const gpuBuild = await Runtime.create({ backend: 'cpu', variant: 'gpu-simd128', ...options });
  if (!gpuBuild.build.gpu) throw new Error(`variant gpu-simd128 loaded a build without the GPU backend`);
  // webrnn/audio resolves, and shares the main entry's module (its errors are the same classes).
  try {
    new Resampler(0, 16000);
    throw new Error('webrnn/audio: Resampler took rate 0');
  } catch (e) {
    if (!(e instanceof InvalidArgumentError)) throw new Error(`webrnn/audio: not the main entry's InvalidArgumentError: ${e}`);
  }
  return { rt, info: { variant: rt.variant, backend: rt.backend, compiled, gpuBuild: gpuBuild.variant } };
}

window.webrnnApp = main();
window.webrnnApp.then(
  ({ info }) => {
    document.body.dataset.result = JSON.stringify(info);
    document.body.dataset.status = 'ok';
  },
  (e) => {
    document.body.dataset.result = `${e?.name}: ${e?.message}`;
    document.body.dataset.status = 'error';
  },
);
