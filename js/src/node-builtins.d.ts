// The one Node.js built-in the package touches, from its Node entry (node.ts) only. Declared here
// so the build needs no @types/node.
declare module 'node:fs/promises' {
  export function readFile(path: URL | string): Promise<Uint8Array>;
}
