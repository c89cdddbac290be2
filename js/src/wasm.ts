// Loads the wasm module once per JS realm (page, worker or Node process). `cargo xtask pack` ships
// one or more builds of it (variants: base, simd128, relaxed-simd...) and writes their list,
// fastest first, into __WEBRNN_VARIANTS__; the loader takes the first one whose features the engine
// validates (wasm-feature-detect compiles a tiny probe module with `WebAssembly.validate`).

import initGlue, { buildInfo } from 'webrnn-wasm';
import { relaxedSimd, simd } from 'wasm-feature-detect';

import { BackendUnavailableError, InvalidArgumentError, IoError, guard } from './errors.js';

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

export interface WasmOptions {
  /** Which variant to load (its name); default: the fastest the engine validates. */
  variant?: string;
  /** Where the .wasm file is, when it is not next to webrnn.js (e.g. a CDN, or after bundling). */
  wasmUrl?: string | URL;
}

declare const __WEBRNN_VARIANTS__: WasmVariant[];

/** The variants this package ships, fastest first. */
export const VARIANTS: readonly WasmVariant[] =
  typeof __WEBRNN_VARIANTS__ === 'undefined' ? [{ name: 'base', file: 'webrnn_bg.wasm', features: [] }] : __WEBRNN_VARIANTS__;

const PROBES: Record<string, () => Promise<boolean>> = { simd128: simd, 'relaxed-simd': relaxedSimd };

async function validates(v: WasmVariant): Promise<boolean> {
  for (const f of v.features) {
    const probe = PROBES[f];
    if (!probe || !(await probe())) return false;
  }
  return true;
}

export const isNode =
  typeof process !== 'undefined' && typeof (process as { versions?: { node?: string } }).versions?.node === 'string';
declare const process: unknown;

/** Reads a file: URL in Node. */
export async function readFileUrl(url: URL): Promise<Uint8Array> {
  try {
    const fs = await import('node:fs/promises');
    return await fs.readFile(url);
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

export function loadWasm(options: WasmOptions = {}): Promise<LoadedWasm> {
  const key = `${options.variant ?? ''}|${options.wasmUrl ?? ''}`;
  if (loading) {
    if (key !== loadedWith && (options.variant !== undefined || options.wasmUrl !== undefined)) {
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

async function load(options: WasmOptions): Promise<LoadedWasm> {
  let variant: WasmVariant | undefined;
  if (options.variant !== undefined) {
    variant = VARIANTS.find((v) => v.name === options.variant);
    if (!variant) {
      throw new BackendUnavailableError(
        `no wasm variant '${options.variant}' in this package (it has ${VARIANTS.map((v) => v.name).join(', ')})`,
      );
    }
    if (!(await validates(variant))) {
      throw new BackendUnavailableError(
        `this engine does not support ${variant.features.join(' + ')}, which the '${variant.name}' variant needs`,
      );
    }
  } else {
    for (const v of VARIANTS) {
      if (await validates(v)) {
        variant = v;
        break;
      }
    }
    if (!variant) throw new BackendUnavailableError('no wasm variant of this package validates on this engine');
  }
  const url = options.wasmUrl !== undefined ? new URL(options.wasmUrl, baseUrl()) : new URL(variant.file, import.meta.url);
  try {
    const glue = await initGlue({ module_or_path: url.protocol === 'file:' ? await readFileUrl(url) : url });
    memory = glue.memory;
  } catch (e) {
    if (e instanceof IoError) throw e;
    throw new IoError(`cannot load the wasm module ${url.href}: ${e instanceof Error ? e.message : String(e)}`, {
      cause: e,
    });
  }
  const info = guard(() => JSON.parse(buildInfo()) as BuildInfo);
  return { variant, info };
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
