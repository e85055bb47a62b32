/**
 * The limits compiled code enforces by itself (SPEC §4 and the hardening issue): time, depth,
 * sequence length, string size, linear-time regexes, and no $eval. Table-driven: each case is an
 * expression, an input, and the error code (or value) it must end with.
 */
import { describe, expect, it } from 'vitest';
import { compileExpression, EXPRESSION_SEQUENCE_LIMIT } from '../../../engine/expr/compile-expression.ts';
import { compileAst } from '../../../engine/expr/compiler/compile.ts';
import { MAX_STRING_LENGTH } from '../../../engine/expr/compiler/limits.ts';
import { compileRegex } from '../../../engine/expr/compiler/regex.ts';
import jsonata from 'jsonata';

/** The jsonata error code of a synchronous evaluation (the ExpressionError's cause), or its value. */
function outcome(source: string, input: unknown = {}, timeoutMs = 100): { code: string } | { value: unknown } {
  try {
    return { value: compileExpression(source, { timeoutMs }).evaluate(input) };
  } catch (err) {
    return { code: String((err as { cause?: { code?: string } }).cause?.code) };
  }
}

const errors: { expr: string; input?: unknown; code: string; why: string }[] = [
  { expr: '($f := function($x) { $f($x) }; $f(1))', code: 'D1012', why: 'endless tail recursion runs out of time' },
  { expr: '($f := function($n) { 1 + $f($n + 1) }; $f(0))', code: 'D1011', why: 'endless recursion hits the depth limit' },
  { expr: '$map([1..900000], function($v) { $map([1..100], function($w) { $w }) })', code: 'D1012', why: 'a loop inside a function is timed too' },
  { expr: '($f := function($s, $n) { $n = 0 ? $s : $f($s & $s, $n - 1) }; $f("x", 40))', code: 'L1001', why: 'a doubling string stops at the size limit' },
  { expr: '$pad("x", 100000000)', code: 'L1001', why: '$pad cannot allocate gigabytes' },
  { expr: '$pad("x", -100000000)', code: 'L1001', why: 'nor pad on the left' },
  { expr: `($x := $pad("", ${MAX_STRING_LENGTH - 10}, "y"); $x & $x)`, code: 'L1001', why: '& checks the size before concatenating' },
  { expr: `($x := $pad("", 1000000, "y"); $join([1..20].$x))`, code: 'L1001', why: '$join checks the total length first' },
  { expr: `$replace($pad("", 100000, "a"), "a", $pad("", 200, "b"))`, code: 'L1001', why: '$replace stops growing at the limit' },
  { expr: `($x := $pad("", 1000000, "y"); $string([1..20].$x))`, code: 'L1001', why: '$string of a huge value' },
  { expr: '($f := function($a, $n) { $n = 0 ? $a : $f({"l": $a, "r": $a}, $n - 1) }; $f(1, 40))', code: 'L1002', why: 'a result sharing its parts (2^40 values written out) is refused before anything walks it' },
  { expr: '($f := function($a, $n) { $n = 0 ? $a : $f({"l": $a, "r": $a}, $n - 1) }; $string($f(1, 40)))', code: 'D1012', why: '$string of such a value runs out of time, it does not hang' },
  { expr: `[1..${EXPRESSION_SEQUENCE_LIMIT + 1}]`, code: 'D2015', why: 'a range over the sequence limit' },
  { expr: '[1..100000000]', code: 'D2014', why: "jsonata's own range bound" },
  { expr: '$undefinedFunction(1)', code: 'T1006', why: 'an unknown function' },
];

const values: { expr: string; input?: unknown; value: unknown; why: string }[] = [
  { expr: '$match(s, /(a+)+$/)', input: { s: `${'a'.repeat(36)}!` }, value: undefined, why: 'catastrophic backtracking is linear' },
  { expr: '$contains(s, /^(a|a)*$/)', input: { s: `${'a'.repeat(40)}!` }, value: false, why: 'in $contains too' },
  { expr: '$replace(s, /(x+x+)+y/, "-")', input: { s: 'x'.repeat(40) }, value: 'x'.repeat(40), why: 'and $replace' },
  { expr: '$split(s, /(a*)*b/)', input: { s: 'a'.repeat(40) }, value: ['a'.repeat(40)], why: 'and $split' },
  { expr: '$count([1..100000])', value: 100000, why: 'large but allowed sequences are fine' },
  { expr: '$length($pad("x", 100000))', value: 100000, why: 'large but allowed strings are fine' },
];

describe('compiled code enforces its limits', () => {
  for (const c of errors) {
    it(`${c.why}: ${c.expr.slice(0, 80)} → ${c.code}`, () => {
      expect(outcome(c.expr, c.input ?? {}, c.code === 'D1012' ? 50 : 10_000)).toEqual({ code: c.code });
    }, 20_000);
  }
  for (const c of values) {
    it(`${c.why}: ${c.expr}`, () => {
      const t0 = Date.now();
      expect(outcome(c.expr, c.input ?? {}, 10_000)).toEqual({ value: c.value });
      expect(Date.now() - t0).toBeLessThan(10_000); // "promptly": a backtracking engine takes hours
    }, 20_000);
  }

  it('the depth limit strikes at the same depth as on the interpreter, whatever builds the result', async () => {
    // Recursion inside array and object constructors (first item or later), arithmetic and `&`.
    const shapes = [
      '[$f($n - 1), $n]', '[1, $f($n - 1)]', '{"a": $f($n - 1), "b": 1}', '{"b": 1, "a": $f($n - 1)}',
      '$f($n - 1) + 1', '($f($n - 1) & "x")', '$f($n - 1).{"v": $}', '[$n, [$n, $f($n - 1)]]', '{"a": [$f($n - 1)], "b": [1, 2]}',
      '[$n][$ > 0].$f($n - 1)', '$map([$n], function($v) { $f($v - 1) })',
    ];
    // The deepest recursion that still evaluates (a call in tail position never deepens: jsonata
    // runs it as a loop, on both sides).
    const deepestOk = async (shape: string, compile: boolean) => {
      for (let n = 100; n <= 240; n++) {
        const source = `($f := function($n) { $n > 0 ? ${shape} : 0 }; $f(${n}))`;
        const expression = compileExpression(source, { compile, timeoutMs: 10_000 });
        expect(expression.sync).toBe(compile);
        try {
          await expression.evaluate({});
        } catch (err) {
          expect((err as { cause?: { code?: string } }).cause?.code).toBe('D1011');
          return n - 1;
        }
      }
      return 'no limit met up to 240';
    };
    for (const shape of shapes) expect([shape, await deepestOk(shape, true)]).toEqual([shape, await deepestOk(shape, false)]);
  }, 60_000);

  it('L1001 carries a clear message', () => {
    let err: unknown;
    try {
      compileExpression('$pad("x", 100000000)').evaluate({});
    } catch (e) {
      err = e;
    }
    expect((err as Error).message).toBe(`$pad would build a string of 100000000 characters, more than the limit of ${MAX_STRING_LENGTH}`);
  });

  it('every regex is built by compileRegex, which keeps flags', () => {
    expect(compileRegex('a.c', 'i').test('ABC')).toBe(true);
  });

  it('$eval is not even defined in compiled code', () => {
    // compileExpression refuses it at load; the compiler itself has no $eval to call.
    expect(() => compileAst(jsonata('$eval("1")').ast()).evaluate({})).toThrow(expect.objectContaining({ code: 'T1006' }) as Error);
  });
});
