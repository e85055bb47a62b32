import { describe, expect, it } from 'vitest';
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
];

describe('isTruthy', () => {
  for (const [value, expected] of cases) {
    it(`${typeof value === 'function' ? 'a function' : JSON.stringify(value) ?? String(value)} → ${expected}`, () => {
      expect(isTruthy(value)).toBe(expected);
    });
  }
});
