/**
 * The checker over every expression of JSONata's conformance suite: it never throws, claims
 * nothing when the input is unknown, and, given a closed schema made from each case's own data,
 * flags only paths that are really absent from that data (each flagged case is listed here and
 * was read; a new false claim changes the list).
 */
import { describe, expect, it } from 'vitest';
import { checkExpression } from '../../../engine/check/expression-check.ts';
import { schemaShape } from '../../../engine/check/schema-shape.ts';
import { ANY } from '../../../engine/check/shape.ts';
import { missingReason, suite } from '../../helpers/jsonata-suite.ts';

/** The closed schema of exactly this value: every object closed, every array typed by its items. */
function exactSchema(v: unknown): unknown {
  if (v === null) return { type: 'null' };
  if (Array.isArray(v)) return { type: 'array', items: v.length ? { anyOf: v.map(exactSchema) } : false };
  if (typeof v === 'object') {
    return { type: 'object', additionalProperties: false, properties: Object.fromEntries(Object.entries(v as object).map(([k, x]) => [k, exactSchema(x)])) };
  }
  return { type: typeof v === 'number' ? 'number' : typeof v };
}

describe.skipIf(!suite)(`the checker over the JSONata conformance suite${missingReason ? ` (skipped: ${missingReason})` : ''}`, () => {
  it('never throws, and claims nothing about an unknown input', () => {
    let cases = 0;
    for (const group of suite!.groups) {
      for (const c of suite!.cases(group)) {
        cases++;
        expect(checkExpression(c.source, { input: ANY, inputName: 'the input' }).findings, c.name).toEqual([]);
      }
    }
    expect(cases).toBeGreaterThan(1000);
  });

  it('over a closed schema of the case\'s data, flags only names absent from it where the result is defined', () => {
    const flagged: string[] = [];
    for (const group of suite!.groups) {
      for (const c of suite!.cases(group)) {
        if (c.input === undefined || c.result === undefined) continue;
        const input = schemaShape(exactSchema(c.input), 'urn:synapse:case', () => undefined);
        const variables = Object.fromEntries(Object.keys(c.bindings ?? {}).map((k) => [k, ANY]));
        for (const f of checkExpression(c.source, { input, inputName: 'the input', variables }).findings) {
          if (f.severity === 'error') flagged.push(`${c.name}: ${c.source.slice(f.offset, f.offset + 12)}`);
        }
      }
    }
    // Each is an expression of a case that reads a name its data does not have (the suite
    // tests what JSONata gives for a missing path).
    expect(flagged).toEqual([
      'boolean-expresssions/case017.json: foo',
      'boolean-expresssions/case018.json: foo or true',
      'boolean-expresssions/case019.json: foo',
      'boolean-expresssions/case020.json: foo or false',
      'boolean-expresssions/case021.json: foo or bar',
      'boolean-expresssions/case021.json: bar',
      'boolean-expresssions/case022.json: foo',
      'boolean-expresssions/case023.json: foo and true',
      'boolean-expresssions/case024.json: foo',
      'boolean-expresssions/case025.json: foo and fals',
      'boolean-expresssions/case026.json: foo and bar',
      'boolean-expresssions/case026.json: bar',
      'coalescing-operator/case003.json: baz ?? 42',
      'coalescing-operator/case004.json: baz ?? 42',
      'comparison-operators/deep-equals.json#15: nothing',
      'comparison-operators/deep-equals.json#16: nothing = no',
      'comparison-operators/deep-equals.json#16: nothing',
      'default-operator/case012.json: Account.blah',
      'default-operator/case013.json: Account.blah',
      'function-append/case003.json: notexist)',
      'function-append/case004.json: notexist, [2',
      'function-exists/case019.json: blah)',
      'function-exists/case020.json: blah)',
      'function-exists/case022.json: blah)',
      'function-join/case006.json: no.sep)',
      'string-concat/case004.json: none)',
      'string-concat/case005.json: none.here & ',
    ]);
  });
});
