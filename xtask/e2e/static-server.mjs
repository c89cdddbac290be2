// A static file server on 127.0.0.1 for the browser scripts that are not the package tests
// (bench/webgpu.mjs): `resolve(urlPath)` maps a request to a file (or undefined: 404);
// `onServe(urlPath, file)` sees each file served. No caching headers allow reuse.

import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname } from 'node:path';

const TYPES = {
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.wasm': 'application/wasm',
  '.html': 'text/html',
  '.json': 'application/json',
};

/** Starts the server; resolves to `{ server, origin }`. */
export async function serveStatic(resolve, onServe = () => {}) {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const file = req.method === 'GET' ? resolve(path) : undefined;
    if (!file || !statSync(file, { throwIfNoEntry: false })?.isFile()) return res.writeHead(404).end();
    onServe(path, file);
    res.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream', 'Cache-Control': 'no-store' });
    createReadStream(file).pipe(res);
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return { server, origin: `http://127.0.0.1:${server.address().port}` };
}
