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

// filter: and when: are conditions: compiled as such, they answer $boolean of the result as the
// expression made it. Made plain JSON first, an object holding only a function would be `{}`.
describe('a condition is $boolean of its result, judged before the result is made plain JSON', () => {
  const sources = [
    '{"f": function($x) { $x }}', '{"a": {"f": function($x) { $x }}}', '[{"f": function($x) { $x }}]', '[function($x) { $x }]',
    '{"f": $sum}', '$sum', '{}', '{"a": 0}', '[0, ""]', 'payload.missing', '"x"', '0',
  ];
  for (const source of sources) {
    for (const compile of [true, false]) {
      it(`${source}${compile ? '' : ' (interpreted)'} → what $boolean says`, async () => {
        // $boolean of nothing is nothing; a condition says false.
        const expected = (await jsonata(`$boolean(${source})`).evaluate({})) ?? false;
        const condition = compileExpression(source, { condition: true, compile });
        expect(condition.condition).toBe(true);
        expect(condition.sync ? condition.evaluate({}) : await condition.evaluate({})).toBe(expected);
      });
    }
  }

  it('a result too large to walk is refused, as any result is, before its truth is judged', () => {
    // 2^40 values, shared: small in memory, a freeze to walk whole.
    const condition = compileExpression('($f := function($a, $n) { $n = 0 ? $a : $f({"l": $a, "r": $a}, $n - 1) }; $f(0, 40))', { condition: true });
    expect(condition.sync).toBe(true);
    expect(() => condition.evaluate({})).toThrow(/more than 1000000 values/);
  });

  it('an expression that is not a condition still gives its result as plain JSON', () => {
    const value = compileExpression('{"f": function($x) { $x }, "n": 1}');
    expect(value.condition).toBe(false);
    expect(value.evaluate({})).toEqual({ n: 1 });
  });
});
