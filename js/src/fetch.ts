// Downloads with progress: the response body is read chunk by chunk so the caller can show how far
// a large model has come.

import { IoError } from './errors.js';
import { readFileUrl } from './wasm.js';

export interface LoadProgress {
  /** The file being read: the model, its external data, or its config. */
  file: string;
  /** Bytes received so far. */
  loaded: number;
  /** Bytes in all, when the server says (Content-Length without a Content-Encoding). */
  total?: number;
}

export type ProgressCallback = (progress: LoadProgress) => void;

/**
 * What an aborted load rejects with, as `fetch` does: the signal's reason when it is an
 * `AbortError` DOMException (the default reason), else a DOMException named `AbortError`.
 */
export function abortError(signal: AbortSignal, what: string): DOMException {
  const reason: unknown = signal.reason;
  if (reason instanceof DOMException && reason.name === 'AbortError') return reason;
  return new DOMException(`${what}: aborted${reason === undefined ? '' : ` (${String(reason)})`}`, 'AbortError');
}

/** Throws the AbortError if `signal` has been aborted. */
export function checkAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw abortError(signal, what);
}

export async function fetchBytes(url: URL, onProgress?: ProgressCallback, signal?: AbortSignal): Promise<Uint8Array> {
  const file = url.href;
  checkAborted(signal, file);
  if (url.protocol === 'file:') {
    const bytes = await readFileUrl(url);
    checkAborted(signal, file);
    onProgress?.({ file, loaded: bytes.length, total: bytes.length });
    return bytes;
  }
  let response: Response;
  try {
    response = await fetch(url, signal ? { signal } : {});
  } catch (e) {
    checkAborted(signal, file);
    throw new IoError(`${file}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  if (!response.ok) throw new IoError(`${file}: HTTP ${response.status} ${response.statusText}`.trim());
  const length = Number(response.headers.get('content-length'));
  // With a Content-Encoding, Content-Length counts the compressed bytes, not what we read.
  const total = Number.isFinite(length) && length > 0 && !response.headers.get('content-encoding') ? length : undefined;
  const progress = (loaded: number) => onProgress?.(total === undefined ? { file, loaded } : { file, loaded, total });
  if (!response.body) {
    const bytes = new Uint8Array(await response.arrayBuffer());
    progress(bytes.length);
    return bytes;
  }
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  progress(0);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      loaded += value.length;
      progress(loaded);
    }
  } catch (e) {
    checkAborted(signal, file);
    throw new IoError(`${file}: download interrupted: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  if (chunks.length === 1) return chunks[0]!;
  const bytes = new Uint8Array(loaded);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return bytes;
}
