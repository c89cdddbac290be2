// The two Node.js built-ins the package touches, and only in Node (loaded with a dynamic import, so
// browsers never fetch them). Declared here so the build needs no @types/node.
declare module 'node:fs/promises' {
  export function readFile(path: URL | string): Promise<Uint8Array>;
}
declare module 'node:url' {
  export function pathToFileURL(path: string): URL;
}
