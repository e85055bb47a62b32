import { basename, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SchemaRegistry, formatValidationErrors } from '../../../engine/config/schema-registry.ts';
import { SourceDocument } from '../../../engine/config/source-document.ts';
import { SchemaInvalidError, type Diagnostic } from '../../../engine/errors.ts';
import { rejection } from '../support/rejection.ts';
import { tempDirs } from '../support/temp-dir.ts';

const dirs = tempDirs('synapse-schema-registry-');
afterAll(() => dirs.cleanup());

const show = (d: Diagnostic) => `${basename(d.file)}:${d.line}:${d.col} ${d.message}`;
const json = (value: unknown) => JSON.stringify(value, null, 2) + '\n';

async function loadError(files: Record<string, string>): Promise<SchemaInvalidError> {
  const err = await rejection(SchemaRegistry.load(await dirs.make(files)), SchemaInvalidError);
  expect(err.code).toBe('SYN_SCHEMA_INVALID');
  return err;
}

const order = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://synapse.test/schemas/order.json',
  type: 'object',
  required: ['event', 'data'],
  properties: {
    event: { const: 'order-placed' },
    data: { $ref: 'https://synapse.test/schemas/money.json' },
  },
};
const money = {
  $id: 'https://synapse.test/schemas/money.json',
  type: 'object',
  additionalProperties: false,
  required: ['amount'],
  properties: { amount: { type: 'integer', minimum: 0 }, currency: { type: 'string', minLength: 3 } },
};

describe('SchemaRegistry.load', () => {
  it('registers every .json/.yaml/.yml schema by $id and ignores other files', async () => {
    const dir = await dirs.make({
      'order.json': json(order),
      'money.json': json(money),
      'ping.yaml': '$id: https://synapse.test/schemas/ping.json\ntype: object\nx-stream: pings\nx-producer: tester\n',
      'pong.yml': '$id: https://synapse.test/schemas/pong.json\ntype: string\n',
      'README.md': '# not a schema',
      'notes.txt': '{ "$id": "ignored" }',
    });
    const registry = await SchemaRegistry.load(dir);
    expect(registry.list().map((e) => e.id).sort()).toEqual([
      'https://synapse.test/schemas/money.json',
      'https://synapse.test/schemas/order.json',
      'https://synapse.test/schemas/ping.json',
      'https://synapse.test/schemas/pong.json',
    ]);
    expect(registry.has('https://synapse.test/schemas/order.json')).toBe(true);
    expect(registry.has('ignored')).toBe(false);
    expect(registry.get('https://synapse.test/schemas/ping.json')).toEqual({
      id: 'https://synapse.test/schemas/ping.json',
      file: join(dir, 'ping.yaml'),
      schema: { $id: 'https://synapse.test/schemas/ping.json', type: 'object', 'x-stream': 'pings', 'x-producer': 'tester' },
    });
    expect(registry.getByFile(join(dir, 'order.json'))?.id).toBe('https://synapse.test/schemas/order.json');
    expect(registry.getByFile(join(dir, 'nope.json'))).toBeUndefined();
  });

  it('a schema referring to another by $id validates through the reference', async () => {
    const registry = await SchemaRegistry.load(await dirs.make({ 'order.json': json(order), 'money.json': json(money) }));
    const validate = registry.compile('https://synapse.test/schemas/order.json');
    expect(validate({ event: 'order-placed', data: { amount: 5, currency: 'EUR' } })).toBe(true);
    expect(validate({ event: 'order-placed', data: { amount: -1, extra: true } })).toBe(false);
    expect(formatValidationErrors(validate.errors)).toBe("data: unknown property 'extra'; data.amount: must be >= 0");
    // Compiled once, then cached.
    expect(registry.compile('https://synapse.test/schemas/order.json')).toBe(validate);
  });

  it('a relative $ref resolves against the referring schema\'s $id', async () => {
    const registry = await SchemaRegistry.load(await dirs.make({
      'a.json': json({ $id: 'https://synapse.test/schemas/a.json', type: 'object', properties: { m: { $ref: 'money.json' } } }),
      'money.json': json(money),
    }));
    const validate = registry.compile('https://synapse.test/schemas/a.json');
    expect([validate({ m: { amount: 1 } }), validate({ m: { amount: 'x' } })]).toEqual([true, false]);
  });

  it('formats are checked (ajv-formats is loaded)', async () => {
    const registry = await SchemaRegistry.load(await dirs.make({
      't.json': json({ $id: 'https://synapse.test/schemas/t.json', type: 'object', properties: { at: { type: 'string', format: 'date-time' } } }),
    }));
    const validate = registry.compile('https://synapse.test/schemas/t.json');
    expect(validate({ at: '2026-11-26T10:00:00Z' })).toBe(true);
    expect(validate({ at: 'yesterday' })).toBe(false);
    expect(formatValidationErrors(validate.errors)).toBe('at: must match format "date-time"');
  });

  it('a missing directory is an empty registry', async () => {
    const dir = await dirs.make();
    const registry = await SchemaRegistry.load(join(dir, 'does-not-exist'));
    expect(registry.list()).toEqual([]);
    expect(() => registry.compile('https://synapse.test/schemas/order.json')).toThrow("unknown schema 'https://synapse.test/schemas/order.json'");
  });

  it('the shipped schemas/ directory loads', async () => {
    const registry = await SchemaRegistry.load(join(import.meta.dirname, '../../../schemas'));
    expect(registry.has('https://synapse.dev/schemas/platform-event.json')).toBe(true);
  });
});

describe('SchemaRegistry.load: invalid schemas, each reported as FILE:LINE:COL', () => {
  const invalid: { name: string; files: Record<string, string>; errors: string[] }[] = [
    {
      name: 'a broken $ref to an unknown $id points at the $ref value',
      files: {
        'a.json': '{\n  "$id": "https://x.test/a.json",\n  "type": "object",\n  "properties": {\n    "b": { "$ref": "https://x.test/missing.json" }\n  }\n}\n',
      },
      errors: ["a.json:5:20 invalid schema: can't resolve reference https://x.test/missing.json from id https://x.test/a.json"],
    },
    {
      name: 'a broken local $ref points at the $ref value',
      files: {
        'a.json': '{\n  "$id": "https://x.test/a.json",\n  "$defs": { "ok": { "type": "string" } },\n  "properties": {\n    "b": { "$ref": "#/$defs/ok" },\n    "c": { "$ref": "#/$defs/nope" }\n  }\n}\n',
      },
      errors: ["a.json:6:20 invalid schema: can't resolve reference #/$defs/nope from id https://x.test/a.json"],
    },
    {
      name: 'a duplicate $id points at the second file\'s $id',
      files: {
        'a.json': '{\n  "$id": "https://x.test/same.json"\n}\n',
        'b.json': '{\n  "type": "object",\n  "$id": "https://x.test/same.json"\n}\n',
      },
      errors: ["b.json:3:10 duplicate $id 'https://x.test/same.json', also in "],
    },
    {
      name: 'a missing $id',
      files: { 'a.json': '{\n  "type": "object"\n}\n' },
      errors: ['a.json:1:1 schema has no $id; every schema needs a unique $id'],
    },
    {
      name: 'an unknown keyword (typo requried) points at the key',
      files: { 'a.json': '{\n  "$id": "https://x.test/a.json",\n  "type": "object",\n  "requried": ["a"]\n}\n' },
      errors: ['a.json:4:3 invalid schema: strict mode: unknown keyword: "requried"'],
    },
    {
      name: 'a nested unknown keyword points at the key',
      files: { 'a.yaml': '$id: https://x.test/a.json\ntype: object\nproperties:\n  name:\n    type: string\n    minLenght: 1\n' },
      errors: ['a.yaml:6:5 invalid schema: strict mode: unknown keyword: "minLenght"'],
    },
    {
      name: 'a keyword with an invalid value points at that value',
      files: { 'a.json': '{\n  "$id": "https://x.test/a.json",\n  "type": "strin"\n}\n' },
      errors: ['a.json:3:11 invalid schema: schema is invalid: data/type must be equal to one of the allowed values'],
    },
    {
      name: 'a file that is not an object',
      files: { 'a.json': '[1, 2]\n' },
      errors: ['a.json:1:1 a schema file must hold a JSON Schema object'],
    },
    {
      name: 'a YAML syntax error',
      files: { 'a.yaml': '$id: https://x.test/a.json\n\ttype: object\n' },
      errors: ['a.yaml:2:1 Tabs are not allowed as indentation'],
    },
    {
      name: 'problems of several files are all reported, file by file',
      files: {
        'a.json': '{\n  "type": "object"\n}\n',
        'b.json': '{\n  "$id": "https://x.test/b.json",\n  "requried": []\n}\n',
        'c.json': json(money),
      },
      errors: [
        'a.json:1:1 schema has no $id',
        'b.json:3:3 invalid schema: strict mode: unknown keyword: "requried"',
      ],
    },
  ];

  for (const c of invalid) {
    it(c.name, async () => {
      const err = await loadError(c.files);
      const shown = err.diagnostics.map(show);
      expect(shown.map((s) => s.slice(0, s.indexOf(' ')))).toEqual(c.errors.map((s) => s.slice(0, s.indexOf(' '))));
      c.errors.forEach((e, i) => expect(shown[i]).toContain(e));
    });
  }

  it('the duplicate $id message names the first file by path', async () => {
    const dir = await dirs.make({ 'a.json': json({ $id: 'https://x.test/same.json' }), 'b.json': json({ $id: 'https://x.test/same.json' }) });
    const err = await rejection(SchemaRegistry.load(dir), SchemaInvalidError);
    expect(err.diagnostics.map((d) => d.message)).toEqual([`duplicate $id 'https://x.test/same.json', also in ${join(dir, 'a.json')}`]);
  });

  it('addDocuments keeps the good schemas and leaves out the one that failed to compile', async () => {
    const registry = new SchemaRegistry();
    const problems = registry.addDocuments([
      SourceDocument.parse('/s/good.json', json(money)),
      SourceDocument.parse('/s/bad.json', '{\n  "$id": "https://x.test/bad.json",\n  "$ref": "https://x.test/gone.json"\n}\n'),
    ]);
    expect(problems.map(show)).toEqual(["bad.json:3:11 invalid schema: can't resolve reference https://x.test/gone.json from id https://x.test/bad.json"]);
    expect(registry.list().map((e) => e.id)).toEqual(['https://synapse.test/schemas/money.json']);
    expect(registry.has('https://x.test/bad.json')).toBe(false);
    expect(registry.getByFile('/s/bad.json')).toBeUndefined();
  });
});

describe('formatValidationErrors', () => {
  const registry = new SchemaRegistry();
  registry.addDocuments([SourceDocument.parse('/s/order.json', json({
    $id: 'https://synapse.test/schemas/items.json',
    type: 'object',
    additionalProperties: false,
    required: ['event', 'items'],
    properties: {
      event: { type: 'string' },
      items: { type: 'array', items: { type: 'object', required: ['sku'], properties: { sku: { type: 'string' }, qty: { type: 'integer' } } } },
    },
  }))]);
  const validate = registry.compile('https://synapse.test/schemas/items.json');

  const cases: { name: string; event: unknown; message: string }[] = [
    { name: 'a missing required key at the root', event: { items: [] }, message: "(root): must have required property 'event'" },
    { name: 'a wrong type at the root', event: [], message: '(root): must be object' },
    { name: 'an unknown key names the key', event: { event: 'e', items: [], extra: 1 }, message: "(root): unknown property 'extra'" },
    { name: 'a nested path is dotted, array indices included', event: { event: 'e', items: [{ sku: 'a' }, { sku: 1, qty: 'x' }] }, message: 'items.1.sku: must be string; items.1.qty: must be integer' },
    { name: 'every error is listed (allErrors)', event: { event: 3 }, message: "(root): must have required property 'items'; event: must be string" },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(validate(c.event)).toBe(false);
      expect(formatValidationErrors(validate.errors)).toBe(c.message);
    });
  }

  it('no errors at all reads "invalid"', () => {
    expect(formatValidationErrors(null)).toBe('invalid');
    expect(formatValidationErrors(undefined)).toBe('invalid');
    expect(formatValidationErrors([])).toBe('invalid');
  });
});

describe('SchemaRegistry.fingerprint: what validating against a schema depends on', () => {
  const base = 'https://x.test/';
  const registryOf = (schemas: Record<string, Record<string, unknown>>) => {
    const registry = new SchemaRegistry();
    const problems = registry.addDocuments(Object.entries(schemas).map(([name, s]) => SourceDocument.parse(`/s/${name}.json`, JSON.stringify({ $id: `${base}${name}.json`, ...s }))));
    expect(problems).toEqual([]);
    return registry;
  };
  const before = {
    common: { $defs: { id: { type: 'string' }, n: { type: 'integer' } } },
    order: { type: 'object', properties: { id: { $ref: 'common.json#/$defs/id' }, line: { $ref: 'line.json' } } },
    line: { type: 'object', properties: { n: { $ref: `${base}common.json#/$defs/n` } } },
    self: { $defs: { a: { type: 'string' } }, properties: { a: { $ref: '#/$defs/a' } } },
    alone: { type: 'string' },
  };
  const cases: { change: string; after: Record<string, Record<string, unknown>>; changed: string[] }[] = [
    { change: 'a schema added that nothing refers to', after: { ...before, extra: { type: 'number' } }, changed: [] },
    { change: 'a schema reached through two $refs (relative, then absolute)', after: { ...before, common: { $defs: { id: { type: 'string' }, n: { type: 'integer', minimum: 0 } } } }, changed: ['order', 'line', 'common'] },
    { change: 'a schema reached directly', after: { ...before, line: { type: 'object' } }, changed: ['order', 'line'] },
    { change: 'a schema referring only to itself', after: { ...before, self: { ...before.self, required: ['a'] } }, changed: ['self'] },
    { change: 'a schema removed that one refers to', after: (({ line: _l, ...rest }) => ({ ...rest, order: { type: 'object' } }))(before), changed: ['order', 'line'] },
  ];
  it.each(cases)('$change changes the fingerprints of $changed', ({ after, changed }) => {
    const a = registryOf(before);
    const b = registryOf(after);
    const differing = Object.keys(before).filter((name) => a.fingerprint(`${base}${name}.json`) !== b.fingerprint(`${base}${name}.json`));
    expect(differing.sort()).toEqual([...changed].sort());
  });
});
