// The package's Node entry (the `node` condition of its exports): the browser entry plus a reader
// of file: URLs, which is how Node loads the .wasm beside this file and models given as paths.
// Kept out of webrnn.js so no browser bundle meets a `node:` import.

import { readFile } from 'node:fs/promises';

import { setFileReader } from './wasm.js';

setFileReader(async (url) => new Uint8Array(await readFile(url)));

export * from './index.js';
