import fc from 'fast-check';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { schemaArbitrary } from '../../../engine/check/schema-arbitrary.ts';
import { SchemaRegistry } from '../../../engine/config/schema-registry.ts';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv2020) => void;

const ROOT = join(import.meta.dirname, '../../..');

describe('schemaArbitrary', () => {
  it('nearly every value it builds from each shipped schema is valid against it', async () => {
    const registry = await SchemaRegistry.load(join(ROOT, 'schemas'));
    const rates: Record<string, number> = {};
    for (const entry of registry.list()) {
      if (entry.id.endsWith('/common.json')) continue; // definitions only
      const validate = registry.compile(entry.id);
      const values = fc.sample(schemaArbitrary(entry.schema, entry.id, (id) => registry.get(id)), { seed: 11, numRuns: 100 });
      rates[entry.id] = values.filter((v) => validate(v)).length;
    }
    // Conditionals, `not` and exclusivity can defeat a value built to fit; the caller keeps the
    // valid ones. 80 in 100 keeps fuzzing cheap.
    expect(Object.entries(rates).filter(([, n]) => n < 80)).toEqual([]);
  });

  it('covers draft 2020-12 constructs: $ref, $defs, allOf, oneOf, if/then/else, const, enum, formats, patterns, bounds', () => {
    const schema = {
      $id: 'https://synapse.test/gen/all.json',
      type: 'object',
      required: ['kind', 'at', 'code', 'n', 'tags', 'pick'],
      properties: {
        kind: { enum: ['a', 'b'] },
        at: { type: 'string', format: 'date-time' },
        code: { type: 'string', pattern: '^[A-Z]{3}-[0-9]{2}$' },
        n: { type: 'integer', minimum: 5, exclusiveMaximum: 9 },
        tags: { type: 'array', minItems: 1, maxItems: 3, items: { $ref: '#/$defs/tag' } },
        pick: { oneOf: [{ type: 'string', minLength: 2 }, { type: 'number', minimum: 100 }] },
      },
      allOf: [{ properties: { extra: { const: 7 } } }],
      if: { properties: { kind: { const: 'a' } } },
      then: { required: ['onlyA'], properties: { onlyA: { type: 'boolean' } } },
      else: { properties: { onlyA: false } },
      $defs: { tag: { type: 'string', minLength: 1, maxLength: 4 } },
    };
    const ajv = new Ajv2020({ allErrors: true });
    addFormats(ajv);
    const validate = ajv.compile(schema);
    const values = fc.sample(schemaArbitrary(schema, schema.$id, () => undefined), { seed: 3, numRuns: 200 }) as Record<string, unknown>[];
    const invalid = values.filter((v) => !validate(v));
    expect(invalid.length).toBeLessThan(20);
    expect(new Set(values.map((v) => v.kind))).toEqual(new Set(['a', 'b']));
  });

  it('the same seed builds the same values', () => {
    const schema = { type: 'object', required: ['a'], properties: { a: { type: 'string' }, b: { type: 'number' } } };
    const run = () => fc.sample(schemaArbitrary(schema, 'urn:x', () => undefined), { seed: 99, numRuns: 20 });
    expect(run()).toEqual(run());
  });
});
