// A reader for ONNX TensorProto files (the golden fixtures' inputs and outputs): just the fields
// those files use. dims = 1, data_type = 2, float_data = 4, int32_data = 5, int64_data = 7, name = 8,
// raw_data = 9.

const FLOAT = 1;
const UINT8 = 2;
const INT8 = 3;
const UINT16 = 4;
const INT16 = 5;
const INT32 = 6;
const INT64 = 7;
const BOOL = 9;
const DOUBLE = 11;

function varint(b, pos) {
  let value = 0n;
  let shift = 0n;
  for (;;) {
    const byte = b[pos.at++];
    value |= BigInt(byte & 0x7f) << shift;
    if (byte < 0x80) return value;
    shift += 7n;
  }
}

/** { name, dims, data: Float32Array | Int32Array } (int64 values are read as int32, bool/int8/uint8 as int32, double as float32). */
export function readTensor(bytes) {
  const b = new Uint8Array(bytes); // a copy: a Node Buffer's slice() would be a view
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const pos = { at: 0 };
  const t = { name: '', dims: [], type: 0, floats: [], ints: [], raw: null };
  while (pos.at < b.length) {
    const key = Number(varint(b, pos));
    const field = key >> 3;
    const wire = key & 7;
    if (wire === 0) {
      const v = varint(b, pos);
      if (field === 1) t.dims.push(Number(v));
      else if (field === 2) t.type = Number(v);
      else if (field === 7 || field === 5) t.ints.push(Number(BigInt.asIntN(64, v)));
    } else if (wire === 2) {
      const len = Number(varint(b, pos));
      const end = pos.at + len;
      if (field === 1 || field === 7 || field === 5) {
        while (pos.at < end) (field === 1 ? t.dims : t.ints).push(Number(BigInt.asIntN(64, varint(b, pos))));
      } else if (field === 4) {
        for (; pos.at < end; pos.at += 4) t.floats.push(dv.getFloat32(pos.at, true));
      } else if (field === 8) {
        t.name = new TextDecoder().decode(b.subarray(pos.at, end));
      } else if (field === 9) {
        t.raw = b.slice(pos.at, end);
      }
      pos.at = end;
    } else if (wire === 5) {
      if (field === 4) t.floats.push(dv.getFloat32(pos.at, true));
      pos.at += 4;
    } else if (wire === 1) {
      pos.at += 8;
    } else {
      throw new Error(`unsupported protobuf wire type ${wire}`);
    }
  }
  let data;
  if (t.type === FLOAT) {
    data = t.raw ? new Float32Array(t.raw.buffer, t.raw.byteOffset, t.raw.byteLength / 4).slice() : Float32Array.from(t.floats);
  } else if (t.type === INT32) {
    data = t.raw ? new Int32Array(t.raw.buffer, t.raw.byteOffset, t.raw.byteLength / 4).slice() : Int32Array.from(t.ints);
  } else if (t.type === INT64) {
    if (t.raw) {
      const rv = new DataView(t.raw.buffer, t.raw.byteOffset, t.raw.byteLength);
      data = Int32Array.from({ length: t.raw.byteLength / 8 }, (_, i) => Number(rv.getBigInt64(i * 8, true)));
    } else {
      data = Int32Array.from(t.ints);
    }
  } else if (t.type === BOOL || t.type === UINT8 || t.type === INT8) {
    // One byte each in raw_data, or int32_data.
    data = t.raw ? Int32Array.from(t.type === INT8 ? new Int8Array(t.raw.buffer, t.raw.byteOffset, t.raw.byteLength) : t.raw) : Int32Array.from(t.ints);
  } else if (t.type === INT16 || t.type === UINT16) {
    const View = t.type === INT16 ? Int16Array : Uint16Array;
    data = t.raw ? Int32Array.from(new View(t.raw.slice().buffer)) : Int32Array.from(t.ints);
  } else if (t.type === 12 || t.type === 13) {
    // uint32, uint64
    if (t.raw) {
      const rv = new DataView(t.raw.buffer, t.raw.byteOffset, t.raw.byteLength);
      const size = t.type === 12 ? 4 : 8;
      data = Int32Array.from({ length: t.raw.byteLength / size }, (_, i) =>
        size === 4 ? rv.getUint32(i * 4, true) : Number(rv.getBigUint64(i * 8, true)),
      );
    } else {
      data = Int32Array.from(t.ints);
    }
  } else if ((t.type === 10 || t.type === 16) && t.raw) {
    // float16, bfloat16
    const rv = new DataView(t.raw.buffer, t.raw.byteOffset, t.raw.byteLength);
    const f16 = (h) => {
      const e = (h >> 10) & 0x1f, f = h & 0x3ff, sign = h & 0x8000 ? -1 : 1;
      if (e === 0) return sign * f * 2 ** -24;
      if (e === 31) return f ? NaN : sign * Infinity;
      return sign * (1 + f / 1024) * 2 ** (e - 15);
    };
    const bf16 = (h) => new Float32Array(new Uint32Array([h << 16]).buffer)[0];
    data = Float32Array.from({ length: t.raw.byteLength / 2 }, (_, i) => (t.type === 10 ? f16 : bf16)(rv.getUint16(i * 2, true)));
  } else if (t.type === DOUBLE && t.raw) {
    data = Float32Array.from(new Float64Array(t.raw.slice().buffer));
  } else {
    throw new Error(`unsupported tensor type ${t.type}`);
  }
  return { name: t.name, dims: t.dims, data };
}
