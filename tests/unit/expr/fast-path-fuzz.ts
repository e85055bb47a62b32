/**
 * Random expressions of the fast-path subset and random inputs, for differential tests against
 * jsonata. Seeded: the same seed gives the same cases.
 */

export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(rnd: () => number, items: readonly T[]): T => items[Math.floor(rnd() * items.length)]!;

/** Leaf values an input field may hold: every JSON type, the awkward ones included. */
export const FIELD_VALUES: readonly unknown[] = [
  null, true, false, 0, -0, 1, -1, 2.5, 0.1, 500, 1e21, 123456789.123456789, -7, 3,
  '', 'a', 'A', 'abc', 'ABC', ' x  y ', '500', '2.5', '1e3', '0x1F', 'task-completed', 'task-failed', '𝄞x', 'true',
  {}, { a: 1 }, { a: 'x', b: [1, 2] }, { nested: { deep: 'v' } },
  [], [1], ['a'], [1, 2], ['task-completed'], [{ a: 1 }], [[1]],
];

const FIELDS = ['a', 'b', 'c', 'event', 'data'] as const;

/** A random input: usually an object with some of FIELDS (nested one level), sometimes not. */
export function randomInput(rnd: () => number, depth = 0): unknown {
  const r = rnd();
  if (depth === 0 && r < 0.04) return pick(rnd, FIELD_VALUES); // scalars, arrays as the input
  if (depth > 0 && r < 0.5) return pick(rnd, FIELD_VALUES);
  const out: Record<string, unknown> = {};
  for (const f of FIELDS) {
    const p = rnd();
    if (p < 0.25) continue; // missing
    out[f] = depth < 2 && p < 0.45 ? randomInput(rnd, depth + 1) : pick(rnd, FIELD_VALUES);
  }
  return out;
}

const LITERALS = ['0', '1', '-1', '2.5', '3', '1e21', '0.1', '"a"', '"abc"', '""', '"500"', '"task-completed"', 'true', 'false', 'null'];
const PATHS = [
  'a', 'b', 'c', 'event', 'data', 'a.b', 'data.a', 'data.b.c', 'event.a', '$', '$$', '$.a', '$$.data.c',
  '$input', '$input.a', '$input.data.b', '$v', '$unbound', '$x', '$y', '$x.a', '$y.data.b',
];
const BINARY = ['=', '!=', '<', '<=', '>', '>=', '+', '-', '*', '/', '%', '&', 'in', 'and', 'or'];
const FUNCS: readonly [string, number][] = [
  ['exists', 1], ['boolean', 1], ['not', 1], ['string', 1], ['number', 1], ['lowercase', 1], ['uppercase', 1],
  ['length', 1], ['trim', 1], ['substring', 2], ['substring', 3], ['substringBefore', 2], ['substringAfter', 2],
  ['contains', 2], ['abs', 1], ['floor', 1], ['ceil', 1],
];

const VARIABLES = ['$x', '$y', '$v', '$input'];

/** An item of a constructor, an argument or a branch: now and then a bare `$x := ...`. */
function item(rnd: () => number, depth: number): string {
  return rnd() < 0.15
    ? `${pick(rnd, VARIABLES)} := ${randomExpression(rnd, depth + 1)}`
    : randomExpression(rnd, depth + 1);
}

/** A random expression of the subset (it may still be refused: duplicate keys, say). */
export function randomExpression(rnd: () => number, depth = 0): string {
  const r = rnd();
  if (depth >= 4 || r < 0.25) return rnd() < 0.5 ? pick(rnd, LITERALS) : pick(rnd, PATHS);
  if (r < 0.55) return `${randomExpression(rnd, depth + 1)} ${pick(rnd, BINARY)} ${randomExpression(rnd, depth + 1)}`;
  if (r < 0.62) return `-${randomExpression(rnd, depth + 1)}`;
  if (r < 0.7) {
    return rnd() < 0.7
      ? `(${randomExpression(rnd, depth + 1)} ? ${item(rnd, depth)} : ${item(rnd, depth)})`
      : `(${randomExpression(rnd, depth + 1)} ? ${randomExpression(rnd, depth + 1)})`;
  }
  if (r < 0.74) return `(${randomExpression(rnd, depth + 1)} ${pick(rnd, ['??', '?:'])} ${randomExpression(rnd, depth + 1)})`;
  if (r < 0.86) {
    const [name, arity] = pick(rnd, FUNCS);
    const args = Array.from({ length: arity }, () => item(rnd, depth));
    return `$${name}(${args.join(', ')})`;
  }
  if (r < 0.92) {
    const n = Math.floor(rnd() * 4);
    return `[${Array.from({ length: n }, () => item(rnd, depth)).join(', ')}]`;
  }
  if (r < 0.97) {
    const n = Math.floor(rnd() * 6);
    const keys = ['k1', '2', 'k3', '1', 'k1']; // integer-like keys reorder; the last one repeats
    return `{${Array.from({ length: n }, (_, i) => `"${keys[i]}": ${item(rnd, depth)}`).join(', ')}}`;
  }
  if (r < 0.975) return `(${randomExpression(rnd, depth + 1)}).${pick(rnd, ['a', 'b', 'data.a', 'event'])}`;
  if (r < 0.99) {
    // Variables bound in blocks, read before and after binding, shadowing outer ones.
    const v = pick(rnd, VARIABLES);
    return `(${randomExpression(rnd, depth + 1)}; ${v} := ${randomExpression(rnd, depth + 1)}; ${randomExpression(rnd, depth + 1)})`;
  }
  return `(${randomExpression(rnd, depth + 1)}; ${randomExpression(rnd, depth + 1)})`;
}

/** Bindings for `$input` and `$v` (sometimes absent, sometimes shadowing a built-in). */
export function randomBindings(rnd: () => number): Record<string, unknown> | undefined {
  const r = rnd();
  if (r < 0.15) return undefined;
  const b: Record<string, unknown> = { input: randomInput(rnd), v: pick(rnd, FIELD_VALUES) };
  if (r > 0.95) b.string = 'shadowed';
  return b;
}
