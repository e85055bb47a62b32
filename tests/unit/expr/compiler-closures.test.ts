/**
 * Which nodes the closure compiler (engine/expr/compiler/closures.ts) compiles. Results are the
 * conformance and differential tests' business; this pins down the shape: the common forms of
 * pipeline expressions must be closures, not nodes the evaluator interprets, and the forms left
 * to the evaluator are the ones listed in closures.ts.
 */
import jsonata from 'jsonata';
import { describe, expect, it } from 'vitest';
import { compileTree } from '../../../engine/expr/compiler/closures.ts';
import { compileAst, isCompilable } from '../../../engine/expr/compiler/compile.ts';
import { internals } from '../../../engine/expr/compiler/evaluator.js';

interface AstNode {
  type?: string;
  value?: unknown;
  compiled?: unknown;
  [key: string]: unknown;
}

/** `type value` of every node left without a closure. */
function interpreted(source: string): string[] {
  const ast = jsonata(source).ast() as unknown as AstNode;
  compileTree(ast);
  const out: string[] = [];
  const walk = (n: unknown): void => {
    if (!n || typeof n !== 'object' || n instanceof RegExp) return;
    if (Array.isArray(n)) {
      n.forEach(walk);
      return;
    }
    const node = n as AstNode;
    if (typeof node.type === 'string' && node.type !== 'filter' && !node.compiled) out.push(`${node.type} ${String(node.value ?? '')}`.trim());
    for (const [k, v] of Object.entries(node)) if (k !== 'compiled' && typeof v === 'object') walk(v);
  };
  walk(ast);
  return out;
}

const fullyCompiled = [
  'customer.id',
  'event = "order-placed" and (total > 100 or customer.tier = "gold")',
  'event in ["a", "b"]',
  'total > 500 ? "big" : "small"',
  '"Order " & id & " for " & customer.id',
  'items[price > 10].sku',
  'items[0].sku',
  'items[-1].price',
  '$sum(items.(price * qty))',
  '{ "n": $count(items), "max": $max(items.price) }',
  '$round(total * 1.2, 2)',
  'items{ category: $sum(price) }',
  'items.price ~> $sum() ~> $round(1)',
  '($t := $sum(items.price); $n := $count(items); $n > 0 ? $t / $n : 0)',
  '$.customer.email',
  '$input.kind & ":" & value',
  '-total',
  '[1, 2, items.price]',
];

const leftToTheEvaluator: [string, string[]][] = [
  ['$map(items, function($i) { $i.sku })', ['lambda']],
  ['(items^(>price)).sku', ['sort']],
  ['$match(s, /a+/)', ['regex /a+/g']],
  ['[1..3]', ['binary ..']],
  ['items@$i.price', ['name items']],
];

describe('the closure compiler', () => {
  for (const source of fullyCompiled) {
    it(`compiles every node of ${source}`, () => {
      expect(interpreted(source)).toEqual([]);
    });
  }
  for (const [source, left] of leftToTheEvaluator) {
    it(`leaves ${left.join(', ')} of ${source} to the evaluator (its sub-expressions compiled)`, () => {
      expect(interpreted(source)).toEqual(left);
    });
  }

  it('compiled and interpreted nodes mix in one evaluation', () => {
    const compiled = compileAst(jsonata('$map(items[qty > 0], function($i) { $round($i.price * $i.qty, 1) })').ast());
    const value = compiled.evaluate({ items: [{ price: 1.25, qty: 2 }, { price: 3, qty: 0 }, { price: 0.35, qty: 1 }] });
    expect(JSON.parse(JSON.stringify(value))).toEqual([2.5, 0.4]);
  });

  it('a `:=` directly inside an array constructor stays on the interpreter; in a block it is compiled', () => {
    expect(isCompilable(jsonata('[$x := 1, $x]').ast())).toBe(false);
    expect(isCompilable(jsonata('{"a": $y := 2, "b": $y}').ast())).toBe(false);
    expect(isCompilable(jsonata('[($x := 1), $x]').ast())).toBe(true);
    expect(isCompilable(jsonata('($x := 1; [$x, $x])').ast())).toBe(true);
  });

  describe('repeated pure calls', () => {
    const source = '{ "a": $sum(items.(price * qty)), "b": $round($sum(items.(price * qty)), 1), "c": $count(items[qty > 0]) + $count(items[qty > 0]) }';
    const input = { items: [{ price: 1.25, qty: 2 }, { price: 3, qty: 0 }, { price: 0.35, qty: 1 }] };

    it('give the value each call gives', () => {
      expect(compileAst(jsonata(source).ast()).evaluate(input)).toEqual({ a: 2.85, b: 2.8, c: 4 });
    });

    it('are each called again when a binding of the evaluation shadows the built-in', () => {
      let calls = 0;
      const sum = (xs: number[]) => {
        calls++;
        return xs.length;
      };
      const value = compileAst(jsonata(source).ast()).evaluate(input, { sum });
      expect(value).toEqual({ a: 3, b: 3, c: 4 });
      expect(calls).toBe(2);
    });

    it('leave on the built-in the name and position the call leaves (as jsonata\'s calls do)', () => {
      const ast = jsonata('($count(a); $count(a))').ast() as unknown as { expressions: { position: number }[] };
      const second = ast.expressions[1]!.position;
      expect(second).not.toBe(ast.expressions[0]!.position);
      compileAst(ast).evaluate({ a: [1, 2] });
      const count = internals.staticFrame.lookup('count') as { token?: unknown; position?: unknown };
      expect(count).toMatchObject({ token: 'count', position: second });
    });

    it('reach the depth limit where jsonata does', async () => {
      // The second $sum sits deeper than the first: with a limit between the two, only the
      // second would fail, kept value or not.
      // (Conditions, not constructors: jsonata evaluates a constructor's items concurrently,
      // which adds their depths up.)
      const deep = '$sum(a.b) + (true ? (true ? (true ? (true ? (true ? $sum(a.b) : 0) : 0) : 0) : 0) : 0)';
      for (let stack = 4; stack <= 24; stack++) {
        const ours = (() => {
          try {
            return compileAst(jsonata(deep).ast(), { stack }).evaluate({ a: { b: [1, 2] } });
          } catch (err) {
            return (err as { code?: string }).code;
          }
        })();
        const theirs = await jsonata(deep, { stack } as jsonata.JsonataOptions).evaluate({ a: { b: [1, 2] } }).then((v) => v, (err: { code?: string }) => err.code);
        expect(JSON.parse(JSON.stringify(ours ?? null))).toEqual(JSON.parse(JSON.stringify(theirs ?? null)));
      }
    });
  });
});
