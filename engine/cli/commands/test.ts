import { randomInt } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { mkdir, open, stat, type FileHandle } from 'node:fs/promises';
import { errorMessage } from '../../errors.ts';
import { expandTestFiles, formatTestResults, loadTestFile, runTestFiles } from '../../testing/run-test-file.ts';
import { formatFuzzResults, fuzzPipelines } from '../../check/fuzz-command.ts';
import { loadContext, pipelinesDir, type CommonOptions } from '../context.ts';
import { loadPipelines } from '../../config/load-pipeline.ts';
import { CoverageCollector, formatCoverage } from '../../testing/coverage.ts';
import { junitReport } from '../../testing/junit.ts';

/** Options of `synapse test`. */
export interface TestOptions extends CommonOptions {
  /** Also feed this many schema-generated valid events through each pipeline (`--fuzz N`). */
  fuzz?: string | number;
  /** The fuzz seed, to replay a run (default: a random one, printed). */
  seed?: string | number;
  /** Report which outcomes and expression branches the test cases reach (`--coverage`). */
  coverage?: boolean;
  /** Also write the results as JUnit XML to this file (`--junit FILE`); its directory is created. */
  junit?: string;
}

/**
 * `synapse test [PATH...]`: runs pipeline test files, and with `--fuzz N` also fuzzes each
 * pipeline from its input schema, and with `--coverage` says what the cases reached, and with
 * `--junit FILE` writes the results as JUnit XML too; last line `N passed, N failed`.
 */
export async function testCommand(paths: string[], opts: TestOptions): Promise<number> {
  const targets = paths.length ? paths.map((p) => resolve(p)) : [pipelinesDir()];
  const fuzz = opts.fuzz === undefined ? undefined : Number(opts.fuzz);
  if (fuzz !== undefined && (!Number.isInteger(fuzz) || fuzz < 1)) {
    process.stderr.write(`--fuzz takes a number of events (a positive integer), not '${opts.fuzz}'\n`);
    return 2;
  }
  const seed = opts.seed === undefined ? randomInt(2 ** 31) : Number(opts.seed);
  if (!Number.isInteger(seed)) {
    process.stderr.write(`--seed takes an integer, not '${opts.seed}'\n`);
    return 2;
  }
  // The report's file is opened before anything runs: a path that cannot be written must not
  // cost a whole run (and a report from an earlier run must not stand in for this one).
  let report: FileHandle | undefined;
  if (opts.junit !== undefined) {
    const file = resolve(opts.junit);
    try {
      if (!opts.junit.trim()) throw new Error('no file named');
      await mkdir(dirname(file), { recursive: true });
      report = await open(file, 'w');
    } catch (err) {
      process.stderr.write(`--junit: cannot write the report to '${opts.junit}': ${errorMessage(err)}\n`);
      return 2;
    }
  }
  try {
    return await runTests(targets, opts, { fuzz, seed, report });
  } finally {
    await report?.close();
  }
}

async function runTests(targets: string[], opts: TestOptions, run: { fuzz?: number; seed: number; report?: FileHandle }): Promise<number> {
  const { fuzz, seed, report } = run;
  const files = await expandTestFiles(targets);
  if (files.length === 0 && fuzz === undefined) {
    process.stdout.write(`no test files (*.test.yaml) in ${targets.join(', ')}\n0 passed, 0 failed\n`);
    if (report && !(await writeReport(report, opts.junit!, junitReport([])))) return 2;
    return 1;
  }
  const ctx = await loadContext(opts);
  const coverage = opts.coverage ? new CoverageCollector() : undefined;
  const results = await runTestFiles(files, ctx, { coverage });
  const { text, passed, failed } = formatTestResults(results);
  const out = [text];
  if (coverage) {
    // A directory's pipelines without a test file are listed too: nothing of theirs is reached.
    for (const t of await fuzzTargets(targets)) {
      if (t.only !== undefined || t.file !== undefined) continue;
      for (const p of (await loadPipelines([t.dir], ctx)).pipelines) coverage.cover(p);
    }
    out.push(formatCoverage(coverage.results()));
  }
  let fuzzPassed = 0;
  let fuzzFailed = 0;
  let fuzzed: Awaited<ReturnType<typeof fuzzPipelines>> | undefined;
  if (fuzz !== undefined) {
    fuzzed = await fuzzPipelines(await fuzzTargets(targets), ctx, { runs: fuzz, seed });
    const formatted = formatFuzzResults(fuzzed, { runs: fuzz, seed });
    out.push(formatted.text);
    fuzzPassed = formatted.passed;
    fuzzFailed = formatted.failed;
  }
  const total = { passed: passed + fuzzPassed, failed: failed + fuzzFailed };
  process.stdout.write(`${out.filter(Boolean).join('\n\n')}\n\n${total.passed} passed, ${total.failed} failed\n`);
  if (report && !(await writeReport(report, opts.junit!, junitReport(results, fuzzed && { results: fuzzed, runs: fuzz!, seed })))) return 2;
  return total.failed > 0 ? 1 : 0;
}

/** Writes the JUnit report; a failure (a full disk) is one line on stderr, and the run exits 2. */
async function writeReport(report: FileHandle, name: string, xml: string): Promise<boolean> {
  try {
    await report.writeFile(xml);
    return true;
  } catch (err) {
    process.stderr.write(`--junit: cannot write the report to '${name}': ${errorMessage(err)}\n`);
    return false;
  }
}

/**
 * What `--fuzz` covers: every pipeline of a directory given, and the pipeline a given test file
 * names (or a given pipeline file).
 */
async function fuzzTargets(targets: string[]): Promise<{ dir: string; only?: string; file?: string }[]> {
  const out: { dir: string; only?: string; file?: string }[] = [];
  for (const target of targets) {
    let isDir = false;
    try {
      isDir = (await stat(target)).isDirectory();
    } catch {
      continue;
    }
    if (isDir) out.push({ dir: target });
    else if (/\.test\.ya?ml$/.test(target)) {
      try {
        out.push({ dir: dirname(target), only: (await loadTestFile(target)).spec.pipeline });
      } catch {
        // An invalid test file is reported by the test run itself.
      }
    } else out.push({ dir: dirname(target), file: target });
  }
  return out;
}
