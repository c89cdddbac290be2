// webpack 5 builds of the app (js/test/apps/run.mjs): `default` is webpack's own defaults plus an
// entry; `next` lays the output out as Next.js does (hashed assets under _next/static/media/,
// a publicPath). In both, webpack rewrites a bare `import.meta.url` to the file: URL of the
// module at build time, and `new URL('./<file>.wasm', import.meta.url)` to an emitted asset.

import { fileURLToPath } from 'node:url';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));

export default [
  {
    name: 'default',
    mode: 'production',
    entry: here('../shared/app.js'),
    output: { path: here('../out/webpack'), filename: 'app.js' },
  },
  {
    name: 'next',
    mode: 'production',
    entry: here('../shared/app.js'),
    output: {
      path: here('../out/webpack-next/_next'),
      publicPath: '/apps/out/webpack-next/_next/',
      filename: 'static/chunks/app.js',
      assetModuleFilename: 'static/media/[name].[contenthash:8][ext]',
    },
    module: { parser: { javascript: { importMeta: true, url: true } } },
  },
];
