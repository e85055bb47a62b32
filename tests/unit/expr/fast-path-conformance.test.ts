/**
 * The fast path against JSONata's own conformance suite: on every case whose expression gets a
 * fast path, the fast path either bails (jsonata answers) or returns exactly the expected result;
 * it never answers a case that expects an error. Its answers are also checked against what the
 * jsonata interpreter itself returns for the same input.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import jsonata from 'jsonata';
import { afterAll, describe, expect, it } from 'vitest';
import { BAIL, compileFastPath } from '../../../engine/expr/fast-path.ts';

// shared/ sits beside the repository (in a session and in CI alike).
const SUITE = process.env.JSONATA_CONFORMANCE_DIR
  ?? [resolve(import.meta.dirname, '../../../../shared/conformance/jsonata'), '/work/shared/conformance/jsonata'].find((d) => existsSync(d))
  ?? resolve(import.meta.dirname, '../../../../shared/conformance/jsonata');

interface Case {
  expr?: string;
  'expr-file'?: string;
  data?: unknown;
  dataset?: string | null;
  bindings?: Record<string, unknown>;
  result?: unknown;
  undefinedResult?: boolean;
  code?: string;
  error?: { code?: string };
  unordered?: boolean;
}

const groups = existsSync(join(SUITE, 'groups')) ? readdirSync(join(SUITE, 'groups')).sort() : [];
const datasets = new Map<string, unknown>();
if (existsSync(join(SUITE, 'datasets'))) {
  for (const f of readdirSync(join(SUITE, 'datasets'))) {
    if (f.endsWith('.json')) datasets.set(f.slice(0, -5), JSON.parse(readFileSync(join(SUITE, 'datasets', f), 'utf8')));
  }
}

const totals = { cases: 0, compiled: 0, fast: 0, answered: 0, bailed: 0, disagreements: 0 };

/** Plain JSON, as the engine sees results; arrays sorted when the case says order is free. */
function plain(value: unknown, unordered: boolean): unknown {
  if (value === undefined) return undefined;
  const v = JSON.parse(JSON.stringify(value)) as unknown;
  if (unordered && Array.isArray(v)) return [...v].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
  return v;
}

function inputOf(c: Case): unknown {
  if ('data' in c) return c.data;
  if (c.dataset) {
    if (!datasets.has(c.dataset)) throw new Error(`missing dataset ${c.dataset}`);
    return datasets.get(c.dataset);
  }
  return undefined;
}

describe('fast path vs the JSONata conformance suite', () => {
  it('the suite is there', () => {
    expect(groups.length, `no conformance suite at ${SUITE} (set JSONATA_CONFORMANCE_DIR)`).toBeGreaterThan(50);
    expect(datasets.size).toBeGreaterThan(10);
  });

  for (const group of groups) {
    it(group, async () => {
      const problems: string[] = [];
      const dir = join(SUITE, 'groups', group);
      for (const file of readdirSync(dir).sort()) {
        if (!file.endsWith('.json')) continue;
        const raw = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Case | Case[];
        const cases = Array.isArray(raw) ? raw : [raw];
        for (const [index, c] of cases.entries()) {
          totals.cases++;
          const source = c.expr ?? readFileSync(join(dir, c['expr-file']!), 'utf8');
          const where = `${group}/${file}${cases.length > 1 ? `#${index}` : ''}: ${source.slice(0, 120)}`;
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
          const input = inputOf(c);
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
