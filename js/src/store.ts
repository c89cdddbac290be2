// StateStore: session states in IndexedDB, one record per session id.
//
// - Atomic saves: a record is written by a single `put` in one transaction, so a save that fails
//   (quota) or is interrupted (tab closed) leaves the previous record as it was.
// - Tabs: every operation on one id holds the Web Lock `webrnn:<store>:<id>`, so two tabs saving
//   (or restoring, stepping and saving with `exclusive`) the same session take turns.
// - Integrity: the record holds the Rust snapshot (versioned, fingerprinted, checksummed); a
//   damaged record fails `restore` with CorruptStateError and the session keeps its state.
// - Upgrades: a record saved under another model fingerprint is never loaded. The store reports it
//   (`onMismatch`) and resets the session, or, for sessions that keep their last inputs,
//   replays those inputs into the new model.
// - Bounds: `maxAgeMs` drops records not used for that long; `maxSessions` evicts the least
//   recently used records after a save.

import { openDB, type DBSchema, type IDBPDatabase } from 'idb';

import {
  CorruptStateError,
  InvalidArgumentError,
  QuotaError,
  StorageError,
  WebrnnError,
} from './errors.js';
import type { Session } from './model.js';

export interface StoreOptions {
  /** Keep at most this many sessions; saving one more evicts the least recently used. */
  maxSessions?: number;
  /** Forget sessions not saved or restored for this long. */
  maxAgeMs?: number;
  /** Told when a stored state belongs to another model (e.g. after a model upgrade). */
  onMismatch?: (event: MismatchEvent) => void;
}

export interface MismatchEvent {
  id: string;
  storedFingerprint: string;
  modelFingerprint: string;
  /** `replayed`: the kept inputs were fed to the new model; `reset`: the session starts from zero. */
  action: 'reset' | 'replayed';
  replayedSteps: number;
}

export interface StoredSession {
  id: string;
  fingerprint: string;
  steps: number;
  /** Times saved; two tabs saving in turn both count. */
  revision: number;
  savedAt: number;
  usedAt: number;
  /** Size of the state snapshot. */
  bytes: number;
  /** Inputs kept for replay. */
  inputs: number;
}

interface StoredRecord {
  id: string;
  fingerprint: string;
  snapshot: Uint8Array;
  steps: number;
  revision: number;
  savedAt: number;
  usedAt: number;
  inputs?: { tokens: boolean; steps: (Float32Array | Int32Array)[] };
}

interface Schema extends DBSchema {
  sessions: { key: string; value: StoredRecord; indexes: { usedAt: number } };
}

const STORE = 'sessions';

function storageError(e: unknown, what: string): WebrnnError {
  if (e instanceof WebrnnError) return e;
  const name = (e as { name?: string } | null)?.name;
  const message = e instanceof Error ? e.message : String(e);
  if (name === 'QuotaExceededError') {
    return new QuotaError(`${what}: the storage quota is exhausted (${message}); the stored state is unchanged`, {
      cause: e,
    });
  }
  return new StorageError(`${what}: ${name ?? 'error'}: ${message}`, { cause: e });
}

type LockManager = {
  request<T>(name: string, options: { mode: 'exclusive' }, fn: () => Promise<T>): Promise<T>;
};

// Without Web Locks (Node), calls in this realm still take turns.
const localQueues = new Map<string, Promise<unknown>>();

function withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const locks = (globalThis as { navigator?: { locks?: LockManager } }).navigator?.locks;
  if (locks) return locks.request(name, { mode: 'exclusive' }, fn);
  const previous = localQueues.get(name) ?? Promise.resolve();
  const result = previous.then(fn, fn);
  const tail = result.catch(() => undefined);
  localQueues.set(name, tail);
  void tail.then(() => {
    if (localQueues.get(name) === tail) localQueues.delete(name);
  });
  return result;
}

function checkBound(value: number | undefined, what: string): void {
  if (value !== undefined && !(Number.isFinite(value) && value > 0)) {
    throw new InvalidArgumentError(`${what} must be a positive number`);
  }
}

export class StateStore {
  readonly name: string;
  #db: IDBPDatabase<Schema>;
  #options: StoreOptions;

  private constructor(name: string, db: IDBPDatabase<Schema>, options: StoreOptions) {
    this.name = name;
    this.#db = db;
    this.#options = options;
  }

  /** Prefer `runtime.openStore(name, options)`. */
  static async open(name: string, options: StoreOptions = {}): Promise<StateStore> {
    if (typeof name !== 'string' || name.length === 0) throw new InvalidArgumentError('a store needs a name');
    checkBound(options.maxSessions, 'maxSessions');
    checkBound(options.maxAgeMs, 'maxAgeMs');
    if (typeof (globalThis as { indexedDB?: unknown }).indexedDB === 'undefined') {
      throw new StorageError('IndexedDB is not available here');
    }
    let db: IDBPDatabase<Schema>;
    try {
      db = await openDB<Schema>(`webrnn:${name}`, 1, {
        upgrade(db) {
          db.createObjectStore(STORE, { keyPath: 'id' }).createIndex('usedAt', 'usedAt');
        },
        blocking() {
          db.close(); // a newer version of the package wants to upgrade the database
        },
      });
    } catch (e) {
      throw storageError(e, `open store '${name}'`);
    }
    return new StateStore(name, db, options);
  }

  #lock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return withLock(`webrnn:${this.name}:${id}`, fn);
  }

  /** Saves the session's state (and its kept inputs) under its id, atomically. */
  save(session: Session): Promise<void> {
    return this.#lock(session.id, () => this.#save(session));
  }

  /**
   * Restores the session's stored state. Returns false when there is none (or it expired, or it
   * belonged to another model and was reset). Throws CorruptStateError for a damaged record; the
   * session keeps its state then.
   */
  restore(session: Session): Promise<boolean> {
    return this.#lock(session.id, () => this.#restore(session));
  }

  /**
   * Restore, `fn`, save, with the session's lock held throughout: two tabs doing this for the same
   * id take turns, so neither loses the other's steps. Do not call save/restore/delete for the
   * same id inside `fn` (the lock is not reentrant).
   */
  exclusive<T>(session: Session, fn: (session: Session) => T | Promise<T>): Promise<T> {
    return this.#lock(session.id, async () => {
      await this.#restore(session);
      const result = await fn(session);
      await this.#save(session);
      return result;
    });
  }

  /** Deletes a stored session; returns whether there was one. */
  delete(id: string): Promise<boolean> {
    return this.#lock(id, async () => {
      try {
        const tx = this.#db.transaction(STORE, 'readwrite');
        const had = (await tx.store.getKey(id)) !== undefined;
        await Promise.all([tx.store.delete(id), tx.done]);
        return had;
      } catch (e) {
        throw storageError(e, `delete '${id}'`);
      }
    });
  }

  /** The stored sessions, most recently used first (expired ones are dropped first). */
  async list(): Promise<StoredSession[]> {
    await this.#dropExpired();
    let records: StoredRecord[];
    try {
      records = await this.#db.getAll(STORE);
    } catch (e) {
      throw storageError(e, 'list');
    }
    return records
      .map((r) => ({
        id: r.id,
        fingerprint: r.fingerprint,
        steps: r.steps,
        revision: r.revision,
        savedAt: r.savedAt,
        usedAt: r.usedAt,
        bytes: r.snapshot?.byteLength ?? 0,
        inputs: r.inputs?.steps.length ?? 0,
      }))
      .sort((a, b) => b.usedAt - a.usedAt);
  }

  /** Closes the database connection. */
  close(): void {
    this.#db.close();
  }

  async #save(session: Session): Promise<void> {
    await session.model.idle(); // the state after every step already asked for
    const snapshot = session.saveState();
    const history = session.history;
    const now = Date.now();
    try {
      const tx = this.#db.transaction(STORE, 'readwrite');
      const previous = await tx.store.get(session.id);
      const record: StoredRecord = {
        id: session.id,
        fingerprint: session.model.info.fingerprint,
        snapshot,
        steps: session.steps,
        revision: (typeof previous?.revision === 'number' ? previous.revision : 0) + 1,
        savedAt: now,
        usedAt: now,
      };
      if (session.keepInputs > 0 && history.length > 0) {
        record.inputs = { tokens: session.model.info.inputIsTokens, steps: [...history] };
      }
      await Promise.all([tx.store.put(record), tx.done]);
    } catch (e) {
      throw storageError(e, `save '${session.id}'`);
    }
    await this.#evict(session.id);
  }

  async #restore(session: Session): Promise<boolean> {
    let record: StoredRecord | undefined;
    try {
      record = await this.#db.get(STORE, session.id);
    } catch (e) {
      throw storageError(e, `restore '${session.id}'`);
    }
    if (!record) return false;
    await session.model.idle();
    const { maxAgeMs } = this.#options;
    if (maxAgeMs !== undefined && Date.now() - record.usedAt > maxAgeMs) {
      await this.#deleteUnlocked(session.id);
      return false;
    }
    if (!(record.snapshot instanceof Uint8Array) || typeof record.fingerprint !== 'string') {
      throw new CorruptStateError(`stored session '${session.id}' is not a webrnn record`);
    }
    const fingerprint = session.model.info.fingerprint;
    if (record.fingerprint !== fingerprint) return this.#upgrade(session, record);
    session.loadState(record.snapshot); // throws CorruptStateError / StateMismatchError, state intact
    session._setHistory(validInputs(record, session) ?? []);
    try {
      const tx = this.#db.transaction(STORE, 'readwrite');
      await Promise.all([tx.store.put({ ...record, usedAt: Date.now() }), tx.done]);
    } catch {
      // Only the LRU time was not updated; the restore itself succeeded.
    }
    return true;
  }

  /** A record of another model: never loaded; replay its inputs if the session keeps inputs. */
  async #upgrade(session: Session, record: StoredRecord): Promise<boolean> {
    session.reset();
    const inputs = session.keepInputs > 0 ? validInputs(record, session) : undefined;
    let replayed = 0;
    if (inputs && inputs.length > 0) {
      const n = session.model.info.inputSize;
      const all = record.inputs!.tokens ? new Int32Array(inputs.length * n) : new Float32Array(inputs.length * n);
      inputs.forEach((x, t) => all.set(x, t * n));
      try {
        await session.run(all, inputs.length);
        replayed = inputs.length;
      } catch {
        session.reset();
      }
    }
    const event: MismatchEvent = {
      id: session.id,
      storedFingerprint: record.fingerprint,
      modelFingerprint: session.model.info.fingerprint,
      action: replayed > 0 ? 'replayed' : 'reset',
      replayedSteps: replayed,
    };
    if (replayed > 0) {
      await this.#save(session);
    } else {
      await this.#deleteUnlocked(session.id);
    }
    try {
      this.#options.onMismatch?.(event);
    } catch {
      // The app's callback must not break the store.
    }
    return replayed > 0;
  }

  async #deleteUnlocked(id: string): Promise<void> {
    try {
      await this.#db.delete(STORE, id);
    } catch (e) {
      throw storageError(e, `delete '${id}'`);
    }
  }

  async #dropExpired(): Promise<void> {
    const { maxAgeMs } = this.#options;
    if (maxAgeMs === undefined) return;
    try {
      const tx = this.#db.transaction(STORE, 'readwrite');
      const expired = await tx.store.index('usedAt').getAllKeys(IDBKeyRange.upperBound(Date.now() - maxAgeMs, true));
      await Promise.all([...expired.map((id) => tx.store.delete(id)), tx.done]);
    } catch (e) {
      throw storageError(e, 'drop expired sessions');
    }
  }

  /** Enforces maxAgeMs and maxSessions (least recently used first), sparing `keep`. */
  async #evict(keep: string): Promise<void> {
    await this.#dropExpired();
    const { maxSessions } = this.#options;
    if (maxSessions === undefined) return;
    try {
      const tx = this.#db.transaction(STORE, 'readwrite');
      const all = await tx.store.index('usedAt').getAllKeys();
      // Counted as they are now: another page's eviction may already have taken `keep` (saves
      // of other ids run at once), and counting it anyway evicted one record too many.
      const excess = all.length - maxSessions;
      const byAge = all.filter((id) => id !== keep);
      await Promise.all([...byAge.slice(0, Math.max(0, excess)).map((id) => tx.store.delete(id)), tx.done]);
    } catch (e) {
      throw storageError(e, 'evict sessions');
    }
  }
}

/** The record's kept inputs if they fit the session's model (count, length, type), else undefined. */
function validInputs(record: StoredRecord, session: Session): (Float32Array | Int32Array)[] | undefined {
  const inputs = record.inputs;
  if (!inputs || !Array.isArray(inputs.steps) || session.keepInputs === 0) return undefined;
  const { inputSize, inputIsTokens } = session.model.info;
  if (inputs.tokens !== inputIsTokens) return undefined;
  const ok = inputs.steps.every(
    (x) => (inputIsTokens ? x instanceof Int32Array : x instanceof Float32Array) && x.length === inputSize,
  );
  return ok ? inputs.steps.slice(-session.keepInputs) : undefined;
}
