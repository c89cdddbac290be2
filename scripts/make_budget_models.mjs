// The hostile models of the memory-budget tests (tests/budget.rs, js/test/node.mjs), written to
// tests/data/budget/ as raw ONNX protobuf (no dependencies: `node scripts/make_budget_models.mjs`).
//
//   expand_adds_concat.onnx  x[1] → Expand to [8192, 8192] → 16 Adds of it → Concat: 4.3 GB of
//                            intermediates from a file of a few hundred bytes (issue #16's repro)
//   expand_adds_768m.onnx    x[1] → Expand to [4096, 4096] → 12 Adds of it, all alive at once (the
//                            last in the expanded value's buffer), then added up and gathered down
//                            to a scalar: 768 MiB at the peak, output 12·x + 78 (constants 1..12)
//   expand_tile.onnx         x[1] → Expand to [2048, 2048] → Tile ×[4, 4] → Add: Tile has no shape
//                            rule in src/budget.rs, so the executor's count refuses it at that node
//   const_expand.onnx        a constant Expand to [8192, 8192] (not folded at load: too big), + x
//   huge_weights.onnx        three initializers declaring 2^25 floats each (384 MiB), with no data

import { mkdirSync, writeFileSync } from 'node:fs';

const varint = (n) => {
  const out = [];
  let v = BigInt(n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return out;
};
const key = (field, wire) => varint((field << 3) | wire);
const int = (field, n) => [...key(field, 0), ...varint(n)];
const bytes = (field, b) => [...key(field, 2), ...varint(b.length), ...b];
const str = (field, s) => bytes(field, [...new TextEncoder().encode(s)]);

const f32 = (v) => [...new Uint8Array(new Float32Array([v]).buffer)];
const i64s = (vs) => [...new Uint8Array(new BigInt64Array(vs.map(BigInt)).buffer)];
const FLOAT = 1;
const INT64 = 7;

const tensor = (name, type, dims, raw) => [...dims.flatMap((d) => int(1, d)), ...int(2, type), ...str(8, name), ...bytes(9, raw)];
const node = (op, inputs, outputs, attrs = []) => [
  ...inputs.flatMap((i) => str(1, i)),
  ...outputs.flatMap((o) => str(2, o)),
  ...str(4, op),
  ...attrs.flatMap(([name, i]) => bytes(5, [...str(1, name), ...int(3, i), ...int(20, 2)])),
];
const valueInfo = (name, type, dims) =>
  [...str(1, name), ...bytes(2, bytes(1, [...int(1, type), ...bytes(2, dims.flatMap((d) => bytes(1, int(1, d))))]))];
const model = ({ nodes, inits, inputs, outputs }) =>
  new Uint8Array([
    ...int(1, 8),
    ...bytes(8, int(2, 13)),
    ...bytes(7, [
      ...nodes.flatMap((n) => bytes(1, n)),
      ...str(2, 'budget'),
      ...inits.flatMap((t) => bytes(5, t)),
      ...inputs.flatMap((v) => bytes(11, v)),
      ...outputs.flatMap((v) => bytes(12, v)),
    ]),
  ]);

/** x[1] expanded to [side, side], `adds` Adds of it (constants 1..adds), then `tail`. */
function expandAdds(side, adds, tail) {
  const nodes = [node('Expand', ['x', 'shape'], ['e'])];
  const inits = [tensor('shape', INT64, [2], i64s([side, side]))];
  for (let i = 1; i <= adds; i++) {
    inits.push(tensor(`c${i}`, FLOAT, [], f32(i)));
    nodes.push(node('Add', ['e', `c${i}`], [`a${i}`]));
  }
  const out = tail(nodes, inits);
  return model({ nodes, inits, inputs: [valueInfo('x', FLOAT, [1])], outputs: [valueInfo('y', FLOAT, out)] });
}

const concat = expandAdds(8192, 16, (nodes) => {
  nodes.push(node('Concat', Array.from({ length: 16 }, (_, i) => `a${i + 1}`), ['y'], [['axis', 0]]));
  return [8192 * 16, 8192];
});
const wide = expandAdds(4096, 12, (nodes, inits) => {
  let sum = 'a1';
  for (let i = 2; i <= 12; i++) {
    nodes.push(node('Add', [sum, `a${i}`], [`s${i}`]));
    sum = `s${i}`;
  }
  inits.push(tensor('zero', INT64, [], i64s([0])));
  nodes.push(node('Gather', [sum, 'zero'], ['row'], [['axis', 0]]));
  nodes.push(node('Gather', ['row', 'zero'], ['y'], [['axis', 0]]));
  return [];
});
const tile = (() => {
  const nodes = [node('Expand', ['x', 'shape'], ['e']), node('Tile', ['e', 'reps'], ['t']), node('Add', ['t', 'one'], ['y'])];
  const inits = [tensor('shape', INT64, [2], i64s([2048, 2048])), tensor('reps', INT64, [2], i64s([4, 4])), tensor('one', FLOAT, [], f32(1))];
  return model({ nodes, inits, inputs: [valueInfo('x', FLOAT, [1])], outputs: [valueInfo('y', FLOAT, [8192, 8192])] });
})();
const constExpand = model({
  nodes: [node('Expand', ['c', 'shape'], ['e']), node('Add', ['e', 'x'], ['y'])],
  inits: [tensor('c', FLOAT, [], f32(1)), tensor('shape', INT64, [2], i64s([8192, 8192]))],
  inputs: [valueInfo('x', FLOAT, [1])],
  outputs: [valueInfo('y', FLOAT, [8192, 8192])],
});
const weights = model({
  nodes: [node('Add', ['x', 'w1'], ['a']), node('Add', ['a', 'w2'], ['b']), node('Add', ['b', 'w3'], ['y'])],
  inits: ['w1', 'w2', 'w3'].map((w) => tensor(w, FLOAT, [1 << 25], [])),
  inputs: [valueInfo('x', FLOAT, [1 << 25])],
  outputs: [valueInfo('y', FLOAT, [1 << 25])],
});

const dir = new URL('../tests/data/budget/', import.meta.url);
mkdirSync(dir, { recursive: true });
for (const [name, m] of [
  ['expand_adds_concat.onnx', concat],
  ['expand_adds_768m.onnx', wide],
  ['expand_tile.onnx', tile],
  ['const_expand.onnx', constExpand],
  ['huge_weights.onnx', weights],
]) {
  writeFileSync(new URL(name, dir), m);
  console.log(`${name}: ${m.length} bytes`);
}
