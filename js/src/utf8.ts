// UTF-8 for scopes without TextDecoder / TextEncoder (an AudioWorkletGlobalScope has neither). The
// wasm-bindgen glue (`cargo xtask pack` makes it import these) and the loader use the platform's
// classes wherever they exist; these small stand-ins only where they do not.

interface Decoder {
  decode(bytes?: Uint8Array): string;
}
interface Encoder {
  encode(text: string): Uint8Array;
}

class Utf8DecoderStandIn implements Decoder {
  decode(bytes: Uint8Array = new Uint8Array(0)): string {
    const units: number[] = [];
    let out = '';
    for (let i = 0; i < bytes.length; ) {
      const b = bytes[i++]!;
      const next = () => (bytes[i++] ?? 0) & 0x3f;
      let c = b;
      if (b >= 0xf0) c = ((b & 0x07) << 18) | (next() << 12) | (next() << 6) | next();
      else if (b >= 0xe0) c = ((b & 0x0f) << 12) | (next() << 6) | next();
      else if (b >= 0xc0) c = ((b & 0x1f) << 6) | next();
      if (c > 0xffff) units.push(0xd800 + ((c - 0x10000) >> 10), 0xdc00 + ((c - 0x10000) & 0x3ff));
      else units.push(c);
      if (units.length >= 4096) out += String.fromCharCode(...units.splice(0));
    }
    return out + String.fromCharCode(...units);
  }
}

class Utf8EncoderStandIn implements Encoder {
  encode(text = ''): Uint8Array {
    const out: number[] = [];
    for (const ch of text) {
      const c = ch.codePointAt(0)!;
      if (c < 0x80) out.push(c);
      else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 0x3f));
      else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
      else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 0x3f), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
    }
    return Uint8Array.from(out);
  }
}

const platform = globalThis as { TextDecoder?: new (label?: string, options?: object) => Decoder; TextEncoder?: new () => Encoder };

/** The platform's TextDecoder, else a UTF-8 stand-in (its constructor ignores the label). */
export const Utf8Decoder: new (label?: string, options?: object) => Decoder = platform.TextDecoder ?? Utf8DecoderStandIn;
/** The platform's TextEncoder, else a UTF-8 stand-in. */
export const Utf8Encoder: new () => Encoder = platform.TextEncoder ?? Utf8EncoderStandIn;

/** Whether `x` is a URL (false where the scope has no URL class, as in an AudioWorklet). */
export function isUrl(x: unknown): x is URL {
  return typeof URL === 'function' && x instanceof URL;
}
