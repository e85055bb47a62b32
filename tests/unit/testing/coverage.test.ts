/**
 * `synapse test --coverage`'s collector: test cases run through a probed copy of their pipeline;
 * what they reach (outcomes, `when:` true/false) and the branches they leave untaken are reported,
 * branches at FILE:LINE:COL of their condition.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPipeline, type LoadContext } from '../../../engine/config/load-pipeline.ts';
import { CoverageCollector, CoveredPipeline, formatCoverage, type PipelineCoverage } from '../../../engine/testing/coverage.ts';
import { dryRun } from '../../../engine/testing/dry-run.ts';
import { runTestFiles } from '../../../engine/testing/run-test-file.ts';
import { loadContext, tempDirs } from '../support/temp-dir.ts';

const dirs = tempDirs('synapse-coverage-');
let ctx: LoadContext;
beforeAll(async () => {
  ctx = await loadContext(join(import.meta.dirname, '../../fixtures/schemas'));
});
afterAll(() => dirs.cleanup());

const PIPELINE = [
  'name: orders',
  'source: { stream: orders }',
  'filter: event = "order" and total > 0',
  'transform: |',
  '  {',
  '    "size": total > 100 ? "big" : "small",',
  '    "vip": vip ? true : false',
  '  }',
  'sinks:',
  '  - { type: log, id: all }',
  '  - { type: log, id: big, when: size = "big" }',
  '',
].join('\n');

/** 1-based line and column of `token` (its first occurrence) in `text`. */
function at(text: string, token: string): { line: number; col: number } {
  const lines = text.split('\n');
  const line = lines.findIndex((l) => l.includes(token));
  return { line: line + 1, col: lines[line]!.indexOf(token) + 1 };
}

async function coverageOf(pipeline: string, cases: string): Promise<PipelineCoverage> {
  const dir = await dirs.make({ 'orders.yaml': pipeline, 'orders.test.yaml': `pipeline: orders\ncases:\n${cases}` });
  const coverage = new CoverageCollector();
  const [result] = await runTestFiles([join(dir, 'orders.test.yaml')], ctx, { coverage });
  expect(result!.cases.every((c) => c.passed), JSON.stringify(result)).toBe(true);
  const [only] = coverage.results();
  return only!;
}

describe('test coverage', () => {
  it('reports exactly the outcomes and branches the cases did not reach, branches at their condition', async () => {
    const cov = await coverageOf(PIPELINE, [
      '  - name: a small order',
      '    input: [ { event: order, total: 5 } ]',
      '    expect: { sinks: { all: [ { size: small, vip: false } ], big: [] } }',
    ].join('\n'));
    const reached = Object.fromEntries(cov.outcomes.map((o) => [o.key, o.count]));
    expect(reached).toEqual({
      'sunk:all': 1, 'sunk:big': 0, 'filtered:filter': 0, 'dlq:decode': 0, 'dlq:filter': 0, 'dlq:transform': 0,
      'when:big:true': 0, 'when:big:false': 1, 'dlq:sink:big': 0,
    });
    const missed = cov.branches.filter((b) => b.count === 0).map((b) => `${b.line}:${b.col} ${b.expression} ${b.kind} ${b.branch} ${b.text}`);
    const and = at(PIPELINE, 'event = "order" and');
    const size = at(PIPELINE, 'total > 100 ?');
    const vip = at(PIPELINE, 'vip ?');
    expect(missed).toEqual([
      `${and.line}:${and.col} filter and short event = "order" and`,
      `${size.line}:${size.col} transform ?: then total > 100 ?`,
      `${vip.line}:${vip.col} transform ?: then vip ?`,
    ]);
    expect(cov.branches.filter((b) => b.count > 0).map((b) => `${b.expression} ${b.kind} ${b.branch}`)).toEqual([
      'filter and right', 'transform ?: else', 'transform ?: else',
    ]);
    expect(cov.branches.every((b) => b.measured && b.file.endsWith('orders.yaml'))).toBe(true);
  });

  it('cases reaching every branch and outcome the others left leave nothing unreached but what no case can reach', async () => {
    const cov = await coverageOf(PIPELINE, [
      '  - name: every way through',
      '    input: [ { event: order, total: 500, vip: true }, { event: order, total: 5 }, { event: refund, total: 1 }, "not json", { event: order, total: "x" } ]',
      '    expect:',
      '      sinks: { all: [ { size: big, vip: true }, { size: small, vip: false } ], big: [ { size: big, vip: true } ] }',
      '      filtered: 1',
      '      dlq: [ { stage: decode }, { stage: filter } ]',
    ].join('\n'));
    expect(cov.branches.filter((b) => b.count === 0)).toEqual([]);
    expect(cov.outcomes.filter((o) => o.count === 0).map((o) => o.key)).toEqual(['dlq:transform', 'dlq:sink:big']);
    expect(cov.outcomes.find((o) => o.key === 'when:big:true')!.count).toBe(1);
    expect(cov.outcomes.find((o) => o.key === 'when:big:false')!.count).toBe(1);
  });

  it('counts dropped, DLQ at validate, a failing when: and events no when: admitted', async () => {
    const yaml = [
      'name: orders',
      'source: { stream: orders }',
      'validate: { schema: "https://synapse.test/schemas/order-event.json", on_invalid: drop }',
      'sinks:',
      '  - { type: log, id: a, when: data.orderId = "a" }',
      '  - { type: log, id: b, when: $number(data.orderId) > 1 }',
      '',
    ].join('\n');
    const dir = await dirs.make({ 'orders.yaml': yaml });
    const covered = new CoveredPipeline(await loadPipeline(join(dir, 'orders.yaml'), ctx));
    const { outcomes } = await dryRun(covered.pipeline, [
      { event: 'order-placed', data: {} },
      { event: 'order-placed', data: { orderId: 'a' } },
      { event: 'order-placed', data: { orderId: '0' } },
    ]);
    covered.record(outcomes);
    const counts = Object.fromEntries(covered.result().outcomes.map((o) => [o.key, o.count]));
    expect(counts).toMatchObject({
      dropped: 1, 'dlq:sink:b': 1, 'filtered:when': 1, 'when:a:true': 1, 'when:a:false': 1, 'when:b:false': 1, 'when:b:true': 0,
    });
    expect(counts).not.toHaveProperty('dlq:validate');
    expect(covered.result().branches).toEqual([]);
  });

  it('leaves the pipeline it was given as it was: only the copy is probed', async () => {
    const dir = await dirs.make({ 'orders.yaml': PIPELINE });
    const original = await loadPipeline(join(dir, 'orders.yaml'), ctx);
    const covered = new CoveredPipeline(original);
    expect(covered.pipeline.transform).not.toBe(original.transform);
    await dryRun(original, [{ event: 'order', total: 500 }]);
    expect(covered.result().branches.every((b) => b.count === 0)).toBe(true);
    expect(covered.result().tested).toBe(false);
  });

  it('lists the branches of an expression left to the jsonata interpreter as not measured', async () => {
    // A binding as an array item stays on the interpreter (compile.ts, isCompilable).
    const yaml = "name: orders\nsource: { stream: orders }\ntransform: '[$x := total, $x > 1 ? \"a\" : \"b\"]'\nsink: { type: log }\n";
    const dir = await dirs.make({ 'orders.yaml': yaml });
    const covered = new CoveredPipeline(await loadPipeline(join(dir, 'orders.yaml'), ctx));
    expect(covered.pipeline.transform!.sync).toBe(false);
    const { outcomes } = await dryRun(covered.pipeline, [{ total: 5 }]);
    covered.record(outcomes);
    const result = covered.result();
    expect(result.branches.map((b) => [b.branch, b.measured])).toEqual([['else', false], ['then', false]]);
    expect(formatCoverage([result])).toContain('    transform: 2 branch(es) not measured (evaluated by the jsonata interpreter, which reports none)');
  });

  it('prints reached and unreached outcomes and each untaken branch at FILE:LINE:COL', async () => {
    const cov = await coverageOf(PIPELINE, [
      '  - name: a small order',
      '    input: [ { event: order, total: 5 } ]',
      '    expect: { sinks: { all: [ { size: small, vip: false } ], big: [] } }',
    ].join('\n'));
    const size = at(PIPELINE, 'total > 100 ?');
    const text = formatCoverage([cov, { ...cov, tested: false, pipeline: 'other' }]);
    const lines = text.split('\n');
    expect(lines[0]).toBe('coverage: what the test cases reach, per pipeline');
    expect(lines).toContain('  outcomes: 2 of 9 reached');
    expect(lines).toContain('    ✓ sunk at all (1 event)');
    expect(lines).toContain('    ✓ when of big: false (1 event)');
    expect(lines).toContain('    ✗ sunk at big');
    expect(lines).toContain('    ✗ filtered by the filter');
    expect(lines).toContain('  branches: 3 of 6 taken; not taken:');
    expect(lines.find((l) => l.includes('total > 100 ?'))).toMatch(new RegExp(`orders\\.yaml:${size.line}:${size.col} transform: total > 100 \\? → then$`));
    expect(lines.find((l) => l.includes('"order" and'))).toMatch(/filter: event = "order" and → left side false \(short-circuit\)$/);
    expect(lines.at(-2)).toMatch(/orders\.yaml \(pipeline other\)$/);
    expect(lines.at(-1)).toBe('  no test file: nothing reached');
  });
});
