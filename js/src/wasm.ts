// Loads the wasm module: at most one instance of each kind per JS realm (page, worker or Node
// process). `cargo xtask pack` ships CPU-only builds (variants: base, simd128, relaxed-simd...,
// without wgpu and the WebGPU bindings) and WebGPU builds (gpu-simd128, gpu-relaxed-simd: the same
// CPU kernels plus the GPU backend), and writes their list, fastest first, into the generated
// module `webrnn-variants`, each with its URL as a fixed string
// `new URL('./<file>.wasm', import.meta.url)`: the pattern bundlers (Vite, webpack, Parcel) follow
// to copy assets, so every variant reaches the app's output. A CPU page fetches one CPU build and
// never the GPU code: the WebGPU builds' glue is a separate module (`webrnn_gpu.js`, imported
// dynamically) fetched with its wasm only when a runtime takes a WebGPU adapter. The loader takes
// the first variant of the kind whose features the engine validates (wasm-feature-detect compiles
// a tiny probe module with `WebAssembly.validate`).

import * as cpuGlue from 'webrnn-wasm';
import { SHIPPED } from 'webrnn-variants';
import { relaxedSimd, simd } from 'wasm-feature-detect';

import { BackendUnavailableError, InvalidArgumentError, IoError, guard } from './errors.js';
import { Utf8Decoder, isUrl } from './utf8.js';

/** @internal The wasm-bindgen bindings of one build (both kinds export the same API). */
export type Glue = typeof cpuGlue;

export interface WasmVariant {
  name: string;
  /** The file in the package, next to webrnn.js. */
  file: string;
  /** WebAssembly features it needs: `simd128`, `relaxed-simd`. */
  features: string[];
  /** Whether the build has the WebGPU backend (else it is CPU-only and smaller). */
  gpu: boolean;
}

/** What the loaded wasm build contains (from the Rust side). */
export interface BuildInfo {
  version: string;
  simd128: boolean;
  relaxed_simd: boolean;
  /** The kernels behind the `cpu` backend: `cpu` (SIMD) or `cpu-scalar`. */
  cpu: string;
  /** Whether the build has a GPU backend. */
  gpu: boolean;
  snapshot_version: number;
}

/**
 * Where the .wasm files are: one URL (used whatever the variant), a prefix ending in `/` (a
 * directory holding the package's .wasm files under their own names), or a map from variant name
 * to URL (the loader picks the fastest variant of the map that the engine validates). Relative
 * URLs resolve against the page or worker (the working directory in Node).
 */
export type WasmUrl = string | URL | Readonly<Record<string, string | URL>>;

export interface WasmOptions {
  /** Which variant to load (its name); default: the fastest of the kind needed that the engine validates. */
  variant?: string;
  /** Where the .wasm files are, when not next to webrnn.js (a CDN, a bundler that does not copy them). */
  wasmUrl?: WasmUrl;
}

/** The variants this package ships, fastest first within each kind (CPU-only, then WebGPU). */
export const VARIANTS: readonly WasmVariant[] = SHIPPED.map(({ name, file, features, gpu }) => ({ name, file, features, gpu }));

/** `cpu`: a CPU-only build; `gpu`: a build with the WebGPU backend. */
export type BuildKind = 'cpu' | 'gpu';

const PROBES: Record<string, () => Promise<boolean>> = { simd128: simd, 'relaxed-simd': relaxedSimd };

async function validates(v: WasmVariant): Promise<boolean> {
  for (const f of v.features) {
    const probe = PROBES[f];
    try {
      if (!probe || !(await probe())) return false;
    } catch (e) {
      throw cspError(e) ?? e;
    }
  }
  return true;
}

export const isNode =
  typeof process !== 'undefined' && typeof (process as { versions?: { node?: string } }).versions?.node === 'string';
declare const process: unknown;

/**
 * Reads a file: URL. The browser entry cannot; the Node entry (`webrnn.node.js`, the `node`
 * condition of the package's exports) installs a reader with `setFileReader`.
 */
let fileReader: ((url: URL) => Promise<Uint8Array>) | undefined;

/** @internal Called by the Node entry. */
export function setFileReader(read: (url: URL) => Promise<Uint8Array>): void {
  fileReader = read;
}

/** Reads a file: URL (Node entry only). */
export async function readFileUrl(url: URL): Promise<Uint8Array> {
  if (!fileReader) {
    throw new IoError(
      `${url.href}: file: URLs are read by webrnn's Node entry only; this is the browser build ` +
        '(a bundler that rewrites import.meta.url to file: needs the wasmUrl option of Runtime.create)',
    );
  }
  try {
    return await fileReader(url);
  } catch (e) {
    throw new IoError(`${url.href}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

/** @internal One instantiated build: its bindings, variant and what it contains. */
export interface LoadedWasm {
  glue: Glue;
  variant: WasmVariant;
  info: BuildInfo;
  /** The instance's memory (models, sessions, buffers). */
  memory: WebAssembly.Memory;
}

/** What `loadWasm` takes beyond `WasmOptions`. */
export interface LoadOptions extends WasmOptions {
  /** An already compiled module (from `Runtime.compile`): nothing is fetched. */
  wasmModule?: WebAssembly.Module;
}

interface Loading {
  promise: Promise<LoadedWasm>;
  key: string;
}
const loading: Partial<Record<BuildKind, Loading>> = {};

function optionsKey(options: LoadOptions): string {
  const url = options.wasmUrl;
  const urlKey = url === undefined ? '' : typeof url === 'string' || isUrl(url) ? String(url) : JSON.stringify(url);
  return `${options.variant ?? ''}|${urlKey}|${options.wasmModule ? 'module' : ''}`;
}

/**
 * The kind of a compiled module: the WebGPU builds import the browser's `requestAdapter` (through
 * their glue), the CPU-only builds import nothing of WebGPU.
 */
export function moduleKind(module: WebAssembly.Module): BuildKind {
  return WebAssembly.Module.imports(module).some((i) => i.name.includes('requestAdapter')) ? 'gpu' : 'cpu';
}

/** The variant named `name`, or an error listing those there are. */
export function namedVariant(name: string): WasmVariant {
  const v = VARIANTS.find((x) => x.name === name);
  if (!v) {
    throw new BackendUnavailableError(`no wasm variant '${name}' in this package (it has ${VARIANTS.map((x) => x.name).join(', ')})`);
  }
  return v;
}

/** The kind of build the variant named `name` is (`cpu` for a name this package lacks: the loader names it). */
export function variantKind(name: string): BuildKind {
  return VARIANTS.find((v) => v.name === name)?.gpu ? 'gpu' : 'cpu';
}

/** @internal Loads (once per realm) the build of `kind` that `options` choose. */
export function loadWasm(options: LoadOptions, kind: BuildKind): Promise<LoadedWasm> {
  const key = optionsKey(options);
  const current = loading[kind];
  if (current) {
    const explicit = options.variant !== undefined || options.wasmUrl !== undefined || options.wasmModule !== undefined;
    if (key !== current.key && explicit) {
      // One instance per kind and realm: the glue keeps module-level state.
      return current.promise.then((w) => {
        if (options.variant !== undefined && options.variant !== w.variant.name) {
          throw new InvalidArgumentError(
            `the wasm variant '${w.variant.name}' is already loaded in this realm; cannot also load '${options.variant}'`,
          );
        }
        return w;
      });
    }
    return current.promise;
  }
  const promise = load(options, kind);
  loading[kind] = { promise, key };
  promise.catch(() => {
    if (loading[kind]?.promise === promise) delete loading[kind]; // a failed load (network) may be retried
  });
  return promise;
}

/** The WebGPU builds' glue: a module of its own, fetched only when a runtime takes WebGPU. */
async function gpuGlue(): Promise<Glue> {
  try {
    return (await import('webrnn-gpu')) as Glue;
  } catch (e) {
    throw new BackendUnavailableError(
      `cannot load webrnn's WebGPU build (webrnn_gpu.js): ${e instanceof Error ? e.message : String(e)}`,
      { cause: e },
    );
  }
}

async function load(options: LoadOptions, kind: BuildKind): Promise<LoadedWasm> {
  const glue = kind === 'gpu' ? await gpuGlue() : cpuGlue;
  let memory: WebAssembly.Memory;
  if (options.wasmModule !== undefined) {
    if (!(options.wasmModule instanceof WebAssembly.Module)) {
      throw new InvalidArgumentError('wasmModule must be a WebAssembly.Module (from Runtime.compile)');
    }
    memory = await instantiate(glue, options.wasmModule, 'the wasmModule option');
  } else {
    const { variant, module } = await compileBest(options, kind);
    memory = await instantiate(glue, module, variantUrl(variant, options).href);
  }
  // The build says what it is: a single wasmUrl or a wasmModule may be any variant.
  const info = guard(() => JSON.parse(glue.buildInfo()) as BuildInfo);
  const variant = variantOf(info);
  if (options.variant !== undefined && options.variant !== variant.name) {
    throw new InvalidArgumentError(`the wasm module loaded is the '${variant.name}' variant, not '${options.variant}'`);
  }
  return { glue, variant, info, memory };
}

async function instantiate(glue: Glue, module: WebAssembly.Module, what: string): Promise<WebAssembly.Memory> {
  try {
    return (await glue.default({ module_or_path: module })).memory;
  } catch (e) {
    throw (
      cspError(e) ??
      new IoError(`cannot instantiate the wasm module (${what}): ${e instanceof Error ? e.message : String(e)}`, { cause: e })
    );
  }
}

/** The shipped variant a build is (by the features it was compiled with and its GPU backend). */
function variantOf(info: BuildInfo): WasmVariant {
  const features = [...(info.simd128 ? ['simd128'] : []), ...(info.relaxed_simd ? ['relaxed-simd'] : [])];
  const same = (v: WasmVariant) =>
    v.gpu === info.gpu && v.features.length === features.length && features.every((f) => v.features.includes(f));
  const isa = features.includes('relaxed-simd') ? 'relaxed-simd' : features.includes('simd128') ? 'simd128' : 'base';
  return VARIANTS.find(same) ?? { name: info.gpu ? `gpu-${isa}` : isa, file: '', features, gpu: info.gpu };
}

/**
 * The variant `options` ask for, or the fastest of `kind` the engine validates (among a map's
 * keys).
 */
export async function pickVariant(options: WasmOptions, kind: BuildKind): Promise<WasmVariant> {
  const url = options.wasmUrl;
  const map = url !== undefined && typeof url !== 'string' && !isUrl(url) ? url : undefined;
  if (map !== undefined && (map === null || typeof map !== 'object')) {
    throw new InvalidArgumentError('wasmUrl is a URL, a prefix ending in "/" or a { variant: url } map');
  }
  if (map) {
    const unknown = Object.keys(map).filter((k) => !VARIANTS.some((v) => v.name === k));
    if (unknown.length) {
      throw new InvalidArgumentError(
        `wasmUrl names no variant '${unknown[0]}' (this package has ${VARIANTS.map((v) => v.name).join(', ')})`,
      );
    }
  }
  const offered = VARIANTS.filter((v) => (!map || v.name in map) && (options.variant !== undefined || v.gpu === (kind === 'gpu')));
  if (options.variant !== undefined) {
    const variant = offered.find((v) => v.name === options.variant);
    if (!variant) {
      const where = map ? 'in the wasmUrl map' : 'in this package';
      throw new BackendUnavailableError(
        `no wasm variant '${options.variant}' ${where} (it has ${offered.map((v) => v.name).join(', ')})`,
      );
    }
    if (!(await validates(variant))) {
      throw new BackendUnavailableError(
        `this engine does not support ${variant.features.join(' + ')}, which the '${variant.name}' variant needs`,
      );
    }
    return variant;
  }
  for (const v of offered) {
    if (await validates(v)) return v;
  }
  const what = kind === 'gpu' ? 'WebGPU ' : 'CPU ';
  if (!offered.length) {
    throw new BackendUnavailableError(`${map ? 'the wasmUrl map has' : 'this package has'} no ${what}wasm variant`);
  }
  throw new BackendUnavailableError(
    `no ${what}wasm variant ${map ? 'of the wasmUrl map ' : 'of this package '}validates on this engine (${offered.map((v) => v.name).join(', ')})`,
  );
}

/** Where variant `v` is fetched from. */
export function variantUrl(v: WasmVariant, options: WasmOptions): URL {
  const url = options.wasmUrl;
  const resolve = (u: string | URL) => {
    try {
      return new URL(u, baseUrl());
    } catch (e) {
      throw new InvalidArgumentError(`wasmUrl: not a URL: ${String(u)}`, { cause: e });
    }
  };
  if (url === undefined) {
    const shipped = SHIPPED.find((s) => s.name === v.name);
    if (!shipped) throw new BackendUnavailableError(`no wasm variant '${v.name}' in this package`);
    return shipped.url();
  }
  if (typeof url === 'string' || isUrl(url)) {
    const u = resolve(url);
    return u.href.endsWith('/') ? new URL(v.file, u) : u;
  }
  return resolve(url[v.name]!);
}

/** Fetches and compiles the variant of `kind` that `options` choose. */
export async function compileBest(
  options: WasmOptions,
  kind: BuildKind,
): Promise<{ variant: WasmVariant; module: WebAssembly.Module }> {
  const variant = await pickVariant(options, kind);
  const url = variantUrl(variant, options);
  return { variant, module: await compileUrl(url, options.wasmUrl === undefined) };
}

const HINT =
  'set the wasmUrl option of Runtime.create / Runtime.compile to where webrnn\'s .wasm files are served ' +
  '(a URL, a prefix ending in "/", or a { variant: url } map)';
const VITE_HINT =
  "Vite's dev server pre-bundled webrnn without its .wasm files: add `optimizeDeps: { exclude: ['webrnn'] }` to vite.config";

/** Vite's dev server serves pre-bundled dependencies from node_modules/.vite/deps/, not their files. */
function vitePrebundled(url: URL): URL | undefined {
  const at = url.pathname.indexOf('/node_modules/.vite/deps');
  if (at < 0) return undefined;
  const file = url.pathname.slice(url.pathname.lastIndexOf('/') + 1);
  return new URL(`${url.pathname.slice(0, at)}/node_modules/webrnn/${file}`, url);
}

/**
 * Fetches and compiles one .wasm file. A 404, an HTML page or bytes that are not wasm fail with an
 * IoError naming the URL and the `wasmUrl` option. `shipped`: the package's own URL (beside
 * webrnn.js), which Vite's dev server may have moved.
 */
export async function compileUrl(url: URL, shipped: boolean): Promise<WebAssembly.Module> {
  if (url.protocol === 'file:') return compileBytes(await readFileUrl(url), url);
  const fallback = shipped ? vitePrebundled(url) : undefined;
  try {
    return await compileHttp(url);
  } catch (e) {
    if (!fallback || !(e instanceof IoError)) throw e;
    try {
      return await compileHttp(fallback);
    } catch {
      throw new IoError(`${e.message}; ${VITE_HINT}`, { cause: e });
    }
  }
}

async function compileHttp(url: URL): Promise<WebAssembly.Module> {
  let response: Response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw new IoError(`cannot fetch the wasm module ${url.href}: ${e instanceof Error ? e.message : String(e)}; ${HINT}`, {
      cause: e,
    });
  }
  if (!response.ok) {
    throw new IoError(`the wasm module ${url.href} answered HTTP ${response.status} ${response.statusText}`.trim() + `; ${HINT}`);
  }
  const type = response.headers.get('content-type') ?? '';
  if (/text\/html/i.test(type)) {
    throw new IoError(`the wasm module ${url.href} answered an HTML page (${type}), not wasm; ${HINT}`);
  }
  if (/^application\/wasm\b/i.test(type) && typeof WebAssembly.compileStreaming === 'function') {
    try {
      return await WebAssembly.compileStreaming(response);
    } catch (e) {
      throw compileError(e, url);
    }
  }
  return compileBytes(new Uint8Array(await response.arrayBuffer()), url);
}

function compileBytes(bytes: Uint8Array, url: URL): Promise<WebAssembly.Module> {
  const magic = [0x00, 0x61, 0x73, 0x6d];
  if (bytes.length < 8 || magic.some((b, i) => bytes[i] !== b)) {
    const head = new Utf8Decoder().decode(bytes.subarray(0, 40)).replace(/\s+/g, ' ');
    throw new IoError(`the wasm module ${url.href} is not wasm (it starts with "${head}"); ${HINT}`);
  }
  return WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>).catch((e: unknown) => {
    throw compileError(e, url);
  });
}

function compileError(e: unknown, url: URL): Error {
  const message = e instanceof Error ? e.message : String(e);
  return cspError(e) ?? new IoError(`cannot compile the wasm module ${url.href}: ${message}; ${HINT}`, { cause: e });
}

/**
 * A page whose Content-Security-Policy lacks 'wasm-unsafe-eval' (or 'unsafe-eval') in script-src
 * may fetch the module but not compile it: a BackendUnavailableError that says so.
 */
function cspError(e: unknown): BackendUnavailableError | undefined {
  const message = e instanceof Error ? e.message : String(e);
  if (!/Content Security Policy|unsafe-eval/i.test(message)) return undefined;
  return new BackendUnavailableError(
    `WebAssembly is blocked by this page's Content Security Policy: script-src needs 'wasm-unsafe-eval' (${message})`,
    { cause: e },
  );
}

/** What relative URLs are resolved against: the page or worker, or the working directory in Node. */
export function baseUrl(): string {
  const loc = (globalThis as { location?: { href?: string } }).location;
  if (loc?.href) return loc.href;
  if (isNode) {
    const cwd = (process as { cwd(): string }).cwd();
    return `file://${cwd.endsWith('/') ? cwd : cwd + '/'}`;
  }
  return import.meta.url;
}
