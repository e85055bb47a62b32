import { describe, expect, it } from 'vitest';
import { decodeFields, decodeJson, decoders, encodeForCodec, rawPayload, PAYLOAD_FIELD, type StreamEntry } from '../../../engine/runner/codec.ts';
import { DecodeError } from '../../../engine/errors.ts';

const MAX = 1024 * 1024;
const entry = (...fields: string[]): StreamEntry => ({ id: '1-0', fields });

function decodeError(fn: () => unknown): DecodeError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(DecodeError);
  expect((err as DecodeError).code).toBe('SYN_DECODE');
  return err as DecodeError;
}

describe('decodeJson (codec: json)', () => {
  it('decodes the envelope from the payload field, whatever other fields there are', () => {
    const event = { event: 'task-completed', source: 's', timestamp: '2026-11-26T10:00:00Z', data: { n: 1 } };
    expect(decodeJson(entry('trace', 'x', PAYLOAD_FIELD, JSON.stringify(event)), MAX)).toEqual(event);
  });

  it('takes the first payload field when there are two', () => {
    expect(decodeJson(entry('payload', '{"n":1}', 'payload', '{"n":2}'), MAX)).toEqual({ n: 1 });
  });

  const invalid: { name: string; fields: string[]; max?: number; message: string }[] = [
    {
      name: 'missing payload field',
      fields: ['event', 'task-completed', 'data', '{}'],
      message: "entry has no 'payload' field (fields: event, data); use codec: fields for flat field maps",
    },
    { name: 'an entry with no fields', fields: [], message: "entry has no 'payload' field (fields: none)" },
    { name: 'payload that is not JSON', fields: ['payload', '{not json'], message: 'payload is not valid JSON: ' },
    { name: 'an empty payload', fields: ['payload', ''], message: 'payload is not valid JSON: ' },
    { name: 'a JSON array', fields: ['payload', '[1,2]'], message: 'payload must be a JSON object, got an array' },
    { name: 'JSON null', fields: ['payload', 'null'], message: 'payload must be a JSON object, got null' },
    { name: 'a JSON string', fields: ['payload', '"hello"'], message: 'payload must be a JSON object, got string' },
    { name: 'a JSON number', fields: ['payload', '42'], message: 'payload must be a JSON object, got number' },
    { name: 'over max bytes', fields: ['payload', JSON.stringify({ s: 'x'.repeat(100) })], max: 50, message: 'event is 108 bytes, over max_event_bytes (50)' },
    // 40 characters but 80 bytes of UTF-8: the limit is in bytes.
    { name: 'over max bytes counted in UTF-8 bytes, not characters', fields: ['payload', JSON.stringify({ s: 'é'.repeat(32) })], max: 60, message: 'event is 72 bytes, over max_event_bytes (60)' },
  ];
  for (const c of invalid) {
    it(`refuses ${c.name}`, () => {
      const err = decodeError(() => decodeJson(entry(...c.fields), c.max ?? MAX));
      expect(err.message).toContain(c.message);
    });
  }

  it('accepts an event of exactly max bytes', () => {
    const payload = JSON.stringify({ s: 'é'.repeat(10) }); // 8 + 20 bytes
    expect(Buffer.byteLength(payload)).toBe(28);
    expect(decodeJson(entry('payload', payload), 28)).toEqual({ s: 'é'.repeat(10) });
  });
});

describe('decodeFields (codec: fields)', () => {
  it('turns a flat field map into an object, JSON-decoding object and array values only', () => {
    const e = entry(
      'event', 'model-trained',
      'model_name', 'resnet',
      'metrics', '{"accuracy":0.91,"loss":[0.3,0.2]}',
      'tags', '["a","b"]',
      'epochs', '12',
      'ratio', '0.5',
      'flag', 'true',
      'nothing', 'null',
      'quoted', '"q"',
    );
    expect(decodeFields(e, MAX)).toEqual({
      event: 'model-trained',
      model_name: 'resnet',
      metrics: { accuracy: 0.91, loss: [0.3, 0.2] },
      tags: ['a', 'b'],
      // Numbers, booleans, null and JSON strings stay the strings the producer wrote.
      epochs: '12',
      ratio: '0.5',
      flag: 'true',
      nothing: 'null',
      quoted: '"q"',
    });
  });

  it('keeps a value that looks like JSON but is not, as the producer wrote it', () => {
    expect(decodeFields(entry('a', '{not json', 'b', '[1,', 'c', '{}x'), MAX)).toEqual({ a: '{not json', b: '[1,', c: '{}x' });
  });

  it('an odd trailing field name gets an empty string', () => {
    expect(decodeFields(entry('a', '1', 'b'), MAX)).toEqual({ a: '1', b: '' });
  });

  it('an empty entry is an empty object', () => {
    expect(decodeFields(entry(), MAX)).toEqual({});
  });

  it('refuses an entry over max bytes, names and values counted', () => {
    const err = decodeError(() => decodeFields(entry('name', 'x'.repeat(60)), 50));
    expect(err.message).toBe('event is 64 bytes, over max_event_bytes (50)');
  });

  it('counts UTF-8 bytes, not characters', () => {
    // 2 + 30 characters, 2 + 60 bytes.
    expect(decodeFields(entry('ab', 'é'.repeat(30)), 62)).toEqual({ ab: 'é'.repeat(30) });
    expect(decodeError(() => decodeFields(entry('ab', 'é'.repeat(30)), 61)).message).toBe('event is 62 bytes, over max_event_bytes (61)');
  });
});

describe('decoders', () => {
  it('maps each codec name to its decoder', () => {
    expect(decoders).toEqual({ json: decodeJson, fields: decodeFields });
  });
});

describe('encodeForCodec', () => {
  const events: { name: string; event: Record<string, unknown> }[] = [
    { name: 'a full envelope', event: { event: 'task-completed', source: 's', timestamp: '2026-11-26T10:00:00Z', data: { userId: 'u1', tags: ['a'] } } },
    { name: 'an empty object', event: {} },
    { name: 'string fields with JSON objects and arrays', event: { event: 'x', metrics: { a: 1 }, list: [1, 'two'] } },
  ];

  for (const { name, event } of events) {
    it(`json round trip: ${name}`, () => {
      const fields = encodeForCodec('json', event);
      expect(fields).toEqual([PAYLOAD_FIELD, JSON.stringify(event)]);
      expect(decodeJson({ id: '1-0', fields }, MAX)).toEqual(event);
    });
  }

  it('fields round trip: objects and arrays come back, scalar values come back as strings', () => {
    const event = { event: 'x', metrics: { a: 1 }, list: [1, 'two'], n: 5, ok: false };
    const fields = encodeForCodec('fields', event);
    expect(fields).toEqual(['event', 'x', 'metrics', '{"a":1}', 'list', '[1,"two"]', 'n', '5', 'ok', 'false']);
    expect(decodeFields({ id: '1-0', fields }, MAX)).toEqual({ event: 'x', metrics: { a: 1 }, list: [1, 'two'], n: '5', ok: 'false' });
  });

  it('a string is a raw payload, verbatim, for either codec', () => {
    expect(encodeForCodec('json', '{not json')).toEqual(['payload', '{not json']);
    expect(encodeForCodec('fields', 'raw')).toEqual(['payload', 'raw']);
  });
});

describe('rawPayload (what the DLQ keeps)', () => {
  it('json: the payload field verbatim, even when it is not JSON', () => {
    expect(rawPayload(entry('x', '1', 'payload', '{broken'), 'json')).toBe('{broken');
  });

  it('json without a payload field: the field map as JSON', () => {
    expect(rawPayload(entry('event', 'e', 'n', '1'), 'json')).toBe('{"event":"e","n":"1"}');
  });

  it('fields: the field map as JSON, values as written', () => {
    expect(rawPayload(entry('event', 'e', 'metrics', '{"a":1}'), 'fields')).toBe('{"event":"e","metrics":"{\\"a\\":1}"}');
  });
});
