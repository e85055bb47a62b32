/**
 * Property-based differential test: random events, evaluated by the compiled code and by the
 * jsonata 2.2 interpreter, must give the same value (as plain JSON) or the same error code and
 * position. The expressions are the shipped catalog's (pipelines/*.yaml: filter, transform, every
 * sink's `when`) and the conformance suite's; the events are random JSON shaped by the field
 * names each expression reads, so paths hit, miss, meet arrays, nulls and wrong types.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import jsonata from 'jsonata';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { compileAst, isCompilable } from '../../../engine/expr/compiler/compile.ts';
import { suite } from '../../helpers/jsonata-suite.ts';

const PIPELINES = resolve(import.meta.dirname, '../../../pipelines');
const LIMITS = { timeout: 1000, stack: 500, sequence: 1_000_000 };
/** A fixed seed keeps the suite deterministic; DIFF_SEED and DIFF_RUNS (a multiplier) explore further. */
const SEED = Number(process.env.DIFF_SEED ?? 20261201);
const RUNS = Number(process.env.DIFF_RUNS ?? 1);
/** Expressions whose result is not a function of the input. */
const NONDETERMINISTIC = /\$(random|now|millis|shuffle|eval)\b|\$\$?[a-z]*\s*:=\s*\$(now|millis)/;

function catalogExpressions(): string[] {
  const out: string[] = [];
  for (const f of readdirSync(PIPELINES)) {
    if (!f.endsWith('.yaml') || f.endsWith('.test.yaml')) continue;
    const doc = parse(readFileSync(join(PIPELINES, f), 'utf8')) as Record<string, unknown>;
    for (const key of ['filter', 'transform']) if (typeof doc[key] === 'string') out.push(doc[key] as string);
    const sinks = [doc.sink, ...(Array.isArray(doc.sinks) ? doc.sinks : [])] as { when?: unknown }[];
    for (const s of sinks) if (s && typeof s.when === 'string') out.push(s.when);
  }
  return out;
}

/** Field names an expression reads (name steps), to shape random events after. */
function namesOf(ast: unknown, out = new Set<string>(), depth = 0): Set<string> {
  if (depth > 100 || !ast || typeof ast !== 'object' || ast instanceof RegExp) return out;
  if (Array.isArray(ast)) {
    for (const n of ast) namesOf(n, out, depth + 1);
    return out;
  }
  const node = ast as Record<string, unknown>;
  if (node.type === 'name' && typeof node.value === 'string') out.add(node.value);
  if (node.type === 'string' && typeof node.value === 'string' && node.value.length < 20) out.add(node.value);
  for (const [k, v] of Object.entries(node)) if (k !== 'compiled' && typeof v === 'object') namesOf(v, out, depth + 1);
  return out;
}

function eventArbitrary(names: string[]): fc.Arbitrary<unknown> {
  const keys = names.length > 0 ? fc.constantFrom(...names) : fc.string({ maxLength: 3 });
  const { value } = fc.letrec<{ value: unknown }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.integer({ min: -5, max: 100 }),
      fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }),
      fc.constantFrom(...names.slice(0, 20), '', 'a', '2024-01-02T03:04:05Z', '42'),
      fc.boolean(),
      fc.constant(null),
      fc.array(tie('value'), { maxLength: 4 }),
      fc.dictionary(keys, tie('value'), { maxKeys: 5 }),
    ),
  }));
  return fc.oneof(fc.dictionary(keys, value, { minKeys: 1, maxKeys: 6 }), value);
}

type Outcome = { value: unknown } | { code: string; position?: number };
const plain = (v: unknown): unknown => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)) as unknown);
const codeOf = (err: unknown): Outcome => ({ code: String((err as { code?: string }).code ?? err), position: (err as { position?: number }).position });

async function differs(source: string, input: unknown): Promise<string | undefined> {
  const reference = jsonata(source, LIMITS as jsonata.JsonataOptions);
  const compiled = compileAst(jsonata(source).ast(), LIMITS);
  let ours: Outcome;
  let theirs: Outcome;
  try {
    ours = { value: plain(compiled.evaluate(input)) };
  } catch (err) {
    ours = codeOf(err);
  }
  try {
    theirs = { value: plain(await reference.evaluate(input)) };
  } catch (err) {
    theirs = codeOf(err);
  }
  // A time-out is a matter of speed, not of semantics.
  if (('code' in ours && ours.code === 'D1012') || ('code' in theirs && theirs.code === 'D1012')) return undefined;
  if (isDeepStrictEqual(ours, theirs)) return undefined;
  return `${source} on ${JSON.stringify(input)}: compiled ${JSON.stringify(ours)}, jsonata ${JSON.stringify(theirs)}`;
}

function propertyFor(sources: string[], runsEach: number): Promise<void> {
  const cases = sources
    .filter((s) => !NONDETERMINISTIC.test(s))
    .map((source) => {
      try {
        const ast = jsonata(source).ast();
        return isCompilable(ast) ? { source, names: [...namesOf(ast)] } : undefined;
      } catch {
        return undefined;
      }
    })
    .filter((c): c is { source: string; names: string[] } => c !== undefined);
  const arb = fc.integer({ min: 0, max: cases.length - 1 }).chain((i) => fc.tuple(fc.constant(cases[i]!.source), eventArbitrary(cases[i]!.names)));
  return fc.assert(fc.asyncProperty(arb, async ([source, input]) => {
    const problem = await differs(source, input);
    if (problem) throw new Error(problem);
  }), { numRuns: cases.length * runsEach * RUNS, seed: SEED });
}

/**
 * Expressions for the compiled fast paths (closures.ts): path steps with predicates and map steps,
 * operators on plain operands, and the built-ins called without their signature's regex, with
 * arguments of every type (the random events give wrong types, arrays, null and missing fields).
 */
const FAST_PATHS = [
  'items[qty > 0]', 'items[qty > 0].sku', '[items[qty > 0].sku]', 'a[b = "a"]', 'a[b]', 'a[0]', 'a.(b * c)', 'a.(b + 1)',
  'a.b.(c & "x")', 'items.(price * qty)', 'a.b.c', 'a.b[c > 1].d',
  'a + b', 'a - b', 'a * b', 'a / b', 'a % b', 'a < b', 'a <= b', 'a > b', 'a >= b', 'a = b', 'a != b', 'a and b', 'a or b',
  'a.b = c', 'a = "a"', 'a > 1 and b < 2', 'a or b.c',
  '$sum(a)', '$sum(a.b)', '$sum(items.(price * qty))', '$count(a)', '$count(items[qty > 0])', '$max(a)', '$min(a.b)', '$average(a)',
  '$round(a)', '$round(a, 2)', '$round(a, b)', '$round(a * 1.005, 3)', '$round(a, -1)', '$round($sum(items.(price * qty)) * (1 - a), 2)',
  '$string(a)', '$string(a, true)', '$string(a, b)', '$number(a)', '$length(a)', '$substring(a, 1)', '$substring(a, b, 2)',
  '$substring(a, b)', '$uppercase(a)', '$lowercase(a)', '$trim(a)', '$pad(a, 5)', '$contains(a, "a")', '$contains(a, b)',
  '$split(a, "a")', '$join(a, ",")', '$join(a)', '$join(a, b)', '$exists(a)', '$boolean(a)', '$not(a)', '$abs(a)',
  '$floor(a)', '$ceil(a)', '$sqrt(a)', '$power(a, 2)', '$keys(a)', '$lookup(a, "b")', '$lookup(a, b)', '$type(a)',
  '$distinct(a)', '$formatBase(a, 2)', '$sum()', '$count()', '$string()', '$round()', '$uppercase()', 'a.$string()',
  'a.$uppercase()', 'a ~> $sum()', 'a ~> $round(1)', '$sum(a, b)', '$round(a, 2, 3)', '$count(a, b)',
  // repeated pure calls (kept values): on objects, arrays, in map steps, with $ and $$, beside bindings and transforms
  '{ "x": $sum(a.b), "y": $sum(a.b) * 2, "z": $count(a[b > 1]) + $count(a[b > 1]) }', 'a.($count(b) + $count(b))',
  '[$string(a), $string(a)]', '$sum(a) = $sum(a) ? $count($) : $count($$)', 'a.{ "n": $count($), "m": $count($$.a) + $count($$.a) }',
  '($x := $sum(a); $sum(a) + $x)',
  // what a call leaves on the built-in (token, position), which an error raised through it later may read
  '($number(a); $number(a); $map(["x"], $number))', '($string(a); $string(a); $lookup($string, "position"))',
  '($count(a) + $count(a); $keys($count))', '{ "x": $sum(a), "y": $sum(a), "p": $lookup($sum, "position") }',
  '($round($sum(a)); $round($sum(a)); $lookup($sum, "position"))',
  // names on what is not plain data: inherited keys, jsonata's function marks as data, function objects
  'constructor', 'a.constructor', 'a.toString', '_jsonata_lambda ? a : a.b', 'a.(_jsonata_function = true ? b : c)',
  '[$sum, $count].(implementation)', '[$sum].(signature.definition)', 'a.b.(c.d)', '$ ~> |a|{ "c": $count(b) }| ~> |a|{ "d": $count(b) }|', '$count(a) & $count(a) & $keys(a)',
];

describe('compiled code vs jsonata on random events', () => {
  it('the compiled fast paths\' expressions', async () => {
    await propertyFor(FAST_PATHS, 60);
  }, 120_000);

  it('$round(x, p) on decimals ending in 5 and on any number', async () => {
    const half = fc.tuple(fc.integer({ min: -1_000_000, max: 1_000_000 }), fc.integer({ min: 1, max: 6 }))
      .map(([k, p]) => ({ x: (k * 10 + 5) / 10 ** (p + 1), p }));
    const any = fc.tuple(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer({ min: -3, max: 16 }))
      .map(([x, p]) => ({ x, p }));
    await fc.assert(fc.asyncProperty(fc.oneof(half, any), async (input) => {
      const problem = await differs('$round(x, p)', input);
      if (problem) throw new Error(problem);
    }), { numRuns: 3000 * RUNS, seed: SEED });
  }, 120_000);

  it('the catalog pipelines\' expressions', async () => {
    const sources = catalogExpressions();
    expect(sources.length).toBeGreaterThan(20);
    await propertyFor(sources, 40);
  }, 120_000);

  it.skipIf(!suite)('the conformance suite\'s expressions', async () => {
    const sources = suite!.groups.flatMap((g) => suite!.cases(g))
      // Cases that stress time or size by design are the limits tests' business.
      .filter((c) => !c.timelimit && !c.depth && !/\d{5,}/.test(c.source))
      .map((c) => c.source);
    await propertyFor([...new Set(sources)], 3);
  }, 300_000);
});
