import { basename, dirname, resolve } from 'node:path';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ValidateFunction } from 'ajv';
import { diffLines } from 'diff';
import { ajvDiagnostics } from '../config/ajv-diagnostics.ts';
import { loadPipelines, type CompiledPipeline, type LoadContext, type LoadedPipelines } from '../config/load-pipeline.ts';
import { SourceDocument } from '../config/source-document.ts';
import { ConfigInvalidError, TestFileInvalidError, displayPath, formatDiagnostic, type Diagnostic } from '../errors.ts';
import type { CoverageCollector, CoveredPipeline } from './coverage.ts';
import { dryRun } from './dry-run.ts';
import { testFileSchema } from './test-file-schema.ts';

// validateSchema off: the schema is a constant of this repository, not the user's.
const validateTestFile: ValidateFunction = new Ajv2020({ allErrors: true, strict: false, validateSchema: false }).compile(testFileSchema);

interface DlqExpectation { stage?: string; error?: string; sink?: string }
interface CaseSpec {
  name: string;
  input: unknown[];
  expect: { sink?: unknown[]; sinks?: Record<string, unknown[]>; filtered?: number; dropped?: number; dlq?: DlqExpectation[] };
}
interface TestFileSpec { pipeline: string; cases: CaseSpec[] }

/** The result of one case. */
export interface CaseResult {
  name: string;
  passed: boolean;
  /** Human-readable reasons, diffs included, when it failed. */
  failures: string[];
  /** How long it ran (0 for a case that did not run). */
  seconds?: number;
}

/** The result of one test file. */
export interface TestFileResult {
  file: string;
  pipeline?: string;
  cases: CaseResult[];
  /** Problems that stopped the file from running (its cases count as failed). */
  errors: Diagnostic[];
}

/** Whether a file name is a pipeline test file. */
export function isTestFile(name: string): boolean {
  return /\.test\.ya?ml$/.test(name);
}

/** Test files under the given files and directories (not recursive), sorted. */
export async function expandTestFiles(paths: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    try {
      out.push(...(await readdir(p)).filter(isTestFile).sort().map((n) => join(p, n)));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTDIR') out.push(p);
      else if (code !== 'ENOENT') throw err;
    }
  }
  return out;
}

/** Parses and checks a test file's shape; throws TestFileInvalidError. */
export async function loadTestFile(file: string): Promise<{ doc: SourceDocument; spec: TestFileSpec }> {
  let doc: SourceDocument;
  try {
    doc = await SourceDocument.read(file);
  } catch (err) {
    if (err instanceof ConfigInvalidError) throw new TestFileInvalidError(err.diagnostics);
    throw err;
  }
  if (!validateTestFile(doc.value)) throw new TestFileInvalidError(ajvDiagnostics(validateTestFile.errors ?? [], doc));
  return { doc, spec: doc.value as TestFileSpec };
}

/**
 * Runs test files: each names a pipeline found in the test file's own directory, and each case's
 * input is fed through the real compiled pipeline (no Redis). Pipelines are loaded once per directory.
 * With `coverage`, cases run through a probed copy of their pipeline that records what they reach.
 */
export async function runTestFiles(files: string[], ctx: LoadContext, opts: { coverage?: CoverageCollector } = {}): Promise<TestFileResult[]> {
  const dirs = new Map<string, LoadedPipelines>();
  const results: TestFileResult[] = [];
  for (const file of files) {
    const dir = resolve(dirname(file));
    let loaded = dirs.get(dir);
    if (!loaded) {
      loaded = await loadPipelines([dir], ctx);
      dirs.set(dir, loaded);
    }
    results.push(await runTestFile(file, loaded, opts.coverage));
  }
  return results;
}

async function runTestFile(file: string, loaded: LoadedPipelines, coverage?: CoverageCollector): Promise<TestFileResult> {
  let doc: SourceDocument;
  let spec: TestFileSpec;
  try {
    ({ doc, spec } = await loadTestFile(file));
  } catch (err) {
    if (err instanceof ConfigInvalidError) return { file, cases: [], errors: err.diagnostics };
    throw err;
  }
  const failAll = (errors: Diagnostic[]): TestFileResult => ({
    file, pipeline: spec.pipeline, errors,
    cases: spec.cases.map((c) => ({ name: c.name, passed: false, failures: ['not run: see the errors above'] })),
  });
  const pipeline = loaded.pipelines.find((p) => p.name === spec.pipeline);
  if (!pipeline) {
    const rejected = [...loaded.rejected.values()].flat().filter((d) => basename(d.file).replace(/\.ya?ml$/, '') === spec.pipeline);
    if (rejected.length) return failAll(rejected);
    const names = loaded.pipelines.map((p) => p.name).join(', ') || 'none';
    return failAll([{ ...doc.locate(['pipeline']), message: `no pipeline named '${spec.pipeline}' in ${dirname(file)} (found: ${names})` }]);
  }
  const shapeErrors = checkExpectations(doc, spec, pipeline);
  if (shapeErrors.length) return failAll(shapeErrors);
  const cases: CaseResult[] = [];
  const covered = coverage?.cover(pipeline);
  for (const c of spec.cases) {
    const started = performance.now();
    cases.push({ ...(await runCase(c, pipeline, covered)), seconds: (performance.now() - started) / 1000 });
  }
  return { file, pipeline: spec.pipeline, cases, errors: [] };
}

/**
 * The sink an `expect.sinks` key names (SPEC §6: a sink id, or a type when exactly one sink has
 * that type), or why it names none.
 */
function sinkForKey(pipeline: CompiledPipeline, key: string): { id: string } | { problem: string } {
  if (pipeline.sinks.some((s) => s.id === key)) return { id: key };
  const ofType = pipeline.sinks.filter((s) => s.type === key);
  if (ofType.length === 1) return { id: ofType[0]!.id };
  const ids = pipeline.sinks.map((s) => s.id).join(', ');
  if (ofType.length > 1) return { problem: `pipeline '${pipeline.name}' has ${ofType.length} sinks of type '${key}'; name one by id (${ofType.map((s) => s.id).join(', ')})` };
  return { problem: `pipeline '${pipeline.name}' has no sink '${key}' (sinks: ${ids})` };
}

/** Expectations that name sinks the pipeline does not have are errors in the test file. */
function checkExpectations(doc: SourceDocument, spec: TestFileSpec, pipeline: CompiledPipeline): Diagnostic[] {
  const out: Diagnostic[] = [];
  const ids = pipeline.sinks.map((s) => s.id);
  spec.cases.forEach((c, i) => {
    if (c.expect.sink && pipeline.sinks.length !== 1) {
      out.push({ ...doc.locate(['cases', i, 'expect', 'sink'], { key: true }), message: `expect.sink is for a pipeline with one sink; '${pipeline.name}' has ${ids.length} (${ids.join(', ')}): use expect.sinks` });
    }
    for (const key of Object.keys(c.expect.sinks ?? {})) {
      const found = sinkForKey(pipeline, key);
      if ('problem' in found) out.push({ ...doc.locate(['cases', i, 'expect', 'sinks', key], { key: true }), message: found.problem });
    }
  });
  return out;
}

async function runCase(c: CaseSpec, pipeline: CompiledPipeline, covered?: CoveredPipeline): Promise<CaseResult> {
  const { outcomes, sunk } = await dryRun(covered ? covered.pipeline : pipeline, c.input);
  covered?.record(outcomes);
  const failures: string[] = [];
  const expectedSinks: Record<string, unknown[]> = {};
  for (const [key, list] of Object.entries(c.expect.sinks ?? {})) {
    const found = sinkForKey(pipeline, key);
    if ('id' in found) expectedSinks[found.id] = list;
  }
  if (c.expect.sink) expectedSinks[pipeline.sinks[0]!.id] = c.expect.sink;
  for (const [id, expected] of Object.entries(expectedSinks)) {
    const actual = sunk[id] ?? [];
    if (!isDeepStrictEqual(plain(actual), plain(expected))) {
      failures.push(`sink ${id}: what reached it differs (- expected, + actual)\n${renderDiff(expected, actual)}`);
    }
  }
  const count = (kind: string) => outcomes.filter((o) => o.kind === kind).length;
  if (c.expect.filtered !== undefined && count('filtered') !== c.expect.filtered) {
    failures.push(`filtered: expected ${c.expect.filtered}, got ${count('filtered')}`);
  }
  if (c.expect.dropped !== undefined && count('dropped') !== c.expect.dropped) {
    failures.push(`dropped: expected ${c.expect.dropped}, got ${count('dropped')}`);
  }
  const dlq = outcomes.flatMap((o) => (o.kind === 'dlq' ? [{ stage: o.stage, error: o.error, ...(o.sink ? { sink: o.sink } : {}) }] : []));
  const expectedDlq = c.expect.dlq ?? [];
  const dlqMatches = dlq.length === expectedDlq.length && expectedDlq.every((e, i) => matchesDlq(e, dlq[i]!));
  if (!dlqMatches) {
    const why = c.expect.dlq ? 'the DLQ differs' : 'unexpected DLQ entries (add expect.dlq if they are meant)';
    failures.push(`dlq: ${why} (- expected, + actual)\n${renderDiff(expectedDlq, dlq)}`);
  }
  return { name: c.name, passed: failures.length === 0, failures };
}

function matchesDlq(expected: DlqExpectation, actual: { stage: string; error: string; sink?: string }): boolean {
  if (expected.stage !== undefined && expected.stage !== actual.stage) return false;
  if (expected.sink !== undefined && expected.sink !== actual.sink) return false;
  if (expected.error !== undefined && !actual.error.includes(expected.error)) return false;
  return true;
}

/** Values as JSON would carry them, so a YAML `1` and a computed `1` compare alike. */
function plain(v: unknown): unknown {
  return v === undefined ? undefined : JSON.parse(JSON.stringify(v));
}

/** A line diff of two values as indented JSON, `-` for expected and `+` for actual. */
export function renderDiff(expected: unknown, actual: unknown): string {
  const a = JSON.stringify(expected, null, 2) ?? 'undefined';
  const b = JSON.stringify(actual, null, 2) ?? 'undefined';
  const lines: string[] = [];
  for (const part of diffLines(a + '\n', b + '\n')) {
    const prefix = part.added ? '+ ' : part.removed ? '- ' : '  ';
    for (const line of part.value.replace(/\n$/, '').split('\n')) lines.push(prefix + line);
  }
  return lines.join('\n');
}

/** Prints results the way `synapse test` shows them; returns the pass/fail counts. */
export function formatTestResults(results: TestFileResult[]): { text: string; passed: number; failed: number } {
  const out: string[] = [];
  let passed = 0;
  let failed = 0;
  for (const r of results) {
    out.push(`${displayPath(r.file)}${r.pipeline ? ` (pipeline ${r.pipeline})` : ''}`);
    for (const d of r.errors) out.push(`  ${formatDiagnostic(d)}`);
    if (r.errors.length && r.cases.length === 0) failed++;
    for (const c of r.cases) {
      if (c.passed) passed++;
      else failed++;
      out.push(`  ${c.passed ? '✓' : '✗'} ${c.name}`);
      if (!c.passed) for (const f of c.failures) out.push(f.split('\n').map((l) => `      ${l}`).join('\n'));
    }
  }
  return { text: out.join('\n'), passed, failed };
}
