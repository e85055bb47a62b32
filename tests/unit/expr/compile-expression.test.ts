import { describe, expect, it } from 'vitest';
import {
  compileExpression, ExpressionSyntaxError, DEFAULT_EXPRESSION_TIMEOUT_MS, EXPRESSION_SEQUENCE_LIMIT,
} from '../../../engine/expr/compile-expression.ts';
import { ExpressionError } from '../../../engine/errors.ts';

const order = {
  event: 'order-placed',
  data: { userId: 'u1', total: '42' },
  items: [
    { sku: 'a', price: 1 },
    { sku: 'b', price: 2 },
    { sku: 'c', price: 3 },
  ],
};

const valid: { expr: string; input?: unknown; bindings?: Record<string, unknown>; expected: unknown }[] = [
  { expr: '1 + 2', expected: 3 },
  { expr: 'event = "order-placed"', input: order, expected: true },
  { expr: 'event in ["task-completed", "task-failed"]', input: order, expected: false },
  { expr: 'data.userId', input: order, expected: 'u1' },
  { expr: '$number(data.total) * 2', input: order, expected: 84 },
  { expr: 'missing.path', input: order, expected: undefined },
  { expr: 'items[price > 1].sku', input: order, expected: ['b', 'c'] },
  { expr: '$count(items)', input: order, expected: 3 },
  { expr: '$sum(items.price)', input: order, expected: 6 },
  // A singleton sequence is its one value, as in JSONata; [..] keeps it an array.
  { expr: 'items[sku = "b"].price', input: order, expected: 2 },
  { expr: '[items[sku = "b"].price]', input: order, expected: [2] },
  { expr: '{ "user": data.userId, "skus": items.sku }', input: order, expected: { user: 'u1', skus: ['a', 'b', 'c'] } },
  { expr: 'event = "order-placed" ? "yes" : "no"', input: order, expected: 'yes' },
  { expr: '"Hello " & data.userId', input: order, expected: 'Hello u1' },
  { expr: '$input.kind & ":" & value', input: { value: 'v' }, bindings: { input: { kind: 'k' } }, expected: 'k:v' },
  { expr: '$sort([3, 1, 2])', expected: [1, 2, 3] },
  { expr: '$map([1, 2], function($v) { $v * 10 })', expected: [10, 20] },
  { expr: '[1, nothing, 2]', expected: [1, 2] },
  // Functions are not JSON: they are dropped from results.
  { expr: '{ "f": function($x) { $x }, "a": 1 }', expected: { a: 1 } },
  { expr: 'function($x) { $x }', expected: undefined },
  { expr: '$filter([1, 2, 3], function($v) { $v > 5 })', expected: undefined },
];

const syntaxErrors: { expr: string; offset: number; message: string }[] = [
  // `offset` is 0-based and points at the first character of the offending token.
  { expr: 'a = = 1', offset: 4, message: 'invalid JSONata: The symbol "=" cannot be used as a unary operator' },
  { expr: '  a = = 1', offset: 6, message: 'invalid JSONata: The symbol "=" cannot be used as a unary operator' },
  { expr: '$f(1,,2)', offset: 5, message: 'invalid JSONata: The symbol "," cannot be used as a unary operator' },
  { expr: 'x = 1 )', offset: 6, message: 'invalid JSONata: Syntax error: ")"' },
  { expr: '[1, 2 3]', offset: 6, message: 'invalid JSONata: Expected "]", got 3' },
  { expr: '{"a": 1 bb: 2}', offset: 8, message: 'invalid JSONata: Expected "}", got "bb"' },
  // A string token starts at its opening quote.
  { expr: '{"a": 1 "bb": 2}', offset: 8, message: 'invalid JSONata: Expected "}", got "bb"' },
  { expr: '"x" "y"', offset: 4, message: 'invalid JSONata: Syntax error: "y"' },
  // Errors at the end of the expression point just past its last character.
  { expr: 'foo(', offset: 4, message: 'invalid JSONata: Expected ")" before end of expression' },
  { expr: 'a.b.', offset: 4, message: 'invalid JSONata: Unexpected end of expression' },
  { expr: '$x := ', offset: 6, message: 'invalid JSONata: Unexpected end of expression' },
  // $eval is refused wherever it appears; the offset points at `$eval`.
  { expr: '$eval("1 + 1")', offset: 0, message: '$eval is not allowed: it would run event data as code' },
  { expr: 'x.$eval(y)', offset: 2, message: '$eval is not allowed: it would run event data as code' },
  { expr: '$$.$eval(code)', offset: 3, message: '$eval is not allowed' },
  { expr: '$sum(x) + $eval("1")', offset: 10, message: '$eval is not allowed' },
  { expr: 'function($x) { $eval($x) }', offset: 15, message: '$eval is not allowed' },
  { expr: '$f := $eval', offset: 6, message: '$eval is not allowed' },
  { expr: 'code ~> $eval', offset: 8, message: '$eval is not allowed' },
  { expr: '{ "k": $eval }', offset: 7, message: '$eval is not allowed' },
];

/** What a synchronous evaluation threw (compiled code throws; it returns no promise). */
function caught(run: () => unknown): unknown {
  try {
    run();
  } catch (err) {
    return err;
  }
  return undefined;
}

describe('compileExpression', () => {
  describe('valid expressions evaluate to plain values', () => {
    for (const c of valid) {
      it(`${c.expr}`, async () => {
        const expr = compileExpression(c.expr);
        expect(expr.source).toBe(c.expr);
        expect(await expr.evaluate(c.input ?? {}, c.bindings)).toEqual(c.expected);
      });
    }
  });

  describe('syntax errors carry the offset of the offending token', () => {
    for (const c of syntaxErrors) {
      it(`${c.expr}`, () => {
        let err: unknown;
        try {
          compileExpression(c.expr);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(ExpressionSyntaxError);
        const e = err as ExpressionSyntaxError;
        expect({ offset: e.offset, at: c.expr.slice(e.offset) }).toEqual({ offset: c.offset, at: c.expr.slice(c.offset) });
        expect(e.message).toContain(c.message);
      });
    }
  });

  it('$eval inside a string or as a field name is not a call and is allowed', async () => {
    expect(await compileExpression('"$eval(x)"').evaluate({})).toBe('$eval(x)');
    expect(await compileExpression('`$eval`').evaluate({ $eval: 7 })).toBe(7);
  });

  describe('runtime failures reject with ExpressionError', () => {
    it('runaway recursion stops with a time-out instead of hanging', async () => {
      const expr = compileExpression('($f := function($x) { $f($x) }; $f(1))', { timeoutMs: 20 });
      const err = caught(() => expr.evaluate({}));
      expect(err).toBeInstanceOf(ExpressionError);
      expect((err as ExpressionError).code).toBe('SYN_EXPRESSION');
      expect((err as ExpressionError).message).toBe('timed out after 20 ms');
    }, 5_000);

    it('the default time limit applies when none is given', async () => {
      const err = caught(() => compileExpression('($f := function($x) { $f($x) }; $f(1))').evaluate({}));
      expect(err).toBeInstanceOf(ExpressionError);
      expect((err as Error).message).toBe(`timed out after ${DEFAULT_EXPRESSION_TIMEOUT_MS} ms`);
    }, 5_000);

    it('deep non-tail recursion stops at the depth limit', async () => {
      // A generous time limit, so only the depth limit can stop it.
      const expr = compileExpression('($f := function($n) { $n = 0 ? 0 : 1 + $f($n - 1) }; $f(100000))', { timeoutMs: 30_000 });
      const err = caught(() => expr.evaluate({}));
      expect(err).toBeInstanceOf(ExpressionError);
      expect((err as Error).message).toBe('recursed too deep (runaway recursion?)');
    }, 5_000);

    it('a sequence over the limit is refused instead of exhausting memory', async () => {
      const err = caught(() => compileExpression(`$count([1..${EXPRESSION_SEQUENCE_LIMIT * 2}])`).evaluate({}));
      expect(err).toBeInstanceOf(ExpressionError);
      expect((err as Error & { cause: { code: string } }).cause.code).toBe('D2015');
    }, 5_000);

    const runtime: { expr: string; input: unknown; message: string }[] = [
      { expr: 'a + 1', input: { a: 'x' }, message: 'The left side of the "+" operator must evaluate to a number' },
      { expr: '$number(s)', input: { s: 'abc' }, message: 'Unable to cast value to a number: "abc"' },
      { expr: '$error("boom")', input: {}, message: 'boom' },
      { expr: '$undefinedFunction(1)', input: {}, message: 'Attempted to invoke a non-function' },
    ];
    for (const c of runtime) {
      it(`${c.expr} → ${c.message}`, async () => {
        const err = caught(() => compileExpression(c.expr).evaluate(c.input));
        expect(err).toBeInstanceOf(ExpressionError);
        expect((err as Error).message).toBe(c.message);
        // The JSONata error is kept as the cause, with its code.
        expect((err as Error & { cause: { code?: string } }).cause.code).toMatch(/^[A-Z][0-9]{4}$/);
      });
    }
  });

  describe('results are plain JSON', () => {
    it('group-by results are plain objects, a `__proto__` key included', () => {
      const value = compileExpression('items{ sku: price }').evaluate({ items: [{ sku: 'a', price: 1 }, { sku: '__proto__', price: 2 }] }) as object;
      expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
      expect(Object.keys(value)).toEqual(['a', '__proto__']);
      expect(JSON.stringify(value)).toBe('{"a":1,"__proto__":2}');
    });

    it('a lambda in a result is left out; event data that only names the mark is kept', async () => {
      expect(await compileExpression('{ "f": function($x) { $x }, "n": 1 }').evaluate({})).toEqual({ n: 1 });
      const data = { a: { _jsonata_lambda: 'yes', x: 1 }, b: [{ _jsonata_lambda: 0 }] };
      expect(await compileExpression('{ "a": a, "b": b }').evaluate(data)).toEqual(data);
    });

    it('a plain result is not copied', () => {
      const input = { data: { a: [1, 2] } };
      expect(compileExpression('data').evaluate(input)).toBe(input.data);
    });

    it('a path over an array is a plain array, without the JSONata sequence flag', async () => {
      const value = await compileExpression('items.price').evaluate(order);
      expect(Array.isArray(value)).toBe(true);
      expect(value).toEqual([1, 2, 3]);
      expect(Object.keys(value as object)).toEqual(['0', '1', '2']);
      expect((value as { sequence?: unknown }).sequence).toBeUndefined();
    });

    it('nested sequences inside objects and arrays are plain too', async () => {
      const value = (await compileExpression('{ "p": items.price, "nested": [items.sku] }').evaluate(order)) as Record<string, unknown[]>;
      expect(value).toEqual({ p: [1, 2, 3], nested: ['a', 'b', 'c'] });
      expect(Object.keys(value.p!)).toEqual(['0', '1', '2']);
      expect(Object.getOwnPropertyNames(value.nested!)).toEqual(['0', '1', '2', 'length']);
    });

    it('results survive a JSON round trip unchanged', async () => {
      const value = await compileExpression('{ "items": items[price > 1], "count": $count(items) }').evaluate(order);
      expect(JSON.parse(JSON.stringify(value))).toEqual(value);
      expect(value).toEqual({ items: [{ sku: 'b', price: 2 }, { sku: 'c', price: 3 }], count: 3 });
    });

    it('the input is not modified by evaluation', async () => {
      const input = structuredClone(order);
      await compileExpression('items.price').evaluate(input);
      await compileExpression('$', {}).evaluate(input);
      expect(input).toEqual(order);
    });
  });

  it('one compiled expression can be evaluated many times', () => {
    const expr = compileExpression('n * 2');
    expect([1, 2, 3, 4].map((n) => expr.evaluate({ n }))).toEqual([2, 4, 6, 8]);
  });

  it('evaluates synchronously: no promise, no lock', () => {
    const expr = compileExpression('$sum(items.price)');
    expect(expr.sync).toBe(true);
    expect(expr.evaluate(order)).toBe(6);
  });
});
