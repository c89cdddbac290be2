// What the test drivers (run.mjs, apps/run.mjs) share: named checks that print ok/FAIL with their
// time, `--only NAME` (a prefix), commands that fail loudly, and the summary line's exit code.

import { spawnSync } from 'node:child_process';

const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
const results = [];

/** Runs check `name` (unless --only excludes it); `fn`'s result is printed after ok. */
export async function check(name, fn) {
  if (only && !name.startsWith(only)) return;
  const started = performance.now();
  try {
    const detail = await fn();
    const text = typeof detail === 'string' ? detail : JSON.stringify(detail);
    results.push({ name, ok: true });
    console.log(`  ok    ${name} (${((performance.now() - started) / 1000).toFixed(1)}s)${text ? `: ${text}` : ''}`);
  } catch (e) {
    results.push({ name, ok: false });
    console.log(`  FAIL  ${name}: ${e?.stack ?? e}`);
  }
}

/** Runs a command in `options.cwd`; its stdout, or an Error with the tail of its output. */
export function run(command, args, options) {
  const r = spawnSync(command, args, { encoding: 'utf8', ...options });
  // The tail only: a stack trace through a minified bundle prints whole lines of it.
  const tail = (t) => (t.length > 3000 ? `…${t.slice(-3000)}` : t);
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed:\n${tail(r.stdout)}${tail(r.stderr)}`);
  return r.stdout.trim();
}

/** Prints `<label>: N passed, M failed` and exits with 1 if any failed. */
export function finish(label) {
  const failed = results.filter((r) => !r.ok);
  console.log(`${label}: ${results.length - failed.length} passed, ${failed.length} failed`);
  process.exit(failed.length ? 1 : 0);
}
