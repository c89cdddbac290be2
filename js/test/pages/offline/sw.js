// A module service worker (as a Chrome MV3 extension's background is): it imports webrnn and runs
// a model when the page asks, and it serves the app cache-first, so that after the first visit
// the app works offline. The recipe of js/README.md, "Offline".
import { Runtime, VARIANTS } from '/pkg/webrnn.js';

import { MODEL, twelveSteps } from './steps.js';

const CACHE = 'webrnn-offline-v1';
// The app, the package's JS and every wasm variant (the browser picks one at run time), the model.
const FILES = ['./index.html', './app.js', './steps.js', '/pkg/webrnn.js', ...VARIANTS.map((v) => `/pkg/${v.file}`), MODEL];

self.addEventListener('install', (e) => e.waitUntil(caches.open(CACHE).then((c) => c.addAll(FILES)).then(() => self.skipWaiting())));
self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()));
self.addEventListener('fetch', (e) => e.respondWith(caches.match(e.request).then((hit) => hit ?? fetch(e.request))));

self.addEventListener('message', (e) => {
  const port = e.ports[0];
  e.waitUntil(
    Runtime.create({ backend: 'cpu' })
      .then(async (rt) => port.postMessage({ outputs: await twelveSteps(rt), variant: rt.variant }))
      .catch((error) => port.postMessage({ error: `${error?.name}: ${error?.message}` })),
  );
});
