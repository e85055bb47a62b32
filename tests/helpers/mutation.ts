/**
 * Engines in child processes under mutation testing (`npm run mutation`, StrykerJS).
 *
 * The delivery suites test the engine as users run it: the `synapse` command in a child process.
 * That command runs dist/, which Stryker does not mutate, and a child's code is invisible to
 * Stryker's per-test coverage: without help, no mutant could be killed by those suites. Under
 * Stryker (its namespace is on globalThis in the test worker) a child therefore runs the mutated
 * sources through tsx, with the active mutant in `__STRYKER_ACTIVE_MUTANT__` (which Stryker's
 * instrumented code reads). In Stryker's first run, which measures coverage, the child also writes
 * the mutants its code has reached to a file (tests/helpers/mutation-child.mjs), and this helper
 * counts them:
 * - at the start of each test (beforeEach), it asks every running child to write now (SIGUSR2,
 *   with a request number the child echoes, waiting at most FLUSH_MS) and counts what they reached
 *   until then as static coverage: a child started in beforeAll and shared by the file's tests,
 *   or what a previous test's children did after it ended;
 * - at the end of each test (afterEach, which runs after the test file's own after-hooks, so
 *   engines stopped or killed there are included), it asks again and counts everything since
 *   against that test; an engine SIGKILLed through the helpers (`stop('SIGKILL')`,
 *   `killEngines()`) is asked before the kill, and one that exits writes its counts at exit;
 * - in between, every 100 ms, it counts what the child's periodic write shows (against the test
 *   running, or as static coverage between tests).
 * The test the hits count against is the one current at the start-of-test read, kept here until
 * its end-of-test read, so the order of Stryker's own hooks (which set and clear
 * `currentTestId`) does not matter. Outside Stryker nothing changes: the child runs the `synapse`
 * bin, with no preload and no signal; in Stryker's mutant runs the child is not read at all.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach } from 'vitest';
import { REPO_ROOT } from './pipelines.ts';

/** Stryker's global namespace in a test worker (what its instrumented code and vitest setup use). */
interface StrykerNamespace {
  activeMutant?: string;
  currentTestId?: string;
  mutantCoverage?: { static: Record<string, number>; perTest: Record<string, Record<string, number>> };
}

const stryker = (globalThis as { __stryker__?: StrykerNamespace }).__stryker__;

/** The `synapse` bin, run by the current node. */
export const SYNAPSE_BIN = join(REPO_ROOT, 'bin', 'synapse.mjs');

/** A child whose coverage is read: its file, the counts already counted, the last flush asked for. */
interface Tracked {
  child: ChildProcess;
  file: string;
  seen: Record<string, number>;
  requested: number;
  exited: boolean;
}
const tracked = new Map<ChildProcess, Tracked>();
let coverageDir: string | undefined;
/** The test that hits count against: set once the counts from before it are read, cleared once its own are. */
let testId: string | undefined;
/** How long a flush waits for a child's answer (a busy child answers late; then the poll catches up). */
const FLUSH_MS = 2_000;

/** A child's last write, or undefined before its first (or while it is being replaced). */
function read(entry: Tracked): { ack: number; counts: Record<string, number> } | undefined {
  try {
    return JSON.parse(readFileSync(entry.file, 'utf8')) as { ack: number; counts: Record<string, number> };
  } catch {
    return undefined;
  }
}

/** Counts what a tracked child reached since the last read: against the running test, or as static coverage. */
function collect(entry: Tracked, asStatic = false): void {
  const counts = read(entry)?.counts;
  if (!counts) return;
  const coverage = (stryker!.mutantCoverage ??= { static: {}, perTest: {} });
  const into = testId && !asStatic ? (coverage.perTest[testId] ??= {}) : coverage.static;
  for (const [id, count] of Object.entries(counts)) {
    const delta = count - (entry.seen[id] ?? 0);
    if (delta > 0) into[id] = (into[id] ?? 0) + delta;
  }
  entry.seen = counts;
}

/**
 * Asks a child to write its counts now (SIGUSR2, answered with the request number) and waits, at
 * most FLUSH_MS, for the answer: then its file holds every hit it made before this call.
 */
async function flush(entry: Tracked): Promise<void> {
  // No file yet: its SIGUSR2 handler is not in place (the signal would kill it), and it has reached nothing.
  if (entry.exited || !read(entry)) return;
  const request = ++entry.requested;
  writeFileSync(`${entry.file}.req`, String(request));
  try {
    entry.child.kill('SIGUSR2');
  } catch {
    return;
  }
  const deadline = Date.now() + FLUSH_MS;
  while (!entry.exited && Date.now() < deadline && (read(entry)?.ack ?? 0) < request) {
    await new Promise((resolveWait) => setTimeout(resolveWait, 5));
  }
}

/** Flushes every tracked child and counts what each reached (as static coverage with `asStatic`). */
async function flushAll(asStatic = false): Promise<void> {
  const entries = [...tracked.values()];
  await Promise.all(entries.map(flush));
  for (const entry of entries) if (!entry.exited) collect(entry, asStatic);
}

/**
 * Under Stryker's coverage run, a promise to await before SIGKILLing `child` (which could not write
 * its last hits): its counts, read now. Undefined otherwise: the caller kills at once, as before.
 */
export function flushBeforeKill(child: ChildProcess): Promise<void> | undefined {
  const entry = tracked.get(child);
  if (!entry) return undefined;
  return flush(entry).then(() => {
    if (!entry.exited) collect(entry);
  });
}

if (stryker) {
  // Each test's hits are its own, whatever the order of Stryker's hooks (which set and clear
  // `currentTestId`) and these: what children reached before the test (a child started in
  // beforeAll and shared, a previous test's stragglers) is static coverage; what they reached
  // from here to the end of the test's after-hooks (which run before this afterEach, last in
  // first out: engines stopped or SIGKILLed there count too) is the test's.
  beforeEach(async () => {
    await flushAll(true);
    testId = stryker.currentTestId;
  });
  afterEach(async () => {
    await flushAll();
    testId = undefined;
  });
}

/**
 * How to start the `synapse` command in a child process: the arguments before the command's own,
 * the environment to add, and `started(child)` to call once it is spawned.
 */
export function synapseCommand(): { prefix: string[]; env: Record<string, string>; started(child: ChildProcess): void } {
  if (!stryker) return { prefix: [SYNAPSE_BIN], env: {}, started: () => {} };
  const prefix = ['--import', pathToFileURL(join(REPO_ROOT, 'tests/helpers/mutation-child.mjs')).href,
    join(REPO_ROOT, 'bin/run-ts.mjs'), join(REPO_ROOT, 'tests/helpers/mutation-cli.ts')];
  if (stryker.activeMutant !== undefined) {
    return { prefix, env: { __STRYKER_ACTIVE_MUTANT__: String(stryker.activeMutant) }, started: () => {} };
  }
  coverageDir ??= mkdtempSync(join(tmpdir(), 'synapse-mutation-coverage-'));
  const file = join(coverageDir, `${tracked.size}-${Date.now()}-${Math.random().toString(36).slice(2)}.json`);
  return {
    prefix,
    env: { SYNAPSE_MUTATION_COVERAGE_FILE: file },
    started(child) {
      const entry: Tracked = { child, file, seen: {}, requested: 0, exited: false };
      tracked.set(child, entry);
      // Between flushes (a test that runs long, a child SIGKILLed by the test itself).
      const poll = setInterval(() => collect(entry), 100);
      poll.unref();
      child.once('exit', () => {
        clearInterval(poll);
        // Its last write, at exit (none after a SIGKILL: flushBeforeKill reads it before).
        collect(entry);
        entry.exited = true;
        tracked.delete(child);
        for (const path of [file, `${file}.req`, `${file}.tmp`]) rmSync(path, { force: true });
      });
    },
  };
}

