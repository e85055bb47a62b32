import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadContext } from '../../../engine/config/load-pipeline.ts';
import { TestFileInvalidError, type Diagnostic } from '../../../engine/errors.ts';
import {
  expandTestFiles, formatTestResults, loadTestFile, renderDiff, runTestFiles, type TestFileResult,
} from '../../../engine/testing/run-test-file.ts';
import { SinkRegistry } from '../../../engine/plugins/sink-registry.ts';
import { rejection } from '../support/rejection.ts';
import { loadContext, tempDirs } from '../support/temp-dir.ts';

/** The sink types a load context knows, as 'unknown sink type' lists them. */
const KNOWN_SINKS = SinkRegistry.withBuiltins().names().join(', ');

const dirs = tempDirs('synapse-run-test-file-');
let ctx: LoadContext;
beforeAll(async () => {
  ctx = await loadContext(join(import.meta.dirname, '../../fixtures/schemas'));
});
afterAll(() => dirs.cleanup());

const show = (d: Diagnostic) => `${basename(d.file)}:${d.line}:${d.col} ${d.message}`;

const ROUTER = [
  'name: router',
  'source: { stream: orders }',
  `validate: { schema: "https://synapse.test/schemas/order-event.json", on_invalid: drop }`,
  'filter: event != "ignored"',
  'transform: \'{ "kind": kind, "order": data.orderId }\'',
  'sinks:',
  '  - { type: publish, id: big, when: kind = "big", with: { stream: big-orders } }',
  '  - { type: log, id: audit }',
  '',
].join('\n');

const SINGLE = 'name: single\nsource: { stream: orders }\ntransform: \'{ "order": data.orderId }\'\nsink: { type: log }\n';

async function runOne(pipeline: string, testYaml: string): Promise<TestFileResult> {
  const dir = await dirs.make({ 'p.yaml': pipeline, 'p.test.yaml': testYaml });
  const [result] = await runTestFiles([join(dir, 'p.test.yaml')], ctx);
  return result!;
}

const ev = (orderId: string, extra = '') => `{ event: order-placed, data: { orderId: ${orderId} }${extra} }`;

describe('runTestFiles', () => {
  it('runs each case through the real pipeline: sinks by id, filtered, dropped and DLQ counts', async () => {
    const result = await runOne(ROUTER, [
      'pipeline: router',
      'cases:',
      '  - name: routing',
      `    input: [ ${ev('o1', ', kind: big')}, ${ev('o2', ', kind: small')} ]`,
      '    expect:',
      '      sinks:',
      '        big: [ { kind: big, order: o1 } ]',
      '        audit: [ { kind: big, order: o1 }, { kind: small, order: o2 } ]',
      '  - name: filtered and dropped',
      `    input: [ { event: ignored, data: { orderId: o3 } }, { event: order-placed, data: {} } ]`,
      '    expect: { sinks: { big: [], audit: [] }, filtered: 1, dropped: 1 }',
      '  - name: decode errors are DLQ entries',
      '    input: [ "{bad" ]',
      '    expect: { dlq: [ { stage: decode, error: not valid JSON } ] }',
      '',
    ].join('\n'));
    expect(result.errors).toEqual([]);
    expect(result.cases).toEqual([
      { name: 'routing', passed: true, failures: [], seconds: expect.any(Number) },
      { name: 'filtered and dropped', passed: true, failures: [], seconds: expect.any(Number) },
      { name: 'decode errors are DLQ entries', passed: true, failures: [], seconds: expect.any(Number) },
    ]);
  });

  it('expect.sinks may name a sink by its type (SPEC §6: "<sink type or id>")', async () => {
    const result = await runOne(ROUTER, [
      'pipeline: router',
      'cases:',
      '  - name: by type',
      `    input: [ ${ev('o1', ', kind: big')} ]`,
      '    expect:',
      '      sinks:',
      '        publish: [ { kind: big, order: o1 } ]',
      '        log: [ { kind: big, order: o1 } ]',
      '',
    ].join('\n'));
    expect(result.errors.map(show)).toEqual([]);
    expect(result.cases).toEqual([{ name: 'by type', passed: true, failures: [], seconds: expect.any(Number) }]);
  });

  it('a failing case explains itself: a diff of the sink, counts, and the DLQ', async () => {
    const result = await runOne(SINGLE, [
      'pipeline: single',
      'cases:',
      '  - name: wrong',
      `    input: [ ${ev('o1')}, "{bad" ]`,
      '    expect: { sink: [ { order: o2 } ], filtered: 1 }',
      '',
    ].join('\n'));
    expect(result.cases).toHaveLength(1);
    const c = result.cases[0]!;
    expect(c.passed).toBe(false);
    expect(c.failures).toHaveLength(3);
    expect(c.failures[0]).toBe('sink log: what reached it differs (- expected, + actual)\n  [\n    {\n-     "order": "o2"\n+     "order": "o1"\n    }\n  ]');
    expect(c.failures[1]).toBe('filtered: expected 1, got 0');
    expect(c.failures[2]).toMatch(/^dlq: unexpected DLQ entries \(add expect\.dlq if they are meant\) \(- expected, \+ actual\)\n- \[\]\n\+ \[\n\+   \{\n\+     "stage": "decode",/);
  });

  it('a DLQ expectation that does not match says the DLQ differs', async () => {
    const result = await runOne(SINGLE, [
      'pipeline: single',
      'cases:',
      '  - name: wrong stage',
      '    input: [ "{bad" ]',
      '    expect: { sink: [], dlq: [ { stage: validate } ] }',
      '',
    ].join('\n'));
    expect(result.cases[0]!.passed).toBe(false);
    expect(result.cases[0]!.failures).toHaveLength(1);
    expect(result.cases[0]!.failures[0]).toMatch(/^dlq: the DLQ differs \(- expected, \+ actual\)\n/);
    expect(result.cases[0]!.failures[0]).toContain('-     "stage": "validate"');
    expect(result.cases[0]!.failures[0]).toContain('+     "stage": "decode",');
  });

  it('expect.sink on a pipeline with several sinks is an error at that key; no case runs', async () => {
    const result = await runOne(ROUTER, [
      'pipeline: router',
      'cases:',
      '  - name: ambiguous',
      `    input: [ ${ev('o1')} ]`,
      '    expect:',
      '      sink: []',
      '',
    ].join('\n'));
    expect(result.errors.map(show)).toEqual([
      "p.test.yaml:6:7 expect.sink is for a pipeline with one sink; 'router' has 2 (big, audit): use expect.sinks",
    ]);
    expect(result.cases).toEqual([{ name: 'ambiguous', passed: false, failures: ['not run: see the errors above'] }]);
  });

  it('a sink the pipeline does not have is an error at that key', async () => {
    const result = await runOne(ROUTER, [
      'pipeline: router',
      'cases:',
      '  - name: typo',
      `    input: [ ${ev('o1')} ]`,
      '    expect:',
      '      sinks: { audti: [] }',
      '',
    ].join('\n'));
    expect(result.errors.map(show)).toEqual(["p.test.yaml:6:16 pipeline 'router' has no sink 'audti' (sinks: big, audit)"]);
  });

  it('a test file whose pipeline is invalid reports the pipeline\'s errors', async () => {
    const result = await runOne('name: p\nsource: { stream: s }\nsink: { type: nope }\n', 'pipeline: p\ncases:\n  - { name: c, input: [], expect: {} }\n');
    expect(result.errors.map(show)).toEqual([`p.yaml:3:15 unknown sink type 'nope' (known: ${KNOWN_SINKS})`]);
    expect(result.cases.map((c) => c.passed)).toEqual([false]);
  });

  it('a test file naming no known pipeline points at its pipeline: value', async () => {
    const result = await runOne(SINGLE, 'pipeline: other\ncases:\n  - { name: c, input: [], expect: {} }\n');
    expect(result.errors).toHaveLength(1);
    expect(show(result.errors[0]!)).toMatch(/^p\.test\.yaml:1:11 no pipeline named 'other' in .* \(found: single\)$/);
  });
});

describe('loadTestFile', () => {
  const invalid: { name: string; yaml: string; error: string }[] = [
    { name: 'no cases', yaml: 'pipeline: p\n', error: "p.test.yaml:1:1 the file is missing required key 'cases'" },
    { name: 'an unknown key in expect', yaml: 'pipeline: p\ncases:\n  - name: c\n    input: []\n    expect: { snk: [] }\n', error: "p.test.yaml:5:15 unknown key 'snk' in 'cases.0.expect'" },
    { name: 'an unknown DLQ stage', yaml: 'pipeline: p\ncases:\n  - name: c\n    input: []\n    expect: { dlq: [ { stage: sinks } ] }\n', error: "p.test.yaml:5:31 'cases.0.expect.dlq.0.stage' must be one of: \"decode\", \"validate\", \"filter\", \"transform\", \"sink\"" },
  ];
  for (const c of invalid) {
    it(c.name, async () => {
      const dir = await dirs.make({ 'p.test.yaml': c.yaml });
      const err = await rejection(loadTestFile(join(dir, 'p.test.yaml')), TestFileInvalidError);
      expect(err.code).toBe('SYN_TEST_FILE_INVALID');
      expect(err.diagnostics).toHaveLength(1);
      expect(show(err.diagnostics[0]!)).toContain(c.error);
    });
  }
});

describe('expandTestFiles, renderDiff, formatTestResults', () => {
  it('expandTestFiles lists *.test.yaml/yml of directories, sorted, and keeps given files', async () => {
    const dir = await dirs.make({ 'b.test.yaml': '', 'a.test.yml': '', 'a.yaml': '', 'c.txt': '' });
    expect(await expandTestFiles([dir, join(dir, 'missing'), join(dir, 'a.yaml')])).toEqual([
      join(dir, 'a.test.yml'), join(dir, 'b.test.yaml'), join(dir, 'a.yaml'),
    ]);
  });

  it('renderDiff marks expected lines with - and actual lines with +, context with two spaces', () => {
    expect(renderDiff({ a: 1, b: 2 }, { a: 1, b: 3 }).split('\n')).toEqual([
      '  {',
      '    "a": 1,',
      '-   "b": 2',
      '+   "b": 3',
      '  }',
    ]);
  });

  it('formatTestResults counts cases, and a file that could not run counts as one failure', () => {
    const { text, passed, failed } = formatTestResults([
      { file: 'a.test.yaml', pipeline: 'a', errors: [], cases: [{ name: 'ok', passed: true, failures: [] }, { name: 'bad', passed: false, failures: ['why'] }] },
      { file: 'b.test.yaml', errors: [{ file: 'b.test.yaml', line: 2, col: 3, message: 'broken' }], cases: [] },
    ]);
    expect([passed, failed]).toEqual([1, 2]);
    expect(text.split('\n')).toEqual([
      'a.test.yaml (pipeline a)',
      '  ✓ ok',
      '  ✗ bad',
      '      why',
      'b.test.yaml',
      '  b.test.yaml:2:3 broken',
    ]);
  });
});
