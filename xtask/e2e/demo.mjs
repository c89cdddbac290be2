// End-to-end test of the demo page (www/), run by `cargo xtask test` against the xtask server:
//
//   node xtask/e2e/demo.mjs http://127.0.0.1:PORT/ target/e2e
//
// playwright-core drives Debian's Chromium (never a downloaded browser) twice: without WebGPU and
// with WebGPU on SwiftShader. Each run types text with the keyboard and sees suggestions, accepts
// one with Tab, reloads and sees the session restored (same text, same suggestion), runs the stream
// panel until an injected anomaly is detected, checks the WebGPU toggle (switches backends, or
// shows "WebGPU unavailable"), checks a narrow window, types a repetitive text and sees the
// adapted next-character accuracy pass the base one (#17), "Forget me", and that the console stayed
// free of errors. The "listen" panel hears a fake microphone playing tests/data/listen/sentences.wav
// (one segment per sentence), and in a third run noise.wav (none). Screenshots go to the output folder. CHROMIUM=path overrides the browser.

import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';
import { BASE_FLAGS, WEBGPU_FLAGS, fakeMicFlags } from './chromium-flags.mjs';

const [url, outDir = 'target/e2e'] = process.argv.slice(2);
if (!url) {
  console.error('usage: node xtask/e2e/demo.mjs URL [OUT_DIR]');
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });

// The fake microphone plays (and loops) scripts/make_listen_audio.sh's WAVs: three sentences
// 2.5 s apart, where sentences.json says; and noise without speech.
const LISTEN = fileURLToPath(new URL('../../tests/data/listen/', import.meta.url));
const SENTENCES = JSON.parse(readFileSync(join(LISTEN, 'sentences.json'), 'utf8'));
const MIC = fakeMicFlags(join(LISTEN, 'sentences.wav'));
const MODES = [
  { name: 'no-webgpu', args: [...BASE_FLAGS, '--disable-gpu', ...MIC] },
  { name: 'webgpu', args: [...BASE_FLAGS, ...WEBGPU_FLAGS, ...MIC] },
];
const TYPED = 'The best way to predict the fut';
/** A user's repetitive text: learning it must make the adapted predictions beat the base model's. */
const REPEATED = ' Call mom at noon, then walk the dog.'.repeat(9);

let passed = 0;
let failed = 0;

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

async function check(mode, name, fn) {
  const started = performance.now();
  try {
    const detail = await fn();
    passed++;
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(`  ok    ${mode} ${name} (${seconds}s)${detail ? `: ${detail}` : ''}`);
    return true;
  } catch (e) {
    failed++;
    console.log(`  FAIL  ${mode} ${name}: ${e?.stack ?? e}`);
    return false;
  }
}

async function ready(page) {
  await page.waitForSelector('body[data-status="ok"], body[data-status="error"]', { timeout: 60_000 });
  const status = await page.getAttribute('body', 'data-status');
  if (status !== 'ok') throw new Error(`the page says ${status}: ${await page.textContent('#error')}`);
}

const text = (page, selector) => page.textContent(selector).then((t) => t.trim());
const data = (page, selector, key) => page.$eval(selector, (e, k) => e.dataset[k], key);

/** Waits until the type panel has made its suggestions for the text in the box. */
async function settled(page) {
  await page.waitForFunction(
    () => document.getElementById('type-panel').dataset.processed === String(document.getElementById('editor-input').value.length),
  );
}

async function runMode(mode) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: mode.args,
    headless: true,
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.grantPermissions(['microphone']);
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  const errors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`page: ${e.message}`));
  const shot = (name, target = page, options = {}) =>
    target.screenshot({ path: join(outDir, `${mode.name}-${name}.png`), ...options });

  try {
    const loaded = await check(mode.name, 'loads', async () => {
      await page.goto(url);
      await ready(page);
      return `${await text(page, '#status')} ${await text(page, '#runtime-info')}`;
    });
    if (!loaded) return;

    // Listening starts now and is checked after the typing checks (the fake microphone plays in
    // real time; the reload check ends it).
    const listening = await check(mode.name, 'listen: "Start listening" opens the microphone', async () => {
      await page.click('#listen-start');
      await page.waitForFunction(() => Number(document.getElementById('listen').dataset.frames) > 0, null, { timeout: 20_000 });
      return `${await text(page, '#listen-note')} ${await text(page, '#listen-backend')}`;
    });

    let accepted = '';
    await check(mode.name, 'typing shows suggestions, Tab accepts', async () => {
      await page.focus('#editor-input');
      await page.keyboard.type(TYPED, { delay: 20 });
      await settled(page);
      const suggestion = JSON.parse(await text(page, '#prediction'));
      assert(suggestion.length > 0, 'no suggestion');
      const ghost = await text(page, '#editor-ghost .ghost');
      assert(ghost === suggestion.trim() || ghost === suggestion, `the ghost text "${ghost}" is not "${suggestion}"`);
      const chips = await page.$$eval('#chips button', (b) => b.length);
      assert(chips >= 1, 'no suggestion buttons');
      const latency = await text(page, '#latency');
      assert(/p50 [\d.]+ ms · p95 [\d.]+ ms/.test(latency), `latency line: ${latency}`);
      await shot('type', page.locator('#type-panel'));
      await page.keyboard.press('Tab');
      await settled(page);
      accepted = await page.inputValue('#editor-input');
      assert(accepted === TYPED + suggestion, `after Tab the text is "${accepted}"`);
      const focused = await page.evaluate(() => document.activeElement?.id);
      assert(focused === 'editor-input', `Tab moved the focus to ${focused}`);
      return `"${TYPED}" -> "${suggestion}"; ${chips} suggestions; ${latency}`;
    });

    await check(mode.name, 'Backspace goes back to the same state', async () => {
      await settled(page);
      const before = await text(page, '#prediction');
      await page.keyboard.type(' xyz', { delay: 20 });
      await settled(page);
      for (let i = 0; i < 4; i++) await page.keyboard.press('Backspace');
      await settled(page);
      assert((await page.inputValue('#editor-input')) === accepted, 'Backspace did not restore the text');
      const after = await text(page, '#prediction');
      assert(after === before, `after typing and deleting " xyz" the suggestion is ${after}, was ${before}`);
      return `suggestion ${after} again`;
    });

    if (listening) await check(mode.name, 'listen: each sentence of the fake microphone is one segment', () => listenSegments(page, shot));

    await check(mode.name, 'reload restores the session', async () => {
      await settled(page);
      await page.waitForFunction(
        (n) => document.getElementById('save-info').dataset.steps === String(n),
        accepted.length,
      );
      const before = await text(page, '#prediction');
      await page.reload();
      await ready(page);
      const value = await page.inputValue('#editor-input');
      assert(value === accepted, `after reload the text is "${value}"`);
      assert((await data(page, '#type-panel', 'restored')) === 'true', 'the state was not restored');
      const info = await text(page, '#session-info');
      assert(info.includes('restored from IndexedDB'), `session info: ${info}`);
      const after = await text(page, '#prediction');
      assert(after === before, `the suggestion changed across the reload: ${before} -> ${after}`);
      return `${info}; suggestion ${after}`;
    });

    await check(mode.name, 'keyboard: Esc hides the suggestion, then Tab leaves the box', async () => {
      await page.focus('#editor-input');
      await page.keyboard.press('End');
      await page.keyboard.press('Control+End');
      await page.keyboard.press('Escape');
      assert((await text(page, '#editor-ghost .ghost')) === '', 'the ghost text is still shown');
      await page.keyboard.press('Tab');
      assert((await page.inputValue('#editor-input')) === accepted, 'Tab changed the text after Esc');
      const focused = await page.evaluate(() => {
        const e = document.activeElement;
        return e?.closest('#chips') ? `suggestion button "${e.textContent}"` : `${e?.tagName} ${e?.id}`;
      });
      assert(focused.startsWith('suggestion button'), `Tab moved the focus to ${focused}`);
      return `focus moved to the ${focused}`;
    });

    await check(mode.name, 'stream panel scores 512 sensors and detects anomalies', async () => {
      await page.waitForFunction(() => Number(document.getElementById('stream-panel').dataset.ticks) > 60);
      await page.focus('#stream-inject');
      await page.keyboard.press('Enter');
      await page.waitForFunction(() => Number(document.getElementById('stream-panel').dataset.detected) >= 1, null, {
        timeout: 45_000,
      });
      const rate = await text(page, '#stream-rate');
      assert(/session-steps\/s/.test(rate) && rate.includes('512 sessions'), `rate: ${rate}`);
      const scores = await text(page, '#stream-scores');
      await shot('stream', page.locator('#stream-panel'));
      return `${rate}; ${scores}; stepBatch ${await text(page, '#stream-latency')}`;
    });

    await check(mode.name, 'stream panel resizes to 2048 sensors and back', async () => {
      const rates = [];
      for (const count of ['2048', '512']) {
        await page.selectOption('#stream-count', count);
        await page.waitForFunction(
          (n) =>
            document.getElementById('stream-rate').textContent.includes(`${n} sessions`) &&
            Number(document.getElementById('stream-panel').dataset.ticks) > 20,
          count,
        );
        rates.push(await text(page, '#stream-rate'));
      }
      return rates.join('; ');
    });

    await check(mode.name, 'WebGPU toggle', async () => {
      const gpu = 'input[name="stream-backend"][value="webgpu"]';
      if (await page.isDisabled(gpu)) {
        const label = await page.$eval(gpu, (e) => e.parentElement.textContent.trim());
        const note = await text(page, '#gpu-note');
        assert(label === 'WebGPU unavailable', `the toggle says "${label}"`);
        assert(note.startsWith('WebGPU unavailable: '), `note: ${note}`);
        return `fallback shown: ${note}`;
      }
      const ticks = async () => Number(await data(page, '#stream-panel', 'ticks'));
      const seen = [];
      for (const value of ['cpu', 'webgpu']) {
        await page.focus(`input[name="stream-backend"][value="${value}"]`);
        await page.keyboard.press('Space');
        await page.waitForFunction(
          (v) => (document.getElementById('stream-panel').dataset.backend === 'webgpu') === (v === 'webgpu'),
          value,
        );
        const t = await ticks();
        await page.waitForFunction((t0) => Number(document.getElementById('stream-panel').dataset.ticks) > t0 + 10, t);
        seen.push(`${await data(page, '#stream-panel', 'backend')}: ${await text(page, '#stream-rate')}`);
      }
      return seen.join('; ');
    });

    await check(mode.name, 'narrow window', async () => {
      await page.setViewportSize({ width: 360, height: 780 });
      await page.waitForTimeout(300);
      const { scroll, client } = await page.evaluate(() => ({
        scroll: document.documentElement.scrollWidth,
        client: document.documentElement.clientWidth,
      }));
      assert(scroll <= client + 1, `the page scrolls sideways: ${scroll} > ${client}`);
      await shot('narrow', page, { fullPage: true });
      await page.setViewportSize({ width: 1280, height: 900 });
      await page.waitForTimeout(200);
      await shot('page', page, { fullPage: true });
      return `${client}px wide, no horizontal scroll`;
    });

    await check(mode.name, 'learning as you type: adapted accuracy passes the base on a repetitive text', async () => {
      await page.focus('#editor-input');
      await page.keyboard.press('Control+End');
      const before = Number((await data(page, '#adapt-info', 'updates')) ?? 0);
      await page.keyboard.type(REPEATED, { delay: 5 });
      await settled(page);
      await page.waitForFunction((n) => Number(document.getElementById('adapt-info').dataset.updates) >= n, before + 256);
      const [base, adapted] = [Number(await data(page, '#adapt-info', 'base')), Number(await data(page, '#adapt-info', 'adapted'))];
      const line = await text(page, '#adapt-info');
      assert(adapted > base, `adapted ${adapted} does not pass base ${base}: ${line}`);
      assert(line.startsWith('base '), `the line: ${line}`);
      await shot('adapt', page.locator('#type-panel'));
      return line;
    });

    await check(mode.name, '"Forget me" deletes the saved state', async () => {
      await page.focus('#forget');
      await page.keyboard.press('Enter');
      await page.waitForFunction(() => document.getElementById('editor-input').value === '');
      const note = await text(page, '#forget-note');
      assert(note.startsWith('Deleted the saved state'), `note: ${note}`);
      await page.reload();
      await ready(page);
      assert((await page.inputValue('#editor-input')) === '', 'the text came back');
      assert((await data(page, '#type-panel', 'restored')) === 'false', 'a state was restored');
      const adaptInfo = await text(page, '#adapt-info');
      assert((await data(page, '#adapt-info', 'updates')) === undefined, `the adapter came back: ${adaptInfo}`);
      return `${note}; ${adaptInfo}`;
    });

    await check(mode.name, 'no console errors', async () => {
      assert(errors.length === 0, errors.join('\n'));
    });
  } finally {
    await browser.close();
  }
}

/**
 * The first pass of sentences.wav (the fake microphone loops it) gives one segment per sentence:
 * counted once the audio heard reaches its end (the last sentence's segment has ended by then,
 * and the next pass's first one cannot have), with each segment where its sentence is, in the
 * file's time (the segments' starts, less the first's offset, against the sentences').
 */
async function listenSegments(page, shot) {
  const n = SENTENCES.sentences.length;
  await page.waitForFunction((s) => Number(document.getElementById('listen').dataset.heard) >= s, SENTENCES.seconds - 0.4, {
    timeout: 40_000,
  });
  const [count, rows] = await page.evaluate(() => [
    document.getElementById('listen').dataset.segments,
    [...document.querySelectorAll('#listen-segments li')].reverse().map((li) => [Number(li.dataset.start), Number(li.dataset.duration)]),
  ]);
  assert(Number(count) === n, `data-segments is ${count} after one pass of ${n} sentences: ${JSON.stringify(rows)}`);
  assert(rows.length === n, `${rows.length} rows`);
  const latency = await text(page, '#listen-latency');
  assert(/p50 [\d.]+ ms · p95 [\d.]+ ms/.test(latency), `latency: ${latency}`);
  // Where the page's clock started in the file: the first sentence's start less the first segment's.
  const shift = rows[0][0] + 0.8 - SENTENCES.sentences[0].start; // 800 ms of pre-speech pad
  rows.forEach(([start, duration], i) => {
    const s = SENTENCES.sentences[i];
    const at = start + 0.8 - shift;
    assert(Math.abs(at - s.start) < 0.4, `segment ${i} starts at ${at.toFixed(2)} s of the file, sentence ${i} at ${s.start}`);
    assert(duration > s.end - s.start && duration < s.end - s.start + 0.8 + 1.4 + 0.5, `segment ${i} lasts ${duration} s, sentence ${i} ${(s.end - s.start).toFixed(2)} s`);
  });
  await shot('listen', page.locator('#listen'));
  await page.click('#listen-start'); // pause
  return `${count} segments: ${rows.map(([a, d]) => `${a.toFixed(2)} s +${d.toFixed(2)}`).join(', ')}; ${latency}`;
}

/** Noise without speech on the fake microphone: frames are processed, no segment. */
async function noiseOnly() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: [...BASE_FLAGS, '--disable-gpu', ...fakeMicFlags(join(LISTEN, 'noise.wav'))],
    headless: true,
  });
  try {
    await check('noise', 'listen: noise on the microphone gives no segment', async () => {
      const context = await browser.newContext({ viewport: { width: 360, height: 780 } });
      await context.grantPermissions(['microphone']);
      const page = await context.newPage();
      await page.goto(url);
      await ready(page);
      await page.click('#listen-start');
      await page.waitForFunction(() => Number(document.getElementById('listen').dataset.heard) >= 8, null, { timeout: 30_000 });
      const [segments, frames] = await page.evaluate(() => [document.getElementById('listen').dataset.segments, document.getElementById('listen').dataset.frames]);
      assert(segments === '0', `${segments} segments in noise`);
      const { scroll, client } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
      assert(scroll <= client + 1, `the page scrolls sideways while listening: ${scroll} > ${client}`);
      await page.locator('#listen').screenshot({ path: join(outDir, 'noise-listen-narrow.png') });
      return `${frames} frames, 0 segments, 360 px without sideways scroll`;
    });
  } finally {
    await browser.close();
  }
}

for (const mode of MODES) {
  await runMode(mode);
}
await noiseOnly();
console.log(`screenshots: ${outDir}`);
console.log(`demo e2e: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
