// Mutation testing of the delivery code: `npm run mutation`.
//
// The files of engine/runtime/ and engine/runner/ are cut into units: runs of whole top-level
// statements and class members, about UNIT_LINES lines each, so that no mutant straddles two
// units (Stryker keeps a mutant only when the range holds all of it). Each unit's result is
// committed in mutation/<file>@<first>-<last>.json beside the hash of the lines it mutated.
// A unit whose recorded hash matches its lines is skipped, so a run that was interrupted (the whole
// of it takes many hours: every mutant runs the tests that cover it, real Redis included) resumes
// where it stopped, losing at most the run in progress, and a change re-runs only the units it
// touched (and those it moved). Pending units are run RUN_LINES lines at a time, one StrykerJS run each
// (stryker.config.mjs): every run starts with a test run of its own that takes minutes.
//
//   npm run mutation                                every unit not yet run on its current source
//   npm run mutation -- engine/runtime/settle.ts    the units of those files (always re-run)
//   npm run mutation -- engine/runtime/settle.ts:84-131   that unit (as --plan names it)
//   npm run mutation -- --report                    only print the scores
//   npm run mutation -- --plan                      only print the units still to run
//   npm run mutation -- --survivors                 print every surviving mutant of the results
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import ts from 'typescript';

const FOLDERS = ['engine/runtime', 'engine/runner'];
const RESULTS = 'mutation';
const UNIT_LINES = 60;
// A run starts with a test run of its own (about four minutes): fewer, longer runs waste less of
// it, while an interrupted run loses more. 300 lines take from 20 minutes (dlq.ts) to well over an
// hour (stream-consumer.ts: each of its mutants meets most of the delivery suites).
const RUN_LINES = 300;
const REPORT = 'reports/mutation/mutation.json';

const args = process.argv.slice(2);
const named = args.filter((arg) => !arg.startsWith('--'));
const all = FOLDERS.flatMap((folder) =>
  readdirSync(folder)
    .filter((name) => name.endsWith('.ts') && !name.endsWith('.d.ts'))
    .map((name) => join(folder, name)),
).sort();
// The delivery code first: an interrupted run has scored what matters most.
const FIRST = ['settle', 'backoff', 'stream-consumer', 'dlq', 'pipeline-runner', 'stream-reader', 'codec'];
const rank = (source) => {
  const at = FIRST.indexOf(basename(source, '.ts'));
  return at === -1 ? FIRST.length : at;
};

/**
 * Suites that test a file beyond the delivery suites every run has (vitest.mutation.config.ts):
 * a run of its units adds them (SYNAPSE_MUTATION_SUITES), so each file meets the tests written
 * for it without every run paying for every suite in its first, coverage-measuring test run.
 */
const SUITES = {
  'engine/runtime/dlq.ts': ['tests/integration/admin/dlq.test.ts', 'tests/integration/security/redrive.test.ts'],
  // An event's path through the stages (STAGES, traceOutcome), as GET /tap streams it.
  'engine/runner/pipeline-runner.ts': ['tests/integration/admin/tap.test.ts'],
  'engine/runner/trace.ts': ['tests/integration/admin/tap.test.ts'],
  // The per-pipeline metrics a consumer sets (synapse_pipeline_up, the outcome counters), its
  // housekeeping gauges, keeping its entries claimed, and its stops.
  'engine/runtime/stream-consumer.ts': ['tests/integration/admin/metrics.test.ts', 'tests/integration/housekeeping.test.ts',
    'tests/integration/claims.test.ts', 'tests/integration/stop-cut.test.ts', 'tests/integration/stop-reload.test.ts',
    'tests/integration/stop-paused.test.ts'],
  'engine/runtime/dlq-log.ts': ['tests/integration/operating/engine-log.test.ts'],
  // What a reload says it was for (`cause`), as the engine logs it.
  'engine/runtime/config-watcher.ts': ['tests/integration/operating/engine-log.test.ts'],
  'engine/runtime/lua-script.ts': ['tests/integration/lua-script.test.ts'],
  // A read cut short by a stop; what a payload becomes on its way in and out (`__proto__` keys).
  'engine/runtime/stream-reader.ts': ['tests/integration/stop-cut.test.ts', 'tests/integration/housekeeping.test.ts'],
  // (Alone: see ALONE.) Decoding, its refusals, what the DLQ keeps of an entry.
  'engine/runner/codec.ts': ['tests/unit/runner/codec.test.ts', 'tests/unit/producers-contract.test.ts',
    'tests/integration/security/proto-keys.test.ts', 'tests/integration/security/binary-payloads.test.ts'],
  // Every sink plugin against the context a pipeline hands it.
  'engine/runtime/sink-context.ts': ['tests/integration/plugins/conformance.test.ts', 'tests/integration/sink-context.test.ts'],
  // Its start (logs, connections, groups, schedules), counters and state gauges, schedule ticks,
  // replays through a pipeline.
  'engine/runtime/engine.ts': ['tests/integration/operating/engine-log.test.ts', 'tests/integration/hot-reload/reload-scope.test.ts',
    'tests/integration/admin/metrics.test.ts', 'tests/integration/engine-start.test.ts', 'tests/integration/admin/pipelines.test.ts',
    'tests/integration/plugins/schedule.test.ts', 'tests/integration/admin/replay.test.ts'],
  'engine/runtime/redis-server.ts': ['tests/integration/managed-redis.test.ts', 'tests/integration/redis-server.test.ts'],
  // Telling a cluster node from a single server, connection options, outage logs; on a cluster.
  'engine/runtime/redis-client.ts': ['tests/integration/redis-client.test.ts', 'tests/integration/cluster/runtime.test.ts'],
  // What a reload refuses, answers and logs; a stop that waits for the reloads in flight.
  'engine/runtime/reloader.ts': ['tests/integration/hot-reload/reload-scope.test.ts', 'tests/integration/admin/pipeline-files.test.ts',
    'tests/integration/hot-reload/reload-rules.test.ts', 'tests/integration/stop-reload.test.ts', 'tests/integration/plugins/schedule.test.ts'],
  // Its routes, and Ctrl-C of `synapse replay` (here and through the engine).
  'engine/runtime/replay.ts': ['tests/integration/admin/replay.test.ts', 'tests/integration/operating/replay-cli.test.ts'],
  'engine/runtime/retention.ts': ['tests/integration/retention.test.ts'],
  'engine/runtime/service-registry.ts': ['tests/integration/admin/services.test.ts'],
};

/**
 * Files every test reaches (each event is decoded): run with all the suites, each of their mutants
 * would meet nearly all of them, hours for one file. Their runs meet only the suites SUITES names
 * for them (SYNAPSE_MUTATION_ONLY), written to reach every branch; a survivor there might still be
 * killed by a suite left out, so their score is a lower bound.
 */
const ALONE = new Set(['engine/runner/codec.ts']);

/**
 * The sha256 of a unit's own lines. A change elsewhere in its file leaves its result current, as a
 * change in another file always did; a change that moves its lines makes it another unit.
 */
const unitHash = (unit) =>
  createHash('sha256').update(readFileSync(unit.source, 'utf8').split('\n').slice(unit.first - 1, unit.last).join('\n')).digest('hex');

/** [first, last] line ranges (1-based) of whole top-level statements and class members. */
function unitsOf(source) {
  const file = ts.createSourceFile(source, readFileSync(source, 'utf8'), ts.ScriptTarget.Latest, true);
  const line = (pos) => file.getLineAndCharacterOfPosition(pos).line + 1;
  const items = [];
  for (const statement of file.statements) {
    if (ts.isClassDeclaration(statement) && statement.members.length > 0) {
      for (const member of statement.members) items.push([line(member.getStart()), line(member.getEnd())]);
    } else {
      items.push([line(statement.getStart()), line(statement.getEnd())]);
    }
  }
  const units = [];
  for (const [first, last] of items) {
    const open = units.at(-1);
    // Two items on one line (or a unit still short) share a unit.
    if (open && (first <= open[1] || last - open[0] < UNIT_LINES)) open[1] = Math.max(open[1], last);
    else units.push([first, last]);
  }
  return units.map(([first, last]) => ({ source, first, last }));
}

const unitName = (unit) => `${unit.source.replaceAll('/', '__')}@${unit.first}-${unit.last}`;
const resultFile = (unit) => join(RESULTS, `${unitName(unit)}.json`);
const hashFile = (unit) => `${resultFile(unit)}.sha256`;
const upToDate = (unit) =>
  existsSync(resultFile(unit)) && existsSync(hashFile(unit)) &&
  readFileSync(hashFile(unit), 'utf8').trim() === unitHash(unit);

/** Stored results of a file, its current units first; results of other cuts are stale. */
function resultsOf(source) {
  const prefix = `${source.replaceAll('/', '__')}@`;
  if (!existsSync(RESULTS)) return [];
  return readdirSync(RESULTS).filter((name) => name.startsWith(prefix) && name.endsWith('.json'));
}

/** The pending units, grouped into runs of about RUN_LINES lines. */
function plan() {
  const units = all.flatMap(unitsOf);
  const pending = named.length > 0
    ? units.filter((unit) => named.includes(unit.source) || named.includes(`${unit.source}:${unit.first}-${unit.last}`))
    : units.filter((unit) => !upToDate(unit)).sort((a, b) => rank(a.source) - rank(b.source));
  const runs = [];
  for (const unit of pending) {
    const open = runs.at(-1);
    const lines = unit.last - unit.first + 1;
    const same = open && String(SUITES[open.units[0].source] ?? '') === String(SUITES[unit.source] ?? '');
    if (open && same && open.lines + lines <= RUN_LINES) {
      open.units.push(unit);
      open.lines += lines;
    } else runs.push({ units: [unit], lines });
  }
  return { pending, runs };
}

if (args.includes('--plan')) {
  const { pending, runs } = plan();
  for (const run of runs) console.log(run.units.map((unit) => `${unit.source}:${unit.first}-${unit.last}`).join(' '));
  console.log(`${pending.length} units in ${runs.length} runs`);
  process.exit(0);
}

if (!(args.includes('--report') || args.includes('--survivors'))) {
  mkdirSync(RESULTS, { recursive: true });
  // The tests that start the `synapse` command run dist/ (unmutated): it must match the sources.
  spawnSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
  // Planned again after every run: the sources may change while a run goes on (a run records
  // the hash of the lines it mutated, so a change makes its result stale, and it runs again).
  const namedRuns = named.length > 0 ? plan().runs : undefined;
  for (let index = 0; ; index += 1) {
    const run = namedRuns ? namedRuns[index] : plan().runs[0];
    if (!run) break;
    const ranges = run.units.map((unit) => `${unit.source}:${unit.first}-${unit.last}`);
    console.log(`\n=== mutation run ${index + 1}: ${ranges.join(' ')} (${new Date().toISOString()})`);
    const hashes = run.units.map(unitHash);
    rmSync(REPORT, { force: true });
    const suites = [...new Set(run.units.flatMap((unit) => SUITES[unit.source] ?? []))];
    if (suites.length) console.log(`    with ${suites.join(' ')}`);
    const stryker = spawnSync(
      process.execPath,
      ['node_modules/@stryker-mutator/core/bin/stryker.js', 'run', '--mutate', ranges.join(','),
        '--reporters', 'clear-text,progress,json'],
      {
        stdio: 'inherit',
        env: {
          ...process.env,
          SYNAPSE_MUTATION_SUITES: suites.join(','),
          ...(run.units.every((unit) => ALONE.has(unit.source)) ? { SYNAPSE_MUTATION_ONLY: '1' } : {}),
        },
      },
    );
    if (stryker.status !== 0 || !existsSync(REPORT)) {
      console.error(`stryker failed on ${ranges.join(' ')} (exit ${stryker.status}); stopping`);
      process.exitCode = 1;
      break;
    }
    // One result per unit: the mutants of its file that start within its lines.
    const report = JSON.parse(readFileSync(REPORT, 'utf8'));
    for (const [at, unit] of run.units.entries()) {
      const file = report.files?.[unit.source] ?? { language: 'typescript', mutants: [] };
      const mutants = file.mutants.filter((m) => m.location.start.line >= unit.first && m.location.start.line <= unit.last);
      // Results of an older cut of the same lines go.
      for (const name of resultsOf(unit.source)) {
        if (name === basename(resultFile(unit)) || !overlaps(name, unit)) continue;
        rmSync(join(RESULTS, name), { force: true });
        rmSync(join(RESULTS, `${name}.sha256`), { force: true });
      }
      const result = { source: unit.source, first: unit.first, last: unit.last, mutants: mutants.map(slim) };
      writeFileSync(resultFile(unit), `${JSON.stringify(result, null, 1)}\n`);
      writeFileSync(hashFile(unit), `${hashes[at]}\n`);
    }
  }
}

/** Whether a stored result file name covers lines of `unit` (a result of an older cut). */
function overlaps(name, unit) {
  const m = /@(\d+)-(\d+)\.json$/.exec(name);
  return m !== null && Number(m[1]) <= unit.last && Number(m[2]) >= unit.first;
}

/** What a result keeps of a mutant: enough to read a survivor without the HTML report. */
function slim(mutant) {
  const { id, mutatorName, replacement, status, statusReason, location, killedBy, coveredBy } = mutant;
  return { id, mutatorName, replacement, status, statusReason, location,
    killedBy: killedBy?.length ?? 0, coveredBy: coveredBy?.length ?? 0 };
}

// Score = detected (killed or timed out) / (detected + survived + no coverage), as Stryker counts it.
const DETECTED = new Set(['Killed', 'Timeout']);
const UNDETECTED = new Set(['Survived', 'NoCoverage']);
const rows = [];
const total = { detected: 0, undetected: 0, ignored: 0, files: 0 };
const survivors = [];
const perFolder = {};
const units = all.flatMap(unitsOf);
for (const source of all) {
  const mine = units.filter((unit) => unit.source === source);
  const done = mine.filter(upToDate);
  if (done.length === 0) {
    rows.push([source, 'not run']);
    continue;
  }
  const count = { detected: 0, undetected: 0, ignored: 0 };
  for (const unit of done) {
    for (const mutant of JSON.parse(readFileSync(resultFile(unit), 'utf8')).mutants) {
      if (DETECTED.has(mutant.status)) count.detected += 1;
      else if (UNDETECTED.has(mutant.status)) {
        count.undetected += 1;
        survivors.push({ source, ...mutant });
      } else count.ignored += 1;
    }
  }
  for (const key of ['detected', 'undetected', 'ignored']) total[key] += count[key];
  const folder = (perFolder[dirname(source)] ??= { detected: 0, undetected: 0 });
  folder.detected += count.detected;
  folder.undetected += count.undetected;
  if (done.length === mine.length) total.files += 1;
  const score = (100 * count.detected) / Math.max(1, count.detected + count.undetected);
  rows.push([source, `${score.toFixed(2)}%  killed ${count.detected}, survived ${count.undetected}` +
    (count.ignored ? `, not scored ${count.ignored}` : '') +
    (done.length < mine.length ? `  (partial: ${done.length} of ${mine.length} units)` : '')]);
}
if (args.includes('--survivors')) {
  for (const m of survivors) {
    console.log(`${m.source}:${m.location.start.line}:${m.location.start.column} ${m.status} ${m.mutatorName}: ${JSON.stringify(m.replacement)}`);
  }
}
console.log('\nMutation score per file (mutation/):');
for (const [source, text] of rows) console.log(`  ${basename(source).padEnd(22)} ${text}`);
for (const [folder, count] of Object.entries(perFolder)) {
  const score = (100 * count.detected) / Math.max(1, count.detected + count.undetected);
  console.log(`  ${`${folder}/`.padEnd(22)} ${score.toFixed(2)}%  killed ${count.detected}, survived ${count.undetected}`);
}
const score = (100 * total.detected) / Math.max(1, total.detected + total.undetected);
console.log(`  ${'all run so far'.padEnd(22)} ${score.toFixed(2)}%  killed ${total.detected}, ` +
  `survived ${total.undetected} (${total.files} of ${all.length} files complete)`);
