import { describe, expect, it } from 'vitest';
import { BINARY_PAYLOAD, decodeFields, decodeJson, decoders, encodeForCodec, rawPayload, PAYLOAD_FIELD, type StreamEntry } from '../../../engine/runner/codec.ts';
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

describe('what a decoder refuses and why, to the letter', () => {
  const bytes = Buffer.from([0xff, 0xfe, 0x41]);
  const withBinary = (fields: string[], index: number): StreamEntry => ({ id: '1-0', fields, binary: new Map([[index, bytes]]) });

  it('json: a payload that is not UTF-8 is refused, naming its byte count', () => {
    const err = decodeError(() => decodeJson(withBinary(['trace', 'x', 'payload', '\ufffd\ufffdA'], 3), MAX));
    expect(err.message).toBe("'payload' is not valid UTF-8 (3 bytes); the DLQ keeps the original bytes");
  });

  it('json: another field that is not UTF-8 does not stop the payload decoding', () => {
    expect(decodeJson(withBinary(['trace', '\ufffd', 'payload', '{"n":1}'], 1), MAX)).toEqual({ n: 1 });
  });

  it('fields: a value that is not UTF-8 is refused, naming its field', () => {
    const err = decodeError(() => decodeFields(withBinary(['a', '1', 'blob', '\ufffd\ufffdA'], 3), MAX));
    expect(err.message).toBe("field 'blob' is not valid UTF-8; the DLQ keeps the original bytes");
  });

  it('fields: an empty map of binary values is no refusal', () => {
    expect(decodeFields({ id: '1-0', fields: ['a', '1'], binary: new Map() }, MAX)).toEqual({ a: '1' });
  });

  it('json: a __proto__ key is refused with its path, written plainly or as a \\u escape', () => {
    expect(decodeError(() => decodeJson(entry('payload', '{"data":{"list":[{"__proto__":{"x":1}}]}}'), MAX)).message)
      .toBe("event has a '__proto__' key (at data.list[0].__proto__): refused, since in JavaScript it would replace an object's prototype");
    expect(decodeError(() => decodeJson(entry('payload', '{"\\u005f_proto__":{}}'), MAX)).message).toContain('(at __proto__)');
  });

  it('fields: a __proto__ field, or one inside a JSON value, is refused with its path', () => {
    expect(decodeError(() => decodeFields(entry('__proto__', '{}'), MAX)).message).toContain('(at __proto__)');
    expect(decodeError(() => decodeFields(entry('a', '1', 'meta', '{"k":{"__proto__":1}}'), MAX)).message).toContain('(at meta.k.__proto__)');
    expect(decodeError(() => decodeFields(entry('meta', '[{"\\u005f_proto__":1}]'), MAX)).message).toContain('(at meta[0].__proto__)');
  });

  it('a missing payload field names at most eight fields', () => {
    const fields = Array.from({ length: 10 }, (_, i) => [`f${i}`, 'v']).flat();
    expect(decodeError(() => decodeJson(entry(...fields), MAX)).message)
      .toBe("entry has no 'payload' field (fields: f0, f1, f2, f3, f4, f5, f6, f7); use codec: fields for flat field maps");
  });

  it('json: the size is checked in bytes on either side of the cheap bound (1024 bytes of UTF-16 units × 3)', () => {
    // 341 characters: 1023 bytes at most by the bound, counted exactly here (a few are 2 bytes).
    const small = JSON.stringify({ s: 'é'.repeat(160) + 'x'.repeat(173) });
    expect(small.length).toBe(341);
    expect(decodeError(() => decodeJson(entry('payload', small), 400)).message).toBe('event is 501 bytes, over max_event_bytes (400)');
    expect(decodeJson(entry('payload', small), 501)).toEqual(JSON.parse(small));
    const large = JSON.stringify({ s: 'é'.repeat(600) });
    expect(decodeError(() => decodeJson(entry('payload', large), 1000)).message).toBe('event is 1208 bytes, over max_event_bytes (1000)');
    expect(decodeJson(entry('payload', large), 1208)).toEqual(JSON.parse(large));
  });

  it('json: an ASCII event of exactly max bytes (as many characters) is accepted', () => {
    expect(decodeJson(entry('payload', '{"s":"xxxx"}'), 12)).toEqual({ s: 'xxxx' });
  });

  it('json: more characters than max bytes is refused at once (and the message counts bytes)', () => {
    expect(decodeError(() => decodeJson(entry('payload', '{"s":"xxxx"}'), 11)).message).toBe('event is 12 bytes, over max_event_bytes (11)');
  });

  it('fields: an event under the cheap bound (characters × 3) is accepted without counting', () => {
    expect(decodeFields(entry('a', 'é'), 6)).toEqual({ a: 'é' });
    expect(decodeError(() => decodeFields(entry('a', 'éé'), 4)).message).toBe('event is 5 bytes, over max_event_bytes (4)');
  });

  it('fields: a value that is a JSON object or array is decoded only when it starts with { or [', () => {
    expect(decodeFields(entry('a', ' {"x":1}', 'b', '{"x":1}', 'c', '[2]'), MAX)).toEqual({ a: ' {"x":1}', b: { x: 1 }, c: [2] });
  });
});

describe('encodeForCodec and rawPayload, their edges', () => {
  it('fields: no event is no fields; null, numbers and nested values are written as a producer would', () => {
    expect(encodeForCodec('fields', null)).toEqual([]);
    expect(encodeForCodec('fields', { a: null, b: 1.5, c: [null] })).toEqual(['a', 'null', 'b', '1.5', 'c', '[null]']);
  });

  it('the bytes of a value that is not UTF-8 are kept as base64 behind the binary mark', () => {
    const e: StreamEntry = { id: '1-0', fields: ['payload', '\ufffd\ufffdA', 'x', '1'], binary: new Map([[1, Buffer.from([0xff, 0xfe, 0x41])]]) };
    expect(rawPayload(e, 'json')).toBe(`${BINARY_PAYLOAD}//5B`);
    expect(rawPayload(e, 'fields')).toBe(JSON.stringify({ payload: `${BINARY_PAYLOAD}//5B`, x: '1' }));
  });

  it('a text that itself starts with the binary mark is carried as base64 too, so the mark never lies', () => {
    const text = `${BINARY_PAYLOAD}abc`;
    expect(rawPayload(entry('payload', text), 'json')).toBe(BINARY_PAYLOAD + Buffer.from(text).toString('base64'));
    expect(rawPayload(entry('payload', 'x\u0000base64:'), 'json')).toBe('x\u0000base64:');
  });

  it('a __proto__ field name is kept as an ordinary key of the field map', () => {
    expect(rawPayload(entry('__proto__', '{"a":1}', 'b', '2'), 'fields')).toBe('{"__proto__":"{\\"a\\":1}","b":"2"}');
    expect(rawPayload(entry('a'), 'fields')).toBe('{"a":""}');
  });
});
