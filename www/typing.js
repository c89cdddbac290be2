// Panel "type": a character-level GRU suggests how the user's text goes on. One session per user
// follows everything typed; it is saved in IndexedDB (webrnn's StateStore), so after a reload the
// predictor continues where the user was, and "Forget me" deletes it.
//
// The main session has consumed "\n" + text except the last character (the model's start token is
// the newline that ends the previous fortune). To suggest, a scratch session copies its state,
// steps that last character and then greedily continues the top few first characters to the end of
// a word. Keeping the last character out of the main session means the saved state alone (with the
// text) is enough to suggest again after a reload: the stored record needs no model output.
//
// Learning as you type (#17, on by default, the "Learn as I type" toggle): each time the text
// completes a chunk of SNAPSHOT_EVERY characters, `main` steps through the chunk again and learns
// each next character (`learn`), so its adapter picks up the user's words; the adapter is used
// only while it beats the model alone on the recent window. It is saved with the state, and
// "Forget me" deletes both. The backspace snapshots and the scratch session's copy of the state
// leave the adapter out (a few KiB instead of ~200); the scratch session copies the adapter only
// after it has changed by ADAPTER_SYNC updates.

import { Runtime } from '/pkg/webrnn.js';

const STORE_NAME = 'webrnn-demo';
const USER_KEY = 'webrnn-demo:user';
const TEXT_KEY = 'webrnn-demo:text';
/** Snapshots of the main session every this many characters, to go back on Backspace quickly. */
const SNAPSHOT_EVERY = 32;
const CANDIDATES = 3;
const MAX_SUGGESTION = 24;
const SAVE_DELAY_MS = 300;
const LATENCY_WINDOW = 500;
const LEARN_KEY = 'webrnn-demo:learn';
/** The scratch session copies main's adapter after this many updates. */
const ADAPTER_SYNC = 16;

const $ = (id) => document.getElementById(id);

export async function startTyping(runtime, { onStatus }) {
  const input = $('editor-input');
  const ghost = $('editor-ghost');
  const forgetButton = $('forget');
  const learnToggle = $('learn-toggle');
  learnToggle.checked = localStorage.getItem(LEARN_KEY) !== 'off';

  const onProgress = ({ loaded, total }) =>
    onStatus(`Loading the text model… ${total ? Math.round((100 * loaded) / total) + '%' : kib(loaded)}`);
  const meta = await fetchJson('models/text-gru.json');
  let model;
  try {
    model = await runtime.loadModel('models/text-gru.onnx', { onProgress });
  } catch (e) {
    if (runtime.backend !== 'webgpu') throw e;
    // The GPU backend could not take the model: the CPU always can.
    console.warn('webrnn demo: the text model falls back to the CPU:', e);
    runtime = await Runtime.create({ backend: 'cpu' });
    model = await runtime.loadModel('models/text-gru.onnx', { onProgress });
  }

  const badge = $('type-backend');
  badge.textContent = runtime.backend;
  badge.title =
    runtime.backend === 'webgpu'
      ? 'WebGPU'
      : 'One stream, one step per keystroke: the CPU has the lowest latency (WebGPU is for batches of sessions)';

  const vocab = meta.vocab;
  const index = new Map([...vocab].map((c, i) => [c, i]));
  const space = index.get(' ');
  const token = (c) => index.get(c) ?? space;

  let mismatchNote = '';
  const store = await runtime.openStore(STORE_NAME, {
    maxSessions: 8,
    onMismatch: () => {
      mismatchNote = 'the model changed since your last visit; state rebuilt from your text';
    },
  });

  // --- state -----------------------------------------------------------------------------------
  let user = localStorage.getItem(USER_KEY) ?? newUser();
  let main = model.createSession(user, { adapt: true });
  let scratch = model.createSession(`${user}:suggest`, { adapt: true });
  /** main's adapter updates when scratch last copied it (-1: never). */
  let scratchAdapter = -1;
  /** What `main` has consumed: a prefix of "\n" + text. */
  let consumed = '';
  /** State snapshots of `main` by consumed length (multiples of SNAPSHOT_EVERY, and the restore point). */
  const snapshots = new Map();
  let suggestions = [];
  /** The text the suggestions were made for. */
  let suggestedFor = null;
  let dismissed = false;
  const latencies = [];

  // Everything that touches the sessions runs one at a time, in order.
  let chain = Promise.resolve();
  const exclusive = (fn) => {
    const done = chain.then(fn);
    chain = done.catch(() => {});
    return done;
  };

  // --- restore ---------------------------------------------------------------------------------
  const saved = readSavedText();
  const text = saved?.user === user ? saved.text : '';
  let restoredFrom = 'new session';
  let restored = false;
  try {
    restored = await store.restore(main);
  } catch (e) {
    // A damaged record: the session keeps its zero state; start over from the text.
    console.warn('webrnn demo: could not restore the saved state', e);
    await store.delete(user);
    restoredFrom = 'saved state was damaged; rebuilt from your text';
  }
  if (restored && main.steps === text.length) {
    consumed = ('\n' + text).slice(0, -1);
    snapshots.set(consumed.length, main.saveState({ adapter: false }));
    restoredFrom = `restored from IndexedDB (${main.steps} steps)`;
  } else if (restored || text) {
    main.reset();
    if (restoredFrom === 'new session') restoredFrom = mismatchNote || 'rebuilt from your text';
  }
  input.value = text;

  // --- the model -------------------------------------------------------------------------------

  /**
   * Brings `main` to "\n" + text minus its last character, going back to a snapshot if needed
   * (the snapshots hold the state alone: the adapter keeps what it learned), learning each chunk
   * of SNAPSHOT_EVERY characters it completes.
   */
  async function sync(text) {
    const full = '\n' + text;
    const target = full.slice(0, -1);
    const common = commonPrefix(consumed, target);
    if (common < consumed.length) {
      const back = Math.max(0, ...[...snapshots.keys()].filter((k) => k <= common));
      if (back > 0) main.loadState(snapshots.get(back));
      else main.reset();
      consumed = target.slice(0, back);
      for (const k of snapshots.keys()) if (k > common) snapshots.delete(k);
    }
    while (consumed.length < target.length) {
      const next = Math.min(target.length, (Math.floor(consumed.length / SNAPSHOT_EVERY) + 1) * SNAPSHOT_EVERY);
      const chunk = Int32Array.from(target.slice(consumed.length, next), token);
      if (chunk.length === 1) await main.step(chunk);
      else await main.run(chunk, chunk.length);
      consumed = target.slice(0, next);
      if (next % SNAPSHOT_EVERY === 0) {
        if (learnToggle.checked) await learnChunk(next, full);
        snapshots.set(next, main.saveState({ adapter: false }));
      }
    }
  }

  /**
   * Learns the SNAPSHOT_EVERY characters before `end` (main is at `end`): back to the snapshot at
   * the chunk's start (state only: the adapter stays), then each character stepped and the next
   * one learned, which brings main back to the same state. Learning a chunk once it is complete
   * keeps what Backspace removes within it out of the adapter.
   */
  async function learnChunk(end, full) {
    const start = end - SNAPSHOT_EVERY;
    if (!snapshots.has(start) && start !== 0) return; // restored past it
    if (start > 0) main.loadState(snapshots.get(start));
    else main.reset();
    for (let i = start; i < end; i++) {
      await main.step(Int32Array.of(token(full[i])));
      await main.learn(token(full[i + 1]));
    }
  }

  /** The top CANDIDATES continuations of the text, each greedily completed to the end of a word. */
  async function suggest(text) {
    const last = ('\n' + text).slice(-1);
    const midWord = /[A-Za-z0-9']/.test(last);
    const updates = main.adaptation.updates;
    if (scratchAdapter < 0 || updates < scratchAdapter || updates - scratchAdapter >= ADAPTER_SYNC) {
      scratch.loadState(main.saveState()); // the state and the adapter
      scratchAdapter = updates;
    } else {
      scratch.loadState(main.saveState({ adapter: false }));
    }
    const first = await scratch.step(Int32Array.of(token(last)));
    const base = scratch.saveState({ adapter: false });
    const found = [];
    const starts = topTokens(first, CANDIDATES + 1).filter((t) => t !== 0).slice(0, CANDIDATES);
    for (const [i, start] of starts.entries()) {
      if (i > 0) scratch.loadState(base);
      let completion = vocab[start];
      const continuesWord = midWord && /[A-Za-z0-9']/.test(completion);
      let y = await scratch.step(Int32Array.of(start));
      while (completion.length < MAX_SUGGESTION) {
        const next = argmax(y);
        if (next === 0) break; // end of a fortune
        const c = vocab[next];
        // Stop at the end of a word, but go on past a very short next word (" a" -> " a good").
        if (!/[A-Za-z0-9'-]/.test(c) && /[A-Za-z0-9]/.test(completion)) {
          const letters = completion.match(/[A-Za-z0-9]/g).length;
          if (continuesWord || letters >= 3 || /\w\W+\w/.test(completion)) break;
        }
        completion += c;
        y = await scratch.step(Int32Array.of(next));
      }
      if (!found.some((s) => s.text === completion)) found.push({ text: completion, p: Math.exp(first[start]) });
    }
    return found;
  }

  // --- the page --------------------------------------------------------------------------------

  let pendingSince = null;
  let running = false;

  /** Called on every edit: processes the latest text once the previous keystroke is done. */
  function changed(since = performance.now()) {
    dismissed = false;
    pendingSince ??= since;
    if (!running) {
      running = true;
      exclusive(process).finally(() => {
        running = false;
      });
    }
  }

  async function process() {
    while (pendingSince !== null) {
      const since = pendingSince;
      pendingSince = null;
      const text = input.value;
      await sync(text);
      suggestions = await suggest(text);
      suggestedFor = text;
      if (input.value === text) {
        render();
        renderSuggestions();
        $('type-panel').dataset.processed = String(text.length);
        latencies.push(performance.now() - since);
        if (latencies.length > LATENCY_WINDOW) latencies.shift();
        showLatency();
        showAdaptation();
        scheduleSave(text);
      }
    }
  }

  function caretAtEnd() {
    return input.selectionStart === input.value.length && input.selectionEnd === input.value.length;
  }

  /** The ghost text at the caret: only for the text the suggestions were made for. */
  function render() {
    const primary = suggestedFor === input.value ? (suggestions[0]?.text ?? '') : '';
    const showGhost = primary && !dismissed && input.value.length > 0 && caretAtEnd() && document.activeElement === input;
    const tail = document.createElement('span');
    tail.className = 'ghost';
    tail.textContent = showGhost ? primary : '';
    ghost.replaceChildren(document.createTextNode(input.value), tail, document.createTextNode('\u200b'));
    ghost.scrollTop = input.scrollTop;
    $('session-info').textContent = `${user.slice(0, 13)}… · ${input.value.length} characters · ${restoredFrom}`;
  }

  /** The suggestion line and buttons: rebuilt only when the suggestions change (keeps the focus). */
  function renderSuggestions() {
    $('prediction').textContent = suggestions[0] ? JSON.stringify(suggestions[0].text) : '–';
    $('chips').replaceChildren(
      ...suggestions.map((s, i) => {
        const b = document.createElement('button');
        b.type = 'button';
        b.textContent = s.text.replace(/ /g, '\u2423');
        const p = document.createElement('span');
        p.className = 'p';
        p.textContent = `${Math.round(100 * s.p)}%`;
        b.append(p);
        b.setAttribute('aria-label', `Insert “${s.text}”${i === 0 ? ' (Tab)' : ''}`);
        b.addEventListener('click', () => {
          accept(s.text);
          input.focus();
        });
        return b;
      }),
    );
  }

  function showLatency() {
    const sorted = [...latencies].sort((a, b) => a - b);
    const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
    const step = runtime.stats().latencyUs;
    $('latency').textContent =
      `p50 ${ms(at(0.5))} · p95 ${ms(at(0.95))} over ${sorted.length} keystroke${sorted.length === 1 ? '' : 's'} · ` +
      `one model step p50 ${(step.p50 / 1000).toFixed(3)} ms on ${runtime.backend}`;
  }

  /** "base vs. adapted" top-1 accuracy on the characters learned so far. */
  function showAdaptation() {
    const a = main.adaptation;
    const out = $('adapt-info');
    const pct = (v) => `${(100 * v).toFixed(1)}%`;
    if (a.baseAccuracy === null) {
      out.textContent = learnToggle.checked ? 'type to see it' : 'learning is off';
      for (const k of ['base', 'adapted', 'updates', 'active']) delete out.dataset[k];
      return;
    }
    out.textContent =
      `base ${pct(a.baseAccuracy)} vs. adapted ${pct(a.adaptedAccuracy)} over ${a.updates} characters · ` +
      `adapter ${a.active ? 'in use' : 'not in use (not better yet)'}${learnToggle.checked ? '' : ' · learning off'}`;
    out.dataset.base = String(a.baseAccuracy);
    out.dataset.adapted = String(a.adaptedAccuracy);
    out.dataset.updates = String(a.updates);
    out.dataset.active = String(a.active);
  }

  function accept(text) {
    const end = input.value.length;
    input.setRangeText(text, end, end, 'end');
    changed();
  }

  // --- saving ----------------------------------------------------------------------------------

  let saveTimer = 0;
  function scheduleSave(text) {
    clearTimeout(saveTimer);
    saveTimer = setTimeout(() => exclusive(() => save(text)), SAVE_DELAY_MS);
  }

  async function save(text) {
    if (('\n' + text).slice(0, -1) !== consumed) return; // a newer edit is on its way
    // The text first, then the state: a state whose steps do not match the text is rebuilt.
    localStorage.setItem(TEXT_KEY, JSON.stringify({ user, text }));
    await store.save(main);
    const info = $('save-info');
    const bytes = main.saveState().byteLength;
    info.textContent = `${kib(bytes)} in IndexedDB · ${main.steps} steps · saved ${new Date().toLocaleTimeString()}`;
    info.dataset.steps = String(main.steps);
  }

  async function forget() {
    clearTimeout(saveTimer);
    const old = user;
    const had = await store.delete(old);
    localStorage.removeItem(TEXT_KEY);
    localStorage.removeItem(USER_KEY);
    main.dispose();
    scratch.dispose();
    user = newUser();
    main = model.createSession(user, { adapt: true });
    scratch = model.createSession(`${user}:suggest`, { adapt: true });
    scratchAdapter = -1;
    consumed = '';
    snapshots.clear();
    latencies.length = 0;
    restoredFrom = 'new session';
    input.value = '';
    $('save-info').textContent = 'nothing saved';
    delete $('save-info').dataset.steps;
    $('forget-note').textContent = had
      ? `Deleted the saved state of ${old.slice(0, 13)}…; you are a new user now.`
      : 'Nothing was saved yet; you are a new user now.';
  }

  // --- events ----------------------------------------------------------------------------------

  input.addEventListener('input', (event) => changed(event.timeStamp || performance.now()));
  input.addEventListener('keydown', (event) => {
    const primary = suggestions[0]?.text;
    if (event.key === 'Tab' && !event.shiftKey && !event.altKey && !event.ctrlKey && !event.metaKey) {
      if (primary && !dismissed && caretAtEnd() && input.value.length > 0) {
        event.preventDefault();
        accept(primary);
      }
    } else if (event.key === 'Escape' && !dismissed) {
      dismissed = true;
      render();
    }
  });
  input.addEventListener('scroll', () => {
    ghost.scrollTop = input.scrollTop;
  });
  for (const type of ['focus', 'blur', 'click', 'keyup', 'select']) input.addEventListener(type, () => render());
  learnToggle.addEventListener('change', () => {
    localStorage.setItem(LEARN_KEY, learnToggle.checked ? 'on' : 'off');
    showAdaptation();
  });
  forgetButton.addEventListener('click', () => {
    exclusive(forget).then(() => changed());
  });

  // The first suggestion (for the restored or empty text), then the page is ready.
  $('save-info').textContent = restored ? `restored ${main.steps} steps` : 'nothing saved yet';
  if (restored) $('save-info').dataset.steps = String(main.steps);
  changed();
  await chain;
  input.disabled = false;
  forgetButton.disabled = false;
  learnToggle.disabled = false;
  showAdaptation();
  render();
  $('type-panel').dataset.ready = 'true';
  $('type-panel').dataset.restored = String(restored);
  return { backend: runtime.backend };
}

function newUser() {
  const id = `user-${crypto.randomUUID?.() ?? Math.random().toString(36).slice(2)}`;
  localStorage.setItem(USER_KEY, id);
  return id;
}

function readSavedText() {
  try {
    const saved = JSON.parse(localStorage.getItem(TEXT_KEY) ?? 'null');
    return saved && typeof saved.text === 'string' && typeof saved.user === 'string' ? saved : null;
  } catch {
    return null;
  }
}

async function fetchJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

function commonPrefix(a, b) {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

function argmax(values) {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

function topTokens(values, k) {
  return Array.from(values.keys())
    .sort((a, b) => values[b] - values[a])
    .slice(0, k);
}

function ms(value) {
  return value === undefined ? '–' : `${value.toFixed(1)} ms`;
}

function kib(bytes) {
  return bytes < 1024 ? `${bytes} B` : `${(bytes / 1024).toFixed(1)} KiB`;
}
