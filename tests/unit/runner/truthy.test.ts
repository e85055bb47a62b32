import { describe, expect, it } from 'vitest';
import jsonata from 'jsonata';
import { compileExpression } from '../../../engine/expr/compile-expression.ts';
import { isTruthy } from '../../../engine/runner/truthy.ts';

// JSONata's $boolean casting rules.
const cases: [unknown, boolean][] = [
  [undefined, false], [null, false],
  [true, true], [false, false],
  [0, false], [1, true], [-0.5, true], [Number.NaN, false],
  ['', false], ['false', true], ['0', true],
  [[], false], [[0, ''], false], [[0, 'x'], true], [[[], [1]], true],
  [{}, false], [{ a: 0 }, true],
  [() => true, false],
  [{ _jsonata_function: 'not the mark' }, true], [{ _jsonata_lambda: 1 }, true],
];

describe('isTruthy', () => {
  for (const [value, expected] of cases) {
    it(`${typeof value === 'function' ? 'a function' : JSON.stringify(value) ?? String(value)} → ${expected}`, () => {
      expect(isTruthy(value)).toBe(expected);
    });
  }
});

// A filter that names a function instead of calling it (`$exists` for `$exists(x)`) is false, as in
// JSONata: its value is an object with a mark, not a JavaScript function.
describe('isTruthy of a JSONata function value', () => {
  for (const source of ['$sum', 'function($x) { $x }', '[$sum]', '[$sum, 0]', '{"f": $sum}', '[{"f": $sum}]']) {
    it(`${source} → what $boolean says`, async () => {
      const expected = await jsonata(`$boolean(${source})`).evaluate({});
      const compiled = compileExpression(source);
      const value = compiled.sync ? compiled.evaluate({}) : await compiled.evaluate({});
      expect(isTruthy(value)).toBe(expected);
      expect(isTruthy(await jsonata(source).evaluate({}))).toBe(expected);
    });
  }
});
