/**
 * Micro-benchmark of expression evaluation: the task-outcomes pipeline's filter and transform
 * (pipelines/task-outcomes.yaml) on the stream bench's seeded events, evaluated
 *
 * - by plain jsonata (`jsonata(expr).evaluate`, no limits, no lock);
 * - by compileExpression without the fast path (jsonata with Synapse's time/depth limits, the
 *   process-wide lock and normalize(): what the engine did before);
 * - by compileExpression with the fast path (what the engine does now; still async);
 * - by the fast path alone (synchronous; the floor).
 *
 *   node bin/run-ts.mjs bench/expressions.ts [--events N] [--rounds R]
 *
 * Prints µs per evaluation (median of R rounds) and the share of evaluations the fast path
 * answered itself.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import jsonata from 'jsonata';
import { parse } from 'yaml';
import { compileExpression } from '../engine/expr/compile-expression.ts';
import { BAIL, compileFastPath } from '../engine/expr/fast-path.ts';
import { generateWorkload } from './lib/events.ts';

const args = process.argv.slice(2);
const flag = (name: string, dflt: number): number => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? Number(args[i + 1]) : dflt;
};
const EVENTS = flag('--events', 20_000);
const ROUNDS = flag('--rounds', 5);

const here = dirname(fileURLToPath(import.meta.url));
const pipeline = parse(readFileSync(join(here, '..', 'pipelines', 'task-outcomes.yaml'), 'utf8')) as { filter: string; transform: string };
const events = generateWorkload(EVENTS, 42).payloads.map((p) => JSON.parse(p) as Record<string, unknown>);
const passing = events.filter((e) => e.event === 'task-completed' || e.event === 'task-failed');

type Runner = (input: unknown) => unknown;

async function timeIt(inputs: readonly unknown[], run: Runner, isAsync: boolean): Promise<number> {
  const t0 = process.hrtime.bigint();
  if (isAsync) for (const input of inputs) await run(input);
  else for (const input of inputs) run(input);
  return Number(process.hrtime.bigint() - t0) / 1e3 / inputs.length;
}

async function median(inputs: readonly unknown[], run: Runner, isAsync: boolean): Promise<number> {
  await timeIt(inputs.slice(0, Math.min(inputs.length, 2000)), run, isAsync); // warm-up
  const times: number[] = [];
  for (let r = 0; r < ROUNDS; r++) times.push(await timeIt(inputs, run, isAsync));
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

function answeredShare(source: string, inputs: readonly unknown[]): number {
  const fast = compileFastPath(jsonata(source).ast());
  if (!fast) return 0;
  let answered = 0;
  for (const input of inputs) {
    try {
      fast(input);
      answered++;
    } catch (err) {
      if (err !== BAIL) throw err;
    }
  }
  return answered / inputs.length;
}

async function bench(name: string, source: string, inputs: readonly unknown[]): Promise<void> {
  const plain = jsonata(source);
  const before = compileExpression(source, { fastPath: false });
  const now = compileExpression(source);
  const fast = compileFastPath(plain.ast());
  if (!fast || !now.fast) throw new Error(`${name}: no fast path`);
  // Same results, before timing anything.
  for (const input of inputs.slice(0, 2000)) {
    const [a, b] = [JSON.stringify(await before.evaluate(input)), JSON.stringify(await now.evaluate(input))];
    if (a !== b) throw new Error(`${name}: results differ on ${JSON.stringify(input)}: ${a} vs ${b}`);
  }
  const rows: [string, number][] = [
    ['jsonata (plain)', await median(inputs, (i) => plain.evaluate(i), true)],
    ['compileExpression, jsonata only (before)', await median(inputs, (i) => before.evaluate(i), true)],
    ['compileExpression, fast path (now)', await median(inputs, (i) => now.evaluate(i), true)],
    ['fast path alone (sync)', await median(inputs, (i) => fast(i), false)],
  ];
  const base = rows[1]![1];
  console.log(`\n${name}: ${inputs.length} events, fast path answered ${(answeredShare(source, inputs) * 100).toFixed(1)}%`);
  for (const [label, us] of rows) {
    console.log(`  ${label.padEnd(42)} ${us.toFixed(2).padStart(8)} µs/eval  ${(base / us).toFixed(1).padStart(6)}x`);
  }
}

console.log(`node ${process.version}, ${EVENTS} events, median of ${ROUNDS} rounds`);
await bench('filter', pipeline.filter, events);
await bench('transform', pipeline.transform, passing);
