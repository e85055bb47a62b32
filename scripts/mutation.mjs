// Mutation testing of the delivery code, one source file at a time: `npm run mutation`.
//
// Each file of engine/runtime/ and engine/runner/ gets its own StrykerJS run (stryker.config.mjs)
// whose result is committed in mutation/<file>.json with the hash of the source it mutated. A file
// whose recorded hash matches is skipped, so a run that was interrupted (it takes hours) resumes
// where it stopped, and a change re-runs only the files it touched. Within a file, Stryker's
// incremental mode reuses the result of every mutant whose code and tests did not change. At the
// end the score of every file, and of both folders together, is printed.
//
//   npm run mutation                                every file not yet run on its current source
//   npm run mutation -- engine/runtime/settle.ts    just those files (always re-run)
//   npm run mutation -- --report                    only print the scores
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

const FOLDERS = ['engine/runtime', 'engine/runner'];
const RESULTS = 'mutation';

const args = process.argv.slice(2);
const reportOnly = args.includes('--report');
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

const resultFile = (source) => join(RESULTS, `${source.replaceAll('/', '__')}.json`);

const hashFile = (source) => `${resultFile(source)}.sha256`;
const sourceHash = (source) => createHash('sha256').update(readFileSync(source)).digest('hex');
const upToDate = (source) =>
  existsSync(resultFile(source)) && existsSync(hashFile(source)) &&
  readFileSync(hashFile(source), 'utf8').trim() === sourceHash(source);

if (!reportOnly) {
  mkdirSync(RESULTS, { recursive: true });
  const todo = named.length > 0
    ? named
    : all.filter((source) => !upToDate(source)).sort((a, b) => rank(a) - rank(b));
  for (const [index, source] of todo.entries()) {
    console.log(`\n=== mutation ${index + 1}/${todo.length}: ${source} (${new Date().toISOString()})`);
    const hash = sourceHash(source);
    const run = spawnSync(
      process.execPath,
      ['node_modules/@stryker-mutator/core/bin/stryker.js', 'run', '--mutate', source, '--incremental', '--incrementalFile', resultFile(source),
        '--reporters', 'clear-text,progress'],
      { stdio: 'inherit' },
    );
    if (run.status === 0) writeFileSync(hashFile(source), `${hash}\n`);
    else {
      console.error(`stryker failed on ${source} (exit ${run.status}); stopping`);
      process.exitCode = 1;
      break;
    }
  }
}

// Score = killed (incl. timeouts) / (killed + survived + no coverage), as Stryker counts it.
const DETECTED = new Set(['Killed', 'Timeout']);
const UNDETECTED = new Set(['Survived', 'NoCoverage']);
const rows = [];
const total = { detected: 0, undetected: 0, ignored: 0 };
for (const source of all) {
  const result = resultFile(source);
  if (!existsSync(result)) {
    rows.push([source, 'not run']);
    continue;
  }
  const report = JSON.parse(readFileSync(result, 'utf8'));
  const count = { detected: 0, undetected: 0, ignored: 0 };
  for (const file of Object.values(report.files ?? {})) {
    for (const mutant of file.mutants) {
      if (DETECTED.has(mutant.status)) count.detected += 1;
      else if (UNDETECTED.has(mutant.status)) count.undetected += 1;
      else count.ignored += 1;
    }
  }
  for (const key of Object.keys(total)) total[key] += count[key];
  const score = (100 * count.detected) / Math.max(1, count.detected + count.undetected);
  rows.push([source, `${score.toFixed(2)}%  killed ${count.detected}, survived ${count.undetected}` +
    (count.ignored ? `, not scored ${count.ignored}` : '') + (upToDate(source) ? '' : '  (stale: the source changed since)')]);
}
console.log('\nMutation score per file (mutation/):');
for (const [source, text] of rows) console.log(`  ${basename(source).padEnd(22)} ${text}`);
const score = (100 * total.detected) / Math.max(1, total.detected + total.undetected);
console.log(`  ${'all run so far'.padEnd(22)} ${score.toFixed(2)}%  killed ${total.detected}, ` +
  `survived ${total.undetected} (${rows.filter(([, t]) => t === 'not run').length} files not run yet)`);
