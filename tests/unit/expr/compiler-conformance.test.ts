/**
 * The compiler against JSONata's own conformance suite: every case is evaluated by the compiled
 * (synchronous) code and must give the suite's expected result or error code, and exactly what
 * the jsonata interpreter itself gives for the same input (value, or error code and position).
 * The suite's `timelimit`/`depth` become the compiled code's time and depth limits; the suite
 * names a breach of either U1001, the compiled code D1012/D1011.
 */
import { isDeepStrictEqual } from 'node:util';
import jsonata from 'jsonata';
import { afterAll, describe, expect, it } from 'vitest';
import { compileAst, isCompilable } from '../../../engine/expr/compiler/compile.ts';
import { missingReason, suite } from '../../helpers/jsonata-suite.ts';

const totals = { cases: 0, syntaxErrors: 0, refused: 0, compiled: 0, allClosures: 0, interpreted: 0, disagreements: 0 };

/** Plain JSON, as the engine sees results; arrays sorted when the case says order is free. */
function plain(value: unknown, unordered: boolean): unknown {
  if (value === undefined) return undefined;
  const v = JSON.parse(JSON.stringify(value)) as unknown;
  if (unordered && Array.isArray(v)) return [...v].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
  return v;
}

type Outcome = { value: unknown } | { code: string; position?: number };

function codeOf(err: unknown): { code: string; position?: number } {
  const e = err as { code?: string; position?: number };
  return { code: e?.code ?? String(err), position: e?.position };
}

/** Whether closures.ts compiled every node of the AST (filter-stage wrappers aside). */
function everyNodeHasAClosure(node: unknown): boolean {
  if (!node || typeof node !== 'object' || node instanceof RegExp) return true;
  if (Array.isArray(node)) return node.every(everyNodeHasAClosure);
  const n = node as { type?: unknown; compiled?: unknown; [k: string]: unknown };
  if (typeof n.type === 'string' && n.type !== 'filter' && !n.compiled) return false;
  return Object.entries(n).every(([k, v]) => k === 'compiled' || k === 'leaf' || typeof v !== 'object' || everyNodeHasAClosure(v));
}

const limitCode = (code: string) => (code === 'D1011' || code === 'D1012' ? 'U1001' : code);

describe.skipIf(!suite)(`compiler vs the JSONata conformance suite${missingReason ? ` (skipped: ${missingReason})` : ''}`, () => {
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
        const limits = c.timelimit || c.depth ? { timeout: c.timelimit, stack: c.depth } : undefined;
        let expr: jsonata.Expression;
        try {
          expr = jsonata(source, limits as jsonata.JsonataOptions);
        } catch {
          totals.syntaxErrors++;
          continue; // a syntax-error case: jsonata's parser is the compiler's front end
        }
        if (/\$eval\b/.test(source)) {
          totals.refused++; // $eval is refused at load (SPEC §4): compileExpression throws
          continue;
        }
        if (!isCompilable(expr.ast())) {
          totals.interpreted++;
          continue;
        }
        totals.compiled++;
        const compiled = compileAst(expr.ast(), limits);
        if (everyNodeHasAClosure(expr.ast())) totals.allClosures++;
        let got: Outcome;
        try {
          got = { value: compiled.evaluate(input, c.bindings) };
        } catch (err) {
          got = codeOf(err);
        }
        const unordered = Boolean(c.unordered);
        const expectedError = c.code ?? c.error?.code;
        let problem: string | undefined;
        const show = (o: Outcome) => ('code' in o ? `error ${o.code}@${o.position}` : JSON.stringify(o.value));
        if (expectedError) {
          if (!('code' in got) || limitCode(got.code) !== expectedError) problem = `gave ${show(got)} where the suite expects error ${expectedError}`;
        } else if ('code' in got) {
          problem = `gave ${show(got)}, expected ${c.undefinedResult ? 'no result' : JSON.stringify(c.result)}`;
        } else if (c.undefinedResult) {
          if (got.value !== undefined) problem = `gave ${show(got)} where the suite expects no result`;
        } else if (!isDeepStrictEqual(plain(got.value, unordered), plain(c.result, unordered))) {
          problem = `gave ${show(got)}, expected ${JSON.stringify(c.result)}`;
        }
        // And the interpreter itself agrees (same input, same bindings, same limits).
        if (!problem && !/\$(random|now|millis|shuffle)\b/.test(source)) {
          let reference: Outcome;
          try {
            reference = { value: await expr.evaluate(input, c.bindings) };
          } catch (err) {
            reference = codeOf(err);
          }
          const same = 'code' in got
            ? 'code' in reference && limitCode(reference.code) === limitCode(got.code)
              && (reference.position === got.position || limitCode(got.code) === 'U1001')
            : !('code' in reference) && isDeepStrictEqual(plain(got.value, unordered), plain(reference.value, unordered));
          if (!same) problem = `gave ${show(got)}, jsonata gives ${show(reference)}`;
        }
        if (problem) {
          totals.disagreements++;
          problems.push(`${where}: ${problem}`);
        }
      }
      expect(problems).toEqual([]);
    });
  }

  it('the compiler answers at least 90% of the suite, with no disagreement', () => {
    // Runs after the group tests (vitest runs a file's tests in order).
    expect(totals.cases).toBeGreaterThan(1500);
    expect(totals.compiled).toBeGreaterThanOrEqual(0.9 * totals.cases);
    expect(totals.disagreements).toBe(0);
  });

  afterAll(() => {
    console.log(`JSONata conformance: ${totals.cases} cases, ${totals.syntaxErrors} syntax errors (parser), ${totals.refused} using $eval (refused), `
      + `${totals.compiled} answered by compiled code (${totals.allClosures} of them with a closure for every node, `
      + `the others with some nodes run by the synchronous evaluator), ${totals.interpreted} left to the jsonata interpreter, `
      + `${totals.disagreements} disagreements`);
  });
});
