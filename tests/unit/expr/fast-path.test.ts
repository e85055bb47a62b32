/**
 * The synchronous fast path (engine/expr/fast-path.ts) against the jsonata interpreter: typical
 * pipeline expressions must get one and answer ordinary events without bailing; on every input,
 * odd ones included, compileExpression (fast path + jsonata fallback) must give exactly what plain
 * jsonata gives, errors included.
 */
import jsonata from 'jsonata';
import { describe, expect, it } from 'vitest';
import { compileExpression } from '../../../engine/expr/compile-expression.ts';
import { BAIL, compileFastPath, MAX_DEPTH } from '../../../engine/expr/fast-path.ts';
import { FIELD_VALUES, randomBindings, randomExpression, randomInput, seeded } from './fast-path-fuzz.ts';

type Outcome = { value: unknown } | { error: string };

/** What plain jsonata makes of it, as the engine would see it (plain JSON, key order kept). */
async function reference(source: string, input: unknown, bindings?: Record<string, unknown>): Promise<Outcome> {
  try {
    return { value: plain(await jsonata(source).evaluate(input, bindings)) };
  } catch (err) {
    return { error: String((err as { code?: string }).code) };
  }
}

async function viaEngine(source: string, input: unknown, bindings?: Record<string, unknown>): Promise<Outcome> {
  try {
    return { value: plain(await compileExpression(source).evaluate(input, bindings)) };
  } catch (err) {
    return { error: String((err as { cause?: { code?: string } }).cause?.code) };
  }
}

/** JSON text keeps key order and tells undefined apart; functions and holes vanish as in normalize(). */
function plain(value: unknown): unknown {
  return value === undefined ? '<undefined>' : JSON.stringify(value);
}

/** Runs the fast path alone: its value, or BAIL. */
function fastOnly(source: string, input: unknown, bindings?: Record<string, unknown>): { value: unknown } | typeof BAIL {
  const fast = compileFastPath(jsonata(source).ast());
  if (!fast) throw new Error(`no fast path for ${source}`);
  try {
    return { value: fast(input, bindings) };
  } catch (err) {
    if (err === BAIL) return BAIL;
    throw err;
  }
}

const TRANSFORM = `{
  "userId": data.userId,
  "type": event = "task-completed" ? "success" : "error",
  "title": event = "task-completed" ? "Task Completed" : "Task Failed",
  "message": event = "task-completed"
    ? "Your task " & $string(data.title ? data.title : data.taskId) & " has completed."
    : "Your task " & $string(data.title ? data.title : data.taskId) & " failed: " & $string(data.error ? data.error : "unknown error"),
  "data": { "taskId": data.taskId }
}`;

const NOTIFICATION = `(
  $task := data.title ? data.title : data.taskName ? data.taskName : "Task " & data.taskId;
  event = "task-completed" ? {
    "userId": data.userId,
    "type": "success",
    "message": $task & " has completed.",
    "data": { "event": event, "taskId": data.taskId }
  } : {
    "userId": data.userId,
    "type": "error",
    "message": data.error ? $task & " failed: " & data.error : $task & " failed.",
    "data": { "event": event, "taskId": data.taskId, "score": data.score ? data.score * 10 : 0 }
  }
)`;

/** Typical filter / transform / when expressions, with bindings where they use `$input`. */
const TYPICAL: { expr: string; bindings?: boolean }[] = [
  { expr: 'event in ["task-completed", "task-failed"]' },
  { expr: TRANSFORM },
  { expr: NOTIFICATION },
  { expr: 'data.statusCode >= 500' },
  { expr: 'data.statusCode >= 500 and data.method != "GET"' },
  { expr: 'model_name & "@" & version' },
  { expr: '{ "model": data.model_name, "version": $string(data.version), "ms": data.latency_ms / 1000 }' },
  { expr: 'event = "inference-complete" or event = "rag-retrieval"' },
  { expr: '$exists(data.error) ? $uppercase(data.error) : "ok"' },
  { expr: 'data.title ?? data.taskId' },
  { expr: '$lowercase(source) = "task-orchestrator" and data.priority > 2' },
  { expr: '($exists(payload) and $not($exists(event)) ? payload : $).event = "model-ready"' },
  { expr: 'error_rate > 0.1 or latency_ms_avg > 5000' },
  { expr: '$input.event = "task-failed" and $exists(userId)', bindings: true },
  { expr: '-data.priority + $number(data.durationMs ? data.durationMs : "0") % 7' },
  { expr: '$length($trim(data.title)) > 3 ? $substring(data.title, 0, 3) : $substringBefore(data.taskId, "-")' },
];

/** Realistic platform events, as the bench and the pipelines see them. */
function realisticEvent(rnd: () => number, i: number): Record<string, unknown> {
  const event = ['task-completed', 'task-failed', 'task-created', 'inference-complete', 'model-ready'][i % 5]!;
  const data: Record<string, unknown> = {
    userId: `u${Math.floor(rnd() * 5000)}`,
    taskId: `t-${i}`,
    priority: Math.floor(rnd() * 5),
    durationMs: Math.floor(rnd() * 60_000),
    statusCode: [200, 201, 404, 500, 503][i % 5],
    method: ['GET', 'POST'][i % 2],
    model_name: 'llama-3-8b',
    version: `1.${i % 9}`,
    latency_ms: Math.floor(rnd() * 9000),
  };
  if (rnd() < 0.8) data.title = `Nightly ETL #${i % 977}`;
  if (rnd() < 0.5) data.error = 'worker lost';
  if (rnd() < 0.3) data.score = Math.floor(rnd() * 100);
  return {
    event, source: 'task-orchestrator', timestamp: '2024-05-01T10:00:00Z', data,
    model_name: 'llama-3-8b', version: `1.${i % 9}`, error_rate: rnd() / 5, latency_ms_avg: rnd() * 8000, userId: 'u1',
  };
}

/** The same events with one field replaced by something odd: missing, null, a string number, an array... */
function oddEvent(rnd: () => number, i: number): unknown {
  const e = structuredClone(realisticEvent(rnd, i));
  const data = e.data as Record<string, unknown>;
  const target = rnd() < 0.5 ? data : e;
  const keys = Object.keys(target);
  const key = keys[Math.floor(rnd() * keys.length)]!;
  if (rnd() < 0.2) delete target[key];
  else target[key] = FIELD_VALUES[Math.floor(rnd() * FIELD_VALUES.length)];
  if (rnd() < 0.03) return [e]; // an array as the whole input
  return e;
}

describe('fast path', () => {
  describe('typical pipeline expressions get a fast path and answer ordinary events themselves', () => {
    for (const { expr, bindings } of TYPICAL) {
      it(expr.replace(/\s+/g, ' ').slice(0, 100), async () => {
        expect(compileExpression(expr).fast).toBe(true);
        const rnd = seeded(7);
        for (let i = 0; i < 60; i++) {
          const input = realisticEvent(rnd, i);
          const b = bindings ? { input: realisticEvent(rnd, i + 1) } : undefined;
          const fast = fastOnly(expr, input, b);
          expect(fast, `bailed on ${JSON.stringify(input)}`).not.toBe(BAIL);
          const expected = await reference(expr, input, b);
          expect({ value: plain((fast as { value: unknown }).value) }).toEqual(expected);
          expect(await viaEngine(expr, input, b)).toEqual(expected);
        }
      });
    }
  });

  describe('odd inputs (missing fields, nulls, numbers as strings, arrays) give what jsonata gives', () => {
    for (const { expr, bindings } of TYPICAL) {
      it(expr.replace(/\s+/g, ' ').slice(0, 100), async () => {
        const rnd = seeded(11);
        let bailed = 0;
        for (let i = 0; i < 200; i++) {
          const input = oddEvent(rnd, i);
          const b = bindings ? { input: oddEvent(rnd, i + 1) as Record<string, unknown> } : undefined;
          if (fastOnly(expr, input, b) === BAIL) bailed++;
          expect(await viaEngine(expr, input, b), `input ${JSON.stringify(input)}`).toEqual(await reference(expr, input, b));
        }
        // Some of these inputs must have taken the fallback, or this test proves little.
        expect(bailed).toBeGreaterThan(0);
      });
    }
  });

  it('an array input, an array field or a type error goes to jsonata with the same outcome', async () => {
    const cases: [string, unknown, Record<string, unknown>?][] = [
      ['event in ["task-completed", "task-failed"]', [{ event: 'task-completed' }]],
      ['event in ["task-completed", "task-failed"]', { event: ['task-completed', 'x'] }],
      ['data.tags', { data: { tags: ['a'] } }],
      ['data.statusCode >= 500', { data: { statusCode: '503' } }],
      ['data.statusCode + 1', { data: { statusCode: 'x' } }],
      ['items.price', { items: [{ price: 1 }, { price: 2 }] }],
      ['$input.data.x', {}, { input: { data: [{ x: 1 }, { x: 2 }] } }],
      ['$unbound', {}],
      ['$string(x)', { x: 1 }, { string: 'shadowed' }],
      ['1 / x', { x: 0 }],
    ];
    for (const [expr, input, b] of cases) {
      expect(fastOnly(expr, input, b), expr).toBe(BAIL);
      expect(await viaEngine(expr, input, b), expr).toEqual(await reference(expr, input, b));
    }
    // Arrays nested inside a value the fast path only passes along or stringifies are fine.
    const deep = { data: { n: [1.1, 2, 0.1 + 0.2], s: 'x' } };
    expect(fastOnly('$string(data) & "/" & $boolean(data)', deep)).toEqual({ value: '{"n":[1.1,2,0.3],"s":"x"}/true' });
    expect(await viaEngine('$string(data) & "/" & $boolean(data)', deep)).toEqual(await reference('$string(data) & "/" & $boolean(data)', deep));
  });

  it('hand-picked corners of the semantics answer exactly as jsonata', async () => {
    const input = {
      a: 'x', n: 5, s: '42', z: 0, t: true, nul: null, o: { k: 'v', m: 'w' }, e: {},
      f: { _jsonata_function: true }, arr: [1], deep: { list: [1, { b: 2.5 }], v: 0.1 },
    };
    const bindings = { x: 'X', input: { event: 'e' } };
    const corners = [
      // undefined values in constructors are left out, before anything looks at the object
      '$boolean({"a": missing})', '{"a": missing} = {}', '$string({"a": missing, "b": 1})', '[missing, 1] = [1]',
      '$string([1, missing])', '$not([])', '$boolean([[], 0])', '$boolean([[], 1])', '[[]] = [[]]', '[[1], ([2]), (n)]',
      // equality, comparison, inclusion with undefined, null and mixed types
      'missing = missing', 'missing != 1', 'missing < 1', 'missing & missing', 'missing + 1', '-missing', 'nul = null',
      'o = {"m": "w", "k": "v"}', 'o != {"k": "v"}', 'e = {}', '"a" in "a"', '1 in [1, "1"]', 's in [42]', 'nul in [null]',
      'missing in [1]', 'n in []', '"x" < "y"', 'n >= 5', 'nul < 1', 't > false', 'o in [o]',
      // numbers and their string forms
      '$string(-0)', '$string(1e21)', '$string(0.1 + 0.2)', '$string(123456789.123456789)', '$string(deep)', '-0', '7 % -3',
      '$number("0x1F")', '$number("1e3")', '$number(" 1")', '$number(s) + 1', '$number(t)', '1 / 3', 'n / z',
      '$abs(-n)', '$floor(-2.5)', '$ceil(2.1)', 's + 1',
      // strings
      '$length("𝄞")', '$substring("𝄞💩x", -2)', '$substring("hello", 1, -1)', '$substring("hello", -10, 3)', '$trim("  a \n b ")',
      '$contains("abc", "")', '"x" & t & nul & {"a": [1]} & o', '$substringAfter(a, "")', '$uppercase(a) & $lowercase("ÀB")',
      // conditions, blocks, variables
      '(a; n)', '()', '{}', '[]', 'e ? 1 : 2', 'z ? 1', 'o ?: 3', 'missing ?? nul', '$$.a', '$.o.k', '$x & $input.event',
      '($x := 1; ($x := 2); $x)', '($y := $x; $x := "Z"; $y & $x)', '($x := $x & "!"; $x) ?? 0', '$x := n * 2',
      '(o).k', '(t ? o : e).m', '({"q": 1}).q', '$exists(f)', 'f.x', '$string(f)', 'arr', 'deep.list',
    ];
    const problems: string[] = [];
    for (const expr of corners) {
      const expected = await reference(expr, input, bindings);
      const fast = fastOnly(expr, input, bindings);
      if (fast !== BAIL && JSON.stringify({ value: plain(fast.value) }) !== JSON.stringify(expected)) {
        problems.push(`${expr}: fast ${JSON.stringify(plain(fast.value))}, jsonata ${JSON.stringify(expected)}`);
      }
      const engine = await viaEngine(expr, input, bindings);
      if (JSON.stringify(engine) !== JSON.stringify(expected)) problems.push(`${expr}: engine ${JSON.stringify(engine)}, jsonata ${JSON.stringify(expected)}`);
    }
    expect(problems).toEqual([]);
  });

  it('expressions outside the subset get no fast path and still work', async () => {
    const outside = [
      'items[price > 1].sku', '$sum(items.price)', '$count(items)', 'a.b[0]', '$map([1, 2], function($v) { $v * 10 })',
      '{ "a": 1, "a": 2 }', '{ key: value }', 'items^(price)', '**.x', '*.a', 'a.(b)', 'a.$', '[1..3]', '$string(x, true)',
      '$string := 1', '($lowercase := $uppercase; $lowercase("x"))', '$$ := 1', '[$x := 1, $x]', '{ "a": $x := 3, "b": $x }',
      '$millis() > 0', '$round(x)', 'a ~> $string()', '/ab/', `${'('.repeat(MAX_DEPTH + 2)}1${')'.repeat(MAX_DEPTH + 2)}`, 'items{sku: price}',
      '$join(["a", "b"])', 'x[]',
    ];
    for (const expr of outside) {
      expect(compileExpression(expr).fast, expr).toBe(false);
      const input = { items: [{ sku: 'a', price: 1 }, { sku: 'b', price: 2 }], a: { b: [1] }, x: 2.5, key: 'k', value: 'v' };
      expect(await viaEngine(expr, input), expr).toEqual(await reference(expr, input));
    }
  });

  it('the fast path is synchronous: no lock, no time limit, and results are plain', async () => {
    const expr = compileExpression('{ "a": data.a, "b": [data.b, ["n"]], "c": { "d": data.missing } }');
    expect(expr.fast).toBe(true);
    const value = await expr.evaluate({ data: { a: { x: 1 }, b: 2 } });
    expect(value).toEqual({ a: { x: 1 }, b: [2, ['n']], c: {} });
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.keys(value as object)).toEqual(['a', 'b', 'c']);
  });

  it('differential fuzz: random subset expressions x random inputs agree with jsonata', async () => {
    const rnd = seeded(20240501);
    const stats = { expressions: 0, fast: 0, answered: 0, bailed: 0 };
    const problems: string[] = [];
    for (let n = 0; n < 1500; n++) {
      const source = randomExpression(rnd);
      stats.expressions++;
      let fast;
      try {
        fast = compileFastPath(jsonata(source).ast());
      } catch {
        continue;
      }
      if (!fast) continue;
      stats.fast++;
      for (let k = 0; k < 4; k++) {
        const input = randomInput(rnd);
        const bindings = randomBindings(rnd);
        let value: unknown;
        try {
          value = fast(input, bindings);
        } catch (err) {
          if (err !== BAIL) problems.push(`${source}: threw ${String(err)}`);
          stats.bailed++;
          // Through compileExpression the fallback must still give jsonata's outcome.
          if (k === 0) {
            const [mine, theirs] = [await viaEngine(source, input, bindings), await reference(source, input, bindings)];
            if (JSON.stringify(mine) !== JSON.stringify(theirs)) problems.push(`${source} on ${JSON.stringify(input)}: ${JSON.stringify(mine)} vs ${JSON.stringify(theirs)}`);
          }
          continue;
        }
        stats.answered++;
        const theirs = await reference(source, input, bindings);
        const mine = { value: plain(value) };
        if (JSON.stringify(mine) !== JSON.stringify(theirs)) {
          problems.push(`${source} on ${JSON.stringify(input)} with ${JSON.stringify(bindings)}: fast ${JSON.stringify(mine)}, jsonata ${JSON.stringify(theirs)}`);
        }
      }
    }
    expect(problems).toEqual([]);
    expect(stats.fast).toBeGreaterThan(1000);
    expect(stats.answered).toBeGreaterThan(1000);
    expect(stats.bailed).toBeGreaterThan(500);
  }, 60_000);
});
