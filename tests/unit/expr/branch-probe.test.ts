/**
 * The branch probe of `synapse test --coverage` (closures.ts, BranchProbe): a probed compilation
 * reports each condition's and each `and`/`or`'s branch, and gives exactly the results and errors
 * of the plain compilation, over every case of JSONata's conformance suite that has one.
 */
import { isDeepStrictEqual } from 'node:util';
import jsonata from 'jsonata';
import { describe, expect, it } from 'vitest';
import { compileAst, isCompilable } from '../../../engine/expr/compiler/compile.ts';
import type { BranchProbe } from '../../../engine/expr/compiler/closures.ts';
import { compileExpression } from '../../../engine/expr/compile-expression.ts';
import { missingReason, suite } from '../../helpers/jsonata-suite.ts';

/** A probe that logs `TYPE@POSITION BRANCH` per evaluation. */
function logProbe(): { probe: BranchProbe; log: string[]; registered: string[] } {
  const log: string[] = [];
  const registered: string[] = [];
  return {
    log,
    registered,
    probe: {
      register(node, branches) {
        const name = node.type === 'condition' ? '?' : String(node.value);
        registered.push(`${name}@${node.position}`);
        return (i) => log.push(`${name}@${node.position} ${branches[i]}`);
      },
    },
  };
}

describe('branch probe', () => {
  it('reports then/else of conditions and right/short of and/or, as evaluated', () => {
    const { probe, log, registered } = logProbe();
    const e = compileExpression('a > 1 ? (b and c) : (b or c)', { probe });
    expect(registered).toEqual(['and@14', 'or@25', '?@7']);
    expect(e.evaluate({ a: 2, b: false, c: true })).toBe(false);
    expect(e.evaluate({ a: 2, b: true, c: true })).toBe(true);
    expect(e.evaluate({ a: 0, b: true })).toBe(true);
    expect(e.evaluate({ a: 0, b: false, c: 1 })).toBe(true);
    expect(log).toEqual([
      '?@7 then', 'and@14 short',
      '?@7 then', 'and@14 right',
      '?@7 else', 'or@25 short',
      '?@7 else', 'or@25 right',
    ]);
  });

  it('a call made twice reports the branches of both (no value kept from the first under a probe)', () => {
    const { probe, log, registered } = logProbe();
    const e = compileExpression('[$string(a ? 1 : 2), $string(a ? 1 : 2)]', { probe });
    expect(registered).toEqual(['?@12', '?@32']);
    expect(e.evaluate({ a: true })).toEqual(['1', '1']);
    expect(log).toEqual(['?@12 then', '?@32 then']);
  });

  it('a condition without else counts its else when it gives nothing; an error in the condition counts neither', () => {
    const { probe, log } = logProbe();
    const e = compileExpression('$number(a) > 1 ? "big"', { probe });
    expect(e.evaluate({ a: '0' })).toBeUndefined();
    expect(() => e.evaluate({ a: 'x' })).toThrow();
    expect(log).toEqual(['?@16 else']);
  });

  it('without a probe, nothing is registered (the engine\'s own compilation)', () => {
    const { probe, registered } = logProbe();
    compileExpression('a ? b : c', {});
    compileExpression('a and b', { probe });
    expect(registered).toEqual(['and@5']);
  });
});

describe.skipIf(!suite)(`probed vs plain compilation over the JSONata conformance suite${missingReason ? ` (skipped: ${missingReason})` : ''}`, () => {
  it('gives the same value or error code for every case with a condition, and or or', () => {
    let compared = 0;
    const problems: string[] = [];
    for (const group of suite!.groups) {
      for (const c of suite!.cases(group)) {
        if (!/\?|\band\b|\bor\b/.test(c.source) || /\$(eval|random|now|millis|shuffle)\b/.test(c.source)) continue;
        let ast: unknown;
        try {
          ast = jsonata(c.source).ast();
        } catch {
          continue;
        }
        if (!isCompilable(ast)) continue;
        const limits = { timeout: c.timelimit ?? 1000, stack: c.depth ?? 500 };
        const run = (probe?: BranchProbe) => {
          try {
            return { value: JSON.parse(JSON.stringify(compileAst(jsonata(c.source).ast(), limits, probe).evaluate(c.input, c.bindings)) ?? 'null') as unknown };
          } catch (err) {
            return { code: (err as { code?: string }).code ?? String(err), position: (err as { position?: number }).position };
          }
        };
        const plain = run();
        const probed = run(logProbe().probe);
        compared++;
        if (!isDeepStrictEqual(plain, probed)) problems.push(`${c.name}: ${c.source.slice(0, 80)}: ${JSON.stringify(plain)} vs probed ${JSON.stringify(probed)}`);
      }
    }
    expect(problems).toEqual([]);
    expect(compared).toBeGreaterThan(100);
  });
});
