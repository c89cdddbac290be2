// The offline app (index.html): registers sw.js, then steps the golden GRU on the page. Its verdict
// goes to <body data-status> / data-result; `fromWorker` asks the service worker to run the same.
import { Runtime } from '/pkg/webrnn.js';

import { twelveSteps } from './steps.js';

/** Runs twelveSteps in the service worker (a module worker importing webrnn). */
export async function fromWorker() {
  const registration = await navigator.serviceWorker.ready;
  const channel = new MessageChannel();
  const reply = new Promise((resolve) => (channel.port1.onmessage = (e) => resolve(e.data)));
  registration.active.postMessage('steps', [channel.port2]);
  const data = await reply;
  if (data.error) throw new Error(`service worker: ${data.error}`);
  return data;
}

async function main() {
  await navigator.serviceWorker.register('./sw.js', { type: 'module' });
  await navigator.serviceWorker.ready;
  const rt = await Runtime.create({ backend: 'cpu' });
  return { outputs: await twelveSteps(rt), variant: rt.variant, controlled: navigator.serviceWorker.controller !== null };
}

main().then(
  (result) => {
    document.body.dataset.result = JSON.stringify(result);
    document.body.dataset.status = 'ok';
  },
  (e) => {
    document.body.dataset.result = `${e?.name}: ${e?.message}`;
    document.body.dataset.status = 'error';
  },
);
