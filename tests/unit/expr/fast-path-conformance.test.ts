/**
 * The fast path against JSONata's own conformance suite: on every case whose expression gets a
 * fast path, the fast path either bails (jsonata answers) or returns exactly the expected result;
 * it never answers a case that expects an error. Its answers are also checked against what the
 * jsonata interpreter itself returns for the same input.
 */
import { isDeepStrictEqual } from 'node:util';
import jsonata from 'jsonata';
import { afterAll, describe, expect, it } from 'vitest';
import { BAIL, compileFastPath } from '../../../engine/expr/fast-path.ts';
import { missingReason, suite } from '../../helpers/jsonata-suite.ts';

const totals = { cases: 0, compiled: 0, fast: 0, answered: 0, bailed: 0, disagreements: 0 };

/** Plain JSON, as the engine sees results; arrays sorted when the case says order is free. */
function plain(value: unknown, unordered: boolean): unknown {
  if (value === undefined) return undefined;
  const v = JSON.parse(JSON.stringify(value)) as unknown;
  if (unordered && Array.isArray(v)) return [...v].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
  return v;
}

describe.skipIf(!suite)(`fast path vs the JSONata conformance suite${missingReason ? ` (skipped: ${missingReason})` : ''}`, () => {
  const groups = suite?.groups ?? [];

  it('the suite is there', () => {
    expect(groups.length).toBeGreaterThan(50);
  });

  for (const group of groups) {
    it(group, async () => {
      const problems: string[] = [];
      for (const c of suite!.cases(group)) {
        totals.cases++;
        const { source, input } = c;
        const where = `${c.name}: ${source.slice(0, 120)}`;
        let expr: jsonata.Expression;
        try {
          expr = jsonata(source);
        } catch {
          continue; // a syntax-error case
        }
        totals.compiled++;
        const fast = compileFastPath(expr.ast());
        if (!fast) continue;
        totals.fast++;
        let value: unknown;
        try {
          value = fast(input, c.bindings);
        } catch (err) {
          if (err === BAIL) {
            totals.bailed++;
          } else {
            totals.disagreements++;
            problems.push(`${where}: threw ${String(err)} instead of bailing`);
          }
          continue;
        }
        totals.answered++;
        const expectedError = c.code ?? c.error?.code;
        const unordered = Boolean(c.unordered);
        let problem: string | undefined;
        if (expectedError) {
          problem = `answered ${JSON.stringify(value)} where the suite expects error ${expectedError}`;
        } else if (c.undefinedResult) {
          if (value !== undefined) problem = `answered ${JSON.stringify(value)} where the suite expects no result`;
        } else if (!('result' in c)) {
          problem = 'case has no expected result';
        } else if (!isDeepStrictEqual(plain(value, unordered), plain(c.result, unordered))) {
          problem = `answered ${JSON.stringify(value)}, expected ${JSON.stringify(c.result)}`;
        }
        // And the interpreter itself agrees (same input, same bindings).
        if (!problem) {
          try {
            const reference = await expr.evaluate(input, c.bindings);
            if (!isDeepStrictEqual(plain(value, unordered), plain(reference, unordered))) {
              problem = `answered ${JSON.stringify(value)}, jsonata says ${JSON.stringify(reference)}`;
            }
          } catch (err) {
            problem = `answered ${JSON.stringify(value)}, jsonata fails with ${(err as { code?: string }).code}`;
          }
        }
        if (problem) {
          totals.disagreements++;
          problems.push(`${where}: ${problem}`);
        }
      }
      expect(problems).toEqual([]);
    });
  }

  it('the fast path answers a substantial part of the suite', () => {
    // Runs after the group tests (vitest runs a file's tests in order).
    expect(totals.cases).toBeGreaterThan(1500);
    expect(totals.fast).toBeGreaterThan(300);
    expect(totals.answered).toBeGreaterThan(250);
    expect(totals.disagreements).toBe(0);
  });

  afterAll(() => {
    console.log(`JSONata conformance: ${totals.cases} cases, ${totals.compiled} compile, ${totals.fast} with a fast path: `
      + `${totals.answered} answered by it, ${totals.bailed} bailed to jsonata, ${totals.disagreements} disagreements`);
  });
});
