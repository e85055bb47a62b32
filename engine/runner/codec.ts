import { findProtoKey } from '../config/proto-keys.ts';
import { DecodeError } from '../errors.ts';

/**
 * A stream entry as read from Redis: its id and its fields as the flat `[name, value, ...]` list
 * XREADGROUP returns (kept flat to spare an object per entry on the hot path).
 */
export interface StreamEntry {
  id: string;
  fields: readonly string[];
  /** How many times this entry has been delivered (from XPENDING/XAUTOCLAIM); 1 when unknown. */
  deliveries?: number;
  /**
   * The original bytes of field values that are not valid UTF-8, by their index in `fields`
   * (whose string there is a lossy decoding). Set by the stream reader; such an entry does not
   * decode, and the DLQ keeps these bytes.
   */
  binary?: ReadonlyMap<number, Buffer>;
}

/**
 * Marks a DLQ payload carried as text that stands for bytes: what follows is their base64.
 * (NUL never starts a JSON text; a payload that does start so is carried the same way, so the
 * mark never lies.)
 */
export const BINARY_PAYLOAD = '\u0000base64:';

/** Turns a stream entry into an event object. */
export type Decoder = (entry: StreamEntry, maxBytes: number) => unknown;

/** The field an engine-written entry keeps its JSON envelope in (SPEC §2). */
export const PAYLOAD_FIELD = 'payload';

function byteLength(s: string): number {
  // Cheap bound first: a UTF-16 unit is at most 3 UTF-8 bytes.
  return s.length * 3 <= 1024 ? s.length * 3 : Buffer.byteLength(s);
}

/** `codec: json`: the envelope is JSON in the `payload` field and must be an object. */
export const decodeJson: Decoder = (entry, maxBytes) => {
  const { fields } = entry;
  let payload: string | undefined;
  for (let i = 0; i < fields.length; i += 2) {
    if (fields[i] === PAYLOAD_FIELD) {
      payload = fields[i + 1];
      if (entry.binary?.has(i + 1)) throw new DecodeError(`'${PAYLOAD_FIELD}' is not valid UTF-8 (${entry.binary.get(i + 1)!.length} bytes); the DLQ keeps the original bytes`);
      break;
    }
  }
  if (payload === undefined) {
    throw new DecodeError(`entry has no '${PAYLOAD_FIELD}' field (fields: ${fieldNames(fields)}); use codec: fields for flat field maps`);
  }
  if (payload.length > maxBytes || (byteLength(payload) > maxBytes && Buffer.byteLength(payload) > maxBytes)) {
    throw new DecodeError(`event is ${Buffer.byteLength(payload)} bytes, over max_event_bytes (${maxBytes})`);
  }
  let event: unknown;
  try {
    event = JSON.parse(payload);
  } catch (err) {
    throw new DecodeError(`payload is not valid JSON: ${(err as Error).message}`);
  }
  if (!event || typeof event !== 'object' || Array.isArray(event)) {
    throw new DecodeError(`payload must be a JSON object, got ${Array.isArray(event) ? 'an array' : event === null ? 'null' : typeof event}`);
  }
  // A key can only decode to `__proto__` when written so or with a \u escape.
  if (payload.includes('__proto__') || payload.includes('\\u')) refuseProtoKeys(event, '');
  return event;
};

/**
 * Refuses an event holding a `__proto__` key anywhere (see findProtoKey): no real event needs
 * the key, so it goes to the DLQ (stage decode), its bytes kept as they were.
 */
function refuseProtoKeys(value: unknown, prefix: string): void {
  const at = findProtoKey(value);
  if (at !== undefined) {
    throw new DecodeError(`event has a '__proto__' key (at ${prefix && !at.startsWith('[') ? `${prefix}.${at}` : prefix + at}): refused, since in JavaScript it would replace an object's prototype`);
  }
}

/**
 * `codec: fields`: the entry is a flat field map (Python `xadd(stream, {...})`). Values that
 * parse as JSON objects or arrays are decoded; every other value stays a string.
 */
export const decodeFields: Decoder = (entry, maxBytes) => {
  const { fields } = entry;
  if (entry.binary?.size) {
    const [index] = entry.binary.keys();
    throw new DecodeError(`field '${fields[index! - 1]}' is not valid UTF-8; the DLQ keeps the original bytes`);
  }
  let total = 0;
  for (let i = 0; i < fields.length; i++) total += fields[i]!.length;
  if (total * 3 > maxBytes && fieldsBytes(fields) > maxBytes) {
    throw new DecodeError(`event is ${fieldsBytes(fields)} bytes, over max_event_bytes (${maxBytes})`);
  }
  const event: Record<string, unknown> = {};
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1] ?? '';
    if (name === '__proto__') refuseProtoKeys({ [name]: true }, '');
    const first = value.charCodeAt(0);
    if (first === 123 /* { */ || first === 91 /* [ */) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(value);
      } catch {
        // Not JSON after all: keep the string, as the producer wrote it.
        event[name] = value;
        continue;
      }
      if (value.includes('__proto__') || value.includes('\\u')) refuseProtoKeys(parsed, name);
      event[name] = parsed;
      continue;
    }
    event[name] = value;
  }
  return event;
};

export const decoders: Record<'json' | 'fields', Decoder> = { json: decodeJson, fields: decodeFields };

/**
 * The inverse of a codec, for dry-runs and tests: the stream fields a producer would have written
 * for `event`. A string is taken as a raw `payload` field verbatim (to test decode errors).
 */
export function encodeForCodec(codec: 'json' | 'fields', event: unknown): string[] {
  if (typeof event === 'string') return [PAYLOAD_FIELD, event];
  if (codec === 'json') return [PAYLOAD_FIELD, JSON.stringify(event)];
  const out: string[] = [];
  for (const [k, v] of Object.entries((event ?? {}) as Record<string, unknown>)) {
    out.push(k, v !== null && typeof v === 'object' ? JSON.stringify(v) : String(v));
  }
  return out;
}

/**
 * The entry as the DLQ keeps it: the raw payload for json, the field map as JSON for fields. A
 * payload that is not UTF-8 comes back as BINARY_PAYLOAD + the base64 of its original bytes (in a
 * field map, each such value does).
 */
export function rawPayload(entry: StreamEntry, codec: 'json' | 'fields'): string {
  const { fields } = entry;
  const value = (i: number) => {
    const bytes = entry.binary?.get(i);
    const text = fields[i] ?? '';
    if (bytes) return BINARY_PAYLOAD + bytes.toString('base64');
    return text.startsWith(BINARY_PAYLOAD) ? BINARY_PAYLOAD + Buffer.from(text).toString('base64') : text;
  };
  if (codec === 'json') {
    for (let i = 0; i < fields.length; i += 2) if (fields[i] === PAYLOAD_FIELD) return value(i + 1);
  }
  const obj: Record<string, string> = {};
  for (let i = 0; i < fields.length; i += 2) Object.defineProperty(obj, fields[i]!, { value: value(i + 1), enumerable: true, writable: true, configurable: true });
  return JSON.stringify(obj);
}

function fieldNames(fields: readonly string[]): string {
  const names: string[] = [];
  for (let i = 0; i < fields.length && names.length < 8; i += 2) names.push(fields[i]!);
  return names.join(', ') || 'none';
}

function fieldsBytes(fields: readonly string[]): number {
  let n = 0;
  for (const f of fields) n += Buffer.byteLength(f);
  return n;
}
