// Loads the wasm module once per JS realm (page, worker or Node process). `cargo xtask pack` ships
// one or more builds of it (variants: base, simd128, relaxed-simd...) and writes their list,
// fastest first, into the generated module `webrnn-variants`, each with its URL as a fixed string
// `new URL('./<file>.wasm', import.meta.url)`: the pattern bundlers (Vite, webpack, Parcel) follow
// to copy assets, so every variant reaches the app's output. The loader takes the first variant
// whose features the engine validates (wasm-feature-detect compiles a tiny probe module with
// `WebAssembly.validate`).

import initGlue, { buildInfo } from 'webrnn-wasm';
import { SHIPPED } from 'webrnn-variants';
import { relaxedSimd, simd } from 'wasm-feature-detect';

import { BackendUnavailableError, InvalidArgumentError, IoError, guard } from './errors.js';
import { Utf8Decoder, isUrl } from './utf8.js';

export interface WasmVariant {
  name: string;
  /** The file in the package, next to webrnn.js. */
  file: string;
  /** WebAssembly features it needs: `simd128`, `relaxed-simd`. */
  features: string[];
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
  /** Which variant to load (its name); default: the fastest the engine validates. */
  variant?: string;
  /** Where the .wasm files are, when not next to webrnn.js (a CDN, a bundler that does not copy them). */
  wasmUrl?: WasmUrl;
}

/** The variants this package ships, fastest first. */
export const VARIANTS: readonly WasmVariant[] = SHIPPED.map(({ name, file, features }) => ({ name, file, features }));

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

export interface LoadedWasm {
  variant: WasmVariant;
  info: BuildInfo;
}

let loading: Promise<LoadedWasm> | undefined;
let memory: WebAssembly.Memory | undefined;

/** Size of the wasm instance's memory (models, sessions, buffers). */
export function wasmMemoryBytes(): number {
  return memory?.buffer.byteLength ?? 0;
}
let loadedWith: string | undefined;

/** What `loadWasm` takes beyond `WasmOptions`. */
export interface LoadOptions extends WasmOptions {
  /** An already compiled module (from `Runtime.compile`): nothing is fetched. */
  wasmModule?: WebAssembly.Module;
}

function optionsKey(options: LoadOptions): string {
  const url = options.wasmUrl;
  const urlKey = url === undefined ? '' : typeof url === 'string' || isUrl(url) ? String(url) : JSON.stringify(url);
  return `${options.variant ?? ''}|${urlKey}|${options.wasmModule ? 'module' : ''}`;
}

export function loadWasm(options: LoadOptions = {}): Promise<LoadedWasm> {
  const key = optionsKey(options);
  if (loading) {
    const explicit = options.variant !== undefined || options.wasmUrl !== undefined || options.wasmModule !== undefined;
    if (key !== loadedWith && explicit) {
      // One instance per realm: the glue keeps module-level state.
      return loading.then((w) => {
        if (options.variant !== undefined && options.variant !== w.variant.name) {
          throw new InvalidArgumentError(
            `the wasm variant '${w.variant.name}' is already loaded in this realm; cannot also load '${options.variant}'`,
          );
        }
        return w;
      });
    }
    return loading;
  }
  loadedWith = key;
  loading = load(options);
  loading.catch(() => {
    loading = undefined; // a failed load (network) may be retried
  });
  return loading;
}

async function load(options: LoadOptions): Promise<LoadedWasm> {
  if (options.wasmModule !== undefined) {
    if (!(options.wasmModule instanceof WebAssembly.Module)) {
      throw new InvalidArgumentError('wasmModule must be a WebAssembly.Module (from Runtime.compile)');
    }
    await instantiate(options.wasmModule, 'the wasmModule option');
  } else {
    const { variant, module } = await compileBest(options);
    await instantiate(module, variantUrl(variant, options).href);
  }
  // The build says what it is: a single wasmUrl or a wasmModule may be any variant.
  const info = guard(() => JSON.parse(buildInfo()) as BuildInfo);
  const variant = variantOf(info);
  if (options.variant !== undefined && options.variant !== variant.name) {
    throw new InvalidArgumentError(`the wasm module loaded is the '${variant.name}' variant, not '${options.variant}'`);
  }
  return { variant, info };
}

async function instantiate(module: WebAssembly.Module, what: string): Promise<void> {
  try {
    const glue = await initGlue({ module_or_path: module });
    memory = glue.memory;
  } catch (e) {
    throw (
      cspError(e) ??
      new IoError(`cannot instantiate the wasm module (${what}): ${e instanceof Error ? e.message : String(e)}`, { cause: e })
    );
  }
}

/** The shipped variant a build is (by the features it was compiled with). */
function variantOf(info: BuildInfo): WasmVariant {
  const features = [...(info.simd128 ? ['simd128'] : []), ...(info.relaxed_simd ? ['relaxed-simd'] : [])];
  const same = (v: WasmVariant) => v.features.length === features.length && features.every((f) => v.features.includes(f));
  const name = features.includes('relaxed-simd') ? 'relaxed-simd' : features.includes('simd128') ? 'simd128' : 'base';
  return VARIANTS.find(same) ?? { name, file: '', features };
}

/** The variant `options` ask for, or the fastest the engine validates (among a map's keys). */
export async function pickVariant(options: WasmOptions): Promise<WasmVariant> {
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
  const offered = VARIANTS.filter((v) => !map || v.name in map);
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
  throw new BackendUnavailableError(
    `no wasm variant ${map ? 'of the wasmUrl map ' : 'of this package '}validates on this engine (${offered.map((v) => v.name).join(', ')})`,
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

/** Fetches and compiles the variant `options` choose. */
export async function compileBest(options: WasmOptions): Promise<{ variant: WasmVariant; module: WebAssembly.Module }> {
  const variant = await pickVariant(options);
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
