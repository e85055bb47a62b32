/**
 * Engines in child processes under mutation testing (`npm run mutation`, StrykerJS).
 *
 * The delivery suites test the engine as users run it: the `synapse` command in a child process.
 * That command runs dist/, which Stryker does not mutate, and a child's code is invisible to
 * Stryker's per-test coverage: without help, no mutant could be killed by those suites. Under
 * Stryker (its namespace is on globalThis in the test worker) a child therefore runs the mutated
 * sources through tsx, with the active mutant in `__STRYKER_ACTIVE_MUTANT__` (which Stryker's
 * instrumented code reads); and in Stryker's first run, which measures coverage, the child reports
 * the mutants its code reaches (tests/helpers/mutation-child.mjs) and they are counted against
 * the test running at that moment (or as static coverage between tests). Outside Stryker nothing
 * changes: the child runs the `synapse` bin.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach } from 'vitest';
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

/** A child whose coverage is read: its file and the counts already counted. */
interface Tracked {
  file: string;
  seen: Record<string, number>;
}
const tracked = new Set<Tracked>();
let coverageDir: string | undefined;

/** Counts what each tracked child reached since the last read against the running test. */
function collect(child: Tracked): void {
  let counts: Record<string, number>;
  try {
    counts = JSON.parse(readFileSync(child.file, 'utf8')) as Record<string, number>;
  } catch {
    return; // not written yet, or being replaced
  }
  const coverage = (stryker!.mutantCoverage ??= { static: {}, perTest: {} });
  const into = stryker!.currentTestId ? (coverage.perTest[stryker!.currentTestId] ??= {}) : coverage.static;
  for (const [id, count] of Object.entries(counts)) {
    const delta = count - (child.seen[id] ?? 0);
    if (delta > 0) into[id] = (into[id] ?? 0) + delta;
  }
  child.seen = counts;
}

if (stryker) {
  // Before Stryker's own afterEach forgets which test ran (hooks after a test run last-in first-out).
  afterEach(() => tracked.forEach(collect));
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
  const entry: Tracked = { file: join(coverageDir, `${tracked.size}-${Date.now()}-${Math.random().toString(36).slice(2)}.json`), seen: {} };
  return {
    prefix,
    env: { SYNAPSE_MUTATION_COVERAGE_FILE: entry.file },
    started(child) {
      tracked.add(entry);
      const poll = setInterval(() => collect(entry), 100);
      poll.unref();
      child.once('exit', () => {
        clearInterval(poll);
        collect(entry);
        tracked.delete(entry);
        rmSync(entry.file, { force: true });
      });
    },
  };
}
