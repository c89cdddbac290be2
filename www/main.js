// The demo page. It imports the package from /pkg/ as an app without a bundler would, and runs three
// panels: "type" (typing.js), "stream" (stream.js) and "listen" (listen.js, voice activity on the
// microphone once its button is pressed). <body data-status> says how far it got:
// loading -> ok (both panels running) or error (the message is in #error); the e2e test
// (xtask/e2e/demo.mjs) waits for it.

import { Runtime } from '/pkg/webrnn.js';

import { startTyping } from './typing.js';
import { startStream } from './stream.js';
import { startListen } from './listen.js';

const $ = (id) => document.getElementById(id);

function setStatus(status, text) {
  if (document.body.dataset.status === 'error') return;
  document.body.dataset.status = status;
  $('status').textContent = text;
}

function fail(error) {
  console.error(error);
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  $('error').textContent = $('error').textContent ? `${$('error').textContent}\n${message}` : message;
  document.body.dataset.status = 'error';
  $('status').textContent = 'Something failed.';
}

window.addEventListener('error', (event) => fail(event.error ?? event.message));
window.addEventListener('unhandledrejection', (event) => fail(event.reason));

async function main() {
  // One runtime per panel, so each panel's stats() count only its own steps. The text panel steps
  // one stream per keystroke: the CPU answers that in microseconds, while WebGPU would add a GPU
  // round trip to every step; WebGPU pays off for the stream panel's batches of sessions.
  const runtime = await Runtime.create({ backend: 'cpu' });
  const probe = await Runtime.create({ backend: 'auto' });
  $('runtime-info').textContent =
    `webrnn ${runtime.build.version}, wasm ${runtime.variant}, ` +
    `GPU backend ${runtime.build.gpu ? 'built in' : 'not in this build'}, ` +
    `WebGPU adapter ${probe.webgpuAdapter ? 'found' : 'none'}`;
  setStatus('loading', 'Loading the models…');
  // Voice activity on the CPU: one 32 ms frame per step, latency-bound like the text panel.
  startListen(runtime);
  const [typing, stream] = await Promise.all([
    startTyping(runtime, { onStatus: (text) => setStatus('loading', text) }),
    startStream({ onFatal: fail }),
  ]);
  setStatus('ok', `Running: text on ${typing.backend}, sensors on ${stream.backend()} (wasm ${runtime.variant}).`);
}

main().catch(fail);
