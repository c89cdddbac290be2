// Every failure the package reports is a WebrnnError with a stable `code`. The Rust core throws
// plain Errors whose message starts with its code ("shape: ..."); `fromWasm` turns those into the
// matching subclass, so callers can write `catch (e) { if (e instanceof ShapeError) ... }` or
// `switch (e.code)`.

export type ErrorCode =
  | 'format'
  | 'unsupported_op'
  | 'shape'
  | 'invalid_model'
  | 'invalid_argument'
  | 'state_mismatch'
  | 'corrupt_state'
  | 'backend_unavailable'
  | 'io'
  | 'resource'
  | 'quota'
  | 'storage'
  | 'disposed'
  | 'internal';

export class WebrnnError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** The bytes are not a well-formed model, tensor or config. */
export class FormatError extends WebrnnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('format', message, options);
  }
}
/** The model uses an operator (or option) the runtime does not implement. */
export class UnsupportedOpError extends WebrnnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('unsupported_op', message, options);
  }
}
/** An input has the wrong length or element type. */
export class ShapeError extends WebrnnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('shape', message, options);
  }
}
/** The model is well formed but cannot be run (e.g. no recurrent layer, so no session state). */
export class InvalidModelError extends WebrnnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('invalid_model', message, options);
  }
}
/** A caller-supplied argument is wrong. */
export class InvalidArgumentError extends WebrnnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('invalid_argument', message, options);
  }
}
/** A state snapshot belongs to another model. */
export class StateMismatchError extends WebrnnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('state_mismatch', message, options);
  }
}
/** A state snapshot (or a stored record) is damaged. */
export class CorruptStateError extends WebrnnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('corrupt_state', message, options);
  }
}
/** The requested backend is not in this build or not on this machine. */
export class BackendUnavailableError extends WebrnnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('backend_unavailable', message, options);
  }
}
/** Downloading or reading a file failed. */
export class IoError extends WebrnnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('io', message, options);
  }
}
/**
 * A call or load would pass the runtime's memory budget (`Runtime.create({ maxMemoryBytes })`,
 * 256 MiB by default), or an allocation failed: refused before anything was allocated; every
 * session is as it was and the runtime keeps working.
 */
export class ResourceError extends WebrnnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('resource', message, options);
  }
}
/** The browser refused to store more data (IndexedDB quota). The previous record is intact. */
export class QuotaError extends WebrnnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('quota', message, options);
  }
}
/** IndexedDB failed for another reason, or is not available. */
export class StorageError extends WebrnnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('storage', message, options);
  }
}
/** The session or model was disposed. */
export class DisposedError extends WebrnnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('disposed', message, options);
  }
}
/** A bug: the wasm module trapped. Please report it. */
export class InternalError extends WebrnnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('internal', message, options);
  }
}

const BY_CODE: Record<ErrorCode, new (message: string, options?: { cause?: unknown }) => WebrnnError> = {
  format: FormatError,
  unsupported_op: UnsupportedOpError,
  shape: ShapeError,
  invalid_model: InvalidModelError,
  invalid_argument: InvalidArgumentError,
  state_mismatch: StateMismatchError,
  corrupt_state: CorruptStateError,
  backend_unavailable: BackendUnavailableError,
  io: IoError,
  resource: ResourceError,
  quota: QuotaError,
  storage: StorageError,
  disposed: DisposedError,
  internal: InternalError,
};

/** A WebrnnError of the given code. */
export function errorOf(code: ErrorCode, message: string, cause?: unknown): WebrnnError {
  return new BY_CODE[code](message, cause === undefined ? undefined : { cause });
}

/** Whatever a wasm call threw, as a WebrnnError. */
export function fromWasm(e: unknown): WebrnnError {
  if (e instanceof WebrnnError) return e;
  if (typeof WebAssembly !== 'undefined' && e instanceof WebAssembly.RuntimeError) {
    return new InternalError(`the wasm module trapped (${e.message}); this is a bug in webrnn`, { cause: e });
  }
  const message = e instanceof Error ? e.message : String(e);
  const m = /^([a-z_]+): ([\s\S]*)$/.exec(message);
  if (m && m[1] in BY_CODE) return errorOf(m[1] as ErrorCode, m[2]!, e);
  return new InternalError(message, { cause: e });
}

/** Runs a synchronous wasm call, converting what it throws. */
export function guard<T>(call: () => T): T {
  try {
    return call();
  } catch (e) {
    throw fromWasm(e);
  }
}
