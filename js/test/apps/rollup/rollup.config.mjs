// Rollup 4 build of the app (js/test/apps/run.mjs). Rollup resolves node_modules with the
// node-resolve plugin (as in every Rollup app) and copies `new URL('./x', import.meta.url)` assets
// with @web/rollup-plugin-import-meta-assets: the one line webrnn needs.

import { nodeResolve } from '@rollup/plugin-node-resolve';
import { importMetaAssets } from '@web/rollup-plugin-import-meta-assets';
import { fileURLToPath } from 'node:url';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));

export default {
  input: here('../shared/app.js'),
  output: { dir: here('../out/rollup'), format: 'es', entryFileNames: 'app.js' },
  plugins: [nodeResolve({ browser: true }), importMetaAssets()],
};
